"""Streaming, crash-safe HDF5 result writer: RunWriter, and the file copying that merge shares.

Crash-safety design (see docs/store.md for the schema):

* While a run is in progress its results live in ``<path>.part``, an HDF5 file in SWMR-write mode
  (``libver='latest'``).  HDF5's single-writer/multiple-reader protocol orders every metadata write so
  that a concurrent reader always sees a consistent file; a process killed at any instant leaves the
  file in exactly the state such a reader would see, so it always opens (as a SWMR reader).
* In SWMR mode the writer only grows datasets and writes data.  Each batch is written, the file is
  flushed, *then* the per-cell commit record ``_progress = [committed rows, counts...]`` is written and
  flushed.  Rows beyond the committed count are ignored and overwritten by the next batch.
* The .part file is created complete (groups, attributes, empty datasets) as ``<path>.part.tmp`` and
  renamed into place, so a kill during creation leaves no half-made .part.
* Resuming after a clean close reopens the .part in place.  After a crash HDF5 refuses to reopen it for
  writing (its superblock still says "open for SWMR write"), so the committed rows are copied, via a
  SWMR read, into a fresh ``<path>.part.tmp`` which atomically replaces the .part: nothing is ever
  written into a file that was open when its writer died.
* ``finish()`` closes the .part, copies it into a plain (non-SWMR, default-libver) HDF5 file
  ``<path>.tmp`` with the final attributes and renames that over ``<path>``; the old ``<path>`` (with
  --force) survives until that rename.  A kill during finish leaves the .part, and rerunning finishes.
* A lock file ``<path>.lock`` (flock) keeps two processes from writing the same run.
* An OSError while writing (a full disk above all) closes the .part as it stands -- its committed
  rows are safe, the chunk being written is not committed -- removes the temporary file of a failed
  create, rebuild or finish, and raises a StoreError whose one line says so (paths.os_error_message);
  rerunning resumes.  HDF5 locks a file while another process (a `status` poll) opens or reads it:
  opens wait for such a lock (read.retry_locked).
"""
from __future__ import annotations

import collections
import errno
import fcntl
import json
import os
import re
import shlex
import socket
import sys
import uuid
from datetime import datetime, timezone
from importlib import metadata

import h5py
import numpy as np

from badminima import __version__
from badminima.engine.core.outcomes import name_map_attr
from badminima.engine.core.say import say
from badminima.engine.train import interrupt
from badminima.engine.store import encode
from badminima.engine.store.paths import not_a_file, os_error_message
from badminima.engine.store.read import RDCC_NBYTES, open_h5, read_meta, read_rows, retry_locked
from badminima.engine.store.schema import (BASE_FIELDS, COUNT_CODES, FORMAT, OPTIONAL_FIELDS, PROGRESS,
                                           SCHEMA_VERSION, TRAINING_FIELDS, NoResultFile, StoreError, canonical_json,
                                           check_extra_fields, check_shard, count_outcomes, counts_dict, describe_diff,
                                           diff_keys, field_spec, identity, normalize, shard_range,
                                           short_error)

GZIP_LEVEL = 1          # deflate (built into every HDF5; h5dump reads it; lzf is h5py-only); level 1:
                        # random float64 weights barely compress, higher levels only cost time
BLOCK_ROWS = 16384      # rows per copy block (a multiple of every chunk height)


