"""nearest_kink finds each kind of kink of each loss, on batches built to sit exactly on one (points on a line)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyface.testing import nearest_kink


def line(*points):
    return np.array(points, dtype=np.float64)[:, None]


# (points, labels, margin, loss, fallback, words in the description): each batch sits on that one kink
ON_A_KINK = [
    # d_ap = 1, d_an = 2.25, margin 1.25: the hinge of (0, 1, 2) is exactly 0
    (line(0, 1, 1.5), [0, 0, 1], 1.25, "batch_all", "easiest", "triplet (a=0, p=1, n=2)"),
    (line(0, 1, 1.5), [0, 0, 1], 1.25, "batch_hard", "easiest", "triplet (a=0, p=1, n=2)"),
    # anchor 0's positives -1 and 1 tie for the farthest
    (line(0, -1, 1, 5), [0, 0, 0, 1], 0.2, "batch_hard", "easiest", "anchor 0: positives tie for the farthest"),
    # anchor 0's negatives -3 and 3 tie for the nearest
    (line(0, 0.5, -3, 3), [0, 0, 1, 1], 0.2, "batch_hard", "easiest", "anchor 0: negatives tie for the nearest"),
    # positive and negative equally far from anchor 0: the semi-hard boundary
    (line(0, 2, -2, 9), [0, 0, 1, 1], 0.2, "semihard", "easiest", "boundary d_an = d_ap: anchor 0, positive 1"),
    # no negative beyond the positive 3.5: the fallback's farthest negatives -1 and 1 tie
    (line(0, 3.5, -1, 1), [0, 0, 1, 1], 0.2, "semihard", "easiest", "tie for the farthest (fallback)"),
    # any two distances from one anchor: "all" is strict even where batch-all would not care
    (line(0, 1, -1, 7), [0, 1, 2, 2], 0.2, "all", "easiest", "anchor 0: two rows are equally far"),
    # two equal rows are a kink of every loss
    (line(0, 4, 0, 9), [0, 0, 1, 1], 0.2, "batch_all", "easiest", "rows 0 and 2 nearly identical"),
]


@pytest.mark.parametrize("x, labels, margin, loss, fallback, words", ON_A_KINK, ids=[c[-1] for c in ON_A_KINK])
def test_a_batch_on_a_kink_is_at_distance_zero_and_the_kink_is_named(x, labels, margin, loss, fallback, words):
    kink = nearest_kink(x, np.array(labels), margin, loss, fallback)
    assert kink.distance == 0.0 and words in kink.where, kink


def test_a_kink_of_one_loss_need_not_be_a_kink_of_another():
    x, labels = line(0, 1, 1.5), np.array([0, 0, 1])  # the hinge of (0, 1, 2) is 0 at margin 1.25
    assert nearest_kink(x, labels, "soft", "batch_hard").distance > 0  # softplus has no kink
    x, labels = line(0, 3.5, -1, 1), np.array([0, 0, 1, 1])  # tie for the farthest negative of anchor 0
    assert nearest_kink(x, labels, 0.2, "semihard", "skip").distance > 0  # dropped pairs choose no negative
    x, labels = line(0, -1, 1, 5), np.array([0, 0, 0, 1])  # positives tie: batch-all sums over both
    assert nearest_kink(x, labels, 0.2, "batch_all").distance > 0


def test_the_distance_is_how_far_the_nearest_kink_is():
    x, labels = line(0, 1, 2), np.array([0, 0, 1])  # hinges (d_ap + 0.2) - d_an: 1.2 - 4 (anchor 0), 1.2 - 1
    kink = nearest_kink(x, labels, 0.2, "batch_all")
    assert kink.distance == pytest.approx(0.2) and "triplet (a=1, p=0, n=2)" in kink.where


def test_nothing_to_switch_is_infinitely_far():
    assert nearest_kink(line(0.0), np.array([0]), 0.2, "semihard").distance == np.inf


@pytest.mark.parametrize("margin, loss, fallback, message", [
    (0.2, "lifted", "easiest", "loss must be one of"),
    ("soft", "batch_all", "easiest", "soft margin"),
    (0.2, "semihard", "nearest", "fallback must be one of"),
])
def test_bad_arguments_are_refused(margin, loss, fallback, message):
    with pytest.raises(ValueError, match=message):
        nearest_kink(line(0, 1), np.array([0, 1]), margin, loss, fallback)
