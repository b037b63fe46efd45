"""Verification metrics: is a pair of faces the same person? Decide "same" when the distance d <= tau.

Distances are squared L2 between L2-normalised embeddings, in [0, 4]. With the pairs split into same
(genuine) and different (impostor) pairs:

    TAR(tau) = #{same pairs with d <= tau} / #same        (true accept rate, VAL in FaceNet)
    FAR(tau) = #{different pairs with d <= tau} / #diff   (false accept rate)
    FRR(tau) = 1 - TAR(tau)                               (false reject rate)
    accuracy(tau) = #{pairs decided correctly} / #pairs

The k-fold protocol (LFW's) picks tau on k-1 folds and measures on the held-out fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tinyface.eval.checks import check_distances

VAL_THRESHOLD_STEP = 0.001  # the threshold grid of davidsandberg/facenet's evaluation: np.arange(0, 4, 0.001)


def roc_curve(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds): one point per distinct distance, thresholds ascending, after a first point
    (0, 0) at threshold -inf (accept nothing). Computed by sorting once and counting with cumsum."""
    d, s = _check_pairs(distances, same)
    _need_both_classes(s)
    thresholds, accepted_same, accepted_diff = _accept_counts(d, s)
    far = np.concatenate([[0.0], accepted_diff / np.sum(~s)])
    tar = np.concatenate([[0.0], accepted_same / np.sum(s)])
    return far, tar, np.concatenate([[-np.inf], thresholds])


