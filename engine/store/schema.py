"""The result-file format: schema constants and fields, config canonicalisation and comparison, shard
arithmetic.  docs/store.md documents the schema; the reader and writer build on these definitions."""
from __future__ import annotations

import hashlib
import json

import numpy as np

from badminima.engine.core.outcomes import FINAL_CODES, NAMES

FORMAT = "badminima-results"
SCHEMA_VERSION = 2

#: Per-network datasets of a cell: name -> (dtype, 2-D with P columns?, description).
FIELDS: dict[str, tuple[np.dtype, bool, str]] = {
    "index": (np.dtype(np.int64), False, "network index within the cell (seeds derive from it)"),
    "outcome": (np.dtype(np.int8), False, "outcome code; code->name map in attribute 'names'"),
    "loss": (np.dtype(np.float64), False, "final mean training loss"),
    "accuracy": (np.dtype(np.float64), False, "final training accuracy"),
    "grad_norm": (np.dtype(np.float64), False, "final gradient norm ||grad L||"),
    "steps": (np.dtype(np.int64), False, "optimiser steps taken"),
    "solved_at": (np.dtype(np.int64), False, "optimiser steps before the first stop test with zero training "
                                              "error (regression: loss <= solve_tol); -1 if none"),
    "optimizer_outcome": (np.dtype(np.int8), False, "the optimizer's own verdict at the end of its budget "
                                                    "('outcome' adds the finisher's for out_of_steps)"),
    "finish_iters": (np.dtype(np.int32), False, "finisher iterations (-1: not run)"),
    "finish_loss": (np.dtype(np.float64), False, "mean loss where the finisher stopped (NaN: not run)"),
    "finish_min_eig": (np.dtype(np.float64), False, "smallest Hessian eigenvalue of the critical point "
                                                    "Newton's method reaches from finish_weights (else NaN)"),
    "min_eig": (np.dtype(np.float64), False, "smallest Hessian eigenvalue of the critical point Newton's "
                                             "method reaches from the final weights (NaN where not computed)"),
    "weights": (np.dtype(np.float64), True, "final parameters theta: per hidden unit v_j, w_j0..w_j(d-1), b_j; then c"),
    "finish_weights": (np.dtype(np.float64), True, "parameters where the finisher stopped (NaN: not run)"),
    "init_weights": (np.dtype(np.float64), True, "initial parameters theta (optional)"),
}
OPTIONAL_FIELDS = ("init_weights",)
TRAINING_FIELDS = ("solved_at", "optimizer_outcome", "finish_iters", "finish_loss", "finish_min_eig",
                   "finish_weights")      # written by training runs (not by searches, which reuse the base fields)
BASE_FIELDS = tuple(k for k in FIELDS if k not in OPTIONAL_FIELDS + TRAINING_FIELDS)


def check_extra_fields(spec) -> dict:
    """Validate caller-defined per-row fields {name: (dtype, columns, description)} (columns 0: one value
    per row, k >= 1: k values per row) -> {name: (np.dtype, int, str)}.  They are stored after the base
    fields and described in the root attribute "extra_fields", so the file stays self-describing."""
    out = {}
    for name, s in (spec or {}).items():
        try:
            dtype, cols, desc = s
            dtype, cols, desc = np.dtype(dtype), int(cols), str(desc)
        except (TypeError, ValueError):
            raise StoreError(f"extra field {name!r}: expected (dtype, columns, description)") from None
        if (not isinstance(name, str) or not name or "/" in name or name.startswith(("_", "."))
                or name in FIELDS or cols < 0 or dtype.kind not in "biuf"):
            raise StoreError(f"bad extra field {name!r} (a new name, numeric dtype, columns >= 0)")
        out[name] = (dtype, cols, desc)
    return out


def field_spec(fld: str, n_params: int, extra: dict | None = None):
    """(dtype, per-row shape, description) of a base or extra field in a cell with n_params parameters."""
    if extra and fld in extra:
        dtype, cols, desc = extra[fld]
        return dtype, ((cols,) if cols else ()), desc
    dtype, two_d, desc = FIELDS[fld]
    return dtype, ((n_params,) if two_d else ()), desc

#: Root attributes that describe *how/where/when* a file was produced rather than *what* it holds.
#: Two files with equal non-provenance attributes and equal datasets hold the same results.
PROVENANCE_ATTRS = frozenset({
    "created", "finished", "host", "command", "run_id", "merged_from",
    "badminima_version", "numba_version", "numpy_version", "h5py_version", "hdf5_version",
})

PROGRESS = "_progress"  # in-progress files only: int64 [committed rows, count code 0, ..., count code 6]
COUNT_CODES = tuple(FINAL_CODES)


OUTCOME_FIELDS = ("outcome", "optimizer_outcome")     # the fields that hold outcome codes (outcome_codes)


def outcome_codes(codes: np.ndarray, what: str, first: int = 0, n_codes: int = len(COUNT_CODES),
                  kind: str = "outcome") -> np.ndarray:
    """An outcome-code column (rows first, first + 1, ...) as int64; StoreError naming `what` (a file
    and field, or a chunk) where a code names no outcome (or no other `kind` of n_codes codes)."""
    codes = np.asarray(codes).astype(np.int64)
    bad = np.flatnonzero((codes < 0) | (codes >= n_codes))
    if bad.size:
        raise StoreError(f"{what} of row {first + bad[0]} is {codes[bad[0]]}, which is no {kind} code "
                         f"(0-{n_codes - 1}): the results are damaged")
    return codes


