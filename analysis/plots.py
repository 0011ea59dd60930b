"""Figures of stored cells: chooses what to draw (networks, series, groups) and calls analysis.figures.

One function per `badminima plot KIND`; each takes cells (analysis.load.CellRef) and returns a Figure.
    regions      decision regions of solved and stuck networks (one 2-D classification cell)
    fit          1-D ReLU regression fits, with the dataset's weight points of the same architecture
    convergence  solved rate vs h per (dataset, activation, optimizer, ...) series, paper overlaid
    losses       loss histograms by outcome, one panel per cell
    basins       basin fractions of the distinct minima and drifting plateaus of one cell
    minimality   a rows file (JSON or CSV) as a table image
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
from badminima.analysis import writable_matplotlib_dirs

writable_matplotlib_dirs()     # before matplotlib is imported
from matplotlib.figure import Figure

from badminima.engine.core.outcomes import DIVERGED, NAMES, SOLVED
from badminima.engine.core.say import name_some
from badminima.analysis import FIGURE_KINDS, figures
from badminima.analysis.load import AnalysisError, CellRef
from badminima.analysis.minima import cell_minima
from badminima.analysis.plateaus import cell_plateaus
from badminima.analysis.stats import cell_rate, paper_column, paper_values, rate

NET_FIELDS = ["index", "outcome", "loss", "accuracy", "weights"]


def one_cell(cells: list[CellRef], kind: str) -> CellRef:
    if len(cells) != 1:
        raise AnalysisError(f"plot {kind} draws one cell; choose one with --cell (cells: "
                            f"{name_some([c.label for c in cells], sep='; ')})")
    return cells[0]


def pick_networks(outcome, solved: int = 2, per_outcome: int = 1, limit: int = 6) -> list[int]:
    """Row positions to draw: the first `solved` solved networks, then the first `per_outcome` of every
    other outcome present (diverged ones have no finite weights and are skipped), at most `limit`."""
    outcome = np.asarray(outcome)
    rows = list(np.flatnonzero(outcome == SOLVED)[:solved])
    for code in NAMES:
        if code not in (SOLVED, DIVERGED):
            rows += list(np.flatnonzero(outcome == code)[:per_outcome])
    return [int(r) for r in rows[:limit]]


def _rows_for(data: dict, networks) -> list[int]:
    """Row positions of the networks to draw, in network order (default: pick_networks)."""
    if not networks:
        return sorted(pick_networks(data["outcome"]), key=lambda r: int(data["index"][r]))
    pos = {int(i): k for k, i in enumerate(data["index"])}
    missing = [i for i in networks if i not in pos]
    if missing:
        raise AnalysisError(f"network index {missing[0]} is not in the files")
    return sorted(dict.fromkeys(pos[i] for i in networks), key=lambda r: int(data["index"][r]))


def _caption(data: dict, r: int) -> str:
    """'#12 solved': the network's index and outcome (the figure adds its exact loss and accuracy)."""
    return f"#{int(data['index'][r])} {NAMES[int(data['outcome'][r])].replace('_', ' ')}"


def _points(cell: CellRef, ds, names) -> list[tuple[np.ndarray, str]]:
    out = []
    for name in names:
        if name not in ds.points:
            raise AnalysisError(f"dataset {ds.name!r} has no weight point {name!r} (available: "
                                f"{', '.join(sorted(ds.points)) or 'none'})")
        p = ds.points[name]
        if (p.hidden, p.activation) != (cell.hidden, cell.activation):
            raise AnalysisError(f"weight point {name!r} is a {p.hidden}-unit {p.activation} network; the cell "
                                f"is {cell.hidden}-unit {cell.activation}")
        out.append((p.theta, f"{name} (dataset point)"))
    return out


