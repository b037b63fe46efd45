"""Triplet mining: which (anchor, positive, negative) triplets of a batch to train on.

Every function returns index triplets as an int64 array (T, 3) of rows [anchor, positive, negative] into the
batch: a positive shares the anchor's identity (and is not the anchor), a negative does not. Distances d (B, B)
are squared L2 (tinyface.kernels.pairwise_sqdist); random choices take a `numpy.random.Generator`.

    random_triplets       uniformly random valid triplets
    all_triplets          every valid triplet
    hard_triplets         d_an < d_ap: the negative is closer than the positive
    semihard_triplets     d_ap < d_an < d_ap + margin: farther than the positive, but inside the margin
    batch_hard_triplets   per anchor its farthest positive and nearest negative (Hermans et al. 2017)
    semihard_negative_triplets  per anchor-positive pair the nearest negative farther than the positive (online)
    random_violating_triplets   per anchor-positive pair a random negative violating the margin: d_an - d_ap < margin

all_triplets, hard_triplets and semihard_triplets list every valid triplet (about B x K x B of them for P x K
labels): they are for inspection and small batches; the losses in tinyface.losses never build that list.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyface import kernels
from tinyface.device import to_numpy
from tinyface.eval.checks import check_distances

__all__ = [
    "all_triplets",
    "batch_hard_triplets",
    "hard_triplets",
    "random_triplets",
    "random_violating_triplets",
    "semihard_negative_triplets",
    "semihard_triplets",
]


def all_triplets(labels: Any) -> np.ndarray:
    """Every valid triplet, ordered by anchor, then positive, then negative: (T, 3) int64."""
    labels = _labels(labels)
    positive, negative = kernels.numpy_ref.label_masks(labels)
    anchors, positives = np.nonzero(positive)
    negatives_of = np.nonzero(negative)[1]  # each anchor's negatives, one anchor after the other
    first_negative = np.cumsum(negative.sum(axis=1)) - negative.sum(axis=1)
    repeats = negative.sum(axis=1)[anchors]  # one triplet per negative of the pair's anchor
    pair = np.repeat(np.arange(len(anchors)), repeats)
    within = np.arange(repeats.sum()) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    triplets = np.stack([anchors[pair], positives[pair], negatives_of[first_negative[anchors[pair]] + within]], 1)
    return triplets.astype(np.int64)


def hard_triplets(d: Any, labels: Any) -> np.ndarray:
    """Every valid triplet whose negative is closer to the anchor than the positive: d_an < d_ap."""
    d, labels = _check(d, labels)
    t = all_triplets(labels)
    return t[d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]]]


def semihard_triplets(d: Any, labels: Any, margin: float = 0.2) -> np.ndarray:
    """Every valid semi-hard triplet (FaceNet, section 3.2): d_ap < d_an < d_ap + margin. Its hinge is active,
    yet the negative is farther than the positive."""
    d, labels = _check(d, labels)
    t = all_triplets(labels)
    d_ap, d_an = d[t[:, 0], t[:, 1]], d[t[:, 0], t[:, 2]]
    return t[(d_ap < d_an) & (d_an < d_ap + margin)]


def batch_hard_triplets(d: Any, labels: Any) -> np.ndarray:
    """One triplet per anchor that has a positive and a negative: its farthest positive and nearest negative
    (lowest index at a tie), as batch_hard_triplet_loss uses them."""
    d, labels = _check(d, labels)
    return np.stack(kernels.numpy_ref.hardest_in_batch(d, labels), axis=1).astype(np.int64)


def semihard_negative_triplets(d: Any, labels: Any, fallback: str = "easiest") -> np.ndarray:
    """One triplet per anchor-positive pair (row-major): the nearest negative with d_an > d_ap; without one,
    `fallback` ("easiest": the largest d_an, "hardest": the smallest, "skip": no triplet). The selection of
    semihard_triplet_loss."""
    d, labels = _check(d, labels)
    pairs, negatives = kernels.semihard_negatives(d, labels, fallback)
    return np.column_stack([pairs, negatives]).astype(np.int64)


def random_triplets(labels: Any, num_triplets: int, rng: np.random.Generator) -> np.ndarray:
    """`num_triplets` valid triplets drawn uniformly (with replacement) from all valid triplets."""
    labels = _labels(labels)
    positive, negative = kernels.numpy_ref.label_masks(labels)
    pairs = np.argwhere(positive)
    n_neg = negative.sum(axis=1)
    weight = n_neg[pairs[:, 0]].astype(np.float64)  # a pair stands for as many triplets as its anchor has negatives
    if weight.sum() == 0:
        raise ValueError("no valid triplet: the labels need an identity with 2 or more images and a second identity")
    a, p = pairs[rng.choice(len(pairs), size=num_triplets, p=weight / weight.sum())].T
    # the r-th negative of a: skip over a's own identity in the label-sorted order
    order = np.argsort(labels, kind="stable")
    start = np.searchsorted(labels[order], labels[a], side="left")
    size = len(labels) - n_neg[a]
    r = rng.integers(0, n_neg[a])
    n = order[np.where(r < start, r, r + size)]
    return np.stack([a, p, n], axis=1).astype(np.int64)


def random_violating_triplets(
    d: Any, labels: Any, rng: np.random.Generator, margin: float = 0.2, semihard_only: bool = False,
    chunk: int = 4096,
) -> np.ndarray:
    """For every anchor-positive pair (a, p) with a < p, a random negative among those that violate the margin,
    d_an - d_ap < margin (hard ones included); with `semihard_only`, only among the semi-hard ones,
    d_ap < d_an < d_ap + margin. A pair without one is dropped; the triplets come shuffled. Pairs are processed
    `chunk` at a time (memory chunk x B).

    The default is the rule of VGG Face (Parkhi et al. 2015), which davidsandberg/facenet's `select_triplets` (a
    popular reimplementation, not the paper's code) uses and calls "VGG Face selection"; its commented-out
    `semihard_only` variant is the one it calls "FaceNet selection". The FaceNet paper (section 3.2) describes two
    ways: offline, every n steps, the argmax_p d_ap and argmin_n d_an on a subset of the data, embedded with the
    most recent checkpoint; and online, inside large mini-batches, which it uses: every anchor-positive pair with a
    semi-hard negative (semihard_negative_triplets).
    """
    d, labels = _check(d, labels)
    positive, negative = kernels.numpy_ref.label_masks(labels)
    pairs = np.argwhere(np.triu(positive))
    triplets = []
    for start in range(0, len(pairs), chunk):
        a, p = pairs[start : start + chunk].T
        d_an, d_ap = d[a], d[a, p][:, None]
        candidates = negative[a] & (d_an - d_ap < margin)
        if semihard_only:
            candidates &= d_an > d_ap
        counts = candidates.sum(axis=1)
        keep = counts > 0
        r = rng.integers(0, counts[keep])  # the r-th candidate, uniformly
        n = np.argmax(np.cumsum(candidates[keep], axis=1) > r[:, None], axis=1)
        triplets.append(np.stack([a[keep], p[keep], n], axis=1))
    out = np.concatenate(triplets) if triplets else np.empty((0, 3))
    return rng.permutation(out).astype(np.int64)


# -- checks --------------------------------------------------------------------------------------------------
def _labels(labels: Any) -> np.ndarray:
    labels = np.asarray(to_numpy(labels))
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array (B,), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (identity ids), got dtype {labels.dtype}")
    return labels.astype(np.int64)


def _check(d: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    d, labels = np.asarray(to_numpy(d)), _labels(labels)
    if d.shape != (len(labels), len(labels)):
        raise ValueError(f"d must be the (B, B) distance matrix of the {len(labels)} labelled items, got {d.shape}")
    return check_distances(d), labels
