"""CPU backend: NumPy's BLAS for the matrix products, `@njit(parallel=True)` loops over anchors for the rest.

The cost of a batch of B embeddings of dimension D, K images per identity, and how this file keeps to it:

- distances: one matrix product x @ x^T (2 B^2 D flops), then one pass over the (B, B) result for the clamp;
- selection: each anchor reads its row of d once and compares every negative with its K - 1 positives, which it
  sorts first (a handful of numbers): O(B^2 K) at most, no sort of the row, no (B, B) integer matrix;
- gradient: every loss is sum_t w_t (d_ap - d_an) over its triplets t = (a, p, n). Semi-hard (one triplet per
  anchor-positive pair) and batch-hard (one per anchor) have few, so their gradient adds up each triplet's three
  terms directly (`_triplet_gradient`, O(T D), no (B, B) matrix); batch-all has every valid triplet, so it sums
  their weights into W (B, B) and takes one more matrix product (`pairwise_sqdist_backward`).

Every anchor a writes only row a, or its own slice of the output, so the parallel loops need no atomics.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .contract import FALLBACK_EASIEST, FALLBACK_HARDEST, FALLBACK_SKIP, fallback_code
from .numpy_ref import pairwise_sqdist_backward

__all__ = [
    "batch_all_triplet",
    "batch_hard_triplet",
    "pairwise_sqdist",
    "pairwise_sqdist_backward",
    "semihard_negatives",
    "semihard_triplet",
]


# -- distances -----------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _sqdist_from_gram(gram):
    """In place: gram -> max(g_ii + g_jj - 2 g_ij, 0), with an exact 0 diagonal (as numpy_ref)."""
    sq = np.diag(gram).copy()
    for i in prange(gram.shape[0]):
        for j in range(gram.shape[1]):
            value = sq[i] + sq[j] - (gram[i, j] + gram[i, j])
            gram[i, j] = value if value > 0 else 0
        gram[i, i] = 0


def pairwise_sqdist(x: np.ndarray) -> np.ndarray:
    """Squared L2 distances (B, D) -> (B, B), clamped at 0, exactly 0 on the diagonal."""
    gram = x @ np.ascontiguousarray(x.T)  # a general product: NumPy's x @ x.T (SYRK) was 2.6x slower here
    _sqdist_from_gram(gram)
    return gram


# -- the identities of a batch -------------------------------------------------------------------------------
def _identities(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group, members, starts): group (B,) is each row's identity numbered 0..G-1; the rows of identity g are
    members[starts[g]:starts[g + 1]], in increasing order. An anchor's positives are then K - 1 look-ups, not a
    scan of the batch."""
    _, group, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    group = group.reshape(-1).astype(np.int64)
    members = np.argsort(group, kind="stable").astype(np.int64)
    return group, members, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


@njit(cache=True)
def _positives(a, group, members, starts):
    """The positives of anchor a (its identity's other rows), in increasing order."""
    g = group[a]
    out = np.empty(starts[g + 1] - starts[g] - 1, np.int64)
    k = 0
    for j in members[starts[g] : starts[g + 1]]:
        if j != a:
            out[k] = j
            k += 1
    return out


@njit(cache=True)
def _slots(row, thresholds, inclusive):
    """slot[n] = #{i : thresholds[i] < row[n]} (<= when `inclusive`) for every n of the row: k passes over the
    row, each a branch-free compare-and-add that the compiler vectorises across n (here a binary search per n
    was 2x slower, and a count per n over the thresholds 3x)."""
    slot = np.zeros(row.shape[0], np.int32)
    for t in thresholds:
        if inclusive:
            for n in range(row.shape[0]):
                slot[n] += t <= row[n]
        else:
            for n in range(row.shape[0]):
                slot[n] += t < row[n]
    return slot


