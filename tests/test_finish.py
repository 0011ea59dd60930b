"""The finisher (engine/train/finish.py) and the end-state classification (engine/core/classify.py)."""
import numpy as np

from badminima.engine.core import model as M
from badminima.engine.core.classify import newton_dist
from badminima.engine.core.names import SIGMOID, XENT
from badminima.engine.core.outcomes import DRIFTING, LOCAL_MINIMUM, OUT_OF_STEPS, SOLVED
from badminima.engine.train.run import train_range

from conftest import make_cfg

try:
    from badminima.tests import reference as ref
except ImportError:
    import reference as ref


def test_finisher_agrees_with_a_much_longer_run(paper10):
    # the finisher follows the gradient flow 100 budgets on: its verdict on a short run must be what
    # GD reaches in a run 100 times longer, network by network (Theorem 1's data, where most runs are
    # still moving after the short budget)
    n = 200
    short = train_range(make_cfg(paper10, steps=3000, networks=n), paper10.x, paper10.y, 0, n)
    long = train_range(make_cfg(paper10, steps=300_000, networks=n, finish_horizon=0.0), paper10.x, paper10.y, 0, n)
    assert np.mean(short["optimizer_outcome"] == OUT_OF_STEPS) > 0.5          # the optimizer alone: unresolved
    assert np.mean(short["outcome"] == OUT_OF_STEPS) <= 0.03
    assert np.mean(short["outcome"] == long["outcome"]) >= 0.95
    assert (long["outcome"] == LOCAL_MINIMUM).any() and (long["outcome"] == DRIFTING).any()
    ran = short["finish_iters"] >= 0
    np.testing.assert_array_equal(ran, np.isin(short["optimizer_outcome"], [OUT_OF_STEPS, DRIFTING]))
    assert np.all(np.isnan(short["finish_weights"][~ran]))


def test_finisher_lands_on_the_exact_minimum(paper10):
    # from a point near Theorem 1's minimum, the finisher's verdict is a local minimum, and where it
    # stops the slow reference (plain NumPy) finds the gradient zero and the Hessian positive definite
    w = paper10.points["W_hat"].theta + 0.05 * np.random.default_rng(1).normal(size=9)
    res = train_range(make_cfg(paper10, steps=5, networks=1, finish_horizon=1e6), paper10.x, paper10.y, 0, 1,
                      theta0=w[None])
    assert res["optimizer_outcome"][0] == OUT_OF_STEPS and res["outcome"][0] == LOCAL_MINIMUM
    th = res["finish_weights"][0]
    assert np.linalg.norm(ref.ref_grad(th, paper10.x, paper10.y, "sigmoid", "xent")) < 1e-10
    lam = np.linalg.eigvalsh(ref.ref_hessian(th, paper10.x, paper10.y, "sigmoid", "xent"))
    assert lam[0] > 0 and abs(lam[0] - res["finish_min_eig"][0]) < 1e-9
    assert abs(res["finish_loss"][0] - ref.ref_loss(th, paper10.x, paper10.y, "sigmoid", "xent")) < 1e-12


def test_a_plateau_is_not_a_critical_point(paper10):
    # far along W0's plateau the gradient is below any tolerance and the Hessian nearly zero; the
    # Newton step is long (no finite critical point nearby), so neither the classifier nor the
    # finisher calls it a minimum
    w0 = paper10.points["W0"].theta
    X, y = paper10.x, paper10.y
    _, _, g = M.evaluate(w0, X, y, 2, 2, SIGMOID, XENT)
    lam, V = np.linalg.eigh(M.hessian(w0, X, y, 2, 2, SIGMOID, XENT))
    dist = newton_dist(lam, V.T @ g)
    assert dist > 1.0
    res = train_range(make_cfg(paper10, steps=200, networks=1, gtol=1e-2), X, y, 0, 1, theta0=w0[None])
    assert res["optimizer_outcome"][0] != LOCAL_MINIMUM and res["outcome"][0] == DRIFTING


def test_finisher_off_keeps_the_optimizer_verdict(xor):
    cfg = make_cfg(xor, steps=300, networks=64, finish_horizon=0.0)
    res = train_range(cfg, xor.x, xor.y, 0, 64)
    np.testing.assert_array_equal(res["outcome"], res["optimizer_outcome"])
    assert np.all(res["finish_iters"] == -1) and (res["outcome"] == OUT_OF_STEPS).any()
    assert not (res["outcome"] == SOLVED).all()


def test_the_stall_rule_leaves_unresolved_only_what_the_iteration_limit_would(xor):
    """Networks stuck on a ReLU kink (the finisher's steps fall to MIN_STEP) are left unresolved after
    STALL such iterations instead of MAX_ITER: the verdicts, network by network, are those of the
    iteration limit alone, and the rule does fire (Table 1's Adam ReLU h = 4 cell, as table1 runs it)."""
    from badminima.engine.core.names import ACTIVATIONS
    from badminima.engine.core.flow import MAX_ITER, STALL
    from badminima.engine.train.finish import finish_many
    from badminima.engine.train.run import flow_time
    n = 600
    cfg = make_cfg(xor, hidden=4, activation="relu", optimizer="adam", lr=1e-3, steps=10_000, networks=n,
                   dtype="float32", finish_horizon=0.0)
    res = train_range(cfg, xor.x, xor.y, 0, n)
    todo = res["outcome"] == OUT_OF_STEPS
    X, y = np.array(xor.x, float), np.array(xor.y, float)

    def finish(stall):
        out = (np.full(res["weights"].shape, np.nan), res["outcome"].copy(), np.full(n, -1, np.int32),
               np.full(n, np.nan), np.full(n, np.nan))
        finish_many(res["weights"], todo, 100.0 * flow_time(cfg), X, y, 2, 4, ACTIVATIONS["relu"], XENT,
                    cfg.gtol, cfg.xtol, cfg.solve_tol, cfg.wmax, cfg.drift_gtol, cfg.drift_wmin, cfg.eig_tol,
                    MAX_ITER, stall, *out)
        return out

    _, code, iters, _, _ = finish(STALL)
    _, code_limit, iters_limit, _, _ = finish(MAX_ITER + 1)       # the rule never fires
    np.testing.assert_array_equal(code, code_limit)
    cut = iters < iters_limit
    assert cut.sum() >= 3 and np.all(code[cut] == OUT_OF_STEPS)
    assert np.all(iters[~cut] == iters_limit[~cut])
