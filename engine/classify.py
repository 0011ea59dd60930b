"""Final classification of trained networks, in float64 with the exact model (engine/model.py).

The kernel decides when a network stops (solved / critical / diverged / out of steps); this pass
re-evaluates every end point exactly, splits critical points by the smallest eigenvalue of the exact
Hessian (local minimum / saddle / flat), and separates drifting runs from finite ones:
  * critical with max|theta| > wmax                                  -> drifting
  * out of steps with ||grad|| <= drift_gtol, max|theta| >= drift_wmin
    and -grad . theta > 0 (the descent direction makes theta grow)  -> drifting
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from .jit import njit
from .model import evaluate, hessian
from .outcomes import CRITICAL, DIVERGED, DRIFTING, FLAT, LOCAL_MINIMUM, OUT_OF_STEPS, SADDLE


@njit(parallel=True)
def classify(theta, raw, X, y, d, h, act, loss, wmax, drift_gtol, drift_wmin, eig_tol,
             out_code, out_loss, out_acc, out_gnorm, out_eig):
    """Fill the final outcome, mean loss, accuracy, ||grad|| and lambda_min (NaN if not computed)."""
    for k in prange(theta.shape[0]):
        th = theta[k]
        L, acc, g = evaluate(th, X, y, d, h, act, loss)
        gn = math.sqrt(np.sum(g * g))
        wm = np.max(np.abs(th))
        out_loss[k], out_acc[k], out_gnorm[k] = L, acc, gn
        out_eig[k] = np.nan
        code = raw[k]
        if not (math.isfinite(L) and math.isfinite(wm) and math.isfinite(gn)):
            code = DIVERGED
        elif code == CRITICAL:
            if wm > wmax:
                code = DRIFTING
            else:
                lam = np.linalg.eigvalsh(hessian(th, X, y, d, h, act, loss))[0]
                out_eig[k] = lam
                code = LOCAL_MINIMUM if lam > eig_tol else (SADDLE if lam < -eig_tol else FLAT)
        elif code == OUT_OF_STEPS:
            if gn <= drift_gtol and wm >= drift_wmin and -np.dot(g, th) > 0.0:
                code = DRIFTING
        out_code[k] = code