# -- semi-hard -----------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _semihard_select(d, group, members, starts, offsets, fallback, positives_out, negatives_out):
    """For each anchor a, its pairs go to positives_out / negatives_out[offsets[a]:offsets[a + 1]] (its positives
    in increasing order); a skipped pair gets the negative -1.

    One pass over a's negatives serves all its positives. Sort the positives by d_ap: t_0 <= ... <= t_(k-1). A
    negative n with s = #{i : t_i < d_an} positives nearer than itself is semi-hard for sorted positives 0..s-1,
    so it lands in slot s, which keeps its nearest negative. The semi-hard negative of sorted positive i is then
    the nearest over slots i+1..k, a running minimum from the top slot down. Slots hold disjoint ranges of d_an
    and are filled in increasing n with strict comparisons, so the lowest index wins a tie; the nearest over all
    slots is the anchor's hardest negative."""
    b = d.shape[0]
    for a in prange(b):
        first, k = offsets[a], offsets[a + 1] - offsets[a]
        if k == 0:
            continue
        row = d[a]
        positives = _positives(a, group, members, starts)
        order = np.argsort(row[positives])
        nearer = row[positives[order]]  # the t_i
        slot_value = np.empty(k + 1, d.dtype)
        slot_negative = np.full(k + 1, -1, np.int64)
        slot = _slots(row, nearer, False)
        easiest = -1
        for n in range(b):
            if group[n] == group[a]:
                continue
            s = slot[n]
            if slot_negative[s] < 0 or row[n] < slot_value[s]:
                slot_value[s], slot_negative[s] = row[n], n
            if easiest < 0 or row[n] > row[easiest]:
                easiest = n
        hardest = -1
        for s in range(k + 1):
            if slot_negative[s] >= 0 and (hardest < 0 or slot_value[s] < row[hardest]):
                hardest = slot_negative[s]
        extreme = easiest if fallback == FALLBACK_EASIEST else hardest if fallback == FALLBACK_HARDEST else -1
        nearest = -1
        for i in range(k - 1, -1, -1):
            n = slot_negative[i + 1]
            if n >= 0 and (nearest < 0 or row[n] < row[nearest]):
                nearest = n
            positives_out[first + order[i]] = positives[order[i]]
            negatives_out[first + order[i]] = nearest if nearest >= 0 else extreme


