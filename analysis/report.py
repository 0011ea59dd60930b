"""`badminima report`: result files -> a concise report.md, CSVs and figures (PNG + PDF).

The overview comes first and costs little whatever the files hold (rates from the files' counts):
outcome rates, the convergence figure, the paper's Table 1 beside ours (one small table per dataset:
rows h, a column per series), the clear differences between neighbouring cells.  Per-cell detail
(distinct critical points, plateaus, their figures) costs a Newton refinement per critical end point
and three figures per cell, so it is written on request: for the cells named (`cells`), for every cell
(`details=True`), or by default for every cell when the files hold at most AUTO_DETAILS cells.

Layout of the output directory:
    report.md            the overview, then the per-cell sections asked for
    outcomes.csv         every (cell, outcome): k, n, rate, Wilson interval
    differences.csv      every pair of neighbouring cells (differ in one design key), Newcombe intervals
    paper.csv            solved rate vs the paper's Table 1, where the paper covers the cell
    cells/NN-minima.csv, cells/NN-plateaus.csv   per detailed cell, when there are any
    figures/*.png, *.pdf
    .report-files        the list of the files above that this report wrote
Everything is written into a staging folder and moved into place at the end (``_staged``): an
interrupted report leaves the previous one whole; the previous report's files that the new one does not
write are removed (files of others in the folder stay).
"""
from __future__ import annotations

import contextlib
import datetime
import math
import numbers
import os
import re
import shutil
import tempfile
from pathlib import Path

from badminima.engine.data.datasets import DataError
from badminima.engine.store import StoreError
from badminima.engine.store.paths import atomic_files, is_hdf5, os_error_message, shell_quote
from badminima.engine.store.write import lock_run, unlock_run
from badminima.engine.train.config import ConfigError
from badminima.engine.train.progress import Progress
from badminima.analysis import figures, plots
from badminima.analysis.load import CellRef, cell_labels, load_cells, select_cells
from badminima.analysis.minima import cell_minima, minima_table
from badminima.analysis.plateaus import cell_plateaus, plateau_table
from badminima.analysis.stats import (cell_rate, differences_table, neighbour_pairs, outcome_table, paper_table,
                                      paper_values, rates_table)
from badminima.analysis.tables import Estimate, Table, format_value

#: files with at most this many cells get every cell's detail unless asked otherwise
AUTO_DETAILS = 4
#: clear differences shown in report.md (all pairs are in differences.csv)
TOP_DIFFERENCES = 12


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
    nets = sum(c.n for c in cells)
    md = ["# badminima report", "",
          f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} from {len(files)} file(s): "
          f"{len(runs)} run(s), {len(cells)} cell(s), {nets} networks.", ""]
    shown = files if len(files) <= 6 else files[:5] + [f"... and {len(files) - 5} more"]
    md += [f"- `{f}`" for f in shown] + [""]
    bad = [c for c in cells if not c.complete]
    if bad:
        md += ["**Incomplete cells** (interrupted run or missing shards; rates use the committed networks):", ""]
        md += [f"- {c.label}: {c.n} of {c.n_total} networks" for c in bad] + [""]
    return md


def paper_pivots(cells: list[CellRef]) -> tuple[list[Table], dict]:
    """The cells the paper's Table 1 covers as one table per dataset: rows h, a column per series (named
    by what varies between these cells) holding "ours [Wilson 95%] / paper" in percent, ours counting
    the optimizer's own verdict as the paper does; and {"cells", "inside", "mean_abs_diff"} over them."""
    covered = []
    for c in cells:
        pv = paper_values(c)
        if pv is not None and c.hidden in pv[0]:
            covered.append((c, pv[1][pv[0].index(c.hidden)] / 100.0))
    labels = cell_labels([c.config for c, _ in covered])
    by_ds: dict[str, dict] = {}
    diffs, inside = [], 0
    for (c, paper), label in zip(covered, labels):
        ds = Path(str(c.config["dataset"])).stem
        series = re.sub(r"\s*\bh=\d+\b", "", label).strip()
        series = series[len(ds):].strip() if series.startswith(ds + " ") else series
        r = cell_rate(c, "solved", optimizer=True)
        by_ds.setdefault(ds, {}).setdefault(series, {})[c.hidden] = (r, paper)
        diffs.append(abs(r.p - paper))
        inside += bool(paper in r.ci)
    tables = []
    for ds, series in by_ds.items():
        t = Table(["h"] + list(series), title=f"{ds}: solved %, ours [Wilson 95%] / the paper's")
        for h in sorted({h for v in series.values() for h in v}):
            row = [h]
            for v in series.values():
                r, paper = v.get(h, (None, None))
                row.append("-" if r is None else f"{format_value(Estimate(r.p, r.ci), '%')} / "
                                                 f"{100 * paper:g}")
            t.add(*row)
        tables.append(t)
    stats = {"cells": len(diffs), "inside": inside,
             "mean_abs_diff": 100 * sum(diffs) / len(diffs) if diffs else math.nan}
    return tables, stats


