"""CUDA backend written in Python with `@cuda.jit`: keeps to contract.py, with the results of `numpy_ref`.

Mostly one thread per entry (a, j) of a B x B matrix, each looping over one row of d (batch-hard: one thread
per anchor): O(B^2) memory, and work that a GPU spreads over up to B^2 threads. The kernels write the weight
matrix W (see numpy_ref); the gradient kernel then computes pairwise_sqdist_backward(x, W). Takes and returns
NumPy arrays (copied to and from the GPU). Without a GPU the tests run these kernels in Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1), on small batches.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .contract import FALLBACK_EASIEST, FALLBACK_HARDEST, fallback_code

__all__ = [
    "batch_all_triplet",
    "batch_hard_triplet",
    "is_available",
    "pairwise_sqdist",
    "pairwise_sqdist_backward",
    "semihard_negatives",
    "semihard_triplet",
]

_TILE = 16


def is_available() -> bool:
    """True with a CUDA GPU, or in the simulator."""
    return cuda.is_available()


def _launch(kernel, rows: int, cols: int, *args) -> None:
    """Run `kernel` on a rows x cols grid of threads (x along columns, so that a warp reads a row)."""
    blocks = (math.ceil(cols / _TILE), math.ceil(rows / _TILE))
    kernel[blocks, (_TILE, _TILE)](*args)


# -- distances -----------------------------------------------------------------------------------------------
@cuda.jit
def _sqdist_kernel(x, d):
    """d[i, j] = max(||x_i||^2 + ||x_j||^2 - 2 x_i.x_j, 0), d[i, i] = 0."""
    j, i = cuda.grid(2)
    if i >= d.shape[0] or j >= d.shape[1]:
        return
    zero = x[i, 0] - x[i, 0]
    sq_i, sq_j, dot = zero, zero, zero
    for k in range(x.shape[1]):
        sq_i += x[i, k] * x[i, k]
        sq_j += x[j, k] * x[j, k]
        dot += x[i, k] * x[j, k]
    value = (sq_i + sq_j) - (dot + dot)
    d[i, j] = value if value > 0 and i != j else zero


@cuda.jit
def _sqdist_backward_kernel(x, g, scale, out):
    """out[i, k] = 2 scale sum_j (g[i, j] + g[j, i]) (x[i, k] - x[j, k])."""
    k, i = cuda.grid(2)
    if i >= x.shape[0] or k >= x.shape[1]:
        return
    acc = x[i, k] - x[i, k]
    for j in range(x.shape[0]):
        acc += (g[i, j] + g[j, i]) * (x[i, k] - x[j, k])
    out[i, k] = 2 * scale * acc


def _sqdist_device(x_dev):
    d = cuda.device_array((x_dev.shape[0], x_dev.shape[0]), dtype=x_dev.dtype)
    _launch(_sqdist_kernel, x_dev.shape[0], x_dev.shape[0], x_dev, d)
    return d


def _backward_device(x_dev, g_dev, scale: float) -> np.ndarray:
    out = cuda.device_array(x_dev.shape, dtype=x_dev.dtype)
    _launch(_sqdist_backward_kernel, x_dev.shape[0], x_dev.shape[1], x_dev, g_dev, x_dev.dtype.type(scale), out)
    return out.copy_to_host()


def pairwise_sqdist(x: np.ndarray) -> np.ndarray:
    """Squared L2 distances (B, D) -> (B, B), clamped at 0, exactly 0 on the diagonal."""
    return _sqdist_device(cuda.to_device(np.ascontiguousarray(x))).copy_to_host()


def pairwise_sqdist_backward(x: np.ndarray, grad_d: np.ndarray) -> np.ndarray:
    """Gradient with respect to x of sum_ij grad_d[i, j] d[i, j]."""
    g = cuda.to_device(np.ascontiguousarray(grad_d, dtype=x.dtype))
    return _backward_device(cuda.to_device(np.ascontiguousarray(x)), g, 1.0)


# -- semi-hard -----------------------------------------------------------------------------------------------
@cuda.jit
def _semihard_select_kernel(d, labels, fallback, chosen):
    """chosen[a, p] = the nearest negative n with d_an > d_ap (else the fallback, by its code from contract.py),
    -1 when (a, p) is not a pair or is skipped. Scanning n upwards with strict comparisons keeps the lowest
    index at a tie."""
    p, a = cuda.grid(2)
    if a >= d.shape[0] or p >= d.shape[1]:
        return
    chosen[a, p] = -1
    if a == p or labels[a] != labels[p]:
        return
    semihard, easiest, hardest = -1, -1, -1
    for n in range(d.shape[1]):
        if labels[n] == labels[a]:
            continue
        if d[a, n] > d[a, p] and (semihard < 0 or d[a, n] < d[a, semihard]):
            semihard = n
        if easiest < 0 or d[a, n] > d[a, easiest]:
            easiest = n
        if hardest < 0 or d[a, n] < d[a, hardest]:
            hardest = n
    if semihard >= 0:
        chosen[a, p] = semihard
    elif fallback == FALLBACK_EASIEST:
        chosen[a, p] = easiest
    elif fallback == FALLBACK_HARDEST:
        chosen[a, p] = hardest


@cuda.jit
def _semihard_weights_kernel(d, chosen, margin, weights, hinges):
    """For each kept pair: hinges[a, p] = max((d_ap + margin) - d_an, 0); when active, W[a, p] += 1 and
    W[a, n] -= 1 (atomic: pairs of one anchor can share a negative; adding whole numbers keeps it exact)."""
    p, a = cuda.grid(2)
    if a >= d.shape[0] or p >= d.shape[1]:
        return
    n = chosen[a, p]
    hinges[a, p] = 0
    if n < 0:
        return
    hinge = (d[a, p] + margin) - d[a, n]
    if hinge > 0:
        hinges[a, p] = hinge
        cuda.atomic.add(weights, (a, p), 1)
        cuda.atomic.add(weights, (a, n), -1)


def _select_device(d_dev, labels: np.ndarray, fallback: str):
    code = fallback_code(fallback)
    chosen = cuda.device_array(d_dev.shape, dtype=np.int64)
    labels_dev = cuda.to_device(np.ascontiguousarray(labels, dtype=np.int64))
    _launch(_semihard_select_kernel, d_dev.shape[0], d_dev.shape[1], d_dev, labels_dev, code, chosen)
    return chosen


def semihard_negatives(d: np.ndarray, labels: np.ndarray, fallback: str = "easiest") -> tuple[np.ndarray, np.ndarray]:
    """As `numpy_ref.semihard_negatives`: (pairs (T, 2), negatives (T,)), row-major, skipped pairs dropped."""
    chosen = _select_device(cuda.to_device(np.ascontiguousarray(d)), labels, fallback).copy_to_host()
    pairs = np.argwhere(chosen >= 0)
    return pairs.astype(np.int64), chosen[pairs[:, 0], pairs[:, 1]]


def semihard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, fallback: str = "easiest"
) -> tuple[float, np.ndarray, int]:
    """As `numpy_ref.semihard_triplet`: (loss, grad_x, number of kept pairs)."""
    x_dev = cuda.to_device(np.ascontiguousarray(x))
    d = _sqdist_device(x_dev)
    chosen = _select_device(d, labels, fallback)
    weights = cuda.to_device(np.zeros(d.shape, dtype=x.dtype))
    hinges = cuda.device_array(d.shape, dtype=x.dtype)
    _launch(_semihard_weights_kernel, d.shape[0], d.shape[1], d, chosen, x.dtype.type(margin), weights, hinges)
    num_pairs = int(np.count_nonzero(chosen.copy_to_host() >= 0))
    if num_pairs == 0:
        return 0.0, np.zeros_like(x), 0
    loss = float(np.sum(hinges.copy_to_host(), dtype=np.float64) / num_pairs)
    return loss, _backward_device(x_dev, weights, 1.0 / num_pairs), num_pairs


# -- batch-all -----------------------------------------------------------------------------------------------
@cuda.jit
def _batch_all_kernel(d, labels, margin, weights, hinge_sums):
    """For a positive j of anchor a: W[a, j] = #{negatives n : d_an < d_aj + margin} and the sum of those hinges
    (float64); for a negative j: W[a, j] = -#{positives p : d_ap + margin > d_aj}."""
    j, a = cuda.grid(2)
    if a >= d.shape[0] or j >= d.shape[1]:
        return
    count = 0
    total = 0.0
    if labels[j] == labels[a] and j != a:
        threshold = d[a, j] + margin
        for n in range(d.shape[1]):
            if labels[n] != labels[a] and d[a, n] < threshold:
                count += 1
                total += np.float64(threshold) - np.float64(d[a, n])
    elif labels[j] != labels[a]:
        for p in range(d.shape[1]):
            if labels[p] == labels[a] and p != a and d[a, p] + margin > d[a, j]:
                count -= 1
    weights[a, j] = count
    hinge_sums[a, j] = total


