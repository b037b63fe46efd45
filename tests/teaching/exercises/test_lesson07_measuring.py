"""The exercise checks of lesson 7, measuring a face system: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.eval import best_threshold, eer, kfold_accuracy
from tinyface.teaching.exercises import lesson07_measuring as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    d, s = np.array([0.1, 0.5]), np.array([True, False])
    assert status(ex.check_eer(unanswered)) == "unanswered"
    assert status(ex.check_kfold_accuracy(unanswered)) == "unanswered"
    assert status(ex.check_threshold_at_far(None, d, s, 0.5)) == "unanswered"
    assert status(ex.check_pairwise_precision_recall(None, np.array([0, 0]), np.array([1, 1]))) == "unanswered"


def eer_by_scan(d, same):
    """The threshold among the pairs' own distances where FAR and FRR are closest, and their mean there."""
    taus = np.sort(d)
    far = np.array([np.mean(d[~same] <= tau) for tau in taus])
    frr = np.array([np.mean(d[same] > tau) for tau in taus])
    k = int(np.argmin(np.abs(far - frr)))
    return (far[k] + frr[k]) / 2, taus[k]


def test_check_eer(status):
    assert status(ex.check_eer(eer_by_scan)) == "right"
    assert status(ex.check_eer(eer)) == "right"  # tinyface's, which interpolates between ROC points


def test_check_eer_rejects_the_usual_slips():
    def at_best_accuracy(d, same):  # another operating point: FAR and FRR are not equal there
        tau = best_threshold(d, same)
        return (np.mean(d[~same] <= tau) + np.mean(d[same] > tau)) / 2, tau

    def far_equals_tar(d, same):  # FRR taken as TAR
        taus = np.sort(d)
        far = np.array([np.mean(d[~same] <= tau) for tau in taus])
        tar = np.array([np.mean(d[same] <= tau) for tau in taus])
        k = int(np.argmin(np.abs(far - tar)))
        return far[k], taus[k]

    assert "1 - EER" in ex.check_eer(lambda d, s: (1 - eer(d, s)[0], eer(d, s)[1])).message
    assert "(rate, tau)" in ex.check_eer(lambda d, s: eer(d, s)[::-1]).message
    assert "where they are equal" in ex.check_eer(at_best_accuracy).message
    assert "where they are equal" in ex.check_eer(far_equals_tar).message
    assert "you gave the rate" in ex.check_eer(lambda d, s: (eer(d, s)[0] + 0.1, eer(d, s)[1])).message


def kfold(d, same, folds):
    accuracies = []
    for fold in np.unique(folds):
        held_out = folds == fold
        tau = best_threshold(d[~held_out], same[~held_out])
        accuracies.append(np.mean((d[held_out] <= tau) == same[held_out]))
    return np.array(accuracies)


def test_check_kfold_accuracy(status):
    assert status(ex.check_kfold_accuracy(kfold)) == "right"
    library = ex.check_kfold_accuracy(lambda d, s, folds: kfold_accuracy(d, s, folds=folds).accuracies)
    assert status(library) == "right"


def test_check_kfold_accuracy_rejects_a_tau_that_saw_the_held_out_fold():
    def on_all(d, same, folds):
        tau = best_threshold(d, same)
        return np.array([np.mean((d[folds == f] <= tau) == same[folds == f]) for f in np.unique(folds)])

    def on_held_out(d, same, folds):
        accuracies = []
        for fold in np.unique(folds):
            held_out = folds == fold
            tau = best_threshold(d[held_out], same[held_out])
            accuracies.append(np.mean((d[held_out] <= tau) == same[held_out]))
        return np.array(accuracies)

    assert "all the pairs" in ex.check_kfold_accuracy(on_all).message
    assert "held-out fold itself" in ex.check_kfold_accuracy(on_held_out).message


