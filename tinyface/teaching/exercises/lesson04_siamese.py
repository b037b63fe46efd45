"""Lesson 4, Siamese networks and the contrastive loss: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _call, _check, _given, _Wrong


def _autograd_gradient(x1: np.ndarray, x2: np.ndarray, same: bool, margin: float) -> np.ndarray:
    """dL/dx1 of tinyface's contrastive loss for one pair, by backpropagation."""
    from tinyface.losses import contrastive_loss
    from tinyface.tensor import Tensor

    left = Tensor(x1[None], requires_grad=True)
    contrastive_loss(left, Tensor(x2[None]), np.array([same]), margin).backward()
    return np.asarray(left.grad)[0]


@_check
def check_contrastive_gradient(fn: Callable[[np.ndarray, np.ndarray, bool, float], np.ndarray]) -> str:
    """fn(x1, x2, same, margin) for one pair of embeddings (D,): dL/dx1 of L = d (same person) or
    max(margin - sqrt(d), 0)^2 (different people), d = ||x1 - x2||^2; zeros for identical embeddings (d = 0), as
    tinyface's guarded square root gives. Compared with backpropagation through tinyface.losses.contrastive_loss."""
    rng = np.random.default_rng(40)
    margin = 1.0
    x1 = rng.standard_normal(4) * 0.5
    direction = rng.standard_normal(4)
    direction /= np.linalg.norm(direction)
    cases = [  # (x2, same, what)
        (x1 + 0.6 * direction, True, "a same-person pair"),
        (x1 + 1.7 * direction, True, "a same-person pair far apart"),
        (x1 + 0.4 * direction, False, "a different-person pair inside the margin"),
        (x1 + 0.8 * direction, False, "a different-person pair inside the margin"),
        (x1 + 1.5 * direction, False, "a different-person pair beyond the margin"),
        (x1.copy(), False, "a different-person pair with identical embeddings (d = 0)"),
    ]
    for x2, same, what in cases:
        expected = _autograd_gradient(x1, x2, same, margin)
        got = np.asarray(_given(_call(fn, x1.copy(), x2.copy(), same, margin)), dtype=np.float64)
        if got.shape != (4,):
            raise _Wrong(f"return dL/dx1, an array of shape {x1.shape} like x1, got shape {got.shape}")
        if np.allclose(got, expected, atol=1e-9):
            continue
        diff = x1 - x2
        distance = np.linalg.norm(diff)
        if not np.all(np.isfinite(got)):
            raise _Wrong(f"for {what} your gradient is {got}: at d = 0 the square root's derivative is infinite; "
                         "return zeros there, as tinyface's guard does")
        if np.allclose(got, -expected, atol=1e-9):
            raise _Wrong(f"for {what} the sign is wrong (or that is dL/dx2 = -dL/dx1)")
        if same and np.allclose(got, expected / 2, atol=1e-9):
            raise _Wrong("the derivative of ||x1 - x2||^2 with respect to x1 is 2 (x1 - x2)")
        if not same and distance >= margin:
            raise _Wrong(f"for {what} (sqrt(d) >= margin) the loss is 0 and flat: the gradient is 0")
        if not same and np.allclose(got, -2 * (margin - distance) * diff, atol=1e-9):
            raise _Wrong("the chain rule through the square root is missing: d sqrt(d) / dx1 = (x1 - x2) / sqrt(d)")
        if not same and np.allclose(got, -4 * max(margin - distance**2, 0) * diff, atol=1e-9):
            raise _Wrong("the hinge uses the plain distance sqrt(d), not d: max(margin - sqrt(d), 0)^2")
        raise _Wrong(f"for {what} backpropagation gives {np.round(expected, 4)}, you gave {np.round(got, 4)}")
    return ("2 (x1 - x2) for a same pair; -2 (m - sqrt d) (x1 - x2) / sqrt d for a different pair inside the "
            "margin, 0 beyond it: a different pair far enough apart stops talking")


@_check
def check_balanced_pairs(fn: Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]) -> str:
    """fn(labels, n, rng) -> (i, j): 2n index pairs, the first n of the same person (i != j), the last n of
    different people, drawn at random with rng."""
    labels = np.repeat(np.arange(6), 5)
    draws = []
    for seed in (0, 1):
        answer = _call(fn, labels.copy(), 20, np.random.default_rng(seed))
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise _Wrong("return two index arrays, (i, j)")
        i, j = (np.asarray(a) for a in answer)
        if i.shape != (40,) or j.shape != (40,) or i.dtype.kind not in "iu" or j.dtype.kind not in "iu":
            raise _Wrong(f"i and j should be integer arrays of shape (40,) for n = 20, got {i.shape} and {j.shape}")
        if i.min() < 0 or j.min() < 0 or max(i.max(), j.max()) >= len(labels):
            raise _Wrong("the indices must point into labels")
        if np.any(labels[i[:20]] != labels[j[:20]]):
            raise _Wrong("the first n pairs must show the same person: labels[i] == labels[j]")
        if np.any(i[:20] == j[:20]):
            raise _Wrong("a same-person pair needs two different photos (i != j); an image paired with itself "
                         "teaches nothing")
        if np.any(labels[i[20:]] == labels[j[20:]]):
            raise _Wrong("the last n pairs must show two different people")
        draws.append((i, j))
    if all(np.array_equal(a, b) for a, b in zip(draws[0], draws[1], strict=True)):
        raise _Wrong("two different generators gave the same pairs: draw them with rng")
    return "n same-person pairs and n different-person pairs: a balanced diet for a Siamese network"


__all__ = ["check_balanced_pairs", "check_contrastive_gradient"]
