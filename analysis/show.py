"""`badminima show`: what result files hold, at a glance or for one cell, as text or JSON.

    summary(cells)          provenance per run, the settings every cell shares, one line per cell with
                            its outcome percentages (outcomes that never occur left out); fits the terminal
    cell_detail(cell)       one cell: provenance, its whole configuration, counts with Wilson intervals
                            and the optimizer's own verdicts where the file has them
    show_json(cells, ...)   the same as a JSON-able dict (every outcome, every configuration key)
    show_text(cells, ...)   what the command prints: the summary for several cells, the detail for one

Cells come from analysis.load.load_cells (any files: shards of a run joined, runs kept apart).
"""
from __future__ import annotations

import json

from badminima.analysis.load import CellRef, _short
from badminima.analysis.stats import OUTCOMES, cell_rate
from badminima.analysis.tables import format_value, layout, terminal_width, wrap

#: configuration keys not repeated in the summary's shared settings (long, or shown elsewhere)
_QUIET = {"dataset_fingerprint", "kind", "command"}
#: short column titles of the outcomes
SHORT = {"solved": "solved", "local_minimum": "local\nmin", "saddle": "saddle", "flat": "flat",
         "drifting": "drifting", "diverged": "diverged", "out_of_steps": "out of\nsteps"}


def _runs(cells: list[CellRef]) -> list:
    return list(dict.fromkeys(c.results for c in cells))


def _file_info(m) -> dict:
    a = m.attrs
    return {"path": m.path, "status": m.status, "shard": m.shard, "schema": a.get("schema_version"),
            "created": a.get("created"), "host": a.get("host"), "command": a.get("command"),
            "versions": {k: a.get(f"{k}_version") for k in ("badminima", "numba", "numpy", "h5py", "hdf5")},
            "merged_from": len(json.loads(a["merged_from"])) if "merged_from" in a else None}


def _state(res) -> str:
    metas = res.metas
    m = metas[0]
    done = sum(x.status == "complete" for x in metas)
    if len(metas) == 1:
        head = f"{m.path}: {'complete' if m.status == 'complete' else 'in progress'}"
        head += f", shard {m.shard['index']}/{m.shard['count']}" if m.shard else ""
    else:
        head = f"{len(metas)} files ({metas[0].path} ... {metas[-1].path}): {done} complete"
        head += f", {len(metas) - done} in progress" if done < len(metas) else ""
    ncell, nnet = len(res.cells), sum(res.n_rows(c) for c in res.cells)
    return head + f"; {ncell} cell{'s' * (ncell != 1)}, {nnet} networks"


def _provenance(res, width: int) -> list[str]:
    """A run in three lines: its files and state, where and with what it was made, its command."""
    a = res.metas[0].attrs
    head = _state(res) + f"; schema {a.get('schema_version')}"
    if "merged_from" in a:
        head += f"; merged from {len(json.loads(a['merged_from']))} files"
    out = [wrap(head, width, subsequent="  ")]
    out.append(wrap(f"created {a.get('created')} on {a.get('host')}; badminima {a.get('badminima_version')}, "
                    f"numba {a.get('numba_version')}, numpy {a.get('numpy_version')}, h5py {a.get('h5py_version')} "
                    f"(HDF5 {a.get('hdf5_version')})", width, "  ", "    "))
    out.append(wrap(f"command: {a.get('command')}", width, "  ", "    "))
    return out


def _runs_lines(runs, width: int) -> list[str]:
    """One run: its provenance; several: a line each (state, when), the rest is in --cell and --json."""
    if len(runs) == 1:
        return _provenance(runs[0], width)
    return [wrap(_state(r) + f"; created {r.metas[0].attrs.get('created')}", width, subsequent="  ") for r in runs]


def _shared(cells: list[CellRef]) -> dict:
    """Configuration keys with one value in every cell (in the first cell's key order)."""
    first = cells[0].config
    return {k: v for k, v in first.items()
            if k not in _QUIET and all(k in c.config and c.config[k] == v for c in cells[1:])}


