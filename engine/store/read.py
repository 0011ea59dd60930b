"""Reading badminima result files: metadata with validation, the read API (shards joined) and `show`.

Pure h5py + NumPy.  The schema is in schema.py (documented in docs/store.md), the writer in write.py.

    res = open_results(["runs/a.shard*.h5"])     # one file, several files, globs; .part files too
    res.config, res.cells                         # config without the "shard" key; cell names
    res.cell("main")                              # dict of NumPy arrays sorted by network index
    res.counts("main")                            # {"solved": 812, "local_minimum": 3, ...}
"""
from __future__ import annotations

import errno
import glob as _glob
import json
import os
import time
from dataclasses import dataclass, field

import h5py
import numpy as np

from badminima.engine.core.say import name_some, say
from badminima.engine.core.outcomes import NAMES
from badminima.engine.store.schema import (BASE_FIELDS, COUNT_CODES, FORMAT, OUTCOME_FIELDS, PROGRESS, SCHEMA_VERSION,
                                           NoResultFile, NotMergeable, StoreError, check_extra_fields, count_outcomes, counts_dict, describe_diff, diff_keys,
                                           field_spec, identity, outcome_codes, short_error, strip_shard)

#: HDF5's per-dataset chunk cache (8 MiB by default since HDF5 2.0) is off for whole-file reads and
#: copies: they touch every chunk once, in order, and a cache per open dataset would grow the memory
#: footprint with the number of datasets open.
RDCC_NBYTES = 0


#: How long an open waits for another process's HDF5 file lock: HDF5 locks a file while a process
#: opens it and, for a reader, while it holds it open, so a writer resuming a shard collides with the
#: `status` poll of a cluster run (or `show` of the live file) reading it at that moment.
LOCK_WAIT = 60.0
#: seconds of waiting for a locked file before retry_locked says that it waits
LOCK_NOTICE = 1.0


def lock_conflict(e: BaseException) -> bool:
    """Whether an error opening an HDF5 file is another process's file lock (transient)."""
    return isinstance(e, OSError) and (e.errno == errno.EAGAIN or "unable to lock file" in str(e))


class FileLocked(StoreError):
    """A file stayed locked by another process for longer than an open waits (LOCK_WAIT)."""


def retry_locked(open_fn, path: str, wait: float | None = None):
    """open_fn() again while the file is locked by another process, for at most `wait` seconds (default
    LOCK_WAIT), saying so on stderr once the wait passes LOCK_NOTICE seconds; then a StoreError."""
    t0 = time.monotonic()
    t_end, delay, told = t0 + (LOCK_WAIT if wait is None else wait), 0.01, False
    while True:
        try:
            return open_fn()
        except OSError as e:
            if not lock_conflict(e):
                raise
            now = time.monotonic()
            if now >= t_end:
                raise FileLocked(f"{path} stays locked by another process (a reader such as `badminima show` "
                                 f"or `status`, or another run); try again once it is done") from None
            if not told and now - t0 >= LOCK_NOTICE:
                say(f"waiting for {path}: locked by another process (a reader such as `badminima show`, or "
                    f"another run); giving up in {t_end - now:.0f} s")
                told = True
        time.sleep(delay)
        delay = min(2 * delay, 0.5)


def open_h5(path: str) -> h5py.File:
    """Open a result file read-only; files of an interrupted or live run are opened as SWMR readers.
    Waits (LOCK_WAIT) while another process holds the file's lock."""
    path = os.fspath(path)
    if not path.strip():
        raise NoResultFile("a result file name is empty")
    if not os.path.exists(path):
        raise NoResultFile(f"{path}: no such file")
    if os.path.isdir(path):
        raise NoResultFile(f"{path}: is a directory, not a result file")
    if not os.path.isfile(path):       # a named pipe or a device would block the open, or never end
        raise NoResultFile(f"{path}: not a regular file, not a result file")
    try:
        return retry_locked(lambda: h5py.File(path, "r", rdcc_nbytes=RDCC_NBYTES), path)
    except OSError as e:
        err = e
        if "already open for write" in str(e):
            try:
                return retry_locked(lambda: h5py.File(path, "r", swmr=True, rdcc_nbytes=RDCC_NBYTES), path)
            except OSError as e2:
                err = e2
    raise StoreError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {short_error(err)}")


# ----------------------------------------------------------------------------------------------
# metadata

@dataclass
class CellMeta:
    name: str
    config: dict
    n_total: int
    n_params: int
    start: int          # first network index held by this file (shards)
    stop: int           # one past the last index this file is responsible for
    n_rows: int         # committed rows (complete files: stop - start)
    counts: dict = field(default_factory=dict)


