"""Drifting runs grouped by the limiting plateau they approach.

A drifting run has a vanishing gradient while its weights grow without bound, so it has no end point
to compare modulo symmetry.  What it does have is a limit *function*: the loss decreases towards a
plateau level and the outputs on the training points converge.  Runs are grouped by
  1. which training points they misclassify (classification; the pattern fixes the accuracy), then
  2. their final loss, split wherever consecutive sorted losses differ by more than `loss_tol`.
Each plateau reports its loss level (the lowest final loss of its runs is the best upper bound on the
limit), accuracy, the median output on every point (sigmoid probability, or f(x) for regression),
the median max|theta| (how far out the runs are), hit count and basin fraction with a Wilson interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine.model import ACTIVATIONS, logits
from ..engine.outcomes import DRIFTING
from .load import CellRef, read_cells
from .stats import Rate, rate
from .tables import Table

PLATEAU_FIELDS = ["index", "outcome", "loss", "accuracy", "weights"]


@dataclass
class Plateau:
    number: int
    loss: float                 # lowest final loss of the group (upper bound on the plateau level)
    loss_median: float
    loss_max: float
    accuracy: float             # NaN for regression
    wrong: tuple                # 0-based indices of misclassified training points
    outputs: np.ndarray = field(repr=False, default=None)   # median output per training point
    weight_scale: float = 0.0   # median max|theta|
    hits: int = 0
    fraction: Rate = None
    example: int = -1           # lowest network index in the group

    @property
    def label(self) -> str:
        return f"plateau {self.number}"


def _split_by_gaps(values: np.ndarray, tol: float) -> list[np.ndarray]:
    """Index groups of `values`, split where sorted neighbours differ by more than tol."""
    order = np.argsort(values, kind="stable")
    cuts = np.flatnonzero(np.diff(values[order]) > tol) + 1
    return np.split(order, cuts)


def drifting_plateaus(weights, outcome, index, loss, X, y, *, hidden: int, activation: str,
                      classification: bool, n_networks: int, loss_tol: float = 1e-2) -> list[Plateau]:
    """Group the drifting runs of a cell (arrays as stored) by limiting plateau."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sel = np.flatnonzero(np.asarray(outcome) == DRIFTING)
    if sel.size == 0:
        return []
    W = np.asarray(weights, dtype=np.float64)[sel]
    act, d = ACTIVATIONS[activation], X.shape[1]
    z = np.array([logits(np.ascontiguousarray(w), X, d, hidden, act) for w in W])
    out = 1.0 / (1.0 + np.exp(-z)) if classification else z
    if classification:
        wrong = (z > 0) != (y > 0.5)
        keys = [tuple(np.flatnonzero(r)) for r in wrong]
    else:
        keys = [()] * len(sel)
    L = np.asarray(loss, dtype=np.float64)[sel]
    idx = np.asarray(index)[sel]
    groups = []
    for key in sorted(set(keys), key=lambda k: (len(k), k)):
        members = np.array([i for i, k in enumerate(keys) if k == key])
        for part in _split_by_gaps(L[members], loss_tol):
            m = members[part]
            groups.append(Plateau(
                number=0, loss=float(L[m].min()), loss_median=float(np.median(L[m])), loss_max=float(L[m].max()),
                accuracy=(1.0 - len(key) / len(y)) if classification else float("nan"), wrong=key,
                outputs=np.median(out[m], axis=0), weight_scale=float(np.median(np.abs(W[m]).max(axis=1))),
                hits=len(m), fraction=rate(len(m), n_networks), example=int(idx[m].min())))
    groups.sort(key=lambda p: (-p.hits, p.loss, p.example))
    for i, p in enumerate(groups, 1):
        p.number = i
    return groups


def cell_plateaus(cell: CellRef, *, loss_tol: float = 1e-2, data=None, progress: bool = True) -> list[Plateau]:
    """drifting_plateaus for a stored cell."""
    ds = cell.dataset()
    if data is None:
        data = read_cells([cell], PLATEAU_FIELDS, progress=progress)[0]
    return drifting_plateaus(data["weights"], data["outcome"], data["index"], data["loss"], ds.x, ds.y,
                             hidden=cell.hidden, activation=cell.activation,
                             classification=cell.kind == "classification", n_networks=len(data["index"]),
                             loss_tol=loss_tol)


def plateau_table(plateaus: list[Plateau], title: str = "Drifting runs by limiting plateau",
                  classification: bool = True) -> Table:
    """One row per plateau; 'misclassified' lists points 1-based (x1, x2, ... as in the paper)."""
    cols = ["#", "loss level", "loss median", "accuracy", "misclassified", "outputs", "max|theta|",
            "hits", "basin", "95% CI", "example"]
    if not classification:
        cols.remove("accuracy")
        cols.remove("misclassified")
    t = Table(cols, title=title, formats={"loss level": ".5g", "loss median": ".5g", "accuracy": ".3g",
                                           "max|theta|": ".3g", "basin": "%", "95% CI": "%"})
    for p in plateaus:
        outs = " ".join(f"{v:.2f}" for v in p.outputs)
        row = [p.number, p.loss, p.loss_median, p.accuracy, ",".join(f"x{i + 1}" for i in p.wrong) or "none",
               outs, p.weight_scale, p.hits, p.fraction.p, p.fraction.ci, p.example]
        if not classification:
            del row[3:5]
        t.add(*row)
    return t


__all__ = ["Plateau", "drifting_plateaus", "cell_plateaus", "plateau_table"]
