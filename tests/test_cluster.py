"""Cluster runs (engine/cluster/shards.py and slurm.py, `badminima status` / `badminima slurm`).

Unit tests: array splitting, the generated script (syntax, #SBATCH lines, submission with a stub
sbatch, the array task with a stub badminima, the requeue trap), status of synthetic shard files.
Then the real thing, against the SLURM that .ci/slurm-up.sh starts: a 4-task array of a small run,
waited for, merged, and compared bit for bit with a one-process run; skipped, with the reason, when no
SLURM answers here.
"""
from __future__ import annotations

import hashlib
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
from click.testing import CliRunner

from badminima.cli import main
from badminima.engine.cluster.shards import default_exe, format_ranges, shard_file, shard_status
from badminima.engine.cluster.slurm import SlurmJob, array_parts, parse_time_limit, render_script, write_script
from badminima.engine.store import NotMergeable, RunWriter, StoreError, diff_files
from conftest import interrupt_shard

RUN = ["train", "--dataset", "xor", "-n", "400", "--steps", "200"]


def cli(args, **kw):
    return CliRunner().invoke(main, args, catch_exceptions=False, **kw)


# ----------------------------------------------------------------------------------------------
# pure helpers

def test_array_parts_respect_max_array_size():
    assert array_parts(4, 1001) == [(0, 4)]
    assert array_parts(1001, 1001) == [(0, 1001)]
    assert array_parts(2500, 1000) == [(0, 1000), (1000, 1000), (2000, 500)]
    assert array_parts(3, 1) == [(0, 1), (1, 1), (2, 1)]
    for n, m in [(1, 1), (7, 3), (10_000, 1001), (1001, 1000)]:
        parts = array_parts(n, m)
        covered = [off + t for off, size in parts for t in range(size)]
        assert covered == list(range(n)) and all(0 < size <= m for _, size in parts)
    with pytest.raises(ValueError):
        array_parts(0, 10)