def plot_regions(cells, *, networks=(), points=(), data=None, **kw) -> Figure:
    """Decision regions of chosen (default: solved and stuck) networks of one 2-D classification cell."""
    cell = one_cell(cells, "regions")
    ds = cell.dataset()
    if cell.kind != "classification" or ds.d != 2:
        raise AnalysisError(f"plot regions needs a 2-D classification cell; {cell.label} is {ds.d}-D {cell.kind}")
    data = data or cell.data(NET_FIELDS)
    nets = [(data["weights"][r], _caption(data, r)) for r in _rows_for(data, networks)] + _points(cell, ds, points)
    return figures.regions_figure(ds.x, ds.y, nets, hidden=cell.hidden, activation=cell.activation,
                                  title=cell.label, **kw)


def plot_fit(cells, *, networks=(), points=None, data=None, **kw) -> Figure:
    """1-D regression fits of chosen networks plus the dataset's weight points of the same architecture
    (all of them when `points` is None, e.g. Prop 1's point and its witness on relu_d1)."""
    cell = one_cell(cells, "fit")
    ds = cell.dataset()
    if ds.d != 1:
        raise AnalysisError(f"plot fit needs a 1-D dataset; {cell.label} is {ds.d}-D")
    if points is None:
        points = [n for n, p in ds.points.items() if (p.hidden, p.activation) == (cell.hidden, cell.activation)]
    data = data or cell.data(NET_FIELDS)
    nets = [(data["weights"][r], _caption(data, r)) for r in _rows_for(data, networks)] + _points(cell, ds, points)
    return figures.relu_fit_figure(ds.x, ds.y, nets, hidden=cell.hidden, activation=cell.activation,
                                   title=cell.label, **kw)


def convergence_series(cells, outcome: str = "solved") -> list[dict]:
    """Cells grouped into series over h: same label apart from 'h=N'; paper values attached if known."""
    series: dict[tuple, dict] = {}
    for c in cells:
        name = re.sub(r"\s*\bh=\d+\b", "", c.label).strip()
        ds = Path(str(c.config["dataset"])).stem
        parts = name.split(" ", 1)
        label = parts[1] if len(parts) > 1 and parts[0] == ds else name
        s = series.setdefault((ds, label), {"dataset": ds, "label": label, "h": [], "rates": []})
        s["h"].append(c.hidden)
        s["rates"].append(cell_rate(c, outcome, optimizer=outcome == "solved"))   # as Table 1 counts
        if "paper" not in s and outcome == "solved":
            pv = paper_values(c)
            if pv:
                s["paper_h"], s["paper"] = pv
                s["paper_label"] = f"{paper_column(c)} (Table 1)"
    for s in series.values():
        order = np.argsort(s["h"], kind="stable")
        s["h"] = [s["h"][i] for i in order]
        s["rates"] = [s["rates"][i] for i in order]
    return list(series.values())


def plot_convergence(cells, *, outcome: str = "solved", **kw) -> Figure:
    """Rate of `outcome` vs h per series, Wilson bars, the paper's Table 1 overlaid where it applies."""
    cls = [c for c in cells if c.kind == "classification"] if outcome == "solved" else list(cells)
    if not cls:
        raise AnalysisError("plot convergence needs classification cells")
    return figures.convergence_figure(convergence_series(cls, outcome), outcome=outcome, **kw)


def plot_losses(cells, *, datas=None, **kw) -> Figure:
    """Loss histograms by outcome, one panel per cell (the loss where each verdict was made: CellRef.data)."""
    datas = datas or [c.data(["loss", "outcome"]) for c in cells]
    return figures.loss_histogram_figure([(c.label, d["loss"], d["outcome"]) for c, d in zip(cells, datas)], **kw)


def _merge_images(entries) -> list[tuple[list, object]]:
    """Entries (minima or plateaus, in order) grouped with their images under the dataset's symmetries
    (`same_as`): [(members, representative)], in the order of the representatives."""
    groups: dict[int, list] = {}
    rep = {}
    for e in entries:
        key = e.same_as or e.number
        groups.setdefault(key, []).append(e)
        rep.setdefault(key, e)
    return [(groups[k], rep[k]) for k in groups]


