"""Distances between embeddings, in NumPy: squared L2 as in FaceNet, between unit-length vectors (so in [0, 4]).

    ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b

The training hot path computes the same (B, B) matrix on the batch's device in tinyface.kernels
(pairwise_sqdist); evaluation and the face tools use these.
"""

from __future__ import annotations

import numpy as np

from tinyface.eval.checks import check_distances, check_embeddings


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length: x / max(||x||, eps) (an all-zero row stays zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) float64 squared L2 distances ||a||^2 + ||b||^2 - 2 a.b between the rows of a (A, D) and b (B, D),
    clamped at 0 (rounding can make it slightly negative for near-identical vectors)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def pair_distances(embeddings: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Squared L2 distance of each pair, sum over D of (e[i] - e[j])^2: (M,) from (N, D) embeddings."""
    embeddings = check_embeddings(embeddings)
    i, j = np.asarray(i), np.asarray(j)
    if i.shape != j.shape or i.ndim != 1:
        raise ValueError(f"i and j must be 1-D and equally long, got {i.shape} and {j.shape}")
    difference = embeddings[i] - embeddings[j]
    return np.einsum("md,md->m", difference, difference)


def symmetrize(distances: np.ndarray) -> np.ndarray:
    """An (N, N) distance matrix made exactly symmetric and non-negative, with a zero diagonal: max((D + D^T) / 2, 0).
    Squared distances computed as ||a||^2 + ||b||^2 - 2 a.b round differently at (i, j) and (j, i), and can dip
    just below 0; clustering wants neither."""
    distances = check_distances(distances, square=True)
    distances = np.maximum((distances + distances.T) / 2, 0)
    np.fill_diagonal(distances, 0)
    return distances
