"""The deadlock search: datasets on which the 2-2-1 sigmoid network has a certified bad local minimum.

Pipeline of one candidate (index n of a run; everything random derives from (seed, n) alone):

    start -> optimize (float, Numba, batched) -> float screen -> witness (training) ->
    round the data + Newton polish -> rigorous certificate (engine/certify/smooth.py) -> record

* start: ``joint`` / ``paper``: random points in [-box, box]^2 with a label split, theta in the affine
  gauge (engine/search_kernels.search_start).  ``delete``: a certified (N+1)-point parent written in the
  gauge, minus one point (n -> parent, deleted point, variant; variants > 0 jitter the points).
  ``refine``: a certified N-point parent in the gauge (n -> parent, variant; variants > 0 jitter).
* optimize: ``paper`` = the paper's method (theta fixed, points descend ||grad_theta L||^2); ``joint`` =
  points and output weights together, Gauss-Newton onto {grad = 0} plus penalties (eigenvalue margin,
  separation, bounded pre-activations, both units used, and -- while the eigenvalue margin holds -- the
  decision margin delta* and the loss gap to the best constant predictor pushed up); ``delete`` = fade
  the deleted point's weight 1 -> 0 in ``continuation_steps`` steps, re-solving points and weights each
  time, then drop it, then ``joint``; ``refine`` = ``joint`` from the parent (pushes a certified minimum
  further along the objective, e.g. towards a larger delta*).
* screen: converged (||g|| < screen_gtol); not degenerate: points separated, hidden pre-activations
  bounded, min_v <= |v_j| <= vmax (both units used, outputs not saturating), |c| <= cmax, two classes (checked before the eigenvalue, so
  "not_minimum" rows are non-degenerate critical points: their best lambda_min measures how close an
  N comes); positive smallest Hessian eigenvalue.  The optimizers keep the first layer at the identity
  of the gauge and the Newton polish moves it little, so the units are not parallel.
* witness: the engine's own trainer (engine/train/run.py) from ``witness_starts`` random starts on the
  candidate's data; the lowest final loss is the witness if it beats L(theta*) by ``witness_margin``.
* rounding: the data are rounded to each of ``decimals`` in turn (coarsest first) and theta re-polished
  by Newton; the first rounding that certifies is kept (exact decimal data, as the certifier needs).
* certificate: ``certify_smooth`` (Krawczyk + positive definite interval Hessian + witness bound).
* quality of the certified minimum, from its outputs on the rounded data in float64 (engine/certify/quality.py):
  decision margin delta*, AUC, L - L_const, L - L(witness); tier strong / weak / plain by delta*.

Every candidate is one row of the result file (engine/store/write.py with the extra SEARCH fields below), so a
run streams, resumes and shards like training.  Certified datasets are exported in the data/ format
(points ``minimum`` and ``witness``) so ``badminima certify FILE`` re-checks them standalone.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import glob
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from badminima.engine.search import canonical
from badminima.engine.search.blocks import LANES
from badminima.engine.core.model import evaluate
from badminima.engine.core.names import SIGMOID, XENT
from badminima.engine.train.config import ConfigError, InitSpec, TrainConfig, check_field_types
from badminima.engine.certify.smooth import certify_smooth
from badminima.engine.data.datasets import DataError, load_dataset
from badminima.engine.core.outcomes import DIVERGED, FLAT, LOCAL_MINIMUM, OUT_OF_STEPS, SADDLE
from badminima.engine.core.say import say
from badminima.engine.train.progress import Progress
from badminima.engine.core.rng import normal_at
from badminima.engine.search.kernels import (H_BOX, H_CMAX, H_CTARGET, H_DELTA, H_DTARGET, H_GTOL, H_ITERS, H_KBOX, H_KCONST,
                             H_KDSTAR, H_KEIG, H_KSEP, H_KV, H_LR, H_MU, H_STEP, H_VMAX, H_VMIN, JOINT, N_HYPER,
                             STRATEGIES, STREAM_SEARCH, newton_polish, polish_batch, search_starts)
from badminima.engine.search.joint_soa import optimize as optimize_batch
from badminima.engine.store import RunComplete, RunWriter, StoreError, config_tag, open_results
from badminima.engine.store.paths import (WRITER_NAMES, check_not_input, check_output_dir, is_hdf5, not_a_file,
                                         write_text)
from badminima.engine.train.limits import MAX_COUNT, check_fits, chunk_bytes
from badminima.engine.train.run import train_range

P = 9                      # parameters of the 2-2-1 network
STRATEGY_NAMES = ("joint", "paper", "delete", "refine")
PARENT_POINTS = {"delete": 1, "refine": 0}      # strategies from parents: parent size - N
# optimizer defaults per strategy: joint/delete = Gauss-Newton + projected penalty steps (lr scales the
# penalty step); paper = Adam-normalised descent of ||grad||^2 (lr = step in data units)
DEFAULTS = {"joint": {"iters": 600, "lr": 1.0}, "delete": {"iters": 600, "lr": 1.0},
            "refine": {"iters": 600, "lr": 1.0},
            "paper": {"iters": 1000, "lr": 0.05}}

# verdict codes of a candidate (the furthest stage it reached, or why it stopped)
CERTIFIED, NOT_CONVERGED, NOT_MINIMUM, DEGENERATE, NO_WITNESS, LOST_IN_ROUNDING, NOT_CERTIFIED = range(7)
VERDICTS = {CERTIFIED: "certified", NOT_CONVERGED: "not_converged", NOT_MINIMUM: "not_minimum",
            DEGENERATE: "degenerate", NO_WITNESS: "no_witness", LOST_IN_ROUNDING: "lost_in_rounding",
            NOT_CERTIFIED: "not_certified"}
FLOAT_PASSED = (CERTIFIED, NO_WITNESS, LOST_IN_ROUNDING, NOT_CERTIFIED)   # survived the float screen
QUALITY_FIELDS = ("delta_star", "const_gap", "witness_gap", "auc")          # of a certified minimum
# quality tiers of a certified minimum, by its decision margin delta* (engine/certify/quality.py) against the
# setting strong_delta
TIER_NONE, STRONG, WEAK, PLAIN = -1, 0, 1, 2
TIERS = {TIER_NONE: "-", STRONG: "strong", WEAK: "weak", PLAIN: "plain"}
TIER_TEXT = {STRONG: "accuracy below the majority-class rate even with every output within {d} of 1/2 "
                     "counted as correct: delta* >= {d}",
             WEAK: "accuracy below the majority-class rate, but only by outputs within {d} of 1/2: "
                   "0 < delta* < {d}",
             PLAIN: "accuracy at or above the majority-class rate: delta* = 0"}


def _code_map(d: dict) -> str:
    return ",".join(f"{k}:{v}" for k, v in d.items())


def search_fields(n_points: int) -> dict:
    """Extra per-candidate fields of a search result file (see engine/store/write.py ``fields=``)."""
    return {
        "verdict": ("int8", 0, "furthest stage / rejection: " + _code_map(VERDICTS)),
        "tier": ("int8", 0, "quality tier of a certified minimum: " + _code_map(TIERS)),
        "decimals": ("int8", 0, "decimals of the certified (rounded) data; -1 if none"),
        "points": ("float64", 2 * n_points, "the candidate's data x_00, x_01, x_10, ... (rounded if certified)"),
        "labels": ("int8", n_points, "labels y_i"),
        "witness": ("float64", P, "witness theta' with lower loss (NaN if none)"),
        "witness_loss": ("float64", 0, "mean loss of the witness (NaN if none)"),
        "margin": ("float64", 0, "certified lower bound of L(theta*) - L(witness) (NaN if not certified)"),
        "delta_star": ("float64", 0, "decision margin delta* of the certified minimum's outputs (NaN if none)"),
        "const_gap": ("float64", 0, "L(theta*) - L of the best constant predictor (NaN if not certified)"),
        "witness_gap": ("float64", 0, "L(theta*) - L(witness), float64 (NaN if not certified)"),
        "auc": ("float64", 0, "AUC of the certified minimum's outputs (NaN if not certified)"),
        "min_sep": ("float64", 0, "smallest distance between two points"),
        "max_pre": ("float64", 0, "largest |hidden pre-activation| over the data at theta*"),
        "majority": ("float64", 0, "majority-class rate of the labels"),
        "parent": ("int64", 0, "delete/refine strategy: index of the parent dataset (-1 otherwise)"),
        "deleted": ("int64", 0, "delete strategy: index of the deleted parent point (-1 otherwise)"),
    }


# The fields only some strategies read (the rest read every field): delete and refine start from their
# parents' points and labels, the paper strategy descends ||grad||^2 with Adam and none of the joint
# objective's terms (the float screen's |v| and |c| bounds, vmax and cmax, apply to every strategy), and
# only delete re-solves in continuation steps.  An option a strategy would ignore is refused, since it
# would change nothing but the configuration's tag.
_JOINT_OBJECTIVE = ("mu", "keig", "sep", "ksep", "bound", "kbound", "vmin", "kv", "step", "kdstar",
                    "dstar_target", "kconst", "const_target")
USED_BY = {**{k: ("joint", "paper") for k in ("ones", "box", "vlo", "vhi")},
           **{k: ("joint", "delete", "refine") for k in _JOINT_OBJECTIVE},
           "jitter": ("delete", "refine"), "parents": ("delete", "refine"),
           "continuation_steps": ("delete",), "continuation_iters": ("delete",)}


def reads(strategy: str, name: str) -> bool:
    """Whether `strategy` reads the SearchConfig field `name`."""
    return strategy in USED_BY.get(name, STRATEGY_NAMES)


def check_used(strategy: str, names) -> None:
    """ConfigError naming the first of the fields `names` (given or set) that `strategy` does not read
    (an unknown strategy is left to SearchConfig.validate to refuse)."""
    if strategy not in STRATEGY_NAMES:
        return
    for name in names:
        if not reads(strategy, name):
            users = USED_BY[name]
            named = " and ".join(filter(None, (", ".join(users[:-1]), users[-1])))
            raise ConfigError(f"{_SEARCH_FLAGS.get(name, name)} is used only by the {named} "
                              f"strateg{'ies' if len(users) > 1 else 'y'}, not by {strategy}")


# How messages name SearchConfig fields (and properties): as the `badminima search` option where there is
# one, else as the keyword of SearchConfig / bm.search (step_lr is the `lr` keyword)
_SEARCH_FLAGS = {"points": "-N", "budget": "--budget", "seed": "--seed", "strategy": "--strategy",
                 "ones": "--ones", "parents": "--parents", "found_dir": "--found-dir", "n_iters": "--iters", "step_lr": "lr", "jitter": "--jitter", "bound": "--bound",
                 "strong_delta": "--strong-delta", "kdstar": "--kdstar", "kconst": "--kconst"}


@dataclass(frozen=True)
class SearchConfig:
    """Everything that determines a search's records (threads and chunking do not)."""
    points: int
    budget: int = 1000
    seed: int = 0
    strategy: str = "joint"
    ones: tuple = ()                  # label splits (number of points labelled 1); () = (N//2, N//2 - 1)
    parents: tuple = ()               # delete: ("file.json:point", ...)
    # starts
    box: float = 4.0
    vlo: float = 1.0
    vhi: float = 6.0
    jitter: float = 0.05              # delete: std of the point jitter of variant m (times m)
    # optimizer (None: the strategy's default, see DEFAULTS)
    iters: int | None = None
    lr: float | None = None
    mu: float = 1e-4                  # eigenvalue margin aimed at (mean loss)
    keig: float = 1e5
    sep: float = 0.3
    ksep: float = 1.0
    bound: float = 5.0
    kbound: float = 1.0
    vmin: float = 0.5
    vmax: float = 30.0
    kv: float = 1.0
    cmax: float = 30.0
    step: float = 0.25
    gtol: float = 1e-10
    # robust badness (joint/delete objective): push delta* to dstar_target, L - L_const to const_target
    kdstar: float = 10.0
    dstar_target: float = 0.1
    kconst: float = 0.0
    const_target: float = 0.0
    continuation_steps: int = 10
    continuation_iters: int = 30
    polish_gtol: float = 1e-3         # Newton-polish theta of candidates whose ||g|| is below this
    # float screen
    screen_gtol: float = 1e-7
    screen_eig: float = 1e-7
    min_sep: float = 0.15
    max_pre: float = 6.0
    min_v: float = 0.25
    # witness, rounding, certificate
    witness_starts: int = 128
    witness_steps: int = 4000
    witness_lr: float = 0.5
    witness_init: str = "normal:2"
    witness_margin: float = 1e-4
    decimals: tuple = (1, 2, 3, 4)
    max_move: float = 0.5
    strong_delta: float = 0.05         # tier "strong" needs delta* >= this
    found_dir: str = "runs/search/found"

    @property
    def n_iters(self) -> int:
        return self.iters if self.iters is not None else DEFAULTS[self.strategy]["iters"]

    @property
    def step_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULTS[self.strategy]["lr"]

    def label_splits(self) -> tuple:
        if self.ones:
            return tuple(self.ones)
        n = self.points
        return (n // 2,) if n // 2 - 1 < 1 else (n // 2, n // 2 - 1)

    def validate(self) -> "SearchConfig":
        def bad(msg):
            raise ConfigError(msg)

        def opt(name):      # a field as `badminima search` spells it, where it is an option
            return _SEARCH_FLAGS.get(name, name)
        check_field_types(self, opt)
        if not isinstance(self.points, int) or not 4 <= self.points <= 64:
            bad(f"-N (the number of points) must be an integer in 4-64 (fewer than 4 points cannot hold a strict finite "
                f"minimum of the 2-2-1 network), got {self.points!r}")
        if not 1 <= self.budget <= MAX_COUNT:
            bad(f"--budget must be in [1, 2^62], got {self.budget}")
        if not 0 <= self.seed < 2 ** 32:
            bad(f"--seed must be in [0, 2^32), got {self.seed}")
        if self.strategy not in STRATEGY_NAMES:
            bad(f"unknown strategy {self.strategy!r} (choose from {', '.join(STRATEGY_NAMES)})")
        for k in self.label_splits():
            if not (isinstance(k, int) and 1 <= k < self.points):
                bad(f"label split {k!r}: the number of ones must be an integer in 1..{self.points - 1}")
        check_used(self.strategy, [k for k in USED_BY if getattr(self, k) != _FIELD_DEFAULTS[k]])
        for spec in self.parents:
            if not isinstance(spec, str) or not spec.strip():
                bad(f"--parents: each is a dataset FILE[:POINT] or a glob pattern, got {spec!r}")
        if self.strategy in PARENT_POINTS and not self.parents:
            bad(f"the {self.strategy} strategy needs --parents (certified datasets with "
                f"{'one point more' if PARENT_POINTS[self.strategy] else 'the same number of points'})")
        splits = [min(k, self.points - k) for k in self.label_splits()]     # k ones = N - k under the label flip
        if len(set(splits)) != len(splits):
            bad(f"--ones names a label split twice (k and N - k ones are one split, the labels flipped): "
                f"{', '.join(map(str, self.label_splits()))}")
        for name in ("box", "vhi", "step_lr", "mu", "sep", "bound", "vmax", "step", "cmax", "witness_lr",
                     "strong_delta", "dstar_target", "gtol", "screen_gtol", "max_pre", "max_move"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                bad(f"{opt(name)} must be positive and finite, got {v}")
        if not 0 <= self.vlo <= self.vhi:
            bad("need 0 <= vlo <= vhi")
        if self.strong_delta >= 0.5:
            bad(f"{opt('strong_delta')} must be below 1/2 (|p - 1/2| never reaches it), got {self.strong_delta}")
        for name in ("kdstar", "kconst", "jitter", "keig", "ksep", "kbound", "kv", "vmin", "polish_gtol",
                     "screen_eig", "min_sep", "min_v", "witness_margin"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                bad(f"{opt(name)} must be >= 0 and finite, got {v}")
        if not math.isfinite(self.const_target):
            bad(f"const_target must be finite, got {self.const_target}")
        for name in ("n_iters", "continuation_steps", "continuation_iters", "witness_starts", "witness_steps"):
            if getattr(self, name) < 1:
                bad(f"{opt(name)} must be >= 1, got {getattr(self, name)}")
        if self.continuation_steps > 10 ** 6:
            bad(f"{opt('continuation_steps')} must be at most 10^6 (each is a full re-solve), got "
                f"{self.continuation_steps}")
        if self.witness_starts * self.budget > MAX_COUNT:       # candidate i's starts: networks i*M .. i*M + M - 1
            bad(f"{opt('witness_starts')} x --budget must be at most 2^62, got {self.witness_starts} x {self.budget}")
        if not self.decimals or any(not (isinstance(k, int) and 0 <= k <= 12) for k in self.decimals):
            bad(f"decimals must be integers in 0..12, got {self.decimals!r}")
        InitSpec.parse(self.witness_init)
        self._check_exports_outside_parents()
        return self

    def _check_exports_outside_parents(self) -> None:
        """ConfigError where a --parents pattern would pick up the datasets this search exports into
        --found-dir: its parents would grow as it runs, and a resume would see others."""
        config = run_config(self, None)      # the names' tag also digests the parents' contents: not needed here
        found = os.path.realpath(self.found_dir)
        for spec in self.parents if self.strategy in PARENT_POINTS else ():
            pattern = _split_spec(spec)[0]
            if not any(ch in pattern for ch in "*?["):
                continue
            folder, base = os.path.split(os.path.abspath(pattern))
            if _glob_folder_names(folder, found) and any(
                    fnmatch.fnmatchcase(export_name(config, index), base) for index in (0, 123456, 999999)):
                raise ConfigError(f"--parents {spec} matches the datasets this search exports into --found-dir "
                                  f"{self.found_dir}, so its parents would change as it runs; give another "
                                  f"--found-dir or a narrower pattern")

    def hyper(self) -> np.ndarray:
        hp = np.zeros(N_HYPER)
        hp[H_ITERS], hp[H_LR], hp[H_MU], hp[H_KEIG] = self.n_iters, self.step_lr, self.mu, self.keig
        hp[H_DELTA], hp[H_KSEP], hp[H_BOX], hp[H_KBOX] = self.sep, self.ksep, self.bound, self.kbound
        hp[H_VMIN], hp[H_VMAX], hp[H_KV], hp[H_CMAX] = self.vmin, self.vmax, self.kv, self.cmax
        hp[H_STEP], hp[H_GTOL] = self.step, self.gtol
        hp[H_KDSTAR], hp[H_DTARGET], hp[H_KCONST], hp[H_CTARGET] = (self.kdstar, self.dstar_target, self.kconst,
                                                                   self.const_target)
        return hp

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["found_dir"] = os.path.normpath(self.found_dir)     # 'f', './f' and 'f/' are one run's folder
        d["ones"] = list(self.label_splits())
        d["iters"], d["lr"] = self.n_iters, self.step_lr
        d["parents"] = list(self.parents)
        d["decimals"] = list(self.decimals)
        return d


_FIELD_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SearchConfig)}


# ----------------------------------------------------------------------------------------------------
# parents (delete strategy)
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Parent:
    spec: str
    source: str                # the dataset file it was read from
    fingerprint: str
    A: np.ndarray              # points in the gauge (pre-activation coordinates)
    y: np.ndarray
    theta: np.ndarray          # gauge theta


PAPER_PARENT = "paper10:W_hat"      # the paper's 10-point minimum (Theorem 1)


def default_parents(strategy: str, points: int) -> tuple:
    """The parents a search takes when none are given: the paper's 10-point minimum for deletion to 9
    points, none otherwise."""
    return (PAPER_PARENT,) if strategy == "delete" and points == 9 else ()


def parse_ones(text: str) -> tuple:
    """--ones as the command line spells it ('4,3') -> (4, 3)."""
    from badminima.engine.train.config import decimal_int, split_items
    try:
        return tuple(decimal_int(t) for t in split_items(text, "--ones"))
    except ValueError:
        raise ConfigError(f"--ones must be comma-separated integers, got {text!r}") from None


def _glob_folder_names(folder: str, target: str) -> bool:
    """Whether a glob pattern's folder part (absolute) names the folder `target` (a realpath), as glob
    matches it: component by component, its literal head resolved through symlinks."""
    parts = folder.split(os.sep)
    k = next((i for i, part in enumerate(parts) if any(ch in part for ch in "*?[")), len(parts))
    head = os.path.realpath(os.sep.join(parts[:k]) or os.sep).rstrip(os.sep).split(os.sep)
    rest, have = parts[k:], target.rstrip(os.sep).split(os.sep)
    return (have[:len(head)] == head and len(have) == len(head) + len(rest)
            and all(fnmatch.fnmatchcase(h, r) for h, r in zip(have[len(head):], rest)))


def _split_spec(spec: str) -> tuple[str, str]:
    """'file.json[:point]' -> (file, point or '')."""
    path, _, point = spec.rpartition(":") if ":" in spec and not os.path.exists(spec) else (spec, "", "")
    return path, point


def expand_parents(specs) -> list[str]:
    """Parent specs with glob patterns ('found/N8_*.json[:point]') expanded, each pattern's matches sorted."""
    out = []
    for spec in specs:
        path, point = _split_spec(spec)
        if not any(ch in path for ch in "*?["):
            out.append(spec)
            continue
        hits = sorted(glob.glob(path))
        if not hits:
            raise DataError(f"--parents {spec}: no file matches")
        out.extend(f"{h}:{point}" if point else h for h in hits)
    return out


def parent_files(specs) -> list[str]:
    """The files that parent specs name (globs expanded): what a search reads."""
    return [_split_spec(spec)[0] for spec in expand_parents(specs)]


def load_parent(spec: str) -> Parent:
    """'file.json[:point]' -> the point (default 'minimum', else 'W_hat', else the first) polished by
    Newton on the file's data and written in the affine gauge."""
    path, point = _split_spec(spec)
    ds = load_dataset(path)
    if ds.d != 2 or ds.kind != "classification":
        raise DataError(f"{spec}: a parent must be a 2-D classification dataset")
    if not ds.points:
        raise DataError(f"{spec}: the dataset holds no weight point to start from (a parent is a certified "
                        f"dataset: a search's found/ file, or one with a minimum such as paper10)")
    if not point:
        point = next((p for p in ("minimum", "W_hat") if p in ds.points), next(iter(ds.points)))
    if point not in ds.points:
        raise DataError(f"{spec}: no weight point {point!r} (points: {', '.join(ds.points)})")
    pt = ds.points[point]
    if pt.hidden != 2 or pt.activation != "sigmoid":
        raise DataError(f"{spec}: point {point!r} is not a 2-2-1 sigmoid network")
    X = np.array(ds.x, dtype=np.float64)
    y = np.array(ds.y, dtype=np.float64)
    th = np.array(pt.theta, dtype=np.float64)
    gn, lam, _ = newton_polish(X, y, np.ones(len(y)), th, 2, 40, 1e-13)
    if not (gn < 1e-9 and lam > 0):
        raise DataError(f"{spec}: point {point!r} is not (near) a strict local minimum "
                        f"(after Newton: ||g|| = {gn:.2g}, lambda_min = {lam:.2g})")
    try:
        A, thg = canonical.to_gauge(X, th)
    except ValueError as e:
        raise DataError(f"{spec}: {e}") from None
    return Parent(spec=f"{path}:{point}", source=ds.source, fingerprint=ds.fingerprint, A=A, y=y, theta=thg)


def parent_starts(cfg: SearchConfig, parents: list, indices: np.ndarray):
    """Starts of delete / refine candidates: (X (n, M, 2), y, theta, parent index, deleted point), M the
    parents' size.

    delete (M = N+1): candidate n takes parent n % n_par, deleted point (n // n_par) % M, variant
    n // (n_par M); refine (M = N): parent n % n_par, no deletion (-1), variant n // n_par.  The points of
    variant m > 0 are jittered by m * jitter * N(0, 1) draws of stream STREAM_SEARCH."""
    n_par = len(parents)
    dels = PARENT_POINTS[cfg.strategy] > 0
    M = cfg.points + PARENT_POINTS[cfg.strategy]
    X = np.empty((len(indices), M, 2))
    y = np.empty((len(indices), M))
    th = np.empty((len(indices), P))
    par = np.empty(len(indices), np.int64)
    dele = np.empty(len(indices), np.int64)
    for c, n in enumerate(indices):
        p = int(n % n_par)
        k = int((n // n_par) % M) if dels else -1
        m = int(n // (n_par * M)) if dels else int(n // n_par)
        X[c] = parents[p].A
        if m:
            for i in range(M):
                for j in range(2):
                    X[c, i, j] += m * cfg.jitter * normal_at(cfg.seed, int(n), STREAM_SEARCH, 2 * i + j)
        y[c] = parents[p].y
        th[c] = parents[p].theta
        par[c], dele[c] = p, k
    return X, y, th, par, dele


# ----------------------------------------------------------------------------------------------------
# float stage
# ----------------------------------------------------------------------------------------------------
def float_stage(cfg: SearchConfig, indices: np.ndarray, parents: list | None = None,
                threads: int | None = None) -> dict:
    """Start and optimise candidates `indices` (float, parallel).  Returns X (n, N, 2), y, theta,
    diag (n, 8) = [||g||, lambda_min, min sep, max |x|, iterations, penalty, loss, converged],
    parent, deleted."""
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    n, N = len(indices), cfg.points
    hp = cfg.hyper()
    prev = numba.get_num_threads()
    numba.set_num_threads(min(threads or prev, numba.config.NUMBA_NUM_THREADS))
    try:
        diag = np.empty((n, 8))
        if cfg.strategy == "refine":
            X, y, th, par, dele = parent_starts(cfg, parents, indices)
            optimize_batch(JOINT, X, y, np.ones((n, N)), th, 2, hp, diag)
        elif cfg.strategy == "delete":
            X, y, th, par, dele = parent_starts(cfg, parents, indices)
            w = np.ones((n, N + 1))
            hc = hp.copy()
            hc[H_ITERS] = cfg.continuation_iters
            rows = np.arange(n)
            for t in np.linspace(0.0, 1.0, cfg.continuation_steps + 1)[1:]:
                w[rows, dele] = 1.0 - t
                optimize_batch(JOINT, X, y, w, th, 2, hc, diag)
            keep = np.ones((n, N + 1), bool)
            keep[rows, dele] = False
            X = np.ascontiguousarray(X[keep].reshape(n, N, 2))
            y = np.ascontiguousarray(y[keep].reshape(n, N))
            optimize_batch(JOINT, X, y, np.ones((n, N)), th, 2, hp, diag)
        else:
            X, y, th = search_starts(np.uint64(cfg.seed), indices, N, 2,
                                     np.array(cfg.label_splits(), np.int64), cfg.box, cfg.vlo, cfg.vhi)
            optimize_batch(STRATEGIES[cfg.strategy], X, y, np.ones((n, N)), th, 2, hp, diag)
            par = np.full(n, -1, np.int64)
            dele = np.full(n, -1, np.int64)
        polish(cfg, X, y, th, diag)
    finally:
        numba.set_num_threads(prev)
    return {"index": indices, "X": X, "y": y, "theta": th, "diag": diag, "parent": par, "deleted": dele}


def polish(cfg: SearchConfig, X, y, th, diag) -> None:
    """Newton polish of theta (all 9 weights, data fixed) for candidates with ||g|| < polish_gtol, in
    place: kept where Newton converges (||g|| < 1e-12) within max_move of the optimiser's theta;
    diag[:, 0:2] (||g||, lambda_min) are updated for the kept ones."""
    sel = np.where(np.isfinite(diag[:, 0]) & (diag[:, 0] < cfg.polish_gtol))[0]
    if not len(sel):
        return
    t = np.ascontiguousarray(th[sel])
    res = np.empty((len(sel), 3))
    polish_batch(np.ascontiguousarray(X[sel]), np.ascontiguousarray(y[sel]), np.ones((len(sel), X.shape[1])),
                 t, 2, 30, 1e-13, res)
    ok = (res[:, 0] < 1e-12) & (res[:, 2] < cfg.max_move)
    th[sel[ok]] = t[ok]
    diag[sel[ok], 0] = res[ok, 0]
    diag[sel[ok], 1] = res[ok, 1]


def _pre_activations(X, theta):
    W = np.array([[theta[1], theta[2]], [theta[5], theta[6]]])
    return X @ W.T + np.array([theta[3], theta[7]])


def _min_sep(X) -> float:
    d = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    d[np.diag_indices(len(X))] = np.inf
    return float(d.min())


def screen(cfg: SearchConfig, X, y, theta, diag) -> tuple[int, int]:
    """(outcome code, verdict) of one optimised candidate; verdict -1 = passed the float screen."""
    gn, lam = diag[0], diag[1]
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(theta)) and math.isfinite(gn) and math.isfinite(lam)):
        return DIVERGED, NOT_CONVERGED
    if not gn < cfg.screen_gtol:
        return OUT_OF_STEPS, NOT_CONVERGED
    code = SADDLE if lam < -cfg.screen_eig else FLAT if lam <= cfg.screen_eig else LOCAL_MINIMUM
    ones = y.sum()
    if (ones == 0 or ones == len(y) or _min_sep(X) < cfg.min_sep
            or np.max(np.abs(_pre_activations(X, theta))) > cfg.max_pre
            or min(abs(theta[0]), abs(theta[4])) < cfg.min_v
            or max(abs(theta[0]), abs(theta[4])) > cfg.vmax or abs(theta[8]) > cfg.cmax):
        return code, DEGENERATE
    return code, (-1 if code == LOCAL_MINIMUM else NOT_MINIMUM)


# ----------------------------------------------------------------------------------------------------
# witness, rounding, certificate
# ----------------------------------------------------------------------------------------------------
def witness_config(cfg: SearchConfig) -> TrainConfig:
    return TrainConfig(dataset="search-candidate", dataset_fingerprint="-", kind="classification", hidden=2,
                       activation="sigmoid", optimizer="gd", lr=cfg.witness_lr, steps=cfg.witness_steps,
                       init=InitSpec.parse(cfg.witness_init), networks=cfg.witness_starts,
                       seed=cfg.seed).validate()


def find_witness(cfg: SearchConfig, X, y, index: int, threads: int | None = None):
    """(theta', loss') of the lowest-loss network among witness_starts trained from random starts;
    the starts are networks index*M .. index*M + M - 1 of the trainer's seed (a function of (seed, n))."""
    M = cfg.witness_starts
    res = train_range(witness_config(cfg), X, y, index * M, (index + 1) * M, threads=threads)
    loss = np.where(np.isfinite(res["loss"]), res["loss"], np.inf)
    k = int(np.argmin(loss))
    return res["weights"][k].copy(), float(loss[k])


def _mean_loss(theta, X, y) -> float:
    return _loss_acc(theta, X, y)[0]


def _dec_text(v: float, k: int) -> str:
    s = f"{v:.{k}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s


def tier_of(delta_star: float, strong_delta: float) -> int:
    """STRONG: delta* >= strong_delta; WEAK: 0 < delta* < strong_delta; PLAIN: delta* = 0."""
    return STRONG if delta_star >= strong_delta else WEAK if delta_star > 0 else PLAIN


def process_candidate(cfg: SearchConfig, X, y, theta, index: int = 0, threads: int | None = None,
                      witness=None) -> dict:
    """Witness, rounding, Newton polish and certificate of one float candidate that passed the screen.

    Returns a dict with verdict, reason, tier, decimals, X (final data), theta, witness, witness_loss,
    margin, report (the certificate of the kept rounding, or the last one tried)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    th0 = np.array(theta, dtype=np.float64)
    out = {"verdict": NO_WITNESS, "reason": "", "tier": TIER_NONE, "decimals": -1, "X": X, "theta": th0,
           "witness": np.full(P, np.nan), "witness_loss": np.nan, "margin": np.nan, "report": None,
           "delta_star": np.nan, "const_gap": np.nan, "witness_gap": np.nan, "auc": np.nan}
    L0 = _mean_loss(th0, X, y)
    if witness is None:
        wth, wl = find_witness(cfg, X, y, index, threads)
    else:
        wth = np.asarray(witness, dtype=np.float64)
        wl = _mean_loss(wth, X, y)
    out["witness"], out["witness_loss"] = wth, wl
    if not wl < L0 - cfg.witness_margin:
        out["reason"] = f"best of {cfg.witness_starts} trained networks has loss {wl:.6g} >= {L0:.6g} - margin"
        return out
    out["verdict"] = LOST_IN_ROUNDING
    out["reason"] = "the minimum did not survive rounding the data to " + \
        "/".join(str(k) for k in sorted(cfg.decimals)) + " decimals"
    for k in sorted(cfg.decimals):
        Xr = np.round(X, k) + 0.0
        th = th0.copy()
        gn, lam, moved = newton_polish(Xr, y, np.ones(len(y)), th, 2, 40, 1e-13)
        if not (gn < 1e-10 and lam > 0 and moved < cfg.max_move) or _min_sep(Xr) < cfg.min_sep:
            continue
        if not _mean_loss(wth, Xr, y) < _mean_loss(th, Xr, y) - cfg.witness_margin:
            continue
        xs = [[_dec_text(v, k) for v in row] for row in Xr]
        ys = [str(int(t)) for t in y]
        rep = certify_smooth(xs, ys, [repr(float(t)) for t in th], hidden=2, activation="sigmoid",
                             witness=[repr(float(t)) for t in wth])
        out["report"] = rep
        if rep["certified"]:
            theta_c = np.array([float(s) for s in rep["center"]]) if "center" in rep else th
            q = rep["quality"]           # outputs of the certified centre on the rounded data, float64
            out.update(verdict=CERTIFIED, reason="", decimals=k, X=Xr, theta=theta_c,
                       margin=rep["witness"]["margin_lower"], tier=tier_of(q["delta_star"], cfg.strong_delta),
                       delta_star=q["delta_star"], const_gap=q["loss_minus_constant"], auc=q["auc"],
                       witness_gap=_mean_loss(theta_c, Xr, y) - _mean_loss(wth, Xr, y), x_text=xs, y_text=ys)
            return out
        out.update(verdict=NOT_CERTIFIED, reason=f"{rep['reason']}: {rep.get('detail', '')}"[:300])
    return out


# ----------------------------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------------------------
# Run-config keys that never change a candidate's record: where files go, how much is searched (candidate
# i is the same in any budget) and which shard ran it
_UNTAGGED = ("found_dir", "budget", "shard")


def record_identity(config: dict) -> dict:
    """A search's run config without the keys that never change a candidate's record: two searches with
    the same identity give candidate i the same record."""
    return {k: v for k, v in config.items() if k not in _UNTAGGED}


def export_name(config: dict, index: int) -> str:
    """File name of certified candidate `index` of the search whose run config (``run_config``) is `config`:
    'N8_s0_joint_<tag>_000123.json', the tag a digest of everything that determines the record, so that
    searches with other options never replace each other's files in a shared --found-dir."""
    tag = config_tag(record_identity(config))
    return f"N{config['points']}_s{config['seed']}_{config['strategy']}_{tag}_{index:06d}.json"


def export_found(cfg: SearchConfig, config: dict, index: int, res: dict, parent: str | None = None) -> str:
    """Write a certified candidate in the data/ format (points 'minimum' and 'witness'); returns the path.
    `config` is the search's run config (``run_config``), which names the file."""
    rep = res["report"]
    q = rep["quality"]
    form = canonical.canonical_form(res["X"], np.array([float(t) for t in res["y_text"]]), res["theta"])
    tier = TIERS[res["tier"]]
    name = export_name(config, index)
    doc = {
        "name": name[:-5],
        "kind": "classification",
        "description": (f"{cfg.points}-point dataset on which the 2-2-1 sigmoid network (mean cross-entropy) "
                        f"has a certified strict local minimum that is not global; quality tier {tier} "
                        f"({TIER_TEXT[res['tier']].format(d=cfg.strong_delta)}): accuracy {q['accuracy']:.4g} "
                        f"vs majority {q['majority_rate']:.4g}, decision margin delta* {res['delta_star']:.4g}, "
                        f"AUC {res['auc']:.4g}, L - L_const {res['const_gap']:.4g}.  Data are in the affine "
                        f"gauge (hidden pre-activations)."),
        "source": f"badminima search -N {cfg.points} --seed {cfg.seed} --strategy {cfg.strategy} "
                  f"(candidate {index})" + (f", parent {parent}" if parent else ""),
        "x": res["x_text"],
        "y": res["y_text"],
        "witness": "witness",
        "points": {
            "minimum": {"hidden": 2, "activation": "sigmoid", "theta": rep["center"] if "center" in rep else
                        [repr(float(t)) for t in res["theta"]], "witness": "witness",
                        "note": "strict local minimum, certified by engine/certify/smooth.py (Krawczyk + "
                                "interval Hessian); theta is the refined centre of the proof box"},
            "witness": {"hidden": 2, "activation": "sigmoid",
                        "theta": [repr(float(t)) for t in res["witness"]],
                        "note": "a weight vector of lower loss, found by training from random starts"},
        },
        "search": {"seed": cfg.seed, "index": int(index), "strategy": cfg.strategy, "tier": tier,
                   "strong_delta": cfg.strong_delta, "accuracy": q["accuracy"], "majority_rate": q["majority_rate"],
                   "delta_star": res["delta_star"], "auc": res["auc"], "const_gap": res["const_gap"],
                   "constant_loss": q["constant_loss"], "witness_gap": res["witness_gap"],
                   "outputs": q["outputs"],
                   "loss_enclosure": rep["loss_enclosure"], "witness_loss_upper": rep["witness"]["loss_upper"],
                   "margin_lower": rep["witness"]["margin_lower"],
                   "min_eig_lower_bound": rep["min_eig_lower_bound"], "decimals": res["decimals"],
                   "canonical_key": form["key"], "pattern": form["pattern"], "parent": parent},
    }
    path = os.path.join(cfg.found_dir, name)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]",
                  json.dumps(doc, indent=1))            # innermost lists on one line
    return write_text(path, text + "\n")             # atomic; a full disk leaves no temporary file


