"""Losses for face embeddings: FaceNet's triplet loss and its in-batch variants, contrastive, softmax.

Distances are squared L2, as in the paper: d(a, b) = ||f(a) - f(b)||^2. The in-batch triplet losses run a fused
kernel (tinyface.kernels) that returns the loss and its gradient with respect to the embeddings at once, in
O(B^2) memory; `KernelLoss` shows it to autograd as a single op.

A hinge is written (d_ap + margin) - d_an everywhere, so that it is active exactly when d_an < d_ap + margin.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from tinyface import kernels, ops
from tinyface.device import array_module, to_numpy
from tinyface.kernels.contract import FALLBACKS, Fallback
from tinyface.tensor import Function, Tensor

Reduction = Literal["sum", "mean", "none"]


# -- autograd ops backed by kernels --------------------------------------------------------------------------
class PairwiseSqdist(Function):
    """d_ij = ||x_i - x_j||^2 for every pair of rows, (B, D) -> (B, B); backward by the kernel:
    dL/dx_k = 2 sum_j (G_kj + G_jk)(x_k - x_j) for G = dL/dd."""

    def forward(self, x, backend=None):
        self.x, self.backend = x, backend
        return kernels.pairwise_sqdist(x, backend=backend)

    def backward(self, grad):
        return kernels.pairwise_sqdist_backward(self.x, grad, backend=self.backend)


class KernelLoss(Function):
    """A loss a fused kernel has already computed, with its gradient dloss/dx: forward returns the loss,
    backward scales the stored gradient by the incoming one (the chain rule for a scalar output)."""

    def forward(self, x, loss, grad_x):
        self.grad_x = grad_x
        return array_module(x).asarray(loss, dtype=x.dtype)

    def backward(self, grad):
        return grad * self.grad_x


def pairwise_sqdist(x: Tensor, backend: str | None = None) -> Tensor:
    """Squared L2 distances between the rows of x, (B, D) -> (B, B): clamped at 0, exactly 0 on the diagonal."""
    x = _embeddings(x, "x")
    return PairwiseSqdist.apply(x, backend=backend)


# -- triplet loss, the paper's formula -----------------------------------------------------------------------
def triplet_loss(
    anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 0.2, reduction: Reduction = "sum"
) -> Tensor:
    """FaceNet's triplet loss for given triplets of embeddings (T, D) each:

        L_i = max(||a_i - p_i||^2 - ||a_i - n_i||^2 + margin, 0)

    reduction="sum" is the paper's formula (a sum over the triplets); "mean" divides by T; "none" gives (T,).
    """
    anchor, positive, negative = (_embeddings(t, name) for t, name in
                                  ((anchor, "anchor"), (positive, "positive"), (negative, "negative")))
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"anchor, positive and negative must have the same shape (T, D), got {anchor.shape}, "
            f"{positive.shape} and {negative.shape}"
        )
    d_ap = ((anchor - positive) ** 2).sum(axis=-1)
    d_an = ((anchor - negative) ** 2).sum(axis=-1)
    return _reduce(((d_ap + _margin(margin)) - d_an).relu(), reduction)


def contrastive_loss(
    x1: Tensor, x2: Tensor, same: Any, margin: float = 1.0, reduction: Reduction = "mean"
) -> Tensor:
    """Contrastive loss for Siamese networks (Hadsell, Chopra and LeCun 2006), on pairs of embeddings (N, D):

        L_i = d_i                           if same[i] (pull the pair together)
        L_i = max(margin - sqrt(d_i), 0)^2  otherwise (push it at least `margin` apart, in plain L2)

    with d_i = ||x1_i - x2_i||^2 (twice Hadsell's loss, which halves both terms). sqrt is guarded at d = 0:
    value 0 and gradient 0 there, never a NaN for identical embeddings.
    """
    x1, x2 = _embeddings(x1, "x1"), _embeddings(x2, "x2")
    if x1.shape != x2.shape:
        raise ValueError(f"x1 and x2 must have the same shape (N, D), got {x1.shape} and {x2.shape}")
    xp = array_module(x1.data)
    same = xp.asarray(same.data if isinstance(same, Tensor) else same)
    if same.shape != x1.shape[:-1]:
        raise ValueError(f"`same` must have one flag per pair, shape {x1.shape[:-1]}, got {same.shape}")
    same = same.astype(bool)
    d = ((x1 - x2) ** 2).sum(axis=-1)
    nonzero = d.data > 0
    distance = ops.where(nonzero, ops.where(nonzero, d, 1.0).sqrt(), 0.0)  # sqrt never sees 0: no inf gradient
    push = (_margin(margin) - distance).relu() ** 2
    return _reduce(ops.where(same, d, push), reduction)


def cross_entropy(logits: Tensor, labels: Any, reduction: Reduction = "mean") -> Tensor:
    """Softmax cross-entropy for logits (N, C) and integer class labels (N,):

        L_i = log sum_c exp(z_ic) - z_i,label_i
    """
    if not isinstance(logits, Tensor):
        logits = Tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {logits.shape}")
    labels = _labels(labels, logits.shape[0])
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must be class indices in [0, {logits.shape[1]}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    xp = array_module(logits.data)
    rows = xp.arange(logits.shape[0])
    picked = logits[(rows, xp.asarray(labels))]
    return _reduce(ops.logsumexp(logits, axis=1) - picked, reduction)


# -- in-batch triplet losses (fused kernels) -----------------------------------------------------------------
def batch_all_triplet_loss(
    embeddings: Tensor, labels: Any, margin: float = 0.2, backend: str | None = None
) -> tuple[Tensor, float]:
    """Batch-all triplet loss: over every valid triplet (a, p, n) of the batch (a != p same identity, n another),
    the mean of the hinges max((d_ap + margin) - d_an, 0) that are positive. Returns (loss, fraction of valid
    triplets that are active): the fraction falling during training is what a log should show."""
    x, labels = _check_batch(embeddings, labels)
    loss, grad_x, fraction_active, _ = kernels.batch_all_triplet(x.data, labels, _margin(margin), backend=backend)
    return KernelLoss.apply(x, loss=loss, grad_x=grad_x), float(fraction_active)


def batch_hard_triplet_loss(
    embeddings: Tensor, labels: Any, margin: float | Literal["soft"] = 0.2, backend: str | None = None
) -> Tensor:
    """Batch-hard triplet loss (Hermans, Beyer and Leibe 2017): for each anchor, its farthest positive p* and its
    nearest negative n*; the mean over anchors of max((d_ap* + margin) - d_an*, 0), or with margin="soft" of
    softplus(d_ap* - d_an*) = log(1 + exp(d_ap* - d_an*)). Ties go to the lowest index."""
    x, labels = _check_batch(embeddings, labels)
    soft = isinstance(margin, str)
    if soft and margin != "soft":
        raise ValueError(f"margin must be a number or 'soft', got {margin!r}")
    value = 0.0 if soft else _margin(margin)
    loss, grad_x = kernels.batch_hard_triplet(x.data, labels, value, soft, backend=backend)
    return KernelLoss.apply(x, loss=loss, grad_x=grad_x)


def semihard_triplet_loss(
    embeddings: Tensor, labels: Any, margin: float = 0.2, fallback: Fallback = "easiest", backend: str | None = None
) -> Tensor:
    """Semi-hard triplet loss, FaceNet's online selection. With d the squared L2 distances of the embeddings as
    given: for every anchor-positive pair (a, p), a != p, the negative n with the smallest d_an among those with
    d_an > d_ap (lowest index at a tie). When there is none, fallback="easiest" takes the anchor's largest d_an
    (the TensorFlow Addons rule), "hardest" its smallest, "skip" drops the pair. The loss is the mean over the kept
    pairs of max((d_ap + margin) - d_an, 0); 0 (with a zero gradient) when "skip" keeps none."""
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    x, labels = _check_batch(embeddings, labels)
    loss, grad_x, _ = kernels.semihard_triplet(x.data, labels, _margin(margin), fallback, backend=backend)
    return KernelLoss.apply(x, loss=loss, grad_x=grad_x)


# -- checks at the boundary ----------------------------------------------------------------------------------
def _embeddings(x: Any, name: str) -> Tensor:
    x = x if isinstance(x, Tensor) else Tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must hold floating-point embeddings, got dtype {x.dtype}")
    if not bool(array_module(x.data).isfinite(x.data).all()):
        raise ValueError(f"{name} contains NaN or infinite values: check the model's output (a diverging "
                         "training run, or a division by a zero norm)")
    return x


def _labels(labels: Any, size: int) -> Any:
    labels = labels.data if isinstance(labels, Tensor) else labels
    labels = array_module(labels).asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != size:
        raise ValueError(f"labels must have shape ({size},), one per row, got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers (identity or class ids), got dtype {labels.dtype}")
    return labels


def _check_batch(embeddings: Any, labels: Any) -> tuple[Tensor, Any]:
    """Embeddings (B, D), finite; labels (B,) integers; at least one anchor-positive pair and one negative."""
    x = _embeddings(embeddings, "embeddings")
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (B, D), got {x.shape}")
    labels = _labels(labels, x.shape[0])
    counts = np.unique(to_numpy(labels), return_counts=True)[1]
    if not np.any(counts >= 2):
        raise ValueError("the batch has no anchor-positive pair: every identity appears once. Sample at least "
                         "2 images per identity (a P x K batch with K >= 2).")
    if len(counts) < 2:
        raise ValueError("the batch has a single identity, so no negative: sample at least 2 identities "
                         "(a P x K batch with P >= 2).")
    return x, array_module(x.data).asarray(labels, dtype=np.int64)


def _margin(margin: Any) -> float:
    margin = float(margin)
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    return margin


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean()
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")
