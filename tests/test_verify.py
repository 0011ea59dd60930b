"""`badminima verify` (engine/paper/checks.py): every computed value against an independent slow computation.

The independent side is tests/reference.py (loop-based NumPy / mpmath, shares no code with the engine),
engine/certify/smooth.py's Arb Newton for theta*, closed forms worked out by hand, and plain NumPy for
the ReLU networks of Theorem 2.
"""
import json
import math
import sys
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from click.testing import CliRunner

from badminima.cli import main
from badminima.engine.paper import checks as pc
from badminima.engine.data.datasets import load_dataset, parse_exact

try:  # tests/ may or may not be a package
    from badminima.tests import reference as ref
except ImportError:
    import reference as ref


@pytest.fixture(scope="module")
def checks():
    return {c.id: c for c in pc.run_checks()}


@pytest.fixture(scope="module")
def paper10():
    return load_dataset("paper10")


def test_every_row_has_a_known_verdict_and_the_expected_findings(checks):
    assert all(c.verdict in pc.VERDICTS for c in checks.values())
    assert not [c for c in checks.values() if c.verdict == pc.UNAVAILABLE]
    expect = {
        "thm1.loss": pc.CORRECTED, "thm1.hessian_w_hat": pc.DISAGREES, "thm1.hessian_mp": pc.DISAGREES,
        "thm1.hessian_star": pc.DISAGREES, "thm1.local_minimum": pc.CORRECTED, "thm1.certificate": pc.CORRECTED,
        "w0.loss": pc.DISAGREES, "w0.likelihood": pc.CORRECTED, "w0.flow": pc.CORRECTED,
        "remark2.flow": pc.CORRECTED, "prop1.loss": pc.AGREES, "prop1.local_minimum": pc.AGREES,
        "remark5.manifold": pc.AGREES, "prop2.global_printed": pc.DISAGREES, "prop2.global": pc.CORRECTED,
        "prop2.local_printed": pc.DISAGREES, "prop2.local": pc.CORRECTED, "prop3.order": pc.AGREES,
        "thm2.i_as_stated": pc.DISAGREES, "thm2.i_corrected": pc.CORRECTED, "thm2.ii_k2": pc.AGREES,
        "thm2.i_k3_as_stated": pc.DISAGREES, "thm2.i_k3_corrected": pc.CORRECTED,
        "thm2.ii_k3_printed": pc.DISAGREES, "thm2.ii_k3_corrected": pc.CORRECTED, "thm2.lemma2": pc.AGREES,
    }
    assert {k: checks[k].verdict for k in expect} == expect


def test_rounds_to():
    assert pc.rounds_to(0.5777378449, "0.577738")
    assert not pc.rounds_to(0.3819124729, "0.381913")
    assert pc.rounds_to(Fraction(2, 5), "0.4") and pc.rounds_to(mpmath.mpf("0.68255479"), "0.682555")


# ------------------------------------------------------------------------------ paper10 points

@pytest.mark.parametrize("name,tag", [("W_hat", "thm1"), ("W0", "w0"), ("remark2", "remark2")])
def test_point_values_match_the_mpmath_reference(checks, paper10, name, tag):
    pt = paper10.points[name]
    L = ref.mp_loss(pt.theta_text, paper10.x_text, paper10.y_text, "sigmoid", "xent", dps=50)
    with mpmath.workdps(50):
        assert abs(mpmath.mpf(checks[f"{tag}.loss"].values["loss_mp"]) - L) < mpmath.mpf(10) ** -40
    assert abs(checks[f"{tag}.likelihood"].values["likelihood"] - float(mpmath.exp(-L))) < 1e-15
    assert checks[f"{tag}.accuracy"].values["accuracy"] == ref.ref_accuracy(pt.theta, paper10.x, paper10.y, "sigmoid")
    lit = np.array([float(parse_exact(t)) for t in pc.literal_theta(pt)])
    assert checks[f"{tag}.loss"].values["loss_literal"] == pytest.approx(
        ref.ref_loss(lit, paper10.x, paper10.y, "sigmoid", "xent"), rel=1e-12)


