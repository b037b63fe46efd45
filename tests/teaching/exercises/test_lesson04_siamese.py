"""The exercise checks of lesson 4, Siamese networks and the contrastive loss: right answers accepted, wrong ones
rejected with a hint, placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises import lesson04_siamese as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_contrastive_gradient(unanswered)) == "unanswered"
    assert status(ex.check_balanced_pairs(None)) == "unanswered"


def gradient(x1, x2, same, margin):
    diff = x1 - x2
    if same:
        return 2 * diff
    distance = np.linalg.norm(diff)
    if distance == 0 or distance >= margin:
        return np.zeros_like(x1)
    return -2 * (margin - distance) * diff / distance


def test_check_contrastive_gradient(status):
    assert status(ex.check_contrastive_gradient(gradient)) == "right"


def test_check_contrastive_gradient_agrees_with_backpropagation(status):
    from tinyface.losses import contrastive_loss
    from tinyface.tensor import Tensor

    def by_autograd(x1, x2, same, margin):
        left = Tensor(x1[None], requires_grad=True)
        contrastive_loss(left, Tensor(x2[None]), np.array([same]), margin).backward()
        return left.grad[0]

    assert status(ex.check_contrastive_gradient(by_autograd)) == "right"


def test_check_contrastive_gradient_rejects_the_usual_slips():
    def no_chain_rule(x1, x2, same, margin):
        distance = np.linalg.norm(x1 - x2)
        return 2 * (x1 - x2) if same else -2 * max(margin - distance, 0) * (x1 - x2)

    def unguarded(x1, x2, same, margin):  # 0 / 0 at identical embeddings
        distance = np.linalg.norm(x1 - x2)
        return 2 * (x1 - x2) if same else -2 * max(margin - distance, 0) * (x1 - x2) / distance

    def beyond_the_margin(x1, x2, same, margin):  # the hinge forgotten: pushes for ever
        distance = np.linalg.norm(x1 - x2)
        if same or distance == 0:
            return gradient(x1, x2, same, margin)
        return -2 * (margin - distance) * (x1 - x2) / distance

    def plain_hinge(x1, x2, same, margin):  # max(margin - d, 0)^2, without the square root
        d = np.sum((x1 - x2) ** 2)
        return 2 * (x1 - x2) if same else -4 * max(margin - d, 0) * (x1 - x2)

    assert "chain rule" in ex.check_contrastive_gradient(no_chain_rule).message
    with np.errstate(invalid="ignore"):
        assert "d = 0" in ex.check_contrastive_gradient(unguarded).message
    assert "flat" in ex.check_contrastive_gradient(beyond_the_margin).message
    assert "sqrt(d)" in ex.check_contrastive_gradient(plain_hinge).message
    assert "sign" in ex.check_contrastive_gradient(lambda a, b, s, m: -gradient(a, b, s, m)).message
    assert "2 (x1 - x2)" in ex.check_contrastive_gradient(
        lambda a, b, s, m: (a - b) if s else gradient(a, b, s, m)).message
    assert "shape" in ex.check_contrastive_gradient(lambda a, b, s, m: 0.0).message


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