def clear_differences(table: Table, top: int = TOP_DIFFERENCES) -> Table:
    """The rows of a differences_table whose interval excludes 0, largest |A - B| first, at most `top`."""
    i_d, i_clear = table.columns.index("A - B"), table.columns.index("clear?")
    rows = sorted((r for r in table.rows if r[i_clear]), key=lambda r: -abs(r[i_d]))
    return Table(table.columns, rows[:top], title="", formats=table.formats)


def _overview(w: _Writer, cells: list[CellRef], out: Path) -> None:
    w.md += ["## Outcome rates", "",
             "Percent of networks with each outcome [Wilson 95% interval]; outcomes that never occur are left out "
             "(all are in the CSV, with full precision).", ""]
    w.md += [rates_table(cells, title="", combined=True).markdown(), ""]
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
        tables, st = paper_pivots(cls)
        if tables:
            w.md += ["## Against the paper's Table 1", "",
                     f"The paper's value lies inside our Wilson 95% interval in {st['inside']} of {st['cells']} cells; "
                     f"mean |ours - paper| = {st['mean_abs_diff']:.1f} points. Ours counts the optimizer's own verdict "
                     "at the end of its budget, as the paper does; the paper's percentages carry no sample size.", ""]
            for t in tables:
                w.table(t)
            paper_table(cls).write(out / "paper.csv")
            w.md += ["CSV: [paper.csv](paper.csv)", ""]

    pairs = neighbour_pairs(cells)
    if pairs:
        full = differences_table(pairs)
        full.write(out / "differences.csv")
        clear = clear_differences(full)
        n_clear = sum(bool(r[-1]) for r in full.rows)
        w.md += ["## Differences between neighbouring cells", "",
                 f"{len(pairs)} pairs of cells differ in exactly one design key; in {n_clear} the solved rates differ "
                 "clearly (Newcombe's hybrid score 95% interval of the difference, in percentage points, excludes 0). "
                 "Solved here is the final outcome, as in the outcome rates above (the finisher's verdict where it "
                 "ran), not the optimizer's own verdict that the convergence figure and the paper comparison count"
                 + (f". The {len(clear.rows)} largest:" if clear.rows else "."), ""]
        if clear.rows:
            w.md += [clear.markdown(), ""]
        w.md += ["CSV (every pair): [differences.csv](differences.csv)", ""]


def _cell_section(w: _Writer, k: int, cell: CellRef, *, tol: float, loss_tol: float, cell_figures: bool,
                  progress: bool) -> None:
    tag = f"{k:02d}-{_slug(cell.label)}"
    cls = cell.kind == "classification"
    w.md += [f"### {cell.label}", "",
             f"{cell.n} networks; configuration: `{_config_line(cell.config)}`", ""]
    try:
        ds = cell.dataset()
    except DataError as e:          # moved or edited dataset file: rates only, say why
        w.md += [f"Dataset unavailable, so no minima, plateaus or network figures: {e}", ""]
        if cell_figures:
            w.figure(plots.plot_losses([cell]), f"{tag}-losses", f"losses by outcome, {cell.label}")
        return
    data = cell.data(plots.NET_FIELDS)
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
    w.figure(plots.plot_losses([cell], datas=[data]), f"{tag}-losses", f"losses by outcome, {cell.label}")
    if minima or plateaus:
        w.figure(plots.plot_basins([cell], minima=minima, plateaus=plateaus), f"{tag}-basins",
                 f"basin fractions, {cell.label}")
    same_arch = [n for n, p in ds.points.items() if (p.hidden, p.activation) == (cell.hidden, cell.activation)]
    if cls and ds.d == 2:
        w.figure(plots.plot_regions([cell], data=data, points=same_arch), f"{tag}-regions",
                 f"decision regions, {cell.label}")
    elif ds.d == 1:
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


