"""Merging shards into one result file, and comparing two result files dataset by dataset."""
from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import uuid

import h5py
import numpy as np

from badminima.engine.core.say import say
from badminima.engine.train import interrupt
from badminima.engine.store.paths import check_not_input, os_error_message
from badminima.engine.store.read import FileLocked, expand_paths, open_h5, read_meta
from badminima.engine.store.schema import (FORMAT, PROVENANCE_ATTRS, SCHEMA_VERSION, NotMergeable, StoreError,
                                           canonical_json, describe_diff, diff_keys, strip_shard)
from badminima.engine.store.write import (extra_fields_json, lock_run, remove_if_exists, unlock_run, utc_now,
                                          versions, write_final)


def check_merge_output(output: str, *, force: bool, shard_dir: str | None = None, option: str = "") -> None:
    """Refuse a merge output that cannot be written: a directory, an existing file (unless force, or, with
    shard_dir, a merge of shards of that directory, which the final merge keeps if it is the merge of the
    same shards), a path inside the shard directory (it would count as a shard there), a parent that is no
    writable directory.  Cluster commands call it before any shard runs (option: how they name the output
    and the shard directory, e.g. "--merge"), merge() before it reads its inputs."""
    output = os.path.abspath(output)
    name = f"{option} {output}".strip()
    parent = os.path.dirname(output)
    if shard_dir is not None:
        top = os.path.realpath(shard_dir)
        if os.path.commonpath([os.path.realpath(parent), top]) == top:
            raise StoreError(f"{name} is inside {'--out-dir' if option else shard_dir}: keep the merged file out "
                             f"of the shard directory")
    if os.path.isdir(output):
        raise StoreError(f"{name} is a directory")
    if os.path.exists(output) and not force and not (shard_dir is not None and _merged_in(output, shard_dir)):
        raise StoreError(f"{output} exists; use --force to replace it")
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)            # merge() creates the missing folders below it
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise StoreError(f"cannot write {name}: {parent} is not a writable directory")


def merge(inputs, output, *, force: bool = False, command: str | None = None) -> str:
    """Combine complete shard files of one configuration into ``output`` (a complete unsharded file).

    Checks the configurations agree except for "shard", and that per cell the shards' index ranges are
    disjoint and tile [0, n_total).  The output is dataset-for-dataset identical to an unsharded run.
    """
    output = os.fspath(output)
    paths = expand_paths(inputs)
    check_not_input(output, paths, what="the merge output")
    check_merge_output(output, force=True)         # an existing file is refused once the inputs are read
    try:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        lock_fd = lock_run(output)
    except OSError as e:
        raise StoreError(os_error_message(e, output)) from None
    files = []
    try:
        metas = []
        for p in paths:
            f = open_h5(p)
            files.append(f)
            metas.append(read_meta(f, p))
        first = metas[0]
        for m in metas:
            if m.status != "complete":
                raise NotMergeable(f"{m.path} is an unfinished run; resume it before merging")
            d = diff_keys(first.identity(), m.identity())
            if d:
                raise NotMergeable(f"{m.path} and {first.path} are not shards of one configuration "
                                   f"(differing keys: {describe_diff(d)})")
        cells = []
        for name, cm0 in first.cells.items():
            segs = sorted(((m.cells[name], f, m.path) for m, f in zip(metas, files)), key=lambda s: s[0].start)
            pos, prev = 0, None
            for cm, f, p in segs:
                if cm.start < pos:
                    raise NotMergeable(f"cell {name!r}: {p} [{cm.start}, {cm.stop}) overlaps {prev} (shards overlap)")
                if cm.start > pos:
                    raise NotMergeable(f"cell {name!r}: networks [{pos}, {cm.start}) are in no input (incomplete shards)")
                pos, prev = cm.stop, f"{p} [{cm.start}, {cm.stop})"
            if pos != cm0.n_total:
                raise NotMergeable(f"cell {name!r}: networks [{pos}, {cm0.n_total}) are in no input (incomplete shards)")
            out_cm = type(cm0)(name=name, config=cm0.config, n_total=cm0.n_total, n_params=cm0.n_params,
                               start=0, stop=cm0.n_total, n_rows=cm0.n_total)
            cells.append((out_cm, [(f["cells"][name], 0, cm.n_rows, p) for cm, f, p in segs]))
        config = strip_shard(first.config)
        if os.path.exists(output) and not force:
            if _is_merge_of(output, metas, config):
                say(f"reusing {output}: already the merge of these files")
                return output
            raise StoreError(f"{output} exists and is not the merge of these files; use --force to replace it")
        attrs = {"format": FORMAT, "schema_version": np.int64(SCHEMA_VERSION), "status": "complete",
                 "config": canonical_json(config)}
        if isinstance(config.get("seed"), int):
            attrs["seed"] = np.int64(config["seed"])
        now = utc_now()
        attrs.update({"command": shlex.join(sys.argv) if command is None else str(command), "created": now,
                      "finished": now, "host": socket.gethostname(), **versions(), "run_id": uuid.uuid4().hex,
                      "cell_order": json.dumps(list(first.cells)), "fields": json.dumps(list(first.fields)),
                      "merged_from": json.dumps([{"path": m.path, "shard": m.shard,
                                                  **{k: m.attrs.get(k) for k in sorted(PROVENANCE_ATTRS)
                                                     if k in m.attrs and k != "merged_from"}}
                                                 for m in metas])})
        if first.extra_fields:
            attrs["extra_fields"] = extra_fields_json(first.extra_fields)
        tmp = output + ".tmp"
        try:
            write_final(tmp, attrs, cells, first.fields, first.extra_fields)
            interrupt.check()               # Ctrl-C during the copy: the old output stays as it was
            os.replace(tmp, output)
        except BaseException as e:
            remove_if_exists(tmp)
            if isinstance(e, OSError):
                raise StoreError(os_error_message(e, output)) from None
            raise
        return output
    finally:
        for f in files:
            f.close()
        unlock_run(output, lock_fd)


