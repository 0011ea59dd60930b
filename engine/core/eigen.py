"""Eigen-decomposition of a small symmetric matrix in place, without allocating: the same code on the
CPU and inside a CUDA thread (where LAPACK does not exist), for the exact model's Hessians.

Householder reduction to tridiagonal form, then the implicit QL iteration with Wilkinson's shift
(the Algol procedures tred2 and tql2 of Bowdler, Martin, Reinsch and Wilkinson, Handbook for
Automatic Computation vol. II, as in EISPACK): about 9 n^3 operations, backward stable, so the
eigenvalues are exact to a few ulp of ||A|| like LAPACK's.
"""
from __future__ import annotations

import math

from badminima.engine.core.jit import njit

MAX_QL_ITER = 100     # QL iterations per eigenvalue; converges in 2-3 on finite input


@njit
def sym_eig(V, lam, e):
    """Eigen-decomposition of the symmetric n x n matrix in V (its lower triangle is read), in place:
    on return lam[:n] holds the eigenvalues in ascending order and V's columns the matching
    orthonormal eigenvectors, so A = V diag(lam) V^T.  e (length >= n) is scratch.  Returns False
    (V, lam undefined) for non-finite entries, or where the iteration overflows or does not converge."""
    n = V.shape[0]
    for i in range(n):
        for j in range(i + 1):
            if not math.isfinite(V[i, j]):
                return False
    for j in range(n):
        lam[j] = V[n - 1, j]
    # Householder reduction: step i annihilates row i left of the subdiagonal, the transformations
    # accumulating in V's upper part (lam holds the current row, e the subdiagonal)
    for i in range(n - 1, 0, -1):
        scale = 0.0
        hh = 0.0
        for k in range(i):
            scale += abs(lam[k])
        if scale == 0.0:
            e[i] = lam[i - 1]
            for j in range(i):
                lam[j] = V[i - 1, j]
                V[i, j] = 0.0
                V[j, i] = 0.0
        else:
            for k in range(i):
                lam[k] /= scale
                hh += lam[k] * lam[k]
            f = lam[i - 1]
            g = math.sqrt(hh)
            if f > 0.0:
                g = -g
            e[i] = scale * g
            hh -= f * g
            lam[i - 1] = f - g
            for j in range(i):
                e[j] = 0.0
            for j in range(i):
                f = lam[j]
                V[j, i] = f
                g = e[j] + V[j, j] * f
                for k in range(j + 1, i):
                    g += V[k, j] * lam[k]
                    e[k] += V[k, j] * f
                e[j] = g
            f = 0.0
            for j in range(i):
                e[j] /= hh
                f += e[j] * lam[j]
            hf = f / (hh + hh)
            for j in range(i):
                e[j] -= hf * lam[j]
            for j in range(i):
                f = lam[j]
                g = e[j]
                for k in range(j, i):
                    V[k, j] -= f * e[k] + g * lam[k]
                lam[j] = V[i - 1, j]
                V[i, j] = 0.0
        lam[i] = hh
    for i in range(n - 1):                    # accumulate the transformations into V
        V[n - 1, i] = V[i, i]
        V[i, i] = 1.0
        hh = lam[i + 1]
        if hh != 0.0:
            for k in range(i + 1):
                lam[k] = V[k, i + 1] / hh
            for j in range(i + 1):
                g = 0.0
                for k in range(i + 1):
                    g += V[k, i + 1] * V[k, j]
                for k in range(i + 1):
                    V[k, j] -= g * lam[k]
        for k in range(i + 1):
            V[k, i + 1] = 0.0
    for j in range(n):
        lam[j] = V[n - 1, j]
        V[n - 1, j] = 0.0
    V[n - 1, n - 1] = 1.0
    # implicit QL on the tridiagonal matrix (diagonal lam, subdiagonal e), rotations applied to V
    for i in range(1, n):
        e[i - 1] = e[i]
    e[n - 1] = 0.0
    f = 0.0
    tst1 = 0.0
    eps = 2.0 ** -52
    for l in range(n):
        tst1 = max(tst1, abs(lam[l]) + abs(e[l]))
        m = l
        while m < n - 1 and abs(e[m]) > eps * tst1:
            m += 1
        if m > l:
            it = 0
            while True:
                it += 1
                if it > MAX_QL_ITER:
                    return False
                g = lam[l]
                p = (lam[l + 1] - g) / (2.0 * e[l])
                r = math.hypot(p, 1.0)
                if p < 0.0:
                    r = -r
                lam[l] = e[l] / (p + r)
                lam[l + 1] = e[l] * (p + r)
                dl1 = lam[l + 1]
                hh = g - lam[l]
                for i in range(l + 2, n):
                    lam[i] -= hh
                f += hh
                p = lam[m]
                c = 1.0
                c2 = c
                c3 = c
                el1 = e[l + 1]
                s = 0.0
                s2 = 0.0
                for i in range(m - 1, l - 1, -1):
                    c3 = c2
                    c2 = c
                    s2 = s
                    g = c * e[i]
                    hh = c * p
                    r = math.hypot(p, e[i])
                    e[i + 1] = s * r
                    s = e[i] / r
                    c = p / r
                    p = c * lam[i] - s * g
                    lam[i + 1] = hh + s * (c * g + s * lam[i])
                    for k in range(n):
                        hh = V[k, i + 1]
                        V[k, i + 1] = s * V[k, i] + c * hh
                        V[k, i] = c * V[k, i] - s * hh
                p = -s * s2 * c3 * el1 * e[l] / dl1
                e[l] = s * p
                lam[l] = c * p
                if not abs(e[l]) > eps * tst1:
                    break
        lam[l] += f
        e[l] = 0.0
    for i in range(n):                        # entries near the largest double can overflow on the way
        if not math.isfinite(lam[i]):
            return False
    for i in range(n - 1):                    # ascending order, the vectors with their values
        k = i
        p = lam[i]
        for j in range(i + 1, n):
            if lam[j] < p:
                k = j
                p = lam[j]
        if k != i:
            lam[k] = lam[i]
            lam[i] = p
            for j in range(n):
                p = V[j, i]
                V[j, i] = V[j, k]
                V[j, k] = p
    return True
