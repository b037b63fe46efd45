"""Check analytic gradients against central finite differences, in float64.

For every element x_k of every input that requires grad:

    dL/dx_k  ~=  (L(x + eps e_k) - L(x - eps e_k)) / (2 eps)

with L = sum(fn(*inputs) * w) for a fixed random weight w (so that every output element matters, and a
wrong gradient cannot hide behind a sum that is constant in x); w = 1 for a scalar output such as a loss, so
that the values compared are the loss's own gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyface.device import to_numpy
from tinyface.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences: the message says where, and the fields hold it
    (`input_index`, the `element` index tuple, `analytic` and `numeric` values, the step `eps`)."""

    def __init__(self, message: str, input_index: int = -1, element: tuple[int, ...] = (),
                 analytic: float = float("nan"), numeric: float = float("nan"), eps: float = float("nan")) -> None:
        super().__init__(message)
        self.input_index, self.element = input_index, element
        self.analytic, self.numeric, self.eps = analytic, numeric, eps


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """True when the gradient of `fn` with respect to every input that requires grad matches central
    differences within `atol + rtol * |numeric|`; otherwise raises `GradcheckError` naming the input, the element
    and both values. Inputs are cast to float64 first (tensors keep requires_grad; other arguments pass as given).
    """
    inputs64 = [
        Tensor(to_numpy(x.data).astype(np.float64), requires_grad=x.requires_grad) if isinstance(x, Tensor) else x
        for x in inputs
    ]
    checked = [i for i, x in enumerate(inputs64) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one Tensor input with requires_grad=True")

    out = fn(*inputs64)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned {out.dtype} from float64 inputs; it must keep float64")
    weights = np.random.default_rng(seed).standard_normal(out.shape) if out.shape else np.ones(())

    def objective() -> float:
        with no_grad():
            return float(np.sum(to_numpy(fn(*inputs64).data) * weights))

    for i in checked:
        inputs64[i].grad = None
    (out * Tensor(weights)).sum().backward()

    for i in checked:
        x = inputs64[i]
        analytic = np.zeros(x.shape) if x.grad is None else to_numpy(x.grad)
        flat = x.data.reshape(-1)  # a view: nudging it nudges the input
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + eps
            plus = objective()
            flat[k] = original - eps
            minus = objective()
            flat[k] = original
            numeric = (plus - minus) / (2 * eps)
            value = analytic.reshape(-1)[k]
            if not abs(value - numeric) <= atol + rtol * abs(numeric):
                where = tuple(int(j) for j in np.unravel_index(k, x.shape)) if x.shape else ()
                raise GradcheckError(
                    f"gradient of input {i} (shape {x.shape}) at element {where}: "
                    f"analytic {value:.8g}, finite differences {numeric:.8g} (eps={eps})",
                    input_index=i, element=where, analytic=float(value), numeric=float(numeric), eps=eps,
                )
    return True
