"""Outcome rates with Wilson 95% intervals, and differences between cells with Newcombe intervals.

    rate(812, 1000)                 -> Rate(k=812, n=1000, p=0.812, ci=Interval(0.7866.., 0.8350..))
    difference(56, 70, 48, 80)      -> Diff(d=0.2, ci=Interval(0.0524.., 0.3339..))   # Newcombe 1998, Table II (a)
    rates_table(cells), outcome_table(cells), differences_table(pairs), paper_table(cells)

The difference interval is Newcombe's hybrid score interval (his method 10): with Wilson intervals
(l1, u1) for p1 and (l2, u2) for p2,  d - sqrt((p1-l1)^2 + (u2-p2)^2)  to  d + sqrt((u1-p1)^2 + (p2-l2)^2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from badminima.engine.data.datasets import DataError
from badminima.engine.core.outcomes import NAMES
from badminima.engine.paper.table1 import paper_column_name, paper_percentages
from badminima.analysis.load import CellRef
from badminima.analysis.tables import Estimate, Interval, Table
from badminima.analysis.wilson import wilson

OUTCOMES = tuple(NAMES.values())
#: configuration keys that define an experimental design axis (neighbouring cells differ in one)
DESIGN_KEYS = ("dataset", "activation", "optimizer", "hidden", "lr", "steps", "init", "dtype", "seed")
#: Table 1 column names in the datasets' claims ("GD sigmoid", "Adam ReLU")


@dataclass(frozen=True)
class Rate:
    """k successes out of n, the proportion p = k/n and its Wilson 95% interval (NaN if n = 0)."""
    k: int
    n: int
    p: float
    ci: Interval


@dataclass(frozen=True)
class Diff:
    """p1 - p2 and its Newcombe hybrid-score 95% interval."""
    a: Rate
    b: Rate
    d: float
    ci: Interval


def rate(k: int, n: int) -> Rate:
    """k out of n with its Wilson 95% interval."""
    k, n = int(k), int(n)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        nan = float("nan")
        return Rate(0, 0, nan, Interval(nan, nan))
    lo, hi = wilson(k, n)
    return Rate(k, n, k / n, Interval(float(lo), float(hi)))


def difference(k1: int, n1: int, k2: int, n2: int) -> Diff:
    """p1 - p2 with Newcombe's hybrid score interval (method 10 of Newcombe, Stat. Med. 1998)."""
    a, b = rate(k1, n1), rate(k2, n2)
    d = a.p - b.p
    if n1 == 0 or n2 == 0:
        return Diff(a, b, d, Interval(float("nan"), float("nan")))
    lo = d - math.sqrt((a.p - a.ci.lo) ** 2 + (b.ci.hi - b.p) ** 2)
    hi = d + math.sqrt((a.ci.hi - a.p) ** 2 + (b.p - b.ci.lo) ** 2)
    return Diff(a, b, d, Interval(max(lo, -1.0), min(hi, 1.0)))


