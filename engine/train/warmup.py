"""Compile every kernel variant of a run once (Numba caches them on disk), e.g. before SLURM fans out."""
from __future__ import annotations

import numpy as np

from badminima.engine.train.config import ConfigError, InitSpec, TrainConfig
from badminima.engine.train.limits import MAX_HIDDEN
from badminima.engine.train.codegen import FUSE_MAX_POINTS, fused_points
from badminima.engine.train.run import train_range


def parse_int_set(text: str, what: str = "", lo: int = 1, hi: int = 10 ** 6) -> list[int]:
    """'2-7' -> [2..7]; '2,3' -> [2, 3]; every value in [lo, hi] (ConfigError naming `what` otherwise)."""
    out: list[int] = []
    shown = text if len(text) <= 40 else text[:40] + "..."
    for part in text.split(","):
        a, _, b = part.partition("-")
        try:
            if len(a.strip()) > 20 or len(b.strip()) > 20:
                raise ValueError
            first, last = int(a), (int(b) if b else int(a))
        except ValueError:
            raise ConfigError(f"not a list of integers: {shown!r}") from None
        for v in (first, last):
            if not lo <= v <= hi:
                raise ConfigError(f"{what or 'a value'} must be in [{lo}, {hi}], got {v}")
        out.extend(range(first, last + 1))
    return out


# the paper's training sets (the deadlock sets in data/ are for certification, not training)
PAPER_DATASETS = ("xor", "fxor", "paper10", "relu_d1", "relu_d2", "relu_d3")


def paper_sizes(d: int) -> list[int]:
    """Point counts of the paper's datasets of input dimension d (each gets its own fused kernel)."""
    from badminima.engine.data.datasets import load_dataset
    return sorted({ds.x.shape[0] for ds in map(load_dataset, PAPER_DATASETS) if ds.x.shape[1] == d})


def warm(dims, hiddens, acts, opts, dtypes, points=None, echo=print) -> int:
    """Train 1 network for 2 steps in every variant; returns the number of variants.

    Full-batch kernels are specialized to the dataset's size (see kernels.codegen.fused_points):
    they are compiled for `points` (default: the sizes of the paper's datasets of that dimension)
    and once more unspecialized, for larger datasets.  SGD kernels do not depend on the size.
    """
    count = 0
    for d in dims:
        if d not in (1, 2):
            raise ConfigError(f"input dimension must be 1 or 2, got {d}")
        kind = "classification" if d == 2 else "regression"
        sizes = sorted(set(points or paper_sizes(d)))
        if any(n < 2 for n in sizes):
            raise ConfigError(f"point counts must be at least 2, got {sizes}")
        for h in hiddens:
            for act in acts:
                for opt in opts:
                    for dt in dtypes:
                        for n in ([max(sizes)] if opt == "sgd" else [*sizes, FUSE_MAX_POINTS + 1]):
                            X = np.linspace(0.0, 1.0, n * d).reshape(n, d)
                            y = np.arange(n, dtype=float) % 2
                            cfg = TrainConfig(dataset="warmup", dataset_fingerprint="", kind=kind, hidden=h,
                                              activation=act, optimizer=opt, lr=0.1, steps=2, init=InitSpec(),
                                              networks=1, dtype=dt).validate()
                            train_range(cfg, X, y, 0, 1, threads=1)
                            count += 1
                            echo(f"  d={d} h={h} {act} {opt} {dt} "
                                 f"points={n if fused_points(opt, n, hidden=h) else 'any'}")
    return count
