"""Rigorous certification of smooth (sigmoid / tanh) minima: what must certify, and what must never."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from flint import arb

from badminima.engine.certify import smooth as cs
from badminima.engine.core import layout
from badminima.engine.data.datasets import load_dataset, parse_exact

DS = load_dataset("paper10")
X = [[parse_exact(t) for t in row] for row in DS.x_text]
Y = [parse_exact(t) for t in DS.y_text]
W_HAT = DS.points["W_hat"].theta_text
W0 = DS.points["W0"].theta_text
REMARK2 = DS.points["remark2"].theta_text

# A perfect classifier of paper10 (accuracy 1.0, mean loss 0.35582...), found by L2-regularised BFGS from
# random starts and rounded to integers; scaling (v0, v1, c) by k drives the loss to 0, so the infimum
# of the loss is 0 and W_hat (0.5777...) is far from global.
WITNESS = ["6", "-4", "4", "0", "-10", "-1", "1", "0", "2"]

# Non-degenerate saddles of the paper10 loss (Newton on |grad|^2 from random starts; float eigenvalues
# min -0.0070 / -0.0048, min |eig| 9.7e-4 / 2.2e-3).
SADDLE_1 = ["-0.7741140166929815", "-1.4825249729570955", "-1.8722366521274991", "-2.1495878667548736",
            "1.8699451306062835", "1.4295347688726945", "-3.2731104012258188", "1.4678851650778457",
            "-0.750343428868772"]
SADDLE_2 = ["-2.6084050187299157", "-0.448423022441835", "1.727625713450127", "0.5294034589817107",
            "-2.576003440873077", "-1.4758138601907747", "0.24238783401443897", "-0.769317183700712",
            "2.5712520803756376"]
# A degenerate critical point: v1 = 0 (the 2-1-1 embedding); singular Hessian, float eigenvalue -0.005.
DEGENERATE = ["-0.1832501194132449", "0.9837087259779267", "1.2319725014979033", "0.09877353400371391",
              "0", "-1.002473486943439", "-1.5429959304182483", "-1.2264050006573919",
              "0.09289303885278097"]


@pytest.fixture(scope="module")
def what():
    return cs.certify_smooth(X, Y, W_HAT)


def _float(th):
    return np.array([float(parse_exact(t)) if isinstance(t, str) else float(t) for t in th])


def test_theorem1_minimum_certifies(what):
    r = what
    assert r["certified"] and r["local_minimum"] and r["verdict"] == "strict_local_minimum"
    assert r["reason"] is None
    lo, hi = r["loss_enclosure"]
    assert lo <= hi and hi - lo < 1e-9
    assert abs(lo - 0.577738) < 5e-7                     # the paper's printed mean loss
    assert r["min_eig_lower_bound"] > 0
    assert r["box_radius"] > 0 and r["gradient_bound"] < 1e-30
    assert r["distance_from_input"] < 1e-4               # exact minimum is 3.5e-5 from the printed W_hat
    q = r["quality"]
    assert q["accuracy"] == 0.4 and q["majority_rate"] == 0.5 and not q["accuracy_above_majority"]
    assert abs(q["constant_loss"] - np.log(2)) < 1e-12 and q["loss_below_constant"]


def test_float_eigenvalues_disagree_with_printed_claims(what):
    # documented finding: the Hessian spectrum printed in Theorem 1 is not that of this loss
    ev = what["eigenvalues_float_sum"]
    assert ev[0] > 0 and abs(ev[0] - 0.00194) < 1e-4
    assert abs(ev[0] - 0.00077871497) > 1e-3


def test_not_global_with_witnesses():
    for wit in (WITNESS, W0):
        r = cs.certify_smooth(X, Y, W_HAT, witness=wit)
        assert r["certified"] and r["not_global"] and r["verdict"] == "strict_local_minimum_not_global"
        assert r["witness"]["margin_lower"] > 0.19
    # the witness really is a perfect classifier
    th = _float(WITNESS)
    W, b, v, c = layout.unpack(th, 2)
    z = (1 / (1 + np.exp(-(DS.x @ W.T + b)))) @ v + c
    assert np.all((z > 0) == (DS.y > 0.5))


def test_witness_not_lower():
    r = cs.certify_smooth(X, Y, W_HAT, witness=W_HAT)      # W_hat's own loss is above the minimum
    assert not r["certified"] and r["local_minimum"] and r["not_global"] is False
    assert r["reason"] == cs.REASON_WITNESS


def test_all_symmetric_copies_certify(what):
    copies = cs.symmetric_copies(what["center"], 2, "sigmoid")
    assert len(copies) == 8
    lo0, hi0 = what["loss_enclosure"]
    for name, th in copies:
        r = cs.certify_smooth(X, Y, th)
        assert r["certified"], name
        lo, hi = r["loss_enclosure"]
        assert lo <= hi0 + 1e-12 and lo0 <= hi + 1e-12, name
    # also from the printed (rounded) W_hat
    for name, th in cs.symmetric_copies(W_HAT, 2, "sigmoid")[1:5]:
        assert cs.certify_smooth(X, Y, th)["certified"], name


def test_tanh_reparametrisation_certifies(what):
    # sigma(a) = (1 + tanh(a/2)) / 2: the sigmoid minimum maps exactly to a tanh minimum, same loss
    m = [Fraction(s) for s in what["center"]]
    t = list(m)
    for o in (0, 4):
        for k in range(4):
            t[o + k] = m[o + k] / 2
    t[8] = m[8] + (m[0] + m[4]) / 2
    r = cs.certify_smooth(X, Y, t, activation="tanh")
    assert r["certified"]
    assert abs(r["loss_enclosure"][0] - what["loss_enclosure"][0]) < 1e-9


@pytest.mark.parametrize("name,theta", [("W0", W0), ("remark2", REMARK2)])
def test_paper_plateau_points_do_not_certify(name, theta):
    r = cs.certify_smooth(X, Y, theta)
    assert not r["certified"] and not r["local_minimum"]
    assert r["reason"] == cs.REASON_SATURATED


@pytest.mark.parametrize("theta", [SADDLE_1, SADDLE_2])
def test_saddles_are_proven_saddles(theta):
    fl = cs.float_derivs(DS.x, DS.y, _float(theta), 2, "sigmoid")
    assert np.max(np.abs(fl[1])) < 1e-12 and np.linalg.eigvalsh(fl[2])[0] < 0
    r = cs.certify_smooth(X, Y, theta)
    assert not r["certified"] and not r["local_minimum"]
    assert r["reason"] == cs.REASON_NOT_PD and r["verdict"] == "saddle"


def test_degenerate_and_zero_critical_points_do_not_certify():
    for th in (DEGENERATE, ["0"] * 9):
        fl = cs.float_derivs(DS.x, DS.y, _float(th), 2, "sigmoid")
        assert np.max(np.abs(fl[1])) < 1e-12           # critical in float
        r = cs.certify_smooth(X, Y, th)
        assert not r["certified"] and not r["local_minimum"]


def test_random_points_do_not_certify():
    rng = np.random.default_rng(12345)
    for _ in range(12):
        th = rng.normal(0, 2, 9)
        r = cs.certify_smooth(X, Y, th)
        assert not r["certified"] and not r["local_minimum"]


def test_positive_float_hessian_but_not_critical():
    th = _float(W_HAT)
    th[8] += 0.05                                 # shift c: still a PD Hessian, but a clear gradient
    fl = cs.float_derivs(DS.x, DS.y, th, 2, "sigmoid")
    assert np.linalg.eigvalsh(fl[2])[0] > 0 and np.max(np.abs(fl[1])) > 1e-3
    r = cs.certify_smooth(X, Y, th)
    assert not r["certified"] and r["reason"] == cs.REASON_NOT_CRITICAL
    # no refinement: boxes centred on the input itself; Krawczyk must fail on every box
    r = cs.certify_smooth(X, Y, th, refine=False)
    assert not r["certified"] and r["reason"] == cs.REASON_NOT_CRITICAL
    assert "Krawczyk" in r["detail"]


def test_unrefined_printed_w_hat_is_not_a_certificate_for_tiny_boxes(what):
    # the printed W_hat is 3.5e-5 from the critical point: boxes of radius <= 1e-6 around it contain no
    # critical point, and Krawczyk must say so; boxes large enough to contain it are too large for the
    # (ill-conditioned, cond ~ 3000) Hessian enclosure to contract
    for radii in (cs.DEFAULT_RADII, (1e-4,), (4e-5,)):
        r = cs.certify_smooth(X, Y, W_HAT, refine=False, radii=radii)
        assert not r["certified"] and r["reason"] == cs.REASON_NOT_CRITICAL
    # centred on the refined point (25 digits), no Newton needed
    r = cs.certify_smooth(X, Y, what["center"], refine=False)
    assert r["certified"]


def test_box_too_large_fails_honestly():
    # the minimum exists, but on a box of radius 0.05 positive definiteness cannot be proven
    r = cs.certify_smooth(X, Y, W_HAT, radii=(0.05,))
    assert not r["certified"] and r["reason"] in (cs.REASON_NOT_PD, cs.REASON_NOT_CRITICAL)


def test_krawczyk_rejects_off_center_box(what):
    m_ok = [parse_exact(s) for s in what["center"]]
    model = cs.BallModel(X, Y, 2, "sigmoid", 128)
    with cs._prec(128):
        m = [cs._arbq(q) for q in m_ok]
        _, g, H = model.evaluate(m)
        Hf = np.array([[cs._flo(H[a, b]) for b in range(9)] for a in range(9)])
        C = np.linalg.inv(Hf)
        assert cs._krawczyk(model, m, 1e-8, C, g)[0]
        shifted = [cs._arbq(q + Fraction(1, 10 ** 5)) for q in m_ok]     # 1e-5 away: no zero in a 1e-8 box
        _, g2, _ = model.evaluate(shifted)
        assert not cs._krawczyk(model, shifted, 1e-8, C, g2)[0]


def test_ball_model_matches_float_and_finite_differences():
    rng = np.random.default_rng(7)
    for d, h, act in ((2, 2, "sigmoid"), (1, 3, "tanh"), (2, 3, "sigmoid")):
        n = 6
        Xf = np.round(rng.normal(0, 1.5, (n, d)), 1)
        yf = rng.integers(0, 2, n).astype(float)
        th = rng.normal(0, 1, layout.n_params(d, h))
        xq = [[Fraction(repr(float(a))) for a in row] for row in Xf]
        yq = [Fraction(int(t)) for t in yf]
        model = cs.BallModel(xq, yq, h, act, 128)
        with cs._prec(128):
            L, g, H = model.evaluate([arb(float(t)) for t in th])
        Lf, gf, Hf = cs.float_derivs(Xf, yf, th, h, act)
        P = len(th)
        assert abs(cs._flo(L) - Lf) < 1e-12
        assert np.allclose([cs._flo(g[k, 0]) for k in range(P)], gf, atol=1e-12)
        Hb = np.array([[cs._flo(H[a, b]) for b in range(P)] for a in range(P)])
        assert np.allclose(Hb, Hf, atol=1e-12)
        eps = 1e-6
        fd = np.array([(cs.float_derivs(Xf, yf, th + eps * e, h, act)[1]
                        - cs.float_derivs(Xf, yf, th - eps * e, h, act)[1]) / (2 * eps) for e in np.eye(P)])
        assert np.allclose(Hf, fd, atol=1e-7)
        gfd = np.array([(cs.float_derivs(Xf, yf, th + eps * e, h, act)[0]
                         - cs.float_derivs(Xf, yf, th - eps * e, h, act)[0]) / (2 * eps) for e in np.eye(P)])
        assert np.allclose(gf, gfd, atol=1e-8)


def test_ball_hessian_encloses_point_hessians_on_box(what):
    m = [parse_exact(s) for s in what["center"]]
    model = cs.BallModel(X, Y, 2, "sigmoid", 128)
    rng = np.random.default_rng(3)
    r = 1e-3
    with cs._prec(128):
        Xb = [arb(cs._arbq(q), r) for q in m]
        _, gX, HX = model.evaluate(Xb)
        for _ in range(5):
            pt = [cs._arbq(q + Fraction(float(u))) for q, u in zip(m, rng.uniform(-r, r, 9))]
            _, gp, Hp = model.evaluate(pt)
            assert all(gX[k, 0].contains(gp[k, 0]) for k in range(9))
            assert all(HX[a, b].contains(Hp[a, b]) for a in range(9) for b in range(9))


def test_cross_check_agrees_and_saddle_still_fails():
    r = cs.certify_smooth(X, Y, W_HAT, witness=WITNESS, cross_check=True)
    assert r["certified"]
    cc = r["cross_check"]
    assert cc["ok"] and cc["krawczyk"] and cc["positive_definite"] and cc["witness_lower"]
    lo, hi = r["loss_enclosure"]
    assert cc["loss_enclosure"][0] <= hi and lo <= cc["loss_enclosure"][1]
    r = cs.certify_smooth(X, Y, SADDLE_1, cross_check=True)
    assert not r["certified"]


def test_cross_check_alone_rejects_wrong_box(what):
    m = [parse_exact(s) for s in what["center"]]
    shifted = [q + Fraction(1, 10 ** 4) for q in m]
    cc = cs.cross_check_iv(X, Y, 2, "sigmoid", shifted, 1e-8)
    assert not cc["ok"] and not cc["krawczyk"]


def test_rounding_study(what):
    r = cs.certify_smooth(X, Y, W_HAT, rounding=True)
    ro = r["rounding"]
    assert ro["data_decimals"] == 1
    assert ro["coarsest_decimals"] == 1                 # integer data: the minimum disappears (a fold)
    assert ro["by_decimals"]["0"]["certified"] is False


# d-h-1 beyond 2-2-1: soft labels near a teacher network give finite minima
GENERAL = [
    ("tanh", [["-2.3", "0.3"], ["1.3", "-0.7"], ["2.0", "-1.2"], ["2.6", "0.2"], ["0.4", "0.9"],
              ["0.5", "2.8"], ["3.3", "0.8"], ["-0.2", "-1.8"], ["-1.1", "0.0"], ["-0.2", "-0.1"],
              ["0.0", "0.7"], ["-2.0", "-1.5"], ["1.7", "1.3"], ["-0.8", "1.9"], ["-1.0", "-0.4"]],
     ["0.35", "0.29", "0.31", "0.04", "0.1", "0.03", "0.03", "0.36", "0.36", "0.49", "0.49", "0.35", "0.03",
      "0.16", "0.36"],
     ["1.489939383", "1.750168342", "0.7245244798", "-0.1243076121", "-1.359863258", "1.143215383",
      "2.185548314", "-2.383783352", "1.564850216", "-3.882782812", "-0.4193058102", "0.6436904664",
      "-2.053324358"]),
    ("sigmoid", [["1.4", "1.9", "-0.5"], ["0.7", "-0.0", "-1.4"], ["0.3", "0.1", "-2.3"], ["1.7", "-2.3", "0.4"],
                 ["-1.5", "-1.2", "-1.0"], ["1.1", "-1.8", "-0.3"], ["2.4", "-1.0", "-0.0"], ["1.0", "-0.8", "0.7"],
                 ["-1.0", "1.1", "0.1"], ["-1.4", "2.1", "-0.1"], ["-0.4", "-1.4", "-0.7"], ["-0.1", "0.3", "1.7"],
                 ["-2.0", "-0.5", "1.8"], ["0.3", "0.6", "2.4"]],
     ["0.97", "0.93", "0.91", "0.53", "0.41", "0.51", "0.95", "0.79", "0.79", "0.92", "0.38", "0.74", "0.42",
      "0.9"],
     ["3.917887402", "2.103211907", "1.888068106", "-0.200006483", "-0.4101721501", "0.7141747879",
      "-0.9178108199", "0.7905096874", "-0.2723183988", "-0.605724771", "-0.751543345"]),
    ("tanh", [["-1.7"], ["1.6"], ["1.0"], ["-0.2"], ["-0.6"], ["-2.7"], ["1.2"], ["-0.2"]],
     ["0.09", "0.97", "0.91", "0.16", "0.12", "0.08", "0.95", "0.16"],
     ["0.5150343891", "0.6115302506", "0.2209819506", "2.635724229", "1.681194335", "-1.131560049",
      "0.6576860931"]),
]


@pytest.mark.parametrize("act,x,y,theta", GENERAL, ids=["2-3-1 tanh", "3-2-1 sigmoid", "1-2-1 tanh"])
def test_general_architectures_certify(act, x, y, theta):
    r = cs.certify_smooth(x, y, theta, activation=act)
    assert r["certified"], r["detail"]
    d = len(x[0])
    assert r["n_params"] == layout.n_params(d, r["h"])
    # and a perturbed, non-critical copy does not
    th = [Fraction(t) for t in theta]
    th[0] += Fraction(1, 10)
    assert not cs.certify_smooth(x, y, th, activation=act)["certified"]


def test_bad_input_is_reported_not_raised():
    r = cs.certify_smooth(X, Y, W_HAT[:-1])
    assert not r["certified"] and r["reason"] == cs.REASON_BAD_INPUT
    r = cs.certify_smooth(X, Y, W_HAT, activation="relu")
    assert r["reason"] == cs.REASON_BAD_INPUT
    r = cs.certify_smooth(X, [2] * 10, W_HAT)
    assert r["reason"] == cs.REASON_BAD_INPUT


def test_to_fraction_is_exact():
    assert cs.to_fraction("0.1") == Fraction(1, 10)
    assert cs.to_fraction(0.1) == Fraction(1, 10)          # floats read as their repr
    assert cs.to_fraction("13/3") == Fraction(13, 3)
    with pytest.raises(ValueError):
        cs.to_fraction(float("nan"))
