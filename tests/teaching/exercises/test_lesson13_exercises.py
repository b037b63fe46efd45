"""The exercise checks of lesson 13, closing the gap: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np
import pytest

from tinyface import mining
from tinyface.teaching.exercises import lesson13_closing_the_gap as ex


def semihard_fraction(d, labels, alpha, low=np.greater, high=np.less, margin=True, diagonal=False):
    """The right answer with masks, and (through the options) the slips the check should name."""
    same = labels[:, None] == labels[None, :]
    positive = same if diagonal else same & ~np.eye(len(labels), dtype=bool)
    found = []
    for a, p in zip(*np.nonzero(positive), strict=True):
        n = ~same[a]
        band = low(d[a, n], d[a, p]) & (high(d[a, n], d[a, p] + alpha) if margin else True)
        found.append(np.any(band))
    return np.mean(found)


def semihard_by_mining(d, labels, alpha):
    """Another right answer: tinyface's semi-hard selection takes the nearest negative with d_an > d_ap; the pair
    has a semi-hard negative when that one is inside the margin."""
    triplets = mining.semihard_negative_triplets(d, labels, fallback="skip")
    a, p, n = triplets.T
    inside = np.zeros(len(labels) * len(labels), dtype=bool)
    inside[a * len(labels) + p] = d[a, n] < d[a, p] + alpha
    positive = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    return inside.reshape(d.shape)[positive].mean()


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_semihard_fraction(unanswered)) == "unanswered"
    assert status(ex.check_batch_counts(unanswered)) == "unanswered"
    assert status(ex.check_semihard_chance(unanswered)) == "unanswered"
    assert status(ex.check_semihard_fraction(None)) == "unanswered"


def test_check_semihard_fraction_accepts_right_answers(status):
    assert status(ex.check_semihard_fraction(semihard_fraction)) == "right"
    assert status(ex.check_semihard_fraction(semihard_by_mining)) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda d, y, alpha: semihard_fraction(d, y, alpha, margin=False), "within the margin"),
    (lambda d, y, alpha: semihard_fraction(d, y, alpha, low=np.greater_equal, high=np.less_equal), "both ends"),
    (lambda d, y, alpha: semihard_fraction(d, y, alpha, low=np.greater_equal), "d_an = d_ap"),
    (lambda d, y, alpha: semihard_fraction(d, y, alpha, high=np.less_equal), "upper end is strict"),
    (lambda d, y, alpha: semihard_fraction(d, y, alpha, diagonal=True), "a == p"),
    (lambda d, y, alpha: semihard_fraction(d, y, alpha) * 0.9, "the fraction is"),
    (lambda d, y, alpha: 3.0, "in [0, 1]"),
    (lambda d, y, alpha: [0.1, 0.2], "one number"),
])
def test_check_semihard_fraction_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_semihard_fraction(answer)
    assert status(verdict) == "wrong" and hint in verdict.message, verdict


def test_check_semihard_fraction_rejects_unordered_pairs_triplets_and_counts(status):
    def unordered(d, labels, alpha):
        same = labels[:, None] == labels[None, :]
        found = [np.any((d[a, ~same[a]] > d[a, p]) & (d[a, ~same[a]] < d[a, p] + alpha))
                 for a, p in zip(*np.nonzero(np.triu(same, 1)), strict=True)]
        return np.mean(found)

    def per_triplet(d, labels, alpha):
        same = labels[:, None] == labels[None, :]
        a, p = np.nonzero(same & ~np.eye(len(labels), dtype=bool))
        d_an = np.where(~same[a], d[a], np.nan)
        with np.errstate(invalid="ignore"):
            band = (d_an > d[a, p][:, None]) & (d_an < d[a, p][:, None] + alpha)
        return band.sum() / (~same[a]).sum()

    def count(d, labels, alpha):
        return semihard_fraction(d, labels, alpha) * np.sum((labels[:, None] == labels[None, :])
                                                            & ~np.eye(len(labels), dtype=bool))

    for answer, hint in ((unordered, "ordered pairs"), (per_triplet, "triplets"), (count, "number of pairs")):
        verdict = ex.check_semihard_fraction(answer)
        assert status(verdict) == "wrong" and hint in verdict.message, verdict


def test_check_semihard_fraction_reports_an_error_in_the_answer(status):
    verdict = ex.check_semihard_fraction(lambda d, labels, alpha: d[labels])
    assert status(verdict) == "wrong"


def test_check_batch_counts(status):
    def counts(p, k):
        return p * k * (k - 1), p * k * (k - 1) * (p - 1) * k

    assert status(ex.check_batch_counts(counts)) == "right"
    assert "3,704" not in ex.check_batch_counts(counts).message
    assert "47,616" in ex.check_batch_counts(counts).message


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda p, k: (p * k * (k - 1) * (p - 1) * k, p * k * (k - 1)), "in that order"),
    (lambda p, k: (p * k * (k - 1) // 2, p * k * (k - 1) // 2 * (p - 1) * k), "ordered pairs"),
    (lambda p, k: (p * k * k, p * k * k * (p - 1) * k), "its own positive"),
    (lambda p, k: (p * k * (k - 1), p * k * (k - 1) * (p * k - 1)), "OTHER people"),
    (lambda p, k: (p * k * (k - 1), p * k * (k - 1) * p * k), "OTHER people"),
    (lambda p, k: (p * k * (k - 1), p * k * (k - 1) * (p - 1)), "brings K faces"),
    (lambda p, k: (p * k, p * k * (p - 1) * k), "ordered anchor-positive pairs"),
    (lambda p, k: (p * k * (k - 1), 7), "valid triplets"),
    (lambda p, k: p * k, "pair of numbers"),
])
def test_check_batch_counts_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_batch_counts(answer)
    assert status(verdict) == "wrong" and hint in verdict.message, verdict


def test_check_semihard_chance(status):
    assert status(ex.check_semihard_chance(lambda q, p, k: 1 - (1 - q) ** ((p - 1) * k))) == "right"
    assert status(ex.check_semihard_chance(lambda q, p, k: -np.expm1((p - 1) * k * np.log1p(-q)))) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda q, p, k: 1 - (1 - q) ** (p * k - 1), "B - 1"),
    (lambda q, p, k: 1 - (1 - q) ** (p * k), "B: the whole batch"),
    (lambda q, p, k: 1 - (1 - q) ** (p - 1), "P - 1"),
    (lambda q, p, k: (1 - q) ** ((p - 1) * k), "NO negative"),
    (lambda q, p, k: 1 - q ** ((p - 1) * k), "EVERY negative misses"),
    (lambda q, p, k: (p - 1) * k * q, "union bound"),
    (lambda q, p, k: 0.5, "you gave"),
])
def test_check_semihard_chance_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_semihard_chance(answer)
    assert status(verdict) == "wrong" and hint in verdict.message, verdict