def _semihard_triplets(d: np.ndarray, labels: np.ndarray, fallback: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(anchors, positives, negatives), each (T,) int64, row-major; pairs the fallback skips are left out."""
    code = fallback_code(fallback)
    group, members, starts = _identities(labels)
    size = np.diff(starts)[group]  # each anchor's identity size
    pairs_of = np.where(size < len(group), size - 1, 0)  # an anchor without a negative has no pair
    offsets = np.concatenate([[0], np.cumsum(pairs_of)]).astype(np.int64)
    positives, negatives = np.empty(offsets[-1], np.int64), np.empty(offsets[-1], np.int64)
    _semihard_select(d, group, members, starts, offsets, code, positives, negatives)
    anchors = np.repeat(np.arange(len(group), dtype=np.int64), pairs_of)
    if code == FALLBACK_SKIP:
        kept = negatives >= 0
        return anchors[kept], positives[kept], negatives[kept]
    return anchors, positives, negatives


def semihard_negatives(d: np.ndarray, labels: np.ndarray, fallback: str = "easiest") -> tuple[np.ndarray, np.ndarray]:
    """As `numpy_ref.semihard_negatives`: (pairs (T, 2), negatives (T,)), row-major, skipped pairs dropped."""
    anchors, positives, negatives = _semihard_triplets(d, labels, fallback)
    return np.stack([anchors, positives], axis=1), negatives


@njit(cache=True)
def _triplet_gradient(x, anchors, positives, negatives, weights):
    """The gradient of sum_t w_t (d_ap - d_an) over triplets t = (a, p, n), added up triplet by triplet. The
    gradient of d_ij = ||x_i - x_j||^2 is 2 (x_i - x_j) at x_i and its opposite at x_j, so each triplet adds

        2 w (x_n - x_p) to row a,   2 w (x_p - x_a) to row p,   2 w (x_a - x_n) to row n.

    O(T D) work: at B = 4096, K = 16 far less than the (B, B) @ (B, D) product of pairwise_sqdist_backward."""
    grad = np.zeros_like(x)
    for t in range(anchors.shape[0]):
        a, p, n, w = anchors[t], positives[t], negatives[t], 2 * weights[t]
        for k in range(x.shape[1]):
            grad[a, k] += w * (x[n, k] - x[p, k])
            grad[p, k] += w * (x[p, k] - x[a, k])
            grad[n, k] += w * (x[a, k] - x[n, k])
    return grad


def semihard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, fallback: str = "easiest"
) -> tuple[float, np.ndarray, int]:
    """As `numpy_ref.semihard_triplet`: (loss, grad_x, number of kept pairs)."""
    d = pairwise_sqdist(x)
    a, p, n = _semihard_triplets(d, labels, fallback)
    if len(a) == 0:
        return 0.0, np.zeros_like(x), 0
    hinge = (d[a, p] + d.dtype.type(margin)) - d[a, n]
    active = hinge > 0
    loss = float(np.sum(hinge[active], dtype=np.float64) / len(a))
    weights = np.full(int(active.sum()), 1 / len(a), x.dtype)
    return loss, _triplet_gradient(x, a[active], p[active], n[active], weights), len(a)


# -- batch-all -----------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _batch_all_rows(d, group, members, starts, margin, weights):
    """Row a of W (every entry set): + at each positive, the number of negatives its pair makes active; - at each
    negative, the number of positives that make it active. Returns per anchor the hinge sum (float64) and the
    numbers of active and valid triplets.

    The triplet (a, p, n) is active iff d_an < t_p = d_ap + margin. Sort the k thresholds t_0 <= ... <= t_(k-1);
    a negative with s = #{i : t_i <= d_an} is active with sorted positives s..k-1 (so W[a, n] = -(k - s)) and
    lands in slot s. Sorted positive i is active with the negatives of slots 0..i: running sums over the slots
    give their number c_i and the sum of their d_an, and its hinges add up to c_i t_i - sum d_an."""
    b = d.shape[0]
    hinge_sums = np.zeros(b)
    active = np.zeros(b, np.int64)
    valid = np.zeros(b, np.int64)
    for a in prange(b):
        row, out = d[a], weights[a]
        positives = _positives(a, group, members, starts)
        k, num_negatives = positives.shape[0], b - positives.shape[0] - 1
        if k == 0 or num_negatives == 0:
            out[:] = 0
            continue
        valid[a] = k * num_negatives
        thresholds = row[positives] + margin  # margin has d's dtype: every backend rounds the hinge alike
        order = np.argsort(thresholds)
        thresholds = thresholds[order]
        slot_count = np.zeros(k + 1, np.int64)
        slot_sum = np.zeros(k + 1)
        slot = _slots(row, thresholds, True)
        for n in range(b):
            if group[n] == group[a]:
                out[n] = 0  # a itself; its positives are set below
                continue
            s = slot[n]
            slot_count[s] += 1
            slot_sum[s] += row[n]
            out[n] = -(k - s)
        count, below = 0, 0.0
        for i in range(k):
            count += slot_count[i]
            below += slot_sum[i]
            out[positives[order[i]]] = count
            active[a] += count
            hinge_sums[a] += count * np.float64(thresholds[i]) - below
    return hinge_sums, active, valid


def batch_all_triplet(x: np.ndarray, labels: np.ndarray, margin: float) -> tuple[float, np.ndarray, float, int]:
    """As `numpy_ref.batch_all_triplet`: (loss, grad_x, fraction active, number active)."""
    d = pairwise_sqdist(x)
    weights = np.empty_like(d)
    group, members, starts = _identities(labels)
    hinge_sums, active, valid = _batch_all_rows(d, group, members, starts, d.dtype.type(margin), weights)
    num_active = int(active.sum())
    if num_active == 0:
        return 0.0, np.zeros_like(x), 0.0, 0
    grad = pairwise_sqdist_backward(x, weights)
    grad /= num_active  # the gradient is linear in W: scale the (B, D) result, not the (B, B) counts
    return float(hinge_sums.sum() / num_active), grad, num_active / int(valid.sum()), num_active


# -- batch-hard ----------------------------------------------------------------------------------------------
@njit(cache=True, parallel=True)
def _batch_hard_rows(d, group, margin, soft):
    """Per anchor: its farthest positive and nearest negative (-1 when it has none), the loss and its slope."""
    hardest = np.full((d.shape[0], 2), -1, np.int64)
    losses = np.zeros(d.shape[0])
    slopes = np.zeros(d.shape[0])
    for a in prange(d.shape[0]):
        p_star = n_star = -1
        for j in range(d.shape[1]):
            if group[j] == group[a]:
                if j != a and (p_star < 0 or d[a, j] > d[a, p_star]):
                    p_star = j
            elif n_star < 0 or d[a, j] < d[a, n_star]:
                n_star = j
        if p_star < 0 or n_star < 0:
            continue
        hardest[a, 0], hardest[a, 1] = p_star, n_star
        z = (d[a, p_star] + margin) - d[a, n_star]
        if soft:
            losses[a] = max(z, 0) + np.log1p(np.exp(-abs(z)))
            slopes[a] = 0.5 * (1 + np.tanh(0.5 * z))
        elif z > 0:
            losses[a], slopes[a] = z, 1.0
    return hardest, losses, slopes


def batch_hard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, soft: bool = False
) -> tuple[float, np.ndarray]:
    """As `numpy_ref.batch_hard_triplet`: (loss, grad_x)."""
    d = pairwise_sqdist(x)
    hardest, losses, slopes = _batch_hard_rows(d, _identities(labels)[0], d.dtype.type(margin), bool(soft))
    anchors = np.flatnonzero(hardest[:, 0] >= 0)
    if len(anchors) == 0:
        return 0.0, np.zeros_like(x)
    weights = (slopes[anchors] / len(anchors)).astype(x.dtype)
    grad = _triplet_gradient(x, anchors, hardest[anchors, 0], hardest[anchors, 1], weights)
    return float(losses[anchors].sum() / len(anchors)), grad