def summary(cells: list[CellRef], width: int | None = None) -> str:
    """Several cells at a glance (module docstring), fitted to `width` columns (default: the terminal's)."""
    width = terminal_width(width)
    lines = []
    lines += _runs_lines(_runs(cells), width)
    shared = _shared(cells)
    if shared:
        lines.append(wrap("shared by every cell: " + ", ".join(f"{k}={_short(v)}" for k, v in shared.items()),
                          width, subsequent="  "))
    seen = [o for o in OUTCOMES if any(c.counts[o] for c in cells)] or ["solved"]
    sizes = {c.n for c in cells}
    same_n = len(sizes) == 1 and all(c.complete for c in cells)      # then said once, not in a column
    head = ["cell"] + ([] if same_n else ["networks"]) + [SHORT[o] for o in seen]
    body = []
    for c in cells:
        n = [] if same_n else [str(c.n) if c.complete else f"{c.n}/{c.n_total}"]
        body.append([c.label] + n + [format_value(cell_rate(c, o).p, "%") for o in seen])
    lines.append("")
    lines.append("outcomes, % of each cell's " + (f"{sizes.pop()} networks:" if same_n else "networks:"))
    lines += layout(head, body, left=[True] + [False] * (len(head) - 1), width=width)
    bad = sum(not c.complete for c in cells)
    if bad:
        lines.append(wrap(f"{bad} cell{'s' * (bad != 1)} incomplete (networks shown as committed/total)", width))
    lines.append("")
    lines.append(wrap("one cell's configuration and counts: --cell LABEL; everything as JSON: --json", width))
    lines.append(wrap(f"e.g. --cell '{cells[0].label}'", width, "  ", "    "))
    return "\n".join(lines)


def cell_detail(cell: CellRef, width: int | None = None) -> str:
    """One cell: provenance, configuration (one key per line), counts with Wilson 95% intervals."""
    width = terminal_width(width)
    lines = _provenance(cell.results, width)
    lines.append(wrap(f"cell {cell.label} (stored as {cell.name!r}): {cell.n} of {cell.n_total} networks"
                      + ("" if cell.complete else " (incomplete)"), width, subsequent="  "))
    lines.append("configuration:")
    cfg = [[k, _short(v)] for k, v in sorted(cell.config.items())]
    lines += ["  " + ln for ln in layout(["key", "value"], cfg, left=[True, True], width=width - 2, rule="")[1:]]
    opt = cell.optimizer_counts if "optimizer_outcome" in cell.results.fields else None
    head = ["outcome", "networks", "%", "95% CI (%)"] + (["optimizer alone"] if opt else [])
    body = []
    for o in OUTCOMES:
        r = cell_rate(cell, o)
        body.append([o, str(r.k), format_value(r.p, "%"), format_value(r.ci, "%")] + ([str(opt[o])] if opt else []))
    lines.append("outcomes:")
    lines += ["  " + ln for ln in layout(head, body, left=[True] + [False] * (len(head) - 1), width=width - 2)]
    if opt:
        lines.append(wrap("optimizer alone: the optimizer's own verdict at the end of its budget, before the "
                          "finisher followed the networks it left unresolved (what the paper's Table 1 counts)",
                          width, "  ", "  "))
    return "\n".join(lines)


def show_json(cells: list[CellRef], detail: bool = False) -> dict:
    """Runs (files with provenance, run configuration) and cells (label, name, counts, configuration);
    detail adds the optimizer's own counts (read from the per-network records)."""
    runs = _runs(cells)
    out = {"runs": [{"files": [_file_info(m) for m in r.metas], "config": r.config} for r in runs], "cells": []}
    for c in cells:
        e = {"label": c.label, "name": c.name, "run": runs.index(c.results), "networks": c.n,
             "networks_total": c.n_total, "complete": c.complete, "counts": c.counts, "config": c.config}
        if detail and "optimizer_outcome" in c.results.fields:
            e["optimizer_counts"] = c.optimizer_counts
        out["cells"].append(e)
    return out


def show_text(cells: list[CellRef], width: int | None = None) -> str:
    """The summary for several cells, the detail for one."""
    if len(cells) == 1:
        return cell_detail(cells[0], width)
    return summary(cells, width)


__all__ = ["summary", "cell_detail", "show_json", "show_text"]