@dataclass
class FileMeta:
    path: str
    status: str                 # "complete" or "in_progress"
    config: dict
    attrs: dict                 # all root attributes (decoded)
    cells: dict                 # name -> CellMeta, in cell order
    fields: tuple
    extra_fields: dict = field(default_factory=dict)   # check_extra_fields() of the writer's fields=
    where: str = ""             # the absolute path, so that a later read finds the file whatever the cwd

    @property
    def shard(self):
        return self.config.get("shard")

    def identity(self) -> dict:
        """What must agree between shards / between a run and its resumption (config without shard)."""
        return identity(strip_shard(self.config),
                        {n: (c.config, c.n_total, c.n_params) for n, c in self.cells.items()}, self.fields)


def _attr(obj, key, path):
    try:
        v = obj.attrs[key]
    except KeyError:
        raise StoreError(f"{path}: not a badminima results file (missing attribute {key!r} on "
                         f"{obj.name})") from None
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


def _json_dict(text, what: str, path: str) -> dict:
    """A JSON attribute that must hold an object (a run's or a cell's config)."""
    v = json.loads(text)
    if not isinstance(v, dict):
        raise StoreError(f"{path}: corrupt results file ({what} is not a JSON object)")
    return v


def read_meta(f: h5py.File, path: str | None = None) -> FileMeta:
    path = path or f.filename
    try:
        fmt = f.attrs.get("format")
    except OSError as e:
        raise StoreError(f"{path}: corrupt HDF5 file: {short_error(e)}") from None
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT:
        raise StoreError(f"{path}: not a badminima results file (no format={FORMAT!r} attribute)")
    try:
        version = int(_attr(f, "schema_version", path))
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: schema version {version} is newer than this badminima "
                             f"understands ({SCHEMA_VERSION}); upgrade badminima")
        status = _attr(f, "status", path)
        config = _json_dict(_attr(f, "config", path), "config", path)
        order = json.loads(_attr(f, "cell_order", path))
        if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
            raise StoreError(f"{path}: corrupt results file (cell_order is not a list of names)")
        fields = tuple(json.loads(_attr(f, "fields", path)))
        missing = [k for k in BASE_FIELDS if k not in fields]
        if missing:
            raise StoreError(f"{path}: not a badminima results file (no {', '.join(missing)} field)")
        extra = check_extra_fields(json.loads(_attr(f, "extra_fields", path))) if "extra_fields" in f.attrs else {}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
                 for k, v in f.attrs.items()}
        cells = {}
        for name in order:
            if f"cells/{name}" not in f:
                raise StoreError(f"{path}: not a badminima results file (missing group /cells/{name})")
            g = f["cells"][name]
            cm = CellMeta(name=name, config=_json_dict(_attr(g, "config", path), f"cell {name!r} config", path),
                          n_total=int(_attr(g, "n_total", path)), n_params=int(_attr(g, "n_params", path)),
                          start=int(_attr(g, "index_start", path)), stop=int(_attr(g, "index_stop", path)),
                          n_rows=0)
            if not (cm.n_params >= 1 and 0 <= cm.start <= cm.stop <= cm.n_total):
                raise StoreError(f"{path}: corrupt results file (cell {name!r}: networks {cm.start}..{cm.stop} "
                                 f"of {cm.n_total}, {cm.n_params} parameters)")
            for fld in fields:
                if fld not in g:
                    raise StoreError(f"{path}: not a badminima results file (missing dataset "
                                     f"/cells/{name}/{fld})")
                dtype, row, _ = field_spec(fld, cm.n_params, extra)
                ds = g[fld]
                if not isinstance(ds, h5py.Dataset):
                    raise StoreError(f"{path}: corrupt results file (/cells/{name}/{fld} is not a dataset)")
                if ds.dtype.newbyteorder("=") != dtype.newbyteorder("=") or ds.shape[1:] != row or not ds.ndim:
                    raise StoreError(f"{path}: corrupt results file (/cells/{name}/{fld} holds rows of "
                                     f"{ds.dtype} {ds.shape[1:]}, expected {dtype} {row})")
            if status == "complete":
                cm.n_rows = int(_attr(g, "n_rows", path))
                cm.counts = {NAMES[c]: int(_attr(g, f"count_{NAMES[c]}", path)) for c in COUNT_CODES}
            else:
                if PROGRESS not in g:
                    raise StoreError(f"{path}: not a badminima results file (missing /cells/{name}/{PROGRESS})")
                prog = g[PROGRESS][()]
                cm.n_rows = int(prog[0])
                cm.counts = counts_dict(prog[1:])
            if not 0 <= cm.n_rows <= cm.stop - cm.start or any(g[fld].shape[0] < cm.n_rows for fld in fields):
                raise StoreError(f"{path}: corrupt results file (cell {name!r}: {cm.n_rows} committed rows "
                                 f"do not fit the datasets)")
            # (a .part's counts are the writer's running record, which a resuming writer recounts)
            if status == "complete" and (min(cm.counts.values()) < 0 or sum(cm.counts.values()) != cm.n_rows):
                raise StoreError(f"{path}: corrupt results file (cell {name!r}: outcome counts "
                                 f"{sum(cm.counts.values())} for {cm.n_rows} networks)")
            cells[name] = cm
    except StoreError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise StoreError(f"{path}: corrupt results file: {short_error(e)}") from None
    return FileMeta(path=path, status=status, config=config, attrs=attrs, cells=cells, fields=fields,
                    extra_fields=extra, where=os.path.abspath(path))


