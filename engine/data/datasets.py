"""Load and validate datasets (built-in JSON files in the package's data/, or user .json / .csv files).

Every numeric cell keeps its exact text (x_text, y_text, theta_text) beside its float64 value, so
certification code can redo computations in exact rational arithmetic via parse_exact.
See data/README.md for the file formats.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from badminima.engine.core.names import ACTIVATIONS

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
KINDS = ("classification", "regression")
SUPPORTED_D = (1, 2)
MAX_EXPONENT = 1000  # bounds the size of Fraction('1e...'); float64 spans about 1e-324..1e308
MAX_DIGITS = 4000    # characters of one number (Python refuses to read integers of more than 4300 digits)

_EXACT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+/\d+", re.ASCII)   # ASCII digits only
_NAN_RE = re.compile(r"[+-]?nan", re.IGNORECASE)
_INF_RE = re.compile(r"[+-]?(inf|infinity)", re.IGNORECASE)


class DataError(ValueError):
    """A dataset file or value is unusable; the message is one line naming the problem."""


@dataclass(frozen=True, eq=False)
class WeightPoint:
    """A named weight vector stored with a dataset (e.g. the paper's W_hat), in engine/core/layout.py order."""

    name: str
    hidden: int
    activation: str
    theta: np.ndarray
    theta_text: tuple[str, ...]
    note: str = ""
    claims: dict = field(default_factory=dict)
    printed: dict = field(default_factory=dict)
    witness: str = ""       # name of a point of lower loss (proves "not global" when certifying this one)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated dataset: float64 arrays for computing, exact texts for certifying.

    x and y are read-only; `fingerprint` identifies the data (x, y, kind) in result files.
    """

    name: str
    kind: str
    x: np.ndarray
    y: np.ndarray
    x_text: tuple[tuple[str, ...], ...]
    y_text: tuple[str, ...]
    points: dict
    source: str
    fingerprint: str
    description: str = ""
    claims: dict = field(default_factory=dict)
    witness: str = ""       # the file's default witness point for certification (see certify_io)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def d(self) -> int:
        return self.x.shape[1]


# ---------------------------------------------------------------- exact numbers

def parse_exact(s: str) -> Fraction:
    """Exact value of a decimal ('4.2', '-3.', '1e-3') or rational ('-13/6') string.

    Scientific notation is accepted because it is still an exact decimal ('1e-3' -> 1/1000).
    Anything else (spaces inside, '4 + 1/3', 'nan', 'inf', a zero denominator, an exponent beyond
    +-MAX_EXPONENT, more than MAX_DIGITS characters) is a DataError.
    """
    if not isinstance(s, str):
        raise DataError(f"expected a number as a string, got {type(s).__name__} {s!r}")
    t = s.strip()
    if len(t) > MAX_DIGITS:
        raise DataError(f"a number of {len(t)} characters (at most {MAX_DIGITS}): {t[:20]}...")
    m = _EXACT_RE.fullmatch(t)
    if not m:
        raise DataError(f"not an exact decimal or p/q rational: {s!r}")
    if m.group(2) and abs(int(m.group(2)[1:])) > MAX_EXPONENT:
        raise DataError(f"exponent out of range (|e| > {MAX_EXPONENT}): {s!r}")
    try:
        return Fraction(t)
    except ZeroDivisionError:
        raise DataError(f"zero denominator in {s!r}") from None


def _cell(value, where: str) -> tuple[float, str]:
    """One numeric cell -> (float64 value, exact text); `where` locates it in error messages."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where} is not a number: {value!r}")
    text = value.strip() if isinstance(value, str) else repr(value)
    if _NAN_RE.fullmatch(text) or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where} has a NaN")
    if _INF_RE.fullmatch(text) or (isinstance(value, float) and math.isinf(value)):
        raise DataError(f"{where} is infinite ({text})")
    try:
        exact = parse_exact(text)
    except DataError as e:
        if _EXACT_RE.fullmatch(text) or len(text) > MAX_DIGITS:    # a number, but too long or its exponent too large
            raise DataError(f"{where}: {e}") from None
        raise DataError(f"{where} is not numeric: {_short(text)!r}") from None
    try:
        return float(exact), text
    except OverflowError:
        raise DataError(f"{where} overflows float64 ({_short(text)})") from None


def _short(text: str, n: int = 60) -> str:
    """A value for an error message: at most n characters."""
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


