"""Lesson 7, measuring a face system: checks for its exercises."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises.verdict import _check, _number, _pair_of_numbers, _Wrong


@_check
def check_auc(answer: float, far: np.ndarray, tar: np.ndarray) -> str:
    """answer: the area under the ROC curve (tar against far) by the trapezoid rule."""
    got = _number(answer, "AUC")
    far, tar = np.asarray(far, dtype=np.float64), np.asarray(tar, dtype=np.float64)
    expected = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))
    if np.isclose(got, expected, atol=1e-9):
        return f"AUC = {expected:.4f}: the chance that a random same pair is closer than a random different pair"
    if np.isclose(got, 1 - expected, atol=1e-9):
        raise _Wrong("that is 1 - AUC: integrate TAR (the y axis) over FAR (the x axis)")
    if np.isclose(got, float(np.sum(np.diff(far) * tar[1:])), atol=1e-9) or np.isclose(
        got, float(np.sum(np.diff(far) * tar[:-1])), atol=1e-9
    ):
        raise _Wrong("rectangles, not trapezoids: average the two heights, (tar[i] + tar[i+1]) / 2")
    raise _Wrong(f"expected about {expected:.3f}: sum over steps of width (far[i+1] - far[i]) x mean height")


@_check
def check_threshold_at_far(answer: float, distances: np.ndarray, same: np.ndarray, far_target: float) -> str:
    """answer: a threshold tau (accept d <= tau) with FAR <= far_target on these pairs and the most VAL that
    target allows. With n different pairs the target allows accepting k = floor(far_target n) of them, so tau must
    stay below the (k+1)-th smallest different-pair distance, and the most VAL accepts every same pair below it:
    any tau from the largest such same-pair distance up to (not including) that different pair is right."""
    tau = _number(answer, "tau")
    d, s = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    far = float(np.mean(d[~s] <= tau))
    val = float(np.mean(d[s] <= tau))
    different = np.sort(d[~s])
    allowed = int(np.floor(far_target * len(different)))  # different pairs we may accept
    limit = np.inf if allowed >= len(different) else different[allowed]  # tau must stay below this one
    best_val = float(np.mean(d[s] < limit))
    if far > far_target:
        raise _Wrong(f"at tau = {tau:.4f} FAR is {far:.4f} > {far_target}: the threshold is too large")
    if val < best_val:
        missed = int(np.sum((d[s] > tau) & (d[s] < limit)))
        raise _Wrong(f"FAR is within target, but VAL is only {val:.3f}: {missed} more same pairs can be accepted "
                     f"before FAR passes {far_target}. The target allows accepting {allowed} different pairs; raise "
                     "tau towards the next different-pair distance (not to it)")
    return f"FAR = {far:.4f} <= {far_target}, VAL = {val:.3f}, the most this FAR target allows"


@_check
def check_pairwise_precision_recall(answer: tuple[float, float], clusters: np.ndarray, labels: np.ndarray) -> str:
    """answer = (precision, recall) of a clustering, counted over pairs of distinct images i < j:
    precision = same person among pairs put in one cluster; recall = put in one cluster among same-person pairs."""
    precision, recall = _pair_of_numbers(answer, "precision, recall")
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    together, same = clusters[i] == clusters[j], labels[i] == labels[j]
    expected = (float(np.mean(same[together])) if together.any() else 1.0, float(np.mean(together[same])))
    if np.allclose((precision, recall), expected, atol=1e-9):
        return f"pairwise precision {expected[0]:.3f}, recall {expected[1]:.3f}"
    if np.allclose((recall, precision), expected, atol=1e-9):
        raise _Wrong("you swapped them: precision asks 'of the pairs I merged, how many are one person?'")
    ii, jj = np.meshgrid(np.arange(len(labels)), np.arange(len(labels)), indexing="ij")
    together_all = clusters[ii] == clusters[jj]
    same_all = labels[ii] == labels[jj]
    with_self = (float(np.mean(same_all[together_all])), float(np.mean(together_all[same_all])))
    if np.allclose((precision, recall), with_self, atol=1e-9):
        raise _Wrong("count each pair of distinct images once (i < j); an image paired with itself says nothing")
    raise _Wrong(f"expected about ({expected[0]:.3f}, {expected[1]:.3f}); count pairs i < j")


__all__ = ["check_auc", "check_pairwise_precision_recall", "check_threshold_at_far"]
