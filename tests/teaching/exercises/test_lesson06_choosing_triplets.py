"""The exercise checks of lesson 6, choosing triplets: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface import mining
from tinyface.kernels import numpy_ref
from tinyface.teaching.exercises import lesson06_choosing_triplets as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_semihard_negatives(unanswered)) == "unanswered"
    assert status(ex.check_batch_hard(unanswered)) == "unanswered"
    assert status(ex.check_batch_hard_weights(unanswered)) == "unanswered"
    assert status(ex.check_fraction_active(unanswered)) == "unanswered"


def semihard(d, labels, farther=np.greater, fallback="easiest"):
    """Online semi-hard selection by loops, one row per anchor-positive pair; `farther` and `fallback` let the
    tests write the usual mistakes ("skip" drops the pair)."""
    rows = []
    for a in range(len(labels)):
        negatives = np.flatnonzero(labels != labels[a])
        for p in np.flatnonzero(labels == labels[a]):
            if p == a:
                continue
            candidates = negatives[farther(d[a, negatives], d[a, p])]
            if len(candidates):
                rows.append([a, p, candidates[np.argmin(d[a, candidates])]])
            elif fallback == "easiest":
                rows.append([a, p, negatives[np.argmax(d[a, negatives])]])
            elif fallback == "hardest":
                rows.append([a, p, negatives[np.argmin(d[a, negatives])]])
    return np.array(rows)


def test_check_semihard_negatives(status):
    assert status(ex.check_semihard_negatives(semihard)) == "right"

    def reference(d, labels):
        pairs, negatives = numpy_ref.semihard_negatives(d, labels)
        return np.column_stack([pairs, negatives])

    assert status(ex.check_semihard_negatives(reference)) == "right"
    shuffled = ex.check_semihard_negatives(lambda d, labels: semihard(d, labels)[::-1])  # any order of rows
    assert status(shuffled) == "right"


def test_check_semihard_negatives_rejects_the_wrong_fallbacks():
    assert "FARTHEST negative for them" in ex.check_semihard_negatives(
        lambda d, labels: semihard(d, labels, fallback="skip")).message
    assert "not its nearest" in ex.check_semihard_negatives(
        lambda d, labels: semihard(d, labels, fallback="hardest")).message


def test_check_semihard_negatives_rejects_the_wrong_rules():
    assert "d_an > d_ap" in ex.check_semihard_negatives(lambda d, labels: semihard(d, labels, np.greater_equal)).message
    anything = ex.check_semihard_negatives(lambda d, labels: semihard(d, labels, lambda an, ap: an == an))
    assert "FARTHER than the positive" in anything.message

    def highest_index(d, labels):  # the nearest farther negative, but the last one at a tie
        rows = semihard(d, labels)
        for row in rows:
            a, p = row[0], row[1]
            candidates = np.flatnonzero((labels != labels[a]) & (d[a] > d[a, p]))
            if len(candidates):
                row[2] = candidates[d[a, candidates] == d[a, candidates].min()][-1]
        return rows

    assert "lowest index" in ex.check_semihard_negatives(highest_index).message


def test_check_semihard_negatives_rejects_malformed_triplets():
    def with_self_pairs(d, labels):
        rows = semihard(d, labels)
        rows[0, 1] = rows[0, 0]
        return rows

    def one_per_anchor(d, labels):
        rows = semihard(d, labels)
        return rows[np.unique(rows[:, 0], return_index=True)[1]]

    assert "ANOTHER photo" in ex.check_semihard_negatives(with_self_pairs).message
    assert "every anchor-positive pair gets one" in ex.check_semihard_negatives(one_per_anchor).message
    assert "two triplets" in ex.check_semihard_negatives(lambda d, labels: np.repeat(semihard(d, labels), 2, 0)).message
    assert "(T, 3)" in ex.check_semihard_negatives(lambda d, labels: semihard(d, labels)[:, :2]).message


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


def weights(d, labels, margin):
    anchors, positives, negatives = mining.batch_hard_triplets(d, labels).T
    active = d[anchors, positives] - d[anchors, negatives] + margin > 0
    w = np.zeros_like(d)
    w[anchors[active], positives[active]] = 1 / len(labels)
    w[anchors[active], negatives[active]] = -1 / len(labels)
    return w


def test_check_batch_hard_weights(status):
    assert status(ex.check_batch_hard_weights(weights)) == "right"
    symmetric = ex.check_batch_hard_weights(lambda d, labels, m: (weights(d, labels, m) + weights(d, labels, m).T) / 2)
    assert status(symmetric) == "right"  # the same loss: d is symmetric


def test_check_batch_hard_weights_test_batch_has_active_and_easy_anchors():
    verdict = ex.check_batch_hard_weights(weights)
    active = int(verdict.message.split()[1])  # "right: N of the 12 anchors are active; ..."
    assert 0 < active < 12


def test_check_batch_hard_weights_rejects_the_usual_slips():
    def every_anchor(d, labels, margin):  # the hinge forgotten: easy anchors weighted too
        anchors, positives, negatives = mining.batch_hard_triplets(d, labels).T
        w = np.zeros_like(d)
        w[anchors, positives], w[anchors, negatives] = 1 / len(labels), -1 / len(labels)
        return w

    assert "MEAN" in ex.check_batch_hard_weights(lambda d, labels, m: weights(d, labels, m) * len(labels)).message
    assert "swapped" in ex.check_batch_hard_weights(lambda d, labels, m: -weights(d, labels, m)).message
    assert "twice" in ex.check_batch_hard_weights(
        lambda d, labels, m: weights(d, labels, m) + weights(d, labels, m).T).message
    assert "easy one" in ex.check_batch_hard_weights(every_anchor).message
    assert "nearest negative" in ex.check_batch_hard_weights(lambda d, labels, m: weights(-d, labels, m)).message
    assert "shape" in ex.check_batch_hard_weights(lambda d, labels, m: weights(d, labels, m)[:3]).message


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
    def by_kernel(d, labels, margin):  # embeddings whose distances are d: not available, so rebuild from d
        return fraction(d, labels, margin)

    d, labels = ex._mining_batch(64)
    x = np.random.default_rng(0).standard_normal((12, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = numpy_ref.pairwise_sqdist(x)
    assert np.isclose(fraction(d, labels, 0.2), numpy_ref.batch_all_triplet(x, labels, 0.2)[2])
    assert status(ex.check_fraction_active(by_kernel)) == "right"
