"""Losses for face embeddings: FaceNet's triplet loss and its in-batch variants, contrastive, softmax; and the
losses that train a new model compatible with an old one (FaceNet's harmonic triplet loss, BCT's influence loss).

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


def center_loss(embeddings: Tensor, labels: Any, centers: Any, reduction: Reduction = "mean") -> Tensor:
    """Center loss (Wen, Zhang, Li and Qiao, ECCV 2016), added to softmax to pull each class together:

        L_i = 1/2 ||x_i - c_(y_i)||^2,     dL_i/dx_i = x_i - c_(y_i)

    centers (C, D): one point per class, a constant here (no gradient flows to it); move it after each step with
    update_centers, as the paper does, rather than with the optimiser."""
    x = _embeddings(embeddings, "embeddings")
    xp = array_module(x.data)
    centers = xp.asarray(centers.data if isinstance(centers, Tensor) else centers)
    if x.ndim != 2 or centers.ndim != 2 or centers.shape[1] != x.shape[1]:
        raise ValueError(f"embeddings (N, D) and centers (C, D) must share D, got {x.shape} and {centers.shape}")
    labels = _labels(labels, x.shape[0])
    if labels.size and (labels.min() < 0 or labels.max() >= centers.shape[0]):
        raise ValueError(f"labels must index the {centers.shape[0]} centers, got values in "
                         f"[{labels.min()}, {labels.max()}]")
    own = centers[xp.asarray(labels)].astype(x.dtype)
    return _reduce(0.5 * ((x - own) ** 2).sum(axis=1), reduction)


def update_centers(centers: Any, embeddings: Any, labels: Any, rate: float = 0.5) -> Any:
    """Wen et al.'s update of the class centers after a step (their eq. 4), for the classes in the batch:

        delta_j = sum_(i: y_i = j) (c_j - x_i) / (1 + n_j),    c_j <- c_j - rate * delta_j

    (n_j: the batch's examples of class j; the 1 keeps a class seen once from jumping onto its example).
    Returns the new centers; classes absent from the batch keep theirs."""
    if not 0 < rate <= 1:
        raise ValueError(f"the center update rate must be in (0, 1], got {rate}")
    x = embeddings.data if isinstance(embeddings, Tensor) else embeddings
    xp = array_module(x)
    centers = xp.array(centers, copy=True)
    labels = xp.asarray(_labels(labels, x.shape[0]))
    counts = xp.bincount(labels, minlength=centers.shape[0]).astype(centers.dtype)
    sums = xp.zeros_like(centers)
    xp.add.at(sums, labels, x.astype(centers.dtype))
    delta = (counts[:, None] * centers - sums) / (1 + counts[:, None])
    return centers - rate * delta


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


# -- compatible versions: a new model whose embeddings can be compared with an old model's ------------------
HARMONIC_SELECTIONS = ("semihard", "batch-hard", "batch-all")


def version_union(new: Tensor, old: Any, labels: Any) -> tuple[Tensor, Any]:
    """One batch of both versions' embeddings of the same B images: rows [old; new] (2B, D) and the labels twice
    (2B,). Row r < B is the old model's embedding of image r, row B + r the new model's; the two embeddings of one
    image are positives of each other. The old rows enter the graph as constants (the old model is fixed), so they
    are the rows that never receive a gradient: a kernel sees one (2B, D) batch, and the gradient it returns for
    those rows is dropped by the concatenation's backward."""
    new = _embeddings(new, "new")
    old = _embeddings(old, "old").data
    if new.ndim != 2 or old.shape != new.shape:
        raise ValueError(f"old and new must be embeddings (B, D) of the same images, got {old.shape} and {new.shape}")
    labels = _labels(labels, new.shape[0])
    xp = array_module(new.data)
    return ops.concatenate([old, new], axis=0), xp.concatenate([labels, labels])


def harmonic_triplet_loss(
    new: Tensor, old: Any, labels: Any, margin: float | Literal["soft"] = 0.2, selection: str = "semihard",
    fallback: Fallback = "easiest", backend: str | None = None,
) -> Tensor:
    """FaceNet's harmonic triplet loss (Schroff et al. 2015, appendix, figure 9): the new model's embeddings
    new (B, D) of a batch are pooled with the fixed old model's embeddings old (B, D) of the same images
    (version_union), and the in-batch triplet loss `selection` runs on the pool of 2B rows:

        semihard    every anchor-positive pair (a, p) of the pool, a != p, with the nearest negative of the pool
                    farther than p (semihard_triplet_loss): an anchor of one version meets positives and
                    negatives of both, and the negatives are chosen among the embeddings of both versions
        batch-hard  per anchor of the pool its farthest positive and nearest negative of the pool
        batch-all   every valid triplet of the pool

    Only `new` receives a gradient. Triplets of three old rows are constants: they count in the mean (the
    kernels' rule), so they scale the gradient by the fraction of triplets that hold a new row."""
    if selection not in HARMONIC_SELECTIONS:
        raise ValueError(f"selection must be one of {HARMONIC_SELECTIONS} (the in-batch triplet losses), "
                         f"got {selection!r}")
    union, union_labels = version_union(new, old, labels)
    if selection == "semihard":
        return semihard_triplet_loss(union, union_labels, margin, fallback, backend)
    if selection == "batch-hard":
        return batch_hard_triplet_loss(union, union_labels, margin, backend)
    return batch_all_triplet_loss(union, union_labels, margin, backend)[0]


def influence_loss(embeddings: Tensor, old_weight: Any, old_bias: Any, labels: Any) -> Tensor:
    """Backward-Compatible Training's influence loss (Shen, Xiong, Xia and Soatto, CVPR 2020): the new model's
    embeddings (N, D), before normalisation as a softmax head sees them, classified by the old model's frozen
    classifier, W_old (C, D) and b_old (C,) constants:

        L = mean_i cross_entropy(e_i W_old^T + b_old, labels_i)

    labels index the old classifier's C classes (the old model's training people)."""
    embeddings = _embeddings(embeddings, "embeddings")
    xp = array_module(embeddings.data)
    weight, bias = xp.asarray(old_weight, dtype=embeddings.dtype), xp.asarray(old_bias, dtype=embeddings.dtype)
    if embeddings.ndim != 2 or weight.ndim != 2 or weight.shape[1] != embeddings.shape[1] or bias.shape != (
            weight.shape[0],):
        raise ValueError(f"the old classifier (weight {weight.shape}, bias {bias.shape}) does not fit embeddings "
                         f"{embeddings.shape}: expected weight (C, {embeddings.shape[-1]}) and bias (C,)")
    return cross_entropy(embeddings @ Tensor(weight.T) + Tensor(bias), labels)


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
