"""Canonical forms of (dataset, minimum) pairs of the 2-2-1 sigmoid network under its symmetries.

Symmetries (each maps a critical point of one dataset to a critical point of the same or an equivalent
dataset with the same loss, Hessian spectrum up to congruence, and accuracy):

* affine gauge: an invertible affine map T of the input plane, x -> T x, is absorbed by the first layer
  (W -> W T^-1, b -> b - W T^-1 t).  Canonically the data are written in *pre-activation coordinates*
  a_ij = w_j . x_i + b_j, i.e. the first layer becomes the identity with zero biases;
* hidden swap: exchange the two units;
* sign flip of unit j: sigma(-a) = 1 - sigma(a), so (w_j, b_j, v_j, c) -> (-w_j, -b_j, -v_j, c + v_j);
* label flip: (y, v, c) -> (1 - y, -v, -c).

``canonical_form`` picks, among the 16 discrete images of the gauge form, the one with v_0 >= v_1 > 0,
at most as many ones as zeros, and (for ties) the lexicographically smallest sorted point list.  Two
pairs related by the symmetries get the same form.  Minima come in continuous families (dimension
2N - 6 in the gauge), so equality of forms is only meaningful up to a rounding: ``key`` rounds the
canonical points to ``decimals``; ``pattern`` is a coarse combinatorial type (how many points of each
label fall in each sign quadrant of the two pre-activations), stable within a family.
"""
from __future__ import annotations

import hashlib

import numpy as np

from badminima.engine.core import layout


def to_gauge(X, theta) -> tuple[np.ndarray, np.ndarray]:
    """(A, theta_g): the data in pre-activation coordinates and theta in the gauge (identity first layer,
    zero hidden biases).  ValueError if the two units are parallel (singular first layer)."""
    X = np.asarray(X, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or theta.shape != (9,):
        raise ValueError("to_gauge needs 2-D points and a 2-2-1 theta (9 entries)")
    W, b, v, c = layout.unpack(theta, 2)
    if abs(np.linalg.det(W)) < 1e-12 * max(1.0, float(np.max(np.abs(W)))) ** 2:
        raise ValueError("hidden units are parallel (first layer singular): no affine gauge")
    A = X @ W.T + b
    return A, gauge_theta(v, c)


def gauge_theta(v, c) -> np.ndarray:
    """theta of the gauge: first layer identity, zero hidden biases, output weights v, bias c."""
    return layout.pack(np.eye(2), np.zeros(2), np.asarray(v, dtype=np.float64), float(c))


def images(A, y, v, c):
    """The 16 discrete images (label flip, swap, two sign flips) of a gauge form (A, y, v, c)."""
    A = np.asarray(A, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = []
    for flip in (False, True):
        for swap in (False, True):
            for s0 in (1.0, -1.0):
                for s1 in (1.0, -1.0):
                    A2, y2, v2, c2 = A.copy(), y.copy(), np.array(v, dtype=np.float64), float(c)
                    if flip:
                        y2, v2, c2 = 1.0 - y2, -v2, -c2
                    if swap:
                        A2, v2 = A2[:, ::-1].copy(), v2[::-1].copy()
                    for j, s in ((0, s0), (1, s1)):
                        if s < 0:
                            A2[:, j] = -A2[:, j]
                            c2 = c2 + v2[j]
                            v2[j] = -v2[j]
                    out.append((A2, y2, v2, c2))
    return out


def _sorted_points(A, y):
    order = np.lexsort((y, A[:, 1], A[:, 0]))
    return A[order], y[order]


def canonical_form(X, y, theta, decimals: int = 1) -> dict:
    """Canonical representative of (X, y, theta) under gauge, swap, sign and label flips.

    Returns {"points" (N, 2) sorted, "labels", "v", "c", "key" (hash of the points rounded to
    ``decimals`` and the labels), "pattern" (quadrant/label counts)}."""
    A, thg = to_gauge(X, theta)
    _, _, v, c = layout.unpack(thg, 2)
    y = np.asarray(y, dtype=np.float64)
    best, best_key = None, None
    for A2, y2, v2, c2 in images(A, y, v, c):
        if not (v2[0] > 0 and v2[1] > 0):
            continue
        As, ys = _sorted_points(A2, y2)
        ones = int(round(ys.sum()))
        rank = (ones > len(ys) - ones, v2[0] < v2[1], tuple(np.round(As, 9).ravel()), tuple(ys))
        if best_key is None or rank < best_key:
            best, best_key = (As, ys, v2, c2), rank
    if best is None:                       # some v_j == 0: a unit is unused; keep the gauge form
        As, ys = _sorted_points(A, y)
        best = (As, ys, np.asarray(v, dtype=np.float64), float(c))
    As, ys, v2, c2 = best
    rounded = np.round(As, decimals) + 0.0
    text = ";".join(f"{a:.{decimals}f},{b:.{decimals}f},{int(t)}" for (a, b), t in zip(rounded, ys))
    return {"points": As, "labels": ys, "v": v2, "c": float(c2),
            "key": hashlib.sha256(text.encode()).hexdigest()[:16], "pattern": pattern(As, ys)}


def pattern(A, y) -> str:
    """Counts of points per (sign a_0, sign a_1, label), e.g. '++1:2 +-0:3 ...' (sorted, stable)."""
    cnt: dict[str, int] = {}
    for (a0, a1), t in zip(np.asarray(A), np.asarray(y)):
        k = ("+" if a0 >= 0 else "-") + ("+" if a1 >= 0 else "-") + str(int(t))
        cnt[k] = cnt.get(k, 0) + 1
    return " ".join(f"{k}:{cnt[k]}" for k in sorted(cnt))


def count_distinct(forms: list[dict]) -> dict:
    """Numbers of distinct canonical keys and patterns among canonical forms."""
    return {"distinct": len({f["key"] for f in forms}), "patterns": len({f["pattern"] for f in forms})}