# ----------------------------------------------------------------------------------------------------
# runs
# ----------------------------------------------------------------------------------------------------
def post_pool(workers: int | None):
    """A pool of ``workers`` processes (spawned, one Numba thread each) for the per-survivor stages
    (witness training, rounding, certificate), or None for in-process post-processing."""
    if not workers or workers < 2:
        return None
    from badminima.engine.train.threads import process_pool
    return process_pool(workers, numba_threads=1)


def _post_one(cfg, X, y, th, idx):
    return process_candidate(cfg, X, y, th, idx, 1)


def _records(cfg: SearchConfig, config: dict, fl: dict, parents: list | None, threads, stats: dict,
             pool=None) -> dict:
    """Screen, post-process and export one chunk of float results; the chunk of store rows (`config`: the
    search's ``run_config``, which names the exported files).  With a
    pool (``post_pool``) the chunk's float survivors are post-processed in its processes, all at once;
    each survivor's result is a function of the candidate alone, so the records do not change."""
    n, N = len(fl["index"]), cfg.points
    rec = {
        "index": fl["index"].astype(np.int64), "outcome": np.empty(n, np.int8), "loss": np.empty(n),
        "accuracy": np.empty(n), "grad_norm": fl["diag"][:, 0].copy(), "steps": fl["diag"][:, 4].astype(np.int64),
        "min_eig": fl["diag"][:, 1].copy(), "weights": fl["theta"].copy(),
        "verdict": np.empty(n, np.int8), "tier": np.full(n, TIER_NONE, np.int8), "decimals": np.full(n, -1, np.int8),
        "points": fl["X"].reshape(n, 2 * N).copy(), "labels": fl["y"].astype(np.int8),
        "witness": np.full((n, P), np.nan), "witness_loss": np.full(n, np.nan), "margin": np.full(n, np.nan),
        **{k: np.full(n, np.nan) for k in QUALITY_FIELDS},
        "min_sep": np.empty(n), "max_pre": np.empty(n), "majority": np.empty(n),
        "parent": fl["parent"].astype(np.int64), "deleted": fl["deleted"].astype(np.int64),
    }
    screened = [screen(cfg, fl["X"][c], fl["y"][c], fl["theta"][c], fl["diag"][c]) for c in range(n)]
    futures = {}
    if pool is not None:
        for c in range(n):
            if screened[c][1] < 0:
                futures[c] = pool.submit(_post_one, cfg, fl["X"][c], fl["y"][c], fl["theta"][c], int(fl["index"][c]))
    for c in range(n):
        X, y, th = fl["X"][c], fl["y"][c], fl["theta"][c]
        code, verdict = screened[c]
        rec["outcome"][c] = code
        ones = float(y.mean())
        rec["majority"][c] = max(ones, 1 - ones)
        if verdict < 0:
            idx = int(fl["index"][c])
            res = futures[c].result() if c in futures else process_candidate(cfg, X, y, th, idx, threads)
            verdict = res["verdict"]
            rec["witness"][c], rec["witness_loss"][c] = res["witness"], res["witness_loss"]
            if verdict == CERTIFIED:
                X, th = res["X"], res["theta"]
                rec["points"][c] = X.ravel()
                rec["weights"][c] = th
                rec["tier"][c], rec["decimals"][c], rec["margin"][c] = res["tier"], res["decimals"], res["margin"]
                for k in QUALITY_FIELDS:
                    rec[k][c] = res[k]
                par = parents[int(fl["parent"][c])].spec if parents and fl["parent"][c] >= 0 else None
                stats.setdefault("files", []).append(export_found(cfg, config, idx, res, par))
        rec["verdict"][c] = verdict
        if np.all(np.isfinite(X)) and np.all(np.isfinite(th)):
            L, acc = _loss_acc(th, X, y)
            rec["loss"][c], rec["accuracy"][c] = L, acc
            rec["min_sep"][c] = _min_sep(X)
            rec["max_pre"][c] = float(np.max(np.abs(_pre_activations(X, th))))
        else:
            rec["loss"][c] = rec["accuracy"][c] = rec["min_sep"][c] = rec["max_pre"][c] = np.nan
    return rec


