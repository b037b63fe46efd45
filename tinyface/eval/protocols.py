"""Verification protocols: which pairs of images to compare (their distances: tinyface.eval.distances)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tinyface.eval.checks import check_labels

if TYPE_CHECKING:  # for the annotations only: evaluation does not load the data package
    from tinyface.data.dataset import FaceDataset
    from tinyface.data.lfw import Pair

ENUMERATE_LIMIT = (
    2_000_000  # up to this many candidate pairs, enumerate them all instead of rejection sampling
)


def pairs_from_labels(
    labels: np.ndarray,
    rng: np.random.Generator | int | None = None,
    max_mismatched: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same): every matched pair i < j within an identity (in a seeded random order), then as many
    mismatched pairs (at most max_mismatched), drawn uniformly without repetition among pairs of different
    identities.

    rng: Generator or seed for the order and the mismatched draw; None means seed 0 (a reproducible list).
    Example: Olivetti's 10 held-out people x 10 images give 10 * C(10, 2) = 450 matched + 450 mismatched.
    """
    labels = check_labels(labels)
    rng = np.random.default_rng(0 if rng is None else rng)
    match_i, match_j = _matched_pairs(labels)
    if len(match_i) == 0:
        raise ValueError("no identity has 2 or more images, so there are no matched pairs")
    # shuffled, so that k folds cut in order (metrics.stratified_folds) each hold pairs of many people
    order = rng.permutation(len(match_i))
    match_i, match_j = match_i[order], match_j[order]
    wanted = len(match_i) if max_mismatched is None else min(len(match_i), max_mismatched)
    mis_i, mis_j = _mismatched_pairs(labels, wanted, rng)
    i = np.concatenate([match_i, mis_i])
    j = np.concatenate([match_j, mis_j])
    same = np.arange(len(i)) < len(match_i)
    return i, j, same


def lfw_pairs_to_indices(
    pairs: Sequence[Pair], dataset: FaceDataset
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same, fold): the dataset indices of each LFW pair's images, found through dataset.paths
    (files named .../Name/Name_000n.jpg, as load_image_folder gives them)."""
    if dataset.paths is None:
        raise ValueError("the dataset has no paths; load LFW with load_image_folder so images can be matched")
    index_of = {
        "/".join(path.replace("\\", "/").rsplit("/", 2)[-2:]): k for k, path in enumerate(dataset.paths)
    }

    def key(name: str, n: int) -> str:
        return f"{name}/{name}_{n:04d}.jpg"

    missing = sorted(
        {k for p in pairs for k in (key(p.name1, p.index1), key(p.name2, p.index2))} - set(index_of)
    )
    if missing:
        raise ValueError(
            f"{len(missing)} pair images are not in the dataset (e.g. {missing[:5]}); load their people "
            "(people_in_pairs(pairs)) with min_images=1, and check no image was skipped as unreadable"
        )
    i = np.array([index_of[key(p.name1, p.index1)] for p in pairs], dtype=np.int64)
    j = np.array([index_of[key(p.name2, p.index2)] for p in pairs], dtype=np.int64)
    same = np.array([p.same for p in pairs], dtype=bool)
    fold = np.array([p.fold for p in pairs], dtype=np.int64)
    return i, j, same, fold


def _matched_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j), i < j, with labels[i] == labels[j], grouped by identity."""
    order = np.argsort(labels, kind="stable")
    _, starts, counts = np.unique(labels[order], return_index=True, return_counts=True)
    pieces_i, pieces_j = [], []
    for start, count in zip(starts, counts, strict=True):  # one triangle per identity
        a, b = np.triu_indices(count, k=1)
        pieces_i.append(order[start + a])
        pieces_j.append(order[start + b])
    i, j = np.concatenate(pieces_i), np.concatenate(pieces_j)
    return np.minimum(i, j), np.maximum(i, j)


def _mismatched_pairs(
    labels: np.ndarray, wanted: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`wanted` distinct pairs (i < j) of different identities, uniformly at random."""
    n = len(labels)
    available = n * (n - 1) // 2 - int(np.sum(np.bincount(labels) * (np.bincount(labels) - 1) // 2))
    if wanted > available:
        raise ValueError(f"asked for {wanted} mismatched pairs, but only {available} exist")
    if n * (n - 1) // 2 <= ENUMERATE_LIMIT or wanted > available // 2:
        i, j = np.triu_indices(n, k=1)
        different = labels[i] != labels[j]
        chosen = np.sort(rng.choice(available, size=wanted, replace=False))
        return i[different][chosen], j[different][chosen]
    # Rejection sampling: draw unordered pairs uniformly, keep different identities, drop repeats.
    found = np.empty((0, 2), dtype=np.int64)
    while len(found) < wanted:
        draw = rng.integers(0, n, size=(2 * (wanted - len(found)) + 16, 2))
        draw = draw[labels[draw[:, 0]] != labels[draw[:, 1]]]
        found = np.unique(np.concatenate([found, np.sort(draw, axis=1)]), axis=0)
    found = found[rng.permutation(len(found))[:wanted]]
    found = found[np.lexsort((found[:, 1], found[:, 0]))]
    return found[:, 0], found[:, 1]
