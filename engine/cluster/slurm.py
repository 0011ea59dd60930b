"""Cluster runs: the status of a sharded run, SLURM job-array scripts, submit / wait / merge.

A run command (train, table1, ...) with ``--shard I/N`` computes the contiguous network-index range
``shard_range(n_total, I, N)`` of every cell into its own crash-safe result file; ``merge`` joins
complete shards into a file identical to a one-process run.  This module adds the cluster side:

* ``shard_status(DIR)``: which of the N shards are complete, partial (committed rows) or missing.
* ``render_script(SlurmJob)``: one self-contained bash file.  ``bash job.sh`` submits a warm-up compile
  job, then the array part(s) depending on it (``--dependency=afterok``); under SLURM the same file is
  the array task: shard ``SLURM_ARRAY_TASK_ID + OFFSET`` of N -> ``DIR/shard-XXXX.h5``.  Arrays larger
  than the site's MaxArraySize are split into parts with an index OFFSET, chained so that at most
  ``throttle`` tasks run at once.  A task close to its time limit requeues itself (``--signal``), and
  a requeued or rerun task resumes its partial shard from the last committed chunk (the store's resume).
* ``submit`` / ``wait_for`` / ``merge`` drive that from Python (``badminima slurm --submit --wait``).
"""
from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from badminima.engine.train.codegen import lanes_for
from badminima.engine.store import StoreError, diff_keys, expand_paths, open_h5, read_meta

DEFAULT_MAX_ARRAY_SIZE = 1001       # SLURM's default MaxArraySize
SIMD_BLOCK = lanes_for("float64")   # networks per SIMD block; fewer per thread wastes lanes


# ----------------------------------------------------------------------------------------------
# status of a sharded run

def shard_width(count: int) -> int:
    return max(4, len(str(max(count - 1, 0))))


def shard_file(outdir: str, index: int, count: int) -> str:
    """DIR/shard-XXXX.h5 (zero-padded to at least 4 digits, so names sort by index)."""
    return os.path.join(outdir, f"shard-{index:0{shard_width(count)}d}.h5")


@dataclass
class ShardState:
    index: int
    state: str                  # complete | partial | missing | unreadable
    path: str | None = None
    rows: int = 0               # committed networks (all cells)
    total: int = 0              # networks this shard is responsible for (all cells)
    error: str = ""


@dataclass
class RunStatus:
    target: str
    count: int | None                               # N (None: nothing found and N not given)
    shards: list[ShardState] = field(default_factory=list)
    command: str = ""
    config: dict = field(default_factory=dict)

    def of(self, state: str) -> list[ShardState]:
        return [s for s in self.shards if s.state == state]

    @property
    def complete(self) -> bool:
        return bool(self.shards) and all(s.state == "complete" for s in self.shards)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def total(self) -> int | None:
        """Networks in the whole run, when every shard's file has been seen (else None)."""
        if any(s.state in ("missing", "unreadable") for s in self.shards):
            return None
        return sum(s.total for s in self.shards)

    def complete_files(self) -> list[str]:
        return [s.path for s in self.shards if s.state == "complete"]

    def summary(self) -> str:
        if self.count is None:
            return f"{self.target}: no shard files yet"
        parts = [f"{len(self.of(k))} {k}" for k in ("complete", "partial", "missing", "unreadable") if self.of(k)]
        seen = [s for s in self.shards if s.state in ("complete", "partial")]
        nets = (f"{self.rows} of {sum(s.total for s in seen)} networks in the shards present" if seen
                else "no shard file yet")
        if self.total is not None:
            nets = f"{self.rows} of {self.total} networks ({100.0 * self.rows / max(self.total, 1):.1f}%)"
        return f"{self.target}: {self.count} shard{'s' * (self.count != 1)}: {', '.join(parts)}; {nets}"

    def format(self) -> str:
        lines = [self.summary()]
        if self.command:
            lines.append(f"  command (of one shard): {self.command}")
        if self.count is None:
            return "\n".join(lines)
        for s in self.of("partial"):
            lines.append(f"  partial   shard {s.index}: {s.rows}/{s.total} networks committed  {s.path}")
        for s in self.of("unreadable"):
            lines.append(f"  unreadable shard {s.index}: {s.error}")
        missing = [s.index for s in self.of("missing")]
        if missing:
            lines.append(f"  missing   shards {format_ranges(missing)}")
        if self.complete:
            lines.append(f"  all complete: badminima merge '{os.path.join(self.target, 'shard-*.h5')}' -o OUT.h5"
                         if os.path.isdir(self.target) else "  all complete")
        return "\n".join(lines)


