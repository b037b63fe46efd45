"""Which array library holds the data: NumPy on the CPU, CuPy on an NVIDIA GPU.

Device follows data: every op asks `array_module(x)` for the module of its inputs, so the same code runs on
either. Nothing else in tinyface needs to know where an array lives.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

DEFAULT_DTYPE = np.float32

try:  # CuPy is optional: installed with the `cuda` extra
    import cupy as _cupy
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # pragma: no cover - no driver
        return False


def array_module(*arrays: Any) -> ModuleType:
    """`cupy` if any argument is a CuPy array, else `numpy`."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy copy of `array`, fetched from the GPU when needed."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def to_device(array: Any, device: str) -> Any:
    """Move `array` to "cpu" (NumPy) or "cuda" (CuPy)."""
    if device == "cpu":
        return to_numpy(array)
    if device == "cuda":
        if _cupy is None:
            raise RuntimeError("device='cuda' needs CuPy: pip install 'tinyface[cuda]' on a machine with a GPU")
        return _cupy.asarray(array)
    raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda'")


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """target[index] += values, adding every occurrence of a repeated index (unlike `+=` on a fancy index)."""
    xp = array_module(target)
    if xp is np:
        np.add.at(target, index, values)
    else:  # pragma: no cover - GPU only
        import cupyx

        cupyx.scatter_add(target, index, values)