def _label_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per anchor: number of positives and of negatives."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    same = counts[inverse.reshape(-1)]
    return same - 1, len(labels) - same


def batch_all_triplet(x: np.ndarray, labels: np.ndarray, margin: float) -> tuple[float, np.ndarray, float, int]:
    """As `numpy_ref.batch_all_triplet`: (loss, grad_x, fraction active, number active)."""
    x_dev = cuda.to_device(np.ascontiguousarray(x))
    d = _sqdist_device(x_dev)
    labels_dev = cuda.to_device(np.ascontiguousarray(labels, dtype=np.int64))
    weights = cuda.device_array(d.shape, dtype=x.dtype)
    hinge_sums = cuda.device_array(d.shape, dtype=np.float64)
    _launch(_batch_all_kernel, d.shape[0], d.shape[1], d, labels_dev, x.dtype.type(margin), weights, hinge_sums)
    counts = weights.copy_to_host()
    num_active = int(counts[counts > 0].sum())
    if num_active == 0:
        return 0.0, np.zeros_like(x), 0.0, 0
    n_pos, n_neg = _label_counts(labels)
    loss = float(hinge_sums.copy_to_host().sum() / num_active)
    grad = _backward_device(x_dev, weights, 1.0 / num_active)
    return loss, grad, num_active / int(np.sum(n_pos * n_neg)), num_active


