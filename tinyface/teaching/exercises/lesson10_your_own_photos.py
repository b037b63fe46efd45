"""Lesson 10, your own photos: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tinyface.face.gallery import UNKNOWN, Gallery
from tinyface.teaching.exercises.verdict import _call, _check, _number, _Wrong


def _stranger_distances(seed: int, strangers: int, people: int) -> tuple[np.ndarray, float]:
    """(strangers, people) squared distances of strangers to enrolled people, without ties, and a tau between
    two of them that accepts some strangers but not all. One stranger in ten looks like everyone (all its
    distances small), as real strangers' distances are correlated."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.9, 2.6, (strangers, people))
    d[rng.permutation(strangers)[: strangers // 10]] = rng.uniform(0.4, 0.85, (strangers // 10, people))
    nearest = np.sort(d.min(axis=1))
    return d, float((nearest[strangers // 4] + nearest[strangers // 4 + 1]) / 2)


@_check
def check_false_alarm_rate(fn: Callable[[np.ndarray, float], float]) -> str:
    """fn(d, tau) -> the open-set false alarm rate: d (S, K) holds the squared distance of each of S strangers to
    each of K enrolled people, and a stranger is a false alarm when ANY enrolled person is within tau, i.e. when
    its nearest one is: the fraction of the S rows with min_k d[s, k] <= tau."""
    for seed, strangers, people in ((100, 60, 7), (101, 45, 30), (102, 200, 1)):
        d, tau = _stranger_distances(seed, strangers, people)
        expected = float(np.mean(d.min(axis=1) <= tau))
        got = _number(_call(fn, d.copy(), tau), "the false alarm rate")
        if np.isclose(got, expected, atol=1e-12):
            continue
        if np.isclose(got, np.mean(d <= tau)):
            raise _Wrong("that is the fraction of (stranger, person) comparisons within tau, the 1:1 FAR; a "
                         "stranger is a false alarm as soon as ONE enrolled person is within tau: take each row's "
                         "nearest person (min over axis 1)")
        if np.isclose(got, 1 - expected):
            raise _Wrong("that is the fraction of strangers rejected: the false alarm rate counts those accepted "
                         "(nearest d <= tau)")
        if np.isclose(got, np.mean(d.max(axis=1) <= tau)):
            raise _Wrong("a stranger need not be close to EVERY enrolled person to be accepted: one is enough (the "
                         "nearest, min over axis 1, not max)")
        if np.isclose(got, np.mean(d.min(axis=0) <= tau)):
            raise _Wrong("rows are strangers and columns people: take the min over axis 1 (each stranger's nearest "
                         "person), then the mean over the strangers")
        if np.isclose(got, expected * strangers):
            raise _Wrong("that is a count of strangers: divide by the number of strangers for a rate")
        raise _Wrong(f"for {strangers} strangers and {people} people the false alarm rate is {expected:.4f}, you gave "
                     f"{got:.4f}")
    return "a stranger is let in when its nearest enrolled person is within tau"


@_check
def check_per_person_far(fn: Callable[[float, int], float]) -> str:
    """fn(target, k) -> p: the 1:1 FAR each comparison may have so that a stranger checked against k enrolled
    people, independently, is let in with probability `target`: solve 1 - (1 - p)^k = target, so
    p = 1 - (1 - target)^(1/k)."""
    for target, k in ((0.05, 10), (0.01, 100), (0.2, 7), (0.05, 1), (0.5, 1000)):
        expected = 1 - (1 - target) ** (1 / k)
        got = _number(_call(fn, target, k), "p")
        if np.isclose(got, expected, rtol=1e-9, atol=0):
            continue
        if np.isclose(got, 1 - expected, rtol=1e-9, atol=0):
            raise _Wrong("that is 1 - p, the probability that one comparison REJECTS the stranger; p is the "
                         "probability that it lets the stranger in")
        if np.isclose(got, target / k, rtol=1e-9, atol=0):
            raise _Wrong(f"target / k is the union bound (P(any of k) <= k p): close for a small target, but not "
                         f"exact; for target {target} and k = {k} it gives a false alarm rate of "
                         f"{1 - (1 - got) ** k:.5f}. Solve 1 - (1 - p)^k = target for p")
        if np.isclose(got, target ** (1 / k), rtol=1e-9, atol=0) or np.isclose(got, 1 - target ** (1 / k), rtol=1e-9,
                                                                               atol=0):
            raise _Wrong("a stranger gets through unless EVERY comparison rejects it: P(rejected by all k) = "
                         "(1 - p)^k = 1 - target; take the k-th root of (1 - target), not of target")
        if not 0 <= got <= 1:
            raise _Wrong(f"p is a probability, got {got}")
        raise _Wrong(f"with p = {got:.6g}, a stranger checked against k = {k} people is let in with probability "
                     f"1 - (1 - p)^k = {1 - (1 - got) ** k:.6g}, not {target}")
    return ("p = 1 - (1 - target)^(1/K): about target / K, so each enrolled person makes the threshold stricter "
            "(1,000 people and a 1% target: p = 1e-5)")


def _nearest(data: tuple[Gallery, np.ndarray, Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nearest distance, nearest person's name, whether the probe is a stranger) of each probe."""
    gallery, probes, names = data
    d = gallery.identity_distances(np.asarray(probes))
    nearest = d.argmin(axis=1)
    names = np.asarray(names)
    return d[np.arange(len(d)), nearest], np.asarray(gallery.names)[nearest], names == UNKNOWN


def _rates(data: tuple[Gallery, np.ndarray, Sequence[str]], tau: float) -> tuple[float, float]:
    """(false alarm rate, detection and identification rate) at tau."""
    distance, person, stranger = _nearest(data)
    accepted = distance <= tau
    right = accepted & (person == np.asarray(data[2]))
    return float(np.mean(accepted[stranger])), float(np.mean(right[~stranger]))


def _most_tau(data: tuple[Gallery, np.ndarray, Sequence[str]], target: float) -> tuple[float, float]:
    """(limit, lowest right tau): a tau meets the target when it stays below `limit`, the first stranger the
    target does not allow, and has the most DIR when it is at least the lowest right one."""
    distance, person, stranger = _nearest(data)
    strangers = np.sort(distance[stranger])
    allowed = int(np.floor(target * len(strangers)))
    limit = np.inf if allowed >= len(strangers) else float(strangers[allowed])
    right = ~stranger & (person == np.asarray(data[2])) & (distance < limit)
    return limit, float(distance[right].max()) if right.any() else -np.inf


@_check
def check_open_set_tau(
    answer: float,
    held_out: tuple[Gallery, np.ndarray, Sequence[str]],
    target: float,
    test: tuple[Gallery, np.ndarray, Sequence[str]] | None = None,
) -> str:
    """answer: a tau for open-set identification chosen on `held_out` = (gallery, probes, names), people and
    strangers that are not the ones the system will face (names[m] is probe m's person, or "unknown" for a
    stranger): the false alarm rate on its strangers at most `target`, and the most detection and identification
    rate (DIR: known probes accepted as the right person) that allows. test: the same for the gallery and probes
    the system does face, never used to choose tau: the verdict reports what the tau does there."""
    tau = _number(answer, "tau")
    limit, lowest = _most_tau(held_out, target)
    if limit < tau <= limit + 1e-6 * abs(limit):  # the limit stranger's distance, rounded another way (float32
        tau = float(np.nextafter(limit, -np.inf))  # embeddings, another order of sums): just below it, as meant
    false_alarms, dir_ = _rates(held_out, tau)
    strangers = int(np.sum(np.asarray(held_out[2]) == UNKNOWN))
    on_test = ""
    if test is not None:
        test_false_alarms, test_dir = _rates(test, tau)
        on_test = (f"; on the gallery and strangers it faces (never used to choose it): false alarm rate "
                   f"{test_false_alarms:.3f}, DIR {test_dir:.3f}")
    if tau >= limit:
        if test is not None:
            test_limit, test_lowest = _most_tau(test, target)
            if test_lowest <= tau < test_limit:
                raise _Wrong(f"that tau was chosen on the test strangers: on the held-out ones it lets in "
                             f"{false_alarms:.3f} > {target}. Choose it on the held-out people and strangers; the "
                             "test ones only measure it")
        if tau == limit:
            raise _Wrong(f"one stranger too many: at tau = {tau:.4f} (a stranger's own distance) the false alarm "
                         f"rate is {false_alarms:.4f} > {target}; stay just below it (np.nextafter(d, -np.inf))")
        raise _Wrong(f"at tau = {tau:.4f} the held-out false alarm rate is {false_alarms:.4f} > {target}: a stranger "
                     "is let in when its NEAREST enrolled person is within tau (the min over people of "
                     "gallery.identity_distances), so sort those nearest distances of the strangers")
    if tau < lowest:
        raise _Wrong(f"the false alarm rate {false_alarms:.4f} is within target, but DIR is only {dir_:.3f}: a larger "
                     f"tau, still below the first stranger the target does not allow ({limit:.4f}), identifies "
                     "more known probes")
    return (f"on {strangers} held-out strangers: false alarm rate {false_alarms:.3f} <= {target}, DIR {dir_:.3f}"
            f"{on_test}")


__all__ = ["check_false_alarm_rate", "check_open_set_tau", "check_per_person_far"]
