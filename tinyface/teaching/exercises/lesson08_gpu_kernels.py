"""Lesson 8, the hot path as GPU kernels: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _Wrong


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
def check_batch_hard_kernel(kernel: Any, threads: int = 8) -> str:
    """kernel: a @cuda.jit function kernel(d, labels, positives, negatives), one thread per anchor
    (a = cuda.grid(1)), that walks row a of d and writes positives[a], the index of a's farthest positive (same
    label, not a itself), and negatives[a], its nearest negative (the lowest index at a tie, as the contract asks).
    Launched on a grid larger than B, so it must guard.

    A real GPU does not check bounds: an unguarded thread silently reads and writes past the edge. So every array
    is a view of a larger one, the outputs filled with a sentinel, and the check fails if anything outside the B
    entries was written (the simulator raises IndexError instead; that is reported the same way)."""
    import math

    from numba import cuda

    from tinyface.mining import batch_hard_triplets

    _given(kernel)
    if not hasattr(kernel, "__getitem__"):
        raise _Wrong("decorate the function with @cuda.jit, so that it can be launched as kernel[blocks, threads]")
    rng = np.random.default_rng(82)
    b, sentinel = 11, -1  # never an index
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3])
    d = rng.integers(1, 6, (b, b)).astype(np.float64)  # small integers: ties between candidates
    d = np.triu(d, 1) + np.triu(d, 1).T
    blocks = math.ceil(b / threads)
    size = blocks * threads  # the grid's extent: every thread lands inside the padded arrays
    d_padded, labels_padded = np.zeros((size, size)), np.full(size, 99)
    d_padded[:b, :b], labels_padded[:b] = d, labels
    d_device, labels_device = cuda.to_device(d_padded), cuda.to_device(labels_padded)
    positives, negatives = cuda.to_device(np.full(size, sentinel)), cuda.to_device(np.full(size, sentinel))
    guard = "guard with `if a < d.shape[0]:`"
    try:
        _call(lambda: kernel[blocks, threads](d_device[:b, :b], labels_device[:b], positives[:b], negatives[:b]))
    except _Wrong as wrong:
        if "IndexError" in str(wrong) or "out of bounds" in str(wrong):
            raise _Wrong(f"the grid is larger than B: {guard} ({wrong})") from None
        raise
    got_p, got_n = positives.copy_to_host(), negatives.copy_to_host()
    if np.any(got_p[b:] != sentinel) or np.any(got_n[b:] != sentinel):
        raise _Wrong(f"threads past the last anchor wrote past the end of the outputs (a GPU does not stop them: "
                     f"they overwrite other memory): {guard}")
    got_p, got_n = got_p[:b], got_n[:b]
    if np.any(got_p == sentinel) or np.any(got_n == sentinel):
        raise _Wrong("some anchors got no answer: each thread a writes positives[a] and negatives[a]")
    _, expected_p, expected_n = batch_hard_triplets(d, labels).T
    anchors = np.arange(b)
    if np.any(got_p == anchors):
        raise _Wrong("an anchor was chosen as its own positive: skip j == a")
    if np.any(labels[got_p] != labels) or np.any(labels[got_n] == labels):
        raise _Wrong("a positive must share the anchor's label, a negative must not")
    same = labels[:, None] == labels[None, :]
    hardest = {"positive": (got_p, expected_p, np.where(same & ~np.eye(b, dtype=bool), d, -np.inf).max(axis=1), ">"),
               "negative": (got_n, expected_n, np.where(~same, d, np.inf).min(axis=1), "<")}
    for what, (got, expected, extreme, compare) in hardest.items():
        if np.array_equal(got, expected):
            continue
        if np.array_equal(d[anchors, got], extreme):
            raise _Wrong(f"at a tie between {what}s take the LOWEST index: scan j upwards and replace the best only "
                         f"when d[a, j] {compare} best (strictly)")
        raise _Wrong(f"the {what}s differ: the hardest positive is the FARTHEST, the hardest negative the NEAREST")
    return "one thread per anchor walking its row of d, guarded at the edge: how numba_cuda.py selects"


__all__ = ["check_batch_hard_kernel", "check_pairwise_sqdist"]