# -- batch-hard ----------------------------------------------------------------------------------------------
@cuda.jit
def _batch_hard_kernel(d, labels, margin, soft, scale, weights, losses):
    """One thread per anchor: farthest positive p*, nearest negative n* (lowest index at a tie);
    z = (d_ap* + margin) - d_an*; losses[a] = max(z, 0) or softplus(z); W[a, p*] = slope * scale = -W[a, n*]."""
    a = cuda.grid(1)
    if a >= d.shape[0]:
        return
    p_star, n_star = -1, -1
    for j in range(d.shape[1]):
        weights[a, j] = 0
        if labels[j] == labels[a]:
            if j != a and (p_star < 0 or d[a, j] > d[a, p_star]):
                p_star = j
        elif n_star < 0 or d[a, j] < d[a, n_star]:
            n_star = j
    losses[a] = 0
    if p_star < 0 or n_star < 0:
        return
    z = (d[a, p_star] + margin) - d[a, n_star]
    if soft:
        losses[a] = max(z, 0) + math.log1p(math.exp(-abs(z)))
        slope = 0.5 * (1 + math.tanh(0.5 * z))
    elif z > 0:
        losses[a] = z
        slope = 1.0
    else:
        slope = 0.0
    weights[a, p_star] = slope * scale
    weights[a, n_star] = -slope * scale


def batch_hard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, soft: bool = False
) -> tuple[float, np.ndarray]:
    """As `numpy_ref.batch_hard_triplet`: (loss, grad_x)."""
    n_pos, n_neg = _label_counts(labels)
    num_anchors = int(np.count_nonzero((n_pos > 0) & (n_neg > 0)))
    if num_anchors == 0:
        return 0.0, np.zeros_like(x)
    x_dev = cuda.to_device(np.ascontiguousarray(x))
    d = _sqdist_device(x_dev)
    labels_dev = cuda.to_device(np.ascontiguousarray(labels, dtype=np.int64))
    weights = cuda.device_array(d.shape, dtype=x.dtype)
    losses = cuda.device_array(d.shape[0], dtype=np.float64)
    blocks = math.ceil(d.shape[0] / 128)
    _batch_hard_kernel[blocks, 128](
        d, labels_dev, x.dtype.type(margin), bool(soft), 1.0 / num_anchors, weights, losses
    )
    loss = float(losses.copy_to_host().sum() / num_anchors)
    return loss, _backward_device(x_dev, weights, 1.0)
