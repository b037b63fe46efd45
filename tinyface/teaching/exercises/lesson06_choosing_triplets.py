"""Lesson 6, choosing triplets: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _number, _Wrong


def _triplet_set(answer: Any, what: str) -> set[tuple[int, int, int]]:
    _given(answer)
    array = np.asarray(answer)
    if array.size == 0:
        return set()
    if array.ndim != 2 or array.shape[1] != 3:
        raise _Wrong(f"{what}: return an integer array (T, 3) of rows [anchor, positive, negative], got {array.shape}")
    return {tuple(int(v) for v in row) for row in array}


def _mining_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 3)
    x = rng.standard_normal((12, 3)) + 1.2 * rng.standard_normal((4, 3))[labels]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = np.sum((x[:, None] - x[None]) ** 2, axis=2)
    return d, labels


@_check
def check_semihard_triplets(fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray]) -> str:
    """fn(d, labels, margin): every valid triplet (a, p, n) with d_ap < d_an < d_ap + margin, as (T, 3)."""
    from tinyface.mining import all_triplets, semihard_triplets

    for seed in (60, 61):
        d, labels = _mining_batch(seed)
        expected = {tuple(int(v) for v in row) for row in semihard_triplets(d, labels, 0.5)}
        got = _triplet_set(_call(fn, d.copy(), labels.copy(), 0.5), "the semi-hard triplets")
        if got == expected:
            continue
        valid = {tuple(int(v) for v in row) for row in all_triplets(labels)}
        if not got <= valid:
            a, p, n = next(iter(got - valid))
            raise _Wrong(f"({a}, {p}, {n}) is not a valid triplet: p must be another photo of a's person, n "
                         "someone else")
        extra, missing = got - expected, expected - got
        if extra and all(d[a, n] <= d[a, p] for a, p, n in extra):
            raise _Wrong("some of yours are hard (d_an <= d_ap): a semi-hard negative is FARTHER than the positive")
        if extra and all(d[a, n] >= d[a, p] + 0.5 for a, p, n in extra):
            raise _Wrong("some of yours are easy (d_an >= d_ap + margin): their hinge is 0, they teach nothing")
        raise _Wrong(f"{len(missing)} semi-hard triplets missing and {len(extra)} extra; test "
                     "d[a, p] < d[a, n] < d[a, p] + margin for every valid (a, p, n)")
    return "d_ap < d_an < d_ap + margin: negatives farther than the positive, yet inside the margin"


@_check
def check_batch_hard(fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> str:
    """fn(d, labels) -> (positives (B,), negatives (B,)): for each anchor its farthest positive and nearest
    negative."""
    from tinyface.mining import batch_hard_triplets

    for seed in (62, 63):
        d, labels = _mining_batch(seed)
        expected = batch_hard_triplets(d, labels)
        answer = _call(fn, d.copy(), labels.copy())
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise _Wrong("return two index arrays, (positives, negatives), one entry per anchor")
        pos = _array(answer[0], (len(labels),), "positives").astype(np.int64)
        neg = _array(answer[1], (len(labels),), "negatives").astype(np.int64)
        if np.array_equal(pos, expected[:, 1]) and np.array_equal(neg, expected[:, 2]):
            continue
        anchors = np.arange(len(labels))
        if np.any(pos == anchors):
            raise _Wrong("an anchor was chosen as its own positive: leave the diagonal out (d[a, a] = 0)")
        if np.any(labels[pos] != labels) or np.any(labels[neg] == labels):
            raise _Wrong("a positive must share the anchor's label, a negative must not: mask by labels first")
        if not np.array_equal(pos, expected[:, 1]):
            raise _Wrong("the hardest positive is the FARTHEST photo of the same person (argmax of d over positives)")
        raise _Wrong("the hardest negative is the NEAREST photo of anyone else (argmin of d over negatives)")
    return "per anchor: the farthest positive and the nearest negative, the hardest triplet the batch holds"


@_check
def check_fraction_active(fn: Callable[[np.ndarray, np.ndarray, float], float]) -> str:
    """fn(d, labels, margin): the fraction of all valid triplets whose hinge d_ap - d_an + margin is > 0."""
    from tinyface.mining import all_triplets

    for seed, margin in ((64, 0.2), (65, 0.6)):
        d, labels = _mining_batch(seed)
        t = all_triplets(labels)
        hinge = d[t[:, 0], t[:, 1]] - d[t[:, 0], t[:, 2]] + margin
        expected = float(np.mean(hinge > 0))
        got = _number(_call(fn, d.copy(), labels.copy(), margin), "the fraction")
        if np.isclose(got, expected, atol=1e-9):
            continue
        if np.isclose(got, float(np.sum(hinge > 0))):
            raise _Wrong("that is the number of active triplets; divide by the number of valid triplets")
        if np.isclose(got, float(np.mean(hinge < 0))) or np.isclose(got, 1 - expected):
            raise _Wrong("that is the fraction of INACTIVE (easy) triplets")
        if np.isclose(got, float(np.mean(d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]]))):
            raise _Wrong("that counts only the hard triplets (d_an < d_ap); semi-hard ones, within the margin, "
                         "are active too")
        raise _Wrong(f"expected {expected:.4f}, got {got:.4f}: among valid (a, p, n), the share with "
                     "d_ap - d_an + margin > 0")
    return "the share of valid triplets that still have something to teach; it falls as training succeeds"


__all__ = ["check_batch_hard", "check_fraction_active", "check_semihard_triplets"]
