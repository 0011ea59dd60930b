"""The deadlock search: kernels vs finite differences, determinism, the pipeline on known points, resume,
canonical forms, CLI refusals.  Small budgets throughout (the whole file runs in well under a minute)."""
import dataclasses
import json
import os
from pathlib import Path
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from badminima.cli import main
from badminima.engine.search import canonical
from badminima.engine.certify import quality
from badminima.engine.search import run as search
from badminima.engine.search import kernels as sk
from badminima.engine.core.model import evaluate, hessian
from badminima.engine.core.outcomes import SADDLE as SADDLE_CODE
from badminima.engine.store import RunWriter, open_results
from conftest import survivors

try:
    from badminima.tests import reference as ref
except ImportError:
    import reference as ref

# a proven saddle of the paper10 data (benchmarks/bench_certify.py)
SADDLE = [-0.7741140166929815, -1.4825249729570955, -1.8722366521274991, -2.1495878667548736,
          1.8699451306062835, 1.4295347688726945, -3.2731104012258188, 1.4678851650778457, -0.750343428868772]


def _problem(seed=3, N=7):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 2, (N, 2))
    y = (np.arange(N) % 2).astype(float)
    w = rng.random(N) + 0.5
    th = rng.normal(0, 1.5, 9)
    return X, y, w, th


def _gH(th, X, y, w):
    g, H = np.empty(9), np.empty((9, 9))
    L = sk.loss_grad_hess(th, X, y, w, 2, g, H)
    return L, g, H


def test_loss_grad_hess_matches_model():
    X, y, _, th = _problem()
    L, g, H = _gH(th, X, y, np.ones(len(y)))
    L2, _, g2 = evaluate(th, X, y, 2, 2, 0, 0)
    assert abs(L - L2) < 1e-14 and np.allclose(g, g2, atol=1e-15)
    assert np.allclose(H, hessian(th, X, y, 2, 2, 0, 0), atol=1e-14)


def test_mixed_derivatives_match_finite_differences():
    X, y, w, th = _problem()
    N, eps = len(y), 1e-6
    A = np.empty((9, 2 * N))
    sk.grad_jacobian_x(th, X, y, w, 2, A)
    gx = np.empty((N, 2))
    gn2 = sk.gradnorm2_and_grad_x(th, X, y, w, 2, gx)
    g = _gH(th, X, y, w)[1]
    assert abs(gn2 - g @ g) < 1e-16
    u = np.random.default_rng(0).normal(size=9)
    u /= np.linalg.norm(u)
    ex, ev = np.empty((N, 2)), np.empty(3)
    lam = sk.eig_margin_grad(th, X, y, w, 2, u, ex, ev)
    assert abs(lam - u @ _gH(th, X, y, w)[2] @ u) < 1e-14
    for i in range(N):
        for k in range(2):
            Xp, Xm = X.copy(), X.copy()
            Xp[i, k] += eps
            Xm[i, k] -= eps
            gp, Hp = _gH(th, Xp, y, w)[1:]
            gm, Hm = _gH(th, Xm, y, w)[1:]
            assert np.allclose(A[:, 2 * i + k], (gp - gm) / (2 * eps), atol=1e-8)
            assert abs(gx[i, k] - (gp @ gp - gm @ gm) / (2 * eps)) < 1e-8
            assert abs(ex[i, k] - (u @ Hp @ u - u @ Hm @ u) / (2 * eps)) < 1e-8
    for j, p in enumerate((0, 4, 8)):          # d lambda / d(v0, v1, c)
        tp, tm = th.copy(), th.copy()
        tp[p] += eps
        tm[p] -= eps
        fd = (u @ _gH(tp, X, y, w)[2] @ u - u @ _gH(tm, X, y, w)[2] @ u) / (2 * eps)
        assert abs(ev[j] - fd) < 1e-8


def _badness(th, X, y, w, hp):
    g, H = np.empty(9), np.empty((9, 9))
    L = sk.loss_grad_hess(th, X, y, w, 2, g, H)
    N = len(y)
    pX, pV = np.zeros((N, 2)), np.zeros(3)
    pen = sk.badness_grad(X, y, w, th, 2, hp, 1.0, g, L, pX, pV, np.empty(N), np.empty(N), *np.empty((4, 2)))
    return pen, pX, pV


