"""Dask backend: the shards of a run as tasks on a Dask cluster (a LocalCluster here; on a cluster, any
running scheduler, e.g. one that dask-jobqueue started).

A task is exactly what a SLURM array task runs, ``badminima RUN --shard I/N -o DIR/shard-XXXX.h5``, in a
process of its own with ``NUMBA_NUM_THREADS`` threads: Numba owns the worker's cores, the shard file is
crash-safe and resumed when the run is repeated, and complete shards are not run again.  A warm-up
task first runs the command on one network (or candidate) per cell: it compiles the kernels, and its
file is the run's identity, against which shard files already in DIR are checked before any shard
starts.  Merging the shards gives the one-process result bit for bit (the shard machinery's guarantee).
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass

from badminima.engine.cluster.shards import ClusterError, RunStatus, default_exe, shard_file, shard_status
from badminima.engine.train import interrupt
from badminima.engine.train.progress import Progress
from badminima.engine.store import StoreError, diff_keys, open_h5, read_meta

POLL = 5.0          # at least this many seconds between looks at the shard files (progress)
POLL_SHARE = 0.05   # ... and at most this share of the time spent reading them (thousands of shards)


@dataclass(frozen=True)
class DaskJob:
    """A sharded run for Dask; validated by validate(), then trusted."""
    run: tuple[str, ...]                # the badminima run command: ("train", "--dataset", "xor", ...)
    shards: int
    outdir: str                         # absolute: the workers may run elsewhere
    warmup: tuple[str, ...]             # badminima arguments of the warm-up task (shards.warmup_args)
    workers: int = 1                    # LocalCluster worker processes (not used with a scheduler)
    threads: int = 1                    # Numba threads per task
    scheduler: str | None = None        # tcp://host:port, or the path of a scheduler file
    connect_timeout: float = 30.0       # seconds to wait for that scheduler
    numba_cache_dir: str | None = None  # NUMBA_CACHE_DIR of the tasks (None: the workers' own)
    exe: tuple[str, ...] = ()           # how tasks start badminima (empty: default_exe())

    def validate(self) -> "DaskJob":
        for name, v in (("--shards", self.shards), ("--workers", self.workers), ("--threads", self.threads)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if not self.connect_timeout > 0:
            raise ValueError(f"--connect-timeout must be positive, got {self.connect_timeout}")
        if not self.run:
            raise ValueError("no run command")
        if self.scheduler is not None and not self.scheduler.strip():
            raise ValueError("--scheduler is empty: give an address (tcp://host:8786) or a scheduler file")
        if self.scheduler and "://" in self.scheduler:
            from urllib.parse import urlsplit
            try:
                urlsplit(self.scheduler).port
            except ValueError:
                raise ValueError(f"--scheduler {self.scheduler!r}: not an address such as tcp://host:8786 (a host, "
                                 f"then a port number in 0-65535)") from None
        return self

    def command(self, index: int) -> list[str]:
        """The task of shard `index`."""
        return [*self.exe_words(), *self.run, "--shard", f"{index}/{self.shards}", "-o",
                shard_file(self.outdir, index, self.shards), "-q"]

    def exe_words(self) -> list[str]:
        return list(self.exe) or default_exe()

    def warmup_file(self) -> str | None:
        """The result file the warm-up task writes (its -o argument; None for `compile`)."""
        w = list(self.warmup)
        return w[w.index("-o") + 1] if "-o" in w else None

    def env(self) -> dict:
        extra = {"NUMBA_NUM_THREADS": str(self.threads)}
        if self.numba_cache_dir:
            extra["NUMBA_CACHE_DIR"] = os.path.abspath(self.numba_cache_dir)
        return extra


# prctl resolved here, not in the forked child (a multithreaded worker should run little code there)
try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):           # not Linux
    _PRCTL = None


def _die_with_parent():
    """In the task's child process: SIGTERM when the worker process dies (PR_SET_PDEATHSIG), so a shard
    that loses its worker stops like an interrupted run, keeping its committed chunks."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)


