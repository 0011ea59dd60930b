"""Progress lines for long work: items done, rate, time left; \\r-updated on a terminal, throttled in logs."""
from __future__ import annotations

import sys
import time

from badminima.engine.core.say import say
from badminima.engine.train import interrupt


class Progress:
    """Report progress of `total` items to stderr; quiet when disabled."""

    def __init__(self, total: int, label: str = "networks", enabled: bool = True, done: int = 0):
        self.total, self.label, self.enabled = total, label, enabled
        self.start_done = self.done = done
        self.t0 = self.last = time.monotonic()
        self.tty = sys.stderr is not None and sys.stderr.isatty()
        self.every = 0.5 if self.tty else 30.0

    def update(self, n: int) -> None:
        """n more items done; the caller is at a safe point, where a Ctrl-C whose KeyboardInterrupt some
        library swallowed is raised (engine/train/interrupt.py)."""
        interrupt.check()
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self.last >= self.every or self.done >= self.total):
            self.last = now
            self._print(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        rate = (self.done - self.start_done) / max(now - self.t0, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / max(self.total, 1)
        eta = f"{left:.0f} s left" if left != float("inf") else "-"
        return f"{self.done}/{self.total} {self.label} ({pct:.1f}%), {rate:.3g}/s, {eta}"

    def _print(self, now: float) -> None:
        end = "" if self.tty and self.done < self.total else "\n"
        prefix = "\r" if self.tty else ""
        say(prefix + self.line(now), end)

    def close(self) -> None:
        if self.enabled and self.tty and self.done < self.total:
            say("")