def test_gradient_and_hessian_spectra_match_the_reference(checks, paper10):
    th = paper10.points["W_hat"].theta
    g = ref.ref_grad(th, paper10.x, paper10.y, "sigmoid", "xent")
    assert checks["thm1.gradient"].values["grad_norm"] == pytest.approx(np.linalg.norm(g), rel=1e-9)
    ev = 10 * np.linalg.eigvalsh(ref.ref_hessian(th, paper10.x, paper10.y, "sigmoid", "xent"))
    assert np.allclose(checks["thm1.hessian_w_hat"].values["eigenvalues"], ev, rtol=1e-10, atol=1e-13)
    Hmp = ref.mp_hessian(paper10.points["W_hat"].theta_text, paper10.x_text, paper10.y_text, "sigmoid", "xent")
    with mpmath.workdps(50):
        evmp = [10 * e for e in ref.mp_eigenvalues(Hmp)]
        got = [mpmath.mpf(e) for e in checks["thm1.hessian_mp"].values["eigenvalues"]]
        assert max(abs(a - b) for a, b in zip(got, evmp)) < mpmath.mpf(10) ** -35
    # the finding: the printed spectrum is not the computed one (smallest eigenvalue 0.00194 vs 0.00078)
    assert abs(float(got[0]) - 0.0019406) < 1e-6 and abs(float(got[-1]) - 5.78827) < 1e-5


def test_critical_point_matches_the_arb_newton_of_the_certifier(checks, paper10):
    from badminima.engine.certify.smooth import certify_smooth
    v = checks["thm1.critical_point"].values
    rep = certify_smooth(paper10.x_text, paper10.y_text, paper10.points["W_hat"].theta_text)
    with mpmath.workdps(60):
        star = [mpmath.mpf(t) for t in v["theta_star"]]
        other = [mpmath.mpf(t) for t in rep["center"]]
        assert max(abs(a - b) for a, b in zip(star, other)) < mpmath.mpf(10) ** -20
        g = ref.mp_grad(v["theta_star"], paper10.x_text, paper10.y_text, "sigmoid", "xent", dps=60)
        assert max(abs(t) for t in g) < mpmath.mpf(10) ** -40
    assert 3e-5 < v["distance"] < 4e-5
    evs = [10 * e for e in ref.mp_eigenvalues(ref.mp_hessian(v["theta_star"], paper10.x_text,
                                                             paper10.y_text, "sigmoid", "xent"))]
    assert all(e > 0 for e in evs)
    assert checks["thm1.local_minimum"].values["min_eigenvalue_sum"] == pytest.approx(float(evs[0]), rel=1e-12)


def test_w0_and_remark2_flows_reach_the_hand_computed_plateaus(checks, paper10):
    # W0: x2,x8,x9 share p = 1/3 and x3,x4,x7 share p = 2/3, the rest saturate correctly
    w0 = (4 * math.log(1.5) + 2 * math.log(3)) / 10
    # Remark 2: x2,x5,x8,x9,x10 at p = 2/5 and x4,x7 at p = 1/2
    r2 = (2 * math.log(5 / 2) + 3 * math.log(5 / 3) + 2 * math.log(2)) / 10
    for tag, name, value in (("w0", "W0", w0), ("remark2", "remark2", r2)):
        v = checks[f"{tag}.flow"].values
        assert v["status"] == "drifting"
        assert v["limit"]["loss"] == pytest.approx(value, abs=1e-15)
        fl, _ = pc._paper10_flow(name)
        end = fl["theta"]
        # the end point, evaluated by the independent reference: on the plateau, gradient vanished
        assert ref.ref_loss(end, paper10.x, paper10.y, "sigmoid", "xent") == pytest.approx(value, abs=1e-11)
        assert np.linalg.norm(ref.ref_grad(end, paper10.x, paper10.y, "sigmoid", "xent")) < 1e-10
        assert np.abs(end).max() > np.abs(paper10.points[name].theta).max() + 15      # the weights ran away
        start = ref.ref_loss(paper10.points[name].theta, paper10.x, paper10.y, "sigmoid", "xent")
        assert value < start
    assert pc._paper10_flow("W_hat")[0]["status"] == "finite"


