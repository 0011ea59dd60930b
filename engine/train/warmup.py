"""Compile the kernel variants a set of runs needs, ahead of time and on every core (`badminima compile`)."""
from __future__ import annotations

from badminima.engine.train.config import ConfigError
from badminima.engine.train.codegen import FUSE_MAX_POINTS
from badminima.engine.train.precompile import Precompiler, Variant, variant_of, warm_outcomes


# the paper's training sets (the deadlock sets in data/ are for certification, not training)
PAPER_DATASETS = ("xor", "fxor", "paper10", "relu_d1", "relu_d2", "relu_d3")


def paper_sizes(d: int) -> list[int]:
    """Point counts of the paper's datasets of input dimension d (each gets its own fused kernel)."""
    from badminima.engine.data.datasets import load_dataset
    return sorted({ds.x.shape[0] for ds in map(load_dataset, PAPER_DATASETS) if ds.x.shape[1] == d})


def variants_for(dims, hiddens, acts, opts, dtypes, points=None) -> list[Variant]:
    """Every kernel variant of the given options, in order.

    Full-batch kernels are specialized to the dataset's size (see codegen.fused_points): one variant
    per size in `points` (default: the sizes of the paper's datasets of that dimension) and one
    unspecialized, for larger datasets.  SGD kernels do not depend on the size.
    """
    out: list[Variant] = []
    for d in dims:
        if d not in (1, 2):
            raise ConfigError(f"input dimension must be 1 or 2, got {d}")
        sizes = sorted(set(points or paper_sizes(d)))
        bad = [n for n in sizes if n < 2]
        if bad:
            raise ConfigError(f"point counts must be at least 2, got {', '.join(map(str, bad[:6]))}"
                              + (f", ... ({len(bad)} values)" if len(bad) > 6 else ""))
        for h in hiddens:
            for act in acts:
                for opt in opts:
                    for dt in dtypes:
                        # validates the names once, as a run would
                        cfg = Variant(d, h, act, "xent" if d == 2 else "mse", opt, dt, 0).config()
                        for n in ([max(sizes)] if opt == "sgd" else [*sizes, FUSE_MAX_POINTS + 1]):
                            out.append(variant_of(cfg, d, n))
    return list(dict.fromkeys(out))


def warm(variants, workers: int | None = None, progress: bool = True) -> int:
    """Compile (into Numba's on-disk cache) every variant not cached yet, in parallel worker processes,
    and the classification and finisher they share in this one; returns how many were compiled."""
    with Precompiler(variants, workers=workers, progress=progress) as pre:
        if pre.total and variants:
            warm_outcomes(variants[0])      # here, while the workers compile the kernels
        for v in variants:
            pre.wait(v)
        return pre.total
