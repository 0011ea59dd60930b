"""The allocation-free symmetric eigensolver (engine/core/eigen.py) against LAPACK (numpy.linalg.eigh)."""
import numpy as np
import pytest

from badminima.engine.core.eigen import sym_eig
from badminima.engine.core.model import hessian
from badminima.engine.core.names import RELU, SIGMOID, XENT


def _check(A):
    n = A.shape[0]
    V, lam, e = A.copy(), np.empty(n), np.empty(n)
    assert sym_eig(V, lam, e)
    ref = np.linalg.eigvalsh(A)
    scale = max(1.0, np.abs(ref).max())
    np.testing.assert_allclose(lam, ref, rtol=0, atol=1e-13 * scale)
    assert np.all(np.diff(lam) >= 0)
    np.testing.assert_allclose(V.T @ V, np.eye(n), rtol=0, atol=1e-13)
    np.testing.assert_allclose(A @ V, V * lam, rtol=0, atol=1e-13 * scale)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 9, 13, 29])
def test_random_symmetric_matrices(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        A = rng.normal(size=(n, n)) * 10.0 ** rng.integers(-6, 4)
        _check(A + A.T)


def test_degenerate_and_structured_matrices():
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
    _check(Q @ np.diag([1.0, 1.0, 1.0, -2.0, -2.0, 0.0, 0.0, 0.0, 5.0]) @ Q.T)    # repeated eigenvalues
    _check(np.diag([3.0, -1.0, 2.0, 0.0]))                                          # already diagonal
    _check(np.zeros((5, 5)))
    _check(np.ones((6, 6)))                                                         # rank one
    _check(np.diag(np.full(4, 1e-300)))                                             # tiny, not zero


@pytest.mark.parametrize("act", [SIGMOID, RELU])
def test_network_hessians(xor, act):
    rng = np.random.default_rng(3)
    for h in (2, 7):
        for _ in range(10):
            _check(hessian(rng.normal(size=4 * h + 1) * 3.0, xor.x, xor.y, 2, h, act, XENT))


def test_non_finite_input_and_overflow_are_refused():
    for bad in (np.nan, np.inf):
        A = np.eye(4)
        A[2, 1] = A[1, 2] = bad
        assert not sym_eig(A, np.empty(4), np.empty(4))
    big = np.array([[1.7e308, 1.7e308], [1.7e308, -1.7e308]])       # finite, but the reduction overflows
    assert not sym_eig(big.copy(), np.empty(2), np.empty(2))
