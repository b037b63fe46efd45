"""Numba loops for the memory-bound work on the CPU: the adjoint of im2col for the convolutions, max pooling,
batch normalisation and the ReLU.

NumPy spends several passes over memory on these (a comparison, a product, a sum ... each a full-size temporary,
on one core); a compiled loop needs one or two, on every core. `functional.py` uses these for NumPy arrays and
keeps its vectorised NumPy code as the reference (and for CuPy arrays); the tests check that both give the same
numbers. Set TINYFACE_NUMBA=0 to use the NumPy code everywhere.

Layout. The convolutions produce images laid out channel-major, (C, N, H, W) in memory (see
`functional.Convolution`), handed on as (N, C, H, W) views. The loops take and give that memory as it lies: a
C-contiguous (C, N, H, W) array (`_planes`), or (C, N*H*W) rows for the per-channel sums of batch norm. Knowing
that the last axis is contiguous is what lets Numba turn the inner loops into vector instructions (8x faster than
the same loops over strided views, measured); every loop runs over whole channels or (channel, image) planes in
parallel, each thread writing its own.
"""

from __future__ import annotations

import os

import numpy as np

try:
    from numba import njit, prange
except ImportError:  # pragma: no cover - numba is a dependency, but keep the NumPy path usable without it
    njit = None

ENABLED = njit is not None and os.environ.get("TINYFACE_NUMBA", "1") != "0"


