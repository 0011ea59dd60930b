"""Table 1 for reading: each cell's Wilson 95% interval beside the paper's percentage and the difference,
the block averages, the text claims' verdicts, the sweep's ranking, as text, Markdown and JSON.

The counts come from engine/paper/table1.py (`run_table1`); nothing here trains or reads result files.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from badminima.analysis.tables import layout, terminal_width, wrap
from badminima.analysis.wilson import wilson
from badminima.engine.core.outcomes import NAMES as OUTCOME_NAMES
from badminima.engine.paper.table1 import (COLUMNS, HIDDEN, PAPER_ACT, PAPER_DS, PAPER_OPT, TABLE1_OPTIMIZERS,
                                           CellCounts, Protocol, SweepGrid, make_counts)


@dataclass
class Row(CellCounts):
    """A cell of Table 1 as printed: its counts and the Wilson 95% interval (lo, hi) of its solved share."""
    lo: float = float("nan")
    hi: float = float("nan")

    @property
    def pct(self) -> float:
        return 100.0 * self.solved / self.n if self.n else float("nan")

    @property
    def diff(self) -> float | None:
        return None if self.paper is None else self.pct - self.paper

    @property
    def paper_in_ci(self) -> bool | None:
        return None if self.paper is None else 100 * self.lo <= self.paper <= 100 * self.hi


# a cell's fields in the JSON, in this order (part of the file's format; Row's own order puts lo, hi last)
ROW_JSON_KEYS = ("opt", "dataset", "act", "h", "n", "solved", "lo", "hi", "paper", "lost", "heading")


def _signed(d: float) -> str:
    """A difference in points to one decimal, signed unless it rounds to zero (0.0, not +0.0 or -0.0)."""
    return f"{d:+.1f}" if round(d, 1) != 0 else "0.0"


def cell_row(c: CellCounts) -> Row:
    """The printed row of a cell's counts."""
    lo, hi = wilson(c.solved, c.n) if c.n else (float("nan"), float("nan"))
    return Row(**vars(c), lo=lo, hi=hi)


def make_row(opt, ds, act, h, solved: int, n: int, counts=None, lost: int = 0, heading: int = 0) -> Row:
    """The printed row of a cell given by its counts (the paper's value looked up)."""
    return cell_row(make_counts(opt, ds, act, h, solved, n, counts, lost, heading))


def format_finality(chk: dict, width: int | None = None) -> str:
    """One paragraph (plus the networks that changed, if any) for the finality check, wrapped to `width`."""
    if not chk["checked"]:
        return "finality check: no network stopped before the end of its budget"
    pct = 100.0 * chk["agree"] / chk["checked"]
    lines = [wrap(f"finality check: {chk['checked']} of {chk['early']} early-stopped networks (at most "
                  f"{chk['sample']} per cell) continued to the end of their budget; {chk['agree']} "
                  f"({pct:.3f}%) end with the outcome they were given", width, subsequent="  ")]
    for cell, idx, given, end in chk["changed"][:10]:
        lines.append(wrap(f"{cell} network {idx}: {OUTCOME_NAMES[given]} early, {OUTCOME_NAMES[end]} at the end",
                          width, "  ", "    "))
    return "\n".join(lines)


def block_stats(rows: list[Row]) -> dict:
    """Per optimizer: mean and max |ours - paper| (points) and how often the paper's value is inside our CI."""
    out = {}
    for opt in dict.fromkeys(r.opt for r in rows):
        rs = [r for r in rows if r.opt == opt and r.paper is not None]
        d = [abs(r.diff) for r in rs]
        out[opt] = {"mean_abs_diff": float(np.mean(d)) if d else float("nan"),
                    "max_abs_diff": float(np.max(d)) if d else float("nan"),
                    "paper_in_ci": sum(bool(r.paper_in_ci) for r in rs), "cells": len(rs)}
    return out


def _entry(r: Row) -> str:
    paper = "-" if r.paper is None else f"{r.paper:.0f}"
    diff = "" if r.diff is None else _signed(r.diff)
    return f"{r.pct:5.1f} [{100 * r.lo:5.1f},{100 * r.hi:5.1f}] {paper:>5} {diff:>6}"


ENTRY_HEAD = f"{'ours':>5} {'[95% CI]':^13} {'paper':>5} {'diff':>6}"


def _find(rows: list[Row], opt, ds, act, h) -> Row | None:
    return next((r for r in rows if (r.opt, r.dataset, r.act, r.h) == (opt, ds, act, h)), None)


