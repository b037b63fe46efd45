"""Lesson 13, closing the gap: checks for its exercises (semi-hard negatives in a batch, and how many pairs and
triplets a P x K batch holds)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _call, _check, _number, _pair_of_numbers, _Wrong


def _batch(seed: int, people: int, images: int) -> tuple[np.ndarray, np.ndarray]:
    """(d, labels): squared distances of a P x K batch as small integers (0 on the diagonal, symmetric), so that
    with an integer margin there are ties at both ends of the semi-hard band, d_an = d_ap and d_an = d_ap + alpha."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(people), images)
    b = len(labels)
    upper = np.triu(rng.integers(1, 7, (b, b)), 1)
    same = labels[:, None] == labels[None, :]
    d = (upper + upper.T).astype(np.float64)
    d[same] = np.maximum(d[same] - 2, 1)  # positives a little nearer than negatives, as in a trained model
    np.fill_diagonal(d, 0)
    return d, labels


def _semihard_fraction(d: np.ndarray, labels: np.ndarray, alpha: float, *, strict_low: bool = True,
                       strict_high: bool = True, margin: bool = True, self_pairs: bool = False,
                       ordered: bool = True, per: str = "pair") -> float:
    """The fraction of anchor-positive pairs with a semi-hard negative, d_ap < d_an < d_ap + alpha, and the usual
    slips as options: <= at either end, no upper end, a == p counted, unordered pairs, triplets counted."""
    same = labels[:, None] == labels[None, :]
    positive = same & (True if self_pairs else ~np.eye(len(labels), dtype=bool))
    if not ordered:
        positive &= np.triu(np.ones_like(positive), 1 if not self_pairs else 0)
    a, p = np.nonzero(positive)
    d_ap, d_an = d[a, p][:, None], np.where(~same[a], d[a], np.nan)  # (pairs, B): each pair's negatives
    with np.errstate(invalid="ignore"):
        low = d_an > d_ap if strict_low else d_an >= d_ap
        high = (d_an < d_ap + alpha if strict_high else d_an <= d_ap + alpha) if margin else np.ones_like(low)
    semihard = low & high
    if per == "triplet":
        return float(semihard.sum() / (~same[a]).sum())
    if per == "count":
        return float(semihard.any(axis=1).sum())
    return float(semihard.any(axis=1).mean())


@_check
def check_semihard_fraction(fn: Callable[[np.ndarray, np.ndarray, float], float]) -> str:
    """fn(d, labels, alpha) -> the fraction of the batch's anchor-positive pairs (a, p), a != p of one person,
    ordered ((a, p) and (p, a) both count, as in tinyface's semi-hard loss), that have at least one semi-hard
    negative: an n of another person with d_ap < d_an < d_ap + alpha (both inequalities strict).

    The distances are small integers and alpha an integer, so that ties sit at both ends of the band: a slip at
    either end (<= for <) changes the answer. A usual slip is named when it gives the answer on every batch."""
    cases = [(*_batch(seed, people, images), alpha, people, images)  # bands (d_ap, d_ap + alpha) hold integers
             for seed, people, images, alpha in ((130, 4, 3, 2.0), (131, 3, 4, 2.0), (132, 6, 2, 3.0),
                                                 (133, 2, 3, 2.0))]
    answers = [_number(_call(fn, d.copy(), labels.copy(), alpha), "the fraction") for d, labels, alpha, _, _ in cases]
    if all(np.isclose(got, _semihard_fraction(d, labels, alpha), rtol=0, atol=1e-12)
           for got, (d, labels, alpha, _, _) in zip(answers, cases, strict=True)):
        return "per ordered anchor-positive pair: is there an n with d_ap < d_an < d_ap + alpha?"
    slips = (
        ({"strict_low": False, "strict_high": False}, "both ends of the band are strict: d_ap < d_an < d_ap + "
                                                      "alpha (use <, not <=)"),
        ({"margin": False}, "that counts every negative farther than the positive: a semi-hard one is also "
                            "within the margin, d_an < d_ap + alpha (farther ones give a zero loss)"),
        ({"strict_low": False}, "a negative exactly as far as the positive (d_an = d_ap) is not semi-hard: "
                                "d_ap < d_an, strictly"),
        ({"strict_high": False}, "a negative at d_an = d_ap + alpha gives a zero hinge: not semi-hard; the "
                                 "upper end is strict, d_an < d_ap + alpha"),
        ({"self_pairs": True}, "a == p is no anchor-positive pair (d_aa = 0): leave the diagonal out"),
        ({"ordered": False}, "count ordered pairs: (a, p) and (p, a) are two pairs, with two different anchors "
                             "and so two different rows of negatives"),
        ({"per": "triplet"}, "that is the fraction of (a, p, n) triplets that are semi-hard; the question is "
                             "per anchor-positive pair: does it have at least ONE semi-hard negative?"),
        ({"per": "count"}, "that is a number of pairs: divide by the number of anchor-positive pairs"),
    )
    for options, hint in slips:  # a slip is named when it explains the answer on every batch
        if all(np.isclose(got, _semihard_fraction(d, labels, alpha, **options), rtol=0, atol=1e-12)
               for got, (d, labels, alpha, _, _) in zip(answers, cases, strict=True)):
            raise _Wrong(hint)
    for got, (d, labels, alpha, people, images) in zip(answers, cases, strict=True):
        if not 0 <= got <= 1:
            raise _Wrong(f"a fraction lies in [0, 1], got {got}")
        expected = _semihard_fraction(d, labels, alpha)
        if not np.isclose(got, expected, rtol=0, atol=1e-12):
            raise _Wrong(f"for {people} people x {images} images and alpha = {alpha:g} the fraction is "
                         f"{expected:.4f}, you gave {got:.4f}")