class _JsonNumber(str):
    """A JSON number literal kept as its exact source text."""


# ---------------------------------------------------------------- file readers

READ_FACTOR = 30      # memory while parsing a data file, per byte of the file (measured: ~20 for a CSV)


def _read_text(path: Path) -> str:
    from badminima.engine.train.limits import ResourceError, check_fits
    try:
        check_fits(READ_FACTOR * path.stat().st_size, f"{path}: reading this {path.stat().st_size / 2 ** 20:.0f} MiB "
                   f"file", "the points must fit in memory many times over")
    except ResourceError as e:
        raise DataError(str(e)) from None
    except OSError:
        pass                            # reported by the read below
    try:
        return path.read_text(encoding="utf-8-sig")    # a byte-order mark (spreadsheets write one) is dropped
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None


def _read_json(path: Path) -> dict:
    """Parse a dataset JSON file, keeping number literals as exact text."""
    try:
        obj = json.loads(_read_text(path), parse_float=_JsonNumber, parse_int=_JsonNumber,
                         parse_constant=_JsonNumber)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to be a dataset") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: top level must be a JSON object with keys 'x' and 'y'")
    for key in ("x", "y"):
        if key not in obj:
            raise DataError(f"{path}: missing required key '{key}'")
    return obj


def _csv_columns(header: list[str], path: Path) -> tuple[list[int], int]:
    """Column indices of x0..x{d-1} and y in a CSV header."""
    names = [h.strip() for h in header]
    for name in names:
        if name != "y" and not re.fullmatch(r"x[0-9]+", name):
            raise DataError(f"{path}: unexpected column {name!r} (columns must be x0..x{{d-1}} and y)")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate column names in header {names}")
    if "y" not in names:
        raise DataError(f"{path}: header has no 'y' column")
    d = len(names) - 1
    if d not in SUPPORTED_D and d > 0:
        raise DataError(f"{path}: input dimension d={d} is not supported (only d in {SUPPORTED_D})")
    where = {name: i for i, name in enumerate(names)}
    missing = [f"x{k}" for k in range(d) if f"x{k}" not in where]
    if d == 0 or missing:
        raise DataError(f"{path}: header lacks column(s) {', '.join(missing) or 'x0'}")
    return [where[f"x{k}"] for k in range(d)], where["y"]


