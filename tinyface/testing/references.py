"""The kernel contract as plain loops: every definition written as directly as possible, to test faster code by.

Same names, parameters and results as the backends (tinyface/kernels/contract.py), plus the selections of
tinyface.mining as lists of (anchor, positive, negative). Ties go to the lowest index, as the contract says:
each choice is a min over (distance, index) pairs. About B^3 Python steps: for the small batches that property
tests draw. tinyface's own kernel tests compare numpy_ref with these; assert_matches_reference compares yours.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from tinyface.kernels.contract import FALLBACK_EASIEST, FALLBACK_HARDEST, fallback_code

__all__ = [
    "all_triplets",
    "batch_all_triplet",
    "batch_hard_triplet",
    "batch_hard_triplets",
    "pairwise_sqdist",
    "pairwise_sqdist_backward",
    "semihard_negative_triplets",
    "semihard_negatives",
    "semihard_triplet",
]

Triplet = tuple[int, int, int]


def pairwise_sqdist(x: Any) -> np.ndarray:
    """d_ij = sum_k (x_ik - x_jk)^2, one pair at a time."""
    b = len(x)
    return np.array([[float(np.sum((x[i] - x[j]) ** 2)) for j in range(b)] for i in range(b)])


def pairwise_sqdist_backward(x: Any, grad_d: Any) -> np.ndarray:
    """The gradient of sum_ij G_ij ||x_i - x_j||^2, one pair at a time: each term adds 2 G_ij (x_i - x_j) to row i
    and 2 G_ij (x_j - x_i) to row j."""
    grad = np.zeros_like(x, dtype=np.float64)
    for i, j in itertools.product(range(len(x)), repeat=2):
        grad[i] += 2 * grad_d[i, j] * (x[i] - x[j])
        grad[j] += 2 * grad_d[i, j] * (x[j] - x[i])
    return grad


def all_triplets(labels: Any) -> list[Triplet]:
    """Every valid triplet (a, p, n): a != p of one identity, n of another; by anchor, then positive, then negative."""
    b = len(labels)
    return [(a, p, n) for a, p, n in itertools.product(range(b), repeat=3)
            if a != p and labels[a] == labels[p] and labels[n] != labels[a]]


def batch_hard_triplets(d: Any, labels: Any) -> list[Triplet]:
    """Per anchor with a positive and a negative: its farthest positive and its nearest negative."""
    chosen = []
    for a in range(len(labels)):
        positives, negatives = _positives(labels, a), _negatives(labels, a)
        if positives and negatives:
            chosen.append((a, min(positives, key=lambda j: (-d[a, j], j)), min(negatives, key=lambda j: (d[a, j], j))))
    return chosen


def semihard_negative_triplets(d: Any, labels: Any, fallback: str = "easiest") -> list[Triplet]:
    """Per anchor-positive pair (a, p), row-major: the nearest negative with d_an > d_ap; without one the fallback's
    ("easiest": the farthest negative, "hardest": the nearest, "skip": none). Anchors without a negative: none."""
    code = fallback_code(fallback)
    chosen = []
    for a, p in itertools.product(range(len(labels)), repeat=2):
        negatives = _negatives(labels, a)
        if a == p or labels[a] != labels[p] or not negatives:
            continue
        farther = [n for n in negatives if d[a, n] > d[a, p]]
        if farther:
            chosen.append((a, p, min(farther, key=lambda n: (d[a, n], n))))
        elif code == FALLBACK_EASIEST:
            chosen.append((a, p, min(negatives, key=lambda n: (-d[a, n], n))))
        elif code == FALLBACK_HARDEST:
            chosen.append((a, p, min(negatives, key=lambda n: (d[a, n], n))))
    return chosen


def semihard_negatives(d: Any, labels: Any, fallback: str = "easiest") -> tuple[np.ndarray, np.ndarray]:
    """semihard_negative_triplets as the backends return it: (pairs (T, 2) int64, negatives (T,) int64)."""
    chosen = np.array(semihard_negative_triplets(d, labels, fallback), dtype=np.int64).reshape(-1, 3)
    return chosen[:, :2], chosen[:, 2]


def semihard_triplet(x: Any, labels: Any, margin: float, fallback: str = "easiest") -> tuple[float, np.ndarray, int]:
    """(loss, grad_x, kept pairs T): the mean over the chosen triplets of max((d_ap + margin) - d_an, 0)."""
    chosen = semihard_negative_triplets(pairwise_sqdist(x), labels, fallback)
    loss, grad, _ = _mean_hinge(x, chosen, margin, active_only=False)
    return loss, grad, len(chosen)


def batch_all_triplet(x: Any, labels: Any, margin: float) -> tuple[float, np.ndarray, float, int]:
    """(loss, grad_x, fraction of valid triplets active, number active N): the mean of the N active hinges."""
    triplets = all_triplets(labels)
    loss, grad, active = _mean_hinge(x, triplets, margin, active_only=True)
    return loss, grad, active / len(triplets) if triplets else 0.0, active


def batch_hard_triplet(x: Any, labels: Any, margin: float, soft: bool = False) -> tuple[float, np.ndarray]:
    """(loss, grad_x): the mean over anchors of max(z, 0), or softplus(z) when `soft`, z = (d_ap* + margin) - d_an*
    for the farthest positive p* and the nearest negative n*."""
    x = np.asarray(x, dtype=np.float64)
    d = pairwise_sqdist(x)
    chosen = batch_hard_triplets(d, labels)
    total, grad = 0.0, np.zeros_like(x)
    for a, p, n in chosen:
        z = (d[a, p] + margin) - d[a, n]
        value, slope = (math.log1p(math.exp(z)), 1 / (1 + math.exp(-z))) if soft else (max(z, 0.0), float(z > 0))
        total += value
        _add_triplet_gradient(grad, x, a, p, n, slope)
    return (total / len(chosen), grad / len(chosen)) if chosen else (0.0, grad)


def _mean_hinge(x: Any, triplets: list[Triplet], margin: float, active_only: bool) -> tuple[float, np.ndarray, int]:
    """(mean hinge, its gradient, the count it divides by) over the triplets, or over the active ones only."""
    x = np.asarray(x, dtype=np.float64)
    d = pairwise_sqdist(x)
    total, count, grad = 0.0, 0, np.zeros_like(x)
    for a, p, n in triplets:
        hinge = (d[a, p] + margin) - d[a, n]
        if hinge > 0:
            total += hinge
            _add_triplet_gradient(grad, x, a, p, n, 1.0)
        count += bool(hinge > 0 or not active_only)
    return (total / count, grad / count, count) if count else (0.0, grad, 0)


def _add_triplet_gradient(grad: np.ndarray, x: np.ndarray, a: int, p: int, n: int, slope: float) -> None:
    """The gradient of slope * (||a - p||^2 - ||a - n||^2): dL/da = 2(n - p), dL/dp = 2(p - a), dL/dn = 2(a - n)."""
    grad[a] += slope * 2 * (x[n] - x[p])
    grad[p] += slope * 2 * (x[p] - x[a])
    grad[n] += slope * 2 * (x[a] - x[n])


def _positives(labels: Any, a: int) -> list[int]:
    return [p for p in range(len(labels)) if p != a and labels[p] == labels[a]]


def _negatives(labels: Any, a: int) -> list[int]:
    return [n for n in range(len(labels)) if labels[n] != labels[a]]
