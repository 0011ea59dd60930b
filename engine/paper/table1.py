"""Table 1 of the paper: convergence rates of 2-h-1 networks on XOR and the flattened XOR, recomputed.

The grid is 48 cells (XOR / fXOR x ReLU / sigmoid hidden units x GD / Adam x h = 2..7), each a `Cell`
trained by engine/runs.run_cells into ONE result file (crash-safe, resumable: a rerun continues an
interrupted run and reuses a finished one).  The paper states no protocol, so ours is explicit and
printed (`Protocol`); "solved" = zero training error (100% accuracy) reached within the step budget
(the engine stops a network there).  Each cell is shown with its Wilson 95% interval beside the
paper's percentage and the difference.

The sweep (`SweepGrid`) trains every (optimizer, init law, learning rate, step budget) of its grid:
"solved" is the state at the end of the budget, which a longer run cannot tell (a network may reach
zero training error and lose it again).

Text claims around the table (`claims`): SGD with 2 hidden units on fXOR, and "failed fXOR ReLU nets
have most data points in one linear region" (activation patterns of the stored final weights).
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from badminima.analysis.wilson import wilson
from badminima.engine.train.config import ConfigError, InitSpec, TrainConfig
from badminima.engine.data.datasets import load_dataset
from badminima.engine.core.layout import unpack
from badminima.engine.core.outcomes import NAMES as OUTCOME_NAMES
from badminima.engine.core.outcomes import SOLVED
from badminima.engine.train.cells import Cell, run_cells
from badminima.engine.train.run import check_final
from badminima.engine.store import canonical_json, normalize, open_h5, open_results, read_rows

DATASETS = ("xor", "fxor")
ACTIVATIONS = ("relu", "sigmoid")
OPTIMIZERS = ("gd", "adam")
HIDDEN = tuple(range(2, 8))
COLUMNS = tuple((ds, act) for ds in DATASETS for act in ACTIVATIONS)      # the paper's column order
PAPER_OPT = {"gd": "GD", "adam": "Adam", "sgd": "SGD"}
PAPER_ACT = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
PAPER_DS = {"xor": "XOR", "fxor": "fXOR"}
SGD_NETWORKS = 10_000   # the SGD cells of the text claim stop growing here (40000 steps each: a third of the cost)


# ------------------------------------------------------------------------------ protocol

@dataclass(frozen=True)
class Protocol:
    """Everything that defines a Table 1 run besides the number of networks."""
    init: str = "normal:1"          # InitSpec text: normal:SIGMA, uniform:A, glorot, he
    bias_init: str = "same"         # biases from the same law, or zero
    steps: int = 10_000             # full-batch steps (SGD: steps * N single-point steps, same epochs)
    gd_lr: float = 0.5              # GD (and SGD) learning rate
    adam_lr: float = 1e-3
    sgd_lrs: tuple = (0.5, 0.1)     # SGD cells of the text claim (fXOR, h = 2)
    seed: int = 0
    # float32: the same table as float64 (10^5 networks per cell: cells within 0.02 points, > 99.6% of
    # networks with the same verdict; README "float32 for Table 1") at half the time
    dtype: str = "float32"

    def init_spec(self) -> InitSpec:
        return InitSpec.parse(self.init, self.bias_init)

    def lr(self, opt: str) -> float:
        return self.adam_lr if opt == "adam" else self.gd_lr

    def describe(self) -> str:
        spec = self.init_spec()
        return (f"2-h-1 networks, sigmoid output unit, mean binary cross-entropy (natural log); init {spec} for "
                f"weights, biases {'from the same law' if spec.bias == 'same' else 'zero'}; full batch, "
                f"{self.steps} steps; GD lr {self.gd_lr:g}; Adam lr {self.adam_lr:g} (beta1 0.9, beta2 0.999, "
                f"eps 1e-8); {self.dtype}; seed {self.seed}; solved = 100% training accuracy at the end of the "
                f"budget (a network stops earlier only where that is proven final)")

    def validate(self) -> "Protocol":
        self.init_spec()
        for name in ("gd_lr", "adam_lr"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"--{name.replace('_', '-')} must be positive and finite, got {v}")
        if self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")
        return self


def parse_list(text: str, name: str, kind=float) -> tuple:
    """'0.1,0.5' -> (0.1, 0.5); ConfigError naming the option otherwise."""
    try:
        vals = tuple(kind(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not vals or not all(v > 0 and math.isfinite(v) for v in vals):
        raise ConfigError(f"{name} needs positive finite values, got {text!r}")
    return vals


def parse_init(text: str) -> tuple[str, str]:
    """'glorot/zero' -> ('glorot', 'zero'); 'normal:0.5' -> ('normal:0.5', 'same') (validated)."""
    law, _, bias = text.strip().partition("/")
    bias = bias or "same"
    InitSpec.parse(law, bias)
    return law, bias


def make_config(ds, protocol: Protocol, opt: str, act: str, h: int, networks: int,
                steps: int | None = None, lr: float | None = None) -> TrainConfig:
    """The TrainConfig of one cell (SGD gets steps * N single-point steps unless `steps` is given)."""
    if steps is None:
        steps = protocol.steps * (ds.n if opt == "sgd" else 1)
    return TrainConfig(dataset=ds.name, dataset_fingerprint=ds.fingerprint, kind=ds.kind, hidden=h,
                       activation=act, optimizer=opt, lr=protocol.lr(opt) if lr is None else lr, steps=steps,
                       init=protocol.init_spec(), networks=networks, seed=protocol.seed,
                       dtype=protocol.dtype).validate()


def cell_name(opt: str, ds: str, act: str, h: int, prefix: str = "") -> str:
    return f"{prefix}{opt}-{ds}-{act}-h{h}"


def grid_cells(protocol: Protocol, networks: int, optimizers=OPTIMIZERS, prefix: str = "",
               extra_sgd: bool = True) -> list[Cell]:
    """The 48 cells (or the given optimizers' blocks), plus the SGD cells of the text claim (fXOR, h = 2, one per
    activation and SGD learning rate; at most SGD_NETWORKS networks each)."""
    data = {name: load_dataset(name) for name in DATASETS}
    cells = [Cell(cell_name(opt, ds, act, h, prefix), make_config(data[ds], protocol, opt, act, h, networks), data[ds])
             for opt in optimizers for ds, act in COLUMNS for h in HIDDEN]
    if extra_sgd:
        n_sgd = min(networks, SGD_NETWORKS)
        cells += [Cell(sgd_name(act, lr, prefix), make_config(data["fxor"], protocol, "sgd", act, 2, n_sgd, lr=lr),
                       data["fxor"]) for act in ACTIVATIONS for lr in protocol.sgd_lrs]
    return cells


def sgd_name(act: str, lr: float, prefix: str = "") -> str:
    return cell_name("sgd", "fxor", act, 2, f"{prefix}lr{lr:g}-")


def _hash(obj) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:10]


def default_path(protocol: Protocol, networks: int) -> str:
    return f"runs/table1-{_hash({'protocol': asdict(protocol), 'networks': networks})}.h5"


# ------------------------------------------------------------------------------ running

def run_or_reuse(path: str, run_config: dict, cells: list[Cell], *, force: bool = False, resume="auto",
                 chunk: int = 16384, threads: int | None = None, progress: bool = True, echo=None):
    """Train the cells into `path` (resuming a .part), or reuse a finished file of the same cells."""
    if os.path.exists(path) and not force:
        res = open_results(path)
        want = {c.name: (normalize(c.config.to_dict()), c.config.networks) for c in cells}
        bad = [n for n, (cfg, nt) in want.items()
               if n not in res.cells or canonical_json(res.cell_config(n)) != canonical_json(cfg)
               or res.n_total(n) != nt]
        if bad:
            raise ConfigError(f"{path} exists with different cells or configuration (e.g. {bad[0]}); "
                              f"use --force to replace it or -o for another file")
        if echo:
            echo(f"reusing finished results in {path}")
        return res
    run_cells(path, run_config, cells, force=force, resume=resume, chunk=chunk, threads=threads,
              progress=progress)
    return open_results(path)


def _head(res, name: str, fields, limit: int | None) -> dict:
    """The first `limit` rows (by network index) of some fields of a cell (bounded memory for huge cells)."""
    n = res.n_rows(name)
    if limit is None or limit >= n or len(res.files) != 1:
        out = res.cell(name, fields)
        return out if limit is None else {k: v[:limit] for k, v in out.items()}
    with open_h5(res.files[0]) as f:
        return read_rows(f["cells"][name], list(fields), 0, limit, res.files[0])


# ------------------------------------------------------------------------------ the table

@dataclass
class Row:
    opt: str
    dataset: str
    act: str
    h: int
    n: int
    solved: int
    lo: float
    hi: float
    paper: float | None           # percent
    counts: dict = field(default_factory=dict)
    lost: int = 0                 # networks with zero training error at some step that ended unsolved
    heading: int = 0              # networks not solved at the end that the finisher's flow takes to solved

    @property
    def pct(self) -> float:
        return 100.0 * self.solved / self.n if self.n else float("nan")

    @property
    def diff(self) -> float | None:
        return None if self.paper is None else self.pct - self.paper

    @property
    def paper_in_ci(self) -> bool | None:
        return None if self.paper is None else 100 * self.lo <= self.paper <= 100 * self.hi


def paper_column_name(opt: str, act: str) -> str:
    """The Table 1 column name in the datasets' claims, e.g. 'GD sigmoid'."""
    return f"{PAPER_OPT.get(opt, '?')} {PAPER_ACT.get(act, '?')}"


