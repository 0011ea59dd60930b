"""A 64-byte aligned stack frame for the jitted function that calls align_stack() (Numba has no option).

The training steps keep more values alive than the 32 vector registers hold, so LLVM spills 512-bit
vectors to the stack.  Without frame pointer it cannot realign the frame once register allocation has
begun, so the spill slots get the ABI's 16-byte alignment, and whether they straddle cache lines then
depends on the caller's stack depth: the same kernel ran 20% slower from one call chain than from
another.  One 64-byte aligned stack slot, created up front, makes LLVM realign the frame on entry,
and the spills become aligned too.
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def align_stack(typingctx):
    """Realign the calling function's stack frame to 64 bytes (costs one `and` on entry)."""
    def codegen(context, builder, sig, args):
        with builder.goto_entry_block():
            slot = builder.alloca(ir.IntType(8), size=ir.Constant(ir.IntType(64), 64))
            slot.align = 64
            # an empty asm statement that "uses" the slot keeps LLVM from deleting it
            builder.asm(ir.FunctionType(ir.VoidType(), [slot.type]), "", "r", [slot], side_effect=True)
        return context.get_dummy_value()
    return types.none(), codegen
