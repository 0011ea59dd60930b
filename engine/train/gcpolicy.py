"""Garbage collection for a process that compiles with Numba (a command, a pool worker).

Numba's compiler makes millions of short-lived objects on top of a heap of hundreds of thousands
(numba, llvmlite, scipy): at Python's default thresholds the full collections that heap sets off took
11% of compiling three kernel variants (1.4 of 12.6 s, measured with gc.callbacks), and at exit the
interpreter's final collections walked it again (0.15-0.3 s of a one-second command).  Collections stay
on, so memory stays bounded, only rarer; at exit the objects are frozen, so the last collections skip
them (atexit handlers still run, and every file is closed by its owner before)."""
from __future__ import annotations

import atexit
import functools
import gc

#: young collections every 20000 net allocations (default 700), older ones every 10 of the younger
THRESHOLDS = (20000, 10, 10)


@functools.cache
def for_compiling() -> None:
    """Set this process's collector for compiling work (module docstring); once per process, however
    often it is called (a test process runs many commands)."""
    gc.set_threshold(*THRESHOLDS)
    atexit.register(gc.freeze)