def _planes(x: np.ndarray) -> np.ndarray:
    """The (C, N, H, W) C-contiguous array behind (N, C, H, W) images: no copy when they are channel-major, as
    the convolutions make them (a copy otherwise)."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


def _rows(x: np.ndarray) -> np.ndarray:
    """The same memory as (C, N*H*W): one contiguous row per channel."""
    return _planes(x).reshape(x.shape[1], -1)


def _memory_order(x: np.ndarray) -> np.ndarray | None:
    """x's memory as one 1-D view, whatever the order of its axes there (a (N, C, H, W) view of channel-major
    memory included), or None when x has gaps or repeats (a broadcast, a strided slice)."""
    order = np.argsort(x.strides, kind="stable")[::-1]
    dense = x.transpose(order)
    return dense.reshape(-1) if dense.flags.c_contiguous else None


def _images(planes: np.ndarray) -> np.ndarray:
    """(C, N, H, W) memory seen as (N, C, H, W) images (the inverse of `_planes`, no copy)."""
    return planes.transpose(1, 0, 2, 3)


if njit is not None:

    @njit(cache=True, inline="always")
    def _inside(size_out, size_in, offset, stride):
        """The range [lo, hi) of output positions p whose input position p * stride + offset is in [0, size_in)."""
        lo = max(0, (stride - 1 - offset) // stride)
        hi = min(size_out, (size_in - offset + stride - 1) // stride)
        return lo, max(lo, hi)

    @njit(parallel=True, cache=True)
    def _col2im(cols, grad_x, sh, sw, ph, pw):
        c, n, h, w = grad_x.shape
        _, kh, kw, _, ho, wo = cols.shape
        for plane in prange(c * n):  # each (channel, image) plane of grad_x is written by one thread
            ch, b = plane // n, plane % n
            grad_x[ch, b] = 0
            for i in range(kh):
                for j in range(kw):
                    lo, hi = _inside(wo, w, j - pw, sw)
                    for y in range(ho):
                        row = y * sh + i - ph
                        if 0 <= row < h:
                            for x0 in range(lo, hi):
                                grad_x[ch, b, row, x0 * sw + j - pw] += cols[ch, i, j, b, y, x0]

    @njit(parallel=True, cache=True)
    def _maxpool_forward(x, out, winner, kh, kw):
        c, n, ho, wo = out.shape
        for plane in prange(c * n):
            ch, b = plane // n, plane % n
            for y in range(ho):
                for x0 in range(wo):
                    best = x[ch, b, y * kh, x0 * kw]
                    k = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = x[ch, b, y * kh + i, x0 * kw + j]
                            if v > best:  # strict: the first maximum wins, as in PyTorch
                                best = v
                                k = i * kw + j
                    out[ch, b, y, x0] = best
                    winner[ch, b, y, x0] = k

    @njit(parallel=True, cache=True)
    def _maxpool_backward(grad, winner, grad_x, kh, kw):
        c, n, ho, wo = grad.shape
        for plane in prange(c * n):
            ch, b = plane // n, plane % n
            grad_x[ch, b] = 0
            for y in range(ho):
                for x0 in range(wo):
                    k = winner[ch, b, y, x0]
                    grad_x[ch, b, y * kh + k // kw, x0 * kw + k % kw] = grad[ch, b, y, x0]

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})  # let sums vectorise
    def _batchnorm_statistics(x, mean, var):
        c, m = x.shape
        for ch in prange(c):
            total = 0.0
            for k in range(m):
                total += x[ch, k]
            mu = total / m
            squares = 0.0
            for k in range(m):
                d = x[ch, k] - mu
                squares += d * d
            mean[ch] = mu
            var[ch] = squares / m

    @njit(parallel=True, cache=True)
    def _relu(x, out):
        for k in prange(x.size):
            out[k] = 0 if x[k] < 0 else x[k]  # NaN stays NaN, as with np.maximum

    @njit(parallel=True, cache=True)
    def _relu_backward(grad, out, grad_x):
        for k in prange(out.size):
            grad_x[k] = grad[k] if out[k] > 0 else 0

    @njit(parallel=True, cache=True)
    def _affine(x, scale, shift, out):
        c, m = x.shape
        for ch in prange(c):
            a, s = scale[ch], shift[ch]
            for k in range(m):
                out[ch, k] = x[ch, k] * a + s

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def _batchnorm_backward_sums(grad, x, sum_g, sum_gx):
        c, m = x.shape
        for ch in prange(c):
            total_g = 0.0
            total_gx = 0.0
            for k in range(m):
                g = grad[ch, k]
                total_g += g
                total_gx += g * x[ch, k]
            sum_g[ch] = total_g
            sum_gx[ch] = total_gx

    @njit(parallel=True, cache=True)
    def _affine2(g, x, a, b, d, out):
        c, m = x.shape
        for ch in prange(c):
            ga, xb, s = a[ch], b[ch], d[ch]
            for k in range(m):
                out[ch, k] = g[ch, k] * ga + x[ch, k] * xb + s


def col2im(cols: np.ndarray, shape: tuple[int, int, int, int], kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int]) -> np.ndarray:
    """The adjoint of im2col: the gradient of (N, C, H, W) images from that of their columns (C*kh*kw, N*Ho*Wo).

    Column entry ((c, i, j), (b, y, x)) was copied from pixel (b, c, y * sh + i - ph, x * sw + j - pw), so its
    gradient is added back there. One (channel, image) plane at a time: each pixel's plane stays in cache while
    its kh * kw shifted windows are added onto it (NumPy adds each window over the whole batch, kh * kw passes)."""
    (kh, kw), (n, c, h, w) = kernel, shape
    ho, wo = (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1
    grad_x = np.empty((c, n, h, w), cols.dtype)
    _col2im(np.ascontiguousarray(cols).reshape(c, kh, kw, n, ho, wo), grad_x, *stride, *padding)
    return _images(grad_x)


def maxpool2d_forward(x: np.ndarray, kernel: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Max over non-overlapping kh x kw windows of (N, C, H, W) with H, W multiples of the kernel: the output and
    the index i * kw + j of the (first) winner in each window."""
    (kh, kw), (n, c, h, w) = kernel, x.shape
    out = np.empty((c, n, h // kh, w // kw), x.dtype)
    winner = np.empty((c, n, h // kh, w // kw), np.int32)
    _maxpool_forward(_planes(x), out, winner, kh, kw)
    return _images(out), _images(winner)


def maxpool2d_backward(grad: np.ndarray, winner: np.ndarray, kernel: tuple[int, int]) -> np.ndarray:
    """Each window's gradient to its winner, zero elsewhere."""
    (kh, kw), (n, c, ho, wo) = kernel, grad.shape
    grad_x = np.empty((c, n, ho * kh, wo * kw), grad.dtype)
    _maxpool_backward(_planes(grad), _planes(winner), grad_x, kh, kw)
    return _images(grad_x)


def batchnorm_statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and biased variance of (N, C, H, W), accumulated in float64 (two passes: stable)."""
    mean, var = np.empty(x.shape[1]), np.empty(x.shape[1])
    _batchnorm_statistics(_rows(x), mean, var)
    return mean, var


def channel_affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """out[:, c] = x[:, c] * scale[c] + shift[c]."""
    n, c, h, w = x.shape
    out = np.empty((c, n, h, w), x.dtype)
    _affine(_rows(x), scale.astype(x.dtype), shift.astype(x.dtype), out.reshape(c, -1))
    return _images(out)


def batchnorm_backward_sums(grad: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel sum(g) and sum(g * x), in float64."""
    sum_g, sum_gx = np.empty(x.shape[1]), np.empty(x.shape[1])
    _batchnorm_backward_sums(_rows(grad), _rows(x), sum_g, sum_gx)
    return sum_g, sum_gx


def channel_affine2(g: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> np.ndarray:
    """out[:, c] = g[:, c] * a[c] + x[:, c] * b[c] + d[c]."""
    n, c, h, w = x.shape
    out = np.empty((c, n, h, w), x.dtype)
    _affine2(_rows(g), _rows(x), a.astype(x.dtype), b.astype(x.dtype), d.astype(x.dtype), out.reshape(c, -1))
    return _images(out)


def relu(x: np.ndarray) -> np.ndarray | None:
    """max(x, 0) in one parallel pass, laid out in memory as x is; None when x is not one dense block (then the
    caller uses NumPy)."""
    if x.dtype not in (np.float32, np.float64):  # Numba's loops take no float16 (nor integers)
        return None
    flat_x = _memory_order(x)
    if flat_x is None:
        return None
    out = np.empty_like(x)  # the same axis order in memory as x (order="K"), so its flat view lines up
    _relu(flat_x, _memory_order(out))
    return out


def relu_backward(grad: np.ndarray, out: np.ndarray) -> np.ndarray | None:
    """grad where the ReLU's output is positive, 0 elsewhere (one pass); None when grad and out do not lie in
    memory in the same order (then the caller uses NumPy)."""
    if out.dtype not in (np.float32, np.float64) or grad.dtype != out.dtype or grad.strides != out.strides:
        return None
    flat_out = _memory_order(out)  # grad has out's strides, so it is dense when out is, in the same order
    if flat_out is None:
        return None
    grad_x = np.empty_like(out)
    _relu_backward(_memory_order(grad), flat_out, _memory_order(grad_x))
    return grad_x
