"""Lesson 12, softmax vs triplet training: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.losses import cross_entropy, update_centers
from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _Wrong
from tinyface.tensor import Tensor


def _batch(seed: int, classes: int = 6, dim: int = 4, size: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centers (C, D), embeddings (N, D), labels (N,)) float64: a batch in which some classes appear several
    times, one appears exactly once (where the 1 of 1 + n_j matters most) and some are absent."""
    rng = np.random.default_rng(seed)
    labels = np.concatenate([[0, 0, 0, 1, 1], rng.choice([3, 4], size=size - 6), [2]])  # classes 5 (and 3 or 4)
    rng.shuffle(labels)
    return rng.normal(size=(classes, dim)), rng.normal(size=(size, dim)) + 1.0, labels


def _moved_by(centers: np.ndarray, x: np.ndarray, labels: np.ndarray, rate: float, extra: int) -> np.ndarray:
    """The update with delta_j = sum_i (c_j - x_i) / (extra + n_j), over the classes in the batch."""
    counts = np.bincount(labels, minlength=len(centers)).astype(np.float64)[:, None]
    sums = np.zeros_like(centers)
    np.add.at(sums, labels, x)
    delta = np.where(counts > 0, (counts * centers - sums) / np.maximum(extra + counts, 1), 0.0)
    return centers - rate * delta


@_check
def check_center_update(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]) -> str:
    """fn(centers, x, labels, rate) -> the new centers (C, D) after Wen et al.'s update:
    delta_j = sum_(i: y_i = j) (c_j - x_i) / (1 + n_j),  c_j <- c_j - rate * delta_j."""
    for seed, rate in ((120, 0.5), (121, 0.3), (122, 1.0)):
        centers, x, labels = _batch(seed)
        expected = update_centers(centers, x, labels, rate)
        answer = _given(_call(fn, centers.copy(), x.copy(), labels.copy(), rate))
        got = _array(answer, centers.shape, "the new centers")
        if np.allclose(got, expected):
            continue
        if not np.all(np.isfinite(got)):
            raise _Wrong("some centers are nan or inf: a class absent from the batch has n_j = 0, so a division by "
                         "n_j alone is 0 / 0. With 1 + n_j it is 0: the center stays where it was")
        if np.allclose(got, _moved_by(centers, x, labels, rate, extra=0)):
            raise _Wrong("divide by 1 + n_j, not n_j: with n_j alone a class seen once (and rate 1) jumps onto its "
                         "one example; the 1 damps that")
        if np.allclose(got, 2 * centers - expected):
            raise _Wrong("the centers move away from their embeddings: the sign is flipped. delta_j = "
                         "sum (c_j - x_i) / (1 + n_j), and c_j <- c_j - rate * delta_j")
        if not np.isclose(rate, 1.0) and np.allclose(got, update_centers(centers, x, labels, 1.0)):
            raise _Wrong(f"the rate is missing: c_j <- c_j - rate * delta_j with rate = {rate}")
        if np.allclose(got[np.bincount(labels, minlength=len(centers)) == 0],
                       centers[np.bincount(labels, minlength=len(centers)) == 0]):
            raise _Wrong("the classes absent from the batch are right (unchanged), the others not: delta_j sums "
                         "c_j - x_i over the batch's examples of class j, divided by 1 + n_j")
        raise _Wrong("a class absent from the batch must keep its center, and the others move towards the mean of "
                     "their embeddings: check the sum over i with y_i = j")
    return ("each center moves a fraction of the way towards its class's embeddings in the batch, and no further "
            "than n_j / (1 + n_j) of the way even at rate 1")


def _logits(seed: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return scale * rng.normal(size=(8, 5)), rng.integers(0, 5, size=8)


def _gradient(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = Tensor(logits, requires_grad=True)
    cross_entropy(z, labels, reduction="mean").backward()
    return np.asarray(z.grad, dtype=np.float64)


@_check
def check_cross_entropy_gradient(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(logits, labels) -> dL/dz (N, C) of the mean cross-entropy L = 1/N sum_i (log sum_c exp(z_ic) - z_iy_i):
    (softmax(z_i) - onehot(y_i)) / N, computed without overflow for large logits."""
    for seed, scale in ((123, 1.0), (124, 3.0), (125, 1000.0)):
        logits, labels = _logits(seed, scale)
        expected = _gradient(logits, labels)
        got = _array(_call(fn, logits.copy(), labels.copy()), logits.shape, "the gradient")
        if not np.all(np.isfinite(got)):
            raise _Wrong(f"with logits as large as {np.abs(logits).max():.0f} your gradient holds nan or inf: "
                         "exp(1000) overflows. Subtract each row's largest logit before exp (softmax does not "
                         "change: the factor exp(-max) cancels)")
        if np.allclose(got, expected, atol=1e-9):
            continue
        n = len(labels)
        if np.allclose(got, n * expected, atol=1e-9):
            raise _Wrong(f"that is the gradient of the SUM over the batch; the loss is the mean, so divide by "
                         f"N = {n}")
        if np.allclose(got, -expected, atol=1e-9) or np.allclose(got, -n * expected, atol=1e-9):
            raise _Wrong("the sign is flipped: dL/dz = softmax(z) - onehot(y), positive for the wrong classes")
        onehot = np.eye(logits.shape[1])[labels]
        if np.allclose(got, (n * expected + onehot) / n, atol=1e-9) or np.allclose(got, n * expected + onehot):
            raise _Wrong("that is softmax(z) alone: the label's logit also enters L directly, with -z_iy_i, which "
                         "subtracts 1 at the label: softmax(z) - onehot(y)")
        raise _Wrong("not (softmax(z) - onehot(y)) / N: softmax along each row (axis=1), one-hot of the labels")
    return "(softmax(z) - onehot(y)) / N: each row pushes its label's logit up and every other logit down"


@_check
def check_head_parameters(fn: Callable[[int, int], int]) -> str:
    """fn(D, C) -> the parameters of the softmax head, a Linear layer from D embedding dimensions to C classes:
    a D x C weight matrix and C biases."""
    from tinyface import nn

    for dim, classes in ((128, 30), (64, 7), (128, 4038)):
        expected = nn.Linear(dim, classes, rng=np.random.default_rng(0)).num_parameters()
        got = _given(_call(fn, dim, classes))
        if got == expected:
            continue
        if got == dim * classes:
            raise _Wrong("the weights are there; each class also has a bias: D * C + C")
        if got == (dim + 1) * (classes + 1) or got == dim * classes + dim:
            raise _Wrong("one bias per OUTPUT (per class), not per input dimension: D * C + C")
        if got == dim + classes:
            raise _Wrong("a Linear layer joins every input to every output: D * C weights, plus C biases")
        raise _Wrong(f"a head from D = {dim} to C = {classes} classes has {expected} parameters, you gave {got}")
    return "D * C + C: it grows with the number of people, while the network below it does not"


__all__ = ["check_center_update", "check_cross_entropy_gradient", "check_head_parameters"]
