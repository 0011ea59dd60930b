"""The flat parameter layout of a d-h-1 network, with names and pack/unpack helpers.

One network is a vector theta of length P = h*(d+2) + 1, ordered unit by unit and then the output bias:

    [v_0, w_00, ..., w_0(d-1), b_0,  v_1, w_10, ..., b_1,  ...,  c]

where w_jk is the weight from input k into hidden unit j, b_j its bias, v_j its output weight and
c the output bias.  For the paper's 2-2-1 network this is exactly the paper's order
(v0, w00, w01, b0, v1, w10, w11, b1, c) under eq. (1) read as in docs/paper.md.
"""
from __future__ import annotations

import numpy as np


def n_params(d: int, h: int) -> int:
    """Number of parameters of a d-h-1 network."""
    return h * (d + 2) + 1


def idx_v(j: int, d: int) -> int:
    return j * (d + 2)


def idx_w(j: int, k: int, d: int) -> int:
    return j * (d + 2) + 1 + k


def idx_b(j: int, d: int) -> int:
    return j * (d + 2) + 1 + d


def idx_c(d: int, h: int) -> int:
    return h * (d + 2)


def param_names(d: int, h: int) -> list[str]:
    """Names in layout order, e.g. ['v0', 'w00', 'w01', 'b0', ..., 'c'] for d = 2."""
    names = []
    for j in range(h):
        names.append(f"v{j}")
        names.extend(f"w{j}{k}" if h <= 10 and d <= 10 else f"w{j}_{k}" for k in range(d))
        names.append(f"b{j}")
    names.append("c")
    return names


def pack(W: np.ndarray, b: np.ndarray, v: np.ndarray, c: float) -> np.ndarray:
    """Flat theta from first-layer weights W (h, d), biases b (h,), output weights v (h,), bias c."""
    W = np.asarray(W, dtype=np.float64)
    h, d = W.shape
    theta = np.empty(n_params(d, h))
    for j in range(h):
        theta[idx_v(j, d)] = v[j]
        theta[idx_w(j, 0, d): idx_w(j, 0, d) + d] = W[j]
        theta[idx_b(j, d)] = b[j]
    theta[idx_c(d, h)] = c
    return theta


def unpack(theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Inverse of pack: (W (h, d), b (h,), v (h,), c)."""
    theta = np.asarray(theta, dtype=np.float64)
    h = (theta.shape[-1] - 1) // (d + 2)
    if n_params(d, h) != theta.shape[-1]:
        raise ValueError(f"theta has {theta.shape[-1]} entries, not h*(d+2)+1 for d={d}")
    blocks = theta[..., : h * (d + 2)].reshape(theta.shape[:-1] + (h, d + 2))
    return blocks[..., 1: 1 + d], blocks[..., 1 + d], blocks[..., 0], theta[..., -1]


def hidden_from_params(P: int, d: int) -> int:
    """h such that P = h*(d+2)+1, or ValueError."""
    h, rem = divmod(P - 1, d + 2)
    if rem or h < 1:
        raise ValueError(f"{P} parameters do not form a {d}-h-1 network")
    return h
