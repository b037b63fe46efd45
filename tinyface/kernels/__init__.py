"""The hot path of triplet training: pairwise distances and fused triplet losses, the same numbers on every backend.

What each kernel takes and returns (shapes, dtypes, the tie and fallback rules, the memory promise) is in
contract.py: read it first, then numpy_ref.py. This file only dispatches a call to a backend.

Backends: "numpy" (numpy_ref.py, the reference), "numba" (numba_cpu.py), "numba_cuda" (numba_cuda.py) and
"cupy" (cupy_cuda.py, CUDA C from the .cu files). The backend follows the array (a CuPy array goes to "cupy",
a NumPy array to "numba" when Numba imports, else "numpy"); `backend=` or the TINYFACE_BACKEND environment
variable forces one.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np

from tinyface.device import array_module

from . import contract, numpy_ref  # the contract, and the reference that keeps it in plain NumPy (always there)

BACKENDS = {"numpy": "numpy_ref", "numba": "numba_cpu", "numba_cuda": "numba_cuda", "cupy": "cupy_cuda"}

__all__ = [
    "BACKENDS",
    "available_backends",
    "batch_all_triplet",
    "batch_hard_triplet",
    "contract",
    "get_backend",
    "numpy_ref",
    "pairwise_sqdist",
    "pairwise_sqdist_backward",
    "semihard_negatives",
    "semihard_triplet",
]


@cache
def _load(name: str) -> ModuleType | Exception:
    """The backend module, or the exception that stopped it from loading (kept to explain a forced choice)."""
    try:
        module = importlib.import_module(f"{__name__}.{BACKENDS[name]}")
        if hasattr(module, "is_available") and not module.is_available():
            raise RuntimeError("no usable CUDA GPU (and NUMBA_ENABLE_CUDASIM is not set)")
        return module
    except Exception as error:  # an optional dependency missing, or no GPU
        return error


def available_backends() -> list[str]:
    """The backends that load on this machine, in the order of BACKENDS."""
    return [name for name in BACKENDS if isinstance(_load(name), ModuleType)]


def get_backend(name: str | None = None, like: Any = None) -> ModuleType:
    """The backend module to use: `name` if given, else $TINYFACE_BACKEND if set, else the one that follows
    the array `like` (CuPy -> "cupy"; NumPy -> "numba" when available, else "numpy")."""
    name = name or os.environ.get("TINYFACE_BACKEND") or None
    if name is None:
        if like is not None and array_module(like) is not np:
            name = "cupy"
        else:
            name = "numba" if isinstance(_load("numba"), ModuleType) else "numpy"
    if name not in BACKENDS:
        raise ValueError(f"unknown kernel backend {name!r}: choose one of {list(BACKENDS)} (or unset TINYFACE_BACKEND)")
    module = _load(name)
    if isinstance(module, Exception):
        raise RuntimeError(
            f"kernel backend {name!r} is not available here ({type(module).__name__}: {module}); "
            f"available: {available_backends()}"
        ) from module
    return module


def pairwise_sqdist(x: Any, backend: str | None = None) -> Any:
    """Squared L2 distances (B, D) -> (B, B): clamped at 0, exactly 0 on the diagonal."""
    return get_backend(backend, like=x).pairwise_sqdist(x)


def pairwise_sqdist_backward(x: Any, grad_d: Any, backend: str | None = None) -> Any:
    """Gradient with respect to x (B, D) of sum_ij grad_d[i, j] * d[i, j]."""
    return get_backend(backend, like=x).pairwise_sqdist_backward(x, grad_d)


def semihard_negatives(d: Any, labels: Any, fallback: str = "easiest", backend: str | None = None) -> tuple[Any, Any]:
    """Per anchor-positive pair (row-major), the nearest negative farther than the positive, else `fallback`
    ("easiest", "hardest" or "skip"). Returns (pairs (T, 2) int64, negatives (T,) int64)."""
    return get_backend(backend, like=d).semihard_negatives(d, labels, fallback)


def batch_all_triplet(x: Any, labels: Any, margin: float, backend: str | None = None) -> tuple[float, Any, float, int]:
    """Mean of the active hinges over all valid triplets: (loss, grad_x, fraction_active, num_active)."""
    return get_backend(backend, like=x).batch_all_triplet(x, labels, margin)


def batch_hard_triplet(
    x: Any, labels: Any, margin: float, soft: bool = False, backend: str | None = None
) -> tuple[float, Any]:
    """Farthest positive and nearest negative per anchor, hinge or softplus: (loss, grad_x)."""
    return get_backend(backend, like=x).batch_hard_triplet(x, labels, margin, soft)


def semihard_triplet(
    x: Any, labels: Any, margin: float, fallback: str = "easiest", backend: str | None = None
) -> tuple[float, Any, int]:
    """Semi-hard triplet loss over anchor-positive pairs: (loss, grad_x, num_pairs)."""
    return get_backend(backend, like=x).semihard_triplet(x, labels, margin, fallback)