def format_ranges(ids) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8' (also SLURM's --array syntax)."""
    ids = sorted(ids)
    out, i = [], 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(out)


def _candidates(target: str) -> list[str]:
    """Result files of a directory or glob; a final file hides its leftover .part."""
    if os.path.isdir(target):
        paths = sorted(glob.glob(os.path.join(target, "*.h5")) + glob.glob(os.path.join(target, "*.h5.part")))
    elif os.path.exists(target) or any(ch in target for ch in "*?["):
        paths = [p for p in expand_paths(target) if p.endswith((".h5", ".h5.part"))]
        if not any(ch in target for ch in "*?[") and not target.endswith(".part") and os.path.exists(target + ".part"):
            paths.append(target + ".part")
        if any(ch in target for ch in "*?[") and not target.endswith(".part"):
            paths += [p for p in glob.glob(target + ".part") if p not in paths]
    elif os.path.exists(target + ".part"):
        paths = [target + ".part"]
    else:
        raise StoreError(f"{target}: no such file or directory")
    finals = {p for p in paths if p.endswith(".h5")}
    return sorted(p for p in paths if not (p.endswith(".part") and p[:-5] in finals))


def shard_status(target: str, count: int | None = None) -> RunStatus:
    """Complete / partial / missing shards of the run whose shard files are in DIR (or match a glob).

    count: the number of shards N if known (else taken from the files).  Refuses files of different
    configurations, mixed shard counts and two files for one shard.
    """
    target = os.fspath(target)
    metas, bad = [], []
    for p in _candidates(target):
        try:
            with open_h5(p) as f:
                metas.append(read_meta(f, p))
        except StoreError as e:
            bad.append((p, str(e)))
    st = RunStatus(target=target, count=count)
    if metas:
        first = metas[0]
        for m in metas[1:]:
            d = diff_keys(first.identity(), m.identity())
            if d:
                raise StoreError(f"{m.path} and {first.path} are not shards of one run (differing keys: "
                                 f"{', '.join(d)}); keep one run per directory")
        counts = {(m.shard or {"count": 1})["count"] for m in metas}
        if count is not None:
            counts.add(count)
        if len(counts) > 1:
            raise StoreError(f"{target}: shards of different counts N ({', '.join(map(str, sorted(counts)))})")
        st.count = counts.pop()
        st.command = str(first.attrs.get("command", ""))
        st.config = {k: v for k, v in first.config.items() if k != "shard"}
    if st.count is None:
        if bad:
            raise StoreError(f"{target}: no readable shard files ({bad[0][1]})")
        return st
    by_index: dict[int, ShardState] = {}
    for m in metas:
        i = (m.shard or {"index": 0})["index"]
        if i in by_index:
            raise StoreError(f"shard {i} is in two files: {by_index[i].path} and {m.path}")
        rows = sum(c.n_rows for c in m.cells.values())
        total = sum(c.stop - c.start for c in m.cells.values())
        state = "complete" if m.status == "complete" and rows == total else "partial"
        by_index[i] = ShardState(i, state, m.path, rows, total)
    for p, err in bad:      # unreadable files named like shard-XXXX.h5 still tell which shard they were
        mt = re.search(r"shard-(\d+)\.h5(\.part)?$", p)
        if mt and int(mt.group(1)) < st.count and int(mt.group(1)) not in by_index:
            by_index[int(mt.group(1))] = ShardState(int(mt.group(1)), "unreadable", p, error=err)
    st.shards = [by_index.get(i, ShardState(i, "missing")) for i in range(st.count)]
    return st


# ----------------------------------------------------------------------------------------------
# SLURM scripts

_TIME_RE = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time_limit(text: str) -> int:
    """A SLURM time limit ('MM', 'MM:SS', 'HH:MM:SS', 'D-HH', 'D-HH:MM', 'D-HH:MM:SS') in seconds."""
    m = _TIME_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"bad time limit {text!r}: use HH:MM:SS, MM, D-HH:MM:SS, ...")
    d, a, b, c = m.groups()
    a, b, c = int(a), int(b) if b else None, int(c) if c else None
    if d is not None:       # D-HH[:MM[:SS]]
        return int(d) * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if b is None:           # MM
        return a * 60
    if c is None:           # MM:SS
        return a * 60 + b
    return a * 3600 + b * 60 + c


def array_parts(count: int, max_array_size: int) -> list[tuple[int, int]]:
    """Split N array tasks into submissions of at most MaxArraySize tasks: [(offset, size), ...].

    SLURM's task indices must be < MaxArraySize, so each part uses indices 0..size-1 and the task's
    shard is SLURM_ARRAY_TASK_ID + offset.
    """
    if count < 1 or max_array_size < 1:
        raise ValueError("count and max_array_size must be >= 1")
    return [(off, min(max_array_size, count - off)) for off in range(0, count, max_array_size)]


def site_max_array_size() -> tuple[int, str]:
    """MaxArraySize from `scontrol show config` (and where it came from); SLURM's default if unknown."""
    exe = shutil.which("scontrol")
    if exe:
        try:
            out = subprocess.run([exe, "show", "config"], capture_output=True, text=True, timeout=20).stdout
            m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.M)
            if m:
                return int(m.group(1)), "scontrol show config"
        except (OSError, subprocess.SubprocessError):
            pass
    return DEFAULT_MAX_ARRAY_SIZE, "SLURM's default (scontrol not available)"


