"""An atomic fetch-and-add on an int64 array element, callable from jitted code (Numba has none).

The training tasks of a chunk share one counter and each takes the next untrained network from it,
so every thread keeps all its lanes busy until the chunk is exhausted (see run_task).
"""
from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def fetch_add(typingctx, arr, idx, val):
    """old = arr[idx]; arr[idx] += val, as one sequentially consistent atomic operation; returns old."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64 and isinstance(idx, types.Integer)
            and isinstance(val, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, sig.args[0], ary,
                                       [context.cast(builder, args[1], sig.args[1], types.intp)])
        inc = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, inc, "seq_cst")
    return types.int64(arr, idx, val), codegen