def auc(far: np.ndarray, tar: np.ndarray) -> float:
    """Area under the ROC curve by the trapezoid rule: sum (far[i+1] - far[i]) * (tar[i+1] + tar[i]) / 2."""
    far, tar = np.asarray(far, dtype=np.float64), np.asarray(tar, dtype=np.float64)
    if far.shape != tar.shape or far.ndim != 1:
        raise ValueError(f"far and tar must be 1-D of the same length, got {far.shape} and {tar.shape}")
    if np.any(np.diff(far) < 0):
        raise ValueError("far must be ascending (as roc_curve returns it)")
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def eer(distances: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(equal error rate, its threshold): where FAR = FRR, interpolating linearly between ROC points."""
    far, tar, thresholds = roc_curve(distances, same)
    gap = far - (1 - tar)  # rises from -1 (accept nothing) to 1 (accept everything)
    i = int(np.argmax(gap >= 0))  # first ROC point where FAR >= FRR; i >= 1 since gap[0] = -1
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    rate = far[i - 1] + t * (far[i] - far[i - 1])
    low = thresholds[i - 1] if np.isfinite(thresholds[i - 1]) else thresholds[i]
    return float(rate), float(low + t * (thresholds[i] - low))


def far_frr(distances: np.ndarray, same: np.ndarray, tau: float) -> tuple[float, float]:
    """(FAR, FRR) when pairs with d <= tau are accepted."""
    d, s = _check_pairs(distances, same)
    _need_both_classes(s)
    accepted = d <= tau
    return float(np.mean(accepted[~s])), float(np.mean(~accepted[s]))


def accuracy_at(distances: np.ndarray, same: np.ndarray, tau: float) -> float:
    """Fraction of pairs decided correctly when "same" means d <= tau."""
    d, s = _check_pairs(distances, same)
    return float(np.mean((d <= tau) == s))


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """The tau that maximises accuracy on these pairs (the first best, i.e. the smallest, on ties).

    Accepting the k smallest distinct distances gives accuracy (TA_k + TR_k) / n; tau is put midway between
    the k-th and (k+1)-th distinct distance, so that unseen pairs in the gap are split evenly.
    """
    d, s = _check_pairs(distances, same)
    values, accepted_same, accepted_diff = _accept_counts(d, s)
    correct = np.concatenate([[0], accepted_same]) + np.sum(~s) - np.concatenate([[0], accepted_diff])
    k = int(np.argmax(correct))  # accept the first k distinct distances
    if k == 0:
        return float(np.nextafter(values[0], -np.inf))
    if k == len(values):
        return float(values[-1])
    middle = (values[k - 1] + values[k]) / 2
    return float(middle if middle < values[k] else values[k - 1])  # adjacent floats have no middle


class ValAtFar(NamedTuple):
    """VAL (TAR) at a threshold chosen for a target FAR, the FAR actually measured, and the threshold."""

    val: float
    far: float
    threshold: float


def threshold_at_far(distances: np.ndarray, same: np.ndarray, far_target: float = 1e-3) -> float:
    """The threshold whose FAR is `far_target`, found as davidsandberg/facenet's calculate_val does (a popular
    reimplementation of FaceNet, not the paper's code).

    FAR(tau) is computed on the grid tau = 0, 0.001, ..., 3.999 (further if distances exceed 4), and the
    threshold is interpolated linearly between the last grid point with FAR < far_target and the next one
    (what scipy's interp1d(far, thresholds) does on that monotone curve). If no grid threshold reaches the
    target FAR, the threshold is 0.
    """
    d, s = _check_pairs(distances, same)
    if not np.any(~s):
        raise ValueError("FAR needs different-identity pairs; there are none")
    grid = np.arange(0.0, max(4.0, d.max() + VAL_THRESHOLD_STEP), VAL_THRESHOLD_STEP)
    far_grid = np.searchsorted(np.sort(d[~s]), grid, side="right") / np.sum(
        ~s
    )  # FAR(tau) = P(d <= tau | diff)
    if far_grid[-1] < far_target:
        return 0.0
    k = int(np.searchsorted(far_grid, far_target, side="left"))  # first grid point with FAR >= target
    if k == 0:
        return float(grid[0])
    return float(np.interp(far_target, far_grid[k - 1 : k + 1], grid[k - 1 : k + 1]))


def val_at_far(distances: np.ndarray, same: np.ndarray, far_target: float = 1e-3) -> ValAtFar:
    """VAL at the threshold giving FAR = far_target, choosing and measuring on the same pairs
    (kfold_val chooses on training folds and measures on the held-out one)."""
    tau = threshold_at_far(distances, same, far_target)
    far, frr = far_frr(distances, same, tau)
    return ValAtFar(1 - frr, far, tau)


@dataclass(frozen=True)
class KFoldAccuracy:
    """Accuracy per held-out fold with the threshold chosen on the other folds; mean and (population) std."""

    mean: float
    std: float
    accuracies: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class KFoldVal:
    """VAL and FAR per held-out fold at thresholds chosen on the other folds for a target FAR."""

    val_mean: float
    val_std: float
    far_mean: float
    vals: np.ndarray
    fars: np.ndarray
    thresholds: np.ndarray


def kfold_accuracy(
    distances: np.ndarray, same: np.ndarray, n_folds: int = 10, folds: np.ndarray | None = None
) -> KFoldAccuracy:
    """LFW's protocol: for each fold, tau = best_threshold on the other folds, accuracy on this fold.

    folds: the fold id of each pair (e.g. LFW's own, Pair.fold); default: stratified_folds(same, n_folds).
    """
    d, s = _check_pairs(distances, same)
    fold_ids = _fold_ids(s, n_folds, folds)
    thresholds, accuracies = [], []
    for fold in np.unique(fold_ids):
        test = fold_ids == fold
        tau = best_threshold(d[~test], s[~test])
        thresholds.append(tau)
        accuracies.append(accuracy_at(d[test], s[test], tau))
    accuracies = np.array(accuracies)
    return KFoldAccuracy(float(accuracies.mean()), float(accuracies.std()), accuracies, np.array(thresholds))


def kfold_val(
    distances: np.ndarray,
    same: np.ndarray,
    far_target: float = 1e-3,
    n_folds: int = 10,
    folds: np.ndarray | None = None,
) -> KFoldVal:
    """VAL at FAR = far_target by k folds: threshold_at_far on the other folds, VAL and FAR on this one."""
    d, s = _check_pairs(distances, same)
    fold_ids = _fold_ids(s, n_folds, folds)
    results = []
    for fold in np.unique(fold_ids):
        test = fold_ids == fold
        tau = threshold_at_far(d[~test], s[~test], far_target)
        far, frr = far_frr(d[test], s[test], tau)
        results.append((1 - frr, far, tau))
    vals, fars, thresholds = (np.array(column) for column in zip(*results, strict=True))
    return KFoldVal(float(vals.mean()), float(vals.std()), float(fars.mean()), vals, fars, thresholds)


def verification_report(
    distances: np.ndarray,
    same: np.ndarray,
    folds: np.ndarray | None = None,
    n_folds: int = 10,
    far_target: float = 1e-3,
) -> dict[str, float]:
    """The usual table row: k-fold accuracy (mean, std), AUC, EER, k-fold VAL at far_target (mean, std)
    with the FAR reached, and the accuracy-maximising threshold on these very pairs. That threshold is the tau to
    deploy only when these pairs are not the test pairs; on test pairs it is a diagnosis (optimistic), and the
    accuracy to report is the k-fold one, whose threshold always comes from the other folds."""
    accuracy = kfold_accuracy(distances, same, n_folds, folds)
    val = kfold_val(distances, same, far_target, n_folds, folds)
    far, tar, _ = roc_curve(distances, same)
    return {
        "accuracy": accuracy.mean,
        "accuracy_std": accuracy.std,
        "auc": auc(far, tar),
        "eer": eer(distances, same)[0],
        "val_at_far": val.val_mean,
        "val_std": val.val_std,
        "far": val.far_mean,
        "threshold": best_threshold(distances, same),
    }


def stratified_folds(same: np.ndarray, n_folds: int = 10) -> np.ndarray:
    """Fold id of each pair: the same pairs, in their order, cut into n_folds contiguous runs, and likewise
    the different pairs. For LFW's pairs.txt order this gives exactly LFW's ten folds."""
    s = np.asarray(same, dtype=bool)
    folds = np.empty(len(s), dtype=np.int64)
    for kind in (s, ~s):
        if 0 < kind.sum() < n_folds:
            raise ValueError(f"{kind.sum()} pairs of one kind cannot be spread over {n_folds} folds")
        folds[kind] = np.arange(kind.sum()) * n_folds // max(kind.sum(), 1)
    return folds


def _fold_ids(s: np.ndarray, n_folds: int, folds: np.ndarray | None) -> np.ndarray:
    if folds is None:
        if n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {n_folds}")
        return stratified_folds(s, n_folds)
    folds = np.asarray(folds)
    if folds.shape != s.shape or not np.issubdtype(folds.dtype, np.integer):
        raise ValueError(
            f"folds must be integer fold ids of shape {s.shape}, got {folds.dtype} {folds.shape}"
        )
    if len(np.unique(folds)) < 2:
        raise ValueError("folds must contain at least 2 distinct fold ids")
    return folds


def _accept_counts(d: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct distance v (ascending): v, #same pairs with d <= v, #different pairs with d <= v."""
    order = np.argsort(d, kind="stable")
    d_sorted, s_sorted = d[order], s[order]
    last = np.flatnonzero(np.append(d_sorted[1:] != d_sorted[:-1], True))  # last index of each distinct value
    return d_sorted[last], np.cumsum(s_sorted)[last], np.cumsum(~s_sorted)[last]


def _check_pairs(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = check_distances(distances, dtype=np.float64)
    s = np.asarray(same)
    if d.ndim != 1 or s.shape != d.shape or len(d) == 0:
        raise ValueError(
            f"distances and same must be 1-D, non-empty and equally long, got {d.shape}, {s.shape}"
        )
    if s.dtype != bool:
        if not np.issubdtype(s.dtype, np.integer) or np.any((s != 0) & (s != 1)):
            raise ValueError("same must be booleans (or 0/1): True where a pair shows one person")
        s = s.astype(bool)
    return d, s


def _need_both_classes(s: np.ndarray) -> None:
    if s.all() or not s.any():
        raise ValueError(
            "rates need both same-identity and different-identity pairs; only one kind was given"
        )
