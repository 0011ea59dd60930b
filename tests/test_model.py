"""The exact per-network model (engine/core/model.py) against the independent slow reference."""
import numpy as np
import pytest

from badminima.engine.core import model as M
from badminima.engine.core import names

try:
    from badminima.tests import reference as ref
except ImportError:
    import reference as ref

CASES = [(act, loss, d) for act in ("sigmoid", "relu", "tanh") for loss in ("xent", "mse") for d in (1, 2)]


@pytest.mark.parametrize("act,loss,d", CASES)
def test_loss_grad_hessian_match_reference(act, loss, d, rng):
    h = 3
    X = rng.normal(size=(9, d))
    y = (rng.random(9) > 0.5).astype(float) if loss == "xent" else rng.normal(size=9)
    for _ in range(3):
        th = rng.normal(size=h * (d + 2) + 1)
        L, acc, g = M.evaluate(th, X, y, d, h, names.ACTIVATIONS[act], names.LOSSES[loss])
        assert L == pytest.approx(ref.ref_loss(th, X, y, act, loss), rel=1e-12)
        np.testing.assert_allclose(g, ref.ref_grad(th, X, y, act, loss), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(g, ref.ref_grad_fd(th, X, y, act, loss), rtol=1e-5, atol=1e-8)
        H = M.hessian(th, X, y, d, h, names.ACTIVATIONS[act], names.LOSSES[loss])
        np.testing.assert_allclose(H, ref.ref_hessian(th, X, y, act, loss), rtol=1e-10, atol=1e-13)
        if loss == "xent":
            assert acc == ref.ref_accuracy(th, X, y, act)


def test_hessian_matches_mpmath_at_paper_point(paper10):
    pt = paper10.points["W_hat"]
    H = M.hessian(pt.theta, paper10.x, paper10.y, 2, 2, names.SIGMOID, names.XENT)
    Hmp = np.array(ref.mp_hessian(pt.theta_text, paper10.x_text, paper10.y_text, "sigmoid", "xent").tolist(),
                   dtype=float)
    np.testing.assert_allclose(H, Hmp, rtol=1e-11, atol=1e-14)


def test_init_laws_are_pure_and_have_the_right_scale():
    a = M.init_many(3, 10, 20, 2, 4, names.NORMAL, 2.0, False)
    b = M.init_many(3, 15, 20, 2, 4, names.NORMAL, 2.0, False)
    np.testing.assert_array_equal(a[5:], b)            # depends on (seed, index) only
    big = M.init_many(0, 0, 20000, 2, 2, names.NORMAL, 2.0, False)
    assert abs(big.std() - 2.0) < 0.03
    u = M.init_many(0, 0, 5000, 2, 2, names.UNIFORM, 0.5, False)
    assert u.min() >= -0.5 and u.max() <= 0.5 and u.max() > 0.49
    z = M.init_many(0, 0, 10, 2, 2, names.GLOROT, 1.0, True)
    assert np.all(z[:, [3, 7, 8]] == 0)                # b0, b1, c are zero
    lim = np.sqrt(6 / (2 + 2))
    assert np.abs(z[:, [1, 2, 5, 6]]).max() <= lim
