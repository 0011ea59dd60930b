"""Tests of the streaming HDF5 result store (engine/store/) with synthetic chunks (no kernels)."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from badminima.engine.core.outcomes import name_map_attr
from badminima.engine.store import (NotMergeable, RunComplete, RunWriter, StoreError, diff_files, merge, open_results,
                              parse_shard, shard_range, show)

CFG = {"dataset_fingerprint": "xor-4", "hidden": 2, "seed": 7, "networks": 600, "lr": 0.5}
CELLS = {"main": ({"lr": 0.5, "d": 2}, 600, 9), "wide": ({"lr": 0.1, "d": 2}, 333, 17)}


def make_cell(name, n_total, P, init=False, seed=0):
    """Deterministic synthetic results for every network index of a cell."""
    rng = np.random.default_rng([seed, sum(map(ord, name)), n_total, P])
    d = {"index": np.arange(n_total, dtype=np.int64),
         "outcome": rng.integers(0, 7, n_total).astype(np.int8),
         "loss": rng.random(n_total), "accuracy": rng.random(n_total),
         "grad_norm": rng.exponential(size=n_total),
         "steps": rng.integers(1, 10**6, n_total),
         "min_eig": np.where(rng.random(n_total) < 0.3, np.nan, rng.standard_normal(n_total)),
         "weights": rng.standard_normal((n_total, P))}
    if init:
        d["init_weights"] = rng.standard_normal((n_total, P))
    return d


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def sl(data, lo, hi):
    return {k: v[lo:hi] for k, v in data.items()}


def write_run(path, config=CFG, cells=CELLS, sizes=(97,), stop_after=None, init=False, **kw):
    """Write (part of) a run with chunks cycling through `sizes`; stop_after rows per cell -> close unfinished."""
    with RunWriter.open(path, config, cells, command="pytest", init_weights=init, **kw) as w:
        for name, (_, n_total, P) in cells.items():
            data = make_cell(name, n_total, P, init)
            k = 0
            start, stop = w.range(name)
            limit = stop if stop_after is None else min(stop, start + stop_after)
            while w.next_index(name) < limit:
                lo = w.next_index(name)
                hi = min(limit, lo + sizes[k % len(sizes)])
                k += 1
                w.append(name, sl(data, lo, hi))
        finished = w.complete
    return finished


# ----------------------------------------------------------------------------------------------

def test_roundtrip(tmp_path):
    p = str(tmp_path / "r.h5")
    assert write_run(p, init=True)
    assert os.path.exists(p) and not os.path.exists(p + ".part") and not os.path.exists(p + ".lock")
    res = open_results(p)
    assert res.config == CFG and res.cells == ["main", "wide"] and res.status == ["complete"]
    for name, (cc, n_total, P) in CELLS.items():
        want = make_cell(name, n_total, P, init=True)
        got = res.cell(name)
        assert set(got) == set(want)
        for k in want:
            assert got[k].dtype == want[k].dtype and got[k].tobytes() == want[k].tobytes(), k
        codes, cnt = np.unique(want["outcome"], return_counts=True)
        c = res.counts(name)
        assert sum(c.values()) == n_total
        assert all(c[name_] == n for name_, n in zip([res_name(x) for x in codes], cnt))
        assert res.cell_config(name) == cc and res.complete(name)
        assert res.table(name)["loss"].tobytes() == want["loss"].tobytes()
    # plain h5py, no badminima code
    with h5py.File(p, "r") as f:
        assert f.attrs["format"] == "badminima-results" and f.attrs["schema_version"] == 2
        assert json.loads(f.attrs["config"]) == CFG and f.attrs["seed"] == 7
        for k in ("badminima_version", "numba_version", "numpy_version", "h5py_version", "created", "host",
                  "command"):
            assert k in f.attrs
        o = f["cells/main/outcome"]
        assert o.attrs["names"] == name_map_attr() and o.compression == "gzip" and o.maxshape == (None,)
        assert f["cells/main/weights"].shape == (600, 9) and f["cells/main"].attrs["n_rows"] == 600
    text = show(p)
    assert "cell main: 600 of 600" in text and "local_minimum" in text and '"hidden": 2' in text


def res_name(code):
    from badminima.engine.core.outcomes import NAMES
    return NAMES[int(code)]


def test_resume_equals_uninterrupted(tmp_path):
    a, b = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_run(a, sizes=(100,))
    assert not write_run(b, sizes=(13, 50), stop_after=210)       # closed cleanly, unfinished
    assert os.path.exists(b + ".part") and not os.path.exists(b)
    part = open_results(b + ".part")                                  # an in-progress file reads too
    assert part.n_rows("main") == 210 and part.status == ["in_progress"]
    assert "in progress (420 of 933 networks committed)" in show(b + ".part")
    with pytest.raises(StoreError, match="nothing to resume"):
        RunWriter.open(str(tmp_path / "c.h5"), CFG, CELLS, resume=True)
    with pytest.raises(StoreError, match="interrupted run"):
        RunWriter.open(b, CFG, CELLS, resume=False)
    with RunWriter.open(b, CFG, CELLS, resume=True) as w:
        assert w.resumed and w.done("main") == 210 and w.next_index("wide") == 210
        assert sum(w.counts("main").values()) == 210
    assert write_run(b, sizes=(7, 301, 64))
    assert diff_files(a, b) == []


def test_exception_keeps_part_and_resumes(tmp_path):
    a, b = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_run(a)
    data = make_cell("main", 600, 9)
    with pytest.raises(RuntimeError):
        with RunWriter.open(b, CFG, CELLS) as w:
            w.append("main", sl(data, 0, 100))
            raise RuntimeError("training crashed")
    with RunWriter.open(b, CFG, CELLS) as w:
        assert w.done("main") == 100
        with pytest.raises(StoreError, match="consecutive indices starting at 100"):
            w.append("main", sl(data, 50, 150))
        with pytest.raises(StoreError, match="dtype float32"):
            bad = sl(data, 100, 150)
            bad["loss"] = bad["loss"].astype(np.float32)
            w.append("main", bad)
        with pytest.raises(StoreError, match=r"shape \(50, 8\)"):
            bad = sl(data, 100, 150)
            bad["weights"] = bad["weights"][:, :8]
            w.append("main", bad)
        with pytest.raises(StoreError, match="missing \\['steps'\\]"):
            w.append("main", {k: v for k, v in sl(data, 100, 150).items() if k != "steps"})
        with pytest.raises(StoreError, match=r"the chunk.s outcome of row 100 is 7, which is no outcome code"):
            bad = sl(data, 100, 150)
            bad["outcome"] = np.full(50, 7, np.int8)
            w.append("main", bad)
        with pytest.raises(StoreError, match="beyond this run's range"):
            w.append("main", sl(make_cell("main", 700, 9), 100, 700))
        with pytest.raises(StoreError, match="another process"):
            RunWriter.open(b, CFG, CELLS)
        with pytest.raises(StoreError, match="cannot finish"):
            w.finish()
        assert w.done("main") == 100
    write_run(b)
    assert diff_files(a, b) == []


def test_different_config_refused(tmp_path):
    p = str(tmp_path / "r.h5")
    write_run(p, stop_after=50)
    cfg = dict(CFG, hidden=3, lr=0.25)
    cells = dict(CELLS, main=(CELLS["main"][0], 601, 9))
    with pytest.raises(StoreError) as e:
        RunWriter.open(p, cfg, cells)
    msg = str(e.value)
    assert "\n" not in msg and "different configuration" in msg
    assert "hidden" in msg and "lr" in msg and "cells.main.n_total" in msg and "seed" not in msg
    with pytest.raises(StoreError, match="fields"):
        RunWriter.open(p, CFG, CELLS, init_weights=True)
    with pytest.raises(StoreError, match="shard"):
        RunWriter.open(p, dict(CFG, shard={"index": 0, "count": 2}), CELLS)
    with RunWriter.open(p, cfg, cells, force=True) as w:                # --force discards the old .part
        assert not w.resumed and w.done("main") == 0


def test_no_overwrite_without_force(tmp_path):
    p = str(tmp_path / "r.h5")
    write_run(p)
    before = read_bytes(p)
    with pytest.raises(RunComplete, match=r"r\.h5 already holds this finished run"):     # reuse it
        RunWriter.open(p, CFG, CELLS)
    cfg = dict(CFG, seed=8)
    write_run(p, config=cfg, force=True, stop_after=100)                # interrupted forced rerun ...
    assert read_bytes(p) == before                               # ... the old file is untouched
    with pytest.raises(StoreError, match=r"different configuration \(differing keys: seed\)"):
        RunWriter.open(p, cfg, CELLS)
    write_run(p, config=cfg, force=True)
    assert open_results(p).config["seed"] == 8


READER = ("import sys, time, h5py; f = h5py.File(sys.argv[1], 'r', swmr=True); print('open', flush=True); "
          "time.sleep(float(sys.argv[2]))")


def test_a_resuming_writer_waits_for_a_reader_holding_the_part(tmp_path, monkeypatch, capsys):
    """HDF5 locks a file while a reader holds it open, so a shard task resuming its .part met the lock of
    the cluster command polling the shard files (`status`), under load often enough to fail a SLURM
    test: the writer waits for the lock (LOCK_WAIT), says so once it has waited LOCK_NOTICE, and says in
    one line when the lock never goes."""
    from badminima.engine.store import read as store_read
    p = str(tmp_path / "r.h5")
    assert not write_run(p, stop_after=100)
    monkeypatch.setattr(store_read, "LOCK_NOTICE", 0.2)
    for hold, wait in ((1.0, None), (60.0, 0.5)):
        monkeypatch.setattr(store_read, "LOCK_WAIT", wait or store_read.LOCK_WAIT)
        reader = subprocess.Popen([sys.executable, "-c", READER, p + ".part", str(hold)], stdout=subprocess.PIPE)
        try:
            assert reader.stdout.readline().strip() == b"open"
            if wait is None:                                    # the reader lets go after 1 s
                t0 = time.monotonic()
                with RunWriter.open(p, CFG, CELLS) as w:
                    assert w.resumed and w.done("main") == 100
                assert time.monotonic() - t0 >= 0.5
                err = capsys.readouterr().err
                assert err.count("waiting for") == 1 and "locked by another process" in err
            else:                                               # it holds on: one line, nothing changed
                with pytest.raises(StoreError, match="stays locked by another process"):
                    RunWriter.open(p, CFG, CELLS)
                assert not os.path.exists(p + ".lock")
        finally:
            reader.kill()
            reader.communicate()
    assert write_run(p)


def test_leftover_part_after_finish(tmp_path):
    """A finish() killed between publishing the file and removing the .part: the rerun cleans up."""
    p = str(tmp_path / "r.h5")
    assert not write_run(p, stop_after=599)
    w = RunWriter.open(p, CFG, CELLS)
    for name, (_, n, P) in CELLS.items():
        w.append(name, sl(make_cell(name, n, P), w.next_index(name), n))
    w._close_file()
    shutil.copy(p + ".part", str(tmp_path / "keep"))
    w._f = h5py.File(p + ".part", "r+", libver="latest")  # reopen the same file to finish normally
    w._f.swmr_mode = True
    w.finish()
    shutil.copy(str(tmp_path / "keep"), p + ".part")
    with pytest.raises(RunComplete):                    # the finished file is this run: reused
        RunWriter.open(p, CFG, CELLS)
    assert not os.path.exists(p + ".part")


def test_corrupt_and_truncated(tmp_path):
    p = str(tmp_path / "r.h5")
    write_run(p)
    size = os.path.getsize(p)
    t = str(tmp_path / "t.h5")
    write_bytes(t, read_bytes(p)[: size // 2])
    for bad in (t, str(tmp_path / "junk.h5"), str(tmp_path / "empty.h5"), str(tmp_path / "missing.h5")):
        if bad.endswith("junk.h5"):
            write_bytes(bad, os.urandom(5000))
        if bad.endswith("empty.h5"):
            write_bytes(bad, b"")
        with pytest.raises(StoreError) as e:
            open_results(bad)
        assert "\n" not in str(e.value) and bad in str(e.value)
    with pytest.raises(StoreError, match="truncated or corrupt"):
        open_results(t)
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(StoreError, match="not a badminima results file"):
        open_results(other)
    # flip bytes inside the (checksummed) weights chunks
    c = str(tmp_path / "c.h5")
    shutil.copy(p, c)
    with h5py.File(c, "r") as f:
        off = f["cells/main/weights"].id.get_chunk_info(0).byte_offset
    with open(c, "r+b") as f:
        f.seek(off + 100)
        f.write(b"\xff" * 64)
    with pytest.raises(StoreError, match="corrupt data in /cells/main/weights"):
        open_results(c).cell("main")
    # a corrupt .part is refused by the writer, and discarded with force
    q = str(tmp_path / "q.h5")
    shutil.copy(t, q + ".part")
    with pytest.raises(StoreError, match="use --force to start over"):
        RunWriter.open(q, CFG, CELLS)
    assert write_run(q, force=True)


def test_shard_helpers():
    assert parse_shard("1/3") == {"index": 1, "count": 3}
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(StoreError):
            parse_shard(bad)
    for n in (0, 1, 5, 333, 600):
        ranges = [shard_range(n, i, 4) for i in range(4)]
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(ranges[i][1] == ranges[i + 1][0] for i in range(3))


def test_merge_equals_single_run(tmp_path, capsys):
    single = str(tmp_path / "single.h5")
    write_run(single, sizes=(64,))
    shards = []
    for i, sizes in enumerate([(10,), (333,), (41, 5)]):
        s = str(tmp_path / f"s{i}.h5")
        write_run(s, config=dict(CFG, shard={"index": i, "count": 3}), sizes=sizes)
        shards.append(s)
    out = str(tmp_path / "merged.h5")
    merge(list(reversed(shards)), out, command="badminima merge")
    assert diff_files(single, out) == []
    with h5py.File(out, "r") as f:
        assert len(json.loads(f.attrs["merged_from"])) == 3
    # a rerun of the finished merge keeps it; shards rerun since (new run ids), or another file there, refuse
    before = read_bytes(out)
    assert merge(shards, out) == out and read_bytes(out) == before
    assert "reusing" in capsys.readouterr().err
    write_run(shards[1], config=dict(CFG, shard={"index": 1, "count": 3}), sizes=(333,), force=True)
    with pytest.raises(StoreError, match="not the merge of these files; use --force"):
        merge(shards, out)
    with pytest.raises(StoreError, match="not the merge of these files; use --force"):
        merge(shards, single)
    assert read_bytes(out) == before
    merge(str(tmp_path / "s[0-9].h5"), out, force=True)
    assert diff_files(single, out) == []
    res = open_results(shards)  # the read API merges shards on the fly
    ref = open_results(single)
    assert res.config == ref.config and res.counts("wide") == ref.counts("wide") and res.complete("main")
    assert all(res.cell("main")[k].tobytes() == ref.cell("main")[k].tobytes() for k in ref.fields)
    assert not open_results(shards[:2]).complete("main")


def two_shards_merged(tmp_path):
    """Two shards of a 100-network run and their merge m.h5: (shard paths, merged path)."""
    shards = []
    for i in range(2):
        shards.append(str(tmp_path / f"s{i}.h5"))
        write_run(shards[-1], config=dict(CFG, shard={"index": i, "count": 2}), sizes=(50,))
    out = str(tmp_path / "m.h5")
    merge(shards, out)
    return shards, out


def test_a_merge_rerun_on_a_tampered_or_locked_output(tmp_path, monkeypatch):
    """An output whose merged_from is not what merge writes is not taken for a merge (one line, no
    traceback); one another process holds open for longer than an open waits is reported as locked, not
    as another file (which would invite --force on a good merge)."""
    from badminima.engine.store import read as store_read
    shards, out = two_shards_merged(tmp_path)
    for k, bad in enumerate(("not json", "[1, 2]", '{"a": 1}', "[]")):
        t = str(tmp_path / f"t{k}.h5")
        shutil.copy(out, t)
        with h5py.File(t, "r+") as f:
            f.attrs["merged_from"] = bad
        with pytest.raises(StoreError, match="not the merge of these files"):
            merge(shards, t)
    monkeypatch.setattr(store_read, "LOCK_WAIT", 0.5)
    holder = subprocess.Popen([sys.executable, "-c", READER.replace("'r', swmr=True", "'r+'"), out, "60"],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"open"
        with pytest.raises(StoreError, match="stays locked by another process"):
            merge(shards, out)
    finally:
        holder.kill()
        holder.communicate()
    assert merge(shards, out) == out


def test_cluster_merge_output_checked_up_front_against_its_shards(tmp_path):
    """dask/slurm --merge OUT: an existing OUT passes the up-front check only while it is the merge of the
    shards in --out-dir as they are (same runs); shards rerun or moved away are refused before any runs."""
    from badminima.engine.store import check_merge_output
    d = tmp_path / "shards"
    d.mkdir()
    shards = [str(d / f"shard-{i}.h5") for i in range(2)]
    for i, s in enumerate(shards):
        write_run(s, config=dict(CFG, shard={"index": i, "count": 2}), sizes=(50,))
    out = str(tmp_path / "m.h5")
    merge(shards, out)
    check_merge_output(out, force=False, shard_dir=str(d), option="--merge")
    with pytest.raises(StoreError, match="exists; use --force"):
        check_merge_output(out, force=False, shard_dir=str(tmp_path / "other"), option="--merge")
    write_run(shards[1], config=dict(CFG, shard={"index": 1, "count": 2}), sizes=(50,), force=True)
    with pytest.raises(StoreError, match="exists; use --force"):
        check_merge_output(out, force=False, shard_dir=str(d), option="--merge")
    merge(shards, out, force=True)
    check_merge_output(out, force=False, shard_dir=str(d), option="--merge")
    d.rename(tmp_path / "moved")
    with pytest.raises(StoreError, match="exists; use --force"):
        check_merge_output(out, force=False, shard_dir=str(d), option="--merge")


def test_a_ctrl_c_during_merge_leaves_the_old_output(tmp_path):
    """A SIGINT whose KeyboardInterrupt h5py swallowed (recorded by engine/train/interrupt.py) stops a
    merge before it replaces anything: a --force merge keeps the old output, and leaves no temporary."""
    from badminima.engine.train import interrupt
    shards, out = two_shards_merged(tmp_path)
    before = read_bytes(out)
    interrupt._received.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            merge(shards, out, force=True)
    finally:
        interrupt.clear()
    assert read_bytes(out) == before and sorted(os.listdir(tmp_path)) == ["m.h5", "s0.h5", "s1.h5"]


def test_large_cells_raw_chunk_copy(tmp_path):
    """Cells spanning several chunks: finish and merge copy whole chunks as stored where the chunk grids
    line up (3 shards of 49152 rows: boundaries at multiples of the 4096-row chunks) and through NumPy
    where they do not (5 shards: boundaries at 9830, 19660, ...)."""
    cells = {"big": ({"lr": 1.0}, 49152, 3)}
    single = str(tmp_path / "single.h5")
    write_run(single, cells=cells, sizes=(5000, 1))
    assert open_results(single).cell("big")["weights"].tobytes() == make_cell("big", 49152, 3)["weights"].tobytes()
    for count in (3, 5):
        shards = []
        for i in range(count):
            s = str(tmp_path / f"s{count}_{i}.h5")
            write_run(s, config=dict(CFG, shard={"index": i, "count": count}), cells=cells, sizes=(7000,))
            shards.append(s)
        out = str(tmp_path / f"m{count}.h5")
        merge(shards, out)
        assert diff_files(single, out) == []


def test_chunk_height_follows_the_append_size(tmp_path):
    """Appends of 2^18 rows and more (a GPU run's) get taller chunks; the finished file, its merge and a
    rebuilt .part keep the chunking of the file they copy, and hold the same values as a run appended
    in small pieces."""
    from badminima.engine.store.write import chunk_rows
    assert [chunk_rows(1, False, a) for a in (0, 16384, 2 ** 18, 2 ** 19, 2 ** 22)] == [4096, 4096, 8192, 16384, 16384]
    assert [chunk_rows(9, True, a) for a in (0, 2 ** 19)] == [1024, 4096] and chunk_rows(400, True, 2 ** 19) == 128
    cells = {"big": ({"lr": 1.0}, 40000, 9)}
    small, tall = str(tmp_path / "small.h5"), str(tmp_path / "tall.h5")
    write_run(small, cells=cells, sizes=(5000,))
    write_run(tall, cells=cells, sizes=(20000,), append_rows=2 ** 19)
    heights = lambda p: {k: f["cells/big"][k].chunks[0] for f in [h5py.File(p, "r")] for k in ("loss", "weights")}
    assert heights(small) == {"loss": 4096, "weights": 1024} and heights(tall) == {"loss": 16384, "weights": 4096}
    a, b = open_results(small).cell("big"), open_results(tall).cell("big")
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    shards = []
    for i in range(2):
        shards.append(str(tmp_path / f"t{i}.h5"))
        write_run(shards[-1], config=dict(CFG, shard={"index": i, "count": 2}), cells=cells, sizes=(20000,),
                  append_rows=2 ** 19)
    merge(shards, str(tmp_path / "m.h5"))
    assert diff_files(tall, str(tmp_path / "m.h5")) == []
    part = str(tmp_path / "p.h5")                 # a .part resumed after a killed writer is rebuilt alike
    write_run(part, cells=cells, sizes=(20000,), stop_after=20000, append_rows=2 ** 19)
    assert heights(part + ".part")["loss"] == 16384


def _fletcher32_reference(data: bytes) -> int:
    """HDF5's H5_checksum_fletcher32, line by line (360-word blocks, folded sums, odd last byte)."""
    sum1 = sum2 = 0
    n, i = len(data) // 2, 0
    while n:
        t = min(n, 360)
        n -= t
        for _ in range(t):
            sum1 += (data[i] << 8) | data[i + 1]
            i += 2
            sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    if len(data) % 2:
        sum1 += data[i] << 8
        sum2 += sum1
        sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
        sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    sum1 = (sum1 & 0xFFFF) + (sum1 >> 16)
    sum2 = (sum2 & 0xFFFF) + (sum2 >> 16)
    return (sum2 << 16) | sum1


@pytest.mark.parametrize("codec", ["isal", "zlib"])
def test_chunks_encoded_in_threads_are_hdf5s_own_bytes(tmp_path, codec):
    """encode.encode_chunk (shuffle, deflate, Fletcher-32 in Python threads) gives chunks HDF5 decodes to
    the data, for every dtype and shape of the schema, with either deflate (ISA-L's or zlib's), and with
    zlib HDF5's own bytes wherever Python's zlib compresses as HDF5's does; the checksum equals HDF5's
    algorithm on odd lengths and on sums that fold to 0xffff, and HDF5's stored checksums."""
    from badminima.engine.store import encode
    from badminima.engine.store.encode import encode_chunk, fletcher32
    from badminima.engine.store.write import GZIP_LEVEL
    if codec not in encode.CODECS:
        pytest.skip(f"{codec} is not installed")
    before = encode.codec()
    encode.use(codec)
    try:
        _check_encoded_chunks(tmp_path, codec, encode_chunk, fletcher32, GZIP_LEVEL)
    finally:
        encode.use(before)
    with pytest.raises(ValueError, match="not available"):
        encode.use("lz4")


def _check_encoded_chunks(tmp_path, codec, encode_chunk, fletcher32, GZIP_LEVEL):
    import zlib
    rng = np.random.default_rng(5)
    for data in (b"", b"\x01", b"\xff" * 7, b"\xff\xff" * 70000, rng.bytes(1001), rng.bytes(4096), bytes(10)):
        assert fletcher32(data) == _fletcher32_reference(data), len(data)

    def unshuffle(packed, dt, shape):
        raw = np.frombuffer(zlib.decompress(packed), np.uint8).reshape(np.dtype(dt).itemsize, -1)
        return np.ascontiguousarray(raw.T).view(dt).reshape(shape)
    with h5py.File(tmp_path / "h.h5", "w") as f:
        for k, (dt, tail, C) in enumerate([("f8", (9,), 1024), ("f8", (), 4096), ("i1", (), 4096), ("i8", (), 4096),
                                           ("f4", (29,), 512), ("f8", (), 64)]):
            a = (rng.standard_normal((3 * C,) + tail) * 10).astype(dt) if C != 64 else np.zeros(3 * C)
            ds = f.create_dataset(f"d{k}", data=a, chunks=(C,) + tail, compression="gzip", shuffle=True,
                                  compression_opts=GZIP_LEVEL, fletcher32=True)
            for c in range(3):
                rows = a[c * C:(c + 1) * C]
                mask, stored = ds.id.read_direct_chunk((c * C,) + (0,) * len(tail))
                mine = encode_chunk(rows, GZIP_LEVEL)
                assert mask == 0 and fletcher32(stored[:-4]) == int.from_bytes(stored[-4:], "little")
                assert fletcher32(mine[:-4]) == int.from_bytes(mine[-4:], "little")
                assert np.array_equal(unshuffle(mine[:-4], dt, rows.shape), rows)
                shuffled = zlib.decompress(stored[:-4])
                if codec == "zlib" and zlib.compress(shuffled, GZIP_LEVEL) == stored[:-4]:   # HDF5's deflate
                    assert mine == stored, (dt, tail, c)
                ds.id.write_direct_chunk((c * C,) + (0,) * len(tail), mine, 0)
            assert np.array_equal(ds[:], a), (dt, tail)         # HDF5 decodes the chunks encoded here
    for level in (0, 3, 6, 9):                  # ISA-L has levels 0-3; zlib deflates at the others
        blob = encode_chunk(np.arange(512.0), level)
        assert unshuffle(blob[:-4], "f8", (512,)).tolist() == list(range(512)), level


@pytest.mark.parametrize("codec", ["isal", "zlib"])
def test_appends_spanning_whole_chunks_store_them_directly(tmp_path, monkeypatch, codec):
    """Appends that fill chunks whole (stored with write_direct_chunk) and partly (through HDF5), crossing
    chunk boundaries in every way, interrupted and resumed, on 1 to 3 threads: the file reads back
    exactly, every chunk's checksum verified, and the chunks stored directly hold what HDF5 stores for
    the same rows (with zlib, the same bytes).  One thread encodes chunks itself with ISA-L and leaves
    them to HDF5 with zlib (as fast)."""
    import zlib
    from badminima.engine.store import encode, write
    if codec not in encode.CODECS:
        pytest.skip(f"{codec} is not installed")
    monkeypatch.setattr(encode, "_compress", encode._compress)      # restored after the test
    encode.use(codec)
    direct = []
    orig = encode.encode_chunk

    def counted(block, level):
        direct.append(block.shape)
        return orig(block, level)
    monkeypatch.setattr(encode, "encode_chunk", counted)
    cells = {"big": ({"lr": 1.0}, 30000, 9), "odd": ({"lr": 2.0}, 9000, 1)}
    p = str(tmp_path / "r.h5")
    assert not write_run(p, cells=cells, sizes=(9000,), stop_after=9000, threads=1)
    assert bool(direct) == (codec == "isal"), direct
    assert not write_run(p, cells=cells, sizes=(9000, 5000, 4096, 1), stop_after=14000, threads=2)
    assert direct, "no chunk was written whole"
    assert write_run(p, cells=cells, sizes=(8191, 3), threads=3)
    res = open_results(p)
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        for name, (_, n, P) in cells.items():
            want = make_cell(name, n, P)
            got = res.cell(name)
            for fld, arr in want.items():
                assert got[fld].tobytes() == arr.tobytes(), (name, fld)
            with h5py.File(p, "r") as g:
                for fld, arr in want.items():
                    ds = g[f"cells/{name}/{fld}"]
                    ref = f.create_dataset(f"{name}/{fld}", data=arr, chunks=ds.chunks, compression="gzip",
                                           compression_opts=write.GZIP_LEVEL, shuffle=True, fletcher32=True)
                    for c in range(0, n, ds.chunks[0]):
                        off = (c,) + (0,) * (ds.ndim - 1)
                        (m1, mine), (m2, hdf5s) = ds.id.read_direct_chunk(off), ref.id.read_direct_chunk(off)
                        assert m1 == m2 == 0 and encode.fletcher32(mine[:-4]) == int.from_bytes(mine[-4:], "little")
                        assert zlib.decompress(mine[:-4]) == zlib.decompress(hdf5s[:-4]), (name, fld, c)
                        if encode.codec() == "zlib":      # zlib's deflate: HDF5's own bytes
                            assert mine == hdf5s, (name, fld, c)


def test_merge_refuses_bad_shards(tmp_path):
    def shard(i, n, name=None, cfg=CFG):
        s = str(tmp_path / (name or f"s{i}of{n}.h5"))
        write_run(s, config=dict(cfg, shard={"index": i, "count": n}))
        return s
    s0, s1, s2 = shard(0, 3), shard(1, 3), shard(2, 3)
    out = str(tmp_path / "out.h5")
    with pytest.raises(NotMergeable, match=r"networks \[400, 600\) are in no input \(incomplete"):
        merge([s0, s1], out)
    with pytest.raises(NotMergeable, match=r"networks \[0, 200\) are in no input"):
        merge([s1, s2], out)
    dup = str(tmp_path / "dup.h5")
    shutil.copy(s1, dup)
    with pytest.raises(NotMergeable, match="overlap"):
        merge([s0, s1, dup, s2], out)
    with pytest.raises(NotMergeable, match="overlap"):
        merge([s0, shard(1, 2), s1, s2], out)
    with pytest.raises(NotMergeable, match="differing keys: seed"):
        merge([s0, s1, shard(2, 3, "x.h5", dict(CFG, seed=1))], out)
    unfinished = str(tmp_path / "u.h5")
    write_run(unfinished, config=dict(CFG, shard={"index": 2, "count": 3}), stop_after=5)
    with pytest.raises(NotMergeable, match="unfinished"):
        merge([s0, s1, unfinished + ".part"], out)
    with pytest.raises(NotMergeable, match="differ"):
        open_results([s0, str(tmp_path / "x.h5")])
    assert not os.path.exists(out) and not os.path.exists(out + ".tmp")


# ----------------------------------------------------------------------------------------------
# SIGKILL at random moments

WRITER = r"""
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_store_data import make_cell, CFG, KCELLS
from badminima.engine.store import RunWriter
path = sys.argv[1]
rng = np.random.default_rng()                      # chunk boundaries differ from attempt to attempt
print("START", flush=True)
with RunWriter.open(path, CFG, KCELLS, command="kill-test", init_weights=True, threads=2) as w:
    print("OPENED", "REBUILT" if w.rebuilt else "RESUMED" if w.resumed else "FRESH", flush=True)
    for name, (_, n_total, P) in KCELLS.items():
        data = make_cell(name, n_total, P, init=True)
        while w.remaining(name):
            lo = w.next_index(name)
            # now and then an append long enough to fill chunks whole (written directly, encoded in threads)
            hi = min(n_total, lo + int(rng.integers(1, 120) if rng.random() < 0.8 else rng.integers(500, 2100)))
            w.append(name, {k: v[lo:hi] for k, v in data.items()})
            print("COMMIT", name, hi, flush=True)
    print("FINISHING", flush=True)
    w.finish()
print("DONE", flush=True)
"""


def test_sigkill_resume(tmp_path):
    """SIGKILL a writer subprocess at random moments (while starting, opening/rebuilding, streaming, with
    some chunks written whole, and finishing), check after every kill that the .part opens and holds exactly a prefix of the reference
    rows, never fewer than before; resume until done; compare with an uninterrupted run."""
    src = read_bytes(__file__).decode()
    helpers = src[src.index("def make_cell"):src.index("def read_bytes(")]
    kcells = {"main": ({"lr": 0.5}, 2500, 9), "b": ({"lr": 0.1}, 1500, 17), "c": ({"lr": 0.2}, 800, 5)}
    (tmp_path / "test_store_data.py").write_text(
        "import numpy as np\n" + helpers + f"\nCFG = {CFG!r}\nKCELLS = {kcells!r}\n")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    ref = str(tmp_path / "ref.h5")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(script), ref], check=True, capture_output=True)
    t_full = time.perf_counter() - t0
    totals = {n: c[1] for n, c in kcells.items()}
    with h5py.File(ref, "r") as f:
        refdata = {n: {k: f[f"cells/{n}/{k}"][()] for k in f[f"cells/{n}"]} for n in kcells}

    def wait_for(proc, word, seen):
        while True:
            line = proc.stdout.readline()
            seen.append(line)
            if not line or line.startswith(word.encode()):
                return line

    rng = np.random.default_rng(12345)
    phases = dict.fromkeys(["starting", "opening", "streaming", "finishing"], 0)
    kills, rounds, partial, rebuilt = 0, 0, 0, 0
    # until enough kills in each phase and enough restarts that found a killed .part to rebuild (a
    # busy machine lands fewer kills there; `kills < 60` below bounds the loop)
    while kills < 12 or phases["streaming"] < 6 or rebuilt < 5:
        rounds += 1
        out = str(tmp_path / f"run{rounds}.h5")
        committed = dict.fromkeys(kcells, 0)
        while not os.path.exists(out):
            proc = subprocess.Popen([sys.executable, str(script), out], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            seen = []
            mode = rng.choice(["any", "opening", "streaming", "finishing"], p=[0.2, 0.2, 0.5, 0.1])
            if mode == "any":
                time.sleep(rng.uniform(0.0, 1.1 * t_full))
            elif mode == "opening":
                wait_for(proc, "START", seen)
                time.sleep(rng.uniform(0.0, 0.03))
            elif mode == "streaming":
                wait_for(proc, "OPENED", seen)
                time.sleep(rng.uniform(0.0, 0.7 * t_full))
            else:
                wait_for(proc, "FINISHING", seen)
                time.sleep(rng.uniform(0.0, 0.02))
            killed = proc.poll() is None
            if killed:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            so, se = proc.communicate()
            so = b"".join(seen) + so
            assert proc.returncode in (0, -signal.SIGKILL), se.decode()[-2000:]
            rebuilt += b"REBUILT" in so
            if killed:
                said = so.decode()
                phase = ("finishing" if "FINISHING" in said else "streaming" if "OPENED" in said
                         else "opening" if "START" in said else "starting")
                phases[phase] += 1
            if os.path.exists(out + ".part") and not os.path.exists(out):
                # the file a kill leaves behind opens, and its committed rows are exactly the reference's
                res = open_results(out + ".part")
                for n in kcells:
                    got = res.cell(n)
                    k = len(got["index"])
                    assert k >= committed[n], "a kill lost committed work"
                    committed[n] = k
                    partial += 0 < k < totals[n]
                    for fld, arr in got.items():
                        assert arr.tobytes() == refdata[n][fld][:k].tobytes(), (n, fld)
            assert kills < 60, f"{rebuilt} restarts rebuilt a killed .part in {kills} kills (phases {phases})"
        assert diff_files(ref, out) == [], f"round {rounds}"
        if os.path.exists(out + ".part"):
            # killed between publishing the file and removing its .part: the next open of the run (a
            # rerun) removes the leftover and reuses the file
            with pytest.raises(RunComplete):
                RunWriter.open(out, CFG, kcells, command="kill-test", init_weights=True)
        leftovers = [x for x in os.listdir(tmp_path) if x.startswith(f"run{rounds}.h5.")]
        # a kill between publishing the file and removing its lock file leaves the lock file behind:
        # harmless as long as nobody holds it (the lock is an flock, not the file's existence)
        for lock in [x for x in leftovers if x.endswith(".lock")]:
            fd = os.open(os.path.join(tmp_path, lock), os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
        assert [x for x in leftovers if not x.endswith(".lock")] == [], leftovers
    print(f"\nkill test: uninterrupted run {t_full:.2f}s; {kills} SIGKILLs in {rounds} rounds "
          f"(by phase: {phases}); {rebuilt} restarts rebuilt a killed .part; "
          f"{partial} cell snapshots with partially committed rows")


def test_results_refuse_a_file_replaced_by_another_run(tmp_path):
    """Results opened on a file read its rows later: if another run has replaced the file meanwhile,
    the read is refused rather than mixing that run's rows with the first one's metadata."""
    a, b = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    write_run(a)
    write_run(b, config=dict(CFG, seed=8))
    res = open_results(a)
    assert len(res.cell("main", ["index"])["index"]) > 0
    shutil.copy(b, a)
    with pytest.raises(StoreError, match="holds another run than when it was opened"):
        res.cell("main", ["index"])
    with pytest.raises(StoreError, match="holds another run"):
        res.code_counts("main", "outcome")
    assert open_results(a).config["seed"] == 8


@pytest.mark.parametrize("fld,row", [("weights", 0), ("weights", 4096), ("loss", 4096), ("index", 0), ("outcome", 4096)])
def test_a_damaged_chunk_of_a_part_or_shard_is_never_published(tmp_path, fld, row):
    """Finishing a run and merging copy whole chunks as stored, which HDF5 does not decode or check:
    a byte flipped inside a committed chunk of the .part (or of a shard) must stop the copy with one
    line, not give a finished file that every later read refuses.  The .part keeps its rows before the
    damaged chunk (the damaged chunk is replaced by a valid one), and the rerun computes the rest and
    finishes with every row right.  A damaged outcome chunk is found as the run resumes (it recounts
    the outcomes), the others as it finishes."""
    cells = {"big": ({"lr": 1.0}, 12000, 3)}
    p = str(tmp_path / "r.h5")
    assert not write_run(p, cells=cells, sizes=(4096,), stop_after=8192)
    keep = row                                  # chunks of 4096 rows in every field here
    _flip(p + ".part", f"cells/big/{fld}", row)
    end = 8191 if fld == "outcome" else 11999       # found on resuming (8192 rows committed), or finishing
    with pytest.raises(StoreError, match=rf"holds damaged data .*corrupt .*networks {keep}\.\.{end}\): "
                                         r"rerun the same command"):
        write_run(p, cells=cells, sizes=(4096,))
    assert not os.path.exists(p) and os.path.exists(p + ".part")
    with h5py.File(p + ".part", "r") as f:
        assert int(f["cells/big/_progress"][0]) == keep
    assert write_run(p, cells=cells, sizes=(4096,))
    got, want = open_results(p).cell("big"), make_cell("big", 12000, 3)
    for k in want:
        assert got[k].tobytes() == want[k].tobytes(), k
    if row or fld != "weights":
        return
    shards = []
    for i in range(2):
        s = str(tmp_path / f"s{i}.h5")
        write_run(s, config=dict(CFG, shard={"index": i, "count": 2}), cells=cells, sizes=(8192,))
        shards.append(s)
    with h5py.File(shards[0], "r") as f:
        off = f["cells/big/weights"].id.get_chunk_info(0).byte_offset
    with open(shards[0], "r+b") as f:
        f.seek(off + 200)
        f.write(b"\x00\x01")
    with pytest.raises(StoreError, match="corrupt data in /cells/big/weights"):
        merge(shards, str(tmp_path / "m.h5"))
    assert not os.path.exists(tmp_path / "m.h5")


def test_without_isal_the_writer_uses_zlib(tmp_path):
    """Where `isal` cannot be imported (a checkout run where it is not installed) the writer deflates with
    zlib: a chunk it encodes decodes through HDF5, and a run written on 1 and 2 threads reads back."""
    code = ("import sys; sys.modules['isal'] = None\n"
            f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "import numpy as np, h5py\n"
            "from badminima.engine.store import encode, open_results\n"
            "from test_store import make_cell, write_run\n"
            "assert encode.codec() == 'zlib' and encode.CODECS == ('zlib',), encode.CODECS\n"
            "cells = {'big': ({'lr': 1.0}, 30000, 9), 'odd': ({'lr': 2.0}, 9000, 1)}\n"
            "for t in (1, 2):\n"
            "    p = f'{sys.argv[1]}.{t}.h5'\n"
            "    assert write_run(p, cells=cells, sizes=(9000, 4096), threads=t)\n"
            "    for name, (_, n, P) in cells.items():\n"
            "        got, want = open_results(p).cell(name), make_cell(name, n, P)\n"
            "        assert all(got[k].tobytes() == want[k].tobytes() for k in want), (t, name)\n"
            "a = np.arange(8192.0)\n"
            "blob = encode.encode_chunk(a[:4096] * 2, 1)\n"
            "with h5py.File(sys.argv[1], 'w') as f:\n"
            "    ds = f.create_dataset('d', data=a, chunks=(4096,), compression='gzip', compression_opts=1,\n"
            "                          shuffle=True, fletcher32=True)\n"
            "    ds.id.write_direct_chunk((0,), blob, 0)\n"
            "    a[:4096] *= 2\n"
            "    assert np.array_equal(ds[:], a)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "z.h5")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.mark.parametrize("edit", ["width", "dtype", "columns", "0-d", "group", "big-endian"])
def test_a_field_of_the_wrong_shape_or_type_is_refused(tmp_path, edit):
    """A result file whose weights lost a column or changed type, whose scalar field grew columns, became
    a single value or a group (an edited or foreign file) is refused on open with one line naming the
    dataset, before any read; the same values stored big-endian are read as they are."""
    p = str(tmp_path / "r.h5")
    assert write_run(p)
    fld = "weights" if edit in ("width", "dtype") else "loss"
    with h5py.File(p, "r+") as f:
        a = f[f"cells/main/{fld}"][()]
        del f[f"cells/main/{fld}"]
        if edit == "group":
            f.create_group(f"cells/main/{fld}")
        else:
            a = {"width": lambda: a[:, :-1], "dtype": lambda: a.astype(np.float32),
                 "columns": lambda: np.stack([a, a], axis=1), "0-d": lambda: np.float64(1.0),
                 "big-endian": lambda: a.astype(">f8")}[edit]()
            f.create_dataset(f"cells/main/{fld}", data=a)
    if edit == "big-endian":
        assert np.array_equal(open_results(p).cell("main")["loss"], make_cell("main", 600, 9)["loss"])
        return
    what = "is not a dataset" if edit == "group" else "holds rows of"
    with pytest.raises(StoreError, match=rf"corrupt results file \(/cells/main/{fld} {what}"):
        open_results(p)


def _flip(path, dataset, row):
    """Flip two bytes inside the stored chunk of `dataset` that holds `row` (the file may be one a killed
    writer left open)."""
    with h5py.File(path, "r", swmr=True) as f:
        ds = f[dataset]
        off = ds.id.get_chunk_info_by_coord((row // ds.chunks[0] * ds.chunks[0],) + (0,) * (ds.ndim - 1)).byte_offset
    with open(path, "r+b") as f:
        f.seek(off + 100)
        b = f.read(2)
        f.seek(off + 100)
        f.write(bytes(x ^ 0x5A for x in b))


def test_damage_where_the_next_rows_go_is_cut_back_or_replaced(tmp_path):
    """A damaged chunk that the next append reads back -- the partly filled last committed one, or one
    past the committed rows -- would fail every rerun's first write; resuming checks those chunks: a
    damaged one holding committed rows cuts the .part back to its start (one line), one past them is
    replaced silently, and the reruns finish with every row right."""
    cells = {"big": ({"lr": 1.0}, 12000, 3)}
    p = str(tmp_path / "r.h5")
    assert not write_run(p, cells=cells, sizes=(5000,), stop_after=5000)      # rows 4096..4999 in a partial chunk
    _flip(p + ".part", "cells/big/loss", 4500)
    with pytest.raises(StoreError, match=r"holds damaged data \(a chunk the next rows go into\); .*networks "
                                         r"4096\.\.4999\): rerun the same command"):
        write_run(p, cells=cells, sizes=(5000,))
    with h5py.File(p + ".part", "r") as f:
        assert int(f["cells/big/_progress"][0]) == 4096 and f["cells/big/loss"].shape[0] >= 5000
    _flip(p + ".part", "cells/big/weights", 4500)              # past the committed rows now: replaced
    assert write_run(p, cells=cells, sizes=(5000,))
    got, want = open_results(p).cell("big"), make_cell("big", 12000, 3)
    for k in want:
        assert got[k].tobytes() == want[k].tobytes(), k


def test_damage_in_the_part_of_a_killed_writer_is_cut_back(tmp_path):
    """A writer killed with SIGKILL leaves its .part marked open; resuming copies its committed rows into
    a fresh one.  A damaged chunk among them stops that copy at the rows before it (one line), and the
    rerun finishes with every row right."""
    cells = {"big": ({"lr": 1.0}, 12000, 3)}
    p = str(tmp_path / "r.h5")
    code = (f"import os, signal, sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
            "from test_store import RunWriter, CFG, make_cell, sl\n"
            f"cells = {cells!r}\n"
            f"with RunWriter.open({p!r}, CFG, cells, command='pytest') as w:\n"
            "    data = make_cell('big', 12000, 3)\n"
            "    w.append('big', sl(data, 0, 8192))\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    _flip(p + ".part", "cells/big/weights", 5000)
    with pytest.raises(StoreError, match=r"holds damaged data \(found copying the rows of a killed writer\); .*"
                                         r"networks 4096\.\.8191\): rerun the same command"):
        write_run(p, cells=cells, sizes=(4096,))
    assert write_run(p, cells=cells, sizes=(4096,))
    got, want = open_results(p).cell("big"), make_cell("big", 12000, 3)
    for k in want:
        assert got[k].tobytes() == want[k].tobytes(), k


def test_damage_past_the_committed_rows_of_a_partly_filled_part_is_replaced(tmp_path):
    """Rows written past the last commit (a run stopped between writing and committing) are not results:
    a damaged chunk among them is replaced as the run resumes, with no line, however the committed
    rows end inside their chunk."""
    cells = {"big": ({"lr": 1.0}, 12000, 3)}
    p = str(tmp_path / "r.h5")
    assert not write_run(p, cells=cells, sizes=(9000,), stop_after=9000)
    with h5py.File(p + ".part", "r+") as f:
        done = f["cells/big/outcome"][:5000]        # rows 5000..8999 written but not committed
        f["cells/big/_progress"][:] = np.concatenate([[5000], np.bincount(done, minlength=7)])
    _flip(p + ".part", "cells/big/loss", 8500)
    assert write_run(p, cells=cells, sizes=(4000,))
    got, want = open_results(p).cell("big"), make_cell("big", 12000, 3)
    for k in want:
        assert got[k].tobytes() == want[k].tobytes(), k