def read_rows(g: h5py.Group, fields, lo: int, hi: int, path: str) -> dict[str, np.ndarray]:
    """Rows [lo, hi) of the given datasets of a cell group, with read errors as StoreError, and an
    outcome code that names no outcome (a damaged or hand-edited file) refused as one."""
    out = {}
    for fld in fields:
        try:
            out[fld] = g[fld][lo:hi]
        except (OSError, ValueError) as e:
            raise StoreError(f"{path}: corrupt data in {g.name}/{fld}: {short_error(e)}") from None
        if fld in OUTCOME_FIELDS:
            outcome_codes(out[fld], f"{path}: cell {g.name.rsplit('/', 1)[-1]!r} {fld}", lo)
    return out


# ----------------------------------------------------------------------------------------------
# the read API

def without_leftover_parts(paths: list[str]) -> list[str]:
    """The paths less each X.part whose X is among them: a finished run hides the .part a killed finish
    left beside it (the same rows)."""
    finals = set(paths)
    return [p for p in paths if not (p.endswith(".part") and p[:-5] in finals)]


def expand_paths(paths_or_globs) -> list[str]:
    if isinstance(paths_or_globs, (str, os.PathLike)):
        paths_or_globs = [paths_or_globs]
    if isinstance(paths_or_globs, bytes) or not hasattr(paths_or_globs, "__iter__"):
        raise StoreError(f"result files: expected a path, a glob pattern or a list of them, got "
                         f"{type(paths_or_globs).__name__}")
    out = []
    for p in paths_or_globs:
        if not isinstance(p, (str, os.PathLike)):
            raise StoreError(f"result files: expected a path, got {type(p).__name__} {p!r}")
        p = os.fspath(p)
        if any(ch in p for ch in "*?[") and not os.path.exists(p):     # a file named with [ ] is itself
            # a writer's lock and temporary files are never results (a .part is: a run in progress)
            hits = sorted(h for h in _glob.glob(p) if not h.endswith((".lock", ".tmp")))
            if not hits:
                raise NoResultFile(f"no files match {p!r}")
            out.extend(hits)
        else:
            out.append(p)
    if not out:
        raise NoResultFile("no result files given")
    out = without_leftover_parts(out)
    seen, uniq = set(), []
    for p in out:
        rp = os.path.realpath(p)
        if rp not in seen:
            seen.add(rp)
            uniq.append(p)
    return uniq


