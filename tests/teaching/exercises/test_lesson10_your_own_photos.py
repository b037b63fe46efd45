"""The exercise checks of lesson 10, your own photos: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np
import pytest

from tinyface.eval import l2_normalize
from tinyface.face.gallery import UNKNOWN, Gallery
from tinyface.teaching.exercises import lesson10_your_own_photos as ex


def open_set(seed: int, people: int = 6, strangers: int = 120, spread: float = 0.35):
    """(gallery, probes, names): `people` enrolled with 3 faces each, 2 more photos of each as known probes,
    and `strangers` probes named "unknown"; embeddings of dimension 16."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(people, 16)))

    def photos(count: int) -> np.ndarray:
        return l2_normalize(np.repeat(centres, count, axis=0) + spread * rng.normal(size=(people * count, 16)) / 4)

    names = [f"person_{p}" for p in range(people)]
    gallery = Gallery().enroll(photos(3), np.repeat(names, 3).tolist())
    probes = np.concatenate([photos(2), l2_normalize(rng.normal(size=(strangers, 16)))]).astype(np.float32)
    return gallery, probes, np.repeat(names, 2).tolist() + [UNKNOWN] * strangers


def nearest_stranger_distances(gallery, probes, names):
    return np.sort(gallery.identity_distances(probes).min(axis=1)[np.asarray(names) == UNKNOWN])


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_false_alarm_rate(unanswered)) == "unanswered"
    assert status(ex.check_per_person_far(unanswered)) == "unanswered"
    assert status(ex.check_open_set_tau(None, open_set(0), 0.05)) == "unanswered"
    assert status(ex.check_open_set_tau(..., open_set(0), 0.05, test=open_set(1))) == "unanswered"


def test_check_false_alarm_rate(status):
    def looped(d, tau):
        return sum(any(row <= tau) for row in d) / len(d)

    assert status(ex.check_false_alarm_rate(lambda d, tau: np.mean(d.min(axis=1) <= tau))) == "right"
    assert status(ex.check_false_alarm_rate(looped)) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda d, tau: np.mean(d <= tau), "the 1:1 FAR"),
    (lambda d, tau: np.mean(d.min(axis=1) > tau), "rejected"),
    (lambda d, tau: np.mean(d.max(axis=1) <= tau), "one is enough"),
    (lambda d, tau: np.mean(d.min(axis=0) <= tau), "min over axis 1"),
    (lambda d, tau: np.sum(d.min(axis=1) <= tau), "a count"),
    (lambda d, tau: np.mean(d.min(axis=1) <= tau / 2), "the false alarm rate is"),
    (lambda d, tau: d.min(axis=1) <= tau, "one number"),
])
def test_check_false_alarm_rate_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_false_alarm_rate(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def test_check_per_person_far(status):
    assert status(ex.check_per_person_far(lambda target, k: 1 - (1 - target) ** (1 / k))) == "right"
    assert status(ex.check_per_person_far(lambda target, k: -np.expm1(np.log1p(-target) / k))) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda target, k: target / k, "union bound"),
    (lambda target, k: target ** (1 / k), "k-th root of (1 - target)"),
    (lambda target, k: 1 - target ** (1 / k), "k-th root of (1 - target)"),
    (lambda target, k: (1 - target) ** (1 / k), "1 - p"),
    (lambda target, k: 1 - (1 - target) ** k, "a stranger checked against"),
    (lambda target, k: k / target, "a probability"),
])
def test_check_per_person_far_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_per_person_far(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def test_check_per_person_far_reports_the_students_error(status):
    def broken(target, k):
        raise ZeroDivisionError("oops")

    verdict = ex.check_per_person_far(broken)
    assert status(verdict) == "wrong" and "ZeroDivisionError" in verdict.message


def most_tau(gallery, probes, names, target):
    """The largest tau keeping the false alarm rate within target: just below the first stranger too many."""
    strangers = nearest_stranger_distances(gallery, probes, names)
    allowed = int(np.floor(target * len(strangers)))
    return float(np.nextafter(strangers[allowed], -np.inf))


def test_check_open_set_tau(status):
    held_out, test = open_set(0), open_set(1)
    verdict = ex.check_open_set_tau(most_tau(*held_out, 0.05), held_out, 0.05, test=test)
    assert status(verdict) == "right" and "never used to choose it" in verdict.message
    assert status(ex.check_open_set_tau(most_tau(*held_out, 0.05), held_out, 0.05)) == "right"


def test_check_open_set_tau_agrees_with_the_library(status):
    from tinyface.eval import open_set_identification

    gallery, probes, names = open_set(2)
    known = np.asarray(names) != UNKNOWN
    labels = {name: k for k, name in enumerate(gallery.names)}
    probe_labels = np.array([labels.get(name, -1) for name in names])
    tau = open_set_identification(gallery.embeddings, gallery.labels, probes, probe_labels,
                                  false_alarm_rate=0.02).threshold
    assert known.any() and status(ex.check_open_set_tau(tau, (gallery, probes, names), 0.02)) == "right"


def test_check_open_set_tau_rejects_one_stranger_too_many():
    held_out = open_set(0)
    strangers = nearest_stranger_distances(*held_out)
    first_too_many = strangers[int(np.floor(0.05 * len(strangers)))]
    assert "one stranger too many" in ex.check_open_set_tau(first_too_many, held_out, 0.05).message


def test_check_open_set_tau_rejects_a_tau_chosen_on_every_comparison():
    gallery, probes, names = held_out = open_set(0)
    every = gallery.identity_distances(probes)[np.asarray(names) == UNKNOWN].ravel()
    tau = float(np.quantile(every, 0.05))  # 5% of the (stranger, person) comparisons, not of the strangers
    verdict = ex.check_open_set_tau(tau, held_out, 0.05)
    assert not verdict and "NEAREST enrolled person" in verdict.message


def test_check_open_set_tau_rejects_a_tau_chosen_on_the_test_strangers():
    held_out, test = open_set(0), open_set(3, strangers=60, spread=0.2)
    tau = most_tau(*test, 0.05)
    assert tau > most_tau(*held_out, 0.05)  # the test strangers allow more: the slip is visible
    assert "chosen on the test strangers" in ex.check_open_set_tau(tau, held_out, 0.05, test=test).message


def test_check_open_set_tau_rejects_a_tau_short_of_the_most_dir():
    held_out = open_set(0)
    verdict = ex.check_open_set_tau(0.05, held_out, 0.05)
    assert not verdict and "DIR is only" in verdict.message
