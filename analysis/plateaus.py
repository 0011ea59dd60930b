"""Drifting runs grouped by the limiting plateau they approach.

A drifting run has a vanishing gradient while its weights grow without bound, so it has no end point
to compare modulo symmetry.  What it does have is a limit *function*: the loss decreases towards a
plateau level and the outputs on the training points converge (for classification typically to 0, 1,
or a shared value such as 1/2 or 1/3 on points the network cannot separate).  Runs are grouped by
  1. their outputs on the training points (sigmoid probabilities, or f(x) for regression): leader
     clustering in network-index order, same plateau when every output is within `output_tol`, then
  2. their loss, split wherever consecutive sorted losses differ by more than `loss_tol`.
Loss, accuracy and outputs are those of the point each run's verdict describes (CellRef.data): where
the finisher took a run on, where it stopped, further along the flow than the optimizer's budget.
Grouping by outputs rather than by the misclassified set matters: a point stuck at p = 1/2 is
"misclassified" or not depending on the sign of a vanishing logit, which would split one plateau.
Each plateau reports its loss level (the lowest loss of its runs: the best upper bound on the
limit), the median accuracy, the points misclassified by the median outputs and the undecided
ones (median output within `output_tol` of 1/2), the median output per point, the median max|theta|
(how far out the runs are), hit count and basin fraction with a Wilson interval.  A plateau whose
outputs are those of an earlier one carried over by a symmetry of the dataset (analysis/symmetry.py:
on XOR, "x1 stuck at 1/2" and "x2 stuck at 1/2" are reflections of each other) has the same loss and
accuracy and points to it in `same_as`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from badminima.engine.core.model import logits, logits_many
from badminima.engine.core.names import ACTIVATIONS
from badminima.engine.core.outcomes import DRIFTING
from badminima.analysis.load import CellRef, read_cells
from badminima.analysis.stats import Rate, rate
from badminima.analysis.symmetry import dataset_symmetries, symmetry_classes
from badminima.analysis.tables import Table

PLATEAU_FIELDS = ["index", "outcome", "loss", "accuracy", "weights"]


@dataclass
class Plateau:
    number: int
    loss: float                 # lowest loss of the group (upper bound on the plateau level)
    loss_median: float
    loss_max: float
    accuracy: float             # median accuracy; NaN for regression
    wrong: tuple                # 0-based training points on the wrong side at the median outputs
    undecided: tuple            # 0-based points whose median output is within output_tol of 1/2
    outputs: np.ndarray = field(repr=False, default=None)   # median output per training point
    weight_scale: float = 0.0   # median max|theta|
    hits: int = 0
    fraction: Rate = None
    example: int = -1           # lowest network index in the group
    known: str = ""             # dataset weight point whose outputs match (e.g. W0, remark2 on paper10)
    same_as: int = 0            # number of an earlier plateau this one is an image of under a dataset symmetry

    @property
    def label(self) -> str:
        return f"plateau {self.number}" + (f" ({self.known})" if self.known else "")


def _split_by_gaps(values: np.ndarray, tol: float) -> list[np.ndarray]:
    """Index groups of `values`, split where sorted neighbours differ by more than tol."""
    order = np.argsort(values, kind="stable")
    cuts = np.flatnonzero(np.diff(values[order]) > tol) + 1
    return np.split(order, cuts)


def _leader_labels(vectors: np.ndarray, tol: float) -> np.ndarray:
    """Leader clustering in row order: a row joins the first leader within tol in every entry."""
    labels = np.full(len(vectors), -1, dtype=np.int64)
    leaders: list[int] = []
    for i, v in enumerate(vectors):
        if leaders:
            near = np.flatnonzero(np.abs(vectors[leaders] - v).max(axis=1) <= tol)
            if near.size:
                labels[i] = labels[leaders[near[0]]]
                continue
        labels[i] = len(leaders)
        leaders.append(i)
    return labels


def drifting_plateaus(weights, outcome, index, loss, X, y, *, hidden: int, activation: str,
                      classification: bool, n_networks: int, accuracy=None, loss_tol: float = 1e-2,
                      output_tol: float = 0.05, known: dict | None = None) -> list[Plateau]:
    """Group the drifting runs of a cell (arrays as stored, rows in network-index order) by limiting plateau.

    known maps names to weight points; a plateau whose median outputs are within output_tol of a
    point's outputs is named after it (the paper's W0 and Remark 2 points are such plateaus)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sel = np.flatnonzero(np.asarray(outcome) == DRIFTING)
    if sel.size == 0:
        return []
    W = np.asarray(weights, dtype=np.float64)[sel]
    act, d = ACTIVATIONS[activation], X.shape[1]
    z = logits_many(np.ascontiguousarray(W), X, d, hidden, act)
    out = 0.5 * (1.0 + np.tanh(0.5 * z)) if classification else z
    L = np.asarray(loss, dtype=np.float64)[sel]
    idx = np.asarray(index)[sel]
    acc = None if accuracy is None else np.asarray(accuracy, dtype=np.float64)[sel]
    labels = _leader_labels(out, output_tol)
    groups = []
    for g in range(labels.max() + 1):
        members = np.flatnonzero(labels == g)
        for part in _split_by_gaps(L[members], loss_tol):
            m = members[part]
            med = np.median(out[m], axis=0)
            if classification:
                undecided = tuple(int(i) for i in np.flatnonzero(np.abs(med - 0.5) <= output_tol))
                wrong = tuple(int(i) for i in np.flatnonzero((med > 0.5) != (y > 0.5)) if i not in undecided)
                a = float(np.median(acc[m])) if acc is not None else 1.0 - (len(wrong) + len(undecided)) / len(y)
            else:
                undecided, wrong, a = (), (), float("nan")
            groups.append(Plateau(
                number=0, loss=float(L[m].min()), loss_median=float(np.median(L[m])), loss_max=float(L[m].max()),
                accuracy=a, wrong=wrong, undecided=undecided, outputs=med,
                weight_scale=float(np.median(np.abs(W[m]).max(axis=1))),
                hits=len(m), fraction=rate(len(m), n_networks), example=int(idx[m].min())))
    for name, th in (known or {}).items():
        zk = logits(np.ascontiguousarray(th, dtype=np.float64), X, d, hidden, act)
        ok = 0.5 * (1.0 + np.tanh(0.5 * zk)) if classification else zk
        for p in groups:
            if not p.known and np.abs(p.outputs - ok).max() <= output_tol:
                p.known = name
    groups.sort(key=lambda p: (-p.hits, p.loss, p.example))
    for i, p in enumerate(groups, 1):
        p.number = i
    syms = dataset_symmetries(X, y, classification)
    if syms and len(groups) > 1:
        first = symmetry_classes([p.outputs for p in groups], [p.loss for p in groups], syms,
                                 classification=classification, tol=output_tol, loss_tol=loss_tol)
        for p, f in zip(groups, first):
            p.same_as = 0 if groups[f] is p else groups[f].number
    return groups