def chunk_rows(n_params: int, two_d: bool, append_rows: int = 0) -> int:
    """Chunk height: 4096 rows (32 KiB of float64) for per-network scalars; 64..4096 rows, <= 128 KiB,
    for the (n, P) weight arrays.  Small chunks keep the rewrite of the partly filled last chunk cheap
    when appends are small (each commit re-compresses it).  Runs that append at least 2^18 rows at a
    time (a GPU's chunks) get chunks up to 4x taller, at most 1/32 of an append: each chunk costs the
    writer's one thread an HDF5 call, and taller chunks cut those calls."""
    scale = min(4, max(1, append_rows // (32 * 4096)))
    scale = 1 << (scale.bit_length() - 1)                 # 1, 2 or 4
    if not two_d:
        return 4096 * scale
    r = max(1, 131072 * scale // (8 * max(1, n_params)))
    r = 1 << (r.bit_length() - 1)
    return min(max(r, 64), 4096 * scale)


def versions() -> dict:
    """The versions of badminima and the libraries that shape a result file (provenance attributes)."""
    def v(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "unknown"
    return {"badminima_version": __version__, "numba_version": v("numba"), "numpy_version": np.__version__,
            "h5py_version": h5py.version.version, "hdf5_version": h5py.version.hdf5_version}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (the created / finished attributes)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _create_datasets(g: h5py.Group, fields, n_params: int, n_rows: int, extra: dict | None = None,
                     append_rows: int = 0, like: h5py.Group | None = None) -> dict:
    """The per-network datasets of one cell; identical creation properties in .part and final files
    (with `like`, the chunk heights of that cell's datasets, so that their chunks copy as they are)."""
    out = {}
    for fld in fields:
        dtype, tail, desc = field_spec(fld, n_params, extra)
        rows = like[fld].chunks[0] if like is not None and fld in like else \
            chunk_rows(tail[0] if tail else 1, bool(tail), append_rows)
        ds = g.create_dataset(fld, shape=(n_rows,) + tail, maxshape=(None,) + tail, dtype=dtype,
                              chunks=(rows,) + tail, compression="gzip",
                              compression_opts=GZIP_LEVEL, shuffle=True, fletcher32=True, track_times=False)
        ds.attrs["description"] = desc
        if fld == "outcome":
            ds.attrs["names"] = name_map_attr()
        out[fld] = ds
    return out


def extra_fields_json(extra: dict) -> str:
    """The root attribute "extra_fields" for check_extra_fields() output: {name: [dtype, columns, description]}."""
    return json.dumps({k: [dt.str, cols, desc] for k, (dt, cols, desc) in extra.items()})


def _set_attrs(obj, attrs: dict):
    for k, v in attrs.items():
        if isinstance(v, str):      # a command line or path that is not UTF-8 (surrogates) is kept escaped, \xff
            v = v.encode("utf-8", "backslashreplace").decode("utf-8")
        obj.attrs[k] = v


def _cell_attrs(cm) -> dict:
    return {"config": canonical_json(cm.config), "n_total": np.int64(cm.n_total),
            "n_params": np.int64(cm.n_params), "index_start": np.int64(cm.start),
            "index_stop": np.int64(cm.stop)}


def _same_storage(a: h5py.Dataset, b: h5py.Dataset) -> bool:
    return all(getattr(a, k) == getattr(b, k) for k in ("dtype", "chunks", "compression", "compression_opts",
                                                          "shuffle", "fletcher32"))


def _copy_field(src: h5py.Dataset, dst: h5py.Dataset, lo: int, hi: int, pos: int, src_path: str) -> None:
    """Copy rows [lo, hi) of src to rows pos.. of dst in constant memory.

    Chunks lying wholly inside the range are copied as stored (compressed bytes, no decode/re-encode)
    when both datasets share chunking and filters and the rows line up with the chunk grid; all other
    rows go through NumPy in blocks aligned to dst's chunk grid (so dst chunks are written whole)."""
    C = dst.chunks[0]
    tail = (0,) * (dst.ndim - 1)
    raw = _same_storage(src, dst) and (lo - pos) % C == 0
    s, d = lo, pos
    while s < hi:
        if raw and d % C == 0 and s + C <= hi:
            try:
                mask, data = src.id.read_direct_chunk((s,) + tail)
            except (OSError, ValueError) as e:
                raise StoreError(f"{src_path}: corrupt data in {src.name}: {short_error(e)}") from None
            # a chunk copied as stored is not decoded, so HDF5 would not check it: its Fletcher-32
            # (the last filter, 4 bytes at the end) is checked here, or a damaged .part or shard would
            # be published as a finished file
            if src.fletcher32 and mask == 0 and encode.fletcher32(data[:-4]) != int.from_bytes(data[-4:], "little"):
                raise StoreError(f"{src_path}: corrupt data in {src.name}: the checksum of rows {s}-{s + C - 1} "
                                 f"does not match")
            dst.id.write_direct_chunk((d,) + tail, data, mask)
            s, d = s + C, d + C
            continue
        stop = min(hi, s + BLOCK_ROWS - d % BLOCK_ROWS)
        if raw:
            stop = min(stop, s + C - d % C)
        try:
            block = src[s:stop]
        except (OSError, ValueError) as e:
            raise StoreError(f"{src_path}: corrupt data in {src.name}: {short_error(e)}") from None
        dst[d: d + stop - s] = block
        s, d = stop, d + stop - s


def _copy_cell(name: str, start: int, segments: list, dss: dict, fields) -> np.ndarray:
    """Copy a cell's rows from source segments [(cell group, first row, stop row, path), ...] into the
    datasets dss (rows 0..), checking the network indices run start, start+1, ...; returns the counts."""
    counts = np.zeros(len(COUNT_CODES), np.int64)
    pos = 0
    for g, lo, hi, path in segments:
        for a in range(lo, hi, BLOCK_ROWS):       # index and outcome: through NumPy (checked, counted)
            b = min(hi, a + BLOCK_ROWS)
            rows = read_rows(g, ["index", "outcome"], a, b, path)
            first = start + pos + a - lo
            if not np.array_equal(rows["index"], np.arange(first, first + b - a, dtype=np.int64)):
                raise StoreError(f"{path}: cell {name!r}: network indices {first}..{first + b - a - 1} are "
                                 f"not stored in order (corrupt file)")
            counts += count_outcomes(rows["outcome"], f"{path}: cell {name!r} outcome", a)
        for fld in fields:
            interrupt.check()           # a Ctrl-C that h5py's callbacks swallowed stops the copy here
            _copy_field(g[fld], dss[fld], lo, hi, pos, path)
        pos += hi - lo
    return counts


def _damaged(ds: h5py.Dataset, row: int) -> bool:
    """Whether the stored chunk of ds at `row` (a chunk start) cannot be read or fails its checksum; a
    chunk never written (HDF5 reads it as fill values) is not damaged."""
    coord = (row,) + (0,) * (ds.ndim - 1)
    raw = ds.dtype.itemsize * int(np.prod(ds.chunks))
    try:
        info = ds.id.get_chunk_info_by_coord(coord)
        if info.byte_offset is None:
            return False
        if info.size > 2 * raw + 4096:      # deflate never grows data that much: a damaged index entry
            return True
        mask, data = ds.id.read_direct_chunk(coord)
    except (OSError, ValueError, KeyError, RuntimeError, MemoryError):
        return True
    return bool(ds.fletcher32 and mask == 0
                and encode.fletcher32(data[:-4]) != int.from_bytes(data[-4:], "little"))


def _first_damaged(g: h5py.Group, fields: list, lo: int, hi: int) -> int | None:
    """The first row of a damaged chunk among the chunks of `fields` (datasets of cell group g) that
    overlap rows [lo, hi), or None."""
    return min((r for ds in fields for r in range(lo // ds.chunks[0] * ds.chunks[0], min(hi, ds.shape[0]),
                                                  ds.chunks[0]) if _damaged(ds, r)), default=None)


def _fields(g: h5py.Group) -> list:
    return [ds for key, ds in g.items() if isinstance(ds, h5py.Dataset) and key != PROGRESS]


def _pad_truncated(part: str) -> bool:
    """Extend with zeros a .part that ends short of the size its superblock states; True if it did.
    A write that failed (a full disk, a file size limit) leaves such a file, which HDF5 refuses to
    open; the missing tail holds nothing committed (the commit record is written last, after the data),
    so zeros in its place make the committed rows readable again, and the resume's checks cut any
    damaged chunk among the uncommitted ones."""
    try:
        h5py.File(part, "r").close()
        return False
    except OSError as e:
        m = re.search(r"truncated file: eof = (\d+).*?stored_eof = (\d+)", str(e), re.S)
    try:
        if m is None or int(m.group(1)) != os.path.getsize(part) or int(m.group(2)) <= int(m.group(1)):
            return False
        os.truncate(part, int(m.group(2)))
    except OSError:             # still no room: the open below says what is wrong
        return False
    return True


def _rows_before(first: int, fields: list) -> int:
    """The rows kept before a damaged one: up to the start of the tallest chunk holding row `first`
    (chunk heights are powers of two, so that row starts a chunk in every field)."""
    tall = max(ds.chunks[0] for ds in fields)
    return first // tall * tall


def _count_committed(g: h5py.Group, n: int, path: str) -> np.ndarray:
    """Networks per outcome code among a cell group's first n rows, read block by block."""
    counts = np.zeros(len(COUNT_CODES), np.int64)
    for a in range(0, n, BLOCK_ROWS):
        counts += count_outcomes(g["outcome"][a: min(n, a + BLOCK_ROWS)],
                                 f"{path}: cell {g.name.rsplit('/', 1)[-1]!r} outcome", a)
    return counts


def cut_damaged(part: str, tail: bool = False) -> list[tuple[str, int, int]]:
    """Cut an in-progress file's committed rows back to before its first damaged chunk, per cell.

    Every chunk of every field is checked (read as stored, Fletcher-32; with `tail`, only the chunks
    from the one holding the first uncommitted row on, which the next appends read back); where a
    committed row lies in a damaged chunk, the cell's committed rows end at the start of the tallest
    chunk that holds it (chunk heights are powers of two, so that row starts a chunk in every field).
    Every damaged chunk from the cell's committed end on is replaced by a valid one of zeros, so that
    appends can write over it.  The rows cut are recomputed by resuming (network i depends on (seed, i)
    only).  Every cell is checked before any is changed.  Returns [(cell, first network cut, end)]."""
    plan = []
    with open_h5(part) as f:                # read-only: a scan that finds nothing changes nothing
        for name, g in f["cells"].items():
            n, fields = int(g[PROGRESS][0]), _fields(g)
            if not fields or not all(_direct_ok(ds) for ds in fields):
                continue
            first = _first_damaged(g, fields, n if tail else 0, max(ds.shape[0] for ds in fields))
            if first is not None:
                plan.append((name, n, min(n, _rows_before(first, fields))))
    if not plan:
        return []
    cut = []
    # written in SWMR mode, as the writer does: a kill now leaves a file a resuming writer can rebuild
    with _open_swmr_write(part) as f:
        for name, n, keep in plan:
            g = f["cells"][name]
            for ds in _fields(g):
                C = ds.chunks[0]
                for r in range(keep // C * C, ds.shape[0], C):
                    if _damaged(ds, r):
                        zeros = np.zeros((C,) + ds.shape[1:], ds.dtype)
                        ds.id.write_direct_chunk((r,) + (0,) * (ds.ndim - 1), encode.encode_chunk(zeros, GZIP_LEVEL), 0)
            if keep == n:                   # only chunks past the committed rows were damaged
                continue
            g[PROGRESS][...] = np.concatenate([[keep], _count_committed(g, keep, part)]).astype(np.int64)
            start = int(g.attrs["index_start"])
            cut.append((name, start + keep, start + n))
    return cut


def write_final(out_path: str, root_attrs: dict, cells: list, fields, extra: dict | None = None) -> None:
    """Write a complete (plain, non-SWMR) result file from committed rows of source files.

    cells: list of (CellMeta of the output cell, [(h5py cell group, first row, stop row, file path), ...]).
    Constant memory; network indices are checked; the summary counts are recomputed from the outcomes.
    """
    with h5py.File(out_path, "w", rdcc_nbytes=RDCC_NBYTES) as out:
        _set_attrs(out, root_attrs)
        for cm, segments in cells:
            g = out.create_group(f"cells/{cm.name}")
            n = cm.stop - cm.start
            got = sum(hi - lo for _, lo, hi, _ in segments)
            if got != n:
                raise StoreError(f"cell {cm.name!r}: {got} rows to copy, expected {n}")
            dss = _create_datasets(g, fields, cm.n_params, n, extra, like=segments[0][0] if segments else None)
            counts = _copy_cell(cm.name, cm.start, segments, dss, fields)
            _set_attrs(g, _cell_attrs(cm))
            g.attrs["n_rows"] = np.int64(n)
            for k, v in counts_dict(counts).items():
                g.attrs[f"count_{k}"] = np.int64(v)


def _direct_ok(ds: h5py.Dataset) -> bool:
    """Whether encode.encode_chunk writes ds's chunks: its filters are the ones _create_datasets sets and
    a chunk spans whole rows."""
    return (ds.compression == "gzip" and ds.compression_opts == GZIP_LEVEL and ds.shuffle and ds.fletcher32
            and ds.scaleoffset is None and ds.chunks[1:] == ds.shape[1:])


def _write_rows(pairs, lo: int, threads: int) -> None:
    """Write each (dataset, rows) pair at row lo: the chunks the rows fill whole are encoded on `threads`
    threads (encode.encode_chunk; at most two per thread in flight, so the memory held stays a few
    chunks) and stored as they are; the partly filled chunks at either end go through HDF5, and so does
    every chunk with one thread when encode has only zlib (HDF5's own deflate is as fast)."""
    threads = max(1, threads)
    whole, rest = [], []
    serial = threads == 1 and encode.codec() == "zlib"
    for ds, arr in pairs:
        C, n = ds.chunks[0], arr.shape[0]
        a, b = -(-lo // C) * C, (lo + n) // C * C        # the whole chunks [a, b) inside [lo, lo + n)
        if serial or b <= a or not _direct_ok(ds):
            rest.append((ds, lo, arr))
            continue
        tail = (0,) * (arr.ndim - 1)                      # a chunk's offset: (first row, 0, ...)
        whole += [(ds, (c,) + tail, arr[c - lo: c - lo + C]) for c in range(a, b, C)]
        rest += [(ds, lo, arr[: a - lo]), (ds, b, arr[b - lo:])]
    for ds, at, rows in rest:
        if rows.shape[0]:
            ds[at: at + rows.shape[0]] = rows
    if not whole:
        return
    pool, window = encode.pool(threads), collections.deque()

    def store():
        ds, offset, job = window.popleft()
        ds.id.write_direct_chunk(offset, job.result(), 0)   # mask 0: every filter applied
    try:
        for ds, offset, block in whole:
            window.append((ds, offset, pool.submit(encode.encode_chunk, block, GZIP_LEVEL)))
            if len(window) >= 2 * threads:
                store()
        while window:
            store()
    finally:
        for _, _, job in window:
            job.cancel()


# ----------------------------------------------------------------------------------------------
# locking

def lock_run(path: str) -> int:
    """Take the flock on <path>.lock (one writer per output) -> its descriptor; StoreError if held."""
    lock_path = path + ".lock"
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{path} is being written by another process (lock {lock_path})") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the lock file was removed and recreated meanwhile: retry on the new one


def unlock_run(path: str, fd: int) -> None:
    """Remove <path>.lock and release the lock taken by lock_run."""
    try:
        os.remove(path + ".lock")
    except FileNotFoundError:
        pass
    os.close(fd)


def remove_if_exists(p: str) -> None:
    """Remove a file; a missing one is fine."""
    try:
        os.remove(p)
    except FileNotFoundError:
        pass


# ----------------------------------------------------------------------------------------------
# the writer

def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


class _Cell:
    __slots__ = ("name", "config", "n_total", "n_params", "start", "stop", "n_rows", "counts")

    def __init__(self, name, config, n_total, n_params, start, stop):
        self.name, self.config, self.n_total, self.n_params = name, config, n_total, n_params
        self.start, self.stop, self.n_rows = start, stop, 0
        self.counts = np.zeros(len(COUNT_CODES), np.int64)


def _open_swmr_write(path: str) -> h5py.File:
    """Open a .part for writing directly in SWMR mode (H5F_ACC_SWMR_WRITE).  Opening it "r+" and then
    switching SWMR on left a moment in which the superblock said "open for write" without SWMR: a
    writer killed then left a file that neither SWMR readers nor a resuming writer could open."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    mdc, nslots, _, w0 = fapl.get_cache()
    fapl.set_cache(mdc, nslots, RDCC_NBYTES, w0)
    fid = retry_locked(lambda: h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE,
                                             fapl=fapl), path)
    return h5py.File(fid)


class RunComplete(StoreError):
    """The output already holds a finished run of exactly the requested configuration: reuse it."""


class RunWriter:
    """Streams the results of one run into ``<path>.part``; ``finish()`` publishes ``<path>``.

    Use ``RunWriter.open(...)`` (a context manager).  Per cell, ``next_index(cell)`` is where to
    continue and ``append(cell, chunk)`` commits the chunk of consecutive networks starting there.
    """

    def __init__(self):  # use RunWriter.open
        raise TypeError("use RunWriter.open(...)")

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path, config: dict, cells: dict, *, command: str | None = None, force: bool = False,
             resume: bool | str = "auto", init_weights: bool = False, training: bool = False,
             fields: dict | None = None, threads: int | None = None, append_rows: int = 0) -> "RunWriter":
        """Start or resume the run writing ``path``.

        cells: {name: (cell_config, n_total, n_params)}; n_total is the cell's full network count (also
        in a shard: config["shard"] = {"index": i, "count": n} selects the index range
        shard_range(n_total, i, n) of every cell).
        resume: "auto" resumes a matching ``.part`` if there is one; True requires one; False refuses
        an existing ``.part`` (with force: discards it).
        force: allow replacing an existing complete ``path`` (only once the new run finishes) and
        discard an unreadable or differently-configured ``.part`` instead of refusing.
        training: also store the training fields (TRAINING_FIELDS: first solved step, ...).
        fields: extra per-row fields {name: (dtype, columns, description)} stored after the base ones
        (columns 0 = one value per row); every chunk must then carry them too.
        threads: threads that compress the chunks (default: Numba's, all cores unless NUMBA_NUM_THREADS).
        append_rows: the rows a typical append brings (the run's chunk); sets the HDF5 chunk height of a
        new file (chunk_rows).
        """
        if resume not in (True, False, "auto"):
            raise ValueError(f"resume must be True, False or 'auto', not {resume!r}")
        self = object.__new__(cls)
        self.path = os.fspath(path)
        if os.path.islink(self.path):       # a linked output: the file it points to is the result
            self.path = os.path.realpath(self.path)
        self.part = self.path + ".part"
        if not isinstance(config, dict):
            raise StoreError("config must be a dict")
        self.config = normalize(config)
        shard = check_shard(self.config.get("shard"))
        if not cells:
            raise StoreError("a run needs at least one cell")
        self.extra = check_extra_fields(fields)
        self.fields = (BASE_FIELDS + (TRAINING_FIELDS if training else ()) + (OPTIONAL_FIELDS if init_weights else ())
                       + tuple(self.extra))
        self._cells = {}
        for name, spec in cells.items():
            if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
                raise StoreError(f"bad cell name {name!r}: must be non-empty, without '/', not starting with '.'")
            try:
                cell_config, n_total, n_params = spec
            except (TypeError, ValueError):
                raise StoreError(f"cell {name!r}: expected (cell_config, n_total, n_params)") from None
            if not _is_int(n_total) or n_total < 0:
                raise StoreError(f"cell {name!r}: bad n_total {n_total!r}")
            if not _is_int(n_params) or n_params < 1:
                raise StoreError(f"cell {name!r}: bad n_params {n_params!r}")
            n_total, n_params = int(n_total), int(n_params)
            start, stop = shard_range(n_total, shard["index"], shard["count"]) if shard else (0, n_total)
            self._cells[name] = _Cell(name, normalize(cell_config), n_total, n_params, start, stop)
        self.command = shlex.join(sys.argv) if command is None else str(command)
        self.resumed = False      # continued an existing .part
        self.rebuilt = False      # ... which a killed writer had left open (committed rows were copied)
        self.finished = False
        if threads is None:
            import numba
            threads = numba.config.NUMBA_NUM_THREADS
        self.threads = max(1, int(threads))
        self.append_rows = int(append_rows)
        self._f = None
        if os.path.isdir(self.path):
            raise StoreError(f"cannot write {self.path}: it is a directory; give a file name")
        if not_a_file(self.path):
            raise StoreError(f"cannot write {self.path}: {not_a_file(self.path)}")
        for side in (self.part, self.part + ".tmp", self.path + ".tmp"):     # files the writer makes
            if os.path.isdir(side):
                raise StoreError(f"cannot write {self.path}: {side} is a directory (the writer's own file "
                                 f"goes there); move or remove it")
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._lock_fd = lock_run(self.path)
        except OSError as e:
            raise StoreError(os_error_message(e, self.path)) from None
        try:
            self._start(force, resume)
        except BaseException:
            self._close_file()
            unlock_run(self.path, self._lock_fd)
            self._lock_fd = None
            raise
        return self

    def _identity(self) -> dict:
        return identity(self.config, {n: (c.config, c.n_total, c.n_params) for n, c in self._cells.items()},
                        self.fields)

    def _differs_from(self, meta) -> list[str]:
        """The identity keys (config, cells, fields, shard) in which a stored file's run differs from this one."""
        return diff_keys(identity(meta.config, {n: (c.config, c.n_total, c.n_params) for n, c in meta.cells.items()},
                                  meta.fields), self._identity())

    def _other_run(self, meta, differing: list[str]) -> str:
        """What another run stored in a file is, said shortly: another command, or the keys that differ."""
        theirs, ours = meta.config.get("command"), self.config.get("command")
        if theirs != ours and theirs and ours:
            return f"another command ({theirs}, not {ours})"
        return f"a different configuration (differing keys: {describe_diff(differing)})"

    def _check_finished(self):
        """Raise RunComplete if `path` is a finished run of exactly this configuration, else StoreError
        naming what differs (a finished result is never replaced without --force)."""
        try:
            with open_h5(self.path) as f:
                meta = read_meta(f, self.path)
        except (StoreError, OSError) as e:
            raise StoreError(f"{self.path} exists and is not a readable result file ({e}); use another "
                             f"output path, or --force to replace it") from None
        d = self._differs_from(meta)
        if d:
            raise StoreError(f"{self.path} holds a finished run of {self._other_run(meta, d)}; use another output "
                             f"path, or --force to replace it")
        if meta.status != "complete":
            raise StoreError(f"{self.path}: not a finished run file (status {meta.status!r}); use --force to "
                             f"replace it")
        raise RunComplete(f"{self.path} already holds this finished run")

    def _start(self, force, resume):
        remove_if_exists(self.part + ".tmp")
        remove_if_exists(self.path + ".tmp")
        have_final, have_part = os.path.exists(self.path), os.path.exists(self.part)
        if have_part and have_final:
            # a finish() killed between publishing <path> and removing <path>.part leaves both
            try:
                with open_h5(self.path) as f1, self._open_own(self.part) as f2:
                    leftover = f1.attrs.get("run_id") == f2.attrs.get("run_id")
            except (StoreError, OSError):
                leftover = False
            if leftover:
                remove_if_exists(self.part)
                have_part = False
        if have_final and not force:
            self._check_finished()
        if resume is True and not have_part:
            raise StoreError(f"nothing to resume: {self.part} does not exist")
        meta = None
        if have_part:
            if resume is False:
                if not force:
                    raise StoreError(f"{self.part} holds an interrupted run; resume it, or use --force "
                                     f"to discard it")
                remove_if_exists(self.part)
            else:
                if _pad_truncated(self.part):
                    say(f"note: {self.part} ended short of its stated size (its last write failed); "
                        f"padded with zeros to read the rows committed before")
                try:
                    with self._open_own(self.part) as f:
                        meta = read_meta(f, self.part)
                    if meta.status != "in_progress":
                        raise StoreError(f"{self.part}: not an in-progress run file")
                except StoreError as e:
                    if not force:
                        raise StoreError(f"{e} (remove it, or use --force to start over)") from None
                    remove_if_exists(self.part)
                    meta = None
                if meta is not None:
                    d = self._differs_from(meta)
                    if d:
                        if not force:
                            raise StoreError(f"{self.part} was made by a run of {self._other_run(meta, d)}; use "
                                             f"another output path, or --force to discard it")
                        remove_if_exists(self.part)
                        meta = None
        if meta is None:
            self._create()
        else:
            self._resume()

    def _root_attrs(self) -> dict:
        attrs = {"format": FORMAT, "schema_version": np.int64(SCHEMA_VERSION), "status": "in_progress",
                 "config": canonical_json(self.config)}
        if isinstance(self.config.get("seed"), int):
            attrs["seed"] = np.int64(self.config["seed"])
        attrs.update({"command": self.command, "created": utc_now(), "host": socket.gethostname(),
                      **versions(), "run_id": uuid.uuid4().hex,
                      "cell_order": json.dumps(list(self._cells)), "fields": json.dumps(list(self.fields))})
        if self.extra:
            attrs["extra_fields"] = extra_fields_json(self.extra)
        return attrs

    def _create(self):
        tmp = self.part + ".tmp"
        try:
            with h5py.File(tmp, "w", libver="latest") as f:
                _set_attrs(f, self._root_attrs())
                for c in self._cells.values():
                    g = f.create_group(f"cells/{c.name}")
                    _set_attrs(g, _cell_attrs(c))
                    _create_datasets(g, self.fields, c.n_params, 0, self.extra, append_rows=self.append_rows)
                    g.create_dataset(PROGRESS, data=np.zeros(1 + len(COUNT_CODES), np.int64), track_times=False)
            os.replace(tmp, self.part)
        except BaseException as e:
            remove_if_exists(tmp)
            if isinstance(e, OSError):
                raise StoreError(os_error_message(e, self.path, resumable=True)) from None
            raise
        self._open_part()

    def _resume(self):
        self.resumed = True
        try:
            _open_swmr_write(self.part).close()
        except OSError as e:
            if "already open for write" not in str(e):
                raise StoreError(f"{self.part}: cannot reopen for writing: {short_error(e)}") from None
            self._rebuild()
            self.rebuilt = True
        try:                # the chunks the next appends read back (the partly filled one on) must be sound
            cut = cut_damaged(self.part, tail=True)
        except OSError as e:
            raise StoreError(f"{self.part}: cannot check for damaged chunks: {short_error(e)}") from None
        if cut:
            raise StoreError(self._dropped("a chunk the next rows go into", cut))
        try:
            self._open_part()
        except StoreError as e:             # a damaged outcome chunk: cut the .part back as finish() does
            self._abandon()
            self._cut_back(e)

    def _dropped(self, what: str, cut) -> str:
        lost = "; ".join(f"cell {c!r}: networks {a}..{b - 1}" for c, a, b in cut)
        return (f"{self.part} holds damaged data ({what}); the rows from the first damaged chunk on are dropped "
                f"({lost}): rerun the same command to compute them again")

    def _cut_back(self, e: StoreError):
        """After `e` (damaged data in the .part): cut its cells back to their rows before the first damaged
        chunk (cut_damaged) and raise the line that says so; re-raise e where nothing is damaged."""
        try:
            cut = cut_damaged(self.part)
        except (OSError, StoreError):
            cut = []
        if not cut:
            raise e
        raise StoreError(self._dropped(str(e), cut)) from None

    def _rebuild(self):
        """Copy the committed rows of a .part left open by a killed writer into a fresh .part."""
        tmp = self.part + ".tmp"
        try:
            with self._open_own(self.part) as src, h5py.File(tmp, "w", libver="latest", rdcc_nbytes=RDCC_NBYTES) as dst:
                meta = read_meta(src, self.part)
                _set_attrs(dst, dict(src.attrs))
                cut = []
                for name, cm in meta.cells.items():
                    sg = src["cells"][name]

                    def copy(n):
                        g = dst.create_group(f"cells/{name}")
                        _set_attrs(g, dict(sg.attrs))
                        dss = _create_datasets(g, meta.fields, cm.n_params, n, meta.extra_fields, like=sg)
                        counts = _copy_cell(name, cm.start, [(sg, 0, n, self.part)], dss, meta.fields)
                        g.create_dataset(PROGRESS, data=np.concatenate([[n], counts]).astype(np.int64),
                                         track_times=False)
                    try:
                        copy(cm.n_rows)
                    except StoreError:          # damaged: copy again, only the rows before the first damage
                        fields = [sg[fld] for fld in meta.fields]
                        first = _first_damaged(sg, fields, 0, cm.n_rows)
                        if first is None:
                            raise
                        keep = _rows_before(first, fields)
                        del dst[f"cells/{name}"]
                        copy(keep)
                        cut.append((name, cm.start + keep, cm.start + cm.n_rows))
            os.replace(tmp, self.part)
        except BaseException as e:
            remove_if_exists(tmp)
            if isinstance(e, OSError):
                raise StoreError(os_error_message(e, self.path, resumable=True)) from None
            raise
        if cut:
            raise StoreError(self._dropped("found copying the rows of a killed writer", cut))

    def _open_part(self):
        try:
            self._f = _open_swmr_write(self.part)
        except OSError as e:
            raise StoreError(f"{self.part}: cannot open for writing: {short_error(e)}") from None
        try:
            self._ds, self._progress = {}, {}
            for name, c in self._cells.items():
                g = self._f["cells"][name]
                self._progress[name] = g[PROGRESS]
                c.n_rows = int(g[PROGRESS][0])
                c.counts = _count_committed(g, c.n_rows, self.part)    # from the committed rows themselves
        except (OSError, KeyError, ValueError) as e:
            raise StoreError(f"{self.part}: corrupt run file: {short_error(e)}") from None

    # -- progress -----------------------------------------------------------------------------
    @property
    def cells(self) -> list[str]:
        return list(self._cells)

    def _cell(self, cell) -> _Cell:
        try:
            return self._cells[cell]
        except KeyError:
            raise StoreError(f"no cell {cell!r}; cells are: {', '.join(self._cells)}") from None

    def done(self, cell) -> int:
        """Committed row count of the cell (rows hold indices range(cell)[0] .. + done - 1)."""
        return self._cell(cell).n_rows

    def range(self, cell) -> tuple[int, int]:
        """Network index range [start, stop) this run (shard) is responsible for."""
        c = self._cell(cell)
        return c.start, c.stop

    def next_index(self, cell) -> int:
        """The network index the next appended chunk of this cell must start at (resume point)."""
        c = self._cell(cell)
        return c.start + c.n_rows

    def remaining(self, cell) -> int:
        c = self._cell(cell)
        return c.stop - c.start - c.n_rows

    def counts(self, cell) -> dict[str, int]:
        return counts_dict(self._cell(cell).counts)

    @property
    def complete(self) -> bool:
        return all(c.n_rows == c.stop - c.start for c in self._cells.values())

    # -- writing ------------------------------------------------------------------------------
    def _datasets(self, cell) -> dict:
        """The open datasets of a cell, each with a chunk cache of exactly one chunk: it keeps the
        partially filled last chunk in memory between appends (no re-read, no re-compression) while
        bounding memory to ~one chunk per dataset per cell being written."""
        ds = self._ds.get(cell)
        if ds is None:
            g = self._f["cells"][cell]
            ds = {}
            for fld in self.fields:
                dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
                d = g[fld]
                dapl.set_chunk_cache(521, int(np.prod(d.chunks)) * d.dtype.itemsize, 1.0)
                ds[fld] = h5py.Dataset(h5py.h5d.open(g.id, fld.encode(), dapl=dapl))
            self._ds[cell] = ds
        return ds

    def append(self, cell, chunk: dict) -> int:
        """Validate, write, flush and commit a chunk; returns the new committed row count."""
        if self._f is None:
            raise StoreError(f"{self.part}: writer is closed")
        c = self._cell(cell)
        keys = set(chunk)
        if keys != set(self.fields):
            miss, extra = sorted(set(self.fields) - keys), sorted(keys - set(self.fields))
            raise StoreError(f"cell {cell!r}: chunk fields wrong" + (f"; missing {miss}" if miss else "")
                             + (f"; unexpected {extra}" if extra else ""))
        arrays = {}
        n = None
        for fld in self.fields:
            dtype, tail, _ = field_spec(fld, c.n_params, self.extra)
            arr = chunk[fld]
            if not isinstance(arr, np.ndarray):
                raise StoreError(f"cell {cell!r}: chunk field {fld!r} is {type(arr).__name__}, not a numpy array")
            if arr.dtype != dtype:
                raise StoreError(f"cell {cell!r}: chunk field {fld!r} has dtype {arr.dtype}, expected {dtype}")
            n = arr.shape[0] if (n is None and arr.ndim >= 1) else n
            want = (n,) + tail
            if arr.shape != want:
                raise StoreError(f"cell {cell!r}: chunk field {fld!r} has shape {arr.shape}, expected {want}")
            arrays[fld] = arr
        if n == 0:
            return c.n_rows
        first = c.start + c.n_rows
        idx = arrays["index"]
        if idx[0] != first or not np.array_equal(idx, np.arange(first, first + n, dtype=np.int64)):
            raise StoreError(f"cell {cell!r}: chunk must hold consecutive indices starting at {first} "
                             f"(got {idx[0]}..{idx[-1]})")
        if first + n > c.stop:
            raise StoreError(f"cell {cell!r}: chunk ends at index {first + n}, beyond this run's range "
                             f"[{c.start}, {c.stop})")
        lo, hi = c.n_rows, c.n_rows + n
        counts = c.counts + count_outcomes(arrays["outcome"], f"cell {cell!r}: the chunk's outcome", lo)
        try:
            dss = self._datasets(cell)
            for fld in arrays:
                if dss[fld].shape[0] < hi:
                    dss[fld].resize(hi, axis=0)
            _write_rows([(dss[fld], arr) for fld, arr in arrays.items()], lo, self.threads)
            self._f.flush()                               # data (and its metadata) reach the file ...
            self._progress[cell][...] = np.concatenate([[hi], counts]).astype(np.int64)
            self._f.flush()                               # ... before the commit record does
        except OSError as e:
            # e.g. a full disk: the rows committed before this chunk are safe (the commit record is
            # written last); the file is closed as it is, and a rerun resumes from them
            self._abandon()
            raise StoreError(os_error_message(e, self.path, resumable=True)) from None
        c.n_rows, c.counts = hi, counts
        if hi == c.stop - c.start:
            del self._ds[cell]                            # cell complete: release its chunk caches
        return hi

    # -- ending -------------------------------------------------------------------------------
    def finish(self) -> str:
        """All cells complete: publish <path> (atomically; replaces an old one only now) and drop the .part."""
        if self.finished:
            return self.path
        if self._f is None:
            raise StoreError(f"{self.part}: writer is closed")
        for c in self._cells.values():
            if c.n_rows != c.stop - c.start:
                raise StoreError(f"cannot finish {self.path}: cell {c.name!r} has {c.n_rows} of "
                                 f"{c.stop - c.start} networks")
        try:
            self._close_file()
        except OSError as e:
            self._abandon()
            raise StoreError(os_error_message(e, self.path, resumable=True)) from None
        tmp = self.path + ".tmp"
        try:
            with self._open_own(self.part) as src:
                meta = read_meta(src, self.part)
                attrs = dict(meta.attrs)
                attrs["status"] = "complete"
                attrs["finished"] = utc_now()
                cells = [(cm, [(src["cells"][name], 0, cm.n_rows, self.part)]) for name, cm in meta.cells.items()]
                write_final(tmp, attrs, cells, meta.fields, meta.extra_fields)
            os.replace(tmp, self.path)
        except StoreError as e:         # damaged data: keep the rows before it and let a rerun redo the rest
            remove_if_exists(tmp)
            self._cut_back(e)
        except BaseException as e:      # the .part keeps every row: rerunning finishes
            remove_if_exists(tmp)
            if isinstance(e, OSError):
                raise StoreError(os_error_message(e, self.path, resumable=True)) from None
            raise
        remove_if_exists(self.part)
        self.finished = True
        unlock_run(self.path, self._lock_fd)
        self._lock_fd = None
        return self.path

    def _close_file(self):
        if self._f is not None:
            f, self._f = self._f, None
            self._ds, self._progress = {}, {}
            try:
                f.close()
            except RuntimeError as e:       # h5py's error for a failed flush on close (full disk, size limit)
                code = re.search(r"errno = (\d+)", str(e))
                raise OSError(int(code.group(1)) if code else errno.EIO, short_error(e)) from None

    @staticmethod
    def _open_own(path: str):
        """open_h5 of a file this writer made: its absence is a failure met while running (exit 1), not a
        name given wrongly (NoResultFile, exit 2)."""
        try:
            return open_h5(path)
        except NoResultFile as e:
            raise StoreError(f"{e} any more: it was removed while this run wrote it") from None

    def _abandon(self):
        """Close the .part after a failed write, ignoring further errors (what is committed is safe)."""
        try:
            self._close_file()
        except OSError:
            pass

    def close(self) -> None:
        """Close without finishing; the .part keeps every committed chunk for a later resume."""
        try:
            self._close_file()
        except OSError as e:
            raise StoreError(os_error_message(e, self.path, resumable=True)) from None
        finally:
            if self._lock_fd is not None:
                unlock_run(self.path, self._lock_fd)
                self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and not self.finished and self._f is not None and self.complete:
                self.finish()
        finally:
            if exc_type is not None:
                self._abandon()         # an error closing the file must not hide the one in flight
            self.close()
        return False