def format_table(rows: list[Row], protocol: Protocol | None = None, title: str | None = None,
                 width: int | None = None) -> str:
    """The paper's layout: one block per optimizer, rows h, columns XOR/fXOR x ReLU/sigmoid, fitted to
    `width` columns (default: the terminal's): a narrow terminal gets the columns in stacked groups."""
    lines = []
    n = sorted({r.n for r in rows})
    lines.append(wrap(title or ("Table 1: solved (zero training error) %, Wilson 95% interval, the paper's %, "
                                "ours - paper (points); " + f"{'/'.join(map(str, n))} networks per cell"), width))
    if protocol is not None:
        lines.append(wrap("protocol: " + protocol.describe(), width, subsequent="  "))
    stats = block_stats(rows)
    for opt in dict.fromkeys(r.opt for r in rows):
        lr = "" if protocol is None else f" (lr {protocol.lr(opt):g})"
        lines.append("")
        lines.append(f"{PAPER_OPT[opt]}{lr}")
        head = [" h"] + [f"{PAPER_DS[ds]} {PAPER_ACT[act]}\n{ENTRY_HEAD}" for ds, act in COLUMNS]
        body = []
        for h in HIDDEN:
            cells = [_find(rows, opt, ds, act, h) for ds, act in COLUMNS]
            body.append([f"{h:>2}"] + [_entry(r) if r else "-" for r in cells])
        lines += layout(head, body, left=[False] + [True] * len(COLUMNS), width=width, sep=" | ", rule="")
        s = stats[opt]
        lines.append(wrap(f"{PAPER_OPT[opt]} block: mean |ours - paper| = {s['mean_abs_diff']:.1f} points "
                          f"(max {s['max_abs_diff']:.1f}); the paper's value lies inside our 95% interval in "
                          f"{s['paper_in_ci']}/{s['cells']} cells", width))
    lines += ["", format_lost(rows, width), "", format_heading(rows, width)]
    return "\n".join(lines)


def format_side(rows: list[Row], attr: str, title: str, width: int | None = None) -> str:
    """A compact table of one per-cell count as % of the cell: rows h, a column per optimizer x column
    (stacked in groups where the terminal is narrower than the table)."""
    opts = list(dict.fromkeys(r.opt for r in rows))
    head = [" h"] + [f"{PAPER_OPT[o]} {PAPER_DS[ds]} {PAPER_ACT[act]}" for o in opts for ds, act in COLUMNS]
    body = []
    for h in HIDDEN:
        vals = []
        for o in opts:
            for ds, act in COLUMNS:
                r = _find(rows, o, ds, act, h)
                vals.append("-" if r is None or not r.n else f"{100.0 * getattr(r, attr) / r.n:.1f}")
        body.append([f"{h:>2}"] + vals)
    return "\n".join([wrap(title, width)] + layout(head, body, width=width, sep=" | ", rule=""))


def format_lost(rows: list[Row], width: int | None = None) -> str:
    return format_side(rows, "lost", "solved at some step but not at the end of the budget, % of networks:", width)


def format_heading(rows: list[Row], width: int | None = None) -> str:
    return format_side(rows, "heading", "not solved at the end of the budget, but solved where the finisher's "
                                        "gradient flow takes them (100 budgets on), % of networks:", width)


