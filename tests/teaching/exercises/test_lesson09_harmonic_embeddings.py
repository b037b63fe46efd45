"""The exercise checks of lesson 9, harmonic embeddings: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np
import pytest

from tinyface.losses import semihard_triplet_loss
from tinyface.teaching.exercises import lesson09_harmonic_embeddings as ex


def semihard(x, labels, margin):
    return float(semihard_triplet_loss(x, labels, margin).data)


def union(new, old, labels):
    return np.concatenate([old, new]), np.concatenate([labels, labels])


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_harmonic_loss(unanswered)) == "unanswered"
    assert status(ex.check_update_gain(unanswered)) == "unanswered"
    assert status(ex.check_mixed_distances(unanswered)) == "unanswered"
    assert status(ex.check_mixed_distances(lambda old, new, i, j: None)) == "unanswered"


def test_check_harmonic_loss(status):
    assert status(ex.check_harmonic_loss(lambda new, old, labels, margin: semihard(*union(new, old, labels),
                                                                                   margin))) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda new, old, labels, margin: semihard(new, labels, margin), "new embeddings alone"),
    (lambda new, old, labels, margin: semihard(old, labels, margin), "old embeddings alone"),
    (lambda new, old, labels, margin: semihard(new, labels, margin) + semihard(old, labels, margin), "ONE batch"),
    (lambda new, old, labels, margin: semihard(*union(new, old, labels), 0.0), "margin is missing"),
    (lambda new, old, labels, margin: 2 * semihard(*union(new, old, labels), margin), "the loss on the union is"),
    (lambda new, old, labels, margin: semihard(np.concatenate([old, new]), np.arange(2 * len(labels)), margin),
     "raised ValueError"),
])
def test_check_harmonic_loss_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_harmonic_loss(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def test_check_update_gain(status):
    assert status(ex.check_update_gain(lambda old, new, mixed: (mixed - old) / (new - old))) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda old, new, mixed: (new - mixed) / (new - old), "1 - G"),
    (lambda old, new, mixed: (old - mixed) / (new - old), "sign is flipped"),
    (lambda old, new, mixed: (mixed - old) / new, "new - old"),
    (lambda old, new, mixed: mixed - old, "new - old"),
    (lambda old, new, mixed: mixed / new, "ratio of accuracies"),
    (lambda old, new, mixed: (mixed - new) / (mixed - old), "G ="),
    (lambda old, new, mixed: [old, new, mixed], "one number"),
])
def test_check_update_gain_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_update_gain(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def cross(a, b, i, j):
    return np.sum((a[i] - b[j]) ** 2, axis=1)


def test_check_mixed_distances(status):
    def looped(old, new, i, j):
        first = [float(np.dot(old[a] - new[b], old[a] - new[b])) for a, b in zip(i, j, strict=True)]
        return np.array(first + [float(np.dot(new[a] - old[b], new[a] - old[b])) for a, b in zip(i, j, strict=True)])

    def vectorised(old, new, i, j):
        return np.concatenate([cross(old, new, i, j), cross(new, old, i, j)])

    assert status(ex.check_mixed_distances(vectorised)) == "right"
    assert status(ex.check_mixed_distances(looped)) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda old, new, i, j: cross(old, new, i, j), "one order only"),
    (lambda old, new, i, j: (cross(old, new, i, j) + cross(new, old, i, j)) / 2, "rather than average"),
    (lambda old, new, i, j: np.concatenate([cross(new, old, i, j), cross(old, new, i, j)]), "other way round"),
    (lambda old, new, i, j: np.sqrt(np.concatenate([cross(old, new, i, j), cross(new, old, i, j)])), "plain L2"),
    (lambda old, new, i, j: np.concatenate([cross(old, new, i, j)] * 2), "one order twice"),
    (lambda old, new, i, j: np.concatenate([cross(old, old, i, j), cross(new, new, i, j)]), "old/old and new/new"),
    (lambda old, new, i, j: np.concatenate([cross(old, new, i, i), cross(new, old, i, i)]), "not the squared"),
    (lambda old, new, i, j: cross(old, new, i, j)[:3], "shape"),
])
def test_check_mixed_distances_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_mixed_distances(answer)
    assert status(verdict) == "wrong" and hint in verdict.message