def test_check_kfold_accuracy_rejects_the_wrong_measure_and_shape():
    def measured_on_training_folds(d, same, folds):
        accuracies = []
        for fold in np.unique(folds):
            train = folds != fold
            tau = best_threshold(d[train], same[train])
            accuracies.append(np.mean((d[train] <= tau) == same[train]))
        return np.array(accuracies)

    def contiguous_folds(d, same, folds):  # its own folds, ignoring the ones given
        return kfold(d, same, np.arange(len(d)) * len(np.unique(folds)) // len(d))

    assert "measure it on the held-out fold" in ex.check_kfold_accuracy(measured_on_training_folds).message
    assert "folds[m]" in ex.check_kfold_accuracy(contiguous_folds).message
    assert "one accuracy per fold" in ex.check_kfold_accuracy(lambda d, s, f: kfold(d, s, f).mean()).message


def test_check_threshold_at_far(status):
    d = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    s = np.array([True, True, False, True, True, False, False, False, False, False])
    # 6 different pairs: FAR <= 0.2 allows one of them (0.3) to be accepted, so tau < 0.5; the most VAL (1) needs
    # the same pairs at 0.35 and 0.4 too: any tau in [0.4, 0.5) is right
    assert status(ex.check_threshold_at_far(0.45, d, s, 0.2)) == "right"
    assert status(ex.check_threshold_at_far(0.4, d, s, 0.2)) == "right"
    assert "too large" in ex.check_threshold_at_far(0.5, d, s, 0.2).message
    assert "raise tau" in ex.check_threshold_at_far(0.25, d, s, 0.2).message


def test_check_threshold_at_far_rejects_the_last_allowed_different_pair():
    # tau at the one different pair the target allows (0.3): FAR is right, but the same pairs at 0.35 and 0.4 are
    # rejected although accepting them costs no FAR
    d = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    s = np.array([True, True, False, True, True, False, False, False, False, False])
    verdict = ex.check_threshold_at_far(0.3, d, s, 0.2)
    assert "VAL is only 0.500" in verdict.message and "raise tau" in verdict.message


def test_check_threshold_at_far_rejects_a_tau_inside_the_range_short_of_the_most_val():
    d = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    s = np.array([True, True, False, True, True, False, False, False, False, False])
    assert "VAL is only 0.750" in ex.check_threshold_at_far(0.37, d, s, 0.2).message


def test_check_threshold_at_far_rejects_the_first_forbidden_pair_and_the_quantile():
    rng = np.random.default_rng(7)
    s = rng.random(400) < 0.3
    d = np.where(s, rng.normal(0.6, 0.2, 400), rng.normal(1.2, 0.2, 400))
    different = np.sort(d[~s])
    allowed = int(np.floor(0.05 * len(different)))
    right = different[allowed] - 1e-9
    assert ex.check_threshold_at_far(right, d, s, 0.05)
    assert "too large" in ex.check_threshold_at_far(different[allowed], d, s, 0.05).message  # one pair too many
    quantile = np.quantile(d[~s], 0.05)  # interpolates between two pairs: below the most tau allows
    assert not ex.check_threshold_at_far(quantile, d, s, 0.05)


def test_check_threshold_at_far_when_no_different_pair_may_be_accepted(status):
    d = np.array([0.1, 0.2, 0.3, 0.4])
    s = np.array([True, False, True, False])
    assert status(ex.check_threshold_at_far(0.15, d, s, 0.1)) == "right"  # FAR 0, VAL 1/2: 0.3 lies past 0.2
    assert "too large" in ex.check_threshold_at_far(0.2, d, s, 0.1).message
    assert "VAL is only 0.000" in ex.check_threshold_at_far(0.05, d, s, 0.1).message


def test_check_pairwise_precision_recall(status):
    labels = np.array([0, 0, 0, 1, 1, 2])
    clusters = np.array([5, 5, 6, 6, 6, 7])
    # pairs together: (0,1) same, (2,3) diff, (2,4) diff, (3,4) same -> precision 2/4
    # same-person pairs: (0,1) (0,2) (1,2) (3,4) -> together (0,1), (3,4): recall 2/4
    assert status(ex.check_pairwise_precision_recall((0.5, 0.5), clusters, labels)) == "right"
    clusters = np.array([5, 5, 5, 6, 6, 6])  # precision 4/6, recall 4/4
    assert status(ex.check_pairwise_precision_recall((4 / 6, 1.0), clusters, labels)) == "right"
    assert "swapped" in ex.check_pairwise_precision_recall((1.0, 4 / 6), clusters, labels).message
    assert "i < j" in ex.check_pairwise_precision_recall((14 / 18, 1.0), clusters, labels).message
