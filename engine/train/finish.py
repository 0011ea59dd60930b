"""The second-order finisher (engine/core/flow.py) over many networks on the CPU's threads."""
from __future__ import annotations

import numba
import numpy as np

from badminima.engine.core.atomic import fetch_add
from badminima.engine.core.classify import SCRATCH_ROWS, TH
from badminima.engine.core.flow import finish_one
from badminima.engine.core.jit import njit
from badminima.engine.train.threads import on_threads


@njit
def finish_claimed(theta, todo, counter, horizon, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax,
                   drift_gtol, drift_wmin, eig_tol, max_iter, stall, out_theta, out_code, out_iters, out_loss,
                   out_eig):
    """Run the finisher on networks todo[k], each k claimed from counter[0] (shared by the threads)."""
    P = theta.shape[1]
    W = np.empty((SCRATCH_ROWS, P))
    Hm = np.empty((P, P))
    th = W[TH]
    while True:
        k = fetch_add(counter, 0, 1)
        if k >= todo.shape[0]:
            return
        i = todo[k]
        for p in range(P):
            th[p] = theta[i, p]
        code, its, L, lam = finish_one(th, horizon, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax,
                                       drift_gtol, drift_wmin, eig_tol, max_iter, stall, W, Hm)
        for p in range(P):
            out_theta[i, p] = th[p]
        out_code[i] = code
        out_iters[i] = its
        out_loss[i] = L
        out_eig[i] = lam


def finish_many(theta, todo, horizon, X, y, d, h, act, loss, gtol, xtol, solve_tol, wmax, drift_gtol,
                drift_wmin, eig_tol, max_iter, stall, out_theta, out_code, out_iters, out_loss, out_eig):
    """Run the finisher on the networks k with todo[k] (theta is left unchanged); fill the point where
    it stopped, its verdict, iterations, loss there and lambda_min there (NaN unless a critical point).

    On numba.get_num_threads() threads, each taking the next network from a shared counter (a network
    may take 1 or 400 iterations; engine/train/threads.py)."""
    idx = np.flatnonzero(todo).astype(np.int64)
    counter = np.zeros(1, np.int64)
    on_threads(lambda: finish_claimed(theta, idx, counter, horizon, X, y, d, h, act, loss, gtol, xtol, solve_tol,
                                      wmax, drift_gtol, drift_wmin, eig_tol, max_iter, stall, out_theta, out_code,
                                      out_iters, out_loss, out_eig),
               min(numba.get_num_threads(), idx.shape[0]), counter, idx.shape[0])
