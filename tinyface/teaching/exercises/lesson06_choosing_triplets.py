"""Lesson 6, choosing triplets: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _number, _Wrong


def _mining_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 3)
    x = rng.standard_normal((12, 3)) + 1.2 * rng.standard_normal((4, 3))[labels]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = np.sum((x[:, None] - x[None]) ** 2, axis=2)
    return d, labels


def _tied_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric small-integer "distances" (zero diagonal) for 4 people x 3 images: full of ties, between
    negatives and between a negative and the positive, and with anchor-positive pairs that no negative is
    farther than (selection rules look only at the order of the numbers, so they need not be a metric)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 3)
    d = rng.integers(1, 6, (12, 12)).astype(np.float64)
    d = np.triu(d, 1) + np.triu(d, 1).T
    d[0, 1] = d[1, 0] = 6.0  # farther than every negative: the fallback decides
    d[3, 4] = d[4, 3] = 3.0
    return d, labels


def _negatives_by_pair(answer: Any, labels: np.ndarray) -> dict[tuple[int, int], int]:
    _given(answer)
    rows = np.asarray(answer)
    if rows.size and (rows.ndim != 2 or rows.shape[1] != 3 or rows.dtype.kind not in "iu"):
        raise _Wrong(f"return an integer array (T, 3) of rows [anchor, positive, negative], got {rows.dtype} "
                     f"{rows.shape}")
    chosen = {}
    for a, p, n in rows.reshape(-1, 3).tolist():
        if not (0 <= min(a, p, n) and max(a, p, n) < len(labels)):
            raise _Wrong(f"({a}, {p}, {n}) points outside the batch")
        if a == p or labels[a] != labels[p]:
            raise _Wrong(f"({a}, {p}, {n}): a positive is ANOTHER photo of the anchor's person")
        if labels[n] == labels[a]:
            raise _Wrong(f"({a}, {p}, {n}): the negative must be someone else")
        if (a, p) in chosen:
            raise _Wrong(f"the pair ({a}, {p}) has two triplets: one per anchor-positive pair")
        chosen[(a, p)] = n
    return chosen


def _online_semihard(d: np.ndarray, labels: np.ndarray, farther: Callable, fallback: str | None,
                     lowest_at_tie: bool = True) -> dict[tuple[int, int], int]:
    """{(a, p): n} under a selection rule: among the negatives with farther(d_an, d_ap) the nearest, else the
    fallback's ("easiest", "hardest" or None: no triplet). The right rule and the usual ways to get it wrong."""
    chosen = {}
    for a in range(len(labels)):
        negatives = np.flatnonzero(labels != labels[a])
        for p in np.flatnonzero(labels == labels[a]):
            if p == a:
                continue
            candidates = negatives[farther(d[a, negatives], d[a, p])]
            if len(candidates):
                nearest = candidates[d[a, candidates] == d[a, candidates].min()]
                chosen[(a, int(p))] = int(nearest[0] if lowest_at_tie else nearest[-1])
            elif fallback == "easiest":
                chosen[(a, int(p))] = int(negatives[np.argmax(d[a, negatives])])
            elif fallback == "hardest":
                chosen[(a, int(p))] = int(negatives[np.argmin(d[a, negatives])])
    return chosen


