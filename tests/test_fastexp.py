"""The vectorizable exp against numpy's, over the whole range, in both precisions."""
import numpy as np

from badminima.engine.core.fastexp import fexp
from badminima.engine.core.jit import njit


@njit(cache=False)      # a cached copy would keep a stale exp: Numba's cache ignores callees' edits
def _apply(x, out):
    for i in range(x.size):
        out[i] = fexp(x[i])


def test_exp64_within_two_ulp():
    x = np.concatenate([np.linspace(-707, 709, 400_001), np.random.default_rng(0).normal(0, 5, 100_000)])
    out = np.empty_like(x)
    _apply(x, out)
    ulps = np.abs(out - np.exp(x)) / np.spacing(np.exp(x))
    assert ulps.max() <= 2


def test_exp32_within_two_ulp_and_clamps():
    x = np.linspace(-87, 88, 200_001).astype(np.float32)
    out = np.empty_like(x)
    _apply(x, out)
    ref = np.exp(x.astype(np.float64))
    assert (np.abs(out - ref) / np.spacing(ref.astype(np.float32))).max() <= 2
    big = np.array([-1e4, 1e4], np.float32)
    o = np.empty_like(big)
    _apply(big, o)
    assert 0 < o[0] < 1e-37 and np.isfinite(o[1])


def test_exp_keeps_the_precision_of_its_argument():
    # a float64 intermediate in exp32 silently halves the float32 kernels' SIMD width
    f = njit(lambda x: fexp(x), cache=False)
    for dt in (np.float32, np.float64):
        f(dt(1.5))
    assert {str(sig.return_type) for sig in f.nopython_signatures} == {"float32", "float64"}
    assert f(np.float32(1.5)) == np.float32(np.exp(np.float32(1.5)))


def test_exp_rounds_its_polynomial_with_explicit_fused_multiply_adds():
    # explicit llvm.fma (not contraction, which no fast-math flag allows): one rounding per a*b + c,
    # the same whatever code the exp is inlined into
    import numba

    @numba.njit(cache=False)
    def call(x):
        return fexp(x)
    call(np.float32(0.3))
    call(0.3)
    counts = {str(sig): ir.count("@llvm.fma.") for sig, ir in call.inspect_llvm().items()}
    assert counts == {"(float32,)": 9, "(float64,)": 14}, counts