def _meta_or_none(path: str):
    """The FileMeta of a result file, or None if `path` is none (missing, foreign, corrupt).  A file locked
    by another process for longer than an open waits raises FileLocked: what it is cannot be told then."""
    try:
        with open_h5(path) as f:
            return read_meta(f, path)
    except FileLocked:
        raise
    except (StoreError, OSError):
        return None


def _merged_from(meta) -> list[dict] | None:
    """What a complete merged result file records of its inputs (a list of {path, shard, run_id, ...}), or
    None if `meta` is not of such a file."""
    if meta is None or meta.status != "complete" or "merged_from" not in meta.attrs:
        return None
    try:
        recorded = json.loads(meta.attrs["merged_from"])
    except (TypeError, ValueError):
        return None
    if not (isinstance(recorded, list) and recorded and all(isinstance(r, dict) for r in recorded)):
        return None
    return recorded


def _merged_in(output: str, shard_dir: str) -> bool:
    """Whether `output` is a complete merge of result files of `shard_dir` that are all still there, the
    same runs (run ids): a rerun of a finished cluster command then finds its merge done."""
    top = os.path.realpath(shard_dir)
    recorded = _merged_from(_meta_or_none(output)) or []
    for r in recorded:
        p = str(r.get("path"))
        if os.path.commonpath([os.path.realpath(os.path.dirname(os.path.abspath(p))), top]) != top:
            return False
        shard = _meta_or_none(p)
        if shard is None or str(shard.attrs.get("run_id")) != str(r.get("run_id")):
            return False
    return bool(recorded)


def _is_merge_of(output: str, metas, config: dict) -> bool:
    """Whether `output` is a complete merge of exactly the runs `metas` (the same run ids, which a rerun
    of a shard changes) of `config`: a rerun of a finished merge then keeps it."""
    meta = _meta_or_none(output)
    recorded = _merged_from(meta)
    if recorded is None:
        return False
    ids = sorted(str(m.attrs.get("run_id")) for m in metas)
    if "None" in ids or sorted(str(r.get("run_id")) for r in recorded) != ids:
        return False
    return not diff_keys(meta.config, config)


def _attrs_of(obj, ignore) -> dict:
    out = {}
    for k, v in obj.attrs.items():
        if k in ignore:
            continue
        out[k] = v.tobytes() if isinstance(v, np.ndarray) else v
    return out


def diff_files(path_a, path_b, *, ignore=PROVENANCE_ATTRS) -> list[str]:
    """Differences between two result files, dataset by dataset: values (bitwise), dtype, shape, chunking,
    filters, and all attributes except the provenance ones. Empty list = same results."""
    diffs = []
    with open_h5(path_a) as fa, open_h5(path_b) as fb:
        def walk(a, b, where):
            ra, rb = _attrs_of(a, ignore if where == "/" else ()), _attrs_of(b, ignore if where == "/" else ())
            for k in sorted(set(ra) | set(rb)):
                if k not in ra or k not in rb or not np.array_equal(np.asarray(ra[k]), np.asarray(rb[k])):
                    diffs.append(f"{where} attribute {k}")
            if isinstance(a, h5py.Dataset) or isinstance(b, h5py.Dataset):
                if not (isinstance(a, h5py.Dataset) and isinstance(b, h5py.Dataset)):
                    diffs.append(f"{where}: dataset vs group")
                    return
                for prop in ("dtype", "shape", "maxshape", "chunks", "compression", "compression_opts",
                             "shuffle", "fletcher32", "fillvalue"):
                    if getattr(a, prop) != getattr(b, prop):
                        diffs.append(f"{where}: {prop} {getattr(a, prop)} != {getattr(b, prop)}")
                if a.shape == b.shape and a.dtype == b.dtype and a[()].tobytes() != b[()].tobytes():
                    diffs.append(f"{where}: values differ")
                return
            for k in sorted(set(a) | set(b)):
                if k not in a or k not in b:
                    diffs.append(f"{where.rstrip('/')}/{k}: only in one file")
                else:
                    walk(a[k], b[k], f"{where.rstrip('/')}/{k}")
        walk(fa, fb, "/")
    return diffs