def paper_percentages(ds, opt: str, act: str) -> dict[int, float]:
    """The paper's Table 1 column {h: percent converged} for dataset ds (its file's claims; {} if none)."""
    claim = (ds.claims or {}).get("table1_percent_converged") or {}
    col = claim.get(paper_column_name(opt, act))
    return {int(h): float(v) for h, v in zip(claim["h"], col)} if col else {}


@functools.lru_cache(maxsize=None)
def _builtin(name: str):
    return load_dataset(name)


def paper_value(dataset: str, opt: str, act: str, h: int) -> float | None:
    """The paper's Table 1 percentage for a built-in dataset's cell, or None."""
    return paper_percentages(_builtin(dataset), opt, act).get(h)


def make_row(opt, ds, act, h, solved: int, n: int, counts=None, lost: int = 0, heading: int = 0) -> Row:
    lo, hi = wilson(solved, n) if n else (float("nan"), float("nan"))
    return Row(opt, ds, act, h, n, int(solved), lo, hi, paper_value(ds, opt, act, h), dict(counts or {}), int(lost),
               int(heading))


def collect(res, optimizers=OPTIMIZERS, prefix: str = "") -> list[Row]:
    rows = []
    for opt in optimizers:
        for ds, act in COLUMNS:
            for h in HIDDEN:
                name = cell_name(opt, ds, act, h, prefix)
                d = res.cell(name, ["outcome", "optimizer_outcome", "solved_at"])
                solved = d["optimizer_outcome"] == SOLVED      # the paper's protocol: the optimizer's own verdict
                lost = int(np.sum((d["solved_at"] >= 0) & ~solved))
                heading = int(np.sum(~solved & (d["outcome"] == SOLVED)))
                rows.append(make_row(opt, ds, act, h, int(solved.sum()), res.n_rows(name), res.counts(name), lost,
                                     heading))
    return rows


