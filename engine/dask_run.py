"""Dask backend: the shards of a run as tasks on a Dask cluster (a LocalCluster here; on a cluster, any
running scheduler, e.g. one that dask-jobqueue started).

A task is exactly what a SLURM array task runs, ``badminima RUN --shard I/N -o DIR/shard-XXXX.h5``, in a
process of its own with ``NUMBA_NUM_THREADS`` threads: Numba owns the worker's cores, the shard file is
crash-safe and resumed when the run is repeated, and complete shards are not run again.  The warm-up
task (the run on one network per cell) also tells which run this is: shard files of another run in
DIR are refused before anything starts.  Merging the
shards gives the one-process result bit for bit (the shard machinery's guarantee, tested).
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass

from .cluster import ClusterError, RunStatus, default_exe, shard_file, shard_status
from .progress import Progress
from .store_read import StoreError, diff_keys, open_h5, read_meta


@dataclass(frozen=True)
class DaskJob:
    """A sharded run for Dask; validated by validate(), then trusted."""
    run: tuple[str, ...]                # the badminima run command: ("train", "--dataset", "xor", ...)
    shards: int
    outdir: str
    workers: int = 1                    # LocalCluster worker processes (ignored with a scheduler)
    threads: int = 1                    # Numba threads per task
    scheduler: str | None = None        # tcp://host:port, or the path of a scheduler file
    connect_timeout: float = 30.0       # seconds to wait for that scheduler
    numba_cache_dir: str | None = None  # NUMBA_CACHE_DIR of the tasks (None: the workers' own)
    warmup: tuple[str, ...] | None = None   # badminima arguments of the warm-up task (None: none)
    exe: tuple[str, ...] = ()           # how tasks start badminima (empty: default_exe())

    def validate(self) -> "DaskJob":
        for name, v in (("--shards", self.shards), ("--workers", self.workers), ("--threads", self.threads)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if not self.connect_timeout > 0:
            raise ValueError(f"--connect-timeout must be positive, got {self.connect_timeout}")
        if not self.run:
            raise ValueError("no run command")
        return self

    def command(self, index: int) -> list[str]:
        """The task of shard `index`."""
        exe = list(self.exe) or default_exe()
        return [*exe, *self.run, "--shard", f"{index}/{self.shards}", "-o",
                shard_file(self.outdir, index, self.shards), "-q"]

    def warmup_file(self) -> str | None:
        """The result file the warm-up task writes (its -o argument; None for `compile`)."""
        w = list(self.warmup or ())
        return w[w.index("-o") + 1] if "-o" in w else None

    def env(self) -> dict:
        extra = {"NUMBA_NUM_THREADS": str(self.threads)}
        if self.numba_cache_dir:
            extra["NUMBA_CACHE_DIR"] = os.path.abspath(self.numba_cache_dir)
        return extra


def _die_with_parent():
    """In the task's child process: SIGINT when the worker process dies (Linux), so a shard that loses
    its worker stops like an interrupted run, keeping its committed chunks, instead of running on."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGINT)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_task(cmd: list[str], env_extra: dict, log: str) -> int:
    """One task on a worker: the command in a child process, its output appended to `log`; exit code."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n# on {socket.gethostname()} (pid {os.getpid()}), {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **env_extra},
                             preexec_fn=_die_with_parent)
        try:
            code = p.wait()
        except BaseException:
            p.send_signal(signal.SIGINT)
            p.wait()
            raise
        fh.write(f"exit status {code} after {time.monotonic() - t0:.1f} s\n")
    return code


def check_same_run(outdir: str, shards: int, reference: str) -> RunStatus:
    """The shard status of DIR, refusing shard files of another run than `reference` (a file of this run)."""
    st = shard_status(outdir, shards)
    seen = [s.path for s in st.shards if s.state in ("complete", "partial")]
    if seen:
        metas = []
        for p in (reference, seen[0]):
            with open_h5(p) as f:
                metas.append(read_meta(f, p))
        d = diff_keys(metas[0].identity(), metas[1].identity())
        if d:
            raise StoreError(f"{outdir} holds shards of another run (differing keys: {', '.join(d)}); "
                             f"use another --dir")
    return st


def _client(job: DaskJob):
    """A distributed.Client: of the given scheduler, else of a new LocalCluster (processes, 1 thread each)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("the Dask backend needs dask.distributed: pip install 'badminima[dask]'") from None
    if job.scheduler:
        kw = {"scheduler_file": job.scheduler} if os.path.exists(job.scheduler) else {"address": job.scheduler}
        try:
            return Client(timeout=job.connect_timeout, **kw), None
        except (OSError, TimeoutError, ValueError) as e:
            raise ClusterError(f"no Dask scheduler at {job.scheduler}: {e}") from None
    cluster = LocalCluster(n_workers=job.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40)
    return Client(cluster), cluster


def run(job: DaskJob, echo=None, progress: bool = True) -> RunStatus:
    """Run the shards that are not complete (after the warm-up task); then the run's shard status.

    Failed shards are reported (logs in DIR/logs/); rerunning resumes them.
    """
    os.makedirs(job.outdir, exist_ok=True)
    logs = os.path.join(job.outdir, "logs")
    say = echo or (lambda s: None)
    st = shard_status(job.outdir, job.shards)       # refuses a mix of runs or of shard counts at once
    client, cluster = _client(job)
    tag = uuid.uuid4().hex[:8]      # task keys unique to this invocation: a shared scheduler reuses equal keys
    try:
        if job.warmup:
            exe = list(job.exe) or default_exe()
            t0 = time.monotonic()
            code = client.submit(run_task, [*exe, *job.warmup], job.env(), os.path.join(logs, "warmup.out"),
                                 key=f"badminima-warmup-{tag}", pure=False).result()
            if code != 0:
                raise ClusterError(f"the warm-up task failed (exit {code}); see {os.path.join(logs, 'warmup.out')}")
            say(f"warm-up compile done in {time.monotonic() - t0:.1f} s")
            if job.warmup_file():
                st = check_same_run(job.outdir, job.shards, job.warmup_file())
        todo = [s.index for s in st.shards if s.state != "complete"]
        if not todo:
            say(f"all {job.shards} shards are complete")
            return st
        say(f"{len(todo)} of {job.shards} shards to run on {len(client.scheduler_info()['workers'])} worker(s)")
        futures = {client.submit(run_task, job.command(i), job.env(),
                                 os.path.join(logs, f"shard-{i}.out"), key=f"badminima-shard-{i}-{tag}", pure=False): i
                   for i in todo}
        from distributed import as_completed
        bar = Progress(len(todo), "shards", enabled=progress)
        failed = []
        for fut in as_completed(futures):
            if fut.status != "finished" or fut.result() != 0:
                failed.append(futures[fut])
            bar.update(1)
        bar.close()
        if failed:
            say(f"{len(failed)} shard task(s) failed: {sorted(failed)}; logs in {logs}")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return shard_status(job.outdir, job.shards)
