"""One place for the project's Numba choices: caching, no fast-math, and the environment switches.

`BADMINIMA_NO_CACHE=1` turns on-disk caching off; Numba's own `NUMBA_CACHE_DIR` moves the cache (set it
to shared storage on clusters so array tasks reuse one compile).  Otherwise compiled code lives under
cache_root() (`$XDG_CACHE_HOME/badminima`, else `~/.cache/badminima`), never inside the installed
package: files there would outlive `pip uninstall` and, left as a bare folder in site-packages,
hide a later editable install of the package.

Numba checks a cached function only against its own file, yet a jitted function calls functions of
engine/core and of its own folder (no others): the package's entries are also keyed on the digest of
those files, so editing any of them recompiles the functions that may have inlined them.
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
from pathlib import Path

import numba
from numba import types
from numba.core import caching
from numba.extending import intrinsic
from numba.core.caching import UserWideCacheLocator

CACHE = os.environ.get("BADMINIMA_NO_CACHE", "") not in ("1", "true", "yes")
_PACKAGE = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """The user's cache folder for this package: compiled functions and generated kernel modules
    ($XDG_CACHE_HOME/badminima where that is an absolute path, as the XDG spec asks, else ~/.cache/badminima)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "badminima"


@functools.cache
def sources_digest(folder: Path) -> str:
    """Digest of the Python sources and code templates in `folder` (names and contents)."""
    h = hashlib.sha256()
    for path in sorted([*Path(folder).glob("*.py"), *Path(folder).glob("*.py.txt")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def core_digest() -> str:
    """Digest of engine/core, the only code a generated kernel calls."""
    return sources_digest(Path(__file__).resolve().parent)


class _PackageCacheLocator(UserWideCacheLocator):
    """Caches the package's own jitted functions under cache_root()/numba (one folder per source
    folder, named by a hash of its path, so two checkouts never share entries), keyed also on the
    sources they may call."""

    def __init__(self, py_func, py_file):
        super().__init__(py_func, py_file)
        self._cache_path = str(cache_root() / "numba" / self.get_suitable_cache_subpath(py_file))

    def get_source_stamp(self):
        return super().get_source_stamp(), core_digest(), sources_digest(Path(self._py_file).resolve().parent)

    @classmethod
    def from_function(cls, py_func, py_file):
        if not Path(py_file).resolve().is_relative_to(_PACKAGE):
            return None
        return super().from_function(py_func, py_file)


@functools.cache
def scratch_dir() -> Path:
    """A folder of this process, removed at its exit: where compiled code (and generated kernels) go
    when no cache folder can be written, so that a run still works, compiling as on a first run."""
    import atexit
    import shutil
    import tempfile
    path = Path(tempfile.mkdtemp(prefix="badminima-jit-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    # once per command, not once more in each worker process it starts: the mark names the process that
    # gave the note, so that only its own children (not a later command a notebook starts) stay quiet
    if os.environ.get("BADMINIMA_SCRATCH_NOTED") not in (str(os.getpid()), str(os.getppid())):
        os.environ["BADMINIMA_SCRATCH_NOTED"] = str(os.getpid())
        from badminima.engine.core.say import say
        say("note: no writable cache folder (set NUMBA_CACHE_DIR, and BADMINIMA_KERNEL_DIR for the generated "
            "kernels, to one); compiled code is kept for this run only")
    return path


class _ScratchCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """The last resort, where no other locator can write (a read-only cache, a file in its place):
    scratch_dir(), keyed like Numba's own entries (its source-file mixin)."""

    def __init__(self, py_func, py_file):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno

    def get_cache_path(self):
        return str(scratch_dir() / "numba")

    @classmethod
    def from_function(cls, py_func, py_file):
        return super().from_function(py_func, py_file) if _ours(py_func) else None


def _ours(py_func) -> bool:
    """The package's functions and its generated kernels: other code keeps Numba's own behaviour."""
    return (py_func.__module__ or "").split(".")[0] in ("badminima", "badminima_generated")


_numba_load_overload = caching.Cache.load_overload
# what unpickling a truncated or garbled file raises (an OSError, e.g. a shared file system's hiccup, is
# not damage: it propagates as Numba lets it)
_DAMAGED = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError)


def _load_overload(self, sig, target_context):
    """Cache.load_overload where a damaged entry of ours is a miss, said once: a damaged index is
    removed (the function compiles and writes a new one), a damaged data file is left for Numba's save
    to replace; other entries of the function are kept."""
    try:
        return _numba_load_overload(self, sig, target_context)
    except _DAMAGED:
        if not _ours(self._py_func):
            raise
    _note_damaged(self.cache_path)
    try:
        self._cache_file._load_index()
    except _DAMAGED:                    # the index itself: remove it
        try:
            os.remove(self._cache_file._index_path)
        except OSError:
            pass
    return None


@functools.cache
def _note_damaged(folder: str) -> None:
    """Say once per folder that damaged cache entries are compiled again (else a cache that keeps being
    damaged would cost a compile every run without a word)."""
    from badminima.engine.core.say import say
    say(f"note: damaged entries of compiled code in {folder} are compiled again")


caching.Cache.load_overload = _load_overload


# after Numba's own NUMBA_CACHE_DIR locator, before its in-tree __pycache__ one; the scratch folder
# after all of them (the class holding the list is CacheImpl in recent Numba, _CacheImpl in older ones)
_LOCATORS = getattr(caching, "CacheImpl", None) or caching._CacheImpl
if _PackageCacheLocator not in _LOCATORS._locator_classes:
    _LOCATORS._locator_classes.insert(1, _PackageCacheLocator)
if _ScratchCacheLocator not in _LOCATORS._locator_classes:
    _LOCATORS._locator_classes.append(_ScratchCacheLocator)

# No fast-math flags at all.  Each lets LLVM choose by the surrounding code ('contract': fuse a
# multiply-add; 'arcp': divide by multiplying with a shared reciprocal; 'afn': an approximate libm
# call), and Numba runs a freshly compiled caller with its callees' own code but caches the caller
# with copies optimised in its context: with 'contract' a run that compiled a kernel and a run that
# loaded it rounded differently (tests/test_kernels.py checks they agree now).  'nnan'/'ninf' would
# also hide the NaN/inf that classify divergence, and 'reassoc' would fold fast_exp's two-constant
# reduction.  The kernels vectorize without them (FMA was worth 5-10% of a step).


def in_disk_cache(dispatcher) -> bool:
    """Whether Numba's on-disk cache holds a compiled version of `dispatcher` for its current sources
    (True where caching is off or Numba's layout differs: the caller then just compiles in-process)."""
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except AttributeError:
        return True
    except Exception:           # noqa: BLE001 - a damaged index: not usable, so compile (and replace it)
        return False


def njit(*args, **kw):
    """numba.njit with the project's defaults (cache, no fast-math, nogil)."""
    kw.setdefault("cache", CACHE)
    kw.setdefault("fastmath", False)
    kw.setdefault("nogil", True)
    kw.setdefault("error_model", "numpy")
    return numba.njit(*args, **kw)


def cfunc(sig, **kw):
    """numba.cfunc with the project's defaults: a function compiled apart, which jitted callers take as
    a first-class function argument and call through its address.  A large callee linked the usual way
    is optimized again inside every caller that links it (the Jacobi sweep of the search: tens of
    seconds of compiling per caller); called through its address it is compiled once."""
    kw.setdefault("cache", CACHE)
    kw.setdefault("fastmath", False)
    kw.setdefault("error_model", "numpy")
    return numba.cfunc(sig, **kw)


@intrinsic
def data_ptr(typingctx, arr):
    """The data pointer of a contiguous array, to hand it to a cfunc taking a CPointer."""
    if not (isinstance(arr, types.Array) and arr.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, value=args[0]).data
    return types.CPointer(arr.dtype)(arr), codegen