def default_exe() -> list[str]:
    """How tasks start badminima: this installation's console script, else this Python with -m."""
    script = os.path.join(os.path.dirname(sys.executable), "badminima")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "badminima.cli"]


@dataclass
class SlurmJob:
    """Everything the generated script needs; paths are made absolute by render_script."""
    run: list[str]                  # the badminima run command: ["train", "--dataset", "xor", ...]
    shards: int
    outdir: str
    time_limit: str = "01:00:00"
    cpus_per_task: int = 1
    throttle: int | None = None
    partition: str | None = None
    max_array_size: int = DEFAULT_MAX_ARRAY_SIZE
    max_array_source: str = ""
    numba_cache_dir: str | None = None      # default: DIR/numba-cache
    exe: list[str] = field(default_factory=default_exe)
    job_name: str = "badminima"
    warmup: list[str] | None = None          # badminima arguments of the warm-up job (None: no warm-up)
    requeue: bool = True
    max_requeues: int = 3
    requeue_lead: int = 120                  # seconds before the time limit a task requeues itself
    sbatch_extra: list[str] = field(default_factory=list)

    def validate(self) -> "SlurmJob":
        if self.shards < 1:
            raise ValueError(f"--shards must be >= 1, got {self.shards}")
        if self.throttle is not None and self.throttle < 1:
            raise ValueError(f"--throttle must be >= 1, got {self.throttle}")
        if self.cpus_per_task < 1:
            raise ValueError(f"--cpus-per-task must be >= 1, got {self.cpus_per_task}")
        if self.max_array_size < 1:
            raise ValueError(f"--max-array-size must be >= 1, got {self.max_array_size}")
        parse_time_limit(self.time_limit)
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.job_name):
            raise ValueError(f"bad job name {self.job_name!r}: letters, digits and _.+- only")
        for line in self.sbatch_extra:
            if not line.startswith("-") or "\n" in line:
                raise ValueError(f"bad extra sbatch option {line!r}: expected e.g. --account=abc")
        if not self.run:
            raise ValueError("no run command")
        return self

    @property
    def parts(self) -> list[tuple[int, int]]:
        return array_parts(self.shards, self.max_array_size)

    def signal_lead(self) -> int | None:
        """Seconds before the limit at which the batch shell gets USR1 (None: limit too short for it)."""
        limit = parse_time_limit(self.time_limit)
        if not self.requeue or self.requeue_lead <= 0 or self.requeue_lead * 2 > limit:
            return None
        return self.requeue_lead


