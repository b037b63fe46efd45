"""The two checks of a property test: gradients against finite differences, values against a plain-loop reference.

    check_gradients(fn, *inputs, batch=...)        tinyface.gradcheck, with a report a student can read: which
                                                   input and element, both values, the relative error, and how
                                                   far the nearest kink is (so: is the gradient wrong, or the check?)
    assert_matches_reference(fn, reference, strategy)   fn and reference agree on every example drawn (by default
                                                   exact_batches(): integer embeddings, exact distances and ties)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy

from tinyface.device import to_numpy
from tinyface.gradcheck import GradcheckError, gradcheck
from tinyface.kernels.numpy_ref import pairwise_sqdist
from tinyface.tensor import Tensor
from tinyface.testing.strategies import TripletBatch, exact_batches

__all__ = ["assert_matches_reference", "check_gradients", "leaf"]


def leaf(array: Any) -> Tensor:
    """A float64 copy of `array` as a Tensor that requires grad: an input to differentiate."""
    return Tensor(np.array(to_numpy(array), dtype=np.float64), requires_grad=True)


def check_gradients(
    fn: Callable[..., Tensor],
    *inputs: Any,
    batch: TripletBatch | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """True when fn's gradients match central finite differences (tinyface.gradcheck, in float64); otherwise a
    GradcheckError whose message names the input and the element, gives both values and the relative error, and,
    when `batch` (the TripletBatch the inputs come from) is given, the nearest kink of its loss and whether the
    finite-difference step can reach it.

    A NumPy float array among `inputs` becomes a leaf (an input to differentiate); a Tensor is checked when it
    requires grad; anything else (labels, a margin, a mask) is passed to fn as it is.
    """
    inputs = tuple(leaf(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for v in inputs)
    try:
        return gradcheck(fn, *inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
    except GradcheckError as error:
        fields = (error.input_index, error.element, error.analytic, error.numeric, error.eps)
        raise GradcheckError(_report(fn, inputs, error, batch, atol, rtol), *fields) from None


def assert_matches_reference(
    fn: Callable[[Any], Any],
    reference: Callable[[Any], Any],
    strategy: SearchStrategy[Any] | None = None,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    **options: Any,
) -> None:
    """Assert that fn(example) == reference(example) for every example `strategy` draws (exact_batches() by
    default). Both return the same structure: a number, an array, a Tensor, a list (compared as an array), or a
    tuple of these (compared item by item). Integers and booleans must be equal, floats within
    atol + rtol |reference|. Runs hypothesis itself, so call it from a plain test (not one under @given); `options`
    are hypothesis settings (max_examples=..., database=None, ...), by default the profile's, with no deadline.
    """
    strategy = exact_batches() if strategy is None else strategy

    @settings(**{"deadline": None, "suppress_health_check": [HealthCheck.too_slow], **options})
    @given(strategy)
    def matches_reference(example: Any) -> None:
        _assert_same(fn(example), reference(example), "the result", rtol, atol)

    matches_reference()


def _assert_same(got: Any, want: Any, where: str, rtol: float, atol: float) -> None:
    if isinstance(want, tuple):
        if not isinstance(got, tuple) or len(got) != len(want):
            raise AssertionError(f"{where}: fn returned {type(got).__name__} {got!r}, the reference a tuple of "
                                 f"{len(want)}")
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"item {i} of {where}", rtol, atol)
        return
    got, want = _array(got), _array(want)
    if got.size == want.size == 0:
        return
    if got.shape != want.shape:
        raise AssertionError(f"{where}: fn returned shape {got.shape}, the reference shape {want.shape}")
    if want.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=f"{where} differs from the reference")
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"{where} differs from the reference")


def _array(value: Any) -> np.ndarray:
    return np.asarray(to_numpy(value.data if isinstance(value, Tensor) else value))


def _report(fn: Callable[..., Any], inputs: tuple[Any, ...], error: GradcheckError, batch: TripletBatch | None,
            atol: float, rtol: float) -> str:
    x = inputs[error.input_index]
    analytic, numeric = error.analytic, error.numeric
    relative = abs(analytic - numeric) / abs(numeric) if numeric else float("inf")
    lines = [
        f"the gradient of input {error.input_index}{_name(fn, error.input_index)} (shape {x.shape}) is wrong at "
        f"element {error.element}:",
        f"  analytic (backward)   {analytic:.8g}",
        f"  finite differences    {numeric:.8g}   (central, eps = {error.eps:g})",
        f"  relative error        {relative:.3g}   (allowed: |analytic - numeric| <= {atol:g} + {rtol:g} |numeric|)",
    ]
    if batch is not None:
        kink = batch.nearest_kink()
        # a step eps moves d_ij by at most 2 eps |x_i - x_j| (+ eps^2); a hinge holds two distances
        reach = 2 * (2 * error.eps * float(np.sqrt(pairwise_sqdist(batch.embeddings).max())) + error.eps**2)
        verdict = ("out of reach: finite differences are right here, so the backward pass is wrong"
                   if kink.distance > reach else
                   "within reach: finite differences may be what is wrong; draw inputs farther from kinks")
        lines += [f"  nearest kink          {kink.distance:.3g} away: {kink.where}",
                  f"  reach of the step     {reach:.2g} (how far a step of eps moves a distance): {verdict}"]
    return "\n".join(lines)


def _name(fn: Callable[..., Any], index: int) -> str:
    """' `x`' when fn names its parameter number `index`, else ''."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return ""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if index < len(parameters) and parameters[index].kind in positional:
        return f" `{parameters[index].name}`"
    return ""