def _read_csv(path: Path) -> dict:
    """Parse a CSV file (header x0..x{d-1}, y in any order; '#' comment lines) into raw x / y lists."""
    lines = [(no, ln) for no, ln in enumerate(_read_text(path).splitlines(), 1)
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise DataError(f"{path}: empty (no header row)")
    try:
        rows = list(csv.reader(io.StringIO("\n".join(ln for _, ln in lines))))
    except csv.Error as exc:            # e.g. a field longer than the csv module's limit
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    xcols, ycol = _csv_columns(rows[0], path)
    x, y, names = [], [], []
    for i, ((lineno, _), row) in enumerate(zip(lines[1:], rows[1:]), 1):
        names.append(f"row {i} (line {lineno})")
        if len(row) != len(rows[0]):
            raise DataError(f"{path}: {names[-1]} has {len(row)} fields, header has {len(rows[0])}")
        x.append([row[k] for k in xcols])
        y.append(row[ycol])
    return {"x": x, "y": y, "_row_names": names}


# ---------------------------------------------------------------- validation

def _parse_x(raw, label: str, rows: list[str]) -> tuple[np.ndarray, tuple[tuple[str, ...], ...]]:
    """Validate the x rows (non-empty, rectangular, d in SUPPORTED_D, finite numbers)."""
    if not isinstance(raw, list):
        raise DataError(f"{label}: x must be a list of rows")
    if not raw:
        raise DataError(f"{label}: empty, no data points")
    for i, row in enumerate(raw):
        if not isinstance(row, list):
            raise DataError(f"{label}: x {rows[i]} is not a list of coordinates")
    d = len(raw[0])
    for i, row in enumerate(raw):
        if len(row) != d:
            raise DataError(f"{label}: ragged x, {rows[i]} has {len(row)} coordinates but {rows[0]} has {d}")
    if d not in SUPPORTED_D:
        raise DataError(f"{label}: input dimension d={d} is not supported (only d in {SUPPORTED_D})")
    cells = [[_cell(v, f"{label}: {rows[i]} x{k}") for k, v in enumerate(row)]
             for i, row in enumerate(raw)]
    x = np.ascontiguousarray([[c[0] for c in row] for row in cells], dtype=np.float64)
    return x, tuple(tuple(c[1] for c in row) for row in cells)


def _parse_y(raw, n: int, label: str, rows: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Validate the targets (flat list of finite numbers, one per x row)."""
    if not isinstance(raw, list):
        raise DataError(f"{label}: y must be a flat list of numbers")
    if len(raw) != n:
        raise DataError(f"{label}: x has {n} rows but y has {len(raw)} entries")
    cells = [_cell(v, f"{label}: {rows[i]} y") for i, v in enumerate(raw)]
    return np.array([c[0] for c in cells], dtype=np.float64), tuple(c[1] for c in cells)


def _resolve_kind(kind, file_kind, d: int, label: str) -> str:
    """Explicit kind, else the file's, else the paper's convention: 2-D classification, 1-D regression.

    Never guessed from the labels: a 2-D file with a stray label 2 must fail, not become regression.
    """
    chosen = kind if kind is not None else file_kind
    if chosen is None:
        return "classification" if d == 2 else "regression"
    if chosen not in KINDS:
        raise DataError(f"{label}: kind must be one of {KINDS}, got {chosen!r}")
    return chosen


def _check_labels(kind: str, y: np.ndarray, label: str) -> None:
    """Classification needs 0/1 labels and both classes; every kind needs >= 2 points."""
    if len(y) < 2:
        raise DataError(f"{label}: at least 2 points are needed, found {len(y)}")
    if kind != "classification":
        return
    bad = y[(y != 0) & (y != 1)]
    if bad.size:
        raise DataError(f"{label}: labels must be 0 or 1 for classification, found {bad[0]:g}")
    if np.all(y == y[0]):
        raise DataError(f"{label}: only one class present (all labels are {y[0]:g})")


def fingerprint(x: np.ndarray, y: np.ndarray, kind: str) -> str:
    """sha256 hex of kind, shape and the little-endian float64 bytes of x and y (-0.0 folded to 0.0)."""
    h = hashlib.sha256(f"badminima-dataset-v1|{kind}|{x.shape[0]}|{x.shape[1]}|".encode())
    h.update((np.asarray(x, dtype="<f8") + 0.0).tobytes())
    h.update((np.asarray(y, dtype="<f8") + 0.0).tobytes())
    return h.hexdigest()


def _parse_point(name: str, raw, d: int, label: str) -> WeightPoint:
    """Validate one named weight point: hidden, activation and a theta of h*(d+2)+1 entries."""
    where = f"{label}: point {name!r}"
    if not isinstance(raw, dict):
        raise DataError(f"{where} must be an object")
    for key in ("hidden", "activation", "theta"):
        if key not in raw:
            raise DataError(f"{where} lacks '{key}'")
    if not (isinstance(raw["hidden"], _JsonNumber) and re.fullmatch(r"[1-9][0-9]{0,8}", raw["hidden"])):
        raise DataError(f"{where}: hidden must be a positive integer, got {_plain(raw['hidden'])!r}")
    hidden = int(raw["hidden"])
    if raw["activation"] not in ACTIVATIONS:
        raise DataError(f"{where}: activation must be one of {tuple(ACTIVATIONS)}, got {raw['activation']!r}")
    theta_raw = raw["theta"]
    if not isinstance(theta_raw, list) or len(theta_raw) != hidden * (d + 2) + 1:
        n = len(theta_raw) if isinstance(theta_raw, list) else "no"
        raise DataError(f"{where}: theta needs h*(d+2)+1 = {hidden * (d + 2) + 1} entries, got {n}")
    cells = [_cell(v, f"{where} theta[{i}]") for i, v in enumerate(theta_raw)]
    theta = np.array([c[0] for c in cells], dtype=np.float64)
    theta.setflags(write=False)
    return WeightPoint(name=name, hidden=hidden, activation=raw["activation"], theta=theta,
                       theta_text=tuple(c[1] for c in cells), note=str(raw.get("note", "")),
                       claims=_plain(raw.get("claims", {})), printed=_plain(raw.get("printed", {})),
                       witness=_witness_name(raw.get("witness"), where))


def _witness_name(value, where: str) -> str:
    """A 'witness' key names a point ('' when absent)."""
    if value is None:
        return ""
    if not isinstance(value, str) or isinstance(value, _JsonNumber):
        raise DataError(f"{where}: 'witness' must name a point, got {_plain(value)!r}")
    return value


def _plain(obj):
    """Turn _JsonNumber leaves back into ordinary strings (claims / printed are kept as text)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    return str(obj) if isinstance(obj, _JsonNumber) else obj


# ---------------------------------------------------------------- public API

def _length(obj) -> int:
    return len(obj) if isinstance(obj, list) else 0


def builtin_names() -> list[str]:
    """Names of the built-in datasets (the .json files in the package's data/ directory)."""
    return sorted(p.stem for p in DATA_DIR.glob("*.json"))


def locate(spec) -> Path:
    """The file a dataset spec names: a built-in name or a path to a .json / .csv file (DataError if none)."""
    if not isinstance(spec, (str, os.PathLike)):
        raise DataError(f"a dataset is a built-in name ({', '.join(builtin_names())}) or a .json/.csv file "
                        f"path, got {type(spec).__name__} {spec!r}")
    spec = os.fspath(spec)
    try:
        return _locate_name(spec)
    except DataError:
        raise
    except (OSError, ValueError) as e:        # a NUL in the name, a name too long for the file system
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise DataError(f"{_short(spec)!r}: not a usable file name ({reason})") from None


def _locate_name(spec: str) -> Path:
    if not spec.strip():
        raise DataError(f"the dataset name is empty: give a built-in name ({', '.join(builtin_names())}) "
                        f"or a .json/.csv file")
    if spec in builtin_names():
        return DATA_DIR / f"{spec}.json"
    path = Path(spec)
    if path.is_dir():
        raise DataError(f"{spec}: is a directory, not a data file (.json or .csv)")
    if path.suffix.lower() not in (".json", ".csv"):
        if not path.exists():
            raise DataError(f"no built-in dataset or file {spec!r} (built-ins: {', '.join(builtin_names())})")
        raise DataError(f"{spec}: unsupported file type (use .json or .csv)")
    if not path.is_file():
        raise DataError(f"{spec}: file not found")
    return path


def load_dataset(spec: str, kind: str | None = None) -> Dataset:
    """Load and validate a dataset from a built-in name or a .json / .csv path; raise DataError if unusable."""
    path = locate(spec)
    label = str(spec) if path.parent != DATA_DIR else f"data/{path.name}"
    raw = _read_json(path) if path.suffix.lower() == ".json" else _read_csv(path)
    rows = raw.get("_row_names") or [f"row {i}" for i in range(1, _length(raw["x"]) + 1)]
    x, x_text = _parse_x(raw["x"], label, rows)
    y, y_text = _parse_y(raw["y"], len(x_text), label, rows)
    chosen = _resolve_kind(kind, _plain(raw.get("kind")), x.shape[1], label)
    _check_labels(chosen, y, label)
    points_raw = raw.get("points") or {}
    if not isinstance(points_raw, dict):
        raise DataError(f"{label}: 'points' must be an object mapping names to weight points")
    points = {name: _parse_point(name, p, x.shape[1], label) for name, p in points_raw.items()}
    witness = _witness_name(raw.get("witness"), label)
    for where, named, own in [(label, witness, None)] + [(f"{label}: point {n!r}", p.witness, n)
                                                          for n, p in points.items()]:
        if named and named not in points:
            raise DataError(f"{where}: 'witness' names no point of the file: {named!r} "
                            f"(points: {', '.join(points) or 'none'})")
        if named and named == own:
            raise DataError(f"{where}: 'witness' names the point itself (a witness has lower loss)")
    x.setflags(write=False)
    y.setflags(write=False)
    return Dataset(name=str(raw.get("name") or path.stem), kind=chosen, x=x, y=y, x_text=x_text, y_text=y_text,
                   points=points, source=str(path), fingerprint=fingerprint(x, y, chosen),
                   description=str(raw.get("description", "")), claims=_plain(raw.get("claims", {})),
                   witness=witness)


def load_point(dataset: Dataset, name: str) -> WeightPoint:
    """The named weight point of a dataset; DataError listing the available names if absent."""
    try:
        return dataset.points[name]
    except KeyError:
        have = ", ".join(sorted(dataset.points)) or "none"
        raise DataError(f"dataset {dataset.name!r} has no weight point {name!r} (available: {have})") from None
