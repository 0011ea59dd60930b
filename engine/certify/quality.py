"""How bad a classifier's outputs are on its data: the decision margin delta* and the AUC.  Plain float64
NumPy on the outputs p_i = sigma(z_i); used on certified minima (engine/certify/smooth.py) and by the
deadlock search's tiers (engine/search/run.py).

Decision margin.  With m_i = (2 y_i - 1)(p_i - 1/2) the signed margin of point i (positive: correctly
classified, |m_i| = |p_i - 1/2|), the accuracy stays below the majority rate after "forgiving" every
point with |p_i - 1/2| < delta (counting it as correct) exactly when at least K = N - n_major + 1
points have m_i <= -delta, n_major being the size of the larger class.  So the largest such delta is

    delta* = max(0, -m_(K)),   m_(K) the K-th smallest signed margin,

the |p - 1/2| of the K-th misclassified point in order of confidence.  delta* = 0 when the accuracy is
not below the majority rate.  A point with p_i = 1/2 exactly has margin 0 whatever its label.
"""
from __future__ import annotations

import math

import numpy as np


def signed_margins(p, y) -> np.ndarray:
    """m_i = (2 y_i - 1)(p_i - 1/2): positive where the point is classified correctly."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return (2.0 * y - 1.0) * (p - 0.5)


def decision_margin(p, y) -> float:
    """delta* (module docstring): how far from 1/2 the outputs that keep the accuracy below the
    majority rate lie; 0 when the accuracy is not below it."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    ones = int(np.sum(y > 0.5))
    k = n - max(ones, n - ones) + 1
    m = np.sort(signed_margins(p, y))
    return float(max(0.0, -m[k - 1]))


def auc(p, y) -> float:
    """Area under the ROC curve of the outputs p for labels y (Mann-Whitney; ties count 1/2).
    Below 1/2: the outputs rank the classes the wrong way round."""
    p = np.asarray(p, dtype=np.float64)
    pos = p[np.asarray(y) > 0.5]
    neg = p[np.asarray(y) <= 0.5]
    if not len(pos) or not len(neg):
        return math.nan
    d = pos[:, None] - neg[None, :]
    return float(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)