@pytest.mark.parametrize("kd,kc", [(3.0, 0.0), (0.0, 2.0), (3.0, 2.0)])
def test_badness_penalty_matches_reference_and_finite_differences(kd, kc):
    rng = np.random.default_rng(11)
    N = 9
    X = rng.normal(0, 2, (N, 2))
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0.0])
    w = np.ones(N)
    w[4] = 0.6                                    # a point being faded out: not among the margins
    th = np.array([2.0, 1, 0, 0, -1.5, 0, 1, 0, 0.3])       # the gauge, as in the search
    hp = np.zeros(sk.N_HYPER)
    hp[sk.H_KDSTAR], hp[sk.H_DTARGET], hp[sk.H_KCONST], hp[sk.H_CTARGET] = kd, 0.3, kc, 0.5
    pen, pX, pV = _badness(th, X, y, w, hp)
    assert pen > 0.01 and abs(pen - ref.ref_badness_penalty(th, X, y, w, kd, 0.3, kc, 0.5)) < 1e-12
    eps = 1e-6
    for i in range(N):
        for k in range(2):
            Xp, Xm = X.copy(), X.copy()
            Xp[i, k] += eps
            Xm[i, k] -= eps
            fd = (ref.ref_badness_penalty(th, Xp, y, w, kd, 0.3, kc, 0.5)
                  - ref.ref_badness_penalty(th, Xm, y, w, kd, 0.3, kc, 0.5)) / (2 * eps)
            assert abs(pX[i, k] - fd) < 1e-7
    for j, q in enumerate((0, 4, 8)):
        tp, tm = th.copy(), th.copy()
        tp[q] += eps
        tm[q] -= eps
        fd = (ref.ref_badness_penalty(tp, X, y, w, kd, 0.3, kc, 0.5)
              - ref.ref_badness_penalty(tm, X, y, w, kd, 0.3, kc, 0.5)) / (2 * eps)
        assert abs(pV[j] - fd) < 1e-7
    assert np.abs(pX).max() > 1e-3
    hp[sk.H_KDSTAR] = hp[sk.H_KCONST] = 0.0                  # switched off: no penalty, no push
    pen0, pX0, pV0 = _badness(th, X, y, w, hp)
    assert pen0 == 0.0 and not pX0.any() and not pV0.any()


def test_decision_margin_and_auc_match_their_definitions():
    rng = np.random.default_rng(2)
    for t in range(300):
        n = int(rng.integers(2, 13))
        y = (rng.random(n) < rng.uniform(0.2, 0.8)).astype(float)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        p = rng.random(n)
        if t % 3 == 0:
            p = np.round(p, 1)                       # ties, and outputs exactly 1/2
        assert quality.decision_margin(p, y) == ref.ref_decision_margin(list(p), list(y))
        assert abs(quality.auc(p, y) - ref.ref_auc(list(p), list(y))) < 1e-15
    # 5 of 8 labelled 0, 4 wrong: accuracy 4/8 < 5/8, and forgiving the least confident wrong point (0.507)
    # lifts it to the majority rate; the flipped outputs are wrong on the other 4, the least confident at 0.4
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0.0])
    p = np.array([0.9, 0.3, 0.45, 0.507, 0.4, 0.1, 0.7, 0.2])
    assert quality.decision_margin(p, y) == pytest.approx(0.007, abs=1e-12)
    assert quality.decision_margin(1 - p, y) == pytest.approx(0.1, abs=1e-12)
    assert quality.decision_margin(np.where(y > 0, 0.9, 0.1), y) == 0.0
    assert quality.auc(1 - p, y) == pytest.approx(1 - quality.auc(p, y))


def test_small_linear_algebra():
    rng = np.random.default_rng(1)
    d, e, V, T, out = np.empty(9), np.empty(9), np.empty((9, 9)), np.empty((9, 10)), np.empty(9)
    for t in range(50):
        A = rng.normal(size=(9, 9))
        A = A + A.T
        if t % 5 == 0:
            A = np.diag(rng.normal(size=9))
        sk.eig_of(A, d, e, V)
        assert np.allclose(d, np.linalg.eigvalsh(A), atol=1e-12)
        assert np.allclose(V @ np.diag(d) @ V.T, A, atol=1e-12)
        b = rng.normal(size=9)
        assert sk.gauss_solve(A, b, T, out) and np.allclose(A @ out, b, atol=1e-9)


def test_float_stage_deterministic_across_threads_and_chunks():
    import numba
    cfg = search.SearchConfig(points=10, budget=16, seed=5, iters=40).validate()
    a = search.float_stage(cfg, np.arange(16), threads=1)
    b = search.float_stage(cfg, np.arange(16), threads=min(2, numba.config.NUMBA_NUM_THREADS))
    c = search.float_stage(cfg, np.arange(8, 16), threads=1)
    for k in ("X", "y", "theta", "diag"):
        assert np.array_equal(a[k], b[k], equal_nan=True)
        assert np.array_equal(a[k][8:], c[k], equal_nan=True)
    d = search.float_stage(search.SearchConfig(points=10, budget=16, seed=6, iters=40), np.arange(4), threads=1)
    assert not np.array_equal(a["X"][:4], d["X"])


def test_paper_soa_kernel_matches_scalar_reference_and_blocking():
    cfg = search.SearchConfig(points=9, budget=40, seed=4, strategy="paper", iters=60).validate()
    X, y, th = sk.search_starts(np.uint64(4), np.arange(40), 9, 2, np.array([4, 3]), 4.0, 1.0, 6.0)
    w = np.ones((40, 9))
    hp = cfg.hyper()
    Xa, da = X.copy(), np.empty((40, 8))
    sk.optimize_batch(sk.PAPER, Xa, y, w, th, 2, hp, da)             # SoA blocks of 32 lanes
    Xb, db = X.copy(), np.empty((40, 8))
    for c in range(40):
        sk.optimize_paper(Xb[c], y[c], w[c], th[c], 2, hp, db[c], np.zeros(1, np.int64))    # scalar loop, libm exp
    assert np.allclose(Xa, Xb, atol=1e-11, rtol=0) and np.allclose(da[:, 0], db[:, 0], atol=1e-13)
    Xc, dc = X[5:13].copy(), np.empty((8, 8))                          # other blocking: same bits
    sk.optimize_batch(sk.PAPER, Xc, y[5:13], w[5:13], th[5:13], 2, hp, dc)
    assert np.array_equal(Xc, Xa[5:13]) and np.array_equal(dc, da[5:13], equal_nan=True)


