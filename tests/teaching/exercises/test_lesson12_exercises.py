"""The exercise checks of lesson 12, softmax vs triplet training: right answers accepted, wrong ones rejected with a
hint, placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np
import pytest

from tinyface.teaching.exercises import lesson12_softmax_vs_triplet as ex


def sums_and_counts(centers, x, labels):
    counts = np.bincount(labels, minlength=len(centers)).astype(float)[:, None]
    sums = np.zeros_like(centers)
    np.add.at(sums, labels, x)
    return sums, counts


def wen_update(centers, x, labels, rate):
    sums, counts = sums_and_counts(centers, x, labels)
    return centers - rate * (counts * centers - sums) / (1 + counts)


def looped_update(centers, x, labels, rate):
    new = centers.copy()
    for j in np.unique(labels):
        mine = x[labels == j]
        new[j] = centers[j] - rate * np.sum(centers[j] - mine, axis=0) / (1 + len(mine))
    return new


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_center_update(unanswered)) == "unanswered"
    assert status(ex.check_center_update(lambda centers, x, labels, rate: None)) == "unanswered"
    assert status(ex.check_cross_entropy_gradient(unanswered)) == "unanswered"
    assert status(ex.check_head_parameters(unanswered)) == "unanswered"
    assert status(ex.check_head_parameters(lambda d, c: None)) == "unanswered"


def test_check_center_update(status):
    assert status(ex.check_center_update(wen_update)) == "right"
    assert status(ex.check_center_update(looped_update)) == "right"


def by_n_only(centers, x, labels, rate):
    sums, counts = sums_and_counts(centers, x, labels)
    with np.errstate(invalid="ignore"):
        return centers - rate * (counts * centers - sums) / counts  # 0 / 0 for the absent classes


def by_n_guarded(centers, x, labels, rate):
    sums, counts = sums_and_counts(centers, x, labels)
    return centers - rate * (counts * centers - sums) / np.maximum(counts, 1)


@pytest.mark.parametrize(("answer", "hint"), [
    (by_n_only, "nan or inf"),
    (by_n_guarded, "1 + n_j, not n_j"),
    (lambda centers, x, labels, rate: 2 * centers - wen_update(centers, x, labels, rate), "sign is flipped"),
    (lambda centers, x, labels, rate: wen_update(centers, x, labels, 1.0), "rate is missing"),
    (lambda centers, x, labels, rate: wen_update(centers, x, labels, rate / 2), "absent from the batch are right"),
    (lambda centers, x, labels, rate: centers - rate * (centers - x.mean(axis=0)), "must keep its center"),
    (lambda centers, x, labels, rate: wen_update(centers, x, labels, rate)[:3], "shape"),
])
def test_check_center_update_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_center_update(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def onehot(labels, classes):
    return np.eye(classes)[labels]


def test_check_cross_entropy_gradient(status):
    def right(z, labels):
        return (softmax(z) - onehot(labels, z.shape[1])) / len(labels)

    def looped(z, labels):
        grad = np.zeros_like(z)
        for i, row in enumerate(z):
            p = np.exp(row - row.max())
            grad[i] = p / p.sum()
            grad[i, labels[i]] -= 1
        return grad / len(z)

    assert status(ex.check_cross_entropy_gradient(right)) == "right"
    assert status(ex.check_cross_entropy_gradient(looped)) == "right"


def unshifted(z, labels):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True) - onehot(labels, z.shape[1])) / len(labels)


@pytest.mark.parametrize(("answer", "hint"), [
    (unshifted, "overflows"),
    (lambda z, labels: softmax(z) - onehot(labels, z.shape[1]), "SUM over the batch"),
    (lambda z, labels: (onehot(labels, z.shape[1]) - softmax(z)) / len(labels), "sign is flipped"),
    (lambda z, labels: softmax(z) / len(labels), "softmax(z) alone"),
    (lambda z, labels: (softmax(z.T).T - onehot(labels, z.shape[1])) / len(labels), "axis=1"),
    (lambda z, labels: softmax(z)[:, :2], "shape"),
])
def test_check_cross_entropy_gradient_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_cross_entropy_gradient(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def test_check_head_parameters(status):
    assert status(ex.check_head_parameters(lambda d, c: d * c + c)) == "right"
    assert status(ex.check_head_parameters(lambda d, c: (d + 1) * c)) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda d, c: d * c, "also has a bias"),
    (lambda d, c: d * c + d, "per OUTPUT"),
    (lambda d, c: (d + 1) * (c + 1), "per OUTPUT"),
    (lambda d, c: d + c, "every input to every output"),
    (lambda d, c: d * c * 2, "parameters, you gave"),
    (lambda d, c: 1 / 0, "raised ZeroDivisionError"),
])
def test_check_head_parameters_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_head_parameters(answer)
    assert status(verdict) == "wrong" and hint in verdict.message
