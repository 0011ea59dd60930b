"""The engine's one table of names: every activation, loss, optimizer, init law and dtype a configuration
may name, with the integer code the jitted kernels branch on (so names and codes cannot drift apart).

The codes are part of the kernels: generated kernels and cached results depend on them, so never renumber.
"""
from __future__ import annotations

# hidden activations
SIGMOID, RELU, TANH = 0, 1, 2
ACTIVATIONS = {"sigmoid": SIGMOID, "relu": RELU, "tanh": TANH}
# losses: sigmoid output + binary cross-entropy, or linear output + squared error
XENT, MSE = 0, 1
LOSSES = {"xent": XENT, "mse": MSE}
# optimizers: gd and adam take full-batch steps, sgd one point per step
GD, ADAM, SGD = 0, 1, 2
OPTIMIZERS = {"gd": GD, "adam": ADAM, "sgd": SGD}
# initialization laws
NORMAL, UNIFORM, GLOROT, HE = 0, 1, 2, 3
INIT_LAWS = {"normal": NORMAL, "uniform": UNIFORM, "glorot": GLOROT, "he": HE}
# kernel precisions -> networks per SIMD block (lanes): four 512-bit vectors of either precision
DTYPE_LANES = {"float64": 32, "float32": 64}


def lanes_for(dtype: str) -> int:
    """Networks per SIMD block of a kernel precision (DTYPE_LANES)."""
    return DTYPE_LANES[dtype]


__all__ = ["SIGMOID", "RELU", "TANH", "ACTIVATIONS", "XENT", "MSE", "LOSSES", "GD", "ADAM", "SGD", "OPTIMIZERS",
           "NORMAL", "UNIFORM", "GLOROT", "HE", "INIT_LAWS", "DTYPE_LANES", "lanes_for"]