def basin_groups(minima, plateaus, max_groups: int = 8) -> list[tuple[str, object, str]]:
    """(label, Rate, kind) bars of plot_basins: each critical point labelled by its kind (local min,
    saddle, flat point) with its loss and accuracy, each plateau by its loss and accuracy; entries that
    are images of each other under a symmetry of the dataset are one bar ("plateau 1 (+2 images)", the
    hits summed); the largest `max_groups` bars of each sort, the rest pooled into one."""
    out = []
    for entries, sort in ((minima, "critical"), (plateaus, "plateau")):
        merged = _merge_images(entries)
        merged.sort(key=lambda g: -sum(e.hits for e in g[0]))
        for members, rep in merged[:max_groups]:
            hits = sum(e.hits for e in members)
            more = f" (+{len(members) - 1} image{'s' * (len(members) > 2)})" if len(members) > 1 else ""
            acc = getattr(rep, "accuracy", float("nan"))
            stats = f"loss {rep.loss:.4g}" + ("" if np.isnan(acc) else f", acc {acc:.2f}")
            out.append((f"{rep.label}{more}\n{stats}", rate(hits, rep.fraction.n),
                        rep.kind if sort == "critical" else "plateau"))
        rest = [e for members, _ in merged[max_groups:] for e in members]
        if rest:
            what = "critical points" if sort == "critical" else "plateaus"
            out.append((f"{len(rest)} other {what}", rate(sum(e.hits for e in rest), rest[0].fraction.n), "other"))
    return out


def plot_basins(cells, *, minima=None, plateaus=None, tol: float = 1e-4, loss_tol: float = 1e-2,
                progress: bool = False, max_groups: int = 8, **kw) -> Figure:
    """Basin fractions of one cell's distinct finite critical points and drifting plateaus (basin_groups)."""
    cell = one_cell(cells, "basins")
    if minima is None or plateaus is None:
        data = cell.data(NET_FIELDS)
        minima = cell_minima(cell, tol=tol, data=data, progress=progress) if minima is None else minima
        plateaus = cell_plateaus(cell, loss_tol=loss_tol, data=data) if plateaus is None else plateaus
    return figures.basins_figure(basin_groups(minima, plateaus, max_groups), title=cell.label, **kw)


def read_rows(path) -> tuple[list, list | None]:
    """A rows file: JSON (list of objects, or {"columns": [...], "rows": [[...], ...]}) or CSV with a header."""
    path = Path(path)
    if path.is_dir():
        raise AnalysisError(f"{path}: is a directory; give the rows file (JSON or CSV) `badminima minimality --json` wrote")
    if not path.is_file():
        raise AnalysisError(f"{path}: " + ("not a regular file; give the rows file (JSON or CSV)" if path.exists()
                                           else "file not found"))
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="") as f:
                rows = list(csv.reader(f))
            if not rows or not rows[0]:
                raise AnalysisError(f"{path}: empty CSV or header")
            return _table(rows[1:], rows[0], path)
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as e:
        raise AnalysisError(f"{path}: unreadable rows file: {e}") from None
    if isinstance(obj, dict) and isinstance(obj.get("rows"), list):
        return _table(obj["rows"], obj.get("columns"), path)
    if isinstance(obj, list):
        return _table(obj, None, path)
    raise AnalysisError(f"{path}: expected a list of rows or {{'columns': [...], 'rows': [...]}}")


#: rows of one table figure (a rows file is a summary: one row per N or per dataset)
MAX_ROWS = 500