def finality(res, cells: list[Cell], sample: int, seed: int = 0, threads: int | None = None,
             progress: bool = False) -> dict:
    """check_final on every cell: up to `sample` early-stopped networks per cell continued to the end
    of their budget.  Returns {"sample", "early", "checked", "agree", "changed": [(cell, index, given,
    end), ...]} summed over the cells."""
    out = {"sample": sample, "early": 0, "checked": 0, "agree": 0, "changed": []}
    for c in cells:
        d = res.cell(c.name, ["index", "steps", "outcome"])
        chk = check_final(c.config, c.data.x, c.data.y, d["index"], d["steps"], d["outcome"], sample,
                          seed=seed, threads=threads)
        for key in ("early", "checked", "agree"):
            out[key] += chk[key]
        out["changed"] += [(c.name, *ch) for ch in chk["changed"]]
    return out


def format_finality(chk: dict) -> str:
    """One line (plus the networks that changed, if any) for the finality check."""
    if not chk["checked"]:
        return "finality check: no network stopped before the end of its budget"
    pct = 100.0 * chk["agree"] / chk["checked"]
    lines = [f"finality check: {chk['checked']} of {chk['early']} early-stopped networks (at most "
             f"{chk['sample']} per cell) continued to the end of their budget; {chk['agree']} "
             f"({pct:.3f}%) end with the outcome they were given"]
    for cell, idx, given, end in chk["changed"][:10]:
        lines.append(f"  {cell} network {idx}: {OUTCOME_NAMES[given]} early, {OUTCOME_NAMES[end]} at the end")
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
    diff = "" if r.diff is None else f"{r.diff:+.1f}"
    return f"{r.pct:5.1f} [{100 * r.lo:5.1f},{100 * r.hi:5.1f}] {paper:>5} {diff:>6}"


