"""CPU backend: `@njit(parallel=True)` loops over anchors, keeping to contract.py with the results of `numpy_ref`.

Matrix products stay in NumPy (BLAS); Numba does the per-anchor work that NumPy can only express with big
temporaries: each anchor sorts its negatives once and binary-searches them, so a batch costs O(B^2 log B) time.
Every anchor a writes only row a of the weight matrix W, so the parallel loop needs no atomics; the gradient is
then `pairwise_sqdist_backward(x, W)` (see numpy_ref for the idea).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .contract import FALLBACK_EASIEST, FALLBACK_HARDEST, fallback_code
from .numpy_ref import pairwise_sqdist_backward

__all__ = [
    "batch_all_triplet",
    "batch_hard_triplet",
    "pairwise_sqdist",
    "pairwise_sqdist_backward",
    "semihard_negatives",
    "semihard_triplet",
]


@njit(cache=True, parallel=True)
def _sqdist_from_gram(gram):
    """In place: gram -> max(g_ii + g_jj - 2 g_ij, 0), with an exact 0 diagonal (as numpy_ref)."""
    sq = np.diag(gram).copy()
    for i in prange(gram.shape[0]):
        for j in range(gram.shape[1]):
            value = sq[i] + sq[j] - (gram[i, j] + gram[i, j])
            gram[i, j] = value if value > 0 else 0
        gram[i, i] = 0


def pairwise_sqdist(x: np.ndarray) -> np.ndarray:
    """Squared L2 distances (B, D) -> (B, B), clamped at 0, exactly 0 on the diagonal."""
    gram = x @ np.ascontiguousarray(x.T)  # a general product: NumPy's x @ x.T (SYRK) was 2.6x slower here
    _sqdist_from_gram(gram)
    return gram


@njit(cache=True)
def _split(labels, a):
    """Indices of a's positives (same label, not a) and negatives (other labels), each in increasing order."""
    positives = np.empty(labels.shape[0], np.int64)
    negatives = np.empty(labels.shape[0], np.int64)
    n_pos = n_neg = 0
    for j in range(labels.shape[0]):
        if labels[j] != labels[a]:
            negatives[n_neg] = j
            n_neg += 1
        elif j != a:
            positives[n_pos] = j
            n_pos += 1
    return positives[:n_pos], negatives[:n_neg]


@njit(cache=True)
def _semihard_row(d, labels, a, fallback, out):
    """out[p] = the negative chosen for the pair (a, p), or -1 (no pair, or skipped); `fallback` is its code."""
    positives, negatives = _split(labels, a)
    if negatives.shape[0] == 0:
        return
    values = d[a][negatives]
    order = np.argsort(values, kind="mergesort")  # stable: the lowest index first at a tie
    nearest = values[order]
    easiest = negatives[order[np.searchsorted(nearest, nearest[-1], side="left")]]
    hardest = negatives[order[0]]
    for p in positives:
        k = np.searchsorted(nearest, d[a, p], side="right")  # the first negative with d_an > d_ap
        if k < nearest.shape[0]:
            out[p] = negatives[order[k]]
        elif fallback == FALLBACK_EASIEST:
            out[p] = easiest
        elif fallback == FALLBACK_HARDEST:
            out[p] = hardest


@njit(cache=True, parallel=True)
def _semihard_select(d, labels, fallback):
    chosen = np.full(d.shape, -1, np.int64)
    for a in prange(d.shape[0]):
        _semihard_row(d, labels, a, fallback, chosen[a])
    return chosen


@njit(cache=True, parallel=True)
def _semihard_weights(d, chosen, margin):
    """Per anchor: W row (+1 at p, -1 at n for each active pair), hinge sum (float64), number of kept pairs."""
    weights = np.zeros_like(d)
    hinge_sums = np.zeros(d.shape[0])
    kept = np.zeros(d.shape[0], np.int64)
    for a in prange(d.shape[0]):
        for p in range(d.shape[1]):
            n = chosen[a, p]
            if n < 0:
                continue
            kept[a] += 1
            hinge = (d[a, p] + margin) - d[a, n]
            if hinge > 0:
                hinge_sums[a] += hinge
                weights[a, p] += 1
                weights[a, n] -= 1
    return weights, hinge_sums, kept


def semihard_negatives(d: np.ndarray, labels: np.ndarray, fallback: str = "easiest") -> tuple[np.ndarray, np.ndarray]:
    """As `numpy_ref.semihard_negatives`: (pairs (T, 2), negatives (T,)), row-major, skipped pairs dropped."""
    chosen = _semihard_select(d, labels.astype(np.int64), fallback_code(fallback))
    pairs = np.argwhere(chosen >= 0)
    return pairs.astype(np.int64), chosen[pairs[:, 0], pairs[:, 1]]


