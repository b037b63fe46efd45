"""Lesson 8, the hot path as GPU kernels: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _number, _Wrong


@_check
def check_pairwise_sqdist(fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """fn(x): squared L2 distances (B, B) of the rows of x (B, D), never negative, exactly 0 on the diagonal."""
    from tinyface.kernels import numpy_ref

    rng = np.random.default_rng(80)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    x[3] = x[5]  # two equal rows: rounding in the expanded formula can give a tiny negative distance
    x = x * np.float32(30)
    expected = numpy_ref.pairwise_sqdist(x.astype(np.float64))
    got = _array(_call(fn, x.copy()), (9, 9), "the distances")
    if np.any(got < 0):
        raise _Wrong("some distances are negative: rounding in ||x||^2 + ||y||^2 - 2 x.y; clamp at 0")
    if np.any(np.diagonal(got) != 0):
        raise _Wrong("d[i, i] must be exactly 0 (set the diagonal after the arithmetic)")
    if np.allclose(got, np.sqrt(expected), rtol=1e-4, atol=1e-3):
        raise _Wrong("those are plain distances; the hot path uses squared ones (no square root)")
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-2):
        raise _Wrong(f"largest difference from the reference: {np.max(np.abs(got - expected)):.3g}")
    return "the same numbers as numpy_ref.pairwise_sqdist, clamped at 0 with an exact zero diagonal"


@_check
def check_cuda_sqdist_kernel(kernel: Any, threads: int = 8) -> str:
    """kernel: a @cuda.jit function kernel(x, d) in which the thread at cuda.grid(2) = (j, i) writes d[i, j] (squared
    distance of rows i and j, 0 on the diagonal); launched on a grid larger than B x B, so it must guard.

    A real GPU does not check bounds: an unguarded thread silently writes past the edge of d. So x and d are views
    of larger arrays filled with a sentinel, and the check fails if anything outside the B x B region was written
    (the simulator raises IndexError instead; that is reported the same way)."""
    import math

    from numba import cuda

    from tinyface.kernels import numpy_ref

    _given(kernel)
    if not hasattr(kernel, "__getitem__"):
        raise _Wrong("decorate the function with @cuda.jit, so that it can be launched as kernel[blocks, threads]")
    b, sentinel = 11, -1.0  # a distance is never negative
    x = np.random.default_rng(81).standard_normal((b, 4))
    blocks = (math.ceil(b / threads), math.ceil(b / threads))
    size = blocks[0] * threads  # the grid's extent along each axis: every thread lands inside the padded arrays
    x_padded = np.zeros((size, 4))
    x_padded[:b] = x
    x_device = cuda.to_device(x_padded)
    d_device = cuda.to_device(np.full((size, size), sentinel))
    guard = "guard with `if i < d.shape[0] and j < d.shape[1]:`"
    try:
        _call(lambda: kernel[blocks, (threads, threads)](x_device[:b], d_device[:b, :b]))
    except _Wrong as wrong:
        if "IndexError" in str(wrong) or "out of bounds" in str(wrong):
            raise _Wrong(f"the grid is larger than B x B: {guard} ({wrong})") from None
        raise
    padded = d_device.copy_to_host()
    outside = padded != sentinel
    outside[:b, :b] = False
    if outside.any():
        raise _Wrong(f"threads outside the B x B matrix wrote {int(outside.sum())} entries past its edge (a GPU "
                     f"does not stop them: they overwrite other memory): {guard}")
    got = padded[:b, :b]
    expected = numpy_ref.pairwise_sqdist(x)
    if np.any(got == sentinel):
        raise _Wrong("some entries were never written: each thread (i, j) writes d[i, j]")
    if np.allclose(got, expected.T, atol=1e-9) and not np.allclose(got, expected, atol=1e-9):
        raise _Wrong("rows and columns are swapped")
    if not np.allclose(got, expected, atol=1e-9):
        raise _Wrong(f"largest difference from the reference: {np.max(np.abs(got - expected)):.3g}")
    return "one thread per entry of d, guarded at the edges: the shape of every kernel in numba_cuda.py"


@_check
def check_cubic_memory(answer: float, batch: int) -> str:
    """answer: bytes taken by a float32 tensor of shape (B, B, B) (every d_ap - d_an of a batch) for B = batch."""
    got = _number(answer, "bytes")
    expected = 4 * batch**3
    if np.isclose(got, expected):
        return (f"4 B^3 = {expected / 2**30:.2f} GiB, against {4 * batch**2 / 2**20:.0f} MiB for the B x B "
                "distances: why the kernels never build it")
    if np.isclose(got, batch**3):
        raise _Wrong("that counts entries; a float32 takes 4 bytes each")
    if np.isclose(got, 4 * batch**2) or np.isclose(got, batch**2):
        raise _Wrong("that is the B x B distance matrix; the triplet tensor has a third axis")
    if np.isclose(got, 8 * batch**3):
        raise _Wrong("that is float64; float32 takes 4 bytes")
    raise _Wrong("count B x B x B entries of 4 bytes")


__all__ = ["check_cubic_memory", "check_cuda_sqdist_kernel", "check_pairwise_sqdist"]
