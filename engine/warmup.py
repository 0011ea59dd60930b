"""Compile every kernel variant of a run once (Numba caches them on disk), e.g. before SLURM fans out."""
from __future__ import annotations

import numpy as np

from .config import ConfigError, InitSpec, TrainConfig
from .train import train_range


def parse_int_set(text: str) -> list[int]:
    """'2-7' -> [2..7]; '2,3' -> [2, 3]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            a, _, b = part.partition("-")
            out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    except ValueError:
        raise ConfigError(f"not a list of integers: {text!r}") from None
    return out


def warm(dims, hiddens, acts, opts, dtypes, echo=print) -> int:
    """Train 1 network for 2 steps in every variant; returns the number of variants."""
    count = 0
    for d in dims:
        if d not in (1, 2):
            raise ConfigError(f"input dimension must be 1 or 2, got {d}")
        kind = "classification" if d == 2 else "regression"
        X = np.zeros((2, d))
        X[1] = 1.0
        y = np.array([0.0, 1.0])
        for h in hiddens:
            for act in acts:
                for opt in opts:
                    for dt in dtypes:
                        cfg = TrainConfig(dataset="warmup", dataset_fingerprint="", kind=kind, hidden=h,
                                          activation=act, optimizer=opt, lr=0.1, steps=2, init=InitSpec(),
                                          networks=1, dtype=dt).validate()
                        train_range(cfg, X, y, 0, 1, threads=1)
                        count += 1
                        echo(f"  d={d} h={h} {act} {opt} {dt}")
    return count
