"""The reference backend: vectorised NumPy, written to be read. Every other backend is tested against it.

The rules (shapes, dtypes, the clamp, ties, fallbacks) are in contract.py; this file shows how to keep to them.
The hot path of triplet training is a B x B problem, not a B x B x B one. Every triplet loss below is a sum of
terms w_ij d_ij over the distance matrix d, so each kernel finds one weight matrix W (B, B):

    W[a, p] += c / N  and  W[a, n] -= c / N   for each triplet (a, p, n) whose hinge is active (c = its slope)

and the gradient with respect to the embeddings is `pairwise_sqdist_backward(x, W)`: two B x B x D matrix products.
"""

from __future__ import annotations

import numpy as np

from .contract import FALLBACK_EASIEST, FALLBACK_SKIP, fallback_code


def pairwise_sqdist(x: np.ndarray) -> np.ndarray:
    """Squared L2 distances (B, D) -> (B, B): d_ij = ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j.

    One matrix product (BLAS) does the work; rounding can leave d_ij slightly below 0 when x_i is close to x_j, so
    clamp at 0 and set d_ii to exactly 0 (contract.py says why). The norms are read off the Gram matrix's diagonal,
    so the same rounding appears in every entry.
    """
    gram = x @ np.ascontiguousarray(x.T)  # a general product: NumPy's x @ x.T (SYRK) was 2.6x slower here
    sq = np.diagonal(gram)
    d = sq[:, None] + sq[None, :] - 2 * gram
    np.maximum(d, 0, out=d)
    np.fill_diagonal(d, 0)
    return d


def pairwise_sqdist_backward(x: np.ndarray, grad_d: np.ndarray) -> np.ndarray:
    """Gradient of L = sum_ij G_ij d_ij with respect to x, for G = grad_d:

        dL/dx_k = 2 sum_j (G_kj + G_jk) (x_k - x_j) = 2 (rowsum(S)_k x_k - (S x)_k),   S = G + G^T

    S is never formed: S x = G x + G^T x, and BLAS reads G^T where G lies (building G + G^T strides down G's
    columns, slower than a matrix product at B = 4096). This is the gradient of the exact ||x_i - x_j||^2; the
    clamp in the forward pass only removes rounding error.
    """
    rowsum = grad_d.sum(axis=1) + grad_d.sum(axis=0)
    return 2 * (rowsum[:, None] * x - grad_d @ x - grad_d.T @ x)


def label_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) boolean (B, B) masks: positive[a, p] for p != a of a's identity, negative[a, n]
    for n of another identity."""
    same = labels[:, None] == labels[None, :]
    positive = same.copy()
    np.fill_diagonal(positive, False)
    return positive, ~same


def count_below(values: np.ndarray, queries: np.ndarray, inclusive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For every row i at once: counts[i, j] = #{k : values[i, k] < queries[i, j]} (<= when `inclusive`), and
    sums[i, j] = the sum of those values (float64; infinite values count but add 0).

    One stable argsort merges each row's values with its queries (a row-wise searchsorted): O(B^2 log B) time
    and O(B^2) memory. At a tie the values go first when `inclusive`, the queries first otherwise.
    """
    rows, m = values.shape
    merged = np.concatenate([values, queries] if inclusive else [queries, values], axis=1)
    order = np.argsort(merged, axis=1, kind="stable")
    is_value = order < m if inclusive else order >= queries.shape[1]
    merged_sorted = np.take_along_axis(merged, order, axis=1)
    finite_values = np.where(is_value & np.isfinite(merged_sorted), merged_sorted, 0)
    counts = np.cumsum(is_value, axis=1)  # values at or before each merged position
    sums = np.cumsum(finite_values, axis=1, dtype=np.float64)
    rank = np.empty_like(order)  # rank[i, k] = where merged[i, k] landed
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(merged.shape[1]), merged.shape), axis=1)
    query_rank = rank[:, m:] if inclusive else rank[:, : queries.shape[1]]
    return np.take_along_axis(counts, query_rank, axis=1), np.take_along_axis(sums, query_rank, axis=1)


def semihard_negatives(d: np.ndarray, labels: np.ndarray, fallback: str = "easiest") -> tuple[np.ndarray, np.ndarray]:
    """For every anchor-positive pair (a, p), a != p, in row-major order: the negative n with the smallest d_an
    among those with d_an > d_ap (lowest index at a tie). Without one, `fallback` decides: "easiest" takes the
    anchor's largest d_an, "hardest" its smallest, "skip" drops the pair. Pairs of an anchor without any negative
    are dropped. Returns (pairs (T, 2) int64, negatives (T,) int64)."""
    code = fallback_code(fallback)
    positive, negative = label_masks(labels)
    neg_d = np.where(negative, d, np.inf)
    by_distance = np.argsort(neg_d, axis=1, kind="stable")  # nearest negatives first, lowest index at a tie
    n_neg = negative.sum(axis=1)
    farther_from = count_below(neg_d, np.where(positive, d, np.inf), inclusive=True)[0]  # #{n : d_an <= d_ap}
    has_semihard = farther_from < n_neg[:, None]
    semihard = np.take_along_axis(by_distance, np.minimum(farther_from, d.shape[0] - 1), axis=1)

    pairs = np.argwhere(positive & (n_neg > 0)[:, None])
    a, p = pairs[:, 0], pairs[:, 1]
    found = has_semihard[a, p]
    if code == FALLBACK_SKIP:
        pairs, a, p = pairs[found], a[found], p[found]
        return pairs.astype(np.int64), semihard[a, p].astype(np.int64)
    if code == FALLBACK_EASIEST:
        extreme = np.argmax(np.where(negative, d, -np.inf), axis=1)  # argmax/argmin return the first: lowest index
    else:  # FALLBACK_HARDEST
        extreme = np.argmin(neg_d, axis=1)
    negatives = np.where(found, semihard[a, p], extreme[a])
    return pairs.astype(np.int64), negatives.astype(np.int64)


