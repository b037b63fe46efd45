"""Lesson 5, the triplet loss: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _Wrong

Batches = list[tuple[np.ndarray, np.ndarray]]
Train = Callable[[Any, Any, Batches, float], list[float]]


def _reference_train(model: Any, optimizer: Any, batches: Batches, margin: float, update: bool = True,
                     zero_grad: bool = True) -> list[float]:
    """The loop the exercise asks for (and, with update or zero_grad off, two ways of getting it wrong)."""
    from tinyface.kernels import pairwise_sqdist
    from tinyface.losses import batch_all_triplet_loss
    from tinyface.tensor import Tensor

    spreads = []
    for images, labels in batches:
        embeddings = model(Tensor(images))
        spreads.append(float(pairwise_sqdist(embeddings.numpy()).mean()))
        loss, _ = batch_all_triplet_loss(embeddings, labels, margin)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if update:
            optimizer.step()
    return spreads


PEOPLE, IMAGES = 8, 4  # a P x K batch of 32 images


def _training_setup(images: np.ndarray, labels: np.ndarray, steps: int) -> tuple[Any, Any, Batches]:
    """A fresh L2-normalised FaceCNN, plain Adam (no weight decay) and `steps` P x K batches, from fixed seeds."""
    from tinyface.data import PKSampler
    from tinyface.nn.models import FaceCNN
    from tinyface.nn.optim import Adam
    from tinyface.rng import manual_seed

    manual_seed(0)
    model = FaceCNN(images.shape[1], widths=(16, 32, 64, 64), embedding_dim=64, rng=np.random.default_rng(0))
    optimizer = Adam(model.parameters(), lr=3e-3)
    sampler = PKSampler(labels, PEOPLE, IMAGES, rng=np.random.default_rng(1))
    return model, optimizer, [(images[batch], labels[batch]) for batch in (sampler.sample() for _ in range(steps))]


@_check
def check_collapse_training(train: Train, images: np.ndarray, labels: np.ndarray, steps: int) -> str:
    """train(model, optimizer, batches, margin): for each (images, labels) of `batches`, embed the images with
    `model` (in training mode), record the spread of the batch (the mean of its (B, B) squared distances,
    kernels.pairwise_sqdist(e.numpy()).mean()), then take one step of `optimizer` on the batch-all triplet loss at
    `margin`; return the spreads. The check runs it with margin 0 on a fresh normalised network and plain Adam (no
    weight decay), and compares with its own run of the same loop."""
    images, labels = np.asarray(images), np.asarray(labels)
    answer = _given(_call(train, *_training_setup(images, labels, steps), 0.0))
    expected = _reference_train(*_training_setup(images, labels, steps), 0.0)
    if not isinstance(answer, (list, tuple, np.ndarray)) or len(answer) != steps:
        raise _Wrong(f"return a list of {steps} spreads, one per batch (got {type(answer).__name__})")
    got = _array(answer, (steps,), "the spreads")
    size = PEOPLE * IMAGES
    if np.allclose(got * (size - 1) / size, expected, rtol=1e-4):
        got = got * (size - 1) / size  # the mean over the pairs i != j only: the same measure, accepted
    if not np.isclose(got[0], expected[0], rtol=1e-4):
        raise _Wrong(f"the first spread should be {expected[0]:.4f}, you have {got[0]:.4f}: embed the batch with "
                     "model(Tensor(images)) in training mode and take the mean of pairwise_sqdist of the "
                     "embeddings, before the step")
    if not np.allclose(got, expected, rtol=1e-3):
        mistakes = [
            ({"update": False}, "the weights never change: after loss.backward(), call optimizer.step()"),
            ({"zero_grad": False}, "the gradients add up from step to step: call optimizer.zero_grad() before "
                                   "loss.backward()"),
            ({"margin": 0.2}, "that is a run with margin 0.2: use the `margin` argument (the check passes 0)"),
        ]
        for mistake, hint in mistakes:
            model, optimizer, batches = _training_setup(images, labels, steps)
            if np.allclose(got, _reference_train(model, optimizer, batches, **{"margin": 0.0, **mistake}), rtol=1e-3):
                raise _Wrong(hint)
        step = int(np.argmax(~np.isclose(got, expected, rtol=1e-3)))
        raise _Wrong(f"your spreads part from the expected ones at step {step}: one optimizer step per batch, on "
                     "batch_all_triplet_loss(embeddings, labels, margin)[0]")
    end = float(np.mean(expected[-3:]))
    return (f"with alpha = 0 and no weight decay the spread goes {expected[0]:.3f} -> {end:.3f} in {steps} steps: "
            "every active triplet is hard (d_an < d_ap), and pulling the faces together lowers every hinge at once")


@_check
def check_triplet_gradients(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple]) -> str:
    """fn(a, p, n, alpha) for one triplet of vectors (D,): (dL/da, dL/dp, dL/dn) of
    L = max(||a - p||^2 - ||a - n||^2 + alpha, 0)."""
    rng = np.random.default_rng(51)
    alpha = 0.2
    cases = []
    for _ in range(2):
        a = rng.standard_normal(4)
        cases.append((a, a + 0.1 * rng.standard_normal(4), a + 0.1 * rng.standard_normal(4)))  # active (close n)
        cases.append((a, a + 0.05 * rng.standard_normal(4), a + 3 + rng.standard_normal(4)))  # inactive: easy
    for a, p, n in cases:
        answer = _call(fn, a.copy(), p.copy(), n.copy(), alpha)
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 3:
            raise _Wrong("return three gradients, (grad_a, grad_p, grad_n)")
        got = [_array(g, (4,), name) for g, name in zip(answer, ("grad_a", "grad_p", "grad_n"), strict=True)]
        active = np.sum((a - p) ** 2) - np.sum((a - n) ** 2) + alpha > 0
        expected = [2 * (n - p), 2 * (p - a), 2 * (a - n)] if active else [np.zeros(4)] * 3
        if all(np.allclose(g, e, atol=1e-6) for g, e in zip(got, expected, strict=True)):
            continue
        if not active:
            raise _Wrong("for an easy triplet (d_an > d_ap + alpha) the hinge is 0 and flat: all three gradients "
                         "are 0")
        for g, e, name in zip(got, expected, ("grad_a", "grad_p", "grad_n"), strict=True):
            if np.allclose(g, -e, atol=1e-6):
                raise _Wrong(f"{name} has the wrong sign")
            if not np.allclose(g, e, atol=1e-6):
                raise _Wrong(f"{name} is not right for an active triplet: differentiate ||a - p||^2 - ||a - n||^2")
    return "grad_a = 2(n - p), grad_p = 2(p - a), grad_n = 2(a - n) when active, all 0 when not; they sum to 0"


__all__ = ["check_collapse_training", "check_triplet_gradients"]