def _detail_note(tol: float, loss_tol: float) -> list[str]:
    return [f"Distinct finite critical points (end points the engine classified local_minimum / saddle / flat) "
            f"are grouped modulo hidden-unit permutations, sign flips (sigmoid, tanh) and positive rescaling (ReLU) "
            f"with tolerance {tol:g} after Newton refinement, and named by the engine's verdicts on their runs "
            f"('saddle/flat' where a continuum holds both); symmetry classes computing the same function on the "
            f"data are merged ('classes' > 1 marks a continuum). Loss, accuracy, min eig (smallest eigenvalue of "
            f"the mean-loss Hessian) are exact at the refined representative. Drifting runs are grouped by their "
            f"outputs on the training points (within 0.05) and by loss gaps larger than {loss_tol:g}, at the point "
            f"each verdict describes (where the finisher stopped, if it ran); "
            f"'loss level' is the lowest loss in the group, 'outputs' the median output on each training "
            f"point, 'undecided' the points stuck at an output of 1/2. 'image of #k': the entry is entry k carried "
            f"over by a symmetry of the dataset (same loss and accuracy; the basin figure draws them as one bar). "
            f"Basin = share of all networks of the cell, Wilson 95%.", ""]


def write_report(paths, out_dir, *, tol: float = 1e-4, loss_tol: float = 1e-2, pdf: bool = True,
                 dpi: int = figures.DEFAULT_DPI, cell_figures: bool = True, progress: bool = True,
                 details: bool | None = None, cells=()) -> Path:
    """Analyse the result files and write out_dir/report.md (with CSVs and figures); returns its path.

    details: per-cell sections for every cell (True), for the `cells` named (labels or names) only
    (False), or (None) for those if any, else for every cell when there are at most AUTO_DETAILS."""
    for option, v in (("--tol", tol), ("--loss-tol", loss_tol)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (v > 0 and math.isfinite(v)):
            raise ConfigError(f"{option} must be positive and finite, got {v!r}")
    dpi = figures.figure_options(None, dpi)["dpi"]
    out = Path(out_dir)
    all_cells = load_cells(paths, progress=progress)
    files = [f for run in dict.fromkeys(c.results for c in all_cells) for f in run.files]
    _check_inputs_kept(out, files)
    chosen = sorted(select_cells(all_cells, cells), key=all_cells.index) if cells else []
    if details is True:
        detailed = all_cells
    elif details is False:
        detailed = chosen
    else:
        detailed = chosen or (all_cells if len(all_cells) <= AUTO_DETAILS else [])
    with _staged(out) as stage:
        _write(stage, all_cells, files, detailed, pdf=pdf, dpi=dpi, tol=tol, loss_tol=loss_tol,
               cell_figures=cell_figures, progress=progress)
    return out / "report.md"


_STAGE_PREFIX = ".report-partial-"
_STAGE_MARK = ".badminima-staging"
_MANIFEST = ".report-files"             # the files a report wrote, so that the next one removes those it does not write
_REPORT_NAME = re.compile(r"report\.md|[^/]+\.csv|cells/[^/]+\.csv|figures/[^/]+\.(?:png|pdf)")   # what it writes


def _check_inputs_kept(out: Path, files) -> None:
    """StoreError, before any work, where the report would write over (or remove) one of the result
    files it reads: one inside `out` named like a report's file (report.md, a top-level CSV, a PNG or
    PDF in figures/, a CSV in cells/)."""
    root = os.path.realpath(out)
    for f in files:
        rel = Path(os.path.relpath(os.path.realpath(f), root))
        if rel.parts[0] == "..":
            continue
        if (rel.parts[0].startswith(_STAGE_PREFIX) or _REPORT_NAME.fullmatch(rel.as_posix())
                or rel.as_posix() in ("report.md.lock", _MANIFEST)):
            raise StoreError(f"cannot write the report into {out}: it would replace {f}, one of the result "
                             f"files it reads; give another folder")


@contextlib.contextmanager
def _staged(out: Path):
    """A fresh folder inside `out` to write the report into; when the block succeeds its files replace
    those in `out` (``atomic_files``: all written beside their targets first, then renamed, report.md
    last), so an interrupted or failed report leaves the previous one whole.  One report per folder at a
    time (a flock on report.md.lock); staging folders left by a killed run (marked by _STAGE_MARK) go, and
    so do the files the previous report listed in _MANIFEST that this one does not write."""
    lock = str(out / "report.md")
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = lock_run(lock)
    except OSError as e:
        raise StoreError(os_error_message(e, str(out))) from None
    stage = None
    done = False
    try:
        for old in out.glob(_STAGE_PREFIX + "*"):
            if (old / _STAGE_MARK).is_file():
                shutil.rmtree(old, ignore_errors=True)
        stage = Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, dir=out))
        (stage / _STAGE_MARK).touch()
        yield stage
        files = sorted((p for p in stage.rglob("*") if p.is_file() and p.name != _STAGE_MARK),
                       key=lambda p: p.relative_to(stage).as_posix() == "report.md")
        names = [f.relative_to(stage).as_posix() for f in files]
        before = _listed(out)
        (stage / _MANIFEST).write_text("".join(n + "\n" for n in names))
        files.insert(0, stage / _MANIFEST)
        with atomic_files([out / f.relative_to(stage) for f in files]) as tmps:
            for f, tmp in zip(files, tmps):
                shutil.copyfile(f, tmp)
        for name in sorted(before - set(names)):       # the previous report's files this one did not write
            if not is_hdf5(out / name):
                (out / name).unlink(missing_ok=True)
        for sub in ("cells", "figures"):
            if (out / sub).is_dir() and not any((out / sub).iterdir()):
                (out / sub).rmdir()
        done = True
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        unlock_run(lock, fd)
        if made and not done:           # a failed first report leaves no empty folder behind
            with contextlib.suppress(OSError):
                out.rmdir()