class Results:
    """Results of one run, possibly spread over several shard files (and/or in-progress .part files)."""

    def __init__(self, metas: list[FileMeta]):
        self.files = [m.path for m in metas]
        self._metas = metas
        first = metas[0]
        ident = first.identity()
        for m in metas[1:]:
            d = diff_keys(ident, m.identity())
            if d:
                raise NotMergeable(f"{m.path} and {first.path} hold different configurations "
                                   f"(differing keys: {describe_diff(d)})")
        for name in first.cells:
            ranges = sorted((m.cells[name].start, m.cells[name].stop, m.path) for m in metas)
            for (_, stop_a, a), (start, stop_b, b) in zip(ranges, ranges[1:]):
                if start < stop_a:
                    raise NotMergeable(f"{a} and {b} both hold networks {start}..{min(stop_a, stop_b) - 1} of cell {name!r} "
                                       f"(copies of one run?); give one copy of a run, or its shards")
        self.config = strip_shard(first.config)
        self.shards = [m.shard for m in metas]
        self.status = [m.status for m in metas]
        self.cells = list(first.cells)
        self.fields = first.fields
        self.attrs = first.attrs

    @property
    def metas(self) -> list[FileMeta]:
        """Each file's metadata (path, status, shard, provenance attributes, cells), in the order given."""
        return list(self._metas)

    def _check(self, name):
        if name not in self.cells:
            raise StoreError(f"no cell {name!r}; cells are: {name_some(self.cells)}")

    def cell_config(self, name) -> dict:
        self._check(name)
        return self._metas[0].cells[name].config

    def n_total(self, name) -> int:
        self._check(name)
        return self._metas[0].cells[name].n_total

    def n_params(self, name) -> int:
        self._check(name)
        return self._metas[0].cells[name].n_params

    def n_rows(self, name) -> int:
        self._check(name)
        return sum(m.cells[name].n_rows for m in self._metas)

    def complete(self, name) -> bool:
        """All n_total networks of the cell present exactly once (files fully committed, ranges tiling)."""
        self._check(name)
        pos = 0
        for cm in sorted((m.cells[name] for m in self._metas), key=lambda c: c.start):
            if cm.start != pos or cm.n_rows != cm.stop - cm.start:
                return False
            pos = cm.stop
        return pos == self.n_total(name)

    def counts(self, name) -> dict[str, int]:
        """Outcome name -> number of networks (over all files), every name present."""
        self._check(name)
        tot = dict.fromkeys(NAMES.values(), 0)
        for m in self._metas:
            for k, v in m.cells[name].counts.items():
                tot[k] += v
        return tot

    def code_counts(self, name, fld: str, block: int = 1 << 20) -> dict[str, int]:
        """Outcome name -> number of networks, counted from an outcome-code field (e.g. the optimizer's
        own verdict) block by block, so memory stays bounded whatever the cell's size."""
        self._check(name)
        if fld not in self.fields:
            raise StoreError(f"no field {fld!r}; fields are: {', '.join(self.fields)}")
        tot = np.zeros(len(COUNT_CODES), np.int64)
        for m in self._metas:
            n = m.cells[name].n_rows
            with self.reopen(m) as f:
                for lo in range(0, n, block):
                    codes = read_rows(f["cells"][name], [fld], lo, min(lo + block, n), m.path)[fld]
                    tot += count_outcomes(codes, f"{m.path}: {fld}", lo)
        return counts_dict(tot)

    def verify(self) -> None:
        """Read every stored value of every file back (``verify_data``): StoreError on the first bad one."""
        for meta in self.metas:
            verify_data(meta)

    def reopen(self, m: FileMeta) -> h5py.File:
        """The file of `m` opened again, refused (StoreError) if it no longer holds the run read when these
        Results were opened (replaced by another run: other rows under the same name)."""
        f = open_h5(m.where or m.path)
        now = f.attrs.get("run_id")
        now = now.decode() if isinstance(now, bytes) else now
        if "run_id" in m.attrs and now != m.attrs["run_id"]:
            f.close()
            raise StoreError(f"{m.path} holds another run than when it was opened; open it again")
        return f

    def read_bytes(self, name, fields) -> int:
        """Memory that reading `fields` of cell `name` takes: the arrays, and about twice that while the
        files' parts are joined and sorted."""
        P, extra = self.n_params(name), self._metas[0].extra_fields
        row = 0
        for f in fields:
            dtype, tail, _ = field_spec(f, P, extra)
            row += np.dtype(dtype).itemsize * int(np.prod(tail, dtype=np.int64))
        return 3 * self.n_rows(name) * row

    def cell(self, name, fields=None) -> dict[str, np.ndarray]:
        """The cell's datasets as NumPy arrays, rows sorted by network index (duplicates refused); a read
        that would not fit in memory is refused (ResourceError) before it starts."""
        from badminima.engine.train.limits import check_fits
        self._check(name)
        fields = list(self.fields if fields is None else fields)
        for fld in fields:
            if fld not in self.fields:
                raise StoreError(f"no field {fld!r}; fields are: {', '.join(self.fields)}")
        check_fits(self.read_bytes(name, fields), f"reading {', '.join(fields)} of cell {name!r} "
                   f"({self.n_rows(name)} networks)", "read fewer fields, or fewer networks (some shards of the run)")
        want = fields if "index" in fields else ["index"] + fields
        parts = []
        for m in sorted(self._metas, key=lambda m: m.cells[name].start):
            cm = m.cells[name]
            with self.reopen(m) as f:
                parts.append(read_rows(f["cells"][name], want, 0, cm.n_rows, m.path))
        out = {fld: np.concatenate([p[fld] for p in parts]) for fld in want}
        idx = out["index"]
        if idx.size > 1 and not np.all(idx[1:] > idx[:-1]):
            order = np.argsort(idx, kind="stable")
            idx = idx[order]
            if np.any(idx[1:] == idx[:-1]):
                dup = int(idx[1:][idx[1:] == idx[:-1]][0])
                raise NotMergeable(f"cell {name!r}: network index {dup} appears in more than one file")
            out = {k: v[order] for k, v in out.items()}
        return {fld: out[fld] for fld in fields}

    @property
    def scalar_fields(self) -> list[str]:
        """The fields with one value per network (not the weight vectors, points, ...)."""
        extra = self._metas[0].extra_fields
        return [f for f in self.fields if not field_spec(f, 1, extra)[1]]

    def table(self, name) -> np.ndarray:
        """The scalar per-network fields as one NumPy structured array (no weights)."""
        cols = self.cell(name, self.scalar_fields)
        arr = np.empty(len(cols["index"]), dtype=[(k, v.dtype) for k, v in cols.items()])
        for k, v in cols.items():
            arr[k] = v
        return arr


