"""Distinct minima modulo the network's symmetries, with hit counts and basin fractions.

Symmetries of a d-h-1 network (engine/core/layout.py order: per unit v_j, w_j, b_j, then c):
  * every activation: permutations of the hidden units;
  * sigmoid: sign flip of unit j, (w_j, b_j, v_j, c) -> (-w_j, -b_j, -v_j, c + v_j)  (sigma(-a) = 1 - sigma(a));
  * tanh:    sign flip of unit j, (w_j, b_j, v_j) -> (-w_j, -b_j, -v_j);
  * ReLU:    positive rescaling of unit j, (w_j, b_j, v_j) -> (a w_j, a b_j, v_j / a), a > 0.
`canonical` maps a point to one representative of its orbit: sigmoid/tanh units flipped to v_j >= 0,
ReLU units rescaled to ||(w_j, b_j)|| = 1, units sorted by v_j (descending).  With the training data,
ReLU units that are inactive on every data point ("dead": the loss does not depend on them) are
set to zero, so dead units with different weights do not make different minima.

Two canonical points are the same minimum when some unit permutation (and, for units with v_j ~ 0,
a flip) matches them within `tol` in every parameter (bottleneck assignment, scipy
linear_sum_assignment).  Grouping is leader clustering in network-index order, so the result does not
depend on how a run was sharded.

Beyond the symmetries, critical points can form continua of equal loss (ReLU: a kink free to move
between two data points, a unit active on every point; sigmoid: saturated units).  Tolerance
clustering would cut such a continuum into arbitrary pieces with meaningless basin fractions, so by
default symmetry classes that compute the same function on the training data (outputs within tol
on every point and, for ReLU, the same activation pattern up to unit order) are merged into one
minimum; its `points` field counts the symmetry classes merged (> 1 flags a continuum).  End points are first refined by a few guarded Newton steps with the
exact Hessian of engine.core.model, which pins a nondegenerate critical point to ~1e-12 even where the
smallest eigenvalue is tiny (Theorem 1's is ~2e-4 for the mean loss, so gtol = 1e-6 alone leaves ~5e-3).
Each distinct point is called a local minimum, saddle or flat point as the engine classified the
runs that end there (the most common verdict, or "saddle/flat" where a continuum holds both in
force; see _group_kind), and labelled so ("saddle 2"); the table lists every verdict of its runs.
Entries that are images of each other under a symmetry of the dataset (analysis/symmetry.py; e.g.
XOR's reflections) have equal loss and accuracy: the later ones point to the first in `same_as`
("image of #1" in the table).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from badminima.engine.core.layout import hidden_from_params
from badminima.engine.core.model import evaluate, hessian, logits, logits_many
from badminima.engine.core.names import ACTIVATIONS, LOSSES
from badminima.engine.core.outcomes import FLAT, LOCAL_MINIMUM, NAMES, SADDLE
from badminima.engine.train.progress import Progress
from badminima.analysis.load import CellRef, read_cells
from badminima.analysis.stats import Rate, rate
from badminima.analysis.symmetry import dataset_symmetries, symmetry_classes
from badminima.analysis.tables import Table

FINITE_CRITICAL = (LOCAL_MINIMUM, SADDLE, FLAT)
MINIMA_FIELDS = ["index", "outcome", "loss", "weights"]
KIND_LABELS = {"local_minimum": "local min", "saddle": "saddle", "flat": "flat point"}
#: the engine's default |lambda_min| below which a critical point is flat (TrainConfig.eig_tol)
EIG_TOL = 1e-8


#: a verdict given to at least this share of a group's runs is part of its kind ("saddle/flat")
KIND_SHARE = 0.1


def _group_kind(codes, refined: str) -> str:
    """A group's kind from the engine's verdicts on its runs: the verdict of them all, or of the most
    common one ("saddle"), or, where several verdicts each cover at least KIND_SHARE of the runs (a
    continuum of critical points, e.g. ReLU units free to move, holds points of both kinds), those
    joined in the order local_minimum, saddle, flat ("saddle/flat"); `refined`, the engine's rule at
    the refined representative (critical_kind), breaks ties."""
    tally = Counter(NAMES[int(c)] for c in codes)
    if not tally:
        return refined
    n = sum(tally.values())
    major = [NAMES[c] for c in FINITE_CRITICAL if tally.get(NAMES[c], 0) >= KIND_SHARE * n]
    if len(major) > 1:
        return "/".join(major)
    top = max(tally.values())
    best = [k for k, v in tally.items() if v == top]
    return refined if refined in best else sorted(best)[0]


def kind_label(kind: str) -> str:
    """'local min', 'saddle', 'flat point', 'saddle/flat point'."""
    names = "/".join(KIND_LABELS[k].replace(" point", "") for k in kind.split("/"))
    return names + (" point" if kind.endswith("flat") else "")


def critical_kind(min_eig: float, eig_tol: float = EIG_TOL) -> str:
    """The engine's verdict on a finite critical point from the smallest eigenvalue of its mean-loss
    Hessian (engine/core/classify.py, end_state): local_minimum above eig_tol, saddle below -eig_tol,
    flat in between."""
    code = LOCAL_MINIMUM if min_eig > eig_tol else SADDLE if min_eig < -eig_tol else FLAT
    return NAMES[code]


# ------------------------------------------------------------------------------------ symmetry

def _blocks(theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, h, d+2) unit blocks [v, w_0..w_{d-1}, b] and (n,) output biases, copies."""
    th = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    h = hidden_from_params(th.shape[1], d)
    return th[:, : h * (d + 2)].reshape(len(th), h, d + 2).copy(), th[:, -1].copy()


