import numpy as np
import pytest

from tinyface.eval import Eigenfaces, l2_normalize, open_set_identification, open_set_report, split_gallery


def separated(seed: int, people: int = 10, per_person: int = 4):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(people), per_person)
    centres = np.eye(people, 16) * 3
    return l2_normalize(centres[labels] + 0.01 * rng.normal(size=(len(labels), 16))), labels


def test_separated_people_are_all_identified_without_false_alarms():
    embeddings, labels = separated(0)
    points = open_set_report(embeddings, labels, rng=0, false_alarm_rates=(0.0, 0.1), tau=0.5, trials=3)
    assert [p.condition for p in points] == ["FAR<=0", "FAR<=0.1", "tau=0.5"]
    for point in points:
        assert point.dir_mean == 1.0 and point.dir_std == 0.0
    assert points[0].false_alarm_rate == points[2].false_alarm_rate == 0.0
    assert points[1].false_alarm_rate == pytest.approx(0.1)  # the largest tau allowed: 10% of strangers accepted
    assert points[-1].threshold == 0.5


def test_report_is_seeded_and_validates():
    embeddings, labels = separated(1)
    embeddings = embeddings + np.random.default_rng(2).normal(size=embeddings.shape) * 0.3
    assert open_set_report(embeddings, labels, rng=4) == open_set_report(embeddings, labels, rng=4)
    with pytest.raises(ValueError, match="unknown_fraction"):
        open_set_report(embeddings, labels, rng=0, unknown_fraction=1.0)
    with pytest.raises(ValueError, match="need at least 2"):
        open_set_report(embeddings[labels == 0], labels[labels == 0], rng=0)
    with pytest.raises(ValueError, match="no known probes"):
        open_set_report(embeddings, labels, rng=0, per_person=4)


def test_olivetti_eigenfaces_open_set(olivetti):
    held_out = olivetti.labels >= 20  # eigenfaces learnt from other people
    eigenfaces = Eigenfaces(40).fit(olivetti.images[~held_out])
    embeddings, labels = eigenfaces.transform(olivetti.images[held_out]), olivetti.labels[held_out]
    strict, loose = open_set_report(embeddings, labels, rng=0, false_alarm_rates=(0.01, 0.1))
    assert strict.false_alarm_rate <= 0.01 + 1e-12 and loose.false_alarm_rate <= 0.1 + 1e-12
    assert strict.threshold <= loose.threshold and strict.dir_mean <= loose.dir_mean
    assert loose.dir_mean > 0.2  # a random guess among 10 enrolled people, accepted 10% of the time: 0.01


def test_a_single_trial_matches_open_set_identification():
    embeddings, labels = separated(3)
    embeddings = embeddings + np.random.default_rng(5).normal(size=embeddings.shape) * 0.4
    (point,) = open_set_report(embeddings, labels, rng=7, false_alarm_rates=(), tau=1.0, trials=1)
    # the same split, drawn again from the same seed
    rng = np.random.default_rng(7)
    unknown_people = rng.choice(np.unique(labels), 5, replace=False)
    is_unknown = np.isin(labels, unknown_people)
    known = np.flatnonzero(~is_unknown)
    enrolled, probes = split_gallery(labels[known], rng)
    gallery, probes = known[enrolled], np.concatenate([known[probes], np.flatnonzero(is_unknown)])
    expected = open_set_identification(
        embeddings[gallery], labels[gallery], embeddings[probes], labels[probes], tau=1.0
    )
    assert (point.dir_mean, point.false_alarm_rate) == (expected[0], expected[1])