def _listed(out: Path) -> set:
    """The files the previous report in `out` wrote (its _MANIFEST), as paths relative to `out`; only
    names of the report's layout (module docstring) count, so an edited list never removes other files."""
    try:
        lines = (out / _MANIFEST).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    return {n for n in lines if _REPORT_NAME.fullmatch(n) and ".." not in n.split("/")}


def _write(out: Path, all_cells, files, detailed, *, pdf, dpi, tol, loss_tol, cell_figures, progress) -> None:
    """The report of `all_cells` (per-cell detail for `detailed`) into the folder `out`."""
    w = _Writer(out, pdf, dpi)
    w.md += _header(all_cells, files)
    _overview(w, all_cells, out)

    w.md += ["## Cells", ""]
    rest = len(all_cells) - len(detailed)
    if rest:
        example = next(c for c in all_cells if c not in detailed).label
        w.md += [f"{'Detail below for ' + str(len(detailed)) + ' cell(s); the' if detailed else 'The'} per-cell "
                 f"detail (distinct critical points, drifting plateaus, basin, loss and decision-region figures) of "
                 f"{'the other ' + str(rest) if detailed else 'the ' + str(rest)} cell(s) is written on request: "
                 f"`badminima report FILES --cell {shell_quote(example)}` (repeatable), or `--details` for every cell.", ""]
    if detailed:
        w.md += _detail_note(tol, loss_tol)
    prog = Progress(sum(c.n for c in detailed), "networks analysed", enabled=progress and bool(detailed))
    try:
        for cell in detailed:
            _cell_section(w, all_cells.index(cell) + 1, cell, tol=tol, loss_tol=loss_tol, cell_figures=cell_figures,
                          progress=progress)
            prog.update(cell.n)
    finally:
        prog.close()
    (out / "report.md").write_text("\n".join(w.md).rstrip() + "\n", encoding="utf-8", errors="backslashreplace")


__all__ = ["write_report", "paper_pivots", "clear_differences", "AUTO_DETAILS"]
