"""Lesson 5, the triplet loss: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _number, _Wrong


@_check
def check_triplet_loss(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]) -> str:
    """fn(a, p, n, alpha) for embeddings (T, D): FaceNet's loss, the SUM over triplets of
    max(||a - p||^2 - ||a - n||^2 + alpha, 0)."""
    rng = np.random.default_rng(50)
    a, p, n = rng.standard_normal((3, 16, 5)) * 0.5
    alpha = 0.2
    d_ap, d_an = np.sum((a - p) ** 2, axis=1), np.sum((a - n) ** 2, axis=1)
    hinge = d_ap - d_an + alpha
    expected = float(np.sum(np.maximum(hinge, 0)))
    got = _number(_call(fn, a.copy(), p.copy(), n.copy(), alpha), "the loss")
    if np.isclose(got, expected, rtol=1e-6):
        return f"L = {expected:.4f}: only the triplets whose negative is not yet alpha farther than the positive count"
    if np.isclose(got, expected / len(a), rtol=1e-6):
        raise _Wrong("that is the mean; the paper's formula sums over the triplets")
    if np.isclose(got, float(np.sum(hinge)), rtol=1e-6):
        raise _Wrong("the hinge is missing: max(..., 0), so that easy triplets cost 0 instead of a reward")
    if np.isclose(got, float(np.sum(np.maximum(d_an - d_ap + alpha, 0))), rtol=1e-6):
        raise _Wrong("positive and negative are swapped: the loss should grow when the POSITIVE is far away")
    sqrt_hinge = np.sqrt(d_ap) - np.sqrt(d_an) + alpha
    if np.isclose(got, float(np.sum(np.maximum(sqrt_hinge, 0))), rtol=1e-6):
        raise _Wrong("use squared distances, ||a - p||^2, as the paper does (no square root)")
    raise _Wrong(f"expected {expected:.4f}, got {got:.4f}: sum over rows of max(d_ap - d_an + alpha, 0)")


@_check
def check_collapsed_loss(answer: float, num_triplets: int, alpha: float) -> str:
    """answer: the (summed) triplet loss of `num_triplets` triplets when f maps every face to the same point."""
    got = _number(answer, "the loss")
    expected = num_triplets * alpha
    if np.isclose(got, expected):
        return (f"{num_triplets} x alpha = {expected:g}: d_ap = d_an = 0, so every hinge is exactly alpha; "
                "with alpha = 0 the collapse would cost nothing")
    if np.isclose(got, 0):
        raise _Wrong("0 is the answer without a margin; with alpha > 0 what is max(0 - 0 + alpha, 0)?")
    if np.isclose(got, alpha):
        raise _Wrong("that is one triplet's loss; the paper's loss is a sum over all of them")
    raise _Wrong("all embeddings equal means d_ap = d_an = 0 for every triplet: add up the hinges")


@_check
def check_triplet_gradients(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple]) -> str:
    """fn(a, p, n, alpha) for one triplet of vectors (D,): (dL/da, dL/dp, dL/dn) of
    L = max(||a - p||^2 - ||a - n||^2 + alpha, 0)."""
    rng = np.random.default_rng(51)
    alpha = 0.2
    cases = []
    for _ in range(2):
        a = rng.standard_normal(4)
        cases.append((a, a + 0.1 * rng.standard_normal(4), a + 0.1 * rng.standard_normal(4)))  # active (close n)
        cases.append((a, a + 0.05 * rng.standard_normal(4), a + 3 + rng.standard_normal(4)))  # inactive: easy
    for a, p, n in cases:
        answer = _call(fn, a.copy(), p.copy(), n.copy(), alpha)
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 3:
            raise _Wrong("return three gradients, (grad_a, grad_p, grad_n)")
        got = [_array(g, (4,), name) for g, name in zip(answer, ("grad_a", "grad_p", "grad_n"), strict=True)]
        active = np.sum((a - p) ** 2) - np.sum((a - n) ** 2) + alpha > 0
        expected = [2 * (n - p), 2 * (p - a), 2 * (a - n)] if active else [np.zeros(4)] * 3
        if all(np.allclose(g, e, atol=1e-6) for g, e in zip(got, expected, strict=True)):
            continue
        if not active:
            raise _Wrong("for an easy triplet (d_an > d_ap + alpha) the hinge is 0 and flat: all three gradients "
                         "are 0")
        for g, e, name in zip(got, expected, ("grad_a", "grad_p", "grad_n"), strict=True):
            if np.allclose(g, -e, atol=1e-6):
                raise _Wrong(f"{name} has the wrong sign")
            if not np.allclose(g, e, atol=1e-6):
                raise _Wrong(f"{name} is not right for an active triplet: differentiate ||a - p||^2 - ||a - n||^2")
    return "grad_a = 2(n - p), grad_p = 2(p - a), grad_n = 2(a - n) when active, all 0 when not; they sum to 0"


__all__ = ["check_collapsed_loss", "check_triplet_gradients", "check_triplet_loss"]