def dead_units(theta: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n, h) bool: ReLU units whose pre-activation is <= 0 on every data point."""
    d = X.shape[1]
    blk, _ = _blocks(theta, d)
    pre = np.einsum("nhk,ik->nhi", blk[:, :, 1:1 + d], X) + blk[:, :, 1 + d][:, :, None]
    return np.all(pre <= 0.0, axis=2)


def canonical(theta, d: int, activation: str, X: np.ndarray | None = None) -> np.ndarray:
    """The canonical representative of each point's symmetry orbit; (P,) -> (P,), (n, P) -> (n, P).

    X (the training inputs) enables the ReLU dead-unit collapse described in the module docstring.
    """
    theta = np.asarray(theta, dtype=np.float64)
    blk, c = _blocks(theta, d)
    if activation in ("sigmoid", "tanh"):
        neg = blk[:, :, 0] < 0
        if activation == "sigmoid":
            c = c + np.where(neg, blk[:, :, 0], 0.0).sum(axis=1)
        blk = np.where(neg[:, :, None], -blk, blk)
    elif activation == "relu":
        if X is not None:
            blk[dead_units(theta, X)] = 0.0
        norm = np.linalg.norm(blk[:, :, 1:], axis=2)
        scale = np.where(norm > 0, norm, 1.0)
        blk[:, :, 1:] /= scale[:, :, None]
        blk[:, :, 0] *= scale
    else:
        raise ValueError(f"unknown activation {activation!r}")
    for i in range(len(blk)):                                  # units by v desc, then w, b
        keys = [blk[i, :, k] for k in range(d + 1, 0, -1)] + [-blk[i, :, 0]]
        blk[i] = blk[i][np.lexsort(keys)]
    out = np.concatenate([blk.reshape(len(blk), -1), c[:, None]], axis=1)
    return out[0] if theta.ndim == 1 else out


def _unit_costs(a: np.ndarray, b: np.ndarray, d: int, activation: str) -> tuple[np.ndarray, float]:
    """Max-abs distance between every unit of canonical a and of canonical b, and |c_a - c_b|."""
    ba, ca = _blocks(a, d)
    bb, cb = _blocks(b, d)
    ba, bb = ba[0], bb[0]
    cost = np.abs(ba[:, None, :] - bb[None, :, :]).max(axis=2)
    if activation in ("sigmoid", "tanh"):      # ambiguous orientation of units with v ~ 0
        cost = np.minimum(cost, np.abs(ba[:, None, :] + bb[None, :, :]).max(axis=2))
    return cost, float(abs(ca[0] - cb[0]))


def _matchable(cost: np.ndarray, t: float) -> bool:
    """Is there a unit permutation with every matched cost <= t?"""
    bad = (cost > t).astype(np.float64)
    r, k = linear_sum_assignment(bad)
    return bad[r, k].sum() == 0.0


def symmetry_distance(a, b, d: int, activation: str, X: np.ndarray | None = None) -> float:
    """min over symmetries g of max_i |g(a)_i - b_i| (exact bottleneck over unit permutations)."""
    ca, cb = canonical(a, d, activation, X), canonical(b, d, activation, X)
    cost, dc = _unit_costs(ca, cb, d, activation)
    vals = np.unique(cost)
    lo, hi = 0, len(vals) - 1
    while lo < hi:                      # smallest threshold that admits a perfect matching
        mid = (lo + hi) // 2
        if _matchable(cost, vals[mid]):
            hi = mid
        else:
            lo = mid + 1
    return float(max(vals[lo], dc))


def group_by_symmetry(thetas, d: int, activation: str, tol: float = 1e-4,
                      X: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Leader clustering modulo symmetry: (labels (n,), canonical leaders (k, P)); label = leader number.

    A point joins the first leader (in input order) it matches within tol in every parameter.
    """
    can = canonical(np.atleast_2d(thetas), d, activation, X)
    n = len(can)
    labels = np.full(n, -1, dtype=np.int64)
    leaders: list[int] = []
    if n == 0:
        return labels, can[:0]
    h = hidden_from_params(can.shape[1], d)
    vcols = np.arange(h) * (d + 2)
    vs = can[:, vcols]                   # sorted descending: a permutation-invariant prefilter
    ctol = tol * (h + 1)                 # c may differ by flips of units with |v| <= tol
    for i in range(n):
        found = -1
        if leaders:
            L = np.asarray(leaders)
            cand = L[(np.abs(vs[L] - vs[i]).max(axis=1) <= tol) & (np.abs(can[L, -1] - can[i, -1]) <= ctol)]
            for j in cand:
                cost, dc = _unit_costs(can[j], can[i], d, activation)
                if dc <= ctol and _matchable(cost, tol):
                    found = int(labels[j])
                    break
        if found < 0:
            found = len(leaders)
            leaders.append(i)
        labels[i] = found
    return labels, can[np.asarray(leaders)]


