"""Lesson 2, gradients by hand, by finite differences and by autograd: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _Wrong


@_check
def check_anchor_gradient(fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(a, p, n): the gradient with respect to a of  L = ||a - p||^2 - ||a - n||^2 + alpha."""
    rng = np.random.default_rng(2)
    for _ in range(3):
        a, p, n = rng.standard_normal((3, 5))
        got = _array(_call(fn, a.copy(), p.copy(), n.copy()), (5,), "dL/da")
        expected = 2 * (n - p)
        if np.allclose(got, expected, atol=1e-6):
            continue
        if np.allclose(got, -expected, atol=1e-6):
            raise _Wrong("the sign is flipped: d/da ||a - p||^2 = 2 (a - p), and the negative term flips its own")
        if np.allclose(got, expected / 2, atol=1e-6):
            raise _Wrong("a factor of 2 is missing: d/dx x^2 = 2x")
        if np.allclose(got, 2 * (a - p), atol=1e-6):
            raise _Wrong("that is the gradient of the first term only; add the gradient of -||a - n||^2")
        raise _Wrong("differentiate each squared distance: d/da ||a - b||^2 = 2 (a - b); then simplify")
    return "dL/da = 2 (a - p) - 2 (a - n) = 2 (n - p): it pulls a towards p and pushes it from n"


@_check
def check_numerical_gradient(fn: Callable[[Callable[[np.ndarray], float], np.ndarray, float], np.ndarray]) -> str:
    """fn(f, x, eps): the central-difference estimate of the gradient of a scalar function f at the float64
    array x, (f(x + eps e_k) - f(x - eps e_k)) / (2 eps) for every element k; x must be left unchanged."""

    def f(x: np.ndarray) -> float:
        return float(np.sum(np.sin(x) * x**2))

    x = np.array([[0.3, -1.2, 2.0], [0.7, 1.5, -0.4]])
    original = x.copy()
    got = _array(_call(fn, f, x, 1e-5), x.shape, "the gradient")
    if not np.array_equal(x, original):
        raise _Wrong("x was changed: put each element back after nudging it (or nudge a copy)")
    expected = np.cos(x) * x**2 + 2 * x * np.sin(x)
    error = float(np.max(np.abs(got - expected)))
    if error < 1e-7:
        return f"central differences agree with the exact gradient to {error:.1e}"
    if error < 1e-3:
        raise _Wrong(f"close (error {error:.1e}) but not central: use (f(x + eps) - f(x - eps)) / (2 eps)")
    raise _Wrong(f"the estimate is off by up to {error:.2g}; nudge one element at a time, by +eps and by -eps")


@_check
def check_function(function: type, reference: Callable[[np.ndarray], np.ndarray]) -> str:
    """function: a tinyface Function subclass of one input; its forward must match `reference` on arrays and
    its backward must pass gradcheck."""
    from tinyface.gradcheck import gradcheck
    from tinyface.tensor import Tensor

    _given(function)
    x = np.random.default_rng(3).standard_normal((4, 3))
    x[np.abs(x) < 0.05] = 0.5  # keep away from kinks, where finite differences are unreliable
    out = _call(lambda: function.apply(Tensor(x.copy())))
    got = _array(out, x.shape, "the forward output")
    if not np.allclose(got, reference(x), atol=1e-6):
        raise _Wrong("the forward pass does not compute the function; check it before the backward")
    _call(gradcheck, lambda t: function.apply(t), Tensor(x.copy(), requires_grad=True))  # GradcheckError: wrong
    return "forward matches and backward passes gradcheck: a new op for the engine"


__all__ = ["check_anchor_gradient", "check_function", "check_numerical_gradient"]
