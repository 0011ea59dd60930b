"""The generated SIMD training kernels against the slow reference; determinism; outcome classification."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

from badminima.engine.train.codegen import load_kernel_module
from badminima.engine.core.layout import n_params
from badminima.engine.core.outcomes import (DIVERGED, DRIFTING, FLAT, LOCAL_MINIMUM, OUT_OF_STEPS,
                                       SADDLE, SOLVED)
from badminima.engine.core.rng import shuffle_epoch
from badminima.engine.train.run import train, train_range

from conftest import make_cfg

try:
    from badminima.tests import reference as ref
except ImportError:
    import reference as ref


# the general pass (_full_pass, any number of points) is in every variant's module: the fused ones
# the suite loads anyway serve, so that this test compiles one variant of its own, not five
@pytest.mark.parametrize("act,loss,d,h,fused", [("sigmoid", "xent", 2, 3, 4), ("relu", "xent", 2, 3, 4),
                                                ("tanh", "xent", 2, 2, 4), ("relu", "mse", 1, 2, 5),
                                                ("sigmoid", "mse", 1, 3, 0)])
def test_kernel_gradient_matches_reference(act, loss, d, h, fused, rng):
    mod = load_kernel_module(d, h, act, loss, "gd", "float64", fused)
    X = rng.normal(size=(6, d))
    y = (rng.random(6) > 0.5).astype(float) if loss == "xent" else rng.normal(size=6)
    th = rng.normal(size=(n_params(d, h), mod.B))
    g = mod.grad_lanes(X, y, th)
    for lane in range(0, mod.B, 7):
        expect = ref.ref_grad(th[:, lane], X, y, act, loss)
        np.testing.assert_allclose(g[:, lane], expect, rtol=1e-10, atol=1e-13)


def _reference_run(opt, theta0, X, y, act, loss, cfg, index):
    if opt == "gd":
        return ref.ref_gd(theta0, X, y, act, loss, cfg.lr, cfg.steps)
    if opt == "adam":
        return ref.ref_adam(theta0, X, y, act, loss, cfg.lr, cfg.steps, cfg.beta1, cfg.beta2, cfg.eps)
    N = len(y)
    order = []
    perm = np.empty(N, np.int64)
    for epoch in range(-(-cfg.steps // N)):
        shuffle_epoch(cfg.seed, index, epoch, perm)
        order.extend(perm.tolist())
    return ref.ref_sgd(theta0, X, y, act, loss, cfg.lr, cfg.steps, order[: cfg.steps])


@pytest.mark.parametrize("opt,act,fused", [("gd", "sigmoid", True), ("adam", "sigmoid", True), ("sgd", "sigmoid", False),
                                           ("gd", "relu", True), ("adam", "tanh", True),
                                           ("gd", "sigmoid", False), ("adam", "tanh", False)])
def test_trajectories_match_reference(opt, act, fused, paper10, monkeypatch):
    if not fused:       # the general pass-then-decide path (datasets of more than 16 points)
        monkeypatch.setattr("badminima.engine.train.run.fused_points", lambda opt, n, hidden=1: 0)
    cfg = make_cfg(paper10, optimizer=opt, activation=act, lr=0.05 if opt != "adam" else 0.01,
                   steps=60, early_exit=False, networks=5, seed=11)
    res = train_range(cfg, paper10.x, paper10.y, 0, 5, keep_init=True)
    assert np.all(res["steps"] == 60)
    for k in range(5):
        expect = _reference_run(opt, res["init_weights"][k], paper10.x, paper10.y, act, "xent", cfg, k)
        np.testing.assert_allclose(res["weights"][k], expect, rtol=1e-9, atol=1e-12)


def test_regression_trajectory_matches_reference(relu_d1):
    cfg = make_cfg(relu_d1, activation="relu", hidden=2, lr=0.01, steps=40, early_exit=False, networks=4)
    res = train_range(cfg, relu_d1.x, relu_d1.y, 0, 4, keep_init=True)
    for k in range(4):
        expect = ref.ref_gd(res["init_weights"][k], relu_d1.x, relu_d1.y, "relu", "mse", cfg.lr, cfg.steps)
        np.testing.assert_allclose(res["weights"][k], expect, rtol=1e-9, atol=1e-12)


def _concat(results):
    return {k: np.concatenate([r[k] for r in results]) for k in results[0]}


@pytest.mark.parametrize("opt", ["gd", "adam", "sgd"])
def test_bit_identical_across_threads_and_chunks(opt, xor):
    cfg = make_cfg(xor, optimizer=opt, lr=0.5 if opt != "adam" else 0.05, steps=400, networks=300)
    a = _concat(list(train(cfg, xor.x, xor.y, chunk=300, threads=1)))
    b = _concat(list(train(cfg, xor.x, xor.y, chunk=37, threads=2)))
    c = _concat(list(train(cfg, xor.x, xor.y, start=100, stop=300, chunk=64, threads=2)))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        np.testing.assert_array_equal(a[key][100:], c[key], err_msg=key)


@pytest.mark.parametrize("opt,act,early", [("gd", "sigmoid", False), ("gd", "sigmoid", True),
                                           ("adam", "relu", False), ("adam", "tanh", True)])
def test_fused_step_equals_the_unfused_pass(opt, act, early, paper10, monkeypatch):
    # small datasets train through the fused step (points unrolled; no stop test while no lane can
    # stop); the general pass-then-decide path computes the same statements in the same order, every
    # multiply-add an explicit fma (codegen.contract), so the two round alike: equal bit for bit
    def run(steps, n):
        cfg = make_cfg(paper10, optimizer=opt, activation=act, lr=0.3 if opt == "gd" else 0.05, steps=steps,
                       networks=n, early_exit=early)
        return train_range(cfg, paper10.x, paper10.y, 0, n)
    fused = run(700, 200)
    monkeypatch.setattr("badminima.engine.train.run.fused_points", lambda opt, n, hidden=1: 0)
    plain = run(700, 200)
    for k in fused:
        np.testing.assert_array_equal(fused[k], plain[k], err_msg=k)
    assert len(set(fused["outcome"].tolist())) > 1


def test_a_diverging_lane_stops_at_the_same_step_on_both_paths(relu_d1, monkeypatch):
    """Neither path tests a lane between a block's stop tests, so a lane whose values stop being finite
    is stopped at the block's last step (docs/outcomes.md), with the same non-finite weights, fused or
    not (the general pass once stopped it at the exact step)."""
    cfg = make_cfg(relu_d1, hidden=2, activation="relu", lr=0.5, steps=100, networks=48, finish_horizon=0)
    fused = train_range(cfg, relu_d1.x, relu_d1.y, 0, 48)
    monkeypatch.setattr("badminima.engine.train.run.fused_points", lambda opt, n, hidden=1: 0)
    plain = train_range(cfg, relu_d1.x, relu_d1.y, 0, 48)
    assert (fused["outcome"] == DIVERGED).sum() >= 3
    assert set(fused["steps"][fused["outcome"] == DIVERGED] % cfg.check_every) == {cfg.check_every - 1}
    for k in fused:
        np.testing.assert_array_equal(fused[k], plain[k], err_msg=k)


@pytest.mark.parametrize("fused", [True, False])
def test_a_block_longer_than_the_poll_interval_runs_in_pieces_alike(fused, xor, monkeypatch):
    """A block of steps longer than POLL (check_every beyond it) runs in pieces with a look at the stop
    flag between them: every result, solved_at of networks first solved in a later piece included, is
    the one of blocks of 16 steps."""
    from badminima.engine.train.run import kernel_for
    if not fused:
        monkeypatch.setattr("badminima.engine.train.run.fused_points", lambda opt, n, hidden=1: 0)
    steps = 5000
    runs = [train_range(make_cfg(xor, steps=steps, networks=128, lr=0.1, early_exit=False, check_every=ce),
                        xor.x, xor.y, 0, 128) for ce in (16, 10 ** 12)]
    poll = kernel_for(make_cfg(xor, steps=steps), 2, 4).POLL
    assert poll < steps and ((runs[0]["solved_at"] > poll) & (runs[0]["solved_at"] < steps)).sum() >= 3
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k], err_msg=k)


def test_solved_at_is_the_first_step_with_zero_training_error(xor):
    cfg = make_cfg(xor, steps=600, networks=64, early_exit=False)
    res = train_range(cfg, xor.x, xor.y, 0, 64, keep_init=True)
    assert (res["solved_at"] >= 0).sum() >= 5
    for k in range(12):
        traj = ref.ref_gd(res["init_weights"][k], xor.x, xor.y, "sigmoid", "xent", cfg.lr, cfg.steps, record=True)
        hits = [t for t, th in enumerate(traj) if ref.ref_accuracy(th, xor.x, xor.y, "sigmoid") == 1.0]
        assert res["solved_at"][k] == (hits[0] if hits else -1)


@pytest.mark.parametrize("act,certified", [("sigmoid", True), ("tanh", True), ("relu", False)])
def test_early_exit_changes_no_outcome(act, certified, xor):
    # early exit stops a network only when its end state is already known: every result but the
    # steps taken is the same as running every network to the end of its budget
    kw = dict(activation=act, steps=3000, networks=256, lr=0.5 if act == "sigmoid" else 0.1)
    early = train_range(make_cfg(xor, **kw), xor.x, xor.y, 0, 256)
    full = train_range(make_cfg(xor, early_exit=False, **kw), xor.x, xor.y, 0, 256)
    for key in ("outcome", "solved_at"):
        np.testing.assert_array_equal(early[key], full[key], err_msg=key)
    stopped = early["steps"] < kw["steps"]
    assert stopped.any() == certified
    assert np.all(early["outcome"][stopped] == SOLVED)
    assert (full["outcome"] == SOLVED).any() and (full["outcome"] != SOLVED).any()


def test_certified_networks_stay_solved_in_exact_arithmetic(xor):
    # the finality certificate claims that plain GD (float64 reference) from the stop point keeps
    # 100% accuracy, and a loss never above the stop loss, for every remaining step of the budget
    cfg = make_cfg(xor, steps=3000, networks=128)
    res = train_range(cfg, xor.x, xor.y, 0, 128)
    stopped = np.flatnonzero((res["outcome"] == SOLVED) & (res["steps"] < cfg.steps))
    assert len(stopped) >= 5
    for k in stopped[:5]:
        traj = ref.ref_gd(res["weights"][k], xor.x, xor.y, "sigmoid", "xent", cfg.lr,
                          cfg.steps - int(res["steps"][k]), record=True)
        losses = [ref.ref_loss(th, xor.x, xor.y, "sigmoid", "xent") for th in traj]
        assert all(ref.ref_accuracy(th, xor.x, xor.y, "sigmoid") == 1.0 for th in traj)
        assert max(losses) <= losses[0] * (1 + 1e-9) < np.log(2) / 4


def test_float32_agrees_with_float64_on_solved(xor):
    kw = dict(steps=2000, networks=1000)
    r64 = train_range(make_cfg(xor, **kw), xor.x, xor.y, 0, 1000)
    r32 = train_range(make_cfg(xor, dtype="float32", **kw), xor.x, xor.y, 0, 1000)
    agree = np.mean((r64["outcome"] == SOLVED) == (r32["outcome"] == SOLVED))
    assert agree > 0.98


def _newton_critical(theta, X, y, act="sigmoid"):
    from badminima.engine.core import model as M
    from badminima.engine.core.names import ACTIVATIONS, XENT
    th = theta.copy()
    for _ in range(30):
        _, _, g = M.evaluate(th, X, y, 2, 2, ACTIVATIONS[act], XENT)
        th -= np.linalg.solve(M.hessian(th, X, y, 2, 2, ACTIVATIONS[act], XENT), g)
    return th


def test_theorem1_neighbourhood_is_a_local_minimum(paper10):
    th = _newton_critical(paper10.points["W_hat"].theta, paper10.x, paper10.y)
    cfg = make_cfg(paper10, lr=0.1, steps=100, networks=1)
    res = train_range(cfg, paper10.x, paper10.y, 0, 1, theta0=th[None])
    assert res["outcome"][0] == LOCAL_MINIMUM and res["min_eig"][0] > 0
    assert res["accuracy"][0] == 0.4


def test_saddle_and_flat_points_are_told_apart(xor):
    # v = 0, w_j = +-(1, -1), b = c = 0: the gradient vanishes by symmetry on XOR, and the
    # (v_j, w_j) block [[*, q], [q, 0]] with q != 0 makes the Hessian indefinite -> saddle.
    th = np.array([0.0, 1, -1, 0, 0, -1, 1, 0, 0])
    cfg = make_cfg(xor, steps=10, networks=2)
    res = train_range(cfg, xor.x, xor.y, 0, 2, theta0=np.stack([th, np.zeros(9)]))
    assert np.all(res["grad_norm"] < 1e-12)
    assert res["outcome"][0] == SADDLE and res["min_eig"][0] < 0
    # all-zero weights: the Hessian is only positive semi-definite (zero eigenvalues) -> flat
    assert res["outcome"][1] == FLAT and abs(res["min_eig"][1]) <= cfg.eig_tol


def test_solved_xor_net(xor):
    th = np.array([10.0, 5, 5, -2.5, -10, 5, 5, -7.5, -5])      # OR minus AND
    res = train_range(make_cfg(xor, steps=10, networks=1), xor.x, xor.y, 0, 1, theta0=th[None])
    assert res["outcome"][0] == SOLVED and res["solved_at"][0] == 0 and res["accuracy"][0] == 1.0


def test_saturated_plateau_is_drifting(paper10):
    w0 = paper10.points["W0"].theta
    cfg = make_cfg(paper10, lr=0.5, steps=5000, networks=1)
    res = train_range(cfg, paper10.x, paper10.y, 0, 1, theta0=w0[None])
    assert res["outcome"][0] == DRIFTING
    assert np.abs(res["weights"][0]).max() >= np.abs(w0).max()


def test_exploding_learning_rate_diverges(relu_d1):
    cfg = make_cfg(relu_d1, activation="relu", lr=1e3, steps=500, networks=32)
    res = train_range(cfg, relu_d1.x, relu_d1.y, 0, 32)
    assert np.mean(res["outcome"] == DIVERGED) > 0.5
    ok = make_cfg(relu_d1, activation="relu", lr=1e-3, steps=500, networks=32)
    assert not np.any(train_range(ok, relu_d1.x, relu_d1.y, 0, 32)["outcome"] == DIVERGED)


def test_out_of_steps_when_budget_is_tiny(xor):
    res = train_range(make_cfg(xor, steps=3, networks=64), xor.x, xor.y, 0, 64)
    assert np.all(res["steps"] <= 3)
    assert np.all((res["outcome"] == SOLVED) | (res["outcome"] == OUT_OF_STEPS))


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_large_variants_vectorize(opt):
    # the lane loops must stay SIMD: a loop over several arrays once made LLVM give up ("too many
    # memory checks") on h = 7 Adam, silently 5x slower.  A packed divide in the step's machine
    # code shows the loop was vectorized (any x86 vector width; scalar code has divsd only).
    import numba
    from badminima.engine.train.codegen import fused_points
    mod = load_kernel_module(2, 7, "sigmoid", "xent", opt, "float64", fused_points(opt, 4))
    name = "_sgd_step" if opt == "sgd" else "_step"
    opts = {k: v for k, v in getattr(mod, name).targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**opts)(getattr(mod, name).py_func)      # uncached: its assembly can be read
    N, B = 4, mod.B
    X, y, st, cnt = np.zeros((N, 2)), np.zeros(N), np.zeros(mod.R * B), np.zeros(B, np.int64)
    if opt == "sgd":
        fresh(X, y, st, np.zeros((B, N), np.int64), 0, cnt, 10, np.zeros(7))
    else:
        fresh(X, y, st, cnt, N, 10, np.zeros(7), 0)
    asm = fresh.inspect_asm(fresh.signatures[0])
    assert "divpd" in asm
    # and its frame is realigned to 64 bytes, so 512-bit spills never straddle cache lines (stackalign.py)
    assert re.search(r"andq\s+\$-64, %rsp", asm)


def test_fetch_add_hands_out_every_index_once_across_threads():
    """The work-stealing counter (engine/core/atomic.py): four threads drawing concurrently get each index once."""
    import threading

    from badminima.engine.core.atomic import fetch_add
    from badminima.engine.core.jit import njit

    @njit(cache=False)
    def draw(counter, hits, hi):
        while True:
            k = fetch_add(counter, 0, 1)
            if k >= hi:
                return
            hits[k] += 1

    counter = np.zeros(1, np.int64)
    hits = np.zeros(200_000, np.int64)
    threads = [threading.Thread(target=draw, args=(counter, hits, hits.size)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (hits == 1).all() and counter[0] == hits.size + 4


def test_a_freshly_compiled_kernel_equals_the_cached_one(tmp_path):
    # Numba executes a freshly compiled caller with its callees' own code but caches it with copies
    # optimised in its context; with fast-math flags the two rounded differently (FMA contraction in
    # float32 ReLU Adam from the second step on; the finisher's float64 model code), so nothing is
    # built with fast-math (engine/core/jit.py).  A run that compiles must equal a run that loads.
    import subprocess
    import sys
    code = ("import sys, numpy as np; sys.path.insert(0, %r); from conftest import make_cfg; "
            "from badminima.engine.data.datasets import load_dataset; from badminima.engine.train.run import train_range; "
            "ds = load_dataset('fxor'); cfg = make_cfg(ds, activation='relu', optimizer='adam', lr=0.01, steps=300, "
            "networks=128, dtype='float32'); r = train_range(cfg, ds.x, ds.y, 0, 128); "
            "np.savez(sys.argv[1], **r)") % str(Path(__file__).parent)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("BADMINIMA_KERNEL_DIR", None)
    for name in ("cold", "warm"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{name}.npz")], env=env, check=True)
    cold, warm = np.load(tmp_path / "cold.npz"), np.load(tmp_path / "warm.npz")
    assert (cold["finish_iters"] > 0).any()
    for key in cold.files:
        np.testing.assert_array_equal(cold[key], warm[key], err_msg=key)


def test_the_fused_step_unrolls_at_most_112_units_times_points():
    """Every configuration of the paper (h <= 7, at most 16 points) keeps its fused kernel; wider ones
    fall back to the general pass before the unrolled step stops compiling (h = 16 on 16 points, ReLU
    Adam: RecursionError in Numba's SSA pass; docs/training.md, Limits)."""
    from badminima.engine.train.codegen import FUSE_MAX_UNITS, fused_points
    assert FUSE_MAX_UNITS == 112
    assert fused_points("gd", 16, hidden=7) == 16 and fused_points("adam", 10, hidden=7) == 10
    assert fused_points("gd", 16, hidden=8) == 0 and fused_points("adam", 4, hidden=29) == 0
    assert fused_points("gd", 4, hidden=28) == 4 and fused_points("sgd", 4, hidden=2) == 0


def test_branchless_keeps_every_value():
    """The rewrite that keeps Numba's compile time down (conditional expressions -> a select call,
    `and`/`or` of booleans -> `&`/`|`) gives the same value as the original statement everywhere."""
    import itertools
    from badminima.engine.train.codegen import branchless
    lines = ["r = a if a > b else b", "r = ONE if (a > 0) == yp else 0.0", "r = a > 0 and b < 1",
             "r = (a > 0 and b > 0) or not yp", "r = a - lr * b if a > b and yp else a",
             "r = 1 if a > 0 and b > 0 or yp else (2 if b > a else 3)"]
    out = branchless(lines, "sel")
    assert all(" if " not in ln and " and " not in ln and " or " not in ln for ln in out), out
    for a, b, yp in itertools.product((-1.5, 0.0, 0.5, 2.0), (-1.0, 0.0, 0.75), (True, False)):
        for src, new in zip(lines, out):
            env = dict(a=a, b=b, yp=yp, ONE=1.0, lr=0.1, sel=lambda c, x, y: x if c else y)
            exec(src, dict(env), ref := {})
            exec(new, dict(env), got := {})
            assert got["r"] == ref["r"] and type(got["r"]) is type(ref["r"]), (src, new, a, b, yp)


def test_select_is_the_conditional_expression_in_value_and_type():
    """engine/core/fastexp.select, the intrinsic the generated code calls for `a if c else b`, gives what
    the conditional expression gives in jitted code: the value, and the type Numba unifies the two to
    (float32 stays float32; float32 with an int is float64, as for the expression)."""
    from badminima.engine.core.fastexp import select
    from badminima.engine.core.jit import njit

    @njit(cache=False)
    def both(c, a, b):
        return select(c, a, b), (a if c else b)
    cases = [(np.float32(1.5), np.float32(-2.0)), (1.5, -2.0), (np.float32(1.5), 3), (np.int64(7), 0),
             (np.float64(np.nan), np.float64(-0.0)), (np.int8(1), np.int64(-5))]
    for c in (True, False, np.int64(0), np.int64(3)):
        for a, b in cases:
            got, ref = both(c, a, b)
            assert type(got) is type(ref) and (got == ref or (got != got and ref != ref)), (c, a, b, got, ref)
            assert np.signbit(got) == np.signbit(ref)

    @njit(cache=False)
    def arrays(c, a, b):
        return select(c, a, b)
    with pytest.raises(Exception, match="select"):        # scalars only: no reference taken on an array
        arrays(True, np.ones(3), np.zeros(3))


def test_contract_turns_every_multiply_add_into_one_fma():
    """contract (codegen) rewrites c + a*b, c - a*b, a*b - c and x += / -= a*b as fma calls: with an
    fma that rounds twice (a*b, then + c) every value equals the original statement's bit for bit, and
    with an exact one it is a*b + c correctly rounded."""
    import itertools
    from fractions import Fraction
    from badminima.engine.train.codegen import contract
    lines = ["r = c + a * b", "r = c - a * b", "r = a * b - c", "r = a * b + c * d", "r = c + a * b + d * c",
             "r = -a * b + c", "r = (a - b) * (a - b) + c", "r += a * b", "r -= a * b * d",
             "r = a * b * d", "r = c + d"]
    out = contract(lines, "fma")
    assert [ln.count("fma(") for ln in out] == [1, 1, 1, 1, 2, 1, 1, 1, 1, 0, 0], out
    exact = lambda x, y, z: float(Fraction(x) * Fraction(y) + Fraction(z))
    vals = (0.1, -1.7, 3.0e-8, 12345.678, 1.0 / 3.0)
    for a, b, c, d in itertools.product(vals, repeat=4):
        for src, new in zip(lines, out):
            env = dict(a=a, b=b, c=c, d=d)
            exec(src, dict(env), ref := {"r": c})
            exec(new, dict(env, fma=lambda x, y, z: x * y + z), got := {"r": c})
            assert got["r"] == ref["r"], (src, new, a, b, c, d)
        got = {}
        exec(out[0], dict(a=a, b=b, c=c, d=d, fma=exact), got)
        assert got["r"] == exact(a, b, c)


@pytest.mark.parametrize("variant", [(2, 7, "relu", "xent", "adam", "float32", 4), (2, 2, "sigmoid", "xent", "gd", "float64", 0),
                                     (2, 2, "tanh", "xent", "sgd", "float32", 0), (1, 3, "relu", "mse", "gd", "float64", 10)])
def test_generated_steps_have_no_branches(variant):
    """Every conditional expression of the generated step, stop test and certificate is a select call
    (branchless above); run_task keeps its control flow."""
    import ast
    from badminima.engine.train.codegen import render
    tree = ast.parse(render(*variant))
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name not in ("run_task", "_sel")):
        found = [ast.unparse(n) for n in ast.walk(fn) if isinstance(n, (ast.IfExp, ast.BoolOp))]
        assert not found, (fn.name, found[:3])