def semihard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, fallback: str = "easiest"
) -> tuple[float, np.ndarray, int]:
    """As `numpy_ref.semihard_triplet`: (loss, grad_x, number of kept pairs)."""
    d = pairwise_sqdist(x)
    chosen = _semihard_select(d, labels.astype(np.int64), fallback_code(fallback))
    weights, hinge_sums, kept = _semihard_weights(d, chosen, d.dtype.type(margin))
    num_pairs = int(kept.sum())
    if num_pairs == 0:
        return 0.0, np.zeros_like(x), 0
    weights /= num_pairs
    return float(hinge_sums.sum() / num_pairs), pairwise_sqdist_backward(x, weights), num_pairs


@njit(cache=True, parallel=True)
def _batch_all_rows(d, labels, margin):
    """Per anchor: W row (active-triplet counts: + per positive, - per negative), hinge sum, active and valid
    counts. Sorted negatives with prefix sums answer "how many d_an < d_ap + margin, and their sum" per positive;
    sorted d_ap + margin answer "how many positives make this negative active"."""
    weights = np.zeros_like(d)
    hinge_sums = np.zeros(d.shape[0])
    active = np.zeros(d.shape[0], np.int64)
    valid = np.zeros(d.shape[0], np.int64)
    for a in prange(d.shape[0]):
        positives, negatives = _split(labels, a)
        if positives.shape[0] == 0 or negatives.shape[0] == 0:
            continue
        valid[a] = positives.shape[0] * negatives.shape[0]
        nearest = np.sort(d[a][negatives])
        prefix = np.zeros(nearest.shape[0] + 1)
        prefix[1:] = np.cumsum(nearest.astype(np.float64))
        thresholds = d[a][positives] + margin  # a triplet is active iff d_an < d_ap + margin
        for i in range(positives.shape[0]):
            count = np.searchsorted(nearest, thresholds[i], side="left")
            weights[a, positives[i]] = count
            active[a] += count
            hinge_sums[a] += count * np.float64(thresholds[i]) - prefix[count]
        thresholds = np.sort(thresholds)
        for n in negatives:
            weights[a, n] = np.searchsorted(thresholds, d[a, n], side="right") - positives.shape[0]
    return weights, hinge_sums, active, valid


def batch_all_triplet(x: np.ndarray, labels: np.ndarray, margin: float) -> tuple[float, np.ndarray, float, int]:
    """As `numpy_ref.batch_all_triplet`: (loss, grad_x, fraction active, number active)."""
    d = pairwise_sqdist(x)
    weights, hinge_sums, active, valid = _batch_all_rows(d, labels.astype(np.int64), d.dtype.type(margin))
    num_active = int(active.sum())
    if num_active == 0:
        return 0.0, np.zeros_like(x), 0.0, 0
    weights /= num_active
    loss = float(hinge_sums.sum() / num_active)
    return loss, pairwise_sqdist_backward(x, weights), num_active / int(valid.sum()), num_active


@njit(cache=True, parallel=True)
def _batch_hard_rows(d, labels, margin, soft):
    """Per anchor: its farthest positive and nearest negative (-1 when it has none), the loss and its slope."""
    hardest = np.full((d.shape[0], 2), -1, np.int64)
    losses = np.zeros(d.shape[0])
    slopes = np.zeros(d.shape[0])
    for a in prange(d.shape[0]):
        p_star = n_star = -1
        for j in range(d.shape[1]):
            if labels[j] == labels[a]:
                if j != a and (p_star < 0 or d[a, j] > d[a, p_star]):
                    p_star = j
            elif n_star < 0 or d[a, j] < d[a, n_star]:
                n_star = j
        if p_star < 0 or n_star < 0:
            continue
        hardest[a, 0], hardest[a, 1] = p_star, n_star
        z = (d[a, p_star] + margin) - d[a, n_star]
        if soft:
            losses[a] = max(z, 0) + np.log1p(np.exp(-abs(z)))
            slopes[a] = 0.5 * (1 + np.tanh(0.5 * z))
        elif z > 0:
            losses[a], slopes[a] = z, 1.0
    return hardest, losses, slopes


def batch_hard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, soft: bool = False
) -> tuple[float, np.ndarray]:
    """As `numpy_ref.batch_hard_triplet`: (loss, grad_x)."""
    d = pairwise_sqdist(x)
    hardest, losses, slopes = _batch_hard_rows(d, labels.astype(np.int64), d.dtype.type(margin), bool(soft))
    anchors = np.flatnonzero(hardest[:, 0] >= 0)
    if len(anchors) == 0:
        return 0.0, np.zeros_like(x)
    weights = np.zeros_like(d)
    share = (slopes[anchors] / len(anchors)).astype(d.dtype)
    weights[anchors, hardest[anchors, 0]] = share
    weights[anchors, hardest[anchors, 1]] = -share
    return float(losses[anchors].sum() / len(anchors)), pairwise_sqdist_backward(x, weights)