def test_flow_status_on_toy_problems():
    """Contradicting labels on repeated points: a finite minimum (every p = 1/2).  Separable data: drift."""
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    fl = pc.follow_flow(np.full(5, 0.3), X, np.array([0.0, 1.0, 0.0, 1.0]), 1, t_max=1e10)
    assert fl["status"] == "finite" and fl["loss"] == pytest.approx(math.log(2), abs=1e-12)
    fl = pc.follow_flow(np.full(5, 0.3), X[[0, 2]], np.array([0.0, 1.0]), 1, t_max=1e10)
    assert fl["status"] == "drifting" and fl["loss"] < 1e-3
    assert pc.plateau_limit(fl["theta"], X[[0, 2]], np.array([0.0, 1.0]), 1)["groups"] == []


# ------------------------------------------------------------------------------ ReLU regression

def _np_relu_sse(theta, X, Y):
    h = (len(theta) - 1) // 3
    f = np.full(len(X), float(theta[-1]))
    for j in range(h):
        f += float(theta[3 * j]) * np.maximum(float(theta[3 * j + 1]) * X + float(theta[3 * j + 2]), 0)
    return float(np.sum((f - Y) ** 2))


@pytest.mark.parametrize("name", ["relu_d1", "relu_d2", "relu_d3"])
def test_relu_losses_match_float_reference(name):
    ds = load_dataset(name)
    xs, ys = pc._relu_data(ds)
    for pname, pt in ds.points.items():
        exact = pc._relu_loss(xs, ys, pc._theta_q(pt))
        mean = ref.ref_loss(pt.theta, ds.x, ds.y, "relu", "mse")
        assert float(exact) == pytest.approx(ds.n * mean, abs=1e-12), pname


def test_relu_minimality_verdicts_match_random_perturbations(checks):
    """Local minima: no perturbation lowers the loss; the printed Prop 2 point: some does."""
    rng = np.random.default_rng(1)
    for name, pname, is_min in [("relu_d1", "prop1", True), ("relu_d2", "prop2_local", True),
                                ("relu_d2", "prop2_local_as_printed", False), ("relu_d3", "prop3_better", True),
                                ("relu_d3", "prop3_worse", True)]:
        ds = load_dataset(name)
        th = np.array(ds.points[pname].theta)
        X, Y = ds.x[:, 0], ds.y
        L0 = _np_relu_sse(th, X, Y)
        drops = min(_np_relu_sse(th + rng.uniform(-1e-4, 1e-4, th.size), X, Y) - L0 for _ in range(3000))
        assert (drops > -1e-9) == is_min, pname
    assert checks["prop1.loss"].values["loss"] == "18" and checks["prop2.global_printed"].values["loss"] == "29"


def test_remark5_curve_and_gram_determinants(checks):
    ds = load_dataset("relu_d1")
    for t in (0.5, 2.0, 3.0, 7.0):
        assert _np_relu_sse([1 / t, t, -3 * t, 0.0], ds.x[:, 0], ds.y) == pytest.approx(18.0)
    # the reduced Hessians (x3 active / inactive) by NumPy: full rank
    rows = {True: [[5, 1, 1], [4, 1, 1], [3, 1, 1], [0, 0, 1], [0, 0, 1]],
            False: [[5, 1, 1], [4, 1, 1], [0, 0, 1], [0, 0, 1], [0, 0, 1]]}
    dets = checks["remark5.manifold"].values["gram_dets"]
    for active, key in ((True, "x3 active"), (False, "x3 inactive")):
        A = np.array(rows[active], float)
        assert float(Fraction(dets[key])) == pytest.approx(np.linalg.det(A.T @ A))


# ------------------------------------------------------------------------------ Theorem 2

def _np_deep(layers, X):
    h = np.asarray(X, float)
    for n, (W, b) in enumerate(layers):
        h = h @ np.array(W, float).T + np.array(b, float)
        if n < len(layers) - 1:
            h = np.maximum(h, 0)
    return h[:, 0]


