"""Ctrl-C, and the signals that end a job, never lost.

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to run Python code
-- also inside a weakref callback or a finalizer, where the interpreter reports it as "Exception
ignored" and drops it, or inside a C library's callback, which may turn it into another error.  h5py
runs such callbacks on every file it opens and closes: of 84 SIGINTs sent to a loop reading shard
files, 14 were dropped that way and the loop went on (the Dask client following its shards kept
running after Ctrl-C, and so did a shard task writing its file).

install() (the command line calls it) replaces the SIGINT handler with one that records the signal
before raising KeyboardInterrupt as usual (for the first signal only: later ones change nothing); the
loops of long work call check() at their safe points (after a committed chunk, between two polls,
between two copied fields, while threads run a chunk), which raises
KeyboardInterrupt if a signal was recorded and its exception was lost; received() tells an error
raised while unwinding from one.  A KeyboardInterrupt the interpreter drops that way is not printed
either ("Exception ignored ..." and its traceback): it is recorded, and check() raises it again.

SIGTERM (what `kill`, `scancel` and a batch system's time limit send) and SIGHUP (a closed terminal)
take the same path where they have their default action, which kills the process on the spot: the
run stops at the same safe points, releases its lock and says which signal stopped it.
"""
from __future__ import annotations

import atexit
import contextlib
import signal
import sys
import threading

_STOPPING = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _Flag:
    """The record of a stopping signal: a plain attribute the handler sets.  Not a threading.Event, whose
    set() takes a lock: a second signal arriving while the first handler held it (`timeout` signals the
    process and then its group; `scancel` every process of a job) blocked the process for good."""
    __slots__ = ("value",)

    def __init__(self):
        self.value = False

    def set(self) -> None:
        self.value = True

    def clear(self) -> None:
        self.value = False

    def is_set(self) -> bool:
        return self.value


_received = _Flag()
_stopping = _Flag()         # a stop is under way, from the first signal until the next install()
_deferred = _Flag()         # inside deferred(): a signal is recorded, and raised after the block
_signum = signal.SIGINT
_previous_unraisable = sys.unraisablehook


def _unraisable(info) -> None:
    """sys.unraisablehook: a recorded signal's KeyboardInterrupt dropped in a finalizer or weakref
    callback is silent (check() raises it at the next safe point); anything else as before."""
    if issubclass(info.exc_type, KeyboardInterrupt) and _received.is_set():
        return
    _previous_unraisable(info)


_previous_threads = threading.excepthook


def _thread_exception(args) -> None:
    """threading.excepthook: once a stopping signal arrived, the InvalidStateError a process pool's
    manager thread raises when the signal's process group also killed the pool's workers (it sets an
    exception on futures already cancelled) is silent; anything else as before."""
    from concurrent.futures import InvalidStateError
    if issubclass(args.exc_type, InvalidStateError) and _received.is_set():
        return
    _previous_threads(args)


def _handler(signum, frame):
    global _signum
    if _stopping.is_set():
        # the first signal's stop is under way: a second one (a terminal's Ctrl-C after `timeout`'s
        # SIGTERM, scancel signalling every process) neither cuts its cleanup short nor changes the
        # exit status; SIGKILL still ends the process at once
        return
    _signum = signum
    _stopping.set()
    _received.set()
    if not _deferred.is_set():
        raise KeyboardInterrupt


def install() -> None:
    """Record every SIGINT, SIGTERM and SIGHUP (then raise KeyboardInterrupt as Python does for
    SIGINT); clears an earlier record.  Only from the main thread, and only for a signal that has its
    default handling (not where the caller chose another one, e.g. ignoring it)."""
    _received.clear()
    _stopping.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    default = {signal.SIGINT: signal.default_int_handler}
    for sig in _STOPPING:
        if signal.getsignal(sig) in (default.get(sig, signal.SIG_DFL), _handler):
            signal.signal(sig, _handler)
    global _at_exit
    if not _at_exit:
        atexit.register(_ignore_at_exit)
        _at_exit = True
    if any(signal.getsignal(sig) is _handler for sig in _STOPPING):
        global _previous_unraisable, _previous_threads
        if sys.unraisablehook is not _unraisable:
            _previous_unraisable = sys.unraisablehook
        sys.unraisablehook = _unraisable
        if threading.excepthook is not _thread_exception:
            _previous_threads = threading.excepthook
        threading.excepthook = _thread_exception


@contextlib.contextmanager
def deferred():
    """A block a stop signal must not cut short (closing a cluster): one arriving inside is recorded,
    and raised as KeyboardInterrupt once the block is done."""
    _deferred.set()
    try:
        yield
    finally:
        _deferred.clear()
    check()


def quiet() -> None:
    """The command's outcome is decided and being reported: a stopping signal from here on changes
    nothing (until the next install())."""
    _stopping.set()


_at_exit = False


def _ignore_at_exit() -> None:
    """At the process's exit, ignore the signals this module handles: Python restores their default
    action while it shuts down, and a signal arriving then would end the process with its own status
    instead of the command's."""
    for sig in _STOPPING:
        if signal.getsignal(sig) is _handler:
            signal.signal(sig, signal.SIG_IGN)


def clear() -> None:
    """Forget a recorded signal (once it has been reported); a stop under way stays so, a later signal
    changing nothing, until the next install()."""
    _received.clear()


def received() -> bool:
    """Whether a SIGINT, SIGTERM or SIGHUP arrived since install()."""
    return _received.is_set()


def signal_received() -> signal.Signals | None:
    """The first stopping signal that arrived since install(), or None."""
    return signal.Signals(_signum) if _received.is_set() else None


def check() -> None:
    """Raise KeyboardInterrupt if a stopping signal arrived (even one whose exception some library
    swallowed)."""
    if _received.is_set():
        raise KeyboardInterrupt
