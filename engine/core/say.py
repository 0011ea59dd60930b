"""say(): the one way the package writes a note or progress line to stderr, best effort."""
from __future__ import annotations

import sys


def say(text: str, end: str = "\n") -> None:
    """A line to stderr (progress, a note), best effort: a full or closed stderr (2>/dev/full) never stops
    the work."""
    try:
        print(text, end=end, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):       # ValueError: closed; AttributeError: sys.stderr None
        pass
