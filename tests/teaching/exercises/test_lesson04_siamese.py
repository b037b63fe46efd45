"""The exercise checks of lesson 4, Siamese networks and the contrastive loss: right answers accepted, wrong ones
rejected with a hint, placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises import lesson04_siamese as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_contrastive_loss(unanswered)) == "unanswered"
    assert status(ex.check_balanced_pairs(None)) == "unanswered"
    assert status(ex.check_push_distance(None, 1.0)) == "unanswered"


def contrastive(x1, x2, same, margin):
    d = np.sum((x1 - x2) ** 2, axis=1)
    return np.mean(np.where(same, d, np.maximum(margin - np.sqrt(d), 0) ** 2))


def test_check_contrastive_loss(status):
    assert status(ex.check_contrastive_loss(contrastive)) == "right"
    swapped = ex.check_contrastive_loss(lambda a, b, s, m: contrastive(a, b, ~s, m))
    assert "swapped" in swapped.message

    def no_sqrt(x1, x2, same, margin):
        d = np.sum((x1 - x2) ** 2, axis=1)
        return np.mean(np.where(same, d, np.maximum(margin - d, 0) ** 2))

    assert "sqrt(d)" in ex.check_contrastive_loss(no_sqrt).message
    summed = ex.check_contrastive_loss(lambda a, b, s, m: len(a) * contrastive(a, b, s, m))
    assert "mean" in summed.message


def test_check_contrastive_loss_agrees_with_the_library(status):
    from tinyface.losses import contrastive_loss

    assert status(ex.check_contrastive_loss(lambda a, b, s, m: contrastive_loss(a, b, s, m).item())) == "right"


def balanced(labels, n, rng):
    same = np.argwhere((labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool))
    different = np.argwhere(labels[:, None] != labels[None, :])
    s = same[rng.choice(len(same), n)]
    d = different[rng.choice(len(different), n)]
    return np.concatenate([s[:, 0], d[:, 0]]), np.concatenate([s[:, 1], d[:, 1]])


def test_check_balanced_pairs(status):
    assert status(ex.check_balanced_pairs(balanced)) == "right"

    def with_self_pairs(labels, n, rng):
        i, j = balanced(labels, n, rng)
        j[:n] = i[:n]
        return i, j

    assert "i != j" in ex.check_balanced_pairs(with_self_pairs).message
    swapped = ex.check_balanced_pairs(lambda labels, n, rng: tuple(a[::-1] for a in balanced(labels, n, rng)))
    assert status(swapped) == "wrong"
    fixed = ex.check_balanced_pairs(lambda labels, n, rng: balanced(labels, n, np.random.default_rng(0)))
    assert "rng" in fixed.message


def test_check_push_distance(status):
    assert status(ex.check_push_distance(0.25, 0.5)) == "right"
    assert "sqrt(d)" in ex.check_push_distance(0.5, 0.5).message
    assert status(ex.check_push_distance(0.0, 0.5)) == "wrong"
