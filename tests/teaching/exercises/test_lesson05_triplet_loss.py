"""The exercise checks of lesson 5, the triplet loss: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises import lesson05_triplet_loss as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_triplet_loss(unanswered)) == "unanswered"
    assert status(ex.check_collapsed_loss(..., 10, 0.2)) == "unanswered"
    assert status(ex.check_triplet_gradients(unanswered)) == "unanswered"


def triplet(a, p, n, alpha):
    return np.sum(np.maximum(np.sum((a - p) ** 2, 1) - np.sum((a - n) ** 2, 1) + alpha, 0))


def test_check_triplet_loss(status):
    assert status(ex.check_triplet_loss(triplet)) == "right"
    assert "mean" in ex.check_triplet_loss(lambda a, p, n, alpha: triplet(a, p, n, alpha) / len(a)).message
    assert "swapped" in ex.check_triplet_loss(lambda a, p, n, alpha: triplet(a, n, p, alpha)).message
    no_hinge = ex.check_triplet_loss(lambda a, p, n, al: np.sum(np.sum((a - p) ** 2, 1) - np.sum((a - n) ** 2, 1) + al))
    assert "hinge" in no_hinge.message


def test_check_triplet_loss_agrees_with_the_library(status):
    from tinyface.losses import triplet_loss

    assert status(ex.check_triplet_loss(lambda a, p, n, alpha: triplet_loss(a, p, n, alpha).item())) == "right"


def test_check_collapsed_loss(status):
    assert status(ex.check_collapsed_loss(20.0, 100, 0.2)) == "right"
    assert "without a margin" in ex.check_collapsed_loss(0, 100, 0.2).message
    assert "sum" in ex.check_collapsed_loss(0.2, 100, 0.2).message


def gradients(a, p, n, alpha):
    if np.sum((a - p) ** 2) - np.sum((a - n) ** 2) + alpha <= 0:
        return np.zeros_like(a), np.zeros_like(a), np.zeros_like(a)
    return 2 * (n - p), 2 * (p - a), 2 * (a - n)


def test_check_triplet_gradients(status):
    assert status(ex.check_triplet_gradients(gradients)) == "right"
    always = ex.check_triplet_gradients(lambda a, p, n, alpha: (2 * (n - p), 2 * (p - a), 2 * (a - n)))
    assert "easy" in always.message
    flipped = ex.check_triplet_gradients(lambda a, p, n, alpha: tuple(-g for g in gradients(a, p, n, alpha)))
    assert "sign" in flipped.message