def test_single_assignment_keeps_every_value():
    """single_assignment (codegen) gives each redefinition a new name and renames the loads after it:
    straight-line code computes the same values, and no name is assigned twice."""
    import ast
    import itertools
    from badminima.engine.train.codegen import single_assignment
    lines = ["g = ZERO", "m = ZERO", "g += a * b", "g = fma(a, c, g)", "t = g - a", "g -= t / 3.0", "st[0] = g",
             "nt = fma(-lr, g, t)", "st[1] = nt", "nt = fma(-lr, t, g)", "st[2] = nt", "m = max(m, abs(g))",
             "m = max(m, abs(nt))", "st[3] = m"]
    out = single_assignment(lines)
    names = [ast.parse(ln).body[0].targets[0].id for ln in out if isinstance(ast.parse(ln).body[0].targets[0], ast.Name)]
    assert len(names) == len(set(names)), out
    fma = lambda x, y, z: x * y + z
    for a, b, c in itertools.product((0.1, -1.7, 3.0e-8), (2.5, -0.3), (1.0 / 3.0, 7.0)):
        env = dict(a=a, b=b, c=c, lr=0.5, ZERO=0.0, fma=fma, m=0.0, max=max, abs=abs)
        ref, got = dict(env, st=[0.0] * 4), dict(env, st=[0.0] * 4)
        exec("\n".join(lines), ref)
        exec("\n".join(out), got)
        assert got["st"] == ref["st"], (a, b, c)
    with pytest.raises(ValueError, match="read before"):        # a loop-carried value: renaming would change it
        single_assignment(["t = g + 1.0", "g = t * 2.0"])


@pytest.mark.parametrize("variant", [(2, 7, "relu", "xent", "adam", "float32", 4), (1, 3, "relu", "mse", "gd", "float64", 10)])
def test_the_fused_steps_assign_each_local_once(variant):
    """The fused step's lane loop is in single-assignment form, so that Numba's SSA reconstruction has
    nothing to do there (it took 0.9 s of the h = 7 ReLU Adam variant's 6.6 s)."""
    import ast
    from collections import Counter
    from badminima.engine.train.codegen import render
    tree = ast.parse(render(*variant))
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("_step", "_fast_steps")):
        loop = max((n for n in ast.walk(fn) if isinstance(n, ast.For) and ast.unparse(n.iter) == "range(B)"),
                   key=lambda n: len(n.body))          # the lane loop of the step
        targets = Counter(t.id for n in loop.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name))
        assert not [n for n in loop.body if isinstance(n, ast.AugAssign)] and max(targets.values()) == 1, fn.name
