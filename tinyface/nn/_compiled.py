"""Numba loops for the memory-bound layers on the CPU: max pooling and batch normalisation.

NumPy spends several passes over memory on these (a comparison, a product, a sum ... each a full-size temporary);
a compiled loop needs one or two. `functional.py` uses these for NumPy arrays and keeps its vectorised NumPy code
as the reference (and for CuPy arrays); the tests check that both give the same numbers. Set TINYFACE_NUMBA=0 to
use the NumPy code everywhere.

Arrays are indexed as (N, C, H, W) whatever their memory layout; outputs are laid out channel-major (C, N, H, W),
the layout the convolutions produce (see `functional.Convolution`), so every channel is one contiguous block.
"""

from __future__ import annotations

import os

import numpy as np

try:
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency, but keep the NumPy path usable without it
    njit = None

ENABLED = njit is not None and os.environ.get("TINYFACE_NUMBA", "1") != "0"


def _channel_major(shape: tuple[int, int, int, int], dtype) -> np.ndarray:
    n, c, h, w = shape
    return np.empty((c, n, h, w), dtype).transpose(1, 0, 2, 3)


if njit is not None:

    @njit(parallel=True, cache=True)
    def _maxpool_forward(x, out, winner, kh, kw):
        n, c, ho, wo = out.shape
        for plane in prange(n * c):
            b, ch = plane % n, plane // n
            for y in range(ho):
                for x0 in range(wo):
                    best = x[b, ch, y * kh, x0 * kw]
                    k = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = x[b, ch, y * kh + i, x0 * kw + j]
                            if v > best:  # strict: the first maximum wins, as in PyTorch
                                best = v
                                k = i * kw + j
                    out[b, ch, y, x0] = best
                    winner[b, ch, y, x0] = k

    @njit(parallel=True, cache=True)
    def _maxpool_backward(grad, winner, grad_x, kh, kw):
        n, c, ho, wo = grad.shape
        for plane in prange(n * c):
            b, ch = plane % n, plane // n
            for y in range(ho):
                for x0 in range(wo):
                    for i in range(kh):
                        for j in range(kw):
                            grad_x[b, ch, y * kh + i, x0 * kw + j] = 0
                    k = winner[b, ch, y, x0]
                    grad_x[b, ch, y * kh + k // kw, x0 * kw + k % kw] = grad[b, ch, y, x0]

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})  # let sums vectorise
    def _batchnorm_statistics(x, mean, var):
        n, c, h, w = x.shape
        count = n * h * w
        for ch in prange(c):
            total = 0.0
            for b in range(n):
                for i in range(h):
                    for j in range(w):
                        total += x[b, ch, i, j]
            mu = total / count
            squares = 0.0
            for b in range(n):
                for i in range(h):
                    for j in range(w):
                        d = x[b, ch, i, j] - mu
                        squares += d * d
            mean[ch] = mu
            var[ch] = squares / count

    @njit(parallel=True, cache=True)
    def _affine(x, scale, shift, out):
        n, c, h, w = x.shape
        for ch in prange(c):
            a, s = scale[ch], shift[ch]
            for b in range(n):
                for i in range(h):
                    for j in range(w):
                        out[b, ch, i, j] = x[b, ch, i, j] * a + s

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def _batchnorm_backward_sums(grad, x, sum_g, sum_gx):
        n, c, h, w = x.shape
        for ch in prange(c):
            total_g = 0.0
            total_gx = 0.0
            for b in range(n):
                for i in range(h):
                    for j in range(w):
                        g = grad[b, ch, i, j]
                        total_g += g
                        total_gx += g * x[b, ch, i, j]
            sum_g[ch] = total_g
            sum_gx[ch] = total_gx

    @njit(parallel=True, cache=True)
    def _affine2(g, x, a, b_, d, out):
        n, c, h, w = x.shape
        for ch in prange(c):
            ga, xa, s = a[ch], b_[ch], d[ch]
            for b in range(n):
                for i in range(h):
                    for j in range(w):
                        out[b, ch, i, j] = g[b, ch, i, j] * ga + x[b, ch, i, j] * xa + s


def maxpool2d_forward(x: np.ndarray, kernel: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Max over non-overlapping kh x kw windows of (N, C, H, W) with H, W multiples of the kernel: the output and
    the index i * kw + j of the (first) winner in each window."""
    (kh, kw), (n, c, h, w) = kernel, x.shape
    out = _channel_major((n, c, h // kh, w // kw), x.dtype)
    winner = _channel_major((n, c, h // kh, w // kw), np.int32)
    _maxpool_forward(x, out, winner, kh, kw)
    return out, winner


def maxpool2d_backward(grad: np.ndarray, winner: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """Each window's gradient to its winner, zero elsewhere."""
    (kh, kw), (n, c, ho, wo) = kernel, grad.shape
    grad_x = _channel_major((n, c, ho * kh, wo * kw), grad.dtype)
    _maxpool_backward(grad, winner, grad_x, kh, kw)
    return grad_x


def batchnorm_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance of (N, C, H, W), accumulated in float64 (two passes: stable)."""
    mean, var = np.empty(x.shape[1]), np.empty(x.shape[1])
    _batchnorm_statistics(x, mean, var)
    return mean, var


def channel_affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """out[:, c] = x[:, c] * scale[c] + shift[c]."""
    out = _channel_major(x.shape, x.dtype)
    _affine(x, scale.astype(x.dtype), shift.astype(x.dtype), out)
    return out


def batchnorm_backward_sums(grad: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel sum(g) and sum(g * x), in float64."""
    sum_g, sum_gx = np.empty(x.shape[1]), np.empty(x.shape[1])
    _batchnorm_backward_sums(grad, x, sum_g, sum_gx)
    return sum_g, sum_gx


def channel_affine2(g: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> np.ndarray:
    """out[:, c] = g[:, c] * a[c] + x[:, c] * b[c] + d[c]."""
    out = _channel_major(x.shape, x.dtype)
    _affine2(g, x, a.astype(x.dtype), b.astype(x.dtype), d.astype(x.dtype), out)
    return out
