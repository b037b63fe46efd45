"""Compatibility of two versions of a face model: can embeddings of the new one be compared with the old one's?

A system holds old embeddings (a gallery enrolled with v1); v2 replaces v1. v2 is compatible when a v2 query
matched against v1 embeddings does at least as well as v1 against v1 (FaceNet's harmonic embeddings, appendix,
figure 8). On the same test pairs (i, j) three rows are measured:

    old    d(old_i, old_j)                                   v1 alone
    new    d(new_i, new_j)                                   v2 alone
    mixed  d(old_i, new_j) and d(new_i, old_j)               one image of each pair by each version, both orders

each with verification_report (10-fold accuracy, AUC, EER, VAL@FAR), one-shot rank-1 (the gallery embedded by the
row's first version, the probes by its second) and open-set DIR. Both orders of a pair fall in the same fold, so
the threshold of a fold is never chosen on the pair it is tested on. The update gain on accuracy

    G = (mixed - old) / (new - old)

is 0 when mixing versions does no better than the old model, 1 when it does as well as the new model alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinyface.eval.checks import check_embeddings, check_labels, check_same_images
from tinyface.eval.distances import pair_distances
from tinyface.eval.identification import one_shot_rank1
from tinyface.eval.metrics import stratified_folds, verification_report
from tinyface.eval.open_set import open_set_report

ROWS = ("old", "new", "mixed")  # gallery version / query version: old/old, new/new, old/new


def mixed_distances(old: np.ndarray, new: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """(2N,) squared distances of the N pairs (i, j) across versions: d(old_i, new_j), then d(new_i, old_j)."""
    old = check_embeddings(old, "old embeddings")
    new = check_same_images(new, old, "new embeddings")
    return np.concatenate([np.sum((old[i] - new[j]) ** 2, axis=1), np.sum((new[i] - old[j]) ** 2, axis=1)])


def row_distances(old: np.ndarray, new: np.ndarray, i: np.ndarray, j: np.ndarray, same: np.ndarray,
                  folds: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{row: (distances, same, folds)} of the three rows; the mixed row holds each pair twice (both orders, same
    fold). folds: the fold of each pair (default: ten stratified folds in pair order)."""
    same = np.asarray(same, dtype=bool)
    folds = stratified_folds(same) if folds is None else np.asarray(folds)
    return {"old": (pair_distances(old, i, j), same, folds), "new": (pair_distances(new, i, j), same, folds),
            "mixed": (mixed_distances(old, new, i, j), np.concatenate([same, same]), np.concatenate([folds, folds]))}


def update_gain(old: float, new: float, mixed: float) -> float | None:
    """G = (mixed - old) / (new - old); None when the new version is no different from the old (new == old)."""
    return None if new == old else float((mixed - old) / (new - old))


def compatibility_report(
    old: np.ndarray, new: np.ndarray, labels: np.ndarray, i: np.ndarray, j: np.ndarray, same: np.ndarray,
    folds: np.ndarray | None = None, false_alarm_rates: Sequence[float] = (0.01, 0.1),
    rng: np.random.Generator | int = 0,
) -> dict[str, Any]:
    """The rows old, new and mixed (see the module docstring) of embeddings old (N, D) and new (N, D) of the same
    N test images with identities `labels`, on the test pairs (i, j, same), and the update gain G on accuracy.

    Each row: verification_report's keys (accuracy, accuracy_std, auc, eer, val_at_far, far, ...), "rank1"
    (one-shot, one random image per person enrolled, mean over 10 galleries) and "open_set" (DIR at each false
    alarm rate: half the people enrolled with one image, half strangers, 10 trials); mixed enrols old embeddings
    and queries with new ones. The same galleries (seed `rng`) serve every row. Rank-1 and open-set are None when
    the test people cannot give them (no one with two images, fewer than two people)."""
    old = check_embeddings(old, "old embeddings")
    new = check_same_images(new, old, "new embeddings")
    labels = check_labels(labels, count=len(old))
    seed = int(np.random.default_rng(rng).integers(2**31))
    galleries = {"old": (old, old), "new": (new, new), "mixed": (old, new)}
    report: dict[str, Any] = {}
    for row, (distances, s, f) in row_distances(old, new, i, j, same, folds).items():
        gallery, queries = galleries[row]
        report[row] = {**verification_report(distances, s, folds=f),
                       **_identification(gallery, queries, labels, false_alarm_rates, seed)}
    report["gain"] = update_gain(report["old"]["accuracy"], report["new"]["accuracy"], report["mixed"]["accuracy"])
    return report


def _identification(gallery: np.ndarray, queries: np.ndarray, labels: np.ndarray, false_alarm_rates: Sequence[float],
                    seed: int) -> dict[str, Any]:
    try:
        rank1 = one_shot_rank1(gallery, labels, seed, query_embeddings=queries)
    except ValueError:  # no identity with a second image to probe with
        rank1 = None
    try:
        points = open_set_report(gallery, labels, seed, false_alarm_rates, query_embeddings=queries)
        open_set = {p.condition: p.dir_mean for p in points}  # "FAR<=0.01": DIR at that false alarm rate
    except ValueError:  # too few people to enrol some and keep others as strangers
        open_set = None
    return {"rank1": rank1, "open_set": open_set}
