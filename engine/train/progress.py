"""Progress lines for long work: items done, rate, time left; \\r-updated on a terminal, throttled in logs."""
from __future__ import annotations

import sys
import time

from badminima.engine.core.say import say
from badminima.engine.train import interrupt


class Progress:
    """Report progress of `total` items to stderr; quiet when disabled."""

    def __init__(self, total: int, label: str = "networks", enabled: bool = True, done: int = 0, floor=None):
        self.total, self.label, self.enabled = total, label, enabled
        self.start_done = self.done = done
        self.t0 = self.last = time.monotonic()
        # (time, items done) at the first update: the first chunk also carries the start-up (kernels
        # loaded or compiled, the classification compiled), so the rate while work remains is measured
        # from there on
        self.first: tuple[float, int] | None = None
        self.floor = floor      # a callable: seconds the work cannot end before (kernels still compiling)
        self.tty = sys.stderr is not None and sys.stderr.isatty()
        self.every = 0.5 if self.tty else 30.0

    def update(self, n: int) -> None:
        """n more items done; the caller is at a safe point, where a Ctrl-C whose KeyboardInterrupt some
        library swallowed is raised (engine/train/interrupt.py)."""
        interrupt.check()
        self.done += n
        now = time.monotonic()
        if self.first is None:
            self.first = (now, self.done)
        if self.enabled and (now - self.last >= self.every or self.done >= self.total):
            self.last = now
            self._print(now)

    def idle(self, seconds: float) -> None:
        """Leave `seconds` spent waiting, not working (for kernels to compile), out of the rate, so that
        the time left is not inflated by a first run's compiling."""
        self.t0 += seconds
        if self.first is not None:
            self.first = (self.first[0] + seconds, self.first[1])

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        pct = 100.0 * self.done / max(self.total, 1)
        if self.first and self.first[1] == self.done < self.total:
            return f"{self.done}/{self.total} {self.label} ({pct:.1f}%), starting"
        t0, d0 = self.first if self.first and self.first[1] < self.done < self.total else (self.t0, self.start_done)
        rate = (self.done - d0) / max(now - t0, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        if self.floor is not None and self.done < self.total:
            left = max(left, self.floor())
        eta = f"{left:.0f} s left" if left != float("inf") else "-"
        return f"{self.done}/{self.total} {self.label} ({pct:.1f}%), {rate:.3g}/s, {eta}"

    def _print(self, now: float) -> None:
        end = "" if self.tty and self.done < self.total else "\n"
        prefix = "\r" if self.tty else ""
        say(prefix + self.line(now), end)

    def close(self) -> None:
        if self.enabled and self.tty and self.done < self.total:
            say("")
