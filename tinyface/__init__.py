"""tinyface: FaceNet-style face recognition from scratch, to be read, run and taught."""

import tinyface.runtime  # noqa: F401, I001 - first of all: idle threads sleep, whatever came first (runtime.py)

from tinyface import kernels, losses, mining, nn, ops
from tinyface.nn import optim
from tinyface.gradcheck import GradcheckError, gradcheck
from tinyface.rng import manual_seed
from tinyface.tensor import Function, Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.2.0"

__all__ = [
    "Function",
    "GradcheckError",
    "Tensor",
    "__version__",
    "gradcheck",
    "kernels",
    "losses",
    "mining",
    "nn",
    "optim",
    "is_grad_enabled",
    "manual_seed",
    "no_grad",
    "ops",
    "tensor",
]