ENTRY_HEAD = f"{'ours':>5} {'[95% CI]':^13} {'paper':>5} {'diff':>6}"


def format_table(rows: list[Row], protocol: Protocol | None = None, title: str | None = None) -> str:
    """The paper's layout: one block per optimizer, rows h, columns XOR/fXOR x ReLU/sigmoid."""
    lines = []
    n = sorted({r.n for r in rows})
    lines.append(title or ("Table 1: solved (zero training error) %, Wilson 95% interval, the paper's %, "
                           "ours - paper (points); " + f"{'/'.join(map(str, n))} networks per cell"))
    if protocol is not None:
        lines.append("protocol: " + protocol.describe())
    width = len(_entry(rows[0]))
    stats = block_stats(rows)
    for opt in dict.fromkeys(r.opt for r in rows):
        lr = "" if protocol is None else f" (lr {protocol.lr(opt):g})"
        lines.append("")
        lines.append(f"{PAPER_OPT[opt]}{lr}")
        head = [f"{PAPER_DS[ds]} {PAPER_ACT[act]}".ljust(width) for ds, act in COLUMNS]
        lines.append(" h | " + " | ".join(head))
        lines.append("   | " + " | ".join(ENTRY_HEAD.ljust(width) for _ in COLUMNS))
        for h in HIDDEN:
            cells = []
            for ds, act in COLUMNS:
                r = next((r for r in rows if (r.opt, r.dataset, r.act, r.h) == (opt, ds, act, h)), None)
                cells.append(_entry(r) if r else "-".ljust(width))
            lines.append(f"{h:>2} | " + " | ".join(cells))
        s = stats[opt]
        lines.append(f"{PAPER_OPT[opt]} block: mean |ours - paper| = {s['mean_abs_diff']:.1f} points "
                     f"(max {s['max_abs_diff']:.0f}); the paper's value lies inside our 95% interval in "
                     f"{s['paper_in_ci']}/{s['cells']} cells")
    lines += ["", format_lost(rows), "", format_heading(rows)]
    return "\n".join(lines)


def format_side(rows: list[Row], attr: str, title: str) -> str:
    """A compact table of one per-cell count as % of the cell: rows h, a column per optimizer x column."""
    opts = list(dict.fromkeys(r.opt for r in rows))
    heads = [f"{PAPER_OPT[o]} {PAPER_DS[ds]} {PAPER_ACT[act]}" for o in opts for ds, act in COLUMNS]
    width = max(len(x) for x in heads)
    lines = [title, " h | " + " | ".join(x.rjust(width) for x in heads)]
    for h in HIDDEN:
        vals = []
        for o in opts:
            for ds, act in COLUMNS:
                r = next((r for r in rows if (r.opt, r.dataset, r.act, r.h) == (o, ds, act, h)), None)
                vals.append(("-" if r is None or not r.n else f"{100.0 * getattr(r, attr) / r.n:.1f}").rjust(width))
        lines.append(f"{h:>2} | " + " | ".join(vals))
    return "\n".join(lines)


def format_lost(rows: list[Row]) -> str:
    return format_side(rows, "lost", "solved at some step but not at the end of the budget, % of networks:")


