"""Lesson 7, measuring a face system: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _call, _check, _given, _number, _pair_of_numbers, _Wrong


def _scored_pairs(seed: int, n_same: int, n_different: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances of n_same same and n_different different pairs, shuffled, without ties."""
    rng = np.random.default_rng(seed)
    d = np.concatenate([rng.normal(0.8, 0.25, n_same), rng.normal(1.3, 0.3, n_different)])
    same = np.arange(len(d)) < n_same
    order = rng.permutation(len(d))
    return d[order], same[order]


def _rates(d: np.ndarray, same: np.ndarray, tau: float) -> tuple[float, float]:
    return float(np.mean(d[~same] <= tau)), float(np.mean(d[same] > tau))


@_check
def check_eer(fn: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> str:
    """fn(d, same) -> (rate, tau): the equal error rate and a threshold where FAR = FRR (accept d <= tau).

    On finitely many pairs FAR and FRR move in steps and rarely meet exactly: the answer is right when FAR and
    FRR at tau are as close as any threshold brings them, give or take one step (a step is one pair, 1/#same or
    1/#different), and the rate is as close to tinyface's eer (which interpolates between the two ROC points
    around the crossing)."""
    from tinyface.eval import eer

    for seed, n_same, n_different in ((70, 300, 300), (71, 100, 400), (72, 450, 150)):
        d, same = _scored_pairs(seed, n_same, n_different)
        rate_ref, _ = eer(d, same)
        closest = min(abs(np.subtract(*_rates(d, same, t))) for t in np.concatenate([[-np.inf], np.unique(d)]))
        tolerance = closest + max(1 / n_same, 1 / n_different)
        rate, tau = _pair_of_numbers(_call(fn, d.copy(), same.copy()), "rate, tau")
        far, frr = _rates(d, same, tau)
        if abs(far - frr) <= tolerance and abs(rate - rate_ref) <= tolerance:
            continue
        if abs(rate - (1 - rate_ref)) <= tolerance:
            raise _Wrong("that is 1 - EER: the EER is an error rate, FAR (= FRR) at the crossing")
        if abs(np.subtract(*_rates(d, same, rate))) <= tolerance and abs(tau - rate_ref) <= tolerance:
            raise _Wrong("return (rate, tau), in that order")
        if abs(far - frr) > tolerance:
            raise _Wrong(f"at your tau = {tau:.4f}, FAR = {far:.3f} and FRR = {frr:.3f}: the EER's tau is where they "
                         "are equal (FAR = different pairs with d <= tau, FRR = same pairs with d > tau)")
        raise _Wrong(f"at your tau FAR and FRR are both about {(far + frr) / 2:.3f}, but you gave the rate {rate:.3f}")
    return "FAR = FRR at tau: one balanced operating point of the ROC curve"


def _kfold(d: np.ndarray, same: np.ndarray, folds: np.ndarray, choose_on: str, measure_on: str) -> np.ndarray:
    """Per fold: tau = best_threshold on the pairs named by choose_on, the accuracy on those named by measure_on,
    each "other" (the other folds), "held out" (this fold) or "all". ("other", "held out") is LFW's protocol."""
    from tinyface.eval import best_threshold

    result = []
    for fold in np.unique(folds):
        parts = {"held out": folds == fold, "other": folds != fold, "all": np.ones_like(same)}
        chosen, measured = parts[choose_on], parts[measure_on]
        tau = best_threshold(d[chosen], same[chosen])
        result.append(np.mean((d[measured] <= tau) == same[measured]))
    return np.array(result)


@_check
def check_kfold_accuracy(fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(d, same, folds) -> one accuracy per fold, in the order of np.unique(folds): for each fold, tau =
    best_threshold on the pairs of the OTHER folds, then the accuracy of "same iff d <= tau" on this fold's pairs."""
    from tinyface.eval import kfold_accuracy, stratified_folds

    mistakes = [
        (("all", "held out"), "tau was chosen on all the pairs, the held-out fold's included: choose it on the "
                              "other folds only, or the result is optimistic"),
        (("held out", "held out"), "tau was chosen on the held-out fold itself: choose it on the other folds"),
        (("other", "other"), "the accuracy is measured on the folds tau was chosen on: measure it on the held-out "
                             "fold"),
    ]
    for seed, n_folds in ((73, 10), (74, 4)):
        d, same = _scored_pairs(seed, 200, 200)
        folds = np.random.default_rng(seed).permutation(np.arange(len(d)) % n_folds)  # not contiguous runs
        expected = kfold_accuracy(d, same, folds=folds).accuracies
        answer = np.asarray(_given(_call(fn, d.copy(), same.copy(), folds.copy())), dtype=np.float64)
        if answer.shape != (n_folds,):
            raise _Wrong(f"return one accuracy per fold, an array of shape ({n_folds},) for {n_folds} folds; got "
                         f"shape {answer.shape}")
        if np.allclose(answer, expected, atol=1e-9):
            continue
        for (choose_on, measure_on), hint in mistakes:
            if np.allclose(answer, _kfold(d, same, folds, choose_on, measure_on), atol=1e-9):
                raise _Wrong(hint)
        for own_folds in (np.arange(len(d)) * n_folds // len(d), stratified_folds(same, n_folds)):
            if np.allclose(answer, _kfold(d, same, own_folds, "other", "held out"), atol=1e-9):
                raise _Wrong("those are folds of your own making: pair m belongs to fold folds[m]")
        fold = int(np.argmax(~np.isclose(answer, expected, atol=1e-9)))
        raise _Wrong(f"fold {fold}: expected accuracy {expected[fold]:.4f}, got {answer[fold]:.4f}")
    return "tau chosen without the fold it is tested on: the mean of these is LFW's reported accuracy"


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


__all__ = ["check_eer", "check_kfold_accuracy", "check_pairwise_precision_recall", "check_threshold_at_far"]
