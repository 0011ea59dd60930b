"""The batched outcome classification (engine/core/classify.classify) gives end_state's values for
every network, bit for bit: the definition it replaces, one network at a time."""
from dataclasses import replace

import numpy as np
import pytest

from badminima.engine.core.classify import classify, end_state
from badminima.engine.core.names import ACTIVATIONS, LOSSES
from badminima.engine.core.outcomes import DIVERGED, FINAL_CODES, SOLVED
from badminima.engine.train.run import _classified, train_range

from conftest import make_cfg


def _one_by_one(cfg, theta, raw, X, y):
    """The per-network definition: end_state on each row; a kernel's DIVERGED stays diverged."""
    n = theta.shape[0]
    out = [np.empty(n, np.int8)] + [np.empty(n) for _ in range(4)]
    for k in range(n):
        code, *vals = end_state(theta[k], raw[k] == SOLVED, X, y, X.shape[1], cfg.hidden,
                                ACTIVATIONS[cfg.activation], LOSSES[cfg.loss], cfg.gtol, cfg.xtol, cfg.solve_tol,
                                cfg.wmax, cfg.drift_gtol, cfg.drift_wmin, cfg.eig_tol)
        out[0][k] = DIVERGED if raw[k] == DIVERGED else code
        for a, v in zip(out[1:], vals):
            a[k] = v
    return out


def _batched(cfg, theta, raw, X, y):
    """classify on one thread (every block claimed from one counter), and the run's threaded call of it
    (blocks shared by the threads through the counter): the same values."""
    n = theta.shape[0]
    out = [np.empty(n, np.int8)] + [np.empty(n) for _ in range(4)]
    classify(theta, raw, X, y, X.shape[1], cfg.hidden, ACTIVATIONS[cfg.activation], LOSSES[cfg.loss], cfg.gtol,
             cfg.xtol, cfg.solve_tol, cfg.wmax, cfg.drift_gtol, cfg.drift_wmin, cfg.eig_tol, *out,
             np.zeros(1, np.int64))
    threaded = _classified(cfg, theta, raw, X, y)
    for a, key in zip(out, ("outcome", "loss", "accuracy", "grad_norm", "min_eig")):
        assert a.tobytes() == threaded[key].tobytes(), key
    return out


def _states(cfg, ds, rng, n=300):
    """End states of every kind: trained networks, random points, exact critical points of the
    dataset file, saddles, non-finite rows, and the kernel's codes in every combination."""
    res = train_range(replace(cfg, networks=n, finish_horizon=0), ds.x, ds.y, 0, n)
    P = res["weights"].shape[1]
    rows = [res["weights"], rng.normal(size=(50, P)) * 4, np.zeros((1, P))]
    rows += [np.asarray(p.theta)[None] for p in (ds.points or {}).values() if np.asarray(p.theta).shape == (P,)]
    bad = rng.normal(size=(4, P))
    bad[0, 0], bad[1, -1], bad[2, 1], bad[3, 2] = np.nan, np.inf, -np.inf, 1e300
    rows.append(bad)
    theta = np.ascontiguousarray(np.concatenate(rows))
    raw = np.asarray(rng.choice([SOLVED, DIVERGED, 6], size=theta.shape[0], p=[0.1, 0.05, 0.85]), np.int8)
    raw[: n] = res["optimizer_outcome"]        # mostly what a kernel would report
    return theta, raw


@pytest.mark.parametrize("dataset,act,opt,steps", [("xor", "sigmoid", "gd", 300), ("xor", "relu", "adam", 300),
                                                   ("paper10", "sigmoid", "gd", 200), ("fxor", "relu", "gd", 100),
                                                   ("relu_d1", "relu", "gd", 200)])
def test_batched_classification_equals_end_state_bit_for_bit(dataset, act, opt, steps, rng, request):
    from badminima.engine.data.datasets import load_dataset
    ds = load_dataset(dataset)
    cfg = make_cfg(ds, hidden=2, activation=act, optimizer=opt, lr=0.05 if opt == "adam" else 0.5, steps=steps)
    theta, raw = _states(cfg, ds, rng)
    X, y = np.array(ds.x), np.array(ds.y)
    want = _one_by_one(cfg, theta, raw, X, y)
    got = _batched(cfg, theta, raw, X, y)
    for w, g in zip(want, got):
        assert np.array_equal(w, g, equal_nan=True)
    assert set(np.unique(got[0])) <= set(FINAL_CODES)
    assert len(set(got[0].tolist())) >= 3          # several outcome kinds were exercised