def format_heading(rows: list[Row]) -> str:
    return format_side(rows, "heading", "not solved at the end of the budget, but solved where the finisher's "
                                        "gradient flow takes them (100 budgets on), % of networks:")


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
                diff = "" if r.diff is None else f" / {r.diff:+.1f}"
                cells.append(f"{r.pct:.1f} [{100 * r.lo:.1f}, {100 * r.hi:.1f}] / {paper}{diff}")
            out.append(f"| {h} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------ text claims

def region_stats(weights: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Per network: the largest number of data points sharing one activation pattern (one linear region).

    For a ReLU network the output is affine on each region of constant activation pattern; points with
    the same pattern are in the same linear region of the network function.
    """
    W, b, _, _ = unpack(weights, X.shape[1])                        # (n, h, d), (n, h)
    act = np.einsum("nhd,id->nih", W, X) + b[:, None, :] > 0       # (n, N points, h)
    n, N, h = act.shape
    codes = (act * (1 << np.arange(h))).sum(axis=2)                 # pattern id per (network, point)
    best = np.ones(n, np.int64)
    for i in range(N):
        best = np.maximum(best, (codes == codes[:, i:i + 1]).sum(axis=1))
    return best


def claims(res, protocol: Protocol, prefix: str = "", limit: int | None = 200_000) -> list[dict]:
    """The two text claims around Table 1, as verify-style rows {claim, paper, computed, verdict, note}."""
    out = []
    # (a) SGD with 2 hidden units on fXOR vs full batch
    for act in ACTIVATIONS:
        sgd = {lr: (_own_solved(res, sgd_name(act, lr, prefix)), res.n_rows(sgd_name(act, lr, prefix)))
               for lr in protocol.sgd_lrs}
        full = {opt: (_own_solved(res, cell_name(opt, "fxor", act, 2, prefix)),
                      res.n_rows(cell_name(opt, "fxor", act, 2, prefix))) for opt in OPTIMIZERS}
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
                     "each epoch. SGD " + ("does" if can else "does not") + " solve it in some runs and full batch "
                     + ("fails in some" if not_always else "always succeeds") + ", but SGD is " +
                     ("clearly more" if better else "not more") + " successful than full batch (Wilson intervals)"),
            "values": {"sgd": {str(lr): list(v) for lr, v in sgd.items()}, **{o: list(v) for o, v in full.items()}},
        })
    # (b) failed fXOR ReLU nets: most points in one linear region
    X = load_dataset("fxor").x
    fail_hits = fail_n = ok_hits = ok_n = all4_fail = 0
    per_opt = {}
    truncated = False
    for opt in OPTIMIZERS:
        fh = fn = sh = sn = a4 = 0
        for h in HIDDEN:
            name = cell_name(opt, "fxor", "relu", h, prefix)
            truncated |= limit is not None and res.n_rows(name) > limit
            data = _head(res, name, ["optimizer_outcome", "weights"], limit)
            best = region_stats(np.asarray(data["weights"]), X)
            solved = np.asarray(data["optimizer_outcome"]) == SOLVED
            fh += int(np.sum(best[~solved] >= 3))
            fn += int(np.sum(~solved))
            a4 += int(np.sum(best[~solved] == 4))
            sh += int(np.sum(best[solved] >= 3))
            sn += int(np.sum(solved))
        per_opt[opt] = (fh, fn, sh, sn, a4)
        fail_hits, fail_n, ok_hits, ok_n, all4_fail = (fail_hits + fh, fail_n + fn, ok_hits + sh, ok_n + sn,
                                                        all4_fail + a4)
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
                 (f", first {limit} networks per cell" if truncated else "") + "; per optimizer (failed / solved): " +
                 "; ".join(f"{PAPER_OPT[o]} {pct(v[0], v[1])} / {pct(v[2], v[3])}" for o, v in per_opt.items())),
        "values": {"failed": [fail_hits, fail_n], "solved": [ok_hits, ok_n], "failed_all4": all4_fail,
                   "per_optimizer": {o: list(v) for o, v in per_opt.items()}},
    })
    return out


def _own_solved(res, name: str) -> int:
    """Networks of a cell solved at the end of the budget by the optimizer's own verdict."""
    return res.code_counts(name, "optimizer_outcome")["solved"]


def _pct_ci(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{100 * k / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" if n else "-"


def format_claims(rows: list[dict]) -> str:
    lines = ["Claims of the text around Table 1"]
    for r in rows:
        lines.append(f"- {r['claim']}: {r['computed']} -> {r['verdict']}")
        lines.append(f"    note: {r['note']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ sweep

@dataclass(frozen=True)
class SweepGrid:
    inits: tuple = ("normal:1", "glorot/zero", "uniform:1")
    gd_lrs: tuple = (0.1, 0.5, 1.0)
    adam_lrs: tuple = (1e-3, 3e-3, 1e-2)
    budgets: tuple = (1000, 2500, 5000, 10000)
    seed: int = 0
    dtype: str = Protocol.dtype

    def runs(self) -> list[tuple[str, str, str, float]]:
        """(optimizer, init law text, bias, lr) of every trained block."""
        out = []
        for opt, lrs in (("gd", self.gd_lrs), ("adam", self.adam_lrs)):
            for init in self.inits:
                law, bias = parse_init(init)
                for lr in lrs:
                    out.append((opt, law, bias, float(lr)))
        return out


def _sweep_prefix(opt, law, bias, lr, steps) -> str:
    return f"{law.replace(':', '')}{'-zb' if bias == 'zero' else ''}-lr{lr:g}-s{steps}-"


def sweep_cells(grid: SweepGrid, networks: int) -> list[Cell]:
    cells = []
    for opt, law, bias, lr in grid.runs():
        for steps in sorted(grid.budgets):
            p = Protocol(init=law, bias_init=bias, steps=steps, gd_lr=lr, adam_lr=lr, seed=grid.seed, dtype=grid.dtype)
            cells += grid_cells(p, networks, optimizers=(opt,), prefix=_sweep_prefix(opt, law, bias, lr, steps),
                                extra_sgd=False)
    return cells


def sweep_path(grid: SweepGrid, networks: int) -> str:
    return f"runs/table1-sweep-{_hash({'grid': asdict(grid), 'networks': networks})}.h5"


def sweep_results(res, grid: SweepGrid) -> list[dict]:
    """Per (optimizer, init, lr, budget): mean/max |ours - paper| over the block's 24 cells."""
    out = []
    for opt, law, bias, lr in grid.runs():
        for budget in sorted(grid.budgets):
            rows = collect(res, (opt,), _sweep_prefix(opt, law, bias, lr, budget))
            st = block_stats(rows)[opt]
            out.append({"optimizer": opt, "init": law, "bias": bias, "lr": lr, "steps": budget, **st,
                        "rows": [(r.dataset, r.act, r.h, r.solved, r.n) for r in rows]})
    return out


def format_sweep(results: list[dict], grid: SweepGrid, top: int = 5, default: Protocol | None = None) -> str:
    default = default or Protocol()
    lines = [f"Protocol sweep: init {', '.join(grid.inits)}; GD lr {', '.join(f'{v:g}' for v in grid.gd_lrs)}; "
             f"Adam lr {', '.join(f'{v:g}' for v in grid.adam_lrs)}; budgets {', '.join(map(str, grid.budgets))} "
             "steps (one run each)"]
    for opt in OPTIMIZERS:
        rs = sorted((r for r in results if r["optimizer"] == opt), key=lambda r: r["mean_abs_diff"])
        if not rs:
            continue
        lines.append("")
        lines.append(f"{PAPER_OPT[opt]} block: protocols ranked by mean |ours - paper| over 24 cells")
        lines.append(f"  {'init':<14}{'bias':<6}{'lr':>8}{'steps':>8}{'mean|d|':>9}{'max|d|':>8}{'paper in CI':>13}")
        dflt = next((r for r in rs if (r["init"], r["bias"], r["lr"], r["steps"]) ==
                     (default.init, default.bias_init, default.lr(opt), default.steps)), None)
        shown = rs[:top] + ([dflt] if dflt is not None and dflt not in rs[:top] else [])
        for r in shown:
            mark = "  <- default" if r is dflt else ""
            lines.append(f"  {r['init']:<14}{r['bias']:<6}{r['lr']:>8g}{r['steps']:>8}{r['mean_abs_diff']:>9.1f}"
                         f"{r['max_abs_diff']:>8.0f}{r['paper_in_ci']:>8}/{r['cells']}{mark}")
        b = rs[0]
        lines.append(f"  best: init {b['init']} (bias {b['bias']}), lr {b['lr']:g}, {b['steps']} steps: mean |diff| "
                     f"{b['mean_abs_diff']:.1f} points" +
                     (f" (default protocol: {dflt['mean_abs_diff']:.1f})" if dflt is not None else ""))
    return "\n".join(lines)


def run_shard(protocol: Protocol, networks: int, shard: dict, *, path: str | None = None, force: bool = False,
              resume="auto", chunk: int = 16384, threads: int | None = None, progress: bool = True) -> str:
    """Train shard {"index": I, "count": N} of every cell into its own file; returns the path.

    `badminima merge` of all N shards equals the unsharded file, which `table1 -o MERGED` then reuses.
    """
    protocol.validate()
    if networks < 1:
        raise ConfigError(f"--networks must be >= 1, got {networks}")
    path = path or default_path(protocol, networks)[:-3] + f"-shard{shard['index']}of{shard['count']}.h5"
    run_cells(path, {"command": "table1", "protocol": asdict(protocol), "networks": networks},
              grid_cells(protocol, networks), shard=shard, force=force, resume=resume, chunk=chunk,
              threads=threads, progress=progress)
    return path


def table1_report(protocol: Protocol, networks: int, *, path: str | None = None, sweep: SweepGrid | None = None,
                  sweep_networks: int | None = None, with_claims: bool = True, markdown: bool = False,
                  check_final: int = 1000, force: bool = False, resume="auto", chunk: int = 16384,
                  threads: int | None = None, progress: bool = True, echo=print) -> dict:
    """Run (or reuse) the grid and return {"text", "json", "path", "rows", ...}: what `badminima table1` prints."""
    protocol.validate()
    if networks < 1:
        raise ConfigError(f"--networks must be >= 1, got {networks}")
    path = path or default_path(protocol, networks)
    cells = grid_cells(protocol, networks)          # the SGD cells always: the file does not depend on --no-claims
    res = run_or_reuse(path, {"command": "table1", "protocol": asdict(protocol), "networks": networks}, cells,
                       force=force, resume=resume, chunk=chunk, threads=threads, progress=progress, echo=echo)
    rows = collect(res)
    parts = [format_markdown(rows) if markdown else format_table(rows, protocol)]
    chk = None
    if check_final > 0:
        chk = finality(res, cells, check_final, seed=protocol.seed, threads=threads)
        parts.append(format_finality(chk))
    claim_rows = claims(res, protocol) if with_claims else None
    if claim_rows:
        parts.append(format_claims(claim_rows))
    sweep_out = None
    if sweep is not None:
        sn = sweep_networks or networks
        spath = sweep_path(sweep, sn)
        sres = run_or_reuse(spath, {"command": "table1 --sweep", "grid": asdict(sweep), "networks": sn},
                            sweep_cells(sweep, sn), force=force, resume=resume, chunk=chunk, threads=threads,
                            progress=progress, echo=echo)
        sweep_out = sweep_results(sres, sweep)
        parts.append(format_sweep(sweep_out, sweep, default=protocol))
        parts.append(f"sweep results: {spath}")
    parts.append(f"results: {path}")
    return {"text": "\n\n".join(parts), "path": path, "rows": rows, "claims": claim_rows, "sweep": sweep_out,
            "finality": chk, "json": to_json(rows, protocol, path, claim_rows, sweep_out, chk)}


def to_json(rows: list[Row], protocol: Protocol, path: str, claim_rows=None, sweep=None, finality_check=None) -> str:
    return json.dumps({
        "protocol": asdict(protocol), "protocol_text": protocol.describe(), "results": path,
        "cells": [{**{k: v for k, v in asdict(r).items() if k != "counts"}, "percent": r.pct, "diff": r.diff,
                   "paper_in_ci": r.paper_in_ci, "counts": r.counts} for r in rows],
        "blocks": block_stats(rows), "claims": claim_rows, "sweep": sweep, "finality_check": finality_check},
        indent=1, default=float)


__all__ = ["Protocol", "SweepGrid", "Row", "grid_cells", "default_path", "run_or_reuse", "collect", "block_stats",
           "format_table", "format_markdown", "claims", "format_claims", "region_stats", "sweep_cells",
           "sweep_path", "sweep_results", "format_sweep", "table1_report", "parse_list", "paper_value", "make_config", "parse_init", "to_json"]
