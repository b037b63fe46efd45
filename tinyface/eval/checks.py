"""Input checks shared by evaluation, mining and the face tools: embeddings (N, D), distances, identity labels.

Each returns its input as a NumPy array (cast to `dtype` when one is given) or raises ValueError saying what
was wrong and what to do. A NaN embedding usually means a diverged model; every distance computed from it is
NaN too, so both checks point back at the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_NUMBERS = "fiu"  # dtype kinds: float, signed and unsigned integer


def check_embeddings(x: Any, what: str = "embeddings", dtype: Any = None) -> np.ndarray:
    """x as an (N, D) array of finite numbers."""
    x = _numbers(x, what, dtype)
    if x.ndim != 2:
        raise ValueError(f"{what} must be (N, D), got shape {x.shape}")
    bad = int(np.sum(~np.isfinite(x).all(axis=1)))
    if bad:
        raise ValueError(f"{what} contain NaN or infinite values ({bad} of {len(x)} rows); check the model "
                         "(did training diverge?)")
    return x


def check_same_images(x: Any, embeddings: np.ndarray, what: str = "query embeddings") -> np.ndarray:
    """x as embeddings of the same N images as `embeddings` (N, D), in a space of the same dimension (another
    model's embeddings of them, e.g. a new model's queries against an old model's gallery)."""
    x = check_embeddings(x, what)
    if x.shape != np.shape(embeddings):
        raise ValueError(f"{what} must embed the same images in the same dimension: expected shape "
                         f"{np.shape(embeddings)}, got {x.shape}")
    return x


def check_distances(d: Any, what: str = "distances", square: bool = False, dtype: Any = None) -> np.ndarray:
    """d as an array of finite numbers, of any shape, or (N, N) when `square`."""
    d = _numbers(d, what, dtype)
    if square and (d.ndim != 2 or d.shape[0] != d.shape[1]):
        raise ValueError(f"{what} must be a square (N, N) matrix, got shape {d.shape}")
    bad = int(np.sum(~np.isfinite(d)))
    if bad:
        raise ValueError(f"{bad} of {d.size} {what} are NaN or infinite; check the embeddings they were computed "
                         "from (NaN embeddings come from a diverged model)")
    return d


def check_labels(labels: Any, what: str = "labels", count: int | None = None) -> np.ndarray:
    """labels as a 1-D int64 array of identity ids, `count` of them (one per embedding) when given."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{what} must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if count is not None and len(labels) != count:
        raise ValueError(f"give one label per embedding: {count} embeddings, {len(labels)} {what}")
    return labels.astype(np.int64, copy=False)


def _numbers(x: Any, what: str, dtype: Any) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in _NUMBERS:
        raise ValueError(f"{what} must be an array of numbers, got dtype {x.dtype}")
    return x if dtype is None else x.astype(dtype, copy=False)