def cell_rate(cell: CellRef, outcome: str = "solved", optimizer: bool = False) -> Rate:
    """The rate of one outcome among the cell's committed networks (from the file counts); `optimizer`:
    of the optimizer's own verdicts at the end of the budget (what the paper's Table 1 counts)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r} (choose from {', '.join(OUTCOMES)})")
    return rate((cell.optimizer_counts if optimizer else cell.counts)[outcome], cell.n)


# ------------------------------------------------------------------------------------------ tables

def rates_table(cells: list[CellRef], outcomes=OUTCOMES, title: str = "Outcome rates, % [Wilson 95%]",
                combined: bool = False) -> Table:
    """Wide table: one row per cell, per outcome the percentage and its interval (outcomes never seen
    dropped); combined: both in one column per outcome ("71.8 [69.7, 73.7]")."""
    shown = [o for o in outcomes if any(c.counts[o] for c in cells)] or list(outcomes[:1])
    cols = ["cell", "n"]
    for o in shown:
        cols += [o] if combined else [o, f"{o} 95% CI"]
    t = Table(cols, title=title, formats={o: "%" for o in shown} | {f"{o} 95% CI": "%" for o in shown})
    for c in cells:
        row = [c.label, c.n]
        for o in shown:
            r = cell_rate(c, o)
            row += [Estimate(r.p, r.ci)] if combined else [r.p, r.ci]
        t.add(*row)
    return t


def outcome_table(cells: list[CellRef], outcomes=OUTCOMES, title: str = "Outcome counts") -> Table:
    """Long table: one row per (cell, outcome) with k, n, rate and interval (every outcome listed)."""
    t = Table(["cell", "outcome", "k", "n", "rate", "95% CI"], title=title, formats={"rate": "%", "95% CI": "%"})
    for c in cells:
        for o in outcomes:
            r = cell_rate(c, o)
            t.add(c.label, o, r.k, r.n, r.p, r.ci)
    return t


def _design(c: CellRef) -> dict:
    return {k: c.config.get(k) for k in DESIGN_KEYS}


def neighbour_pairs(cells: list[CellRef]) -> list[tuple[CellRef, CellRef, str]]:
    """Pairs of cells whose design differs in exactly one key (dataset, activation, optimizer, h, lr, ...)."""
    out = []
    for i, a in enumerate(cells):
        da = _design(a)
        for b in cells[i + 1:]:
            db = _design(b)
            diff = [k for k in DESIGN_KEYS if da[k] != db[k]]
            if len(diff) == 1:
                out.append((a, b, diff[0]))
    return out


def differences_table(pairs, outcome: str = "solved", title: str | None = None) -> Table:
    """p(a) - p(b) of one outcome for each (a, b[, differing key]) pair, with Newcombe 95% intervals."""
    t = Table(["cell A", "cell B", "differs in", "A", "B", "A - B", "95% CI", "clear?"],
              title=title or f"Differences in the {outcome} rate, percentage points [Newcombe 95%]",
              formats={"A": "%", "B": "%", "A - B": "%", "95% CI": "%"})
    for pair in pairs:
        a, b = pair[0], pair[1]
        key = pair[2] if len(pair) > 2 else ""
        ra, rb = cell_rate(a, outcome), cell_rate(b, outcome)
        d = difference(ra.k, ra.n, rb.k, rb.n)
        clear = None if math.isnan(d.ci.lo) else bool(d.ci.lo > 0 or d.ci.hi < 0)
        t.add(a.label, b.label, key, ra.p, rb.p, d.d, d.ci, clear)
    return t


def paper_column(cell: CellRef) -> str:
    """The cell's Table 1 column name in the datasets' claims, e.g. 'GD sigmoid'."""
    return paper_column_name(cell.config.get("optimizer"), cell.activation)


def paper_values(cell: CellRef, dataset=None) -> tuple[list[int], list[float]] | None:
    """The paper's Table 1 column (h list, percents) for this cell's dataset/optimizer/activation, if any."""
    try:
        ds = dataset or cell.dataset()
    except DataError:           # dataset moved or changed since the run: no overlay
        return None
    col = paper_percentages(ds, cell.config.get("optimizer"), cell.activation)
    return (list(col), list(col.values())) if col else None


def paper_table(cells: list[CellRef], title: str = "Convergence (solved) vs the paper's Table 1") -> Table:
    """Our solved rate with its interval next to the paper's percentage, for cells the paper covers."""
    t = Table(["cell", "n", "solved", "95% CI", "paper", "paper in CI?"], title=title,
              formats={"solved": "%", "95% CI": "%", "paper": "%"})
    for c in cells:
        pv = paper_values(c)
        if pv is None or c.hidden not in pv[0]:
            continue
        paper = pv[1][pv[0].index(c.hidden)] / 100.0
        r = cell_rate(c, "solved", optimizer=True)
        t.add(c.label, c.n, r.p, r.ci, paper, None if r.n == 0 else bool(paper in r.ci))
    return t


__all__ = ["Rate", "Diff", "rate", "difference", "cell_rate", "rates_table", "outcome_table",
           "neighbour_pairs", "differences_table", "paper_column", "paper_values", "paper_table", "OUTCOMES"]