def open_results(paths_or_globs) -> Results:
    """Open one or many result files (paths or glob patterns) of the same configuration."""
    metas = []
    for p in expand_paths(paths_or_globs):
        with open_h5(p) as f:
            metas.append(read_meta(f, p))
    return Results(metas)


def verify_data(meta: FileMeta, block_bytes: int = 1 << 24) -> None:
    """Read every committed row of every dataset of a file (HDF5 checks each chunk's Fletcher-32
    checksum on the way) and recount the outcomes; StoreError naming the first bad dataset.  Memory:
    one block of at most block_bytes per dataset."""
    with open_h5(meta.where or meta.path) as f:
        for name, cm in meta.cells.items():
            g = f["cells"][name]
            counts = np.zeros(len(COUNT_CODES), np.int64)
            for fld in meta.fields:
                ds = g[fld]
                row = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
                step = max(1, block_bytes // row)
                for lo in range(0, cm.n_rows, step):
                    rows = read_rows(g, [fld], lo, min(cm.n_rows, lo + step), meta.path)[fld]
                    if fld == "outcome":
                        counts += count_outcomes(rows, f"{meta.path}: cell {name!r} outcome", lo)
            if counts_dict(counts) != cm.counts:
                raise StoreError(f"{meta.path}: corrupt results file (cell {name!r}: the stored outcome counts "
                                 f"do not match the stored outcomes)")


def show(paths_or_globs, verify: bool = True) -> str:
    """Human-readable summary: provenance, config and per-cell outcome counts.  verify: first read every
    stored value (checksums) and refuse a corrupt file (StoreError), as reading its results would."""
    res = open_results(paths_or_globs)
    if verify:
        for m in res.metas:
            verify_data(m)
    lines = []
    for m in res.metas:
        a = m.attrs
        state = "complete" if m.status == "complete" else \
            f"in progress ({sum(c.n_rows for c in m.cells.values())} of " \
            f"{sum(c.stop - c.start for c in m.cells.values())} networks committed)"
        lines.append(f"{m.path}: {state}, schema {a.get('schema_version')}")
        lines.append(f"  created {a.get('created')} on {a.get('host')}; badminima {a.get('badminima_version')}, "
                     f"numba {a.get('numba_version')}, numpy {a.get('numpy_version')}, "
                     f"h5py {a.get('h5py_version')} (HDF5 {a.get('hdf5_version')})")
        lines.append(f"  command: {a.get('command')}")
        if m.shard:
            lines.append(f"  shard {m.shard['index']}/{m.shard['count']}")
        if "merged_from" in a:
            lines.append(f"  merged from {len(json.loads(a['merged_from']))} files")
    lines.append("config:")
    lines.extend("  " + ln for ln in json.dumps(res.config, indent=2, sort_keys=True).splitlines())
    width = max(len(v) for v in NAMES.values())
    for name in res.cells:
        n, tot = res.n_rows(name), res.n_total(name)
        lines.append(f"cell {name}: {n} of {tot} networks" + ("" if n == tot else " (incomplete)"))
        for k, v in res.counts(name).items():
            pct = f"{100 * v / n:6.2f}%" if n else "     -"
            lines.append(f"  {k:<{width}} {v:>10d}  {pct}")
    return "\n".join(lines)

