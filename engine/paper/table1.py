"""Table 1 of the paper: convergence rates of 2-h-1 networks on XOR and the flattened XOR, recomputed.

The grid is 48 cells (XOR / fXOR x ReLU / sigmoid hidden units x GD / Adam x h = 2..7), each a `Cell`
trained by engine/train/cells.run_cells into ONE result file (crash-safe, resumable: a rerun continues an
interrupted run and reuses a finished one).  The paper states no protocol, so ours is explicit and
printed (`Protocol`); "solved" = zero training error (100% accuracy) reached within the step budget
(the engine stops a network there).  This module runs the grid and counts (`CellCounts`, `claim_counts`,
`run_table1`); analysis/table1.py adds the Wilson intervals, compares with the paper and formats.

The sweep (`SweepGrid`) trains every (optimizer, init law, learning rate, step budget) of its grid:
"solved" is the state at the end of the budget, which a longer run cannot tell (a network may reach
zero training error and lose it again).

Text claims around the table (`claim_counts`): SGD with 2 hidden units on fXOR, and "failed fXOR ReLU nets
have most data points in one linear region" (activation patterns of the stored final weights).
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from badminima.engine.train.config import (DEVICES, ConfigError, InitSpec, TrainConfig, check_count, check_field_types,
                                           decimal_float, finite, split_items)
from badminima.engine.data.datasets import load_dataset
from badminima.engine.core.layout import unpack
from badminima.engine.core.outcomes import SOLVED
from badminima.engine.train.cells import Cell, run_cells
from badminima.engine.train.run import check_final
from badminima.engine.store import canonical_json, open_h5, open_results, read_rows

DATASETS = ("xor", "fxor")
TABLE1_ACTIVATIONS = ("relu", "sigmoid")     # Table 1's hidden activations
TABLE1_OPTIMIZERS = ("gd", "adam")          # Table 1's blocks
HIDDEN = tuple(range(2, 8))
COLUMNS = tuple((ds, act) for ds in DATASETS for act in TABLE1_ACTIVATIONS)      # the paper's column order
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
    # float32: the same table as float64 (10^4 networks per cell: cells within 0.18 points, >= 99.6% of
    # networks with the same verdict; docs/reproduce.md "float32 for Table 1") in a quarter of the time
    dtype: str = "float32"
    device: str = "cpu"             # cpu or cuda (engine/cuda): statistically, not bitwise, the same table

    def init_spec(self) -> InitSpec:
        return InitSpec.parse(self.init, self.bias_init)

    def lr(self, opt: str) -> float:
        return self.adam_lr if opt == "adam" else self.gd_lr

    def describe(self) -> str:
        spec = self.init_spec()
        return (f"2-h-1 networks, sigmoid output unit, mean binary cross-entropy (natural log); init {spec} for "
                f"weights, biases {'from the same law' if spec.bias == 'same' else 'zero'}; full batch, "
                f"{self.steps} steps; GD lr {self.gd_lr:g}; Adam lr {self.adam_lr:g} (beta1 0.9, beta2 0.999, "
                f"eps 1e-8); {self.dtype}{' on cuda' if self.device == 'cuda' else ''}; seed {self.seed}; solved = 100% training accuracy at the end of the "
                f"budget (a network stops earlier only where that is proven final)")

    def validate(self) -> "Protocol":
        check_field_types(self, lambda name: "--sgd-lr" if name == "sgd_lrs" else f"--{name.replace('_', '-')}")
        self.init_spec()
        if not self.sgd_lrs or not all(not isinstance(lr, str) and lr > 0 and finite(lr) for lr in self.sgd_lrs):
            raise ConfigError(f"--sgd-lr must be one or more positive learning rates, got {self.sgd_lrs!r}")
        names = [f"{lr:g}" for lr in self.sgd_lrs]
        if len(set(names)) < len(names):        # the cells are named by lr:g, and one name holds one cell
            raise ConfigError(f"--sgd-lr must be distinct rates (as the cells name them: {', '.join(names)}), "
                              f"got {self.sgd_lrs!r}")
        for name in ("gd_lr", "adam_lr"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ConfigError(f"--{name.replace('_', '-')} must be positive and finite, got {v}")
        if self.steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {self.steps}")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be {' or '.join(DEVICES)}, got {self.device!r}")
        return self


def as_dict(obj) -> dict:
    """dataclasses.asdict without `device` when it is cpu: what CPU runs stored and hashed into their
    default file names before the GPU backend existed, so their files are still found and reused."""
    d = asdict(obj)
    if d.get("device") == "cpu":
        del d["device"]
    return d


def parse_list(text: str, name: str, kind=decimal_float) -> tuple:
    """'0.1,0.5' -> (0.1, 0.5); ConfigError naming the option otherwise."""
    items = split_items(text, name)
    try:
        vals = tuple(kind(v) for v in items)
    except ValueError:
        raise ConfigError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if not vals or not all(v > 0 and math.isfinite(v) for v in vals):
        raise ConfigError(f"{name} needs positive finite values, got {text!r}")
    return vals


def parse_init(text: str) -> tuple[str, str]:
    """'glorot/zero' -> ('glorot', 'zero'); 'normal:0.5' -> ('normal:0.5', 'same') (validated)."""
    law, slash, bias = text.strip().partition("/")
    if slash and not bias.strip():
        raise ConfigError(f"init {text.strip()!r} has nothing after the slash: write LAW/zero, or the law alone")
    bias = bias.strip() or "same"
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
                       dtype=protocol.dtype, device=protocol.device).validate()


def cell_name(opt: str, ds: str, act: str, h: int, prefix: str = "") -> str:
    return f"{prefix}{opt}-{ds}-{act}-h{h}"


def grid_cells(protocol: Protocol, networks: int, optimizers=TABLE1_OPTIMIZERS, prefix: str = "",
               extra_sgd: bool = True) -> list[Cell]:
    """The 48 cells (or the given optimizers' blocks), plus the SGD cells of the text claim (fXOR, h = 2, one per
    activation and SGD learning rate; at most SGD_NETWORKS networks each)."""
    data = {name: load_dataset(name) for name in DATASETS}
    cells = [Cell(cell_name(opt, ds, act, h, prefix), make_config(data[ds], protocol, opt, act, h, networks), data[ds])
             for opt in optimizers for ds, act in COLUMNS for h in HIDDEN]
    if extra_sgd:
        n_sgd = min(networks, SGD_NETWORKS)
        cells += [Cell(sgd_name(act, lr, prefix), make_config(data["fxor"], protocol, "sgd", act, 2, n_sgd, lr=lr),
                       data["fxor"]) for act in TABLE1_ACTIVATIONS for lr in protocol.sgd_lrs]
    return cells


def sgd_name(act: str, lr: float, prefix: str = "") -> str:
    return cell_name("sgd", "fxor", act, 2, f"{prefix}lr{lr:g}-")


def _hash(obj) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:10]


def default_path(protocol: Protocol, networks: int) -> str:
    return f"runs/table1-{_hash({'protocol': as_dict(protocol), 'networks': networks})}.h5"


# ------------------------------------------------------------------------------ running

def run_or_reuse(path: str, run_config: dict, cells: list[Cell], *, force: bool = False, resume="auto",
                 chunk: int | None = None, threads: int | None = None, progress: bool = True):
    """Train the cells into `path` (resuming a .part, reusing a finished file of the same run); its Results."""
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


# ------------------------------------------------------------------------------ the counts per cell

@dataclass
class CellCounts:
    """One cell of Table 1: networks solved by the optimizer's own verdict out of n, beside the paper's value."""
    opt: str
    dataset: str
    act: str
    h: int
    n: int
    solved: int
    paper: float | None           # percent
    counts: dict = field(default_factory=dict)
    lost: int = 0                 # networks with zero training error at some step that ended unsolved
    heading: int = 0              # networks not solved at the end that the finisher's flow takes to solved


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


def make_counts(opt, ds, act, h, solved: int, n: int, counts=None, lost: int = 0, heading: int = 0) -> CellCounts:
    """A cell's counts with the paper's value for it."""
    return CellCounts(opt, ds, act, h, n, int(solved), paper_value(ds, opt, act, h), dict(counts or {}), int(lost),
                      int(heading))


def collect(res, optimizers=TABLE1_OPTIMIZERS, prefix: str = "") -> list[CellCounts]:
    """The counts of every cell of the given blocks, in the paper's order."""
    rows = []
    for opt in optimizers:
        for ds, act in COLUMNS:
            for h in HIDDEN:
                name = cell_name(opt, ds, act, h, prefix)
                d = res.cell(name, ["outcome", "optimizer_outcome", "solved_at"])
                solved = d["optimizer_outcome"] == SOLVED      # the paper's protocol: the optimizer's own verdict
                lost = int(np.sum((d["solved_at"] >= 0) & ~solved))
                heading = int(np.sum(~solved & (d["outcome"] == SOLVED)))
                rows.append(make_counts(opt, ds, act, h, int(solved.sum()), res.n_rows(name), res.counts(name), lost,
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


def claim_counts(res, protocol: Protocol, prefix: str = "", limit: int | None = 200_000) -> dict:
    """The counts behind the two text claims around Table 1.

    "sgd" / "full": per activation, (solved, n) of the SGD cells per learning rate and of the full-batch
    cells per optimizer (fXOR, h = 2).  "regions": per optimizer, (failed with >= 3 of 4 points in one
    linear region, failed, solved with >= 3, solved, failed with all 4) over its fXOR ReLU cells, from
    the stored final weights of at most `limit` networks per cell ("truncated": some cell had more).
    """
    sgd, full = {}, {}
    for act in TABLE1_ACTIVATIONS:
        sgd[act] = {lr: (_own_solved(res, sgd_name(act, lr, prefix)), res.n_rows(sgd_name(act, lr, prefix)))
                    for lr in protocol.sgd_lrs}
        full[act] = {opt: (_own_solved(res, cell_name(opt, "fxor", act, 2, prefix)),
                           res.n_rows(cell_name(opt, "fxor", act, 2, prefix))) for opt in TABLE1_OPTIMIZERS}
    X = load_dataset("fxor").x
    per_opt = {}
    truncated = False
    for opt in TABLE1_OPTIMIZERS:
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
    return {"sgd": sgd, "full": full, "regions": per_opt, "truncated": truncated, "limit": limit}

def _own_solved(res, name: str) -> int:
    """Networks of a cell solved at the end of the budget by the optimizer's own verdict."""
    return res.code_counts(name, "optimizer_outcome")["solved"]



# ------------------------------------------------------------------------------ sweep

MAX_SWEEP_BLOCKS = 1000       # a sweep's (init, lr, budget) blocks: the default grid has 72


@dataclass(frozen=True)
class SweepGrid:
    inits: tuple = ("normal:1", "glorot/zero", "uniform:1")
    gd_lrs: tuple = (0.1, 0.5, 1.0)
    adam_lrs: tuple = (1e-3, 3e-3, 1e-2)
    budgets: tuple = (1000, 2500, 5000, 10000)
    seed: int = 0
    dtype: str = Protocol.dtype
    device: str = "cpu"

    def validate(self) -> "SweepGrid":
        """Every list non-empty and without repeats (a repeated value would train the same block twice)."""
        check_field_types(self, lambda name: {"inits": "--sweep-init", "gd_lrs": "--sweep-gd-lr",
                                              "adam_lrs": "--sweep-adam-lr", "budgets": "--sweep-steps"}.get(name, "--" + name))
        if not self.inits:
            raise ConfigError("--sweep-init needs at least one init law")
        specs = [InitSpec.parse(*parse_init(t)) for t in self.inits]
        for option, values, keys in (("--sweep-init", self.inits, specs), ("--sweep-gd-lr", self.gd_lrs, self.gd_lrs),
                                     ("--sweep-adam-lr", self.adam_lrs, self.adam_lrs),
                                     ("--sweep-steps", self.budgets, self.budgets)):
            if not values:
                raise ConfigError(f"{option} needs at least one value")
            if len(set(keys)) < len(keys):
                raise ConfigError(f"{option} names one value twice ({', '.join(map(str, values))}): it would train "
                                  f"the same block twice")
        blocks = len(self.inits) * (len(self.gd_lrs) + len(self.adam_lrs)) * len(self.budgets)
        if blocks > MAX_SWEEP_BLOCKS:       # each block is 24 cells of one result file
            raise ConfigError(f"the sweep grid has {blocks} blocks (inits x learning rates x budgets), at most "
                              f"{MAX_SWEEP_BLOCKS}: sweep fewer values at once")
        if not all(isinstance(b, int) and b >= 1 for b in self.budgets):
            raise ConfigError(f"--sweep-steps must be whole numbers of steps >= 1, got {self.budgets!r}")
        for option, lrs in (("--sweep-gd-lr", self.gd_lrs), ("--sweep-adam-lr", self.adam_lrs)):
            names = [f"{lr:g}" for lr in lrs]
            if not all(lr > 0 and finite(lr) for lr in lrs) or len(set(names)) < len(names):
                raise ConfigError(f"{option} must be distinct positive finite rates (as the cells name them: "
                                  f"{', '.join(names)}), got {lrs!r}")
        return self

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
            p = Protocol(init=law, bias_init=bias, steps=steps, gd_lr=lr, adam_lr=lr, seed=grid.seed, dtype=grid.dtype,
                         device=grid.device)
            cells += grid_cells(p, networks, optimizers=(opt,), prefix=_sweep_prefix(opt, law, bias, lr, steps),
                                extra_sgd=False)
    return cells


def sweep_path(grid: SweepGrid, networks: int, main_path: str | None = None) -> str:
    """The sweep's result file: beside the main table's file (runs/ by default)."""
    folder = os.path.dirname(main_path) if main_path else "runs"
    return os.path.join(folder, f"table1-sweep-{_hash({'grid': as_dict(grid), 'networks': networks})}.h5")

def sweep_counts(res, grid: SweepGrid) -> list[dict]:
    """Per (optimizer, init, lr, budget) of the grid: the block's cell counts ("cells")."""
    out = []
    for opt, law, bias, lr in grid.runs():
        for budget in sorted(grid.budgets):
            out.append({"optimizer": opt, "init": law, "bias": bias, "lr": lr, "steps": budget,
                        "cells": collect(res, (opt,), _sweep_prefix(opt, law, bias, lr, budget))})
    return out


def run_shard(protocol: Protocol, networks: int, shard: dict, *, path: str | None = None, force: bool = False,
              resume="auto", chunk: int | None = None, threads: int | None = None, progress: bool = True) -> str:
    """Train shard {"index": I, "count": N} of every cell into its own file; returns the path.

    `badminima merge` of all N shards equals the unsharded file, which `table1 -o MERGED` then reuses.
    """
    protocol.validate()
    check_count(networks, "--networks")
    path = path or default_path(protocol, networks)[:-3] + f"-shard{shard['index']}of{shard['count']}.h5"
    run_cells(path, {"command": "table1", "protocol": as_dict(protocol), "networks": networks},
              grid_cells(protocol, networks), shard=shard, force=force, resume=resume, chunk=chunk,
              threads=threads, progress=progress)
    return path

def run_table1(protocol: Protocol, networks: int, *, path: str | None = None, sweep: SweepGrid | None = None,
               sweep_networks: int | None = None, with_claims: bool = True, check_final: int = 1000,
               force: bool = False, resume="auto", chunk: int | None = None, threads: int | None = None,
               progress: bool = True) -> dict:
    """Run (or reuse) the grid, and the sweep if given, and count: what `badminima table1` reports.

    Returns {"protocol", "path", "cells": [CellCounts], "finality", "claims": claim_counts, "sweep_grid",
    "sweep_path", "sweep": sweep_counts}; what was not asked for is None.
    """
    protocol.validate()
    if sweep is not None:
        sweep.validate()
    check_count(networks, "--networks")
    check_count(check_final, "--check-final", 0)
    if not isinstance(with_claims, (bool, np.bool_)):
        raise ConfigError(f"claims must be True or False, got {with_claims!r}")
    path = path or default_path(protocol, networks)
    cells = grid_cells(protocol, networks)          # the SGD cells always: the file does not depend on --no-claims
    res = run_or_reuse(path, {"command": "table1", "protocol": as_dict(protocol), "networks": networks}, cells,
                       force=force, resume=resume, chunk=chunk, threads=threads, progress=progress)
    out = {"protocol": protocol, "path": path, "cells": collect(res), "finality": None, "claims": None,
           "sweep_grid": sweep, "sweep_path": None, "sweep": None}
    if check_final > 0:
        out["finality"] = finality(res, cells, check_final, seed=protocol.seed, threads=threads)
    if with_claims:
        out["claims"] = claim_counts(res, protocol)
    if sweep is not None:
        sn = sweep_networks or networks
        out["sweep_path"] = spath = sweep_path(sweep, sn, path)
        sres = run_or_reuse(spath, {"command": "table1 --sweep", "grid": as_dict(sweep), "networks": sn},
                            sweep_cells(sweep, sn), force=force, resume=resume, chunk=chunk, threads=threads,
                            progress=progress)
        out["sweep"] = sweep_counts(sres, sweep)
    return out


__all__ = ["Protocol", "SweepGrid", "CellCounts", "grid_cells", "default_path", "run_or_reuse", "collect", "finality",
           "claim_counts", "region_stats", "sweep_cells", "sweep_path", "sweep_counts", "run_shard", "run_table1",
           "parse_list", "paper_value", "paper_column_name", "paper_percentages", "make_config", "make_counts",
           "parse_init", "cell_name", "as_dict", "TABLE1_ACTIVATIONS", "TABLE1_OPTIMIZERS"]