def format_markdown(rows: list[Row]) -> str:
    out = []
    for opt in dict.fromkeys(r.opt for r in rows):
        out.append(f"**{PAPER_OPT[opt]}** — ours % [Wilson 95%] / paper % / difference")
        out.append("")
        out.append("| h | " + " | ".join(f"{PAPER_DS[ds]} {PAPER_ACT[act]}" for ds, act in COLUMNS) + " |")
        out.append("|---:|" + "---|" * len(COLUMNS))
        for h in HIDDEN:
            cells = []
            for ds, act in COLUMNS:
                r = next(r for r in rows if (r.opt, r.dataset, r.act, r.h) == (opt, ds, act, h))
                paper = "-" if r.paper is None else f"{r.paper:.0f}"
                diff = "" if r.diff is None else f" / {_signed(r.diff)}"
                cells.append(f"{r.pct:.1f} [{100 * r.lo:.1f}, {100 * r.hi:.1f}] / {paper}{diff}")
            out.append(f"| {h} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)

# ------------------------------------------------------------------------------ text claims

def claims(counts: dict, protocol: Protocol) -> list[dict]:
    """The two text claims around Table 1 (from the engine's claim_counts), as verify-style rows
    {claim, paper, computed, verdict, note, values}; the verdicts compare Wilson intervals."""
    out = []
    # (a) SGD with 2 hidden units on fXOR vs full batch
    for act, sgd in counts["sgd"].items():
        full = counts["full"][act]
        best_lr = max(sgd, key=lambda lr: sgd[lr][0] / max(sgd[lr][1], 1))
        k, n = sgd[best_lr]
        can = wilson(k, n)[0] > 0
        not_always = all(wilson(kf, nf)[1] < 1 for kf, nf in full.values())
        better = all(wilson(k, n)[0] > wilson(kf, nf)[1] for kf, nf in full.values())
        out.append({
            "claim": f"fXOR, 2 hidden {PAPER_ACT[act]} units: SGD solves it while full-batch methods do not always",
            "paper": "SGD succeeds where GD/Adam fail",
            "computed": ("; ".join(f"SGD lr {lr:g} {_pct_ci(*v)}" for lr, v in sgd.items()) + "; " +
                         "; ".join(f"{PAPER_OPT[o]} {_pct_ci(*v)}" for o, v in full.items())),
            "verdict": "agrees" if can and not_always and better else "disagrees",
            "note": (f"SGD: {protocol.steps * 4} single-point steps (= {protocol.steps} epochs), a fresh random order "
                     "each epoch. SGD " + ("solves it in some runs" if can else "solves it in no run") + " and full batch "
                     + ("fails in some" if not_always else "always succeeds") + ", but SGD is " +
                     ("clearly more" if better else "not more") + " successful than full batch (Wilson intervals)"),
            "values": {"sgd": {str(lr): list(v) for lr, v in sgd.items()}, **{o: list(v) for o, v in full.items()}},
        })
    # (b) failed fXOR ReLU nets: most points in one linear region
    per_opt = counts["regions"]
    fail_hits, fail_n, ok_hits, ok_n, all4_fail = (sum(v[i] for v in per_opt.values()) for i in range(5))
    flo, fhi = wilson(fail_hits, fail_n) if fail_n else (float("nan"),) * 2
    slo, shi = wilson(ok_hits, ok_n) if ok_n else (float("nan"),) * 2
    agrees = fail_n > 0 and flo > 0.5 and (ok_n == 0 or flo > shi)

    def pct(k, n):
        return f"{100 * k / n:.1f}%" if n else "-"
    out.append({
        "claim": "failed fXOR ReLU nets have most data points (>= 3 of 4) in one linear region",
        "paper": "most points in one linear region",
        "computed": (f"failed: {pct(fail_hits, fail_n)} [{100 * flo:.1f}, {100 * fhi:.1f}] of {fail_n} "
                     f"(all 4 points: {pct(all4_fail, fail_n)}); solved: {pct(ok_hits, ok_n)} "
                     f"[{100 * slo:.1f}, {100 * shi:.1f}] of {ok_n}"),
        "verdict": "agrees" if agrees else "disagrees",
        "note": ("linear region = set of inputs with one activation pattern of the hidden ReLUs (the network is "
                 "affine there), from the stored final weights of the GD and Adam fXOR-ReLU cells, h = 2..7" +
                 (f", first {counts['limit']} networks per cell" if counts["truncated"] else "") +
                 "; per optimizer (failed / solved): " +
                 "; ".join(f"{PAPER_OPT[o]} {pct(v[0], v[1])} / {pct(v[2], v[3])}" for o, v in per_opt.items())),
        "values": {"failed": [fail_hits, fail_n], "solved": [ok_hits, ok_n], "failed_all4": all4_fail,
                   "per_optimizer": {o: list(v) for o, v in per_opt.items()}},
    })
    return out


def _pct_ci(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" if n else "-"


def format_claims(rows: list[dict], width: int | None = None) -> str:
    lines = ["Claims of the text around Table 1"]
    for r in rows:
        lines.append(wrap(f"- {r['claim']}: {r['computed']} -> {r['verdict']}", width, subsequent="  "))
        lines.append(wrap(f"note: {r['note']}", width, "    ", "      "))
    return "\n".join(lines)

# ------------------------------------------------------------------------------ sweep

def sweep_results(blocks: list[dict]) -> list[dict]:
    """Per (optimizer, init, lr, budget) of the engine's sweep_counts: mean/max |ours - paper| over the
    block's 24 cells."""
    out = []
    for b in blocks:
        rows = [cell_row(c) for c in b["cells"]]
        st = block_stats(rows)[b["optimizer"]]
        out.append({**{k: v for k, v in b.items() if k != "cells"}, **st,
                    "rows": [(r.dataset, r.act, r.h, r.solved, r.n) for r in rows]})
    return out


def format_sweep(results: list[dict], grid: SweepGrid, top: int = 5, default: Protocol | None = None,
                 width: int | None = None) -> str:
    default = default or Protocol()
    lines = [wrap(f"Protocol sweep: init {', '.join(grid.inits)}; GD lr {', '.join(f'{v:g}' for v in grid.gd_lrs)}; "
                  f"Adam lr {', '.join(f'{v:g}' for v in grid.adam_lrs)}; budgets {', '.join(map(str, grid.budgets))} "
                  "steps (one run each)", width)]
    for opt in TABLE1_OPTIMIZERS:
        rs = sorted((r for r in results if r["optimizer"] == opt), key=lambda r: r["mean_abs_diff"])
        if not rs:
            continue
        lines.append("")
        lines.append(wrap(f"{PAPER_OPT[opt]} block: protocols ranked by mean |ours - paper| over 24 cells", width))
        dflt = next((r for r in rs if (r["init"], r["bias"], r["lr"], r["steps"]) ==
                     (default.init, default.bias_init, default.lr(opt), default.steps)), None)
        shown = rs[:top] + ([dflt] if dflt is not None and dflt not in rs[:top] else [])
        body = [[r["init"], r["bias"], f"{r['lr']:g}", str(r["steps"]), f"{r['mean_abs_diff']:.1f}",
                 f"{r['max_abs_diff']:.0f}", f"{r['paper_in_ci']}/{r['cells']}", "<- default" if r is dflt else ""]
                for r in shown]
        lines += ["  " + ln for ln in layout(["init", "bias", "lr", "steps", "mean|d|", "max|d|", "paper in CI", ""],
                                              body, left=[True, True] + [False] * 5 + [True],
                                              width=terminal_width(width) - 2, rule="")]
        b = rs[0]
        lines.append(wrap(f"best: init {b['init']} (bias {b['bias']}), lr {b['lr']:g}, {b['steps']} steps: mean |diff| "
                          f"{b['mean_abs_diff']:.1f} points" +
                          (f" (default protocol: {dflt['mean_abs_diff']:.1f})" if dflt is not None else ""),
                          width, "  ", "    "))
    return "\n".join(lines)

# ------------------------------------------------------------------------------ the report

def table1_report(run: dict, markdown: bool = False, width: int | None = None) -> dict:
    """What `badminima table1` prints, from the engine's run_table1: {"text", "json", "path", "rows", "claims",
    "sweep", "finality"}; the text fits `width` columns (default: the terminal's)."""
    protocol, path, chk = run["protocol"], run["path"], run["finality"]
    rows = [cell_row(c) for c in run["cells"]]
    parts = [format_markdown(rows) if markdown else format_table(rows, protocol, width=width)]
    if chk is not None:
        parts.append(format_finality(chk, width))
    claim_rows = claims(run["claims"], protocol) if run["claims"] is not None else None
    if claim_rows:
        parts.append(format_claims(claim_rows, width))
    sweep_out = None
    if run["sweep"] is not None:
        sweep_out = sweep_results(run["sweep"])
        parts.append(format_sweep(sweep_out, run["sweep_grid"], default=protocol, width=width))
        parts.append(f"sweep results: {run['sweep_path']}")
    parts.append(f"results: {path}")
    return {"text": "\n\n".join(parts), "path": path, "rows": rows, "claims": claim_rows, "sweep": sweep_out,
            "finality": chk, "json": to_json(rows, protocol, path, claim_rows, sweep_out, chk)}


def to_json(rows: list[Row], protocol: Protocol, path: str, claim_rows=None, sweep=None, finality_check=None) -> str:
    return json.dumps({
        "protocol": asdict(protocol), "protocol_text": protocol.describe(), "results": path,
        "cells": [{**{k: getattr(r, k) for k in ROW_JSON_KEYS}, "percent": r.pct, "diff": r.diff,
                   "paper_in_ci": r.paper_in_ci, "counts": r.counts} for r in rows],
        "blocks": block_stats(rows), "claims": claim_rows, "sweep": sweep, "finality_check": finality_check},
        indent=1, default=float)


__all__ = ["Row", "cell_row", "make_row", "block_stats", "format_table", "format_side", "format_lost", "format_heading",
           "format_markdown", "format_finality", "claims", "format_claims", "sweep_results", "format_sweep",
           "table1_report", "to_json"]