def test_pipeline_certifies_paper10_and_rejects_a_saddle(paper10):
    cfg = search.SearchConfig(points=10, decimals=(1, 2)).validate()
    X, y = np.array(paper10.x), np.array(paper10.y)
    w_hat = np.array(paper10.points["W_hat"].theta)
    res = search.process_candidate(cfg, X, y, w_hat, witness=np.array(paper10.points["W0"].theta))
    assert res["verdict"] == search.CERTIFIED and res["decimals"] == 1 and res["margin"] > 0.19
    # accuracy 0.4 on a 5/5 split, but two of the six wrong points have outputs within 0.021 of 1/2:
    # delta* against the slow reference's outputs (50 digits) at the certified centre
    p = ref.mp_outputs(res["theta"], X, "sigmoid")
    assert abs(res["delta_star"] - ref.ref_decision_margin(p, list(y))) < 1e-12
    assert 0.02 < res["delta_star"] < 0.021 and res["tier"] == search.WEAK
    assert abs(res["auc"] - ref.ref_auc(p, list(y))) < 1e-15 and res["auc"] == 0.64
    L = float(ref.mp_loss(res["theta"], X, y, "sigmoid", "xent"))
    assert abs(res["const_gap"] - (L - np.log(2))) < 1e-9
    Lw = float(ref.mp_loss(paper10.points["W0"].theta, X, y, "sigmoid", "xent"))
    assert abs(res["witness_gap"] - (L - Lw)) < 1e-12
    assert res["witness_gap"] >= res["margin"]
    strict = search.SearchConfig(points=10, decimals=(1,), strong_delta=0.02).validate()
    res_s = search.process_candidate(strict, X, y, w_hat, witness=np.array(paper10.points["W0"].theta))
    assert res_s["tier"] == search.STRONG
    assert np.array_equal(res["X"], X)                 # one decimal: the paper's data unchanged
    # its own witness search (engine trainer) finds a lower network too
    res2 = search.process_candidate(cfg, X, y, w_hat, index=0)
    assert res2["verdict"] == search.CERTIFIED and res2["witness_loss"] < 0.5
    # the saddle: rejected by the float screen, and never certified
    s = np.array(SADDLE)
    L, g, H = _gH(s, X, y, np.ones(10))
    diag = np.array([np.linalg.norm(g), np.linalg.eigvalsh(H)[0], 0, 0, 0, 0, L, 1])
    pre = np.abs(X @ np.array([[s[1], s[2]], [s[5], s[6]]]).T + s[[3, 7]]).max()
    assert pre > cfg.max_pre                           # the saddle saturates: degeneracy is checked first
    assert search.screen(cfg, X, y, s, diag) == (SADDLE_CODE, search.DEGENERATE)
    wide = search.SearchConfig(points=10, max_pre=2 * pre).validate()
    assert search.screen(wide, X, y, s, diag) == (SADDLE_CODE, search.NOT_MINIMUM)
    bad = search.process_candidate(cfg, X, y, s, witness=np.array(paper10.points["W0"].theta))
    assert bad["verdict"] != search.CERTIFIED


def test_delete_strategy_and_export_recertify(tmp_path):
    from badminima.engine.certify.files import certify_file
    cfg = search.SearchConfig(points=9, budget=6, strategy="delete", parents=("paper10:W_hat",),
                              found_dir=str(tmp_path / "found")).validate()
    s = search.run_search(cfg, str(tmp_path / "d.h5"), progress=False)
    assert s["attempts"] == 6 and s["certified"] >= 1
    rep = certify_file(s["best"]["file"])
    assert rep["certified"] == ["minimum"] and rep["points"]["minimum"]["not_global"]
    assert rep["n"] == 9
    assert sorted(s["found"]) == sorted(s["exported_now"]) and all(os.path.exists(f) for f in s["found"])
    # another search into the same --found-dir (other options, same seed and indices) adds its own files
    # and leaves the first one's untouched; a smaller budget of the first names the same files
    before = {f: Path(f).read_text() for f in s["found"]}
    other = dataclasses.replace(cfg, jitter=0.01)
    s2 = search.run_search(other, str(tmp_path / "d2.h5"), progress=False)
    assert s2["certified"] >= 1 and not set(s2["found"]) & set(before)
    assert {f: Path(f).read_text() for f in s["found"]} == before
    s3 = search.run_search(dataclasses.replace(cfg, budget=3), str(tmp_path / "d3.h5"), progress=False)
    assert s3["certified"] >= 1 and set(s3["found"]) <= set(before)
    assert {f: Path(f).read_text() for f in s["found"]} == before        # rewritten as they were


def test_refine_pushes_the_decision_margin_of_a_certified_minimum(tmp_path):
    """refine: the joint objective from a certified 8-point minimum (delta* 0.0072) climbs along its family
    of minima to a larger delta*, still certified; a glob pattern names the parents."""
    from badminima.engine.data.datasets import load_dataset
    src = load_dataset("deadlock_n8").source
    cfg = search.SearchConfig(points=8, budget=2, strategy="refine", parents=(src.replace("n8", "n[8]"),),
                              found_dir=str(tmp_path / "f")).validate()
    s = search.run_search(cfg, str(tmp_path / "r.h5"), progress=False)
    assert s["certified"] >= 1 and s["best_delta_star"] > 0.02
    rows = open_results(str(tmp_path / "r.h5")).cell("N8")
    assert list(rows["parent"]) == [0, 0] and list(rows["deleted"]) == [-1, -1]
    assert rows["points"][0] != pytest.approx(rows["points"][1])      # variant 1 starts jittered