def relu_patterns(points, X: np.ndarray) -> list[tuple]:
    """Per point, the sorted activation patterns on the data (one bool tuple per point of X) of its
    ReLU units that are on somewhere and have v != 0 (a unit with v = 0 computes nothing)."""
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    d = X.shape[1]
    blk, _ = _blocks(pts, d)
    on = np.einsum("nhk,ik->nhi", blk[:, :, 1:1 + d], X) + blk[:, :, 1 + d][:, :, None] > 0
    on &= blk[:, :, :1] != 0.0
    return [tuple(sorted(tuple(bool(b) for b in u) for u in o if u.any())) for o in on]


def function_families(points, X: np.ndarray, hidden: int, activation: str, tol: float = 1e-4) -> np.ndarray:
    """Family label per point: same outputs on the training points within tol (leader clustering in
    input order) and, for ReLU, the same multiset of per-unit activation patterns on the data."""
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    X = np.ascontiguousarray(X, dtype=np.float64)
    d, act = X.shape[1], ACTIVATIONS[activation]
    z = logits_many(np.ascontiguousarray(pts), X, d, hidden, act)
    keys = relu_patterns(pts, X) if activation == "relu" else [()] * len(pts)
    labels = np.full(len(pts), -1, dtype=np.int64)
    leaders: list[int] = []
    for i in range(len(pts)):
        for j in leaders:
            if keys[j] == keys[i] and np.abs(z[j] - z[i]).max() <= tol:
                labels[i] = labels[j]
                break
        else:
            labels[i] = len(leaders)
            leaders.append(i)
    return labels


# ------------------------------------------------------------------------------------ refinement

def refine(theta, X, y, hidden: int, activation: str, loss: str, iters: int = 12,
           gtol: float = 1e-13) -> tuple[np.ndarray, float]:
    """A few guarded Newton steps (exact Hessian, least squares for singular ones) towards the nearby
    critical point; a step is kept only if it is small and lowers ||grad||.  Returns (theta, ||grad||)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    d, act, lc = X.shape[1], ACTIVATIONS[activation], LOSSES[loss]
    th = np.array(theta, dtype=np.float64)
    _, _, g = evaluate(th, X, y, d, hidden, act, lc)
    gn = float(np.linalg.norm(g))
    for _ in range(iters):
        if not gn > gtol:
            break
        H = hessian(th, X, y, d, hidden, act, lc)
        step = np.linalg.lstsq(H, -g, rcond=1e-12)[0]
        if not np.all(np.isfinite(step)) or np.abs(step).max() > 0.1 * (1.0 + np.abs(th).max()):
            break
        new = th + step
        _, _, g2 = evaluate(new, X, y, d, hidden, act, lc)
        gn2 = float(np.linalg.norm(g2))
        if not gn2 < gn:
            break
        th, g, gn = new, g2, gn2
    return th, gn


#: a logit within this of 0 (an output within 2.5e-10 of 1/2) decides no class: at critical points whose
#: outputs are 1/2 the logit's sign is rounding noise, and would make equal functions differ in accuracy
TIE_LOGIT = 1e-9


def point_summary(theta, X, y, hidden: int, activation: str, loss: str) -> dict:
    """Exact mean loss, accuracy, ||grad|| and smallest Hessian eigenvalue (mean loss) at theta; a point
    counts as classified right only when its logit is beyond TIE_LOGIT on the right side."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    d, act, lc = X.shape[1], ACTIVATIONS[activation], LOSSES[loss]
    th = np.ascontiguousarray(theta, dtype=np.float64)
    L, acc, g = evaluate(th, X, y, d, hidden, act, lc)
    if loss == "xent":
        z = logits(th, X, d, hidden, act)
        acc = float(np.mean(np.where(y > 0.5, z > TIE_LOGIT, z < -TIE_LOGIT)))
    eig = np.linalg.eigvalsh(hessian(th, X, y, d, hidden, act, lc))
    return {"loss": float(L), "accuracy": float(acc), "grad_norm": float(np.linalg.norm(g)), "min_eig": float(eig[0])}


