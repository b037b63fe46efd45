"""The exercise checks of lesson 5, the triplet loss: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.kernels import pairwise_sqdist
from tinyface.losses import batch_all_triplet_loss
from tinyface.teaching.exercises import lesson05_triplet_loss as ex
from tinyface.tensor import Tensor, no_grad


def test_placeholders_are_not_answered_yet(status, unanswered):
    images, labels = small_faces()
    assert status(ex.check_collapse_training(unanswered, images, labels, 2)) == "unanswered"
    assert status(ex.check_triplet_gradients(unanswered)) == "unanswered"


def small_faces():
    """40 random 16 x 16 "images" of 10 people: enough for the loop (the check needs 8 people of 4 images)."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 1, 16, 16)).astype(np.float32), np.repeat(np.arange(10), 4)


def train(model, optimizer, batches, margin, zero_grad=True, step=True, after=False):
    spreads = []
    for images, labels in batches:
        embeddings = model(Tensor(images))
        if not after:
            spreads.append(pairwise_sqdist(embeddings.numpy()).mean())
        loss, _ = batch_all_triplet_loss(embeddings, labels, margin)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if step:
            optimizer.step()
        if after:
            model.eval()
            with no_grad():
                spreads.append(pairwise_sqdist(model(Tensor(images)).numpy()).mean())
            model.train()
    return spreads


def test_check_collapse_training(status):
    images, labels = small_faces()
    verdict = ex.check_collapse_training(train, images, labels, 3)
    assert status(verdict) == "right", verdict

    def off_diagonal(model, optimizer, batches, margin):  # the mean over pairs i != j: the same measure
        return [s * 32 / 31 for s in train(model, optimizer, batches, margin)]

    assert status(ex.check_collapse_training(off_diagonal, images, labels, 3)) == "right"


def test_check_collapse_training_rejects_a_loop_that_does_not_train():
    images, labels = small_faces()
    no_step = ex.check_collapse_training(lambda m, o, b, a: train(m, o, b, a, step=False), images, labels, 3)
    assert "optimizer.step()" in no_step.message
    no_zero = ex.check_collapse_training(lambda m, o, b, a: train(m, o, b, a, zero_grad=False), images, labels, 3)
    assert "zero_grad" in no_zero.message


def test_check_collapse_training_rejects_the_wrong_margin_and_measure():
    images, labels = small_faces()
    margin = ex.check_collapse_training(lambda m, o, b, a: train(m, o, b, 0.2), images, labels, 3)
    assert "margin 0.2" in margin.message
    after = ex.check_collapse_training(lambda m, o, b, a: train(m, o, b, a, after=True), images, labels, 3)
    assert "before the step" in after.message
    assert "list of 3 spreads" in ex.check_collapse_training(lambda m, o, b, a: 0.5, images, labels, 3).message


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
