"""The Dask backend (engine/cluster/dask.py, `badminima dask`): shards as tasks on a real Dask cluster.

A LocalCluster run (with a partial shard left by an interrupted run) merges to a file bit-identical
to a one-process run; a rerun runs nothing; shard files of another run are refused; and a separately
started scheduler and workers (what dask-jobqueue starts on a cluster) run the shards through
`--scheduler FILE`.  The CLI runs as a subprocess, as a user runs it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import pytest
from click.testing import CliRunner

from badminima.cli import main

from badminima.engine.cluster.dask import DaskJob, _last_error
from badminima.engine.cluster.shards import default_exe, shard_status
from badminima.engine.store import diff_files
from conftest import interrupt_shard

pytest.importorskip("distributed")

RUN = ["train", "--dataset", "xor", "-n", "400", "--steps", "200"]


def badminima(*args, timeout=300):
    return subprocess.run([*default_exe(), *args], capture_output=True, text=True, timeout=timeout)


def reap(proc, grace=30):
    """End a test's subprocess on every path, a failed test's too: one left running would raise a
    ResourceWarning in whichever later test the garbage collector happens to free it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The one-process run the sharded runs must reproduce bit for bit."""
    out = tmp_path_factory.mktemp("single") / "single.h5"
    p = badminima(*RUN, "-q", "-o", str(out))
    assert p.returncode == 0, p.stderr
    return str(out)


def test_job_validation_and_task_command(tmp_path):
    job = DaskJob(run=tuple(RUN), shards=12, outdir=str(tmp_path), threads=2,
                  warmup=("train", "-o", "/x/warmup.h5"), exe=("bm",)).validate()
    assert job.command(11) == ["bm", *RUN, "--shard", "11/12", "-o", str(tmp_path / "shard-0011.h5"), "-q"]
    assert job.env()["NUMBA_NUM_THREADS"] == "2" and job.warmup_file() == "/x/warmup.h5"
    assert DaskJob(run=tuple(RUN), shards=1, outdir="d", warmup=("compile",)).warmup_file() is None
    for bad in ({"shards": 0}, {"workers": 0}, {"threads": 0}):
        with pytest.raises(ValueError, match="must be >= 1"):
            DaskJob(**{"run": tuple(RUN), "shards": 2, "outdir": "d", "warmup": (), **bad}).validate()


def test_local_cluster_resumes_a_partial_shard_and_merges_to_the_one_process_run(tmp_path, single, monkeypatch):
    shards = tmp_path / "shards"
    interrupt_shard(monkeypatch, RUN, "3/4", shards / "shard-0003.h5")
    assert shard_status(str(shards), 4).shards[3].state == "partial"

    merged = tmp_path / "merged.h5"
    t0 = time.monotonic()
    p = badminima("dask", *RUN, "--shards", "4", "--workers", "2", "--out-dir", str(shards), "--merge", str(merged))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "4 of 4 shards to run on 2 worker(s)" in p.stderr and "4 complete; 400 of 400 networks" in p.stdout
    assert diff_files(single, str(merged)) == []
    with h5py.File(shards / "shard-0003.h5") as f:
        assert f.attrs["command"] == "interrupted-by-test"      # resumed, not recomputed
    for i in range(4):
        assert "exit status 0" in (shards / "logs" / f"shard-{i}.out").read_text()
    print(f"\nDask: 4 shards on a 2-worker LocalCluster incl. warm-up and merge in {time.monotonic() - t0:.1f} s",
          file=sys.stderr)

    # a rerun runs nothing; another run's configuration or shard count in the same --dir is refused
    # (and --workers beyond the cores is clamped to them, with a note: one process per core at most)
    p = badminima("dask", *RUN, "--shards", "4", "--workers", "999", "--out-dir", str(shards))
    assert p.returncode == 0 and "all 4 shards are complete" in p.stderr
    assert "note: --workers 999 x --threads 1 is more than the" in p.stderr, p.stderr
    before = merged.read_bytes()            # and with --merge it keeps the finished merge
    p = badminima("dask", *RUN, "--shards", "4", "--workers", "1", "--out-dir", str(shards), "--merge", str(merged))
    assert p.returncode == 0 and "reusing" in p.stderr and merged.read_bytes() == before, p.stderr
    p = badminima("dask", *RUN[:-1], "300", "--shards", "4", "--workers", "1", "--out-dir", str(shards))
    assert p.returncode == 1 and "holds shards of another run" in p.stderr and "steps" in p.stderr
    assert "Traceback" not in p.stderr
    p = badminima("dask", *RUN, "--shards", "5", "--workers", "1", "--out-dir", str(shards))
    assert p.returncode == 1 and "--shards 5, but its files are shards of 4" in p.stderr


def test_external_scheduler_from_a_scheduler_file(tmp_path, single):
    """A scheduler and workers started on their own, as dask-jobqueue starts them on a cluster."""
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                               str(sched_file), "--port", "0", "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        for _ in range(300):
            if sched_file.exists() and json.loads(sched_file.read_text() or "{}").get("address"):
                break
            time.sleep(0.1)
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                       str(sched_file), "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        merged = tmp_path / "merged.h5"
        p = badminima("dask", *RUN, "--shards", "3", "--scheduler", str(sched_file), "--out-dir",
                      str(tmp_path / "shards"), "--merge", str(merged), "-q")
        assert p.returncode == 0, p.stdout + p.stderr
        assert diff_files(single, str(merged)) == []

        # Ctrl-C: a running Dask task cannot be cancelled, so the tasks must stop their shards themselves
        long_dir = tmp_path / "long"
        run = subprocess.Popen([*default_exe(), "dask", "train", "--dataset", "xor", "-n", "1000000", "--steps",
                                "20000", "--shards", "4", "--scheduler", str(sched_file), "--out-dir", str(long_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               # Ctrl-C's default action, even where the suite runs as a background job
                               # (which starts with SIGINT ignored, and a child inherits that)
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                               start_new_session=True)
        procs.append(run)
        deadline = time.monotonic() + 120
        while len(list(long_dir.glob("shard-*.h5.part"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        # as a terminal sends it: to the whole process group, the LocalCluster's workers included (one
        # killed by it left the client waiting out its stop timeout, 120 s)
        t0 = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=120)
        assert run.returncode == 130 and "interrupted; committed results are kept" in err, err
        assert time.monotonic() - t0 < 60 and "Traceback" not in err, err
        time.sleep(1)
        left = subprocess.run(["pgrep", "-f", str(long_dir)], capture_output=True, text=True).stdout.split()
        assert left == [], "shard processes still running after Ctrl-C"
        st = shard_status(str(long_dir), 4)
        assert [s.state for s in st.shards[:2]] == ["partial", "partial"] and st.rows < 1000000
    finally:
        for pr in reversed(procs):
            reap(pr)


@pytest.mark.parametrize("args, msg", [
    (["--shards", "4", "--workers", "0"], "--workers must be >= 1"),
    (["--shards", "4", "--threads", "0"], "--threads must be >= 1"),
    (["--shards", "100"], "per task; give each task at least 32"),
    (["--shards", "2", "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout", "1"], "no Dask scheduler at tcp://127.0.0.1:9"),
    (["--shards", "2", "--scheduler", "{tmp}/missing.json"], "no scheduler file"),
    (["--shards", "2", "--scheduler", ""], "--scheduler is empty"),
    (["--shards", "2", "--scheduler", "tcp://256.1.1.1:x"], "then a port number in 0-65535"),
    (["--shards", "2", "--scheduler", "{tmp}/afile"], "is not a Dask scheduler file"),
    (["--shards", "2", "--scheduler", "tcp://127.0.0.1:9", "--workers", "2"], "--workers sizes a LocalCluster"),
    (["--shards", "2", "--out-dir", "{tmp}/afile"], "cannot use --out-dir"),
    (["--shards", "2", "--numba-cache", "{tmp}/afile"], "--numba-cache"),
    (["--shards", "2", "--merge", "{tmp}/afile"], "exists; use --force"),
    (["--shards", "2", "--merge", "{tmp}/afile/m.h5"], "cannot write --merge"),
    (["--shards", "2", "--merge", "{tmp}/d/m.h5"], "is inside --out-dir"),
    (["--shards", "2", "--workers", "1", "--exe", "{tmp}/no-such-badminima"], "cannot start"),
    (["--shards", "2", "--merge", "{tmp}", "--force"], "is a directory"),
    (["--shards", "2", "--out-dir", "{tmp}/link", "--merge", "{tmp}/real/m.h5"], "is inside --out-dir"),
])
def test_dask_command_refusals(tmp_path, args, msg):
    (tmp_path / "afile").write_text("not json")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out-dir" not in args:
        args += ["--out-dir", str(tmp_path / "d")]
    p = badminima("dask", *RUN, *args, timeout=120)
    assert p.returncode in (1, 2) and msg in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 1 or "--merge" not in args or "cannot start" in msg     # an output's refusal: 1
    assert p.stderr.strip().splitlines()[-1].startswith("error:")
    assert (tmp_path / "afile").read_text() == "not json"      # never overwritten
    if msg.startswith("--") or "--merge" in args:   # an option refused: before --out-dir is made
        assert not (tmp_path / "d").exists()


def test_run_options_that_every_task_would_write_are_refused(tmp_path):
    for cmd in (["dask", "table1", "-n", "400", "--json", "t.json", "--shards", "2"],
                ["slurm", "table1", "-n", "400", "--json", "t.json", "--shards", "2", "--script", str(tmp_path / "j.sh")]):
        r = CliRunner().invoke(main, cmd)
        assert r.exit_code == 2 and "must not set --json" in r.output, r.output


def test_task_failure_quotes_the_last_invocation_only(tmp_path):
    log = tmp_path / "shard-0.out"
    log.write_text("$ bm one\nerror: stale\nexit status 2\n$ bm two\nsomething\nexit status 1\n")
    assert _last_error(str(log)) == ""
    log.write_text(log.read_text() + "$ bm three\nerror: fresh\n")
    assert _last_error(str(log)) == "error: fresh"


def test_ctrl_c_at_the_terminal_stops_a_local_cluster_run_at_once(tmp_path):
    """A terminal's Ctrl-C reaches the whole process group: the LocalCluster's workers ignore it (a
    worker it killed never answered the stop event, and the client waited 120 s, printing Dask's
    tracebacks); the client stops the tasks, whose commands commit and exit."""
    out = tmp_path / "D"
    run = subprocess.Popen([*default_exe(), "dask", "train", "--dataset", "xor", "-n", "400000", "--steps", "3000",
                            "--shards", "2", "--workers", "1", "--out-dir", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("shard-*.h5.part")) and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.2)
        t0 = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)
        _, err = run.communicate(timeout=120)
        assert run.returncode == 130 and "interrupted; committed results are kept" in err, err
        assert time.monotonic() - t0 < 30 and "Traceback" not in err, err
        assert shard_status(str(out), 2).rows < 400000
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()


def test_a_failed_task_whose_shard_another_process_completed_is_a_note(tmp_path):
    """Two runs into one --out-dir: the loser's task for a shard fails (the other holds its lock) while
    the winner completes it.  That is reported as a note, not as a failed shard; a failed task whose
    shard is not complete is still a failure, quoting its log."""
    from distributed import Client
    from badminima.engine.cluster.dask import _follow
    out = tmp_path / "shards"
    p = badminima(*RUN, "--shard", "0/2", "-q", "-o", str(out / "shard-0000.h5"))
    assert p.returncode == 0, p.stderr
    (out / "logs").mkdir()
    (out / "logs" / "shard-1.out").write_text("$ bm\nerror: shard-0001.h5 is being written by another process\n")
    job = DaskJob(run=tuple(RUN), shards=2, outdir=str(out), warmup=()).validate()
    said = []
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
        futures = {client.submit(int, "1", pure=False): 0, client.submit(int, "1", pure=False): 1}
        _follow(job, futures, 0, None, False, said.append)
    assert said[0] == "note: shard task(s) [0] stopped here, but another process completed their shards", said
    assert said[1].startswith("1 shard task(s) failed: [1]; shard 1: error: shard-0001.h5 is being written"), said


def test_a_stop_signal_during_the_clusters_close_still_closes_it():
    """A stop signal that arrives while the client closes is held off until the cluster is closed too,
    then raised (a close cut short left Dask waiting for its workers: 10 s in its exit hook, or for
    ever in a second close)."""
    from distributed import Client, LocalCluster
    from badminima.engine.cluster.dask import _close
    from badminima.engine.train import interrupt
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=40)
    client = Client(cluster)
    real = client.close

    def signalled(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)                 # the handler runs here: recorded, not raised
        return real(*a, **k)
    client.close = signalled
    old = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    interrupt.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            _close(client, cluster)
        assert client.status == "closed" and cluster.status.name == "closed"
        assert interrupt.signal_received() == signal.SIGTERM
    finally:
        client.close = real             # else the client's finalizer, later, signals whatever test runs then
        signal.signal(signal.SIGTERM, old)
        interrupt.clear()
        real()
        cluster.close()