@_check
def check_semihard_negatives(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(d, labels): FaceNet's online semi-hard selection with TensorFlow Addons' fallback, one triplet
    [a, p, n] per anchor-positive pair (a != p, any order of rows): n is the nearest negative with d_an > d_ap
    (strictly; the lowest index at a tie); when no negative is that far, the anchor's farthest negative."""
    from tinyface.kernels import numpy_ref  # the contract's reference, ties included

    for d, labels in (_tied_batch(66), _mining_batch(67), _tied_batch(68)):
        pairs, negatives = numpy_ref.semihard_negatives(d, labels)
        expected = {(a, p): n for (a, p), n in zip(pairs.tolist(), negatives.tolist(), strict=True)}
        got = _negatives_by_pair(_call(fn, d.copy(), labels.copy()), labels)
        if got == expected:
            continue
        greater, at_least = (lambda an, ap: an > ap), (lambda an, ap: an >= ap)
        missing = expected.keys() - got.keys()
        if missing and got == _online_semihard(d, labels, greater, None):
            raise _Wrong(f"{len(missing)} anchor-positive pairs have no triplet: those with no negative farther "
                         "than the positive. Fall back to the anchor's FARTHEST negative for them")
        if missing:
            a, p = sorted(missing)[0]
            raise _Wrong(f"the pair ({a}, {p}) has no triplet: every anchor-positive pair gets one")
        if got == _online_semihard(d, labels, greater, "hardest"):
            raise _Wrong("the fallback takes the anchor's FARTHEST negative (TensorFlow Addons' rule), not its "
                         "nearest")
        if got == _online_semihard(d, labels, at_least, "easiest"):
            raise _Wrong("a negative exactly as far as the positive (d_an = d_ap) is not farther: use d_an > d_ap")
        if got == _online_semihard(d, labels, greater, "easiest", lowest_at_tie=False):
            raise _Wrong("at a tie take the lowest index (as argmin does)")
        if got == _online_semihard(d, labels, lambda an, ap: np.ones_like(an, dtype=bool), "easiest"):
            raise _Wrong("that is the nearest negative of all, a hard one; semi-hard asks for the nearest negative "
                         "FARTHER than the positive")
        (a, p), n = next((pair, n) for pair, n in sorted(got.items()) if expected[pair] != n)
        raise _Wrong(f"for the pair ({a}, {p}) (d_ap = {d[a, p]:.3g}) you chose n = {n} (d_an = {d[a, n]:.3g}); "
                     f"the rule gives n = {expected[(a, p)]} (d_an = {d[a, expected[(a, p)]]:.3g})")
    return ("per anchor-positive pair the nearest negative farther than the positive, else the farthest negative: "
            "losses.semihard_triplet_loss's selection")


@_check
def check_batch_hard(fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> str:
    """fn(d, labels) -> (positives (B,), negatives (B,)): for each anchor its farthest positive and nearest
    negative."""
    from tinyface.mining import batch_hard_triplets

    for seed in (62, 63):
        d, labels = _mining_batch(seed)
        expected = batch_hard_triplets(d, labels)
        answer = _call(fn, d.copy(), labels.copy())
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise _Wrong("return two index arrays, (positives, negatives), one entry per anchor")
        pos = _array(answer[0], (len(labels),), "positives").astype(np.int64)
        neg = _array(answer[1], (len(labels),), "negatives").astype(np.int64)
        if np.array_equal(pos, expected[:, 1]) and np.array_equal(neg, expected[:, 2]):
            continue
        anchors = np.arange(len(labels))
        if np.any(pos == anchors):
            raise _Wrong("an anchor was chosen as its own positive: leave the diagonal out (d[a, a] = 0)")
        if np.any(labels[pos] != labels) or np.any(labels[neg] == labels):
            raise _Wrong("a positive must share the anchor's label, a negative must not: mask by labels first")
        if not np.array_equal(pos, expected[:, 1]):
            raise _Wrong("the hardest positive is the FARTHEST photo of the same person (argmax of d over positives)")
        raise _Wrong("the hardest negative is the NEAREST photo of anyone else (argmin of d over negatives)")
    return "per anchor: the farthest positive and the nearest negative, the hardest triplet the batch holds"


def _batch_hard_autograd(x: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    """The gradient of the batch-hard loss by backpropagation through tinyface's Tensor ops: the distances built
    from x, the hardest positive and negative picked with one-hot masks, the hinge, the mean over anchors."""
    from tinyface.mining import batch_hard_triplets
    from tinyface.tensor import Tensor

    b, dim = x.shape
    t = Tensor(x, requires_grad=True)
    d = ((t.reshape(b, 1, dim) - t.reshape(1, b, dim)) ** 2).sum(axis=2)
    _, positive, negative = batch_hard_triplets(d.numpy(), labels).T
    pick_p, pick_n = np.eye(b)[positive], np.eye(b)[negative]  # row a: one-hot of a's hardest positive, negative
    hinge = ((d * pick_p).sum(axis=1) - (d * pick_n).sum(axis=1) + margin).relu()
    (hinge.sum() / b).backward()
    return np.asarray(t.grad)


@_check
def check_batch_hard_weights(fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray]) -> str:
    """fn(d, labels, margin) -> W (B, B): the batch-hard loss (mean over the B anchors of
    max(d_ap* - d_an* + margin, 0)) written as sum_ij W_ij d_ij plus a constant: for each active anchor a,
    W[a, p*] = +1/B and W[a, n*] = -1/B. Its gradient 2 sum_j (W_kj + W_jk)(x_k - x_j) is compared with
    backpropagation through the loss built from Tensor ops."""
    from tinyface.kernels import numpy_ref
    from tinyface.mining import batch_hard_triplets

    rng = np.random.default_rng(69)
    labels = np.repeat(np.arange(4), 3)
    x = rng.standard_normal((12, 3)) + 1.5 * rng.standard_normal((4, 3))[labels]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = numpy_ref.pairwise_sqdist(x)
    margin = 0.3
    anchors, positive, negative = batch_hard_triplets(d, labels).T
    active = d[anchors, positive] - d[anchors, negative] + margin > 0
    expected = np.zeros_like(d)
    expected[anchors[active], positive[active]] = 1 / len(labels)
    expected[anchors[active], negative[active]] = -1 / len(labels)
    weights = _array(_call(fn, d.copy(), labels.copy(), margin), d.shape, "W")
    gradient = numpy_ref.pairwise_sqdist_backward(x, weights)
    autograd = _batch_hard_autograd(x, labels, margin)
    if np.allclose(gradient, autograd, atol=1e-9):
        return (f"{int(active.sum())} of the {len(labels)} anchors are active; W's gradient is backpropagation's, "
                "from a (B, B) matrix instead of a graph of (B, B, D) tensors")
    hints = [
        (expected * len(labels), "the loss is the MEAN over the B anchors: divide each weight by B"),
        (-expected, "the signs are swapped: + for the hardest positive (d_ap* raises the loss), - for the negative"),
        (expected + expected.T, "your W counts every weight twice (W + W^T): the gradient formula adds W^T itself"),
    ]
    every = np.zeros_like(d)
    every[anchors, positive], every[anchors, negative] = 1 / len(labels), -1 / len(labels)
    hints.append((every, "an anchor whose hinge is <= 0 (an easy one) contributes nothing: leave its row at 0"))
    for wrong, hint in hints:
        if np.allclose(weights, wrong, atol=1e-12):
            raise _Wrong(hint)
    if not np.array_equal(weights != 0, expected != 0):
        raise _Wrong("nonzero weights where the loss does not look: each active anchor a has two, at its "
                     "farthest positive and its nearest negative (mining.batch_hard_triplets picks them)")
    raise _Wrong(f"your W's gradient differs from backpropagation's by up to {np.max(np.abs(gradient - autograd)):.3g}")


@_check
def check_fraction_active(fn: Callable[[np.ndarray, np.ndarray, float], float]) -> str:
    """fn(d, labels, margin): the fraction of all valid triplets whose hinge d_ap - d_an + margin is > 0."""
    from tinyface.mining import all_triplets

    for seed, margin in ((64, 0.2), (65, 0.6)):
        d, labels = _mining_batch(seed)
        t = all_triplets(labels)
        hinge = d[t[:, 0], t[:, 1]] - d[t[:, 0], t[:, 2]] + margin
        expected = float(np.mean(hinge > 0))
        got = _number(_call(fn, d.copy(), labels.copy(), margin), "the fraction")
        if np.isclose(got, expected, atol=1e-9):
            continue
        if np.isclose(got, float(np.sum(hinge > 0))):
            raise _Wrong("that is the number of active triplets; divide by the number of valid triplets")
        if np.isclose(got, float(np.mean(hinge < 0))) or np.isclose(got, 1 - expected):
            raise _Wrong("that is the fraction of INACTIVE (easy) triplets")
        if np.isclose(got, float(np.mean(d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]]))):
            raise _Wrong("that counts only the hard triplets (d_an < d_ap); semi-hard ones, within the margin, "
                         "are active too")
        raise _Wrong(f"expected {expected:.4f}, got {got:.4f}: among valid (a, p, n), the share with "
                     "d_ap - d_an + margin > 0")
    return "the share of valid triplets that still have something to teach; it falls as training succeeds"


__all__ = [
    "check_batch_hard", "check_batch_hard_weights", "check_fraction_active", "check_semihard_negatives",
]