def test_search_resumes_to_identical_records(tmp_path, monkeypatch):
    cfg = search.SearchConfig(points=8, budget=24, seed=2, iters=60, witness_starts=16, witness_steps=500,
                              found_dir=str(tmp_path / "f")).validate()
    full = search.run_search(cfg, str(tmp_path / "a.h5"), chunk=8, progress=False)
    calls = {"n": 0}
    orig = search.Progress.update

    def boom(self, n):
        orig(self, n)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(search.Progress, "update", boom)
    with pytest.raises(KeyboardInterrupt):
        search.run_search(cfg, str(tmp_path / "b.h5"), chunk=8, progress=False)
    monkeypatch.setattr(search.Progress, "update", orig)
    assert open_results(str(tmp_path / "b.h5.part")).n_rows("N8") == 16
    again = search.run_search(cfg, str(tmp_path / "b.h5"), chunk=8, progress=False)
    a = open_results(str(tmp_path / "a.h5")).cell("N8")
    b = open_results(str(tmp_path / "b.h5")).cell("N8")
    assert set(a) >= {"verdict", "points", "labels", "witness", "margin"}
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=True), k
    assert again["verdicts"] == full["verdicts"]


@pytest.mark.parametrize("strategy", ["joint", "delete"])
def test_search_records_identical_across_threads_and_chunks(tmp_path, strategy):
    """Every stored value (verdict, tier, delta*, witness, certified data and centre ...) and every exported
    file are bit for bit the same whatever the thread count and chunking."""
    import numba
    kw = {"parents": ("paper10:W_hat",)} if strategy == "delete" else {}
    runs = []
    for tag, threads, chunk in (("a", 1, 24), ("b", min(2, numba.config.NUMBA_NUM_THREADS), 5)):
        cfg = search.SearchConfig(points=10 if strategy == "joint" else 9, budget=24, seed=3, strategy=strategy,
                                  iters=300, witness_starts=32, witness_steps=1500,
                                  found_dir=str(tmp_path / tag), **kw).validate()
        runs.append(search.run_search(cfg, str(tmp_path / f"{tag}.h5"), chunk=chunk, threads=threads,
                                      progress=False))
    assert runs[0]["certified"] >= 2 and runs[0]["verdicts"] == runs[1]["verdicts"]
    cell = f"N{cfg.points}"
    a = open_results(str(tmp_path / "a.h5")).cell(cell)
    b = open_results(str(tmp_path / "b.h5")).cell(cell)
    assert set(a) >= {"verdict", "tier", "points", "weights", "witness", "delta_star", "const_gap", "auc"}
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(names) == runs[0]["certified"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()


def test_parent_order_ignores_the_witness_and_the_listing_order(tmp_path):
    """The delete strategy's parents are ranked by properties of the minimum (delta*, L - L_const), never by
    the witness margin, which changes whenever the trainer's floating-point bits do."""
    files = []
    for i, (d, g, m) in enumerate([(0.03, -0.01, 0.2), (0.07, -0.05, 0.1), (0.03, -0.002, 0.4), (0.0, 0.0, 0.9)]):
        f = tmp_path / f"N9_s0_joint_{i:06d}.json"
        f.write_text(json.dumps({"search": {"delta_star": d, "const_gap": g, "margin_lower": m}}))
        files.append(str(f))
    want = [files[1], files[2], files[0], files[3]]
    assert search._rank_files(files) == want and search._rank_files(files[::-1]) == want
    doc = json.loads((tmp_path / "N9_s0_joint_000000.json").read_text())
    doc["search"]["margin_lower"] = 5.0                   # another witness: same order
    (tmp_path / "N9_s0_joint_000000.json").write_text(json.dumps(doc))
    assert search._rank_files(files) == want


def test_store_extra_fields_roundtrip(tmp_path):
    extra = {"pts": ("float64", 4, "points"), "code": ("int8", 0, "a code")}
    rows = {"index": np.arange(3, dtype=np.int64), "outcome": np.ones(3, np.int8), "loss": np.zeros(3),
            "accuracy": np.zeros(3), "grad_norm": np.zeros(3), "steps": np.zeros(3, np.int64),
            "min_eig": np.zeros(3), "weights": np.zeros((3, 9)), "pts": np.ones((3, 4)),
            "code": np.array([1, 2, 3], np.int8)}
    with RunWriter.open(str(tmp_path / "x.h5"), {"seed": 0}, {"c": ({}, 3, 9)}, fields=extra) as w:
        w.append("c", rows)
    res = open_results(str(tmp_path / "x.h5"))
    assert res.cell("c")["pts"].shape == (3, 4) and list(res.table("c")["code"]) == [1, 2, 3]
    with pytest.raises(Exception, match="extra field"):
        RunWriter.open(str(tmp_path / "y.h5"), {}, {"c": ({}, 3, 9)}, fields={"loss": ("float64", 0, "")})


def test_canonical_form_is_invariant_under_the_symmetries():
    rng = np.random.default_rng(7)
    X = rng.normal(0, 2, (8, 2))
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1.0])
    th = np.array([3.0, 1.1, 0.2, -0.1, -2.0, -0.3, 0.9, 0.2, 0.4])
    base = canonical.canonical_form(X, y, th, decimals=3)
    T = np.array([[1.5, 0.3], [-0.2, 0.8]])
    t = np.array([0.7, -1.2])
    W = np.array([[th[1], th[2]], [th[5], th[6]]])
    b = np.array([th[3], th[7]])
    W2 = W @ np.linalg.inv(T)                       # x' = T x + t, same pre-activations
    b2 = b - W2 @ t
    th2 = np.array([th[4], *W2[1], b2[1], th[0], *W2[0], b2[0], th[8]])      # and units swapped
    th2[0], th2[1:4] = -th2[0], -th2[1:4]                                     # sign flip of unit 0
    th2[8] = th[8] + th[4]
    X2 = X @ T.T + t
    f2 = canonical.canonical_form(X2[::-1], y[::-1], th2, decimals=3)      # points reordered
    f3 = canonical.canonical_form(X, 1 - y, np.r_[-th[:1], th[1:4], -th[4:5], th[5:8], -th[8:]], decimals=3)
    assert base["key"] == f2["key"] == f3["key"] and base["pattern"] == f2["pattern"]
    assert np.allclose(base["points"], f2["points"]) and base["v"][0] >= base["v"][1] > 0
    assert canonical.count_distinct([base, f2, f3]) == {"distinct": 1, "patterns": 1}