# ------------------------------------------------------------------------------------ distinct minima

@dataclass
class Minimum:
    """One distinct finite critical point (an orbit under the symmetries) and the runs that end there."""
    number: int                 # 1-based, by decreasing hit count
    theta: np.ndarray           # refined leader, canonical form
    example: int                # network index of the leader (lowest index in the group)
    loss: float                 # exact, at theta
    accuracy: float
    grad_norm: float
    min_eig: float              # smallest eigenvalue of the mean-loss Hessian at theta
    hits: int
    fraction: Rate              # hits / networks in the cell, Wilson 95%
    outcomes: dict = field(default_factory=dict)   # stored outcome name -> count within the group
    loss_spread: float = 0.0    # max - min of the members' losses where their verdicts were made
    known: str = ""             # name of a dataset weight point in the same orbit (e.g. W_hat)
    points: int = 1             # symmetry classes merged into this minimum (> 1: a continuum of equal loss)
    kind: str = "local_minimum"  # the engine's verdicts on the group's runs: local_minimum, saddle, flat, "saddle/flat"
    same_as: int = 0            # number of an earlier entry this one is an image of under a dataset symmetry

    @property
    def label(self) -> str:
        """'local min 1', 'saddle 2', 'flat point 3', 'saddle/flat point 4' (+ a dataset point's name);
        the number is the row's #."""
        return f"{kind_label(self.kind)} {self.number}" + (f" ({self.known})" if self.known else "")


