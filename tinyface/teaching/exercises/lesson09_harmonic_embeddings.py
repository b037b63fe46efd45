"""Lesson 9, harmonic embeddings: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.eval.compatibility import mixed_distances, update_gain
from tinyface.losses import harmonic_triplet_loss, semihard_triplet_loss
from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _number, _Wrong


def _two_versions(seed: int, people: int = 5, images: int = 4, dim: int = 8) -> tuple[np.ndarray, ...]:
    """(new, old, labels): two versions' unit embeddings (B, D) of the same B = people x images images, float64.
    The old ones cluster by person; the new ones are the old ones turned by a random rotation and moved a little,
    so that new and old disagree (the triplets mixing versions differ from those within one)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(people), images)
    centres = rng.normal(size=(people, dim))
    old = centres[labels] + 0.6 * rng.normal(size=(len(labels), dim))
    rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    new = (0.5 * old + 0.5 * old @ rotation) + 0.3 * rng.normal(size=old.shape)
    unit = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in (new, old)]
    return unit[0], unit[1], labels


def _semihard(x: np.ndarray, labels: np.ndarray, margin: float) -> float:
    return float(semihard_triplet_loss(x, labels, margin).data)


@_check
def check_harmonic_loss(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]) -> str:
    """fn(new, old, labels, margin) -> the harmonic semi-hard triplet loss: the semi-hard triplet loss on the
    version union, rows [old; new] (2B, D) with labels [labels; labels], so that the two embeddings of one image
    are positives of each other and every anchor meets positives and negatives of both versions."""
    for seed, margin in ((90, 0.2), (91, 0.5), (92, 0.1)):
        new, old, labels = _two_versions(seed)
        expected = float(harmonic_triplet_loss(new, old, labels, margin).data)
        got = _number(_call(fn, new.copy(), old.copy(), labels.copy(), margin), "the loss")
        if np.isclose(got, expected, rtol=1e-6, atol=1e-9):
            continue
        if np.isclose(got, _semihard(new, labels, margin), rtol=1e-6):
            raise _Wrong("that is the semi-hard loss of the new embeddings alone: nothing ties them to the old "
                         "ones. Pool both versions, rows [old; new], before choosing triplets")
        if np.isclose(got, _semihard(old, labels, margin), rtol=1e-6):
            raise _Wrong("that is the loss of the old embeddings alone (a constant: the old model is fixed); pool "
                         "[old; new]")
        if np.isclose(got, _semihard(new, labels, margin) + _semihard(old, labels, margin), rtol=1e-6) or np.isclose(
                got, (_semihard(new, labels, margin) + _semihard(old, labels, margin)) / 2, rtol=1e-6):
            raise _Wrong("two losses, one per version, never compare a new embedding with an old one: the "
                         "triplets must be chosen on ONE batch holding both versions' rows")
        if np.isclose(got, _semihard(np.concatenate([old, new]), np.concatenate([labels, labels]), 0.0), rtol=1e-6):
            raise _Wrong("the margin is missing: max(d_ap + margin - d_an, 0)")
        raise _Wrong(f"with margin {margin} the loss on the union is {expected:.6f}, you gave {got:.6f}: rows "
                     "[old; new], labels [labels; labels], then the semi-hard loss of the section above")
    return ("one batch of 2B rows, both versions: the old rows are constants, so only the new model learns, and it "
            "learns to sit where the old one put each face")


