"""What a training run may ask for: the largest network the generated kernels are built for, the
largest counts, and the memory a run needs, checked against what the machine has before anything is
compiled or allocated.

Why a largest h: the kernels unroll every hidden unit (engine/train/codegen.py), so their source, their
compile time and the compiler's memory grow with h, fastest for ReLU Adam (measured, docs/training.md
"Limits"): its kernel compiles in 48 s and 1.6 GB at h = 32, and grew past 5.7 GB at h = 64; the fused
step of h = 16 on 16 points does not compile at all (a RecursionError in Numba's SSA pass), so the
fused step unrolls at most FUSE_MAX_UNITS = 112 units x points (codegen.fused_points).  h = 100000
once ran the compiler into the out-of-memory killer at 22.7 GB.  The paper's networks have h <= 7.
"""
from __future__ import annotations

import os

from badminima.engine.core.layout import n_params

MAX_HIDDEN = 32                 # hidden units a generated kernel is built for (see the module docstring)
MAX_COUNT = 2 ** 62             # --networks, --steps and the like: far beyond any run, far from int64 overflow
MEMORY_SHARE = 0.8              # a run may plan to use this share of the memory available when it starts


class ResourceError(ValueError):
    """A run would not fit in this machine's memory; the message is one line with what to change."""


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """Memory left under this process's cgroup (v2 memory.max - memory.current, v1 limit - usage)."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit, encoding="ascii") as f:
                lim = f.read().strip()
            if lim == "max":
                return None
            with open(usage, encoding="ascii") as f:
                used = int(f.read().strip())
            lim_b = int(lim)
            if lim_b >= 2 ** 60:            # v1's "no limit"
                return None
            return max(0, lim_b - used)
        except (OSError, ValueError):
            continue
    return None


def available_memory() -> int | None:
    """Bytes of memory this process can still use (None: unknown, e.g. not Linux).

    BADMINIMA_MEMORY_LIMIT (bytes, or with a K/M/G/T suffix) overrides it, e.g. to leave room for other
    jobs on a shared node."""
    env = os.environ.get("BADMINIMA_MEMORY_LIMIT", "").strip()
    if env:
        import re
        m = re.fullmatch(r"([0-9.]+(?:e[0-9]+)?)\s*([kmgt]?)(i?b)?", env, re.IGNORECASE)   # 8G, 8 GiB, 8gb, 1e9
        try:
            value = float(m[1]) * 2 ** (10 * "_kmgt".index(m[2].lower() or "_")) if m else -1.0
        except ValueError:
            value = -1.0
        if not 0 <= value < 2 ** 63:
            from badminima.engine.train.config import ConfigError
            raise ConfigError(f"BADMINIMA_MEMORY_LIMIT must be a number of bytes, optionally with a K, M, G or T "
                              f"suffix (8G, 8GiB), got {env[:40]!r}")
        return int(value)
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(found) if found else None


def format_bytes(n: float) -> str:
    for unit, size in (("EiB", 2 ** 60), ("PiB", 2 ** 50), ("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20),
                       ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def chunk_bytes(d: int, h: int, networks: int, keep_init: bool = False) -> int:
    """Memory of one chunk of `networks` trained networks and their results (engine/train/run.py):
    per network the trained and the finished weights (and the initial ones with keep_init, computed
    once more while they are drawn), float64, plus ~100 bytes of per-network scalars."""
    P = n_params(d, h)
    per = 8 * P * (2 + (2 if keep_init else 0)) + 100
    return networks * per


def train_bytes(d: int, h: int, n_points: int, chunk: int, keep_init: bool = False, threads: int = 1) -> int:
    """Peak memory a training run adds to the process: two chunks (the one being written while the
    next is trained), per thread the finisher's P x P Hessian work, and the dataset."""
    P = n_params(d, h)
    return 2 * chunk_bytes(d, h, chunk, keep_init) + threads * 8 * (6 * P * P + 8 * P) + 16 * n_points * (d + 1)


def check_fits(need: int, what: str, advice: str) -> None:
    """ResourceError (one line) if `need` bytes exceed MEMORY_SHARE of the memory available now."""
    avail = available_memory()
    if avail is None or need <= MEMORY_SHARE * avail:
        return
    raise ResourceError(f"{what} needs about {format_bytes(need)} of memory and {format_bytes(avail)} is "
                        f"available: {advice}")


def check_train_memory(d: int, h: int, n_points: int, networks: int, chunk: int, keep_init: bool = False,
                       threads: int = 1, what: str = "this run") -> None:
    """Refuse, before compiling or allocating anything, a run whose chunks would not fit in memory."""
    c = max(1, min(chunk, networks))
    need = train_bytes(d, h, n_points, c, keep_init, threads)
    check_fits(need, f"{what} ({c} networks per chunk x {n_params(d, h)} parameters)",
               "use a smaller --chunk (results do not depend on it)")