def distinct_minima(weights, outcome, index, X, y, *, hidden: int, activation: str, loss: str,
                    n_networks: int, stored_loss=None, tol: float = 1e-4, refine_points: bool = True,
                    known: dict | None = None, merge_function: bool = True, eig_tol: float = EIG_TOL,
                    progress: bool = False) -> list[Minimum]:
    """Group the finite critical end points (local_minimum/saddle/flat) modulo symmetry.

    weights (n, P), outcome (n,), index (n,) are a cell's arrays; n_networks is the basin denominator
    (networks in the cell); known maps names to weight points to recognise (e.g. {"W_hat": theta});
    merge_function merges symmetry classes with the same function on the data (module docstring);
    eig_tol: the engine's threshold, for critical_kind at the refined point (ties of verdicts); an entry
    that is an image of an earlier one under a symmetry of the dataset (analysis/symmetry.py) gets its
    number in `same_as`; progress shows a line while refining (about 1 ms per point).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    d = X.shape[1]
    sel = np.flatnonzero(np.isin(np.asarray(outcome), FINITE_CRITICAL))
    if sel.size == 0:
        return []
    pts = np.array(weights, dtype=np.float64)[sel]
    if refine_points:
        prog = Progress(len(pts), "critical points refined", enabled=progress and len(pts) >= 2000)
        try:
            for i in range(len(pts)):
                pts[i] = refine(pts[i], X, y, hidden, activation, loss)[0]
                if i % 256 == 255 or i == len(pts) - 1:
                    prog.update(i % 256 + 1)
        finally:
            prog.close()
    dead_x = X if activation == "relu" else None
    labels, leaders = group_by_symmetry(pts, d, activation, tol, dead_x)
    lead_rows = np.array([np.flatnonzero(labels == g)[0] for g in range(len(leaders))])
    if merge_function:
        fam = function_families(pts[lead_rows], X, hidden, activation, tol)
    else:
        fam = np.arange(len(leaders))
    classes = np.bincount(fam)
    labels = fam[labels]
    outs = np.asarray(outcome)[sel]
    idx = np.asarray(index)[sel]
    sl = None if stored_loss is None else np.asarray(stored_loss)[sel]
    known_can = {}
    for name, th in (known or {}).items():
        th = refine(th, X, y, hidden, activation, loss)[0] if refine_points else np.asarray(th, float)
        known_can[name] = th
    found = []
    for g in range(len(classes)):
        members = np.flatnonzero(labels == g)
        lead = pts[members[0]]
        s = point_summary(lead, X, y, hidden, activation, loss)
        name = ""
        for kn, th in known_can.items():
            if symmetry_distance(th, lead, d, activation, dead_x) <= max(tol, 1e-3):
                name = kn
                break
        found.append(Minimum(
            number=0, theta=canonical(lead, d, activation, dead_x), example=int(idx[members[0]]), loss=s["loss"], accuracy=s["accuracy"],
            grad_norm=s["grad_norm"], min_eig=s["min_eig"], hits=len(members),
            fraction=rate(len(members), n_networks),
            outcomes=dict(Counter(NAMES[int(o)] for o in outs[members]).most_common()),
            loss_spread=0.0 if sl is None else float(np.ptp(sl[members])), known=name,
            points=int(classes[g]), kind=_group_kind(outs[members], critical_kind(s["min_eig"], eig_tol))))
    found.sort(key=lambda m: (-m.hits, m.loss, m.example))
    for i, m in enumerate(found, 1):
        m.number = i
    syms = dataset_symmetries(X, y, loss == "xent")
    if syms and len(found) > 1:
        z = np.array([logits(np.ascontiguousarray(m.theta), X, d, hidden, ACTIVATIONS[activation]) for m in found])
        pats = relu_patterns(np.array([m.theta for m in found]), X) if activation == "relu" else None
        first = symmetry_classes(z, [m.loss for m in found], syms, classification=False, tol=max(tol, 1e-6) * 10,
                                 loss_tol=max(tol, 1e-9), patterns=pats)
        for m, f in zip(found, first):
            m.same_as = 0 if found[f] is m else found[f].number
    return found


def cell_minima(cell: CellRef, *, tol: float = 1e-4, refine_points: bool = True, data=None,
                progress: bool = True) -> list[Minimum]:
    """distinct_minima for a stored cell; the dataset's weight points of this architecture are recognised."""
    ds = cell.dataset()
    if data is None:
        data = read_cells([cell], MINIMA_FIELDS, progress=progress)[0]
    known = {name: p.theta for name, p in ds.points.items()
             if p.hidden == cell.hidden and p.activation == cell.activation}
    loss = "xent" if cell.kind == "classification" else "mse"
    return distinct_minima(data["weights"], data["outcome"], data["index"], ds.x, ds.y, hidden=cell.hidden,
                           activation=cell.activation, loss=loss, n_networks=len(data["index"]),
                           stored_loss=data.get("loss"), tol=tol, refine_points=refine_points, known=known,
                           eig_tol=float(cell.config.get("eig_tol", EIG_TOL)), progress=progress)


def minima_table(minima: list[Minimum], title: str = "Distinct finite critical points (modulo symmetry)",
                 classification: bool = True) -> Table:
    cols = ["#", "kind", "loss", "accuracy", "min eig", "|grad|", "hits", "basin", "95% CI", "outcomes", "classes",
            "example", "known", "image of"]
    if not classification:
        cols.remove("accuracy")
    t = Table(cols, title=title, formats={"loss": ".6g", "accuracy": ".3g", "min eig": ".3g", "|grad|": ".1e",
                                           "basin": "%", "95% CI": "%"})
    for m in minima:
        row = [m.number, kind_label(m.kind), m.loss, m.accuracy, m.min_eig, m.grad_norm, m.hits, m.fraction.p,
               m.fraction.ci, ", ".join(f"{k} {v}" for k, v in m.outcomes.items()), m.points, m.example, m.known,
               f"#{m.same_as}" if m.same_as else ""]
        if not classification:
            del row[3]
        t.add(*row)
    return t


__all__ = ["critical_kind", "kind_label", "relu_patterns", "KIND_LABELS",
           "canonical", "dead_units", "symmetry_distance", "group_by_symmetry", "refine", "point_summary",
           "function_families", "Minimum", "distinct_minima", "cell_minima", "minima_table", "FINITE_CRITICAL"]
