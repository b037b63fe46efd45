"""Where finite differences lie: the kinks of the triplet losses, and how far a batch is from the nearest one.

A triplet loss is smooth in the embeddings except on a few surfaces, its kinks, where the gradient jumps. A central
difference (L(x + eps) - L(x - eps)) / (2 eps) that straddles one averages two slopes and disagrees with a correct
gradient. The kinks follow from the rules of the kernel contract (tinyface/kernels/contract.py):

    hinge       (d_ap + margin) - d_an = 0: a triplet turns active or inactive ("active exactly when the hinge
                is > 0"); in batch-all the count N of active triplets changes too
    tie         two candidates at the same distance from the anchor: the choice ("the lowest index wins") of the
                farthest positive or the nearest negative (batch-hard), of the nearest farther negative or the
                fallback's negative (semi-hard) flips
    boundary    d_an = d_ap: a negative enters or leaves the semi-hard candidates ("d_an > d_ap, strictly")
    identical   d_ij = 0 for two rows i != j: sqrt(d) (a plain L2 distance) has no derivative there

Every distance here is a squared L2 distance (the contract's d), so every kink distance is in those units. A step
eps on one element moves d_ij by about 2 eps |x_i - x_j|: a batch whose kinks are all min_gap >> eps away is safe.

    loss="batch_all"   hinges of every valid triplet
    loss="batch_hard"  per anchor: ties for the farthest positive and the nearest negative, the chosen hinge
                       (none with margin="soft", where softplus is smooth)
    loss="semihard"    per anchor-positive pair: boundaries, ties for the chosen negative (fallback's rule when no
                       negative is farther than the positive), the chosen hinge
    loss="all"         the strictest: any two distances from one anchor, and every hinge (safe for any of the above,
                       and for a loss of your own built from these distances and hinges)
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from tinyface.kernels.contract import FALLBACK_EASIEST, FALLBACK_HARDEST, Fallback, fallback_code
from tinyface.kernels.numpy_ref import label_masks, pairwise_sqdist

__all__ = ["LOSSES", "Kink", "LossName", "identical_rows", "nearest_kink"]

LossName = Literal["all", "batch_all", "batch_hard", "semihard"]
LOSSES: tuple[str, ...] = get_args(LossName)


class Kink(NamedTuple):
    """How far a batch is from one kink of a loss (in squared distance), and which kink, in words."""

    distance: float
    where: str


NO_KINK = Kink(float("inf"), "no kink: nothing in the batch can switch")


def nearest_kink(
    x: Any, labels: Any, margin: float | str = 0.2, loss: LossName = "all", fallback: Fallback = "easiest"
) -> Kink:
    """The kink of `loss` nearest to the batch (x (B, D), labels (B,)): its distance and a description naming
    the rows involved. margin="soft" is batch-hard's soft margin (no hinge kink). See the module docstring."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    soft = margin == "soft"
    if soft and loss != "batch_hard":
        raise ValueError(f"margin='soft' is batch-hard's soft margin; loss={loss!r} needs a number")
    code = fallback_code(fallback)
    margin = 0.0 if soft else float(margin)
    x = np.asarray(x, dtype=np.float64)
    d = pairwise_sqdist(x)
    positive, negative = label_masks(np.asarray(labels))
    kinks = [_closest(d)]
    for a in range(len(x)):
        pos, neg = np.flatnonzero(positive[a]), np.flatnonzero(negative[a])
        if loss in ("all", "batch_all"):
            kinks += [_hinge(d, a, p, n, margin) for p in pos for n in neg]
        if loss == "all":
            kinks.append(_tie(d, a, np.delete(np.arange(len(x)), a), "any", "two rows are equally far"))
        elif loss == "batch_hard" and len(pos) and len(neg):
            kinks += [_tie(d, a, pos, "farthest", "positives tie for the farthest"),
                      _tie(d, a, neg, "nearest", "negatives tie for the nearest")]
            if not soft:
                kinks.append(_hinge(d, a, pos[np.argmax(d[a, pos])], neg[np.argmin(d[a, neg])], margin))
        elif loss == "semihard" and len(neg):
            for p in pos:
                kinks += [_boundary(d, a, p, n) for n in neg]
                kinks.append(_semihard(d, a, p, neg, margin, code))
    return min(kinks, key=lambda kink: kink.distance)


def _hinge(d: np.ndarray, a: int, p: int, n: int, margin: float) -> Kink:
    hinge = (d[a, p] + margin) - d[a, n]  # in the contract's order of operations
    return Kink(float(abs(hinge)), f"hinge (d_ap + margin) - d_an = {hinge:.3g} of triplet (a={a}, p={p}, n={n})")


def _boundary(d: np.ndarray, a: int, p: int, n: int) -> Kink:
    return Kink(float(abs(d[a, n] - d[a, p])), f"semi-hard boundary d_an = d_ap: anchor {a}, positive {p}, "
                                               f"negative {n} (d_ap = {d[a, p]:.3g}, d_an = {d[a, n]:.3g})")


def _tie(d: np.ndarray, a: int, candidates: np.ndarray, which: str, what: str) -> Kink:
    """How near the candidates of anchor a are to a tie that matters: between the two nearest (which="nearest",
    the nearest is chosen), the two farthest ("farthest") or any two ("any")."""
    if len(candidates) < 2:
        return NO_KINK
    order = candidates[np.argsort(d[a, candidates], kind="stable")]
    gaps = np.diff(d[a, order])
    k = {"nearest": 0, "farthest": len(gaps) - 1, "any": int(np.argmin(gaps))}[which]
    i, j = int(order[k]), int(order[k + 1])
    return Kink(float(gaps[k]), f"anchor {a}: {what}, rows {i} and {j} (d = {d[a, i]:.3g} and {d[a, j]:.3g})")


def _semihard(d: np.ndarray, a: int, p: int, neg: np.ndarray, margin: float, code: int) -> Kink:
    """The nearer of the tie and the hinge of the negative that semi-hard selection picks for the pair (a, p)."""
    farther = neg[d[a, neg] > d[a, p]]
    if len(farther):
        n, tie = farther[np.argmin(d[a, farther])], _tie(d, a, farther, "nearest", "semi-hard negatives tie")
    elif code == FALLBACK_EASIEST:
        n, tie = neg[np.argmax(d[a, neg])], _tie(d, a, neg, "farthest", "negatives tie for the farthest (fallback)")
    elif code == FALLBACK_HARDEST:
        n, tie = neg[np.argmin(d[a, neg])], _tie(d, a, neg, "nearest", "negatives tie for the nearest (fallback)")
    else:  # FALLBACK_SKIP: the pair is dropped, only the boundaries matter
        return NO_KINK
    return min(tie, _hinge(d, a, p, int(n), margin), key=lambda kink: kink.distance)


def identical_rows(x: Any) -> Kink:
    """The two rows of x (B, D) nearest to each other: sqrt(d) has a kink where they meet, and every choice ties."""
    return _closest(pairwise_sqdist(np.asarray(x, dtype=np.float64)))


def _closest(d: np.ndarray) -> Kink:
    if len(d) < 2:
        return NO_KINK
    off_diagonal = d + np.diag(np.full(len(d), np.inf))
    i, j = (int(k) for k in np.unravel_index(np.argmin(off_diagonal), d.shape))
    return Kink(float(d[i, j]), f"rows {min(i, j)} and {max(i, j)} nearly identical (d = {d[i, j]:.3g})")