def _loss_acc(theta, X, y):
    """Mean cross-entropy and accuracy of a 2-2-1 sigmoid net (the engine's exact model)."""
    L, acc, _ = evaluate(np.ascontiguousarray(theta, np.float64), np.ascontiguousarray(X, np.float64),
                         np.ascontiguousarray(y, np.float64), 2, 2, SIGMOID, XENT)
    return float(L), float(acc)


def default_path(cfg: SearchConfig) -> str:
    """runs/search/N{N}-{strategy}-seed{seed}-{tag}.h5, the tag 8 hex digits of the whole config, so that
    a rerun finds (and resumes or reuses) its file and another search gets another one."""
    return f"runs/search/N{cfg.points}-{cfg.strategy}-seed{cfg.seed}-{config_tag(cfg.to_dict())}.h5"


def run_config(cfg: SearchConfig, parents: list | None) -> dict:
    d = {"command": "search", **cfg.to_dict()}
    if parents:
        d["parent_fingerprints"] = [p.fingerprint for p in parents]
    return d


SEARCH_CHUNK = 256              # small: each candidate may train a witness and be certified
SEARCH_CHUNK_WORK = 1 << 24     # candidate-iterations a default chunk holds at most (about a minute on a core)


def default_search_chunk(cfg: SearchConfig) -> int:
    """Candidates per committed chunk when none is given: SEARCH_CHUNK, fewer where the iterations are
    many, so that a stop signal (which abandons the chunk in hand) loses a minute at most; at least one
    block of lanes.  Records do not depend on it."""
    return max(LANES, min(SEARCH_CHUNK, SEARCH_CHUNK_WORK // max(cfg.n_iters, 1)))


def run_search(cfg: SearchConfig, path: str, *, shard: dict | None = None, force: bool = False,
               resume: bool | str = "auto", chunk: int | None = None, threads: int | None = None,
               progress: bool = True, command: str | None = None, post_workers: int | None = None) -> dict:
    """Run (or resume) a search into the result file `path`; returns ``summarize(path)`` plus the
    files exported by this invocation.  post_workers >= 2 post-processes the float survivors in that
    many processes (``post_pool``); the records are the same either way."""
    cfg.validate()
    check_output_dir(cfg.found_dir, what="--found-dir")        # before any work, not at the first export
    if os.path.realpath(cfg.found_dir) in {os.path.realpath(path + s) for s in ("", ".part")}:
        raise StoreError(f"--found-dir {cfg.found_dir} is the result file's own path; give another folder")
    parents = [load_parent(s) for s in expand_parents(cfg.parents)] if cfg.strategy in PARENT_POINTS else None
    if parents:
        sizes = {len(p.y) for p in parents}
        want = cfg.points + PARENT_POINTS[cfg.strategy]
        if sizes != {want}:
            raise ConfigError(f"{cfg.strategy} to {cfg.points} points needs parents with {want} points, "
                              f"got {sorted(sizes)}")
        seen: dict = {}
        for p in parents:       # one file's point named twice would start twice the candidates from it
            key = (os.path.realpath(p.source), _split_spec(p.spec)[1])
            if key in seen:
                raise ConfigError(f"--parents names one file's point twice: {seen[key]} and {p.spec}")
            seen[key] = p.spec
    chunk = chunk or default_search_chunk(cfg)
    c = max(1, min(chunk, cfg.budget))          # refused before a file is made: a chunk's candidates in memory
    check_fits(2 * c * (8 * 16 * (3 * cfg.points + P) + 4096), f"this search ({c} candidates per chunk)",
               "use a smaller --chunk (results do not depend on it)")
    check_fits(2 * chunk_bytes(2, 2, cfg.witness_starts) * max(1, post_workers or 1),
               f"the witness search of a survivor ({cfg.witness_starts} networks in memory"
               + (f", in each of {post_workers} processes)" if (post_workers or 1) > 1 else ")"),
               "use fewer witness_starts")
    check_not_input(path, [p.source for p in parents or ()], what="the output", beside=("", ".part"))
    config = run_config(cfg, parents)
    prefix = export_name(config, 0)[:-len("000000.json")]
    for f in glob.glob(os.path.join(glob.escape(cfg.found_dir), glob.escape(prefix) + "*.json")):
        if is_hdf5(f) or not_a_file(f):         # refused now, not when a certified candidate is exported
            raise StoreError(f"--found-dir {cfg.found_dir} holds {os.path.basename(f)}, a name this search "
                             f"exports to, and it is no dataset file it may replace; move it")
    cell_config = dict(config)       # the cell's identity never holds the shard (shards must merge)
    if shard is not None:
        config["shard"] = shard
    cell = f"N{cfg.points}"
    stats: dict = {}
    t0 = time.monotonic()
    try:
        writer = RunWriter.open(path, config, {cell: (cell_config, cfg.budget, P)}, command=command, force=force,
                                resume=resume, fields=search_fields(cfg.points))
    except RunComplete:             # this very search, finished: reuse it
        say(f"reusing finished results in {path}")
        return {**summarize(path), "exported_now": [], "seconds": time.monotonic() - t0}
    with writer as w:
        start, stop = w.next_index(cell), w.range(cell)[1]
        prog = Progress(w.range(cell)[1] - w.range(cell)[0], label="candidates", enabled=progress,
                        done=start - w.range(cell)[0])
        pool = post_pool(post_workers) if start < stop else None
        try:
            for a in range(start, stop, chunk):
                b = min(stop, a + chunk)
                fl = float_stage(cfg, np.arange(a, b, dtype=np.int64), parents, threads)
                w.append(cell, _records(cfg, cell_config, fl, parents, threads, stats, pool))
                prog.update(b - a)
        finally:
            prog.close()
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    out = summarize(path)
    out["exported_now"] = stats.get("files", [])
    out["seconds"] = time.monotonic() - t0
    return out


def verdict_counts(codes: np.ndarray) -> dict[str, int]:
    """Candidates per verdict name of a verdict-code column."""
    return {VERDICTS[k]: int((codes == k).sum()) for k in VERDICTS}


# A dataset lies "off a line" when its centred points' second singular value is at least this share of
# the first.  Data on a line have a flat direction at every critical point (docs/search.md, 'Why N >= 5',
# step 1), so a search that converges towards a line reaches lambda_min -> 0 from below without nearing
# a strict minimum; the summary (and analysis/search_study.py) report those off a line apart.
OFF_LINE = 0.05


def off_line(points: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """Per row of flattened 2-D data (x_00, x_01, x_10, ...): whether it lies off a line (OFF_LINE); a
    row with a non-finite number (a candidate that diverged) does not.  among: a mask of the rows to
    look at (the SVD runs on those alone); the others are False."""
    if among is not None:
        out = np.zeros(len(points), bool)
        out[among] = off_line(points[among])
        return out
    X = points.reshape(len(points), points.shape[1] // 2, 2)
    finite = np.isfinite(X).all(axis=(1, 2))
    X = np.where(finite[:, None, None], X, 0.0)
    sv = np.linalg.svd(X - X.mean(1, keepdims=True), compute_uv=False)
    return finite & (sv[:, 1] >= OFF_LINE * sv[:, 0]) & (sv[:, 0] > 0)


def summarize(paths) -> dict:
    """Counts of a search result file (or shards): attempts, float candidates, certified, strong, per
    verdict, the largest delta* and L - L_const among certified minima, and the certified examples best
    first (``rank_key``)."""
    res = open_results(paths)
    cfg_d = res.config
    cell = res.cells[0]
    rows = res.cell(cell, ["index", "verdict", "tier", "accuracy", "majority", "margin", "decimals", "min_eig",
                           "points", *QUALITY_FIELDS])
    v = rows["verdict"]
    cert = v == CERTIFIED
    nm = v == NOT_MINIMUM
    nm_off = off_line(rows["points"], among=nm)
    out = {"points": cfg_d["points"], "strategy": cfg_d["strategy"], "seed": cfg_d["seed"],
           "attempts": int(len(v)), "float_candidates": int(np.isin(v, FLOAT_PASSED).sum()),
           "certified": int(cert.sum()), "strong": int((cert & (rows["tier"] == STRONG)).sum()),
           "weak": int((cert & (rows["tier"] == WEAK)).sum()),
           "verdicts": verdict_counts(v), "best": None, "found": [],
           "closest_lambda": float(rows["min_eig"][nm].max()) if nm.any() else None,
           "closest_lambda_off_line": float(rows["min_eig"][nm_off].max()) if nm_off.any() else None,
           "keys": [], "patterns": [],
           "strong_delta": cfg_d.get("strong_delta", SearchConfig.strong_delta),
           "best_delta_star": float(rows["delta_star"][cert].max()) if cert.any() else None,
           "best_const_gap": float(rows["const_gap"][cert].max()) if cert.any() else None}
    if cert.any():
        idx = np.where(cert)[0]
        order = sorted(range(len(idx)), key=lambda i: rank_key(rows["delta_star"][idx[i]], rows["const_gap"][idx[i]],
                                                                 int(rows["index"][idx[i]])))
        found_dir = cfg_d.get("found_dir", "runs/search/found")
        out["found"] = [os.path.join(found_dir, export_name(cfg_d, int(rows["index"][i]))) for i in idx[order]]
        for f in out["found"]:
            form = _form_of(f)
            if form:
                out["keys"].append(form[0])
                out["patterns"].append(form[1])
        b = idx[order[0]]
        out["best"] = {"file": out["found"][0], "index": int(rows["index"][b]), "tier": TIERS[int(rows["tier"][b])],
                       "accuracy": float(rows["accuracy"][b]), "majority": float(rows["majority"][b]),
                       "margin": float(rows["margin"][b]), "decimals": int(rows["decimals"][b]),
                       **{k: float(rows[k][b]) for k in QUALITY_FIELDS}}
    return out


def rank_key(delta_star: float, const_gap: float, tie) -> tuple:
    """Order of certified minima, best first: larger delta*, then larger L - L_const, then `tie` (an index or
    a file name).  Properties of the minimum alone: the witness (from training) never reorders them."""
    return (-float(delta_star), -float(const_gap), tie)


def _form_of(path: str):
    """(canonical key, pattern) of an exported dataset, or None if the file is unreadable."""
    try:
        s = json.loads(Path(path).read_text())["search"]
        return s["canonical_key"], s["pattern"]
    except (OSError, ValueError, KeyError):
        return None


STUDY_FOUND = "found"          # the minimality study's folder of certified datasets, inside its out_dir


def study_writes(out_dir: str, path: str) -> bool:
    """Whether `path` is where the minimality study in out_dir writes: its found/ datasets, or a result
    file's name (N{N}-{strategy}.h5 and the writer's side files) in out_dir."""
    study, target = os.path.realpath(out_dir), os.path.realpath(path)
    found = os.path.realpath(os.path.join(out_dir, STUDY_FOUND))
    return os.path.commonpath([target, found]) == found or (
        os.path.dirname(target) == study and target.endswith((".h5", *WRITER_NAMES)))


def minimality(points: list[int], budget: int, seed: int = 0, out_dir: str = "runs/minimality", *,
               strategies=("joint", "delete", "refine"), paper_parent: bool = False, max_parents: int = 16,
               force: bool = False, threads: int | None = None, progress: bool = True, echo=None,
               overrides: dict | None = None) -> list[dict]:
    """The minimality study: for N from the largest to the smallest, a random-start search (joint), a
    deletion search from the best certified (N+1)-point datasets found so far (and, with paper_parent,
    from the paper's paper10/W_hat at N = 9) and, if asked, a refine search from the best certified
    N-point ones; strategies run in that order.  One result file per (N, strategy) in out_dir, each
    resumable.  Returns one table row per N."""
    echo = echo or (lambda s: None)
    if not points or min(points) < 4 or max(points) > 64:
        bad = sorted(p for p in points if not 4 <= p <= 64)
        shown = ", ".join(map(str, bad[:6])) + (f", ... ({len(bad)} values)" if len(bad) > 6 else "")
        raise ConfigError(f"point counts must lie in 4-64 (fewer than 4 points cannot hold a strict finite "
                          f"minimum), got {shown or 'none'}")
    rows = []
    found_by_n: dict[int, list[str]] = {}
    for N in sorted(points, reverse=True):
        row = {"points": N, "attempts": 0, "float_candidates": 0, "certified": 0, "strong": 0, "weak": 0,
               "best": None, "by_strategy": {}, "closest_lambda": None, "closest_lambda_off_line": None,
               "keys": set(), "patterns": set()}
        for strat in (s for s in STRATEGY_NAMES if s in strategies):
            parents: tuple = ()
            if strat in PARENT_POINTS:
                cands = _rank_files(found_by_n.get(N + PARENT_POINTS[strat], []))
                if paper_parent and N == 9 and strat == "delete":
                    cands.append(PAPER_PARENT)
                if not cands:
                    continue
                parents = tuple(cands[:max_parents])
            cfg = SearchConfig(points=N, budget=budget, seed=seed, strategy=strat, parents=parents,
                               found_dir=os.path.join(out_dir, STUDY_FOUND),
                               **{k: v for k, v in (overrides or {}).items()
                                  if reads(strat, k)}).validate()
            path = os.path.join(out_dir, f"N{N}-{strat}.h5")
            if os.path.exists(path) and not force:
                stored = open_results(path).config
                differ = [k for k, v in cfg.to_dict().items() if stored.get(k) != v]
                if differ:
                    raise ConfigError(f"{path} holds a different study ({', '.join(differ)}); use --force "
                                      f"or another --out-dir")
                s = summarize(path)
            else:
                s = run_search(cfg, path, force=force, threads=threads, progress=progress)
            echo(f"N={N} {strat}: {s['attempts']} attempts, {s['float_candidates']} float candidates, "
                 f"{s['certified']} certified ({s['strong']} strong)")
            row["by_strategy"][strat] = s
            for k in ("attempts", "float_candidates", "certified", "strong", "weak"):
                row[k] += s[k]
            row["keys"].update(s["keys"])
            row["patterns"].update(s["patterns"])
            for k in ("closest_lambda", "closest_lambda_off_line"):
                if s.get(k) is not None:
                    row[k] = max(s[k], -np.inf if row[k] is None else row[k])
            found_by_n.setdefault(N, []).extend(s["found"])
            if s["best"] and (row["best"] is None or _better(s["best"], row["best"])):
                row["best"] = s["best"]
        found_by_n[N] = _rank_files(found_by_n.get(N, []))
        row["distinct"], row["patterns"] = len(row.pop("keys")), len(row["patterns"])
        bests = [s["best"] for s in row["by_strategy"].values() if s["best"]]
        row["best_delta_star"] = max((b["delta_star"] for b in bests), default=None)
        row["best_const_gap"] = max((s["best_const_gap"] for s in row["by_strategy"].values()
                                     if s["best_const_gap"] is not None), default=None)
        row["strong_delta"] = (overrides or {}).get("strong_delta", SearchConfig.strong_delta)
        rows.append(row)
    return sorted(rows, key=lambda r: r["points"])


def _better(a: dict, b: dict) -> bool:
    return (rank_key(a["delta_star"], a["const_gap"], os.path.basename(a["file"]))
            < rank_key(b["delta_star"], b["const_gap"], os.path.basename(b["file"])))


def _rank_files(files: list[str]) -> list[str]:
    """Certified files in ``rank_key`` order (the order in which the delete strategy takes parents)."""
    def key(f):
        try:
            s = json.loads(Path(f).read_text())["search"]
            return rank_key(s["delta_star"], s["const_gap"], os.path.basename(f))
        except (OSError, ValueError, KeyError):
            return rank_key(-np.inf, -np.inf, os.path.basename(f))
    return sorted(dict.fromkeys(files), key=key)


def format_table(rows: list[dict]) -> str:
    """N | attempts | float candidates | certified | strong | best delta* | best L - L_const | best example."""
    head = (f"{'N':>3} | {'attempts':>8} | {'float cand.':>11} | {'certified':>9} | {'strong':>6} | "
            f"{'best delta*':>11} | {'best L-Lconst':>13} | best example (by delta*)")
    lines = [head, "-" * len(head)]

    def num(v):
        return "-" if v is None else f"{v:.4f}"
    for r in rows:
        b = r["best"]
        best = "-" if not b else (f"{os.path.basename(b['file'])} ({b['tier']}, acc {b['accuracy']:.4g} vs majority "
                                  f"{b['majority']:.4g}, delta* {b['delta_star']:.4f}, AUC {b['auc']:.3f}, "
                                  f"L-Lconst {b['const_gap']:.4f}, margin >= {b['margin']:.3g}, "
                                  f"{b['decimals']} dec.)")
        lines.append(f"{r['points']:>3} | {r['attempts']:>8} | {r['float_candidates']:>11} | "
                     f"{r['certified']:>9} | {r['strong']:>6} | {num(r.get('best_delta_star')):>11} | "
                     f"{num(r.get('best_const_gap')):>13} | {best}")
    sd = rows[0].get("strong_delta", SearchConfig.strong_delta) if rows else SearchConfig.strong_delta
    lines.append(f"strong: decision margin delta* >= {sd:g} (accuracy below the majority rate even when every "
                 f"output within {sd:g} of 1/2 counts as correct); L-Lconst: loss minus the best constant "
                 f"predictor's (> 0: worse than a constant)")
    notes = []
    for r in rows:
        if "distinct" not in r and "keys" in r:
            r = {**r, "distinct": len(set(r["keys"])), "patterns": len(set(r["patterns"]))}
        if r["certified"]:
            notes.append(f"N={r['points']}: {r['distinct']} distinct certified datasets under the symmetries "
                         f"(canonical form rounded to 1 decimal), {r['patterns']} sign/label patterns")
        elif not r["certified"] and r.get("closest_lambda") is not None:
            off = r.get("closest_lambda_off_line")
            notes.append(f"N={r['points']}: no minimum found; largest smallest Hessian eigenvalue among converged "
                         f"non-degenerate critical points {r['closest_lambda']:.3g} "
                         + (f"({off:.3g} among those whose data lie off a line)" if off is not None
                            else "(every one with its data near a line)"))
        else:
            notes.append(f"N={r['points']}: no minimum found; no non-degenerate critical point reached")
    return "\n".join(lines + notes)