def test_time_limits_and_ranges():
    assert parse_time_limit("01:00:00") == 3600
    assert parse_time_limit("30") == 1800
    assert parse_time_limit("10:30") == 630
    assert parse_time_limit("2-00") == 2 * 86400
    assert parse_time_limit("1-02:03:04") == 86400 + 7384
    with pytest.raises(ValueError):
        parse_time_limit("1h")
    assert format_ranges([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert shard_file("d", 3, 4) == os.path.join("d", "shard-0003.h5")
    assert shard_file("d", 12345, 20000) == os.path.join("d", "shard-12345.h5")


# ----------------------------------------------------------------------------------------------
# the generated script

def make_job(tmp_path, **kw):
    base = dict(run=RUN, shards=4, outdir=str(tmp_path / "out"), throttle=2, time_limit="00:30:00",
                cpus_per_task=3, partition="short", max_array_size=1001, numba_cache_dir=str(tmp_path / "nc"),
                warmup=["compile", "--hidden", "2"], exe=[str(tmp_path / "bin" / "badminima")])
    base.update(kw)
    return SlurmJob(**base)


def sbatch_lines(text):
    return [ln[len("#SBATCH "):] for ln in text.splitlines() if ln.startswith("#SBATCH ")]


def test_script_header(tmp_path):
    text = render_script(make_job(tmp_path))
    sb = sbatch_lines(text)
    assert "--array=0-3%2" in sb and "--time=00:30:00" in sb and "--cpus-per-task=3" in sb
    assert "--partition=short" in sb and "--requeue" in sb and "--ntasks=1" in sb
    assert "--signal=B:USR1@120" in sb and "--open-mode=append" in sb
    assert f'export NUMBA_CACHE_DIR={tmp_path / "nc"}' in text
    assert 'export NUMBA_NUM_THREADS="${SLURM_CPUS_PER_TASK:-3}"' in text
    assert "RUN=(train --dataset xor -n 400 --steps 200)" in text
    assert subprocess.run(["bash", "-n", "/dev/stdin"], input=text, text=True).returncode == 0
    # no throttle, no partition, a limit too short for the requeue signal, extra options
    sb = sbatch_lines(render_script(make_job(tmp_path, throttle=None, partition=None, time_limit="3",
                                             sbatch_extra=["--account=abc"])))
    assert "--array=0-3" in sb and not any(s.startswith(("--partition", "--signal")) for s in sb)
    assert "--account=abc" in sb
    # arrays over MaxArraySize: the first part in the header, the parts with offsets in the submitter
    text = render_script(make_job(tmp_path, shards=2500, max_array_size=1000, throttle=50))
    assert "--array=0-999%50" in sbatch_lines(text)
    assert "for part in 0:1000 1000:1000 2000:500; do" in text
    for bad in [dict(shards=0), dict(throttle=0), dict(cpus_per_task=0), dict(time_limit="soon"),
                dict(job_name="a b"), dict(sbatch_extra=["account=x"])]:
        with pytest.raises(ValueError):
            render_script(make_job(tmp_path, **bad))


# Three option sets and the scripts they gave when the script was still built line by line in Python:
# several array parts with throttle, partition, warm-up, requeue signal and extra options (the script
# itself is tests/data/slurm_job.sh); one part without warm-up or requeue; several parts from
# --max-array-size with a limit too short to requeue (their SHA-256).
GOLDEN_RUN = ["train", "--dataset", "/data/my set.csv", "-H", "3", "-n", "1000000", "--steps", "10000"]
GOLDEN = [
    (dict(run=GOLDEN_RUN, shards=2500, outdir="/scratch/u/xor-h2", time_limit="02:00:00", cpus_per_task=4,
          throttle=50, partition="short", max_array_size=1000, max_array_source="scontrol show config",
          exe=["/opt/venv/bin/badminima"], job_name="badminima-train",
          warmup=[*GOLDEN_RUN, "--shard", "0/1000000", "-o", "/scratch/u/xor-h2/warmup/warmup.h5", "--force",
                  "--no-resume", "-q"], sbatch_extra=["--account=abc", "--mem=4G"]), "xor-h2.sh", "slurm_job.sh"),
    (dict(run=["table1", "-n", "4000", "--steps", "500"], shards=4, outdir="/scratch/u/t1", time_limit="30",
          numba_cache_dir="/scratch/u/nc", exe=["/usr/bin/python3", "-m", "badminima.cli"], warmup=None,
          requeue=False, max_array_size=1001), "job.sh",
     "b2e8cd2a2be16414c35962aff13ed80033604323ed2d39131a4fdef2b402af47"),
    (dict(run=["search", "--budget", "64"], shards=5, outdir="/scratch/u/s", time_limit="3", max_array_size=2,
          exe=["badminima"], warmup=["compile"], job_name="s1"), "c.sh",
     "e70007d7b2bbf5c7a5effc3ccf3c3f6ec57c305a3a7307d1c8b112896cc36c5c"),
]


@pytest.mark.parametrize("options, script_name, want", GOLDEN)
def test_script_equals_the_captured_one(options, script_name, want, monkeypatch):
    monkeypatch.setattr("badminima.engine.cluster.slurm._generated_at", lambda: "2024-05-06T07:08:09+00:00")
    text = render_script(SlurmJob(**options), script_name).encode()
    if want.endswith(".sh"):
        assert text == (Path(__file__).parent / "data" / want).read_bytes()
    else:
        assert hashlib.sha256(text).hexdigest() == want


def stub(path: Path, body: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def scrubbed_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "BADMINIMA_", "SBATCH_"))}
    env["PATH"] = f"{tmp_path / 'bin'}:{env['PATH']}"
    env.update(extra)
    return env