def _table(rows: list, columns, path) -> tuple[list, list | None]:
    """The rows of a rows file as lists of at most len(columns) values, checked: rows all objects (their
    keys make the columns, first seen first) or all lists; columns names; some columns; at most MAX_ROWS."""
    def bad(why):
        return AnalysisError(f"{path}: {why}")
    if columns is not None and not (isinstance(columns, list) and columns
                                    and all(isinstance(c, (str, int, float)) for c in columns)):
        raise bad(f"'columns' must be a list of column names, got {str(columns)[:60]}")
    if len(rows) > MAX_ROWS:
        raise bad(f"{len(rows)} rows; one table figure shows at most {MAX_ROWS}")
    if rows and all(isinstance(r, dict) for r in rows):
        columns = columns or list(dict.fromkeys(k for r in rows for k in r))
        rows = [[r.get(c) for c in columns] for r in rows]
    elif not all(isinstance(r, list) for r in rows):
        raise bad("rows must be all objects or all lists")
    width = len(columns) if columns else max((len(r) for r in rows), default=0)
    if rows and not width:
        raise bad("the rows have no columns")
    long = next((i for i, r in enumerate(rows) if len(r) > width), None)
    if long is not None:
        raise bad(f"row {long + 1} has {len(rows[long])} values for {width} columns")
    return rows, columns


MINIMALITY_TITLE = "Minimality of weight points"


def plot_minimality(rows, columns=None, *, title: str = MINIMALITY_TITLE, **kw) -> Figure:
    """The minimality table (list of rows: dicts, or lists with `columns`) as an image."""
    return figures.table_figure(rows, columns, title=title, **kw)


#: networks drawn in one regions or fit figure (one panel each)
MAX_NETWORKS = 64


def check_network_count(n: int) -> None:
    """AnalysisError unless n networks fit in one figure."""
    if n > MAX_NETWORKS:
        raise AnalysisError(f"at most {MAX_NETWORKS} networks in one figure (one panel each), got {n}")


def figure(kind: str, files, *, cells=(), networks=(), points=(), title: str | None = None, progress: bool = False,
           **kw) -> Figure:
    """The figure `badminima plot KIND FILES` draws: result files (paths or globs; `cells` names some
    of their cells) or, for minimality, one rows file; kw: size, dpi."""
    from badminima.analysis.load import load_cells, select_cells
    if kind not in FIGURE_KINDS:
        raise AnalysisError(f"unknown figure {kind!r} (choose from {', '.join(FIGURE_KINDS)})")
    files = [files] if isinstance(files, (str, Path)) else list(files)
    # an option the figure would ignore is refused: networks and points choose what regions and fit
    # draw, cells what every figure but minimality (one rows file) draws, title names minimality's
    unused = [name for name, given, used in (("networks", len(networks), kind in ("regions", "fit")),
                                             ("points", len(points), kind in ("regions", "fit")),
                                             ("cells", len(cells), kind != "minimality"),
                                             ("title", title is not None, kind == "minimality")) if given and not used]
    if unused:
        raise AnalysisError(f"the {kind} figure takes no {' and no '.join(unused)} (networks and points: regions "
                            f"and fit; cells: all but minimality; title: minimality)")
    if kind == "minimality":
        if len(files) != 1:
            raise AnalysisError("plot minimality takes one rows file (JSON or CSV)")
        rows, columns = read_rows(files[0])
        return plot_minimality(rows, columns, title=title or MINIMALITY_TITLE, **kw)
    check_network_count(len(networks))
    chosen = select_cells(load_cells(files, progress=progress), list(cells))
    if kind == "regions":
        return plot_regions(chosen, networks=list(networks), points=list(points), **kw)
    if kind == "fit":
        return plot_fit(chosen, networks=list(networks), points=list(points) or None, **kw)
    if kind == "convergence":
        return plot_convergence(chosen, **kw)
    if kind == "losses":
        return plot_losses(chosen, **kw)
    return plot_basins(chosen, progress=progress, **kw)


__all__ = ["figure", "check_network_count", "MAX_NETWORKS",
           "pick_networks", "plot_regions", "plot_fit", "convergence_series", "plot_convergence",
           "plot_losses", "basin_groups", "plot_basins", "read_rows", "plot_minimality"]
