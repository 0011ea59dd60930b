"""SLURM job arrays of a sharded run (shards.py): the batch script, submit / wait.

* ``render_script(SlurmJob)``: one self-contained bash file, slurm_template.sh filled in.  ``bash job.sh``
  submits a warm-up compile job, then the array part(s) depending on it (``--dependency=afterok``);
  under SLURM the same file is the array task: shard ``SLURM_ARRAY_TASK_ID + OFFSET`` of N ->
  ``DIR/shard-XXXX.h5``.  Arrays larger than the site's MaxArraySize are split into parts with an index
  OFFSET, chained so that at most ``throttle`` tasks run at once.  A task close to its time limit requeues itself (``--signal``), and
  a requeued or rerun task resumes its partial shard from the last committed chunk (the store's resume).
* ``submit`` / ``wait_for`` / ``merge`` drive that from Python (``badminima slurm --submit --wait``).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from string import Template

from badminima.engine.store.paths import shell_quote
from badminima.engine.train import interrupt
from badminima.engine.cluster.shards import ClusterError, RunStatus, default_exe, shard_status, shard_width

DEFAULT_MAX_ARRAY_SIZE = 1001       # SLURM's default MaxArraySize
MAX_SUBMISSIONS = 10000             # array submissions one script makes at most (SLURM's default MaxJobCount)
_TEMPLATE = Path(__file__).with_name("slurm_template.sh")


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
        if -(-self.shards // self.max_array_size) > MAX_SUBMISSIONS:
            raise ValueError(f"--shards {self.shards} needs {-(-self.shards // self.max_array_size)} array submissions "
                             f"of at most {self.max_array_size} tasks (MaxArraySize), more than the "
                             f"{MAX_SUBMISSIONS} jobs a cluster holds by default: use fewer shards")
        if self.max_requeues < 0:
            raise ValueError(f"--max-requeues must be >= 0, got {self.max_requeues}")
        parse_time_limit(self.time_limit)
        if self.partition is not None and not re.fullmatch(r"[A-Za-z0-9_.,+-]+", self.partition):
            raise ValueError(f"bad partition {self.partition!r}: letters, digits and _.,+- only")
        for option, path in (("--out-dir", self.outdir), ("--numba-cache", self.numba_cache_dir)):
            if path is not None and any(ord(c) < 32 or ord(c) == 127 for c in str(path)):
                raise ValueError(f"bad {option} {str(path)!r}: a path in the script cannot hold a line break "
                                 f"or other control character")
        if "%" in str(self.outdir):
            raise ValueError(f"bad --out-dir {str(self.outdir)!r}: SLURM reads a % in its log file names as a "
                             f"pattern (%A the job, %a the task); name a folder without %")
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


def _directive(option: str) -> str:
    """One option as an #SBATCH line.  sbatch splits these lines at blanks and ends them at a #, outside
    quotes, so a value holding a blank, quote, backslash or # (a path, a --comment) is double-quoted,
    with its " and \\ escaped (what sbatch reads back: tests/test_cluster.py)."""
    m = re.match(r"(-[^=\s]*)([=\s]\s*)(.*)", option)          # --opt=value, --opt value or -o value
    if m and re.search(r"""[\s"'\\#]""", m.group(3)):
        option = m.group(1) + m.group(2).strip() + (" " if m.group(2).isspace() else "") + \
            '"' + m.group(3).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "#SBATCH " + option


def _generated_at() -> str:
    """The script's generation time (UTC, to the second), named in its header."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _ScriptTemplate(Template):
    """@name@ placeholders (autoconf style), so the script's own $ and @ need no escaping."""
    pattern = r"@(?:(?P<named>[a-z_]+)@|(?P<escaped>(?!))|(?P<braced>(?!))|(?P<invalid>(?!)))"


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
    split = (f"{len(parts)} submissions of at most {job.max_array_size} tasks (MaxArraySize"
             f"{', from ' + job.max_array_source if job.max_array_source else ''}), shard = "
             f"SLURM_ARRAY_TASK_ID + OFFSET" if len(parts) > 1 else
             f"one array of {job.shards} tasks (MaxArraySize {job.max_array_size}"
             f"{', from ' + job.max_array_source if job.max_array_source else ''})")
    template = _ScriptTemplate(_TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(
        generated=_generated_at(), run_text=_q(["badminima", *job.run]), shards=job.shards, outdir=outdir,
        shard_digits="X" * shard_width(job.shards), split=split, cpus=job.cpus_per_task,
        at_once=job.throttle or "all", time_limit=job.time_limit, script=script_name,
        sbatch="\n".join(map(_directive, sb)), width=shard_width(job.shards),
        outdir_word=shlex.quote(outdir), job_name_word=shlex.quote(job.job_name), max_requeues=job.max_requeues,
        cache_word=shlex.quote(cache), exe=_q(job.exe), run=_q(job.run), warmup=_q(job.warmup or []),
        parts=" ".join(f"{o}:{n}" for o, n in parts), throttle=thr)


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
                               f"(jobs {' '.join(job_ids)} keep going; `badminima status {shell_quote(outdir)}`)")
        time.sleep(poll)
        interrupt.check()
    return shard_status(outdir, shards)