@_check
def check_batch_counts(fn: Callable[[int, int], tuple[int, int]]) -> str:
    """fn(P, K) -> (pairs, triplets) of a batch of P people x K images: the ordered anchor-positive pairs, P K (K - 1)
    (a != p), and the valid triplets, P K (K - 1) (P - 1) K (every pair with each of the (P - 1) K faces of
    other people)."""
    for people, images in ((32, 4), (45, 40), (10, 10), (7, 3), (2, 2)):
        pairs = people * images * (images - 1)
        triplets = pairs * (people - 1) * images
        got = _pair_of_numbers(_call(fn, people, images), "pairs, triplets")
        if np.allclose(got, (pairs, triplets), rtol=0, atol=0):
            continue
        b = people * images
        if np.allclose(got, (triplets, pairs)):
            raise _Wrong("give (pairs, triplets), in that order")
        got_pairs, got_triplets = got
        if got_pairs == pairs // 2 or got_triplets == triplets // 2:
            raise _Wrong("count ordered pairs: (a, p) and (p, a) are two anchor-positive pairs (two anchors), "
                         "as FaceNet's 'all anchor-positive pairs' and tinyface's semi-hard loss use them")
        if got_pairs == people * images**2 or got_triplets == people * images**2 * (people - 1) * images:
            raise _Wrong("a face is not its own positive: K - 1 positives per anchor, not K")
        if got_pairs == pairs and got_triplets in (pairs * (b - 1), pairs * b, pairs * (b - 2)):
            raise _Wrong("the negatives of an anchor are the faces of the OTHER people: (P - 1) K of them, not "
                         "the whole batch")
        if got_pairs == pairs and got_triplets == pairs * (people - 1):
            raise _Wrong("each of the P - 1 other people brings K faces: (P - 1) K negatives per pair")
        if got_pairs != pairs:
            raise _Wrong(f"{people} people x {images} images hold {pairs} ordered anchor-positive pairs "
                         f"(you gave {got_pairs:g})")
        raise _Wrong(f"{people} people x {images} images hold {triplets} valid triplets (you gave {got_triplets:g})")
    facenet, ours = ((p * k * (k - 1), p * k * (k - 1) * (p - 1) * k) for p, k in ((45, 40), (32, 4)))
    return (f"P K (K - 1) pairs and P K (K - 1) (P - 1) K triplets: at 45 x 40 (FaceNet's size) {facenet[0]:,} pairs "
            f"and {facenet[1]:,} triplets, at 32 x 4 (tinyface's default) {ours[0]:,} and {ours[1]:,}")


@_check
def check_semihard_chance(fn: Callable[[float, int, int], float]) -> str:
    """fn(q, P, K) -> the probability that an anchor-positive pair of a P x K batch has at least one semi-hard
    negative, if each of its (P - 1) K negatives is semi-hard independently with probability q:
    1 - (1 - q)^((P - 1) K)."""
    for q, people, images in ((0.01, 32, 4), (0.002, 45, 40), (0.05, 8, 4), (0.2, 2, 2), (0.001, 400, 4)):
        n = (people - 1) * images
        expected = 1 - (1 - q) ** n
        got = _number(_call(fn, q, people, images), "the probability")
        if np.isclose(got, expected, rtol=1e-9, atol=0):
            continue
        b = people * images
        for count, what in ((b - 1, "B - 1: every face but the anchor"), (b, "B: the whole batch"),
                            (b - 2, "B - 2: every face but the anchor and the positive"), ((people - 1), "P - 1"),
                            (n - 1, "(P - 1) K - 1")):
            if np.isclose(got, 1 - (1 - q) ** count, rtol=1e-9, atol=0):
                raise _Wrong(f"you used {what} candidates; the negatives are the (P - 1) K faces of the other "
                             f"people (the anchor's own K faces are no negatives)")
        if np.isclose(got, (1 - q) ** n, rtol=1e-9, atol=0):
            raise _Wrong("that is the probability that NO negative is semi-hard; at least one is the complement")
        if np.isclose(got, q**n, rtol=1e-9, atol=0) or np.isclose(got, 1 - q**n, rtol=1e-9, atol=0):
            raise _Wrong("the pair misses only when EVERY negative misses: P(none) = (1 - q)^n, each one "
                         "missing with probability 1 - q")
        if np.isclose(got, min(1.0, n * q), rtol=1e-9, atol=0) or np.isclose(got, n * q, rtol=1e-9, atol=0):
            raise _Wrong("n q is the union bound (P(any of n) <= n q), close only while n q is small; compute "
                         "1 - P(none)")
        raise _Wrong(f"for q = {q}, {people} x {images}: {expected:.6g}, you gave {got:.6g}")
    small, large = (1 - 0.99 ** ((p - 1) * 4) for p in (8, 32))
    return (f"1 - (1 - q)^((P - 1) K): with q = 0.01, a batch of 8 x 4 gives {small:.2f}, 32 x 4 {large:.2f}; the "
            "negatives must land in the band by chance, so small batches leave pairs without a semi-hard negative")


__all__ = ["check_batch_counts", "check_semihard_chance", "check_semihard_fraction"]