def test_submitter_chains_warmup_and_offset_parts(tmp_path):
    """`bash job.sh` with a stub sbatch: warm-up first, every part depends on it (afterok) and on the
    previous part (afterany, so the throttle holds over all parts), offsets 0, 3, 6."""
    log = tmp_path / "sbatch.log"
    stub(tmp_path / "bin" / "sbatch", f'n=$(( $(wc -l < {log} 2>/dev/null || echo 0) + 100 ))\n'
                                      f'echo "$* ENV:$BADMINIMA_SHARD_OFFSET" >> {log}\necho "$n;cluster"\n')
    script = write_script(make_job(tmp_path, shards=7, max_array_size=3), str(tmp_path / "job.sh"))
    p = subprocess.run(["bash", script], capture_output=True, text=True, env=scrubbed_env(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "submitted jobs: 100 101 102 103"
    calls = log.read_text().splitlines()
    assert len(calls) == 4
    assert "--array=0 " in calls[0] and "BADMINIMA_ROLE=warmup" in calls[0] and "--cpus-per-task=3" in calls[0]
    assert "--array=0-2%2 --dependency=afterok:100 " in calls[1] and "BADMINIMA_SHARD_OFFSET=0" in calls[1]
    assert "--array=0-2%2 --dependency=afterok:100,afterany:101 " in calls[2] and "OFFSET=3" in calls[2]
    assert "--array=0-0%2 --dependency=afterok:100,afterany:102 " in calls[3] and "OFFSET=6" in calls[3]
    assert all(c.split()[-2].endswith("job.sh") for c in calls)
    assert (tmp_path / "out" / "logs").is_dir() and (tmp_path / "nc").is_dir()
    # without a warm-up the parts have no afterok dependency
    log.unlink()
    script = write_script(make_job(tmp_path, warmup=None), str(tmp_path / "job2.sh"))
    assert subprocess.run(["bash", script], capture_output=True, env=scrubbed_env(tmp_path)).returncode == 0
    assert "--dependency" not in log.read_text()


def test_task_runs_its_shard_and_skips_complete_ones(tmp_path):
    """The array task with a stub badminima: shard = task id + offset, its own file, thread count."""
    log = tmp_path / "calls.log"
    stub(tmp_path / "bin" / "badminima", f'echo "$NUMBA_NUM_THREADS $NUMBA_CACHE_DIR $*" >> {log}\n')
    script = write_script(make_job(tmp_path, shards=7, max_array_size=3), str(tmp_path / "job.sh"))
    env = scrubbed_env(tmp_path, SLURM_JOB_ID="5", SLURM_ARRAY_JOB_ID="5", SLURM_ARRAY_TASK_ID="1",
                       SLURM_CPUS_PER_TASK="3", BADMINIMA_ROLE="task", BADMINIMA_SHARD_OFFSET="3")
    p = subprocess.run(["bash", script], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    out = tmp_path / "out"
    assert log.read_text().split("\n")[0] == (f"3 {tmp_path / 'nc'} train --dataset xor -n 400 --steps 200 "
                                              f"--shard 4/7 -o {out / 'shard-0004.h5'}")
    out.mkdir()
    (out / "shard-0004.h5").write_bytes(b"")     # a complete shard: the rerun exits at once
    log.unlink()
    p = subprocess.run(["bash", script], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "is complete" in p.stdout and not log.exists()
    # the warm-up role runs the warm-up arguments
    p = subprocess.run(["bash", script], capture_output=True, text=True,
                       env={**env, "BADMINIMA_ROLE": "warmup"})
    assert p.returncode == 0 and log.read_text().strip().endswith("compile --hidden 2")
    # the run's exit status is the task's
    stub(tmp_path / "bin" / "badminima", "exit 3\n")
    p = subprocess.run(["bash", script], capture_output=True, text=True, env={**env, "SLURM_ARRAY_TASK_ID": "0"})
    assert p.returncode == 3


@pytest.mark.parametrize("restarts, requeued", [("0", True), ("3", False)])
def test_time_limit_signal_requeues_the_task(tmp_path, restarts, requeued):
    """SLURM sends USR1 to the batch shell before the time limit (--signal=B:USR1@...): the task asks
    scontrol to requeue it (at most MAX_REQUEUES times); the run keeps going until SLURM stops it."""
    log = tmp_path / "scontrol.log"
    stub(tmp_path / "bin" / "scontrol", f'echo "$*" >> {log}\n')
    stub(tmp_path / "bin" / "badminima", "sleep 1.5\nexit 0\n")
    script = write_script(make_job(tmp_path), str(tmp_path / "job.sh"))
    env = scrubbed_env(tmp_path, SLURM_JOB_ID="9", SLURM_ARRAY_JOB_ID="8", SLURM_ARRAY_TASK_ID="2",
                       BADMINIMA_ROLE="task", SLURM_RESTART_COUNT=restarts)
    proc = subprocess.Popen(["bash", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(0.7)
        proc.send_signal(signal.SIGUSR1)
        out, _ = proc.communicate(timeout=30)
    finally:            # never left running (a later test would get its ResourceWarning)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert (log.read_text().strip() == "requeue 8_2") if requeued else not log.exists()
    assert "time limit near" in out and "exit status 0" in out


# ----------------------------------------------------------------------------------------------
# status of synthetic shard files

CFG = {"command": "train", "hidden": 2, "seed": 1}
CELLS = {"main": ({"hidden": 2}, 1000, 9), "b": ({"hidden": 3}, 500, 13)}


def write_shard(path, index, count, stop_after=None, cells=CELLS, cfg=CFG):
    """Synthetic results of shard index/count; stop_after rows per cell leaves an unfinished .part."""
    with RunWriter.open(str(path), {**cfg, "shard": {"index": index, "count": count}}, cells, command="pytest") as w:
        for name, (_, _, P) in cells.items():
            lo, hi = w.range(name)
            hi = hi if stop_after is None else min(hi, lo + stop_after)
            lo = w.next_index(name)                             # resumes after committed rows
            n = hi - lo
            if n:
                w.append(name, {"index": np.arange(lo, hi, dtype=np.int64), "outcome": np.zeros(n, np.int8),
                                "loss": np.ones(n), "accuracy": np.ones(n), "grad_norm": np.zeros(n),
                                "steps": np.ones(n, np.int64), "min_eig": np.full(n, np.nan),
                                "weights": np.zeros((n, P))})


def test_status_complete_partial_missing(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    write_shard(d / "shard-0000.h5", 0, 5)
    write_shard(d / "shard-0002.h5", 2, 5, stop_after=40)       # killed: 40 rows per cell committed
    write_shard(d / "shard-0004.h5", 4, 5)
    (d / "shard-0004.h5.part").write_bytes(b"leftover")         # a final file hides its leftover .part
    st = shard_status(str(d))
    assert st.count == 5 and not st.complete
    assert [s.state for s in st.shards] == ["complete", "missing", "partial", "missing", "complete"]
    assert st.shards[2].rows == 80 and st.shards[2].total == 300 and st.shards[2].path.endswith(".part")
    assert st.rows == 300 + 80 + 300 and st.total is None
    text = st.format()
    assert "2 complete, 1 partial, 2 missing" in text and "missing   shards 1,3" in text
    assert "80/300 networks committed" in text
    r = cli(["status", str(d), "--check"])
    assert r.exit_code == 1 and "2 complete" in r.output
    # the rest arrives: complete, mergeable
    for i in (1, 3):
        write_shard(d / f"shard-000{i}.h5", i, 5)
    write_shard(d / "shard-0002.h5", 2, 5)                      # resumes the .part
    st = shard_status(str(d))
    assert st.complete and st.total == 1500 and st.rows == 1500
    r = cli(["status", str(d), "--check"])
    assert r.exit_code == 0 and "5 complete; 1500 of 1500 networks (100.0%)" in r.output
    assert f"badminima merge '{d / 'shard-*.h5'}' -o OUT.h5" in r.output      # the command it suggests works
    assert cli(["merge", str(d / "shard-*.h5"), "-o", str(tmp_path / "m.h5")]).exit_code == 0
    # shards named otherwise: the suggestion names the files, since shard-*.h5 would match none
    other = tmp_path / "other"
    other.mkdir()
    for i in (0, 1):
        write_shard(other / f"s{i}.h5", i, 2)
    r = cli(["status", str(other)])
    assert f"badminima merge {other / 's0.h5'} {other / 's1.h5'} -o OUT.h5" in r.output, r.output
    # a glob selects files; N given when no file exists yet
    st = shard_status(str(d / "shard-000[01].h5"))
    assert [s.state for s in st.shards] == ["complete", "complete", "missing", "missing", "missing"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert shard_status(str(empty)).count is None
    assert [s.state for s in shard_status(str(empty), 3).shards] == ["missing"] * 3


def test_status_refuses_mixed_runs(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    write_shard(d / "shard-0000.h5", 0, 2)
    write_shard(d / "other.h5", 1, 2, cfg={**CFG, "seed": 2})
    with pytest.raises(NotMergeable, match="not shards of one run"):
        shard_status(str(d))
    (d / "other.h5").unlink()
    write_shard(d / "x.h5", 1, 3)
    with pytest.raises(NotMergeable, match="different counts"):
        shard_status(str(d))
    (d / "x.h5").unlink()
    with pytest.raises(StoreError, match="--shards 3, but its files are shards of 2"):
        shard_status(str(d), 3)
    write_shard(d / "dup.h5", 0, 2)
    with pytest.raises(NotMergeable, match="two files"):
        shard_status(str(d))
    r = CliRunner().invoke(main, ["status", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "no such file" in r.output


# ----------------------------------------------------------------------------------------------
# the slurm command (writing only)

def test_sbatch_lines_quote_values_with_blanks_quotes_and_hashes():
    from badminima.engine.cluster.slurm import _directive
    assert _directive("--time=10") == "#SBATCH --time=10" and _directive("-A abc") == "#SBATCH -A abc"
    assert _directive("--output=/t/a b/x.out") == '#SBATCH --output="/t/a b/x.out"'
    assert _directive("--mail-user me you") == '#SBATCH --mail-user "me you"'
    assert _directive('--comment=a"b#c\\d') == '#SBATCH --comment="a\\"b#c\\\\d"'



def test_a_percent_in_the_default_out_dir_names_the_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["slurm", *RUN, "--shards", "4", "--max-array-size", "10", "--script", "j%1.sh"])
    assert r.exit_code == 2 and "the default --out-dir runs/j%1 (from --script) would hold a %" in r.output
    assert not (tmp_path / "j%1.sh").exists()


def test_slurm_command_writes_a_script(tmp_path):
    script = tmp_path / "job.sh"
    r = cli(["slurm", *RUN, "--shards", "4", "--throttle", "2", "--max-array-size", "3", "--cpus-per-task", "2",
             "--time", "00:20:00", "--out-dir", str(tmp_path / "d"), "--script", str(script)])
    assert r.exit_code == 0, r.output
    assert "2 array submissions" in r.output and os.access(script, os.X_OK)
    text = script.read_text()
    assert "--array=0-2%2" in sbatch_lines(text) and "for part in 0:3 3:1; do" in text
    # the warm-up is the run itself on one network (exactly the task's kernels and argument types)
    assert f"--shard 0/400 -o {tmp_path / 'd' / 'warmup' / 'warmup.h5'} --force --no-resume -q" in text
    assert f"NUMBA_CACHE_DIR={tmp_path / 'd' / 'numba-cache'}" in text
    assert "--out-dir" not in text.split("RUN=(")[1].split(")")[0]
    # an --exe this machine does not have is written as given, with a note (the nodes may have it)
    r = cli(["slurm", *RUN, "--shards", "4", "--exe", str(tmp_path / "nodes-only" / "badminima"),
             "--out-dir", str(tmp_path / "d2"), "--script", str(tmp_path / "e.sh")])
    assert r.exit_code == 0 and "is not found on this machine; the cluster's nodes must have it" in r.stderr
    assert str(tmp_path / "nodes-only" / "badminima") in (tmp_path / "e.sh").read_text()


@pytest.mark.parametrize("args, msg", [
    (["show", "x.h5"], "not a badminima run command"),
    ([*RUN, "--bogus", "1"], "No such option"),
    ([*RUN, "--shard", "1/4"], "must not set --shard"),
    ([*RUN, "--shards", "20"], "per task"),
    ([*RUN, "--time", "later"], "bad time limit"),
    ([*RUN, "--merge", "{tmp}/j.sh"], "exists; use --force"),
    ([*RUN, "--out-dir", "{tmp}/d", "--merge", "{tmp}/d/m.h5"], "is inside --out-dir"),
    ([*RUN, "--out-dir", "{tmp}/100%"], "reads a % in its log file names"),
])
def test_slurm_command_refusals(tmp_path, args, msg):
    (tmp_path / "j.sh").write_text("an older script")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--shards" not in args:
        args = [*args, "--shards", "4"]
    r = CliRunner().invoke(main, ["slurm", *args, "--max-array-size", "10", "--script", str(tmp_path / "j.sh")])
    assert r.exit_code == (1 if "--merge" in args else 2) and msg in r.output, r.output     # 1: an output
    assert (tmp_path / "j.sh").read_text() == "an older script"       # refused before writing anything


@pytest.mark.parametrize("run, threads, accepted, per_thread", [
    (["train", "-n", "2000"], 1, True, 32),                          # float64: 32 lanes per SIMD block
    (["train", "-n", "2000", "--dtype", "float32"], 1, False, 64),    # float32: 64
    (["table1", "-n", "2000"], 1, False, 64),                        # table1 runs float32 by default
    (["table1", "-n", "3200"], 1, True, 64),
    (["table1", "-n", "3000", "--dtype", "float64"], 2, False, 32),
])
def test_slurm_command_wants_a_simd_block_per_thread_of_the_runs_dtype(tmp_path, run, threads, accepted, per_thread):
    r = CliRunner().invoke(main, ["slurm", *run, "--shards", "50", "--cpus-per-task", str(threads),
                                  "--max-array-size", "100", "--script", str(tmp_path / "j.sh")])
    assert (r.exit_code == 0) == accepted, r.output
    if not accepted:
        assert f"give each task at least {per_thread * threads} ({per_thread} per thread" in r.output


# ----------------------------------------------------------------------------------------------
# the real thing: a local SLURM (started by .ci/slurm-up.sh)

def slurm_reason() -> str | None:
    """None if a SLURM controller answers and its node can run jobs, else why not."""
    if not shutil.which("sinfo") or not shutil.which("sbatch"):
        return "SLURM is not installed (run .ci/slurm-up.sh as root)"
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return f"sinfo failed: {e}"
    if p.returncode != 0:
        return f"sinfo failed: {p.stderr.strip()[:200]} (run .ci/slurm-up.sh)"
    if not any(s.startswith(("idle", "mix", "alloc", "comp")) for s in p.stdout.split()):
        return f"no usable SLURM node (states: {p.stdout.split()})"
    return None


@pytest.fixture(scope="module")
def slurm(request):
    reason = slurm_reason()
    if reason:
        capman = request.config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled():      # shown even under -q and output capture
            print(f"\nSKIP real SLURM tests: {reason}", file=sys.stderr)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory):
    """One NUMBA_CACHE_DIR shared by the SLURM tests and their one-process reference runs."""
    return str(tmp_path_factory.mktemp("numba-cache"))


def one_process_run(tmp_path, cache, name="single.h5"):
    out = tmp_path / name
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    exe = default_exe()
    p = subprocess.run([*exe, *RUN, "-q", "-o", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    return str(out)


def test_slurm_array_merges_to_the_one_process_run(tmp_path, slurm, numba_cache):
    """A 4-task array (2 at a time) behind a warm-up job, waited for, merged: bit-identical to one process.
    The shards' folder and an extra option hold blanks, quotes and a #, which sbatch must read back."""
    t0 = time.monotonic()
    script, merged, shards = tmp_path / "job.sh", tmp_path / "merged.h5", tmp_path / "sh ards 'q' #1"
    r = cli(["slurm", *RUN, "--shards", "4", "--throttle", "2", "--time", "00:10:00", "--cpus-per-task", "1",
             "--out-dir", str(shards), "--numba-cache", numba_cache, "--job-name", "bm-test",
             "--sbatch", '--comment=a "b" c', "--script", str(script), "--merge", str(merged), "--poll", "1",
             "--timeout", "240"])
    t_slurm = time.monotonic() - t0
    logs = "\n".join(p.read_text() for p in sorted((shards / "logs").glob("*.out")))
    assert r.exit_code == 0, r.output + logs
    assert "4 complete; 400 of 400 networks" in r.output and "the merge of 4 shards" in r.output
    assert "--array=0-3%2" in sbatch_lines(script.read_text())
    assert logs.count("exit status 0") == 4
    single = one_process_run(tmp_path, numba_cache)
    assert diff_files(single, str(merged)) == []
    with h5py.File(merged) as f:
        assert "shard" not in f.attrs["config"] and f["cells/main/index"].shape == (400,)
    print(f"\nSLURM: 4-task array incl. warm-up compile, wait and merge in {t_slurm:.1f} s", file=sys.stderr)


def test_slurm_offsets_over_max_array_size_and_partial_shard_resumes(tmp_path, slurm, numba_cache, monkeypatch):
    """MaxArraySize 3 -> two submissions (offsets 0 and 3); shard 3 starts from a partial .part left by
    an interrupted run, which its task resumes (the file keeps the interrupted run's identity)."""
    shards = tmp_path / "shards"
    interrupt_shard(monkeypatch, RUN, "3/4", shards / "shard-0003.h5")
    st = shard_status(str(shards), 4)
    assert st.shards[3].state == "partial" and st.shards[3].rows == 40
    r = cli(["slurm", *RUN, "--shards", "4", "--max-array-size", "3", "--time", "00:10:00",
             "--out-dir", str(shards), "--numba-cache", numba_cache, "--job-name", "bm-test2",
             "--script", str(tmp_path / "job.sh"), "--merge", str(tmp_path / "merged.h5"), "--poll", "1", "--timeout", "240"])
    logs = "\n".join(p.read_text() for p in sorted((shards / "logs").glob("*.out")))
    assert r.exit_code == 0, r.output + logs
    assert "2 array submissions" in r.output
    with h5py.File(shards / "shard-0003.h5") as f:
        assert f.attrs["command"] == "interrupted-by-test"      # resumed, not recomputed
    single = one_process_run(tmp_path, numba_cache)
    assert diff_files(single, str(tmp_path / "merged.h5")) == []
