"""`badminima report`: result files -> report.md with tables (Markdown + CSV) and figures (PNG + PDF).

Layout of the output directory:
    report.md            everything below, in reading order
    outcomes.csv         every (cell, outcome): k, n, rate, Wilson interval
    differences.csv      neighbouring cells (differ in one design key): solved-rate differences, Newcombe
    paper.csv            solved rate vs the paper's Table 1, where the paper covers the cell
    cells/NN-minima.csv, cells/NN-plateaus.csv   per cell, when there are any
    figures/*.png, *.pdf
"""
from __future__ import annotations

import datetime
import re
from pathlib import Path

from badminima.engine.data.datasets import DataError
from badminima.engine.train.progress import Progress
from badminima.analysis import figures, plots
from badminima.analysis.load import CellRef, load_cells
from badminima.analysis.minima import cell_minima, minima_table
from badminima.analysis.plateaus import cell_plateaus, plateau_table
from badminima.analysis.stats import differences_table, neighbour_pairs, outcome_table, paper_table, rates_table


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60]


class _Writer:
    """Collects Markdown and saves figures under figures/ (PNG, plus PDF if asked)."""

    def __init__(self, out: Path, pdf: bool, dpi: int):
        self.out, self.pdf, self.dpi = out, pdf, dpi
        self.md: list[str] = []
        (out / "figures").mkdir(parents=True, exist_ok=True)

    def figure(self, fig, name: str, caption: str) -> None:
        png = figures.save(fig, self.out / "figures" / f"{name}.png", dpi=self.dpi)
        if self.pdf:
            figures.save(fig, self.out / "figures" / f"{name}.pdf")
        self.md += [f"![{caption}](figures/{png.name})", ""]

    def table(self, table, csv_name: str | None = None) -> None:
        self.md += [table.markdown(), ""]
        if csv_name:
            path = self.out / csv_name
            path.parent.mkdir(parents=True, exist_ok=True)
            table.write(path)
            self.md += [f"CSV: [{csv_name}]({csv_name})", ""]


def _header(cells: list[CellRef], files: list[str]) -> list[str]:
    runs = list(dict.fromkeys(id(c.results) for c in cells))
    md = ["# badminima report", "",
          f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} from {len(files)} file(s), "
          f"{len(runs)} run(s), {len(cells)} cell(s).", ""]
    shown = files if len(files) <= 12 else files[:10] + [f"... and {len(files) - 10} more"]
    md += [f"- `{f}`" for f in shown] + [""]
    bad = [c for c in cells if not c.complete]
    if bad:
        md += ["**Incomplete cells** (interrupted run or missing shards; rates use the committed networks):", ""]
        md += [f"- {c.label}: {c.n} of {c.n_total} networks" for c in bad] + [""]
    return md


def _cell_section(w: _Writer, k: int, cell: CellRef, *, tol: float, loss_tol: float, cell_figures: bool,
                  progress: bool) -> None:
    tag = f"{k:02d}-{_slug(cell.label)}"
    cls = cell.kind == "classification"
    w.md += [f"### {cell.label}", "",
             f"{cell.n} networks; configuration: `{_config_line(cell.config)}`", ""]
    data = cell.data(plots.NET_FIELDS)
    try:
        d = cell.dataset().d
    except DataError as e:          # moved or edited dataset file: rates only, say why
        w.md += [f"Dataset unavailable, so no minima, plateaus or network figures: {e}", ""]
        if cell_figures:
            w.figure(plots.plot_losses([cell], datas=[data]), f"{tag}-losses", f"final losses, {cell.label}")
        return
    minima = cell_minima(cell, tol=tol, data=data, progress=progress)
    plateaus = cell_plateaus(cell, loss_tol=loss_tol, data=data)
    if minima:
        w.table(minima_table(minima, classification=cls), f"cells/{tag}-minima.csv")
    if plateaus:
        w.table(plateau_table(plateaus, classification=cls), f"cells/{tag}-plateaus.csv")
    if not minima and not plateaus:
        w.md += ["No finite critical points and no drifting runs.", ""]
    if not cell_figures:
        return
    w.figure(plots.plot_losses([cell], datas=[data]), f"{tag}-losses", f"final losses, {cell.label}")
    if minima or plateaus:
        w.figure(plots.plot_basins([cell], minima=minima, plateaus=plateaus), f"{tag}-basins",
                 f"basin fractions, {cell.label}")
    if cls and d == 2:
        w.figure(plots.plot_regions([cell], data=data), f"{tag}-regions", f"decision regions, {cell.label}")
    elif d == 1:
        w.figure(plots.plot_fit([cell], data=data), f"{tag}-fit", f"fits, {cell.label}")