@pytest.mark.parametrize("k,shift,offset", [(2, False, 0), (3, False, 0), (3, True, -10), (4, True, -10),
                                            (3, False, -10)])
def test_theorem2_construction_against_numpy(k, shift, offset):
    ds = load_dataset("relu_d1")
    X = [[parse_exact(r[0])] for r in ds.x_text]
    Y = [parse_exact(t) + offset for t in ds.y_text]
    layers, info = pc.theorem2_construction(X, Y, k=k, shift=shift)
    out = _np_deep(layers, [[float(x[0])] for x in X])
    exact = [pc.deep_relu_output(layers, x) for x in X]
    assert np.allclose(out, [float(e) for e in exact])
    L = float(pc.deep_relu_loss(layers, X, Y))
    yf = np.array([float(v) for v in Y])
    assert L == pytest.approx(float(np.sum((out - yf) ** 2)))
    const = float(np.sum((yf - yf.mean()) ** 2))
    works = k == 2 or shift or min(info["mu"], info["nu"]) >= 0
    assert (L < const) == works
    if works:       # outputs nu at x_r, mu elsewhere
        r = info["r"]
        assert all(e == (info["nu"] if i == r else info["mu"]) for i, e in enumerate(exact))


def test_theorem2_two_dimensional_hyperplane():
    X = [[Fraction(0), Fraction(0)], [Fraction(1), Fraction(0)], [Fraction(0), Fraction(1)], [Fraction(1), Fraction(1)]]
    Y = [Fraction(1), Fraction(0), Fraction(0), Fraction(0)]
    layers, info = pc.theorem2_construction(X, Y, k=2)
    L = pc.deep_relu_loss(layers, X, Y)
    assert L == 0 < sum((y - Fraction(1, 4)) ** 2 for y in Y)


def test_theorem2_dead_layer_rows_by_perturbation(checks):
    """(i) k = 2: with c = 0 a perturbation of c lowers the loss; with c = mean none does."""
    ds = load_dataset("relu_d1")
    X, Y = ds.x[:, 0], ds.y
    rng = np.random.default_rng(2)
    for c, is_min in ((0.0, False), (float(Y.mean()), True)):
        th = np.array([1, 1, -6, -2, 0.5, -3, 3, -1, -2, c], float)
        L0 = _np_relu_sse(th, X, Y)
        drops = min(_np_relu_sse(th + rng.uniform(-1e-3, 1e-3, th.size), X, Y) - L0 for _ in range(500))
        assert (drops > -1e-12) == is_min
    assert checks["thm2.i_corrected"].values["loss"] == "106/5"


# ------------------------------------------------------------------------------ CLI

def test_cli_verify_text_and_json(tmp_path):
    r = CliRunner().invoke(main, ["verify", "--json", str(tmp_path / "v.json")])
    assert r.exit_code == 0, r.output
    for s in ("[Theorem 1]", "[Remark 2]", "[Prop. 3]", "[Theorem 2]", "disagrees", "agrees after the"):
        assert s in r.output
    d = json.loads((tmp_path / "v.json").read_text())
    assert sum(d["summary"].values()) == len(d["checks"]) >= 35
    assert {"claim", "paper", "computed", "verdict", "note"} <= set(d["checks"][0])
    r = CliRunner().invoke(main, ["verify", "--json", "-"])
    assert r.exit_code == 0 and json.loads(r.output)["summary"] == d["summary"]
    r = CliRunner().invoke(main, ["verify", "--markdown", "--no-certify"])
    assert r.exit_code == 0 and r.output.startswith("| section |")


def test_certification_unavailable_is_a_row_not_a_crash(monkeypatch):
    monkeypatch.setitem(sys.modules, "badminima.engine.certify.smooth", None)
    monkeypatch.setitem(sys.modules, "badminima.engine.certify.relu", None)
    rows = pc.check_theorem1() + pc.check_prop1() + pc.check_theorem2()
    un = [c for c in rows if c.verdict == pc.UNAVAILABLE]
    assert {c.id for c in un} >= {"thm1.certificate", "prop1.local_minimum", "thm2.i_as_stated"}
    assert all("unavailable" in c.computed for c in un)
