"""CUDA backend in CUDA C: the kernels of pairwise.cu and triplet.cu, compiled by CuPy (`cupy.RawModule`) once per
dtype (real_t = float or double), with the fallback codes of contract.py passed as -D defines. The same algorithms
as numba_cuda.py, and the same results as numpy_ref.

Takes CuPy arrays and returns CuPy arrays; NumPy inputs (a forced backend) are moved to the GPU and the results
moved back, so the result lives where the input did.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from tinyface.device import cupy_available

from .contract import FALLBACK_CODES, fallback_code

try:
    import cupy
except ImportError:  # pragma: no cover - depends on the machine
    cupy = None

__all__ = [
    "SOURCES",
    "batch_all_triplet",
    "batch_hard_triplet",
    "compile_options",
    "is_available",
    "pairwise_sqdist",
    "pairwise_sqdist_backward",
    "semihard_negatives",
    "semihard_triplet",
]

SOURCES = (Path(__file__).with_name("pairwise.cu"), Path(__file__).with_name("triplet.cu"))
_TILE = 16
_C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def is_available() -> bool:
    """True when CuPy imports and sees a GPU."""
    return cupy_available()


def compile_options(real_t: str) -> tuple[str, ...]:
    """The CUDA C compiler's defines for SOURCES: real_t ("float" or "double") and the fallback codes of
    contract.py (-DFALLBACK_EASIEST=0 ...), so that the .cu files hold no copy of them."""
    codes = (f"-DFALLBACK_{name.upper()}={code}" for name, code in FALLBACK_CODES.items())
    return (f"-Dreal_t={real_t}", *codes)


@cache
def _module(dtype: np.dtype) -> Any:
    if dtype not in _C_TYPES:
        raise TypeError(f"the CUDA kernels take float32 or float64 embeddings, got {dtype}")
    code = "\n".join(path.read_text() for path in SOURCES)
    return cupy.RawModule(code=code, options=compile_options(_C_TYPES[dtype]))


def _launch(name: str, dtype: np.dtype, rows: int, cols: int, *args: Any) -> None:
    """Run kernel `name` on a rows x cols grid of threads (x along columns)."""
    kernel = _module(np.dtype(dtype)).get_function(name)
    kernel((math.ceil(cols / _TILE), math.ceil(rows / _TILE)), (_TILE, _TILE), args)


def _on_gpu(x: Any) -> tuple[Any, bool]:
    """(a contiguous CuPy array, whether the input was NumPy)."""
    was_numpy = isinstance(x, np.ndarray)
    return cupy.ascontiguousarray(cupy.asarray(x)), was_numpy


def _back(array: Any, to_numpy: bool) -> Any:
    return cupy.asnumpy(array) if to_numpy else array


def _sqdist(x: Any) -> Any:
    d = cupy.empty((x.shape[0], x.shape[0]), dtype=x.dtype)
    _launch("pairwise_sqdist", x.dtype, x.shape[0], x.shape[0], x, d, np.int32(x.shape[0]), np.int32(x.shape[1]))
    return d


def _backward(x: Any, weights: Any, scale: float) -> Any:
    out = cupy.empty_like(x)
    b, dim = x.shape
    scale = x.dtype.type(scale)
    _launch("pairwise_sqdist_backward", x.dtype, b, dim, x, weights, scale, out, np.int32(b), np.int32(dim))
    return out


def _labels(labels: Any) -> Any:
    return cupy.ascontiguousarray(cupy.asarray(labels, dtype=cupy.int64))


def pairwise_sqdist(x: Any) -> Any:
    """Squared L2 distances (B, D) -> (B, B), clamped at 0, exactly 0 on the diagonal."""
    x, was_numpy = _on_gpu(x)
    return _back(_sqdist(x), was_numpy)


def pairwise_sqdist_backward(x: Any, grad_d: Any) -> Any:
    """Gradient with respect to x of sum_ij grad_d[i, j] d[i, j]."""
    x, was_numpy = _on_gpu(x)
    weights = cupy.ascontiguousarray(cupy.asarray(grad_d, dtype=x.dtype))
    return _back(_backward(x, weights, 1.0), was_numpy)


def _select(d: Any, labels: Any, fallback: str) -> Any:
    code = np.int32(fallback_code(fallback))
    chosen = cupy.empty(d.shape, dtype=cupy.int64)
    b = np.int32(d.shape[0])
    _launch("semihard_select", d.dtype, d.shape[0], d.shape[1], d, _labels(labels), code, chosen, b)
    return chosen


def semihard_negatives(d: Any, labels: Any, fallback: str = "easiest") -> tuple[Any, Any]:
    """As `numpy_ref.semihard_negatives`: (pairs (T, 2), negatives (T,)), row-major, skipped pairs dropped."""
    d, was_numpy = _on_gpu(d)
    chosen = _select(d, labels, fallback)
    pairs = cupy.argwhere(chosen >= 0).astype(cupy.int64)
    return _back(pairs, was_numpy), _back(chosen[pairs[:, 0], pairs[:, 1]], was_numpy)


def semihard_triplet(x: Any, labels: Any, margin: float, fallback: str = "easiest") -> tuple[float, Any, int]:
    """As `numpy_ref.semihard_triplet`: (loss, grad_x, number of kept pairs)."""
    x, was_numpy = _on_gpu(x)
    d = _sqdist(x)
    chosen = _select(d, labels, fallback)
    weights = cupy.zeros_like(d)
    hinges = cupy.empty_like(d)
    b = np.int32(d.shape[0])
    _launch("semihard_weights", x.dtype, d.shape[0], d.shape[1], d, chosen, x.dtype.type(margin), weights, hinges, b)
    num_pairs = int(cupy.count_nonzero(chosen >= 0))
    if num_pairs == 0:
        return 0.0, _back(cupy.zeros_like(x), was_numpy), 0
    loss = float(hinges.sum(dtype=cupy.float64)) / num_pairs
    return loss, _back(_backward(x, weights, 1.0 / num_pairs), was_numpy), num_pairs


def _label_counts(labels: Any) -> tuple[Any, Any]:
    """Per anchor: number of positives and of negatives."""
    labels = _labels(labels)
    _, inverse, counts = cupy.unique(labels, return_inverse=True, return_counts=True)
    same = counts[inverse.reshape(-1)]
    return same - 1, len(labels) - same


def batch_all_triplet(x: Any, labels: Any, margin: float) -> tuple[float, Any, float, int]:
    """As `numpy_ref.batch_all_triplet`: (loss, grad_x, fraction active, number active)."""
    x, was_numpy = _on_gpu(x)
    d = _sqdist(x)
    weights = cupy.empty_like(d)
    hinge_sums = cupy.empty(d.shape, dtype=cupy.float64)
    b = np.int32(d.shape[0])
    margin = x.dtype.type(margin)
    _launch("batch_all", x.dtype, d.shape[0], d.shape[1], d, _labels(labels), margin, weights, hinge_sums, b)
    num_active = int(weights[weights > 0].sum(dtype=cupy.float64))
    if num_active == 0:
        return 0.0, _back(cupy.zeros_like(x), was_numpy), 0.0, 0
    n_pos, n_neg = _label_counts(labels)
    loss = float(hinge_sums.sum()) / num_active
    grad = _back(_backward(x, weights, 1.0 / num_active), was_numpy)
    return loss, grad, num_active / int((n_pos * n_neg).sum()), num_active


def batch_hard_triplet(x: Any, labels: Any, margin: float, soft: bool = False) -> tuple[float, Any]:
    """As `numpy_ref.batch_hard_triplet`: (loss, grad_x)."""
    x, was_numpy = _on_gpu(x)
    n_pos, n_neg = _label_counts(labels)
    num_anchors = int(cupy.count_nonzero((n_pos > 0) & (n_neg > 0)))
    if num_anchors == 0:
        return 0.0, _back(cupy.zeros_like(x), was_numpy)
    d = _sqdist(x)
    weights = cupy.empty_like(d)
    losses = cupy.empty(d.shape[0], dtype=cupy.float64)
    kernel = _module(np.dtype(x.dtype)).get_function("batch_hard")
    scale = np.float64(1.0 / num_anchors)
    args = (d, _labels(labels), x.dtype.type(margin), np.int32(bool(soft)), scale, weights, losses)
    kernel((math.ceil(d.shape[0] / 128),), (128,), (*args, np.int32(d.shape[0])))
    loss = float(losses.sum()) / num_anchors
    return loss, _back(_backward(x, weights, 1.0), was_numpy)
