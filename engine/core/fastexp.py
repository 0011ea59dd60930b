"""Vectorizable exp for float64 and float32 (libm's exp stops LLVM from vectorizing the lane loops).

exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 by a two-constant (Cody-Waite) reduction,
|r| <= ln2/2 (n found by the shifter trick below); exp(r) by a near-minimax polynomial (degree 11
for f64, 6 for f32: 1.6e-17 resp. 2e-8 relative) by Estrin's scheme, 2^n built directly in the
exponent bits.  Accurate to ~2 ulp; tests/test_fastexp.py checks it against numpy over the
whole range, and that float32 stays float32 throughout.  Also the two intrinsics the generated code
calls for its arithmetic: fma (a * b + c rounded once) and select (a if c else b without a branch).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from badminima.engine.core.jit import njit


def _bitcast(src, dst):
    """An intrinsic reinterpreting a src value's bits as dst (a register bitcast; vectorizes)."""
    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(dst))
        return dst(src), codegen
    return cast


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma: one vfmadd, vectorizable).  Explicit, so the rounding never
    depends on what LLVM may contract around it (there is no fast-math anywhere)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)
    return a(a, b, c), codegen


@intrinsic
def select(typingctx, c, a, b):
    """a if c else b for scalars (numbers or booleans) as one LLVM select, typed as Numba types the
    conditional expression (a and b unified).  An intrinsic, not a jitted function: a call of one costs
    Numba a call and an error check to lower per use, and the generated steps make hundreds
    (engine/train/codegen.branchless).  Arrays are refused: the select would not take a reference."""
    ty = typingctx.unify_types(a, b)
    if not (isinstance(ty, (types.Number, types.Boolean)) and isinstance(c, (types.Boolean, types.Integer))):
        return None
    ty = types.unliteral(ty)

    def codegen(context, builder, signature, args):
        cond = context.cast(builder, args[0], signature.args[0], types.boolean)
        x = context.cast(builder, args[1], signature.args[1], ty)
        y = context.cast(builder, args[2], signature.args[2], ty)
        return builder.select(cond, x, y)
    return ty(c, a, b), codegen


_bits_to_f64 = _bitcast(types.int64, types.float64)
_f64_to_bits = _bitcast(types.float64, types.int64)
_bits_to_f32 = _bitcast(types.int32, types.float32)
_f32_to_bits = _bitcast(types.float32, types.int32)


# Rounding to the nearest integer by the "shifter" trick: adding 1.5 * 2^52 (2^23 for float32) to
# |t| < 2^51 lands on a float whose spacing is 1, so the addition itself rounds t to an integer n,
# which then sits in the low mantissa bits (no floor, no float->int conversion).  The shifters also
# carry the exponent bias (1023, resp. 127), so those low bits are already the biased exponent of
# 2^n, and one shift moves them into place.  Needs no reassociation (the kernels use no fast-math).
_SHIFT64 = 6755399441056767.0      # 1.5 * 2^52 + 1023
_SHIFT32 = np.float32(12583039.0)  # 1.5 * 2^23 + 127


@njit
def exp64(x):
    """exp for float64; clamps to [-708, 709] (exp(-708) ~ 3e-308, the smallest normal range)."""
    x = min(max(x, -708.0), 709.0)
    t = fma(x, 1.4426950408889634, _SHIFT64)
    n = t - _SHIFT64
    r = fma(n, -0.6931471803691238, x)      # ln2 high part (exact product for |n| < 2^11)
    r = fma(n, -1.9082149292705877e-10, r)  # ln2 low part
    r2 = r * r
    r4 = r2 * r2
    q0 = fma(r2, fma(r, 0.1666666666666668, 0.5000000000000019), 1.0 + r)
    q1 = fma(r2, fma(r, 0.00019841269890076403, 0.0013888888952352863), fma(r, 0.008333333333319589, 0.04166666666648795))
    q2 = fma(r2, fma(r, 2.5110049204818658e-08, 2.763265472252779e-07), fma(r, 2.755724088722987e-06, 2.4801485441561313e-05))
    p = fma(r4, fma(r4, q2, q1), q0)
    return p * _bits_to_f64(_f64_to_bits(t) << 52)


@njit
def exp32(x):
    """exp for float32, computed entirely in float32 / int32 (16 lanes per 512-bit vector); clamps to [-87, 88]."""
    x = min(max(x, np.float32(-87.0)), np.float32(88.0))
    t = fma(x, np.float32(1.442695), _SHIFT32)
    n = t - _SHIFT32
    r = fma(n, np.float32(-0.693359375), x)   # ln2 high part (few mantissa bits: n*hi exact)
    r = fma(n, np.float32(2.12194440e-4), r)
    r2 = r * r
    q0 = fma(r2, fma(r, np.float32(0.16666415333747864), np.float32(0.5)), np.float32(1.0) + r)
    q1 = fma(r2, np.float32(0.0013941118959337473), fma(r, np.float32(0.008375134319067001), np.float32(0.04166635125875473)))
    p = fma(r2 * r2, q1, q0)
    return p * _bits_to_f32(_f32_to_bits(t) << np.int32(23))


def fexp(x):
    """exp in the precision of x (float32 or float64), vectorizable; for use inside jitted code."""
    raise NotImplementedError("fexp is only callable from jitted code")


@overload(fexp)
def _fexp_overload(x):
    if x == types.float32:
        return lambda x: exp32(x)
    if isinstance(x, types.Float):
        return lambda x: exp64(x)
    return None