def _q(words) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def render_script(job: SlurmJob, script_name: str = "job.sh") -> str:
    """The bash text of a self-submitting SLURM array script (see the module docstring)."""
    job.validate()
    outdir = os.path.abspath(job.outdir)
    cache = os.path.abspath(job.numba_cache_dir or os.path.join(outdir, "numba-cache"))
    logs = os.path.join(outdir, "logs")
    parts = job.parts
    first = parts[0][1]
    thr = f"%{job.throttle}" if job.throttle else ""
    lead = job.signal_lead()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    sb = [f"--job-name={job.job_name}", f"--array=0-{first - 1}{thr}", f"--time={job.time_limit}",
          "--ntasks=1", f"--cpus-per-task={job.cpus_per_task}"]
    if job.partition:
        sb.append(f"--partition={job.partition}")
    sb.append("--requeue" if job.requeue else "--no-requeue")
    sb.append("--open-mode=append")
    if lead:
        sb.append(f"--signal=B:USR1@{lead}")
    sb.append(f"--output={logs}/{job.job_name}-%A_%a.out")
    sb.extend(job.sbatch_extra)
    run_txt = _q(["badminima", *job.run])
    split = (f"{len(parts)} submissions of at most {job.max_array_size} tasks (MaxArraySize"
             f"{', from ' + job.max_array_source if job.max_array_source else ''}), shard = "
             f"SLURM_ARRAY_TASK_ID + OFFSET" if len(parts) > 1 else
             f"one array of {job.shards} tasks (MaxArraySize {job.max_array_size}"
             f"{', from ' + job.max_array_source if job.max_array_source else ''})")
    lines = [
        "#!/bin/bash",
        f"# badminima SLURM job array -- generated by `badminima slurm` on {now}.",
        f"#   run:    {run_txt}",
        f"#   as {job.shards} shards -> {outdir}/shard-{'X' * shard_width(job.shards)}.h5; {split}",
        f"#   tasks:  {job.cpus_per_task} CPU(s) = Numba threads each, at most "
        f"{job.throttle or 'all'} at once, time limit {job.time_limit}",
        "#",
        f"# Submit:  bash {script_name}",
        "#          (submits the warm-up compile job, then the array part(s) depending on it; a plain",
        "#          `sbatch` of this file runs the first part without warm-up.)",
        f"# Follow:  badminima status {outdir}        (complete / partial / missing shards)",
        f"# Rerun:   bash {script_name}   -- complete shards exit at once, partial ones resume from their",
        "#          last committed chunk (so do requeued tasks, and ones that hit the time limit).",
        f"# Merge:   badminima merge '{outdir}/shard-*.h5' -o merged.h5",
        "#",
        *[f"#SBATCH {o}" for o in sb],
        "set -euo pipefail",
        "",
        f"N={job.shards}",
        f"W={shard_width(job.shards)}",
        f"OUT={shlex.quote(outdir)}",
        f"JOB_NAME={shlex.quote(job.job_name)}",
        f"MAX_REQUEUES={job.max_requeues}",
        f"export NUMBA_CACHE_DIR={shlex.quote(cache)}      # shared: compiled once by the warm-up job",
        f'export NUMBA_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-{job.cpus_per_task}}}"',
        "export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1   # Numba owns the cores",
        f"BADMINIMA=({_q(job.exe)})",
        f"RUN=({_q(job.run)})",
        f"WARMUP=({_q(job.warmup or [])})",
        "",
        'if [ -z "${BADMINIMA_ROLE:-}" ] && [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then',
        "    # ---- submitter: bash this-file ------------------------------------------------------------",
        '    self=$(readlink -f "$0")',
        '    mkdir -p "$OUT/logs" "$NUMBA_CACHE_DIR"',
        "    jobs=()",
        '    dep=""',
        "    if [ ${#WARMUP[@]} -gt 0 ]; then",
        "        warm=$(sbatch --parsable --array=0 --job-name=\"$JOB_NAME-compile\" --cpus-per-task=1 \\",
        '            --output="$OUT/logs/$JOB_NAME-compile-%A.out" --export=ALL,BADMINIMA_ROLE=warmup "$self")',
        '        warm=${warm%%;*}',
        '        echo "submitted warm-up compile job $warm"',
        '        dep="afterok:$warm"',
        '        jobs+=("$warm")',
        "    fi",
        "    prev=\"\"",
        f"    for part in {' '.join(f'{o}:{n}' for o, n in parts)}; do",
        '        off=${part%%:*}; size=${part##*:}',
        '        d="$dep"',
        '        if [ -n "$prev" ]; then d="${d:+$d,}afterany:$prev"; fi   # parts in sequence: throttle holds',
        '        id=$(sbatch --parsable --array="0-$((size - 1))' + thr + '" ${d:+--dependency="$d"} \\',
        '            --export=ALL,BADMINIMA_ROLE=task,BADMINIMA_SHARD_OFFSET="$off" "$self")',
        '        id=${id%%;*}',
        '        echo "submitted array job $id: shards $off-$((off + size - 1)) of $N"',
        '        jobs+=("$id")',
        '        prev=$id',
        "    done",
        '    echo "submitted jobs: ${jobs[*]}"',
        "    exit 0",
        "fi",
        "",
        'if [ "${BADMINIMA_ROLE:-}" = warmup ]; then',
        '    echo "warm-up compile on $(hostname) into $NUMBA_CACHE_DIR"',
        '    exec "${BADMINIMA[@]}" "${WARMUP[@]}"',
        "fi",
        "",
        "# ---- array task: one shard --------------------------------------------------------------------",
        'I=$(( SLURM_ARRAY_TASK_ID + ${BADMINIMA_SHARD_OFFSET:-0} ))',
        'if [ "$I" -ge "$N" ]; then echo "shard $I >= $N: nothing to do"; exit 0; fi',
        'F=$(printf "%s/shard-%0${W}d.h5" "$OUT" "$I")',
        'if [ -e "$F" ]; then echo "shard $I/$N is complete: $F"; exit 0; fi',
        'echo "shard $I/$N on $(hostname), $NUMBA_NUM_THREADS thread(s), restart ${SLURM_RESTART_COUNT:-0}: $F"',
        "requeue() {",
        '    if [ "${SLURM_RESTART_COUNT:-0}" -lt "$MAX_REQUEUES" ]; then',
        '        echo "time limit near: requeueing shard $I/$N (it resumes from its last committed chunk)"',
        '        scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
        "    else",
        '        echo "time limit near after $MAX_REQUEUES requeues: rerun the script (or raise --time) to resume"',
        "    fi",
        "}",
        "trap requeue USR1",
        '"${BADMINIMA[@]}" "${RUN[@]}" --shard "$I/$N" -o "$F" &',
        "pid=$!",
        "# a trapped signal interrupts `wait`; keep waiting until the run itself has ended",
        'while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done',
        'wait "$pid" && rc=0 || rc=$?',
        'echo "shard $I/$N exit status $rc"',
        'exit "$rc"',
        "",
    ]
    return "\n".join(lines)