@_check
def check_update_gain(fn: Callable[[float, float, float], float]) -> str:
    """fn(old, new, mixed) -> G = (mixed - old) / (new - old): accuracies of v1 alone (old/old), v2 alone (new/new)
    and of mixed pairs; 0 when mixing does no better than v1 alone, 1 when as well as v2 alone."""
    for old, new, mixed in ((0.823, 0.844, 0.836), (0.852, 0.866, 0.779), (0.70, 0.90, 0.95), (0.8, 0.85, 0.5)):
        expected = update_gain(old, new, mixed)
        got = _number(_call(fn, old, new, mixed), "G")
        if np.isclose(got, expected, rtol=1e-9, atol=1e-12):
            continue
        if np.isclose(got, 1 - expected):
            raise _Wrong("that is 1 - G, how far mixed falls short of new/new; G measures how far it gets from "
                         "old/old: (mixed - old) / (new - old)")
        if np.isclose(got, -expected):
            raise _Wrong("the sign is flipped: G > 0 when mixed beats old/old while new/new does too")
        if np.isclose(got, (mixed - old) / new) or np.isclose(got, (mixed - old) / mixed) or np.isclose(
                got, mixed - old):
            raise _Wrong("divide by the gain of the new model, new - old: G is the fraction of v2's improvement "
                         "that a mixed comparison keeps")
        if np.isclose(got, mixed / new) or np.isclose(got, mixed / old):
            raise _Wrong("a ratio of accuracies counts the chance level too; G compares gains over old/old: "
                         "(mixed - old) / (new - old)")
        raise _Wrong(f"for old {old}, new {new}, mixed {mixed}, G = {expected:.4f}, you gave {got:.4f}")
    return "G = 0.62 on LFW: a v2 query against a v1 gallery keeps 62% of what v2 gains over v1"


def _pair_indices(seed: int, n: int, pairs: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    i = rng.integers(n, size=pairs)
    return i, (i + rng.integers(1, n, size=pairs)) % n


@_check
def check_mixed_distances(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(old, new, i, j) -> the (2N,) squared distances of the N pairs (i, j) across versions: first
    d(old_i, new_j) for every pair, then d(new_i, old_j)."""
    for seed, pairs in ((93, 12), (94, 30)):
        new, old, _ = _two_versions(seed)
        i, j = _pair_indices(seed, len(new), pairs)
        expected = mixed_distances(old, new, i, j)
        answer = _given(_call(fn, old.copy(), new.copy(), i.copy(), j.copy()))
        if np.shape(getattr(answer, "data", answer)) == (pairs,):
            one, other = expected[:pairs], expected[pairs:]
            got = np.asarray(getattr(answer, "data", answer), dtype=np.float64)
            if np.allclose(got, one) or np.allclose(got, other):
                raise _Wrong("that is one order only: a pair (i, j) is two mixed comparisons, old_i with new_j AND "
                             "new_i with old_j; concatenate both, (2N,)")
            if np.allclose(got, (one + other) / 2):
                raise _Wrong("the two orders are two comparisons, each with its own verdict: concatenate them "
                             "(2N,) rather than average them")
        got = _array(answer, (2 * pairs,), "the mixed distances")
        if np.allclose(got, expected):
            continue
        if np.allclose(got, np.concatenate([expected[pairs:], expected[:pairs]])):
            raise _Wrong("both orders are there, but the other way round: first d(old_i, new_j), then "
                         "d(new_i, old_j)")
        if np.allclose(got, np.sqrt(expected)):
            raise _Wrong("those are plain L2 distances: tinyface compares squared distances, as FaceNet does")
        if np.allclose(got, np.concatenate([expected[:pairs]] * 2)) or np.allclose(
                got, np.concatenate([expected[pairs:]] * 2)):
            raise _Wrong("one order twice: the second half is d(new_i, old_j), the new embedding of the FIRST "
                         "image with the old one of the second")
        same_version = np.concatenate([np.sum((old[i] - old[j]) ** 2, axis=1), np.sum((new[i] - new[j]) ** 2,
                                                                                      axis=1)])
        if np.allclose(got, same_version):
            raise _Wrong("those are old/old and new/new distances: a mixed distance takes one image of the pair "
                         "from each version")
        raise _Wrong("not the squared distances of old_i to new_j, then new_i to old_j")
    return "2N comparisons: a v1 gallery meets v2 queries, and a v2 gallery v1 queries"


__all__ = ["check_harmonic_loss", "check_mixed_distances", "check_update_gain"]