def _ignore_terminal_signals() -> None:
    """On a LocalCluster's worker processes (client.run): ignore SIGINT and SIGHUP.  They share the
    command's process group, so Ctrl-C at the terminal reached them too; a worker killed by it never
    answered the stop event, and the client waited out its timeout.  The client alone stops the tasks,
    which end their commands with SIGTERM (the commands inherit the ignored SIGINT)."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def run_task(cmd: list[str], env_extra: dict, log: str, stop: str | None = None) -> int:
    """One task on a worker: the command in a child process, its output appended to `log`; exit code.

    stop: the name of a Dask Event; when the client sets it (Ctrl-C), the child gets SIGTERM and ends
    like an interrupted run (a running task cannot be cancelled otherwise).
    """
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n# on {socket.gethostname()} (pid {os.getpid()}), "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        t0 = time.monotonic()
        if stop is not None:
            from distributed import Event
            event = Event(stop)
            if event.is_set():          # Ctrl-C came before this task started: do not start it
                fh.write("not started: the run was interrupted\n")
                return 130
        try:
            p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **env_extra},
                                 preexec_fn=_die_with_parent)
        except OSError as e:
            fh.write(f"error: cannot start {cmd[0]}: {e.strerror or e}\nexit status 127\n")
            return 127
        try:
            if stop is None:
                code = p.wait()
            else:
                while (code := p.poll()) is None:
                    if event.wait(timeout=1.0):
                        p.send_signal(signal.SIGTERM)
                        code = p.wait()
                        break
        except BaseException:
            p.send_signal(signal.SIGTERM)
            p.wait()
            raise
        fh.write(f"exit status {code} after {time.monotonic() - t0:.1f} s\n")
    return code


def check_same_run(outdir: str, shards: int, reference: str | None) -> tuple[RunStatus, int | None]:
    """(shard status of DIR, networks in the whole run), refusing shard files of another run than
    `reference` (a file of this run; None: DIR must hold no shard file yet)."""
    st = shard_status(outdir, shards)
    seen = [s.path for s in st.shards if s.state in ("complete", "partial")]
    if reference is None:
        if seen:
            raise StoreError(f"{outdir} already holds shard files, and this command has no warm-up file to "
                             f"check them against; use an empty --out-dir")
        return st, None
    metas = []
    for p in (reference, *seen[:1]):
        with open_h5(p) as f:
            metas.append(read_meta(f, p))
    if len(metas) == 2:
        d = diff_keys(metas[0].identity(), metas[1].identity())
        if d:
            raise StoreError(f"{outdir} holds shards of another run (differing keys: {', '.join(d)}); "
                             f"use another --out-dir")
    return st, sum(c.n_total for c in metas[0].cells.values())


def _client(job: DaskJob):
    """(distributed.Client, LocalCluster or None): the given scheduler's, else a new LocalCluster's
    (processes with one thread each)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("the Dask backend needs dask.distributed: pip install 'badminima[dask]'") from None
    if job.scheduler:
        s = job.scheduler
        if "://" in s or not (os.sep in s or s.endswith(".json") or os.path.exists(s)):
            kw = {"address": s}
        elif os.path.isfile(s):
            try:
                with open(s, encoding="utf-8") as fh:
                    ok = isinstance(json.load(fh).get("address"), str)
            except (OSError, ValueError, AttributeError):
                ok = False
            if not ok:
                raise ClusterError(f"{s} is not a Dask scheduler file (JSON with an \"address\")")
            kw = {"scheduler_file": s}
        else:
            raise ClusterError(f"no scheduler file {s}")
        try:
            return Client(timeout=job.connect_timeout, **kw), None
        except Exception as e:  # noqa: BLE001 - any failure to connect is one line for the user
            raise ClusterError(f"no Dask scheduler at {s}: {str(e) or type(e).__name__}") from None
    cluster = LocalCluster(n_workers=job.workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=40)
    client = Client(cluster)
    client.run(_ignore_terminal_signals)
    return client, cluster


