"""Lesson 8, the hot path as GPU kernels: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyface.kernels.numpy_ref import pairwise_sqdist_backward
from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _Wrong


@_check
def check_sqdist_backward(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(x, g) -> dL/dx (B, D): the backward of the pairwise squared distances, for L = sum_ij g_ij d_ij with
    d_ij = ||x_i - x_j||^2, x (B, D) and g = dL/dd (B, B) any upstream gradient (not symmetric in general).

    d_ij depends on x_k only when i = k (d/dx_k = 2 (x_k - x_j)) or j = k (2 (x_k - x_i)), so
        dL/dx_k = 2 sum_j (g_kj + g_jk) (x_k - x_j) = 2 (r_k x_k - (S x)_k),   S = g + g^T,  r_k = sum_j S_kj:
    matrix products and a row scaling, never a (B, B, D) array. The check feeds a g that is not symmetric (so a
    forgotten transpose shows), then measures the memory one call takes at B = 256, D = 64."""
    import tracemalloc

    rng = np.random.default_rng(81)
    b, dim = 7, 5
    x = rng.standard_normal((b, dim))
    g = rng.standard_normal((b, b))  # as a loss would hand it back: no symmetry, a non-zero diagonal
    expected = pairwise_sqdist_backward(x, g)
    got = _array(_call(fn, x.copy(), g.copy()), (b, dim), "dL/dx")
    # float32 arithmetic inside the answer (the hot path's own dtype) is right too: tolerance at its precision
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max()):
        rows_only = 2 * (g.sum(axis=1)[:, None] * x - g @ x)
        columns_only = 2 * (g.sum(axis=0)[:, None] * x - g.T @ x)
        if np.allclose(got, rows_only) or np.allclose(got, columns_only):
            raise _Wrong("x_k appears in d_kj (row k) AND in d_jk (column k): sum over both, S = g + g^T; a "
                         "symmetric g hides the difference, a loss's g is not symmetric")
        if np.allclose(got, -expected):
            raise _Wrong("the sign is flipped: d/dx_k of ||x_k - x_j||^2 is +2 (x_k - x_j)")
        if np.allclose(got, 2 * expected):
            raise _Wrong("twice the gradient: the factor 2 (from d/dx ||x||^2 = 2 x) comes once, and S = g + g^T "
                         "counts each pair's two terms once each")
        if np.allclose(got, expected / 2):
            raise _Wrong("half the gradient: d/dx of ||x||^2 is 2 x, keep the factor 2")
        if np.allclose(got, -2 * (g + g.T) @ x):
            raise _Wrong("the r_k x_k term is missing: each (x_k - x_j) also gives x_k, weighted by the row "
                         "sum of S")
        raise _Wrong(f"largest difference from 2 (rowsum(S) x - S x), S = g + g^T: "
                     f"{np.max(np.abs(got - expected)):.3g}")
    b, dim = 256, 64
    x, g = rng.standard_normal((b, dim)), rng.standard_normal((b, b))
    tracemalloc.start()
    try:
        got = _call(fn, x, g)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    got, expected = _array(got, (b, dim), "dL/dx"), pairwise_sqdist_backward(x, g)
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max()):
        raise _Wrong(f"right on a small batch, but not at B = {b}: largest difference "
                     f"{np.max(np.abs(got - expected)):.3g}")
    budget = 8 * b * b * 8  # a few (B, B) float64 arrays: 4 MB; a (B, B, D) one alone is 32 MB
    if peak > budget:
        raise _Wrong(f"the numbers are right, but one call at B = {b}, D = {dim} took {peak / 2**20:.0f} MB: that "
                     f"is a (B, B, D) array (every x_k - x_j); write it with matrix products, S x = g x + g^T x")
    return (f"dL/dx = 2 (rowsum(S) x - S x) with S = g + g^T, in {peak / 2**20:.1f} MB at B = {b}: "
            "numpy_ref.pairwise_sqdist_backward, the backward every triplet loss of tinyface ends in")


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


__all__ = ["check_batch_hard_kernel", "check_sqdist_backward"]