def _config_line(cfg: dict) -> str:
    keys = ("dataset", "hidden", "activation", "optimizer", "lr", "steps", "init", "seed", "dtype", "networks")
    parts = []
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, dict):
            v = f"{v.get('law')}:{v.get('scale')}" + ("" if v.get("bias") == "same" else " zero-bias")
        parts.append(f"{k}={v}")
    return " ".join(parts)


def write_report(paths, out_dir, *, tol: float = 1e-4, loss_tol: float = 1e-2, pdf: bool = True,
                 dpi: int = figures.DEFAULT_DPI, cell_figures: bool = True, progress: bool = True) -> Path:
    """Analyse the result files and write out_dir/report.md (with CSVs and figures); returns its path."""
    out = Path(out_dir)
    cells = load_cells(paths, progress=progress)
    files = [f for run in dict.fromkeys(c.results for c in cells) for f in run.files]
    w = _Writer(out, pdf, dpi)
    w.md += _header(cells, files)

    w.md += ["## Outcome rates", "",
             "Percent of networks with each outcome and its Wilson 95% interval (outcomes that never occur "
             "are left out; all are in the CSV).", ""]
    w.md += [rates_table(cells).markdown(), ""]
    outcome_table(cells).write(out / "outcomes.csv")
    w.md += ["CSV: [outcomes.csv](outcomes.csv)", ""]

    cls = [c for c in cells if c.kind == "classification"]
    if cls:
        series = plots.convergence_series(cls)
        if any(len(s["h"]) > 1 or s.get("paper") for s in series):
            w.md += ["## Convergence vs hidden units", "",
                     "Solved (100% training accuracy) rate vs h with Wilson 95% bars; crosses on dotted lines are "
                     "the paper's Table 1 (its protocol is unstated, see docs/paper.md).", ""]
            w.figure(plots.plot_convergence(cls), "convergence", "solved rate vs h")
        pt = paper_table(cls)
        if pt.rows:
            w.md += ["## Against the paper's Table 1", "",
                     "The paper's percentages carry no sample size; 'paper in CI?' asks only whether the printed "
                     "value lies inside our Wilson interval.", ""]
            w.table(pt, "paper.csv")

    pairs = neighbour_pairs(cells)
    if pairs:
        w.md += ["## Differences between neighbouring cells", "",
                 "Pairs of cells that differ in exactly one design key; difference of solved rates in percentage "
                 "points with Newcombe's hybrid score 95% interval ('clear?' = interval excludes 0).", ""]
        w.table(differences_table(pairs), "differences.csv")

    w.md += ["## Cells", "",
             f"Distinct finite critical points (local_minimum / saddle / flat end points) are grouped modulo "
             f"hidden-unit permutations, sign flips (sigmoid, tanh) and positive rescaling (ReLU) with tolerance "
             f"{tol:g} after Newton refinement; symmetry classes computing the same function on the data are "
             f"merged ('classes' > 1 marks a continuum). Loss, accuracy, min eig (smallest eigenvalue of the "
             f"mean-loss Hessian) are exact at the refined representative. Drifting runs are grouped by their "
             f"outputs on the training points (within 0.05) and by final-loss gaps larger than {loss_tol:g}; "
             f"'loss level' is the lowest final loss in the group, 'outputs' the median output on each training "
             f"point, 'undecided' the points stuck at an output of 1/2. Basin = share of all networks of the cell, "
             f"Wilson 95%.", ""]
    prog = Progress(sum(c.n for c in cells), "networks analysed", enabled=progress)
    try:
        for k, cell in enumerate(cells, 1):
            _cell_section(w, k, cell, tol=tol, loss_tol=loss_tol, cell_figures=cell_figures, progress=progress)
            prog.update(cell.n)
    finally:
        prog.close()
    path = out / "report.md"
    path.write_text("\n".join(w.md).rstrip() + "\n")
    return path


__all__ = ["write_report"]
