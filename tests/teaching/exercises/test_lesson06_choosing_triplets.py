"""The exercise checks of lesson 6, choosing triplets: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface import mining
from tinyface.teaching.exercises import lesson06_choosing_triplets as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_semihard_triplets(unanswered)) == "unanswered"
    assert status(ex.check_batch_hard(unanswered)) == "unanswered"
    assert status(ex.check_fraction_active(unanswered)) == "unanswered"


def semihard(d, labels, margin):
    t = mining.all_triplets(labels)
    d_ap, d_an = d[t[:, 0], t[:, 1]], d[t[:, 0], t[:, 2]]
    return t[(d_ap < d_an) & (d_an < d_ap + margin)]


def test_check_semihard_triplets(status):
    assert status(ex.check_semihard_triplets(semihard)) == "right"
    assert status(ex.check_semihard_triplets(mining.semihard_triplets)) == "right"

    def with_hard(d, labels, margin):
        t = mining.all_triplets(labels)
        return t[d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]] + margin]

    assert "hard" in ex.check_semihard_triplets(with_hard).message
    assert status(ex.check_semihard_triplets(lambda d, labels, m: semihard(d, labels, m)[:-1])) == "wrong"


def batch_hard(d, labels):
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    return np.where(positive, d, -np.inf).argmax(axis=1), np.where(~same, d, np.inf).argmin(axis=1)


def test_check_batch_hard(status):
    assert status(ex.check_batch_hard(batch_hard)) == "right"

    def nearest_positive(d, labels):
        same = labels[:, None] == labels[None, :]
        positive = same & ~np.eye(len(labels), dtype=bool)
        return np.where(positive, d, np.inf).argmin(axis=1), batch_hard(d, labels)[1]

    assert "FARTHEST" in ex.check_batch_hard(nearest_positive).message

    def with_self(d, labels):
        same = labels[:, None] == labels[None, :]
        return np.where(same, d, np.inf).argmin(axis=1), batch_hard(d, labels)[1]

    assert "own positive" in ex.check_batch_hard(with_self).message


def fraction(d, labels, margin):
    t = mining.all_triplets(labels)
    return np.mean(d[t[:, 0], t[:, 1]] - d[t[:, 0], t[:, 2]] + margin > 0)


def test_check_fraction_active(status):
    assert status(ex.check_fraction_active(fraction)) == "right"
    assert "INACTIVE" in ex.check_fraction_active(lambda d, labels, m: 1 - fraction(d, labels, m)).message

    def only_hard(d, labels, margin):
        t = mining.all_triplets(labels)
        return np.mean(d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]])

    assert "hard" in ex.check_fraction_active(only_hard).message


def test_check_fraction_active_agrees_with_the_kernel(status):
    from tinyface.kernels import numpy_ref

    def by_kernel(d, labels, margin):  # embeddings whose distances are d: not available, so rebuild from d
        return fraction(d, labels, margin)

    d, labels = ex._mining_batch(64)
    x = np.random.default_rng(0).standard_normal((12, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = numpy_ref.pairwise_sqdist(x)
    assert np.isclose(fraction(d, labels, 0.2), numpy_ref.batch_all_triplet(x, labels, 0.2)[2])
    assert status(ex.check_fraction_active(by_kernel)) == "right"
