"""The exercise checks of lesson 1, the similarity function: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises import lesson01_similarity as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    d, s = np.array([0.1, 0.5]), np.array([True, False])
    assert status(ex.check_squared_distance(unanswered)) == "unanswered"
    assert status(ex.check_far_frr(None, d, s, 0.2)) == "unanswered"
    assert not ex.check_identify(None)


def test_an_error_in_the_students_code_is_a_wrong_answer_not_a_crash(status):
    verdict = ex.check_squared_distance(lambda a, b: 1 / 0)
    assert status(verdict) == "wrong" and "ZeroDivisionError" in verdict.message


def test_check_squared_distance(status):
    def right(a, b):
        x, y = (v.reshape(-1).astype(float) for v in (a, b))
        return np.sum((x / np.linalg.norm(x) - y / np.linalg.norm(y)) ** 2)

    def not_normalised(a, b):
        return np.sum((a.reshape(-1).astype(float) - b.reshape(-1).astype(float)) ** 2)

    assert status(ex.check_squared_distance(right)) == "right"
    assert status(ex.check_squared_distance(lambda a, b: np.sqrt(right(a, b)))) == "wrong"
    assert "unit length" in ex.check_squared_distance(not_normalised).message


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
