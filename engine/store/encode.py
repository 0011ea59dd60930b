"""HDF5 chunks encoded in parallel threads: the byte shuffle, deflate and Fletcher-32 filters as HDF5
applies them, so that the writer compresses whole chunks on several cores (the compressor and NumPy's
copies release the GIL; HDF5 itself holds one lock) and stores them with write_direct_chunk.

The deflate stream comes from ISA-L (the `isal` package) where it is installed: the same zlib format
that HDF5's deflate filter reads (every HDF5 reader decodes it), about 5x zlib's speed at level 1 on
trained results and 4-6.5% larger; without it, or at a level ISA-L lacks (it has 0-3), from zlib,
whose bytes are then HDF5's own.

The filter pipeline of every result dataset is shuffle -> deflate -> fletcher32 (write._create_datasets).
Fletcher-32 (HDF5's H5_checksum_fletcher32): over the data as big-endian 16-bit words w_0..w_{n-1},
sum1 = sum w_k and sum2 = sum (n - k) w_k, each reduced to [1, 65535] modulo 65535 (0 only for all-zero
data: the reductions (s & 0xffff) + (s >> 16) keep a positive sum positive), stored little-endian as
sum2 << 16 | sum1 after the compressed bytes.
"""
from __future__ import annotations

import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:
    from isal import isal_zlib as _isal
except ImportError:                      # not installed (the package runs from a checkout): zlib
    _isal = None

CODECS = ("isal", "zlib") if _isal is not None else ("zlib",)
_compress = (_isal or zlib).compress
_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def _forget_pools() -> None:
    _POOLS.clear()


os.register_at_fork(after_in_child=_forget_pools)      # a forked child has none of its parent's threads


def _fold(s: int) -> int:
    """A non-negative sum reduced like HDF5's Fletcher-32: 0 stays 0, else the representative in [1, 65535]."""
    return 0 if s == 0 else (s - 1) % 65535 + 1


def fletcher32(data: bytes) -> int:
    """HDF5's Fletcher-32 checksum of data (an odd last byte counts as the high byte of a word)."""
    w = np.frombuffer(data + b"\0" if len(data) % 2 else data, dtype=">u2").astype(np.int64)
    n = w.shape[0]
    s1 = int(w.sum())
    s2 = int(np.dot(w, np.arange(n, 0, -1, dtype=np.int64)))     # <= 65535 * n^2 / 2: fits int64 for n < 2^24
    return _fold(s2) << 16 | _fold(s1)


def encode_chunk(block: np.ndarray, level: int) -> bytes:
    """One whole chunk (C-contiguous rows) through shuffle, deflate at `level` and fletcher32."""
    size = block.dtype.itemsize
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(-1, size)
    shuffled = np.ascontiguousarray(raw.T) if size > 1 else raw
    packed = (_compress if 0 <= level <= 3 else zlib.compress)(shuffled, level)
    return packed + fletcher32(packed).to_bytes(4, "little")


def codec() -> str:
    """The deflate implementation encode_chunk uses: "isal" or "zlib"."""
    return "isal" if _compress is not zlib.compress else "zlib"


def use(name: str) -> None:
    """Make encode_chunk deflate with `name` (one of CODECS): for tests and benchmarks that compare the two."""
    global _compress
    if name not in CODECS:
        raise ValueError(f"deflate codec {name!r} is not available here (have: {', '.join(CODECS)})")
    _compress = _isal.compress if name == "isal" else zlib.compress


def pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of `threads` encoding threads (one per thread count asked for, made on first use)."""
    with _LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="badminima-encode")
        return _POOLS[threads]