@pytest.mark.parametrize("args", [
    ["search", "-N", "3"],
    ["search", "-N", "10", "--strategy", "nope"],
    ["search", "-N", "8", "--strategy", "delete"],
    ["search", "-N", "10", "--ones", "0"],
    ["search", "-N", "10", "--ones", "x"],
    ["search", "-N", "10", "--budget", "0"],
    ["search", "-N", "8", "--strategy", "delete", "--parents", "paper10"],
    ["minimality", "-N", "3-5"],
    ["minimality", "-N", "9-x"],
    ["minimality", "--strategies", "joint,bogus"],
    ["search", "-N", "10", "--strong-delta", "0.5"],
    ["search", "-N", "10", "--kdstar", "-1"],
    ["minimality", "-N", "8", "--kconst", "nan"],
    ["search", "-N", "8", "--strategy", "refine"],
    ["search", "-N", "8", "--strategy", "refine", "--parents", "deadlock_n9"],
    ["search", "-N", "8", "--strategy", "refine", "--parents", "no/such/N8_*.json"],
    ["search", "-N", "4", "--strategy", "refine", "--parents", "xor"],
])
def test_cli_bad_input_exits_2(args, tmp_path):
    r = CliRunner().invoke(main, args + ["-q"] if args[0] == "search" else args + ["-q", "--out-dir", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
    assert "''" not in r.output                             # every message names what is wrong


def test_search_shards_merge_to_the_one_process_run(tmp_path):
    """Each shard's cell identity must not hold its shard index, or the shards could never merge."""
    from badminima.engine.store import diff_files, merge
    base = ["search", "-N", "4", "-k", "8", "--iters", "20", "--found-dir", str(tmp_path / "f"), "-q"]
    for args in (["-o", str(tmp_path / "one.h5")], ["--shard", "0/2", "-o", str(tmp_path / "s0.h5")],
                 ["--shard", "1/2", "-o", str(tmp_path / "s1.h5")]):
        r = CliRunner().invoke(main, base + args)
        assert r.exit_code == 0, r.output
    merge([str(tmp_path / "s0.h5"), str(tmp_path / "s1.h5")], str(tmp_path / "merged.h5"))
    assert diff_files(str(tmp_path / "one.h5"), str(tmp_path / "merged.h5")) == []


def test_cli_search_and_minimality_small(tmp_path):
    out = tmp_path / "s.h5"
    r = CliRunner().invoke(main, ["search", "-N", "10", "-k", "12", "--seed", "1", "-o", str(out), "-q",
                                  "--found-dir", str(tmp_path / "found")])
    assert r.exit_code == 0, r.output
    assert "attempts" in r.output and "certified" in r.output and out.exists()
    # show prints a search's summary: the search's own table, and its numbers as JSON
    shown = CliRunner().invoke(main, ["show", str(out)])
    assert shown.exit_code == 0 and shown.stdout.splitlines()[2] == r.stdout.splitlines()[3], shown.output
    as_json = json.loads(CliRunner().invoke(main, ["show", str(out), "--json", "-"]).stdout)
    assert as_json["attempts"] == 12 and as_json["points"] == 10
    r2 = CliRunner().invoke(main, ["show", str(out), "--cell", "main"])
    assert r2.exit_code == 2 and "no cells" in r2.stderr
    rows = tmp_path / "rows.json"
    r = CliRunner().invoke(main, ["minimality", "-N", "9-10", "-k", "6", "--out-dir", str(tmp_path / "m"),
                                  "-q", "--json", str(rows), "--strategies", "refine,delete", "--paper-parent"])
    assert r.exit_code == 0, r.output
    table = json.loads(rows.read_text())
    assert table["columns"][0] == "N" and [row[0] for row in table["rows"]] == [9, 10]
    assert table["rows"][0][3] >= 1                # deletion from paper10 certifies 9-point sets
    assert table["columns"][5] == "best delta*" and 0 < table["rows"][0][5] < 0.5
    # refine ran after delete (whatever the order asked), from the 9-point sets deletion certified
    nine = table["details"][0]["by_strategy"]
    assert list(nine) == ["delete", "refine"] and table["rows"][0][1] == 12
    refine_parents = open_results(str(tmp_path / "m" / "N9-refine.h5")).config["parents"]
    assert refine_parents and all("N9_s0_delete_" in p for p in refine_parents)
    # the same out-dir with another objective is another study: refused, not silently reused
    r = CliRunner().invoke(main, ["minimality", "-N", "9-10", "-k", "6", "--out-dir", str(tmp_path / "m"),
                                  "-q", "--strategies", "refine,delete", "--paper-parent", "--kdstar", "0"])
    assert r.exit_code == 2 and "kdstar" in r.output and len(r.output.strip().splitlines()) == 1
    # --json never lands on what the study writes (its found/ datasets, its result files)
    before = sorted(p.name for p in (tmp_path / "m" / "found").iterdir())
    for target in (tmp_path / "m" / "found" / before[0], tmp_path / "m" / "N10-joint.h5"):
        r = CliRunner().invoke(main, ["minimality", "-N", "9-10", "-k", "6", "--out-dir", str(tmp_path / "m"),
                                      "-q", "--json", str(target), "--strategies", "refine,delete", "--paper-parent"])
        assert r.exit_code == 1 and "is where the study writes" in r.stderr, r.output
    assert sorted(p.name for p in (tmp_path / "m" / "found").iterdir()) == before
    assert json.loads((tmp_path / "m" / "found" / before[0]).read_text())["x"]
    # an objective weight reaches the strategies that read it; the paper strategy's file keeps the default
    r = CliRunner().invoke(main, ["minimality", "-N", "7", "-k", "2", "--out-dir", str(tmp_path / "m7"), "-q",
                                  "--strategies", "joint,paper", "--kdstar", "5"])
    assert r.exit_code == 0, r.output
    assert open_results(str(tmp_path / "m7" / "N7-joint.h5")).config["kdstar"] == 5
    assert open_results(str(tmp_path / "m7" / "N7-paper.h5")).config["kdstar"] == search.SearchConfig.kdstar


def test_parents_that_change_under_the_search_are_refused(tmp_path):
    """A --parents pattern that matches the search's own exports (its parents would grow as it runs, and
    a resume would see others) and one dataset point named twice are refused before any work."""
    import shutil
    from badminima.engine.data.datasets import DATA_DIR
    from badminima.engine.train.config import ConfigError
    SearchConfig, run_search = search.SearchConfig, search.run_search
    # (the float screen's bounds apply to every strategy: the paper strategy takes them)
    assert SearchConfig(points=5, strategy="paper", vmax=50.0, cmax=40.0).validate().vmax == 50.0
    with pytest.raises(ConfigError, match="bound is used only by"):
        SearchConfig(points=5, strategy="paper", bound=5.5).validate()
    par = tmp_path / "par"
    par.mkdir()
    shutil.copy(DATA_DIR / "deadlock_n9.json", par)
    for pattern in ("*.json", "N9_*", "N9_s0_refine_*_00*.json"):
        with pytest.raises(ConfigError, match="matches the datasets this search exports"):
            SearchConfig(points=9, budget=2, strategy="refine", parents=(str(par / pattern),),
                         found_dir=str(par)).validate()
    (tmp_path / "link").symlink_to(par)                 # the same folder through a symlink, or .., is refused
    for pattern, found in ((str(par / "*.json"), str(tmp_path / "link")), (str(tmp_path / "link" / "*"), str(par)),
                           (str(tmp_path / "p*" / "*.json"), f"{par}/../par")):
        with pytest.raises(ConfigError, match="matches the datasets this search exports"):
            SearchConfig(points=9, budget=2, strategy="refine", parents=(pattern,), found_dir=found).validate()
    for ok in ((str(par / "deadlock*.json"), str(par)), (str(par / "*.json"), str(tmp_path / "found")),
               (str(par / "*.json"), str(par / "sub")), (str(par / "*"), str(par / "refine"))):
        SearchConfig(points=9, budget=2, strategy="refine", parents=(ok[0],), found_dir=ok[1]).validate()
    (tmp_path / "link").unlink()
    cfg = SearchConfig(points=9, budget=2, strategy="refine", parents=(str(par / "*.json"), f"{par}/./deadlock_n9.json"),
                       found_dir=str(tmp_path / "found")).validate()
    with pytest.raises(ConfigError, match="names one file's point twice"):
        run_search(cfg, str(tmp_path / "r.h5"), threads=1, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["par"]
    shutil.copy(par / "deadlock_n9.json", par / "copy.json")       # the same data in two files: two parents
    cfg = SearchConfig(points=9, budget=2, strategy="refine", parents=(str(par / "*.json"),),
                       found_dir=str(tmp_path / "found")).validate()
    assert run_search(cfg, str(tmp_path / "r.h5"), threads=1, progress=False)["attempts"] == 2


def test_search_study_counts_each_label_split(tmp_path):
    """analysis/search_study.py: per (N, smaller class size) attempts, critical points and their lambda_min,
    and those whose data lie off a line, counted independently here from the stored verdicts, labels and
    points (some of the 24 candidates reach critical points, some of those off a line)."""
    import shutil
    from badminima.analysis.search_study import study_data, study_json, study_table
    from badminima.engine.search.run import FLOAT_PASSED, NOT_MINIMUM
    from badminima.engine.store import StoreError
    out = tmp_path / "N6.h5"
    r = CliRunner().invoke(main, ["search", "-N", "6", "-k", "24", "--ones", "1,2,3", "--seed", "2",
                                  "-o", str(out), "--found-dir", str(tmp_path / "f"), "-q"])
    assert r.exit_code == 0, r.output
    data = study_data([str(tmp_path / "N*.h5")])
    res = open_results(str(out))
    rows = res.cell(res.cells[0], ["verdict", "labels", "min_eig", "points"])
    ones = rows["labels"].sum(1)
    small = np.minimum(ones, 6 - ones)
    # off a line: the smaller eigenvalue of the points' scatter matrix >= 0.05^2 of the larger
    scatter = [np.cov(p.reshape(6, 2).T) for p in rows["points"]]
    apart = np.array([np.linalg.eigvalsh(c)[0] >= 0.05 ** 2 * np.linalg.eigvalsh(c)[1] for c in scatter])
    assert sorted(data) == [(6, k) for k in sorted(set(small.tolist()))] and set(small.tolist()) <= {1, 2, 3}
    assert sum(d["attempts"] for d in data.values()) == 24
    for (N, k), d in data.items():
        m = small == k
        crit = m & ((rows["verdict"] == NOT_MINIMUM) | np.isin(rows["verdict"], FLOAT_PASSED))
        assert d["attempts"] == m.sum() and d["critical"] == crit.sum() == len(d["lambdas"])
        assert sorted(d["lambdas"]) == sorted(rows["min_eig"][crit].tolist()) and d["strategies"] == {"joint"}
        assert d["off_line"] == (crit & apart).sum() == len(d["lambdas_off_line"])
        assert sorted(d["lambdas_off_line"]) == sorted(rows["min_eig"][crit & apart].tolist())
    assert 0 < sum(d["off_line"] for d in data.values()) < sum(d["critical"] for d in data.values())
    nm_off = (rows["verdict"] == NOT_MINIMUM) & apart           # the search's own summary, off a line
    assert nm_off.any() and search.summarize(str(out))["closest_lambda_off_line"] == rows["min_eig"][nm_off].max()
    assert f"({rows['min_eig'][nm_off].max():.3g} among those whose data lie off a line)" in r.output
    from badminima.engine.search.run import off_line
    square, line = [0, 0, 1, 0, 0, 1, 1, 1, 0.5, 0.5], [0, 0, 1, 1, 2, 2, 3, 3.001, 4, 4]
    nan = [np.nan] + square[1:]
    assert off_line(np.array([square, line, nan, [0.0] * 10])).tolist() == [True, False, False, False]
    assert len(study_table(data).splitlines()) == 2 + len(data) + 2
    with pytest.raises(StoreError):
        study_data([str(tmp_path / "nothing-*.h5")])
    # the command: table, figure and JSON (the same rows); one line and a non-zero exit for a missing,
    # damaged or non-search file, copies of one run, and outputs that would replace a result file
    r = CliRunner().invoke(main, ["study", str(out), "--figure", str(tmp_path / "s.png"),
                                  "--json", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    assert study_table(data) in r.output and (tmp_path / "s.png").stat().st_size > 0
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(json.dumps(study_json(data)))
    r = CliRunner().invoke(main, ["study", str(out), "--json", "-", "--figure", str(tmp_path / "j.png")])
    assert r.exit_code == 0 and json.loads(r.stdout) == json.loads(json.dumps(study_json(data)))
    assert r.stderr.strip() == f"figure: {tmp_path / 'j.png'}"          # stdout holds the JSON alone
    (tmp_path / "junk.h5").write_text("not HDF5")
    shutil.copy(out, tmp_path / "copy.h5")
    r = CliRunner().invoke(main, ["train", "-n", "4", "--steps", "2", "-o", str(tmp_path / "t.h5"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["search", "-N", "6", "-k", "2", "--ones", "1,2,3", "--seed", "2",
                                  "-o", str(tmp_path / "k2.h5"), "--found-dir", str(tmp_path / "f2"), "-q"])
    assert r.exit_code == 0, r.output
    before = {p: p.read_bytes() for p in (out, tmp_path / "t.h5")}
    for args, message in (([str(tmp_path / "nothing-*.h5")], "no files match"),
                          ([str(tmp_path / "junk.h5")], "not a readable HDF5 file"),
                          ([str(tmp_path / "t.h5")], "not a search result file"),
                          ([str(out), str(tmp_path / "copy.h5")], "both hold candidate 0"),
                          ([str(out), str(tmp_path / "k2.h5")], "both hold candidate 0"),     # another budget
                          ([str(out), "--json", str(tmp_path / "t.h5")], "HDF5 result file"),
                          ([str(out), "--figure", str(out)], "HDF5 result file"),
                          ([str(out), "--figure", str(tmp_path / "s.txt")], "not supported"),
                          ([str(out), "--figure", str(tmp_path / "b.png"), "--json", str(tmp_path / "b.png")],
                           "also the --figure")):
        r = CliRunner().invoke(main, ["study", *args])
        assert r.exit_code in (1, 2) and message in r.output, (args, r.output)
        assert r.output.startswith("error: ") and r.output.count("\n") == 1, r.output
    assert before == {p: p.read_bytes() for p in before} and not (tmp_path / "b.png").exists()
    # a shard without candidates: an empty table and a figure that says so
    r = CliRunner().invoke(main, ["search", "-N", "6", "-k", "2", "--shard", "0/4", "-o", str(tmp_path / "e.h5"),
                                  "--found-dir", str(tmp_path / "f"), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["study", str(tmp_path / "e.h5"), "--figure", str(tmp_path / "e.png")])
    assert r.exit_code == 0 and (tmp_path / "e.png").stat().st_size > 0, r.output


def test_jitter_sets_the_spread_of_the_parent_variants(tmp_path):
    """--jitter scales how far variant m of a (parent, deleted point) pair moves the parent's points
    (m x jitter x a fixed normal draw), and a negative jitter is refused in one line."""
    from badminima.engine.data.datasets import load_dataset
    spec = load_dataset("deadlock_n8").source
    parents = [search.load_parent(s) for s in search.expand_parents([spec])]
    M = 8
    idx = np.array([0, M, 2 * M])              # parent 0, deleted point 0, variants 0, 1, 2
    out = {}
    for j in (0.0, 1e-6, 2e-6):
        cfg = search.SearchConfig(points=7, strategy="delete", parents=(spec,), jitter=j).validate()
        out[j] = search.parent_starts(cfg, parents, idx)[0]
    assert np.array_equal(out[0.0][1], out[0.0][0]) and np.array_equal(out[0.0][2], out[0.0][0])
    step1 = out[1e-6][1] - out[1e-6][0]
    assert 0 < np.abs(step1).max() < 1e-5
    np.testing.assert_allclose(out[2e-6][1] - out[2e-6][0], 2 * step1, rtol=1e-6, atol=1e-18)
    r = CliRunner().invoke(main, ["search", "-N", "7", "--strategy", "delete", "--parents", spec, "--jitter", "-1",
                                  "-o", str(tmp_path / "s.h5"), "--found-dir", str(tmp_path / "f"), "-q"])
    assert r.exit_code != 0 and "jitter must be >= 0" in r.output and not (tmp_path / "s.h5").exists()


def test_post_workers_exit_when_the_search_is_killed(tmp_path):
    """`search --post-workers K` post-processes in spawned processes; a SIGKILL gives the search no chance
    to stop them, so each worker watches its parent and exits when it is gone (an orphan would run on
    and hold the caller's pipes open)."""
    import signal
    import subprocess
    import time

    def children(pid):
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def cmdline(pid):
        try:
            with open(f"/proc/{pid}/cmdline") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    p = subprocess.Popen([sys.executable, "-m", "badminima.cli", "search", "-N", "8", "-k", "4096", "--chunk", "64",
                          "--post-workers", "2", "-q", "-o", str(tmp_path / "s.h5"), "--found-dir", str(tmp_path / "f")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, workers = time.monotonic() + 60, []
        while len(workers) < 2 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
            workers = [c for c in children(p.pid) if "spawn_main" in cmdline(c)]
        assert len(workers) == 2, "the post-processing workers never started"
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert not survivors(workers), "post-processing workers outlived the killed search"
    finally:
        if p.poll() is None:
            p.kill()


def test_an_export_name_taken_by_a_result_file_is_refused_before_the_search(tmp_path):
    """A file in --found-dir under a name the search exports to that it may not replace (an HDF5 file) is
    refused before any candidate is tried, not when a certified one is exported."""
    import shutil
    cfg = search.SearchConfig(points=9, budget=20, strategy="delete", parents=("paper10:W_hat",),
                              found_dir=str(tmp_path / "found")).validate()
    parents = [search.load_parent(s) for s in search.expand_parents(cfg.parents)]
    (tmp_path / "found").mkdir()
    taken = tmp_path / "found" / search.export_name(search.run_config(cfg, parents), 3)
    r = CliRunner().invoke(main, ["train", "-n", "8", "--steps", "5", "-q", "-o", str(tmp_path / "r.h5")])
    assert r.exit_code == 0, r.output
    shutil.copy(tmp_path / "r.h5", taken)
    r = CliRunner().invoke(main, ["search", "-N", "9", "--strategy", "delete", "-k", "20", "-q",
                                  "-o", str(tmp_path / "s.h5"), "--found-dir", str(tmp_path / "found")])
    assert r.exit_code == 1 and "a name this search exports to" in r.output, r.output
    assert not (tmp_path / "s.h5").exists() and not (tmp_path / "s.h5.part").exists()


def test_a_lone_point_split_is_named_as_one_that_cannot_be_certified(tmp_path):
    """A label split with one class a single point (either class) holds no strict minimum (docs/search.md):
    the search says so before it starts, naming those splits, and runs them anyway (the study counts
    them); other splits get no such note."""
    def run(ones):
        return CliRunner().invoke(main, ["search", "-N", "5", "-k", "4", "--ones", ones, "--iters", "20",
                                         "-o", str(tmp_path / f"s{ones}.h5"), "--found-dir", str(tmp_path / "f")])
    r = run("2,4")
    assert r.exit_code == 0, r.output
    assert "note: --ones 4: one class is a single point" in r.stderr and r.stdout.startswith("search N=5")
    r = run("2")
    assert r.exit_code == 0 and "single point" not in r.stderr
