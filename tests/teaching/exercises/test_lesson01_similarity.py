"""The exercise checks of lesson 1, the similarity function: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises import lesson01_similarity as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    d, s = np.array([0.1, 0.5]), np.array([True, False])
    assert status(ex.check_centred_distance(unanswered)) == "unanswered"
    assert status(ex.check_far_frr(None, d, s, 0.2)) == "unanswered"
    assert not ex.check_identify(None)


def test_an_error_in_the_students_code_is_a_wrong_answer_not_a_crash(status):
    verdict = ex.check_centred_distance(lambda a, b: 1 / 0)
    assert status(verdict) == "wrong" and "ZeroDivisionError" in verdict.message


def unit(x):
    return x / np.linalg.norm(x)


def centred(a, b):
    x, y = (v.reshape(-1).astype(float) for v in (a, b))
    return np.sum((unit(x - x.mean()) - unit(y - y.mean())) ** 2)


def test_check_centred_distance(status):
    assert status(ex.check_centred_distance(centred)) == "right"

    def by_correlation(a, b):  # the same number by another road: 2 - 2 r
        return 2 - 2 * np.corrcoef(a.reshape(-1), b.reshape(-1))[0, 1]

    assert status(ex.check_centred_distance(by_correlation)) == "right"


def test_check_centred_distance_rejects_the_uncentred_distance():
    def uncentred(a, b):  # section 3's d: blind to a scale, not to an offset
        x, y = (v.reshape(-1).astype(float) for v in (a, b))
        return np.sum((unit(x) - unit(y)) ** 2)

    assert "Subtract each image's own mean" in ex.check_centred_distance(uncentred).message


def test_check_centred_distance_rejects_the_wrong_scaling_and_order():
    def standardised(a, b):  # prewhitened: unit standard deviation, not unit length
        x, y = (v.reshape(-1).astype(float) for v in (a, b))
        return np.sum(((x - x.mean()) / x.std() - (y - y.mean()) / y.std()) ** 2)

    def scaled_then_centred(a, b):
        x, y = (unit(v.reshape(-1).astype(float)) for v in (a, b))
        return np.sum((x - x.mean() - y + y.mean()) ** 2)

    assert "unit LENGTH" in ex.check_centred_distance(standardised).message
    assert "mean first" in ex.check_centred_distance(scaled_then_centred).message
    assert "square" in ex.check_centred_distance(lambda a, b: np.sqrt(centred(a, b))).message


def test_check_far_frr(status):
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    s = np.array([True, True, False, True, False, False])
    assert status(ex.check_far_frr((1 / 3, 1 / 3), d, s, 0.35)) == "right"
    assert "swapped" in ex.check_far_frr((1 / 3, 0.0), d, s, 0.2).message
    assert status(ex.check_far_frr((1 / 3, 2 / 3), d, s, 0.35)) == "wrong"
    assert status(ex.check_far_frr(0.3, d, s, 0.35)) == "wrong"


def test_check_identify(status):
    def right(probe, gallery, labels, tau):
        d = np.sum((gallery - probe) ** 2, axis=1)
        return int(labels[d.argmin()]) if d.min() <= tau else -1

    assert status(ex.check_identify(right)) == "right"
    index = ex.check_identify(lambda p, g, labels, tau: int(np.sum((g - p) ** 2, axis=1).argmin()))
    assert "label" in index.message
    closed_set = ex.check_identify(lambda p, g, labels, tau: int(labels[np.sum((g - p) ** 2, axis=1).argmin()]))
    assert "-1" in closed_set.message


def test_check_identify_accepts_the_expanded_distance(status):
    def via_dot_product(probe, gallery, labels, tau):
        d = 2 - 2 * gallery @ probe  # unit vectors: ||p - g||^2 = 2 - 2 p.g
        return int(labels[d.argmin()]) if d.min() <= tau else -1

    assert status(ex.check_identify(via_dot_product)) == "right"


def test_check_identify_rejects_the_plain_distance():
    def plain(probe, gallery, labels, tau):
        d = np.sqrt(np.sum((gallery - probe) ** 2, axis=1))
        return int(labels[d.argmin()]) if d.min() <= tau else -1

    assert "SQUARED" in ex.check_identify(plain).message


def test_check_identify_rejects_a_strict_threshold():
    def strict(probe, gallery, labels, tau):
        d = np.sum((gallery - probe) ** 2, axis=1)
        return int(labels[d.argmin()]) if d.min() < tau else -1

    assert "d <= tau" in ex.check_identify(strict).message


def test_check_identify_rejects_a_plain_distance_with_a_strict_threshold(status):
    def both(probe, gallery, labels, tau):
        d = np.sqrt(np.sum((gallery - probe) ** 2, axis=1))
        return int(labels[d.argmin()]) if d.min() < tau else -1

    assert status(ex.check_identify(both)) == "wrong"
