"""A test of the tests: deliberately wrong losses, each caught by a property test built only from tinyface.testing
within hypothesis's default example budget, while the correct losses pass (1,000 examples each under -m slow).

Two property tests, the two a user writes for a loss of their own:
    gradients   check_gradients on triplet_batches(loss=...): the backward pass against finite differences
    reference   assert_matches_reference on exact batches: value and gradient against a plain loop
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings

from tinyface import kernels, losses, ops
from tinyface.losses import KernelLoss
from tinyface.testing import (
    assert_matches_reference,
    check_gradients,
    exact_batches,
    has_valid_triplet,
    leaf,
    references,
    triplet_batches,
)

numpy_ref = kernels.numpy_ref
VALID_EXACT = exact_batches().filter(lambda batch: has_valid_triplet(batch.labels))


# -- the correct losses, as functions of (embeddings, labels, margin), and their plain-loop references ----------
def batch_all(x, labels, margin):
    return losses.batch_all_triplet_loss(x, labels, margin)[0]


def semihard(x, labels, margin):
    return losses.semihard_triplet_loss(x, labels, margin, "easiest")


def contrastive(x, labels, margin):
    """Contrastive loss over the neighbouring rows (i, i + 1) of the batch."""
    return losses.contrastive_loss(x[:-1], x[1:], labels[:-1] == labels[1:], margin)


def contrastive_loops(x, labels, margin):
    """Mean over pairs (i, i + 1) of d if same, else max(margin - sqrt(d), 0)^2; no gradient where d = 0."""
    total, grad, pairs = 0.0, np.zeros_like(x), len(x) - 1
    for i in range(pairs):
        diff = x[i] - x[i + 1]
        d = float(diff @ diff)
        if labels[i] == labels[i + 1]:
            total, slope = total + d, 2 * diff
        else:
            push = max(margin - math.sqrt(d), 0.0)
            total, slope = total + push**2, (-2 * push * diff / math.sqrt(d) if d > 0 else 0 * diff)
        grad[i] += slope / pairs
        grad[i + 1] -= slope / pairs
    return total / pairs, grad


# -- the wrong ones ----------------------------------------------------------------------------------------------
def gradient_doubled(x, labels, margin):
    """batch-all with a gradient off by a factor of 2 on the active triplets."""
    loss, grad, _, _ = numpy_ref.batch_all_triplet(x.data, labels, margin)
    return KernelLoss.apply(x, loss=loss, grad_x=2 * grad)


def negative_term_sign_flipped(x, labels, margin):
    """batch-all whose gradient takes d_an with a plus sign: d(d_ap - d_an) written as d(d_ap + d_an)."""
    loss, _, _, _ = numpy_ref.batch_all_triplet(x.data, labels, margin)
    d = numpy_ref.pairwise_sqdist(x.data)
    active = [(a, p, n) for a, p, n in references.all_triplets(labels) if (d[a, p] + margin) - d[a, n] > 0]
    weights = np.zeros_like(d)
    for a, p, n in active:
        weights[a, p] += 1 / len(active)
        weights[a, n] += 1 / len(active)  # the mistake: -=
    return KernelLoss.apply(x, loss=loss, grad_x=numpy_ref.pairwise_sqdist_backward(x.data, weights))


def margin_added_twice(x, labels, margin):
    """batch-all with hinges (d_ap + margin + margin) - d_an, value and gradient alike."""
    return losses.batch_all_triplet_loss(x, labels, margin + margin)[0]


def semihard_falls_back_to_the_hardest(x, labels, margin):
    """semi-hard that, without a negative beyond the positive, takes the nearest negative instead of the farthest."""
    return losses.semihard_triplet_loss(x, labels, margin, "hardest")


def contrastive_without_the_guard_at_zero(x, labels, margin):
    """contrastive with sqrt(d) unguarded: at identical embeddings its gradient is 0 * inf = NaN."""
    x1, x2 = x[:-1], x[1:]
    d = ((x1 - x2) ** 2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        push = (margin - d.sqrt()).relu() ** 2
        return ops.where(labels[:-1] == labels[1:], d, push).mean()


# -- the two property tests --------------------------------------------------------------------------------------
def gradients(loss, kind, **options):
    """check_gradients on batches kept away from the kinks of `kind`."""

    @settings(deadline=None, database=None, report_multiple_bugs=False, **options)
    @given(triplet_batches(loss=kind))
    def gradients_match(batch):
        check_gradients(lambda x: loss(x, batch.labels, batch.margin), batch.embeddings, batch=batch)

    gradients_match()


def reference(loss, loops, **options):
    """The loss's value and gradient against `loops` on exact batches with a valid triplet."""

    def value_and_gradient(batch):
        x = leaf(batch.embeddings)
        out = loss(x, batch.labels, batch.margin)
        with np.errstate(divide="ignore", invalid="ignore"):  # the unguarded sqrt's 0 * inf
            out.backward()
        return out.item(), x.grad

    def by_loops(batch):
        return tuple(loops(batch.embeddings, batch.labels, batch.margin)[:2])

    assert_matches_reference(value_and_gradient, by_loops, VALID_EXACT, rtol=1e-10, atol=1e-10, database=None,
                             report_multiple_bugs=False, **options)


CORRECT = [  # (loss, the kinks it has, its loops); contrastive's kink at sqrt(d) = margin is not a triplet kink
    (batch_all, "batch_all", references.batch_all_triplet),
    (semihard, "semihard", references.semihard_triplet),
    (contrastive, None, contrastive_loops),
]
WRONG = [  # (loss, the kinks of the loss it should be, its loops, the property that catches it)
    (gradient_doubled, "batch_all", references.batch_all_triplet, "gradients"),
    (negative_term_sign_flipped, "batch_all", references.batch_all_triplet, "gradients"),
    (margin_added_twice, "batch_all", references.batch_all_triplet, "reference"),
    (semihard_falls_back_to_the_hardest, "semihard", references.semihard_triplet, "reference"),
    (contrastive_without_the_guard_at_zero, None, contrastive_loops, "reference"),
]


@pytest.mark.parametrize("loss, kind, loops, caught_by", WRONG, ids=[w[0].__name__ for w in WRONG])
def test_each_wrong_loss_is_caught_within_the_default_budget(loss, kind, loops, caught_by):
    with pytest.raises(AssertionError):
        if caught_by == "gradients":
            gradients(loss, kind)
        else:
            reference(loss, loops)


@pytest.mark.parametrize("loss, kind, loops", CORRECT, ids=[c[0].__name__ for c in CORRECT])
def test_the_correct_losses_pass(loss, kind, loops):
    if kind is not None:
        gradients(loss, kind)
    reference(loss, loops)


@pytest.mark.slow
@pytest.mark.parametrize("loss, kind, loops", CORRECT, ids=[c[0].__name__ for c in CORRECT])
def test_the_correct_losses_pass_a_thousand_examples(loss, kind, loops):
    if kind is not None:
        gradients(loss, kind, max_examples=1000)
    reference(loss, loops, max_examples=1000)
