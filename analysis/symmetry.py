"""Symmetries of a dataset, and entries (minima, plateaus) that are images of each other under them.

A symmetry of a dataset is an affine map g(x) = A x + t of the input space that permutes the data
points and either keeps every label or flips every one (classification y -> 1 - y, regression
y -> -y).  XOR has eight (the square's symmetries: the reflections in the diagonals keep the labels,
the others flip them); fXOR has the swap x1 <-> x2 (labels flipped).  For any network f,
f o g^-1 (and, for a flip, the network with its output negated: v, c -> -v, -c) is again a network
of the same architecture with the same loss and accuracy, so every critical point or plateau comes
with its images.  Those are different points and functions (the grouping modulo the network's own
symmetries rightly keeps them apart) but the same finding: two rows with equal loss and accuracy.
`symmetry_classes` finds them from the outputs on the training points: entry q is the image of
entry p under g when q's output on point perm[i] equals p's on point i (or its flip) for every i.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

#: most candidate maps tried (n! / (n - d - 1)! of them for n points in d dimensions)
MAX_CANDIDATES = 50_000


@dataclass(frozen=True)
class DataSymmetry:
    """x -> A x + t maps data point i onto point perm[i]; flip: every label is flipped by it."""
    perm: tuple
    flip: bool
    A: tuple
    t: tuple

    def apply(self, values: np.ndarray, classification: bool) -> np.ndarray:
        """The image of per-point outputs (..., n): out[..., perm[i]] = values[..., i], flipped if need be
        (probabilities p -> 1 - p for classification, f -> -f otherwise; pass logits with
        classification=False: z -> -z)."""
        v = np.asarray(values, dtype=np.float64)
        out = np.empty_like(v)
        out[..., list(self.perm)] = v
        if self.flip:
            out = 1.0 - out if classification else -out
        return out

    def describe(self) -> str:
        A = np.array(self.A)
        kind = "reflection" if np.isclose(np.linalg.det(A), -1.0) else "rotation" if A.shape[0] > 1 else "map"
        return f"{kind}{', labels flipped' if self.flip else ''}"


def _affine_base(X: np.ndarray) -> list[int] | None:
    """Indices of d + 1 affinely independent points (greedy), or None if the points span less."""
    n, d = X.shape
    base = [0]
    for i in range(1, n):
        M = X[base[1:] + [i]] - X[base[0]]
        if np.linalg.matrix_rank(M, tol=1e-9 * (1.0 + np.abs(X).max())) == len(base):
            base.append(i)
            if len(base) == d + 1:
                return base
    return None


def dataset_symmetries(X, y, classification: bool, tol: float = 1e-9) -> list[DataSymmetry]:
    """Every non-identity affine map permuting the points with labels kept or all flipped (see the module
    docstring); [] where the points do not span the space or there are too many candidates to try."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return list(_symmetries(X.tobytes(), X.shape, y.tobytes(), bool(classification), float(tol)))


@functools.lru_cache(maxsize=64)
def _symmetries(xb: bytes, shape: tuple, yb: bytes, classification: bool, tol: float) -> tuple:
    X = np.frombuffer(xb).reshape(shape)
    y = np.frombuffer(yb)
    n, d = shape
    base = _affine_base(X)
    if base is None or n < 2 or np.prod(np.arange(n - d, n + 1, dtype=float)) > MAX_CANDIDATES:
        return ()
    scale = tol * (1.0 + np.abs(X).max())
    src = np.column_stack([X[base], np.ones(d + 1)])          # (d+1, d+1): [x, 1] M = g(x)
    flipped = 1.0 - y if classification else -y
    found: dict[tuple, DataSymmetry] = {}
    Xh = np.column_stack([X, np.ones(n)])
    for img in itertools.permutations(range(n), d + 1):
        if list(img) == base:
            continue
        M = np.linalg.solve(src, X[list(img)])
        G = Xh @ M                                             # every point's image
        dist = np.abs(G[:, None, :] - X[None, :, :]).max(axis=2)
        perm = dist.argmin(axis=1)
        if dist[np.arange(n), perm].max() > scale or len(set(perm.tolist())) != n:
            continue
        if np.all(perm == np.arange(n)):
            continue
        if np.allclose(y[perm], y):
            flip = False
        elif np.allclose(y[perm], flipped):
            flip = True
        else:
            continue
        key = tuple(int(p) for p in perm)
        if key not in found:
            found[key] = DataSymmetry(key, flip, tuple(map(tuple, M[:d].T)), tuple(M[d]))
    return tuple(found[k] for k in sorted(found))


def _moved(patterns: tuple, perm: tuple) -> tuple:
    """Unit activation patterns (bool per data point) carried by a point permutation, sorted."""
    out = []
    for u in patterns:
        v = [False] * len(u)
        for i, b in enumerate(u):
            v[perm[i]] = b
        out.append(tuple(v))
    return tuple(sorted(out))


def symmetry_classes(outputs, losses, symmetries: list[DataSymmetry], *, classification: bool,
                     tol: float, loss_tol: float, patterns=None) -> np.ndarray:
    """Per entry (rows of outputs (k, n), in order), the position of the first entry it is an image of
    under one of `symmetries` (outputs within tol on every point, losses within loss_tol and, given
    `patterns` (per entry, its units' sorted activation patterns on the data: ReLU), the patterns
    carried onto each other); its own position if none.  Use logits with classification=False,
    probabilities with classification=True."""
    out = np.atleast_2d(np.asarray(outputs, dtype=np.float64))
    L = np.asarray(losses, dtype=np.float64)
    first = np.arange(len(out))
    if not symmetries:
        return first
    for j in range(1, len(out)):
        for i in range(j):
            if first[i] != i or abs(L[i] - L[j]) > loss_tol:
                continue
            if any(np.abs(s.apply(out[i], classification) - out[j]).max() <= tol
                   and (patterns is None or _moved(patterns[i], s.perm) == tuple(patterns[j]))
                   for s in symmetries):
                first[j] = i
                break
    return first


__all__ = ["DataSymmetry", "dataset_symmetries", "symmetry_classes"]