def _last_error(log: str) -> str:
    """The last `error:` line of a task log's last invocation ('' if none)."""
    try:
        with open(log, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return ""
    starts = [i for i, ln in enumerate(lines) if ln.startswith("$ ")]     # one header per invocation
    errors = [ln.strip() for ln in lines[starts[-1] if starts else 0:] if ln.startswith("error:")]
    return errors[-1] if errors else ""


def run(job: DaskJob, echo=None, progress: bool = True) -> RunStatus:
    """Run the shards that are not complete (after the warm-up task); then the run's shard status.

    Progress counts committed networks (read off the shard files).  Ctrl-C -- or any error of the
    client -- stops every running task (their shards keep their committed chunks) and re-raises; a
    Ctrl-C whose KeyboardInterrupt a library swallowed while the client read the shard files is seen
    at the next poll (engine/train/interrupt.py).  Failed shards are reported with their logs in
    DIR/logs/; rerunning resumes them.
    """
    logs = os.path.join(job.outdir, "logs")
    say = echo or (lambda s: None)
    shard_status(job.outdir, job.shards)        # refuses a mix of runs or of shard counts before starting
    client, cluster = _client(job)
    tag = uuid.uuid4().hex[:8]      # task keys unique to this invocation: a shared scheduler reuses equal keys
    stop = f"badminima-stop-{tag}"
    futures: dict = {}          # the tasks to wait for on Ctrl-C: the warm-up, then the shards
    try:
        t0 = time.monotonic()
        wlog = os.path.join(logs, "warmup.out")
        warm = client.submit(run_task, [*job.exe_words(), *job.warmup], job.env(), wlog, stop,
                             key=f"badminima-warmup-{tag}", pure=False)
        futures = {warm: -1}
        try:
            code = warm.result()
        except Exception as e:  # noqa: BLE001 - e.g. DIR not writable on the worker
            raise ClusterError(f"the warm-up task failed: {str(e) or type(e).__name__}") from None
        if code != 0:
            raise ClusterError(f"the warm-up task failed (exit {code}): {_last_error(wlog) or 'see ' + wlog}")
        say(f"warm-up done in {time.monotonic() - t0:.1f} s")
        st, total = check_same_run(job.outdir, job.shards, job.warmup_file())
        todo = [s.index for s in st.shards if s.state != "complete"]
        if not todo:
            say(f"all {job.shards} shards are complete")
            return st
        say(f"{len(todo)} of {job.shards} shards to run on {len(client.scheduler_info()['workers'])} worker(s)")
        futures = {client.submit(run_task, job.command(i), job.env(), os.path.join(logs, f"shard-{i}.out"), stop,
                                 key=f"badminima-shard-{i}-{tag}", pure=False): i for i in todo}
        _follow(job, futures, st.rows, total, progress, say)
    except BaseException as e:
        # Whatever ends the client (Ctrl-C above all), the tasks must not run on without it: running
        # ones SIGTERM their commands, which commit and exit; queued ones return without starting theirs.
        _stop_tasks(client, stop, futures)
        if interrupt.received() and not isinstance(e, KeyboardInterrupt):
            raise KeyboardInterrupt from e      # e.g. h5py turned the KeyboardInterrupt into a SystemError
        raise
    finally:
        _close(client, cluster)
    return shard_status(job.outdir, job.shards)


def _close(client, cluster) -> None:
    """Close the client and the local cluster, a stop signal held off until both are closed: a close cut
    short left Dask waiting for workers it no longer tracked (its exit hook for 10 s, a second close for
    ever); one arriving meanwhile is raised once they are."""
    with interrupt.deferred():
        try:
            client.close()
        finally:
            if cluster is not None:
                cluster.close()


def _stop_tasks(client, stop: str, futures, timeout: float = 120.0) -> None:
    """Set the run's stop event and wait (at most `timeout` seconds) for its tasks to end."""
    from distributed import Event, wait
    try:
        Event(stop, client=client).set()
        if futures:
            wait(list(futures), timeout=timeout)
    except (TimeoutError, OSError):
        pass


def _follow(job: DaskJob, futures: dict, done: int, total: int | None, progress: bool, say) -> None:
    """Wait for the shard tasks, showing committed networks (rate, time left); report failed ones."""
    from distributed import wait
    bar = Progress(total or 0, "candidates" if job.run[0] == "search" else "networks",
                   enabled=progress and total is not None, done=done)
    failed, pending, interval = [], set(futures), POLL
    try:
        while pending:
            try:
                finished, pending = wait(pending, timeout=interval, return_when="FIRST_COMPLETED")
            except TimeoutError:
                finished = set()
            interrupt.check()
            for fut in finished:
                if fut.status != "finished" or fut.result() != 0:
                    failed.append(futures[fut])
            t = time.monotonic()
            rows = shard_status(job.outdir, job.shards).rows
            interrupt.check()           # h5py may have swallowed a Ctrl-C while the files were read
            interval = max(POLL, (time.monotonic() - t) / POLL_SHARE)
            if rows > bar.done:
                bar.update(rows - bar.done)
    finally:
        bar.close()
    if failed:        # a shard another process was writing fails here but may be complete by now
        done = {s.index for s in shard_status(job.outdir, job.shards).of("complete")}
        elsewhere = sorted(i for i in failed if i in done)
        failed = [i for i in failed if i not in done]
        if elsewhere:
            say(f"note: shard task(s) {elsewhere} stopped here, but another process completed their shards")
    if failed:
        i = min(failed)
        why = _last_error(os.path.join(job.outdir, "logs", f"shard-{i}.out"))
        say(f"{len(failed)} shard task(s) failed: {sorted(failed)}" + (f"; shard {i}: {why}" if why else "")
            + f"; logs in {os.path.join(job.outdir, 'logs')}")
