"""The exercise checks of lesson 7, measuring a face system: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.eval import auc, roc_curve
from tinyface.teaching.exercises import lesson07_measuring as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    d, s = np.array([0.1, 0.5]), np.array([True, False])
    assert status(ex.check_auc(..., [0, 1], [0, 1])) == "unanswered"
    assert status(ex.check_threshold_at_far(None, d, s, 0.5)) == "unanswered"
    assert status(ex.check_pairwise_precision_recall(None, np.array([0, 0]), np.array([1, 1]))) == "unanswered"


def test_check_auc(status):
    rng = np.random.default_rng(0)
    d, s = rng.random(200), rng.random(200) < 0.5
    d = np.round(d - 0.2 * s, 1)  # ties: the ROC takes diagonal steps, where rectangles and trapezoids differ
    far, tar, _ = roc_curve(d, s)
    area = auc(far, tar)
    assert status(ex.check_auc(area, far, tar)) == "right"
    assert "1 - AUC" in ex.check_auc(1 - area, far, tar).message
    assert "trapezoids" in ex.check_auc(float(np.sum(np.diff(far) * tar[1:])), far, tar).message


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
