"""The five-number lemma of docs/search.md ('Why five points never deadlock'), checked at high precision.

    badminima five-numbers [--random 20000] [--adversarial 20] [--dps 50] [--seed 0]

For distinct reals t_1 < ... < t_5 and the annihilator lam of 1, t, e^t, e^-t at them, the lemma says
M = sum_i lam_i tanh(t_i/2) (1, t_i)^T (1, t_i) is indefinite (det M < 0).  Prints how many random
sets gave a definite M, how well the proof's identity held on them, and the largest det M / |M|^2
that Nelder-Mead reaches from random starts (positive would be a counterexample).  With six numbers
the annihilators form a plane, and for about one set in twenty some of them give a definite M
(`--numbers 6`): the count can be non-zero.
"""
from __future__ import annotations

import mpmath
import numpy as np


def annihilators(t: list) -> list:
    """A basis of the lam with sum_i lam_i phi(t_i) = 0 for phi in 1, t, e^t, e^-t (mpmath numbers): one
    vector for five numbers, two for six, from the cofactors of the 4 x n matrix of the system."""
    n = len(t)
    rows = [[mpmath.mpf(1)] * n, list(t), [mpmath.exp(x) for x in t], [mpmath.exp(-x) for x in t]]
    basis = []
    for drop in ([None] if n == 5 else [0, 1]):
        keep = [m for m in range(n) if m != drop]
        lam = [mpmath.mpf(0)] * n
        for k, i in enumerate(keep):
            cols = [m for m in keep if m != i]
            lam[i] = (-1) ** k * mpmath.det(mpmath.matrix([[row[m] for m in cols] for row in rows]))
        basis.append(lam)
    return basis


def moments(t: list, lam: list) -> tuple:
    """(m0, m1, m2), m_k = sum_i lam_i tanh(t_i/2) t_i^k: M = [[m0, m1], [m1, m2]]."""
    g = [l * mpmath.tanh(x / 2) for l, x in zip(lam, t)]
    return sum(g), sum(gi * x for gi, x in zip(g, t)), sum(gi * x * x for gi, x in zip(g, t))


def exp_sum(t: list, lam: list, kappa, power: int = 0):
    """W^(power)(kappa) for W(kappa) = sum_i lam_i e^(kappa t_i): sum_i lam_i t_i^power e^(kappa t_i)."""
    return sum((l * x ** power * mpmath.exp(kappa * x) for l, x in zip(lam, t)), mpmath.mpf(0))


def identity_sides(t: list, lam: list) -> tuple:
    """The two sides of the proof's identity, prod_k (1 + e^t_k) det M and
    2 S2 (W(2) + P W(-2)) - 4 W'(1)^2 - 4 P W'(-1)^2 (P = e^(t_1 + ... + t_5), S2 = W''(0))."""
    m0, m1, m2 = moments(t, lam)
    left = mpmath.fprod(1 + mpmath.exp(x) for x in t) * (m0 * m2 - m1 * m1)
    P, S2 = mpmath.exp(sum(t)), exp_sum(t, lam, 0, 2)
    right = (2 * S2 * (exp_sum(t, lam, 2) + P * exp_sum(t, lam, -2)) - 4 * exp_sum(t, lam, 1, 1) ** 2
             - 4 * P * exp_sum(t, lam, -1, 1) ** 2)
    return left, right


def _proof_holds(t: list, lam: list) -> tuple:
    """(whether the signs the proof needs hold: lam alternating, S2 < 0 < W(2), W(-2); the relative gap
    between the identity's sides) for five numbers and their annihilator (either sign)."""
    lam = [-x for x in lam] if lam[0] < 0 else lam
    signs = all(lam[i] * (-1) ** i > 0 for i in range(5))
    signs = signs and exp_sum(t, lam, 0, 2) < 0 < min(exp_sum(t, lam, 2), exp_sum(t, lam, -2))
    left, right = identity_sides(t, lam)
    return signs, abs(left - right) / max(abs(left), abs(right))


def normalized_det(t: list, lam: list) -> float:
    """det M / (m0^2 + 2 m1^2 + m2^2): negative for an indefinite M, positive for a definite one."""
    m0, m1, m2 = moments(t, lam)
    norm = m0 * m0 + 2 * m1 * m1 + m2 * m2
    return float((m0 * m2 - m1 * m1) / norm) if norm else 0.0


def iter_sets(count: int, points: int, rng):
    """Sorted random sets of `points` numbers at mixed scales and centres (as mpmath numbers), one at a
    time (a set whose numbers are not distinct is skipped)."""
    for _ in range(count):
        t = np.sort(rng.normal(rng.normal(0, 3), rng.choice([0.05, 0.3, 1.5, 5, 8]), points))
        if np.diff(t).min() > 1e-9:
            yield [mpmath.mpf(float(x)) for x in t]


def check(sets, progress=None) -> dict:
    """One pass over sets (any iterable, so memory stays bounded however many): how many were tested,
    how many have an annihilator giving a definite M (for five numbers the one; for six any of 36
    directions in their plane of annihilators), and for five numbers how many break the proof's signs
    and the largest relative gap between its identity's sides.  progress: told of each set."""
    directions = [(mpmath.cos(mpmath.pi * k / 36), mpmath.sin(mpmath.pi * k / 36)) for k in range(36)]
    out = {"tested": 0, "definite": 0, "broken": 0, "gap": 0.0}
    for t in sets:
        if progress is not None:
            progress.update(1)
        basis = annihilators(t)
        out["tested"] += 1
        if len(basis) > 1:
            basis = [[c * u + s * w for u, w in zip(*basis)] for c, s in directions]
        else:
            signs, gap = _proof_holds(t, basis[0])
            out["broken"] += not signs
            out["gap"] = max(out["gap"], float(gap))
        out["definite"] += any(normalized_det(t, lam) > 0 for lam in basis)
    return out


def adversarial(starts: int, rng, bound: float = 25.0, progress=None) -> tuple:
    """Nelder-Mead maximizing normalized_det over five numbers within +-bound (parametrized by the first
    number and the logs of the gaps): (best value, its numbers).  progress: told of each start."""
    from scipy.optimize import minimize
    from badminima.engine.train import interrupt

    def numbers(z):
        return np.cumsum(np.concatenate([[z[0]], np.exp(z[1:])]))

    def loss(z):
        interrupt.check()               # a Ctrl-C stops the search between evaluations
        t = numbers(z)
        if np.abs(t).max() > bound or np.diff(t).min() < 1e-6:
            return 1.0
        ts = [mpmath.mpf(float(x)) for x in t]
        return -normalized_det(ts, annihilators(ts)[0])
    best = (-np.inf, None)
    for _ in range(starts):
        z0 = np.concatenate([[rng.normal(0, 8)], rng.normal(0, 1.5, 4)])
        r = minimize(loss, z0, method="Nelder-Mead", options=dict(maxiter=600, xatol=1e-6, fatol=1e-14))
        if -r.fun > best[0]:
            best = (-r.fun, numbers(r.x))
        if progress is not None:
            progress.update(1)
    return best