def cell_plateaus(cell: CellRef, *, loss_tol: float = 1e-2, output_tol: float = 0.05, data=None,
                  progress: bool = True) -> list[Plateau]:
    """drifting_plateaus for a stored cell."""
    ds = cell.dataset()
    if data is None:
        data = read_cells([cell], PLATEAU_FIELDS, progress=progress)[0]
    return drifting_plateaus(data["weights"], data["outcome"], data["index"], data["loss"], ds.x, ds.y,
                             hidden=cell.hidden, activation=cell.activation,
                             classification=cell.kind == "classification", n_networks=len(data["index"]),
                             accuracy=data.get("accuracy"), loss_tol=loss_tol, output_tol=output_tol,
                             known={n: p.theta for n, p in ds.points.items()
                                    if (p.hidden, p.activation) == (cell.hidden, cell.activation)})


def _points(ix) -> str:
    return ",".join(f"x{i + 1}" for i in ix) or "none"


def plateau_table(plateaus: list[Plateau], title: str = "Drifting runs by limiting plateau",
                  classification: bool = True) -> Table:
    """One row per plateau; points are numbered 1-based (x1, x2, ... as in the paper)."""
    cols = ["#", "loss level", "loss median", "accuracy", "misclassified", "undecided", "outputs", "max|theta|",
            "hits", "basin", "95% CI", "example", "known", "image of"]
    if not classification:
        for c in ("accuracy", "misclassified", "undecided"):
            cols.remove(c)
    t = Table(cols, title=title, formats={"loss level": ".5g", "loss median": ".5g", "accuracy": ".3g",
                                           "max|theta|": ".3g", "basin": "%", "95% CI": "%"})
    for p in plateaus:
        outs = " ".join(f"{v:.2f}" for v in p.outputs)
        row = [p.number, p.loss, p.loss_median, p.accuracy, _points(p.wrong), _points(p.undecided),
               outs, p.weight_scale, p.hits, p.fraction.p, p.fraction.ci, p.example, p.known,
               f"#{p.same_as}" if p.same_as else ""]
        if not classification:
            del row[3:6]
        t.add(*row)
    return t


__all__ = ["Plateau", "drifting_plateaus", "cell_plateaus", "plateau_table"]