def write_script(job: SlurmJob, path: str) -> str:
    text = render_script(job, script_name=os.path.basename(path))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------
# submit and wait

def warmup_args(params: dict, run_args: list[str], outdir: str) -> list[str]:
    """The warm-up job's badminima arguments: the run itself on a one-network-per-cell shard.

    Shard 0 of N = networks holds network 0 of every cell, so the job compiles exactly the kernel
    variants the array tasks will use (whatever the run command) and writes a throw-away DIR/warmup/ file.
    Commands without a network count use their candidate budget (search); the rest fall back to
    `badminima compile` (its default variant set).
    """
    n = params.get("networks", params.get("budget"))
    if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
        return [*run_args, "--shard", f"0/{n}", "-o", os.path.join(os.path.abspath(outdir), "warmup", "warmup.h5"),
                "--force", "--no-resume", "-q"]
    return ["compile"]


class ClusterError(Exception):
    """A scheduler problem (sbatch failed, jobs stuck, time out), one line for the user."""


def submit(script: str) -> list[str]:
    """Run the script's submitter (bash SCRIPT); returns the job ids (warm-up first)."""
    if not shutil.which("sbatch"):
        raise ClusterError("sbatch not found: is SLURM installed here?")
    p = subprocess.run(["bash", script], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise ClusterError(f"submitting {script} failed: {(p.stderr or p.stdout).strip()[-500:]}")
    for line in p.stdout.splitlines():
        if line.startswith("submitted jobs:"):
            return line.split(":", 1)[1].split()
    raise ClusterError(f"submitting {script}: no job ids in its output: {p.stdout.strip()[-300:]}")


def queue_state(job_ids) -> list[tuple[str, str, str]]:
    """(job id, state, reason) of the queued (pending/running) tasks of the given jobs."""
    want = {str(j) for j in job_ids}
    p = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%F|%T|%r"], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise ClusterError(f"squeue failed: {p.stderr.strip()[-300:]}")
    out = []
    for line in p.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and (parts[1] in want or parts[0].split("_")[0] in want):
            out.append((parts[0], parts[2], parts[3]))
    return out


def wait_for(job_ids, outdir: str, shards: int, *, timeout: float | None = None, poll: float = 5.0,
             echo=None) -> RunStatus:
    """Poll until no task of the jobs is queued or running; then the run's shard status.

    Jobs that can never start (a failed warm-up: DependencyNeverSatisfied) are cancelled and reported.
    """
    t0 = time.monotonic()
    last = None
    while True:
        q = queue_state(job_ids)
        if not q:
            break
        stuck = [j for j, _, r in q if "DependencyNeverSatisfied" in r]
        if stuck:
            subprocess.run(["scancel", *job_ids], capture_output=True, timeout=60)
            raise ClusterError(f"{len(stuck)} task(s) can never start (a job they depend on failed, e.g. the "
                               f"warm-up compile; see {os.path.join(outdir, 'logs')}); cancelled")
        if echo:
            running = sum(1 for _, s, _ in q if s == "RUNNING")
            line = f"{running} running, {len(q) - running} pending; " + shard_status(outdir, shards).summary()
            if line != last:
                echo(line)
                last = line
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise ClusterError(f"still {len(q)} task(s) queued or running after {timeout:g} s "
                               f"(jobs {' '.join(job_ids)} keep going; `badminima status {outdir}`)")
        time.sleep(poll)
    return shard_status(outdir, shards)
