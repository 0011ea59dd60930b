"""The shared work counter of a task's threads, callable from jitted code (Numba has no atomics).

The training tasks of a chunk share one counter and each takes the next untrained network from it
with fetch_add, so every thread keeps all its lanes busy until the chunk is exhausted (see run_task).
The same counter says when to stop early: the caller sets it to STOPPED when the work is abandoned
(a stop signal, another thread's error), and a long kernel polls stopped() between its blocks of
steps, so that even one block of an absurd budget ends within a fraction of a second.
"""
from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from badminima.engine.core.jit import njit

STOPPED = 1 << 62          # past any item index (items are counted within one chunk)


def _item_pointer(context, builder, sig, args):
    ary = context.make_array(sig.args[0])(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, sig.args[0], ary,
                                    [context.cast(builder, args[1], sig.args[1], types.intp)])


def _int64_item(arr, idx) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.int64 and isinstance(idx, types.Integer)


@intrinsic
def fetch_add(typingctx, arr, idx, val):
    """old = arr[idx]; arr[idx] += val, as one sequentially consistent atomic operation; returns old."""
    if not (_int64_item(arr, idx) and isinstance(val, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        inc = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", _item_pointer(context, builder, sig, args), inc, "seq_cst")
    return types.int64(arr, idx, val), codegen


@intrinsic
def load_acquire(typingctx, arr, idx):
    """arr[idx] read as an atomic (acquire) load: a plain load on x86, but one the compiler may not hoist
    out of a loop, so a value another thread stores is seen."""
    if not _int64_item(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_item_pointer(context, builder, sig, args), "acquire", 8)
    return types.int64(arr, idx), codegen


@njit
def stopped(counter) -> bool:
    """Whether the caller abandoned the work (counter[0] set to STOPPED, engine/train/threads.on_threads)."""
    return load_acquire(counter, 0) >= STOPPED