def semihard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, fallback: str = "easiest"
) -> tuple[float, np.ndarray, int]:
    """Semi-hard triplet loss and its gradient: mean over the kept pairs of max((d_ap + margin) - d_an, 0), with
    n from `semihard_negatives`. Returns (loss, grad_x, number of kept pairs); 0 and a zero gradient when none."""
    d = pairwise_sqdist(x)
    pairs, n = semihard_negatives(d, labels, fallback)
    a, p = pairs[:, 0], pairs[:, 1]
    if len(a) == 0:
        return 0.0, np.zeros_like(x), 0
    hinge = (d[a, p] + d.dtype.type(margin)) - d[a, n]
    active = hinge > 0
    loss = float(np.sum(hinge[active], dtype=np.float64) / len(a))
    size = d.size
    weights = np.bincount(a * len(d) + p, weights=active.astype(np.float64), minlength=size)  # + for d_ap
    weights -= np.bincount(a * len(d) + n, weights=active.astype(np.float64), minlength=size)  # - for d_an
    weights = (weights / len(a)).astype(x.dtype).reshape(d.shape)
    return loss, pairwise_sqdist_backward(x, weights), len(a)


def batch_all_triplet(x: np.ndarray, labels: np.ndarray, margin: float) -> tuple[float, np.ndarray, float, int]:
    """Batch-all triplet loss: over every valid triplet (a, p, n) of the batch, the mean of the active hinges
    (d_ap + margin) - d_an > 0; the count of active triplets is a constant in the gradient.

    Per (a, p): the number of negatives with d_an < d_ap + margin and the sum of their d_an; per (a, n): the
    number of positives with d_ap + margin > d_an. Both come from `count_below`: no B x B x B array.
    Returns (loss, grad_x, fraction of valid triplets that are active, number active).
    """
    d = pairwise_sqdist(x)
    positive, negative = label_masks(labels)
    q = np.where(positive, d + d.dtype.type(margin), np.inf)  # a triplet is active iff d_an < q_ap
    neg_d = np.where(negative, d, np.inf)
    per_pair, neg_sum = count_below(neg_d, q)
    per_pair = np.where(positive, per_pair, 0)
    per_negative = np.where(negative, positive.sum(axis=1)[:, None] - count_below(q, neg_d, inclusive=True)[0], 0)
    num_valid = int(np.sum(positive.sum(axis=1) * negative.sum(axis=1)))
    num_active = int(per_pair.sum())
    if num_active == 0:
        return 0.0, np.zeros_like(x), 0.0, 0
    hinge_sums = np.where(positive, per_pair * np.where(positive, q, 0).astype(np.float64) - neg_sum, 0)
    loss = float(hinge_sums.sum() / num_active)
    weights = ((per_pair - per_negative) / num_active).astype(x.dtype)
    return loss, pairwise_sqdist_backward(x, weights), num_active / num_valid, num_active


def hardest_in_batch(d: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each anchor that has a positive and a negative: (anchors, its farthest positive, its nearest negative),
    each (A,) int64; argmax and argmin return the first of equal values, so the lowest index wins a tie."""
    positive, negative = label_masks(labels)
    anchors = np.flatnonzero(positive.any(axis=1) & negative.any(axis=1))
    hardest_positive = np.argmax(np.where(positive, d, -np.inf), axis=1)[anchors]
    hardest_negative = np.argmin(np.where(negative, d, np.inf), axis=1)[anchors]
    return anchors, hardest_positive, hardest_negative


def batch_hard_triplet(
    x: np.ndarray, labels: np.ndarray, margin: float, soft: bool = False
) -> tuple[float, np.ndarray]:
    """Batch-hard triplet loss (Hermans et al. 2017): for each anchor with a positive and a negative, its farthest
    positive p* and nearest negative n* (lowest index at a tie); z = (d_ap* + margin) - d_an*; the loss is the mean
    over those anchors of max(z, 0), or softplus(z) = log(1 + e^z) when `soft`. Returns (loss, grad_x)."""
    d = pairwise_sqdist(x)
    anchors, hardest_positive, hardest_negative = hardest_in_batch(d, labels)
    if len(anchors) == 0:
        return 0.0, np.zeros_like(x)
    z = (d[anchors, hardest_positive] + d.dtype.type(margin)) - d[anchors, hardest_negative]
    if soft:
        losses = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
        slopes = 0.5 * (1 + np.tanh(0.5 * z))  # sigmoid(z), without overflow
    else:
        losses, slopes = np.maximum(z, 0), (z > 0).astype(d.dtype)
    weights = np.zeros_like(d)
    weights[anchors, hardest_positive] += slopes / len(anchors)  # each anchor writes its own row: no collisions
    weights[anchors, hardest_negative] -= slopes / len(anchors)
    return float(np.sum(losses, dtype=np.float64) / len(anchors)), pairwise_sqdist_backward(x, weights)
