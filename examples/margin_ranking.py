"""A loss of your own as a tinyface Function: the margin-ranking loss over every valid triplet of a batch.

    L = 1/T  sum over the T valid triplets (a, p, n) of  max((d_ap + margin) - d_an, 0)

with d the squared L2 distances of the embeddings: a and p share an identity (a != p), n has another. Unlike
batch_all_triplet_loss, which averages over the active triplets only, it divides by every valid triplet, so the
loss falls to 0 as the triplets are learned. test_margin_ranking.py tests it with tinyface.testing; the walk-through
is docs/property-testing.md.
"""

from __future__ import annotations

import numpy as np

from tinyface import Function, Tensor


class MarginRanking(Function):
    """Forward and backward by hand, in O(B^3) memory (for small batches; tinyface.kernels shows the O(B^2) way).

    The loss is sum_ij W_ij d_ij with W_ap = (number of active triplets of the pair (a, p)) / T and
    W_an = -(number of active triplets of (a, n)) / T, so its gradient is that of a weighted sum of distances:
    dL/dx_k = 2 sum_j (W_kj + W_jk)(x_k - x_j).
    """

    def forward(self, x, labels, margin):
        d = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
        same = labels[:, None] == labels[None, :]
        positive = same & ~np.eye(len(x), dtype=bool)
        valid = positive[:, :, None] & ~same[:, None, :]  # valid[a, p, n]
        hinge = (d[:, :, None] + margin) - d[:, None, :]  # hinge[a, p, n] = (d_ap + margin) - d_an
        active = valid & (hinge > 0)
        count = max(int(valid.sum()), 1)
        self.x, self.weights = x, (active.sum(axis=2) - active.sum(axis=1)) / count
        return np.asarray(np.sum(hinge, where=active) / count)

    def backward(self, grad):
        w = self.weights + self.weights.T
        return grad * 2 * (w.sum(axis=1)[:, None] * self.x - w @ self.x)


def margin_ranking_loss(embeddings: Tensor, labels: np.ndarray, margin: float = 0.2) -> Tensor:
    """The margin-ranking loss of a batch: embeddings (B, D), integer labels (B,); 0 when nothing is valid."""
    return MarginRanking.apply(embeddings, labels=np.asarray(labels), margin=float(margin))
