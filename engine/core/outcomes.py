"""Outcome codes of a training run, shared by kernels, storage and analysis."""
from __future__ import annotations

SOLVED = 0          # 100% training accuracy (classification) or mean loss <= tol (regression)
LOCAL_MINIMUM = 1   # finite critical point, smallest Hessian eigenvalue > eig_tol
SADDLE = 2          # finite critical point, smallest Hessian eigenvalue < -eig_tol
FLAT = 3            # finite critical point, |smallest eigenvalue| <= eig_tol
DRIFTING = 4        # gradient vanishing on a plateau while the weights grow without bound
DIVERGED = 5        # non-finite loss or weights
OUT_OF_STEPS = 6    # none of the above within the step budget
CRITICAL = 7        # kernel-internal: gradient small, not yet split by the Hessian

NAMES = {
    SOLVED: "solved",
    LOCAL_MINIMUM: "local_minimum",
    SADDLE: "saddle",
    FLAT: "flat",
    DRIFTING: "drifting",
    DIVERGED: "diverged",
    OUT_OF_STEPS: "out_of_steps",
}
FINAL_CODES = tuple(NAMES)


def name_map_attr() -> str:
    """The code->name map as a compact string for HDF5 attributes ('0:solved,1:local_minimum,...')."""
    return ",".join(f"{k}:{v}" for k, v in NAMES.items())
