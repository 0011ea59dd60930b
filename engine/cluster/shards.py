"""Shards of a cluster run: their file names and status (complete / partial / missing), and what the
SLURM and Dask backends share: how a task starts badminima, the warm-up command, ClusterError.

A run command (train, table1, ...) with ``--shard I/N`` computes the contiguous network-index range
``shard_range(n_total, I, N)`` of every cell into its own crash-safe result file, DIR/shard-XXXX.h5;
``merge`` joins complete shards into a file identical to a one-process run.
"""
from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass, field

from badminima.engine.store import (NoResultFile, NotMergeable, StoreError, diff_keys, expand_paths, open_h5, read_meta,
                                   without_leftover_parts)
from badminima.engine.store.paths import shell_quote


class ClusterError(Exception):
    """A scheduler problem (sbatch failed, jobs stuck, time out), one line for the user."""


def shard_width(count: int) -> int:
    """Digits of the shard index in file names: enough for N - 1, at least 4."""
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
            lines.append(f"  all complete: badminima merge {self._merge_inputs()} -o OUT.h5"
                         if os.path.isdir(self.target) else "  all complete")
        return "\n".join(lines)

    def _merge_inputs(self) -> str:
        """The shard files as merge's arguments: the folder's shard-*.h5 pattern where it names exactly
        them (the names slurm and dask give), else the files themselves."""
        files = self.complete_files()
        pattern = os.path.join(self.target, "shard-*.h5")
        if {os.path.realpath(p) for p in glob.glob(pattern)} == {os.path.realpath(p) for p in files}:
            return shell_quote(pattern)
        return " ".join(shell_quote(p) for p in files)


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
    elif os.path.isfile(target) and not target.endswith((".h5", ".h5.part")) and not any(ch in target for ch in "*?["):
        raise NoResultFile(f"{target} is not a result file (*.h5): give the directory of the shard files or a glob")
    elif os.path.exists(target) or any(ch in target for ch in "*?["):
        paths = [p for p in expand_paths(target) if p.endswith((".h5", ".h5.part"))]
        if not any(ch in target for ch in "*?[") and not target.endswith(".part") and os.path.exists(target + ".part"):
            paths.append(target + ".part")
        if any(ch in target for ch in "*?[") and not target.endswith(".part"):
            paths += [p for p in glob.glob(target + ".part") if p not in paths]
    elif os.path.exists(target + ".part"):
        paths = [target + ".part"]
    else:
        raise NoResultFile(f"{target}: no such file or directory")
    return sorted(without_leftover_parts(paths))


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
                raise NotMergeable(f"{m.path} and {first.path} are not shards of one run (differing keys: "
                                   f"{', '.join(d)}); keep one run per directory")
        counts = {(m.shard or {"count": 1})["count"] for m in metas}
        if len(counts) > 1:
            raise NotMergeable(f"{target}: shards of different counts N ({', '.join(map(str, sorted(counts)))})")
        if count is not None and counts != {count}:
            raise StoreError(f"{target}: --shards {count}, but its files are shards of {counts.pop()}")
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
            raise NotMergeable(f"shard {i} is in two files: {by_index[i].path} and {m.path}")
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


def default_exe() -> list[str]:
    """How tasks start badminima: this installation's console script, else this Python with -m."""
    script = os.path.join(os.path.dirname(sys.executable), "badminima")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "badminima.cli"]


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
