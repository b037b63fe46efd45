"""Lesson 4, Siamese networks and the contrastive loss: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _call, _check, _given, _number, _Wrong


@_check
def check_contrastive_loss(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]) -> str:
    """fn(x1, x2, same, margin): the mean over pairs of d (same person) or max(margin - sqrt(d), 0)^2 (different
    people), with d = ||x1 - x2||^2 per row: tinyface.losses.contrastive_loss in plain NumPy."""
    rng = np.random.default_rng(40)
    x1, x2 = rng.standard_normal((2, 12, 4)) * 0.4
    same = np.arange(12) % 3 == 0
    margin = 1.0
    d = np.sum((x1 - x2) ** 2, axis=1)
    expected = float(np.mean(np.where(same, d, np.maximum(margin - np.sqrt(d), 0) ** 2)))
    got = _number(_call(fn, x1.copy(), x2.copy(), same.copy(), margin), "the loss")
    if np.isclose(got, expected, rtol=1e-6):
        return f"L = {expected:.4f}: same pairs pulled together by d, different pairs pushed out to the margin"
    if np.isclose(got, float(np.mean(np.where(~same, d, np.maximum(margin - np.sqrt(d), 0) ** 2))), rtol=1e-6):
        raise _Wrong("same and different are swapped: a same-person pair costs d, a different pair the hinge")
    if np.isclose(got, float(np.mean(np.where(same, d, np.maximum(margin - d, 0) ** 2))), rtol=1e-6):
        raise _Wrong("the hinge uses the plain distance sqrt(d), not d: max(margin - sqrt(d), 0)^2")
    if np.isclose(got, float(np.mean(np.where(same, d, np.maximum(margin - np.sqrt(d), 0)))), rtol=1e-6):
        raise _Wrong("square the hinge: max(margin - sqrt(d), 0)^2")
    if np.isclose(got, float(np.sum(np.where(same, d, np.maximum(margin - np.sqrt(d), 0) ** 2))), rtol=1e-6):
        raise _Wrong("that is the sum over pairs; take the mean (as contrastive_loss does by default)")
    raise _Wrong(f"expected {expected:.4f}, got {got:.4f}: d = sum((x1 - x2)**2, axis=1), one per pair")


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


@_check
def check_push_distance(answer: float, margin: float) -> str:
    """answer: the squared distance d = ||f(x1) - f(x2)||^2 beyond which a different-person pair costs nothing."""
    got = _number(answer, "d")
    if np.isclose(got, margin**2):
        return f"d >= margin^2 = {margin**2:g}: the margin is a plain distance, sqrt(d) >= {margin:g}"
    if np.isclose(got, margin):
        raise _Wrong("the hinge is max(margin - sqrt(d), 0): it vanishes when sqrt(d) reaches the margin; "
                     "what is d then?")
    if np.isclose(got, 0):
        raise _Wrong("at d = 0 a different pair costs the most, margin^2; find where the hinge reaches 0")
    raise _Wrong("solve margin - sqrt(d) = 0 for d")


__all__ = ["check_balanced_pairs", "check_contrastive_loss", "check_push_distance"]