def count_outcomes(codes: np.ndarray, what: str, first: int = 0) -> np.ndarray:
    """Networks per outcome code (int64, one per COUNT_CODES) of an outcome-code column (outcome_codes)."""
    return np.bincount(outcome_codes(codes, what, first), minlength=len(COUNT_CODES))


def counts_dict(counts: np.ndarray) -> dict[str, int]:
    return {NAMES[c]: int(counts[i]) for i, c in enumerate(COUNT_CODES)}


class StoreError(Exception):
    """A result-file problem, with a one-line message meant for the user."""


class NoResultFile(StoreError):
    """A name given as a result file that names none (missing, empty, a directory, a pipe, a glob that
    matches nothing): bad input, where StoreError itself is a failure met in a file's contents."""


class NotMergeable(StoreError):
    """Result files that cannot be merged into one run (one unfinished, configurations that differ,
    networks overlapping or missing): bad input, like NoResultFile."""


def short_error(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), for one-line StoreErrors."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:300]


# ----------------------------------------------------------------------------------------------
# configs: canonical text and comparison

def config_tag(config: dict) -> str:
    """8 hex digits identifying a config, for file names (a rerun finds its file, another config gets
    another name)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]


def canonical_json(obj) -> str:
    """The canonical JSON text of a config (sorted keys, no spaces); StoreError if not JSON-able."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise StoreError(f"config is not JSON-serialisable: {e}") from None


def normalize(obj):
    """obj as it comes back from JSON (tuples -> lists, numpy scalars rejected early)."""
    return json.loads(canonical_json(obj))


def diff_keys(a, b, prefix: str = "") -> list[str]:
    """Dotted keys at which two JSON-like values differ (missing keys count as differing)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in a or k not in b:
                out.append(key)
            else:
                out.extend(diff_keys(a[k], b[k], key))
        return out
    return [] if canonical_json(a) == canonical_json(b) else [prefix or "(value)"]


def describe_diff(keys: list[str], limit: int = 4) -> str:
    """'hidden, cells.main.n_total' from diff_keys of two identity() dicts: the run-level keys first, a
    cell's config key that differs at the top level too named once (a one-cell run repeats its config
    in the cell), at most `limit` keys, then how many more (a message stays one readable line)."""
    top = {k for k in keys if not k.startswith("<")}
    keep = [k for k in keys if not (k.startswith("<cells>.") and ".config." in k
                                    and k.split(".config.", 1)[1] in top)]
    names = sorted((k.replace("<cells>", "cells").replace("<fields>", "fields") for k in keep),
                   key=lambda k: (k.startswith(("cells.", "fields")), ))
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def _same_run(config):
    """A config as the run it describes: a number as its value (lr=1 and lr=1.0 are one run: an integral
    float below 2^53 becomes the int it equals) and a dataset by its fingerprint alone ("d.csv",
    "./d.csv" and the absolute path of one file are one dataset)."""
    if isinstance(config, dict):
        drop = "dataset" if "dataset_fingerprint" in config else None
        return {k: _same_run(v) for k, v in config.items() if k != drop}
    if isinstance(config, (list, tuple)):
        return [_same_run(v) for v in config]
    if isinstance(config, float) and config.is_integer() and abs(config) < 2 ** 53:
        return int(config)
    return config


def identity(config_wo_shard: dict, cells: dict, fields) -> dict:
    """What must agree between shards, or between a run and its resumption: config, cells, fields."""
    ident = _same_run(config_wo_shard)
    ident["<cells>"] = {n: {"config": _same_run(c), "n_total": t, "n_params": p} for n, (c, t, p) in cells.items()}
    ident["<fields>"] = list(fields)
    return ident


# ----------------------------------------------------------------------------------------------
# shards

def strip_shard(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "shard"}


def shard_range(n_total: int, index: int, count: int) -> tuple[int, int]:
    """The contiguous index range [start, stop) of shard `index` (0-based) of `count` in a cell of n_total."""
    return n_total * index // count, n_total * (index + 1) // count


def parse_shard(text: str) -> dict:
    """'I/N' (0 <= I < N) -> {"index": I, "count": N}, the value of config["shard"]."""
    from badminima.engine.train.config import decimal_int
    shown = str(text) if len(str(text)) <= 40 else str(text)[:40] + "..."
    try:
        if len(str(text)) > 41:                 # two 64-bit numbers and the slash (decimal_int: ASCII digits)
            raise ValueError
        i, n = (decimal_int(s) for s in str(text).split("/"))
    except ValueError:
        raise StoreError(f"bad shard {shown!r}: expected I/N with 0 <= I < N") from None
    if n >= 2 ** 63:
        raise StoreError(f"bad shard {shown!r}: N is out of range (at most 2^63 - 1)")
    if not 0 <= i < n:
        raise StoreError(f"bad shard {shown!r}: expected I/N with 0 <= I < N")
    return check_shard({"index": i, "count": n})


def check_shard(shard) -> dict | None:
    if shard is None:
        return None
    if (not isinstance(shard, dict) or set(shard) != {"index", "count"}
            or not all(isinstance(shard[k], int) and not isinstance(shard[k], bool) for k in shard)
            or not 0 <= shard["index"] < shard["count"]):
        raise StoreError(f"bad shard {shard!r}: expected {{'index': I, 'count': N}} with 0 <= I < N")
    return {"index": shard["index"], "count": shard["count"]}
