"""say(): the one way the package writes a note or progress line to stderr, best effort; name_some():
a list shortened for a one-line message."""
from __future__ import annotations

import sys


def say(text: str, end: str = "\n") -> None:
    """A line to stderr (progress, a note), best effort: a full or closed stderr (2>/dev/full) never stops
    the work."""
    try:
        print(text, end=end, file=sys.stderr, flush=True)
    except (OSError, ValueError, AttributeError):       # ValueError: closed; AttributeError: sys.stderr None
        pass


def name_some(names, limit: int = 8, sep: str = ", ") -> str:
    """At most `limit` of `names` joined for a one-line message, then how many there are in all."""
    names = [str(n) for n in names]
    return sep.join(names[:limit]) + (f"{sep}... ({len(names)} in all)" if len(names) > limit else "")
