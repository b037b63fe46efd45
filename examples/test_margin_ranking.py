"""Three property tests of margin_ranking.py, built from tinyface.testing (docs/property-testing.md explains each)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from margin_ranking import margin_ranking_loss

from tinyface.testing import assert_matches_reference, check_gradients, exact_batches, leaf, triplet_batches


def margin_ranking_by_loops(x, labels, margin):
    """The definition, one triplet at a time: the mean hinge over the valid triplets, and its gradient."""
    d = [[float(np.sum((x[i] - x[j]) ** 2)) for j in range(len(x))] for i in range(len(x))]
    triplets = [(a, p, n) for a, p, n in itertools.product(range(len(x)), repeat=3)
                if a != p and labels[a] == labels[p] and labels[n] != labels[a]]
    loss, grad = 0.0, np.zeros_like(x)
    for a, p, n in triplets:
        if (d[a][p] + margin) - d[a][n] > 0:
            loss += (d[a][p] + margin) - d[a][n]
            grad[a] += 2 * (x[n] - x[p])  # d/da of ||a - p||^2 - ||a - n||^2
            grad[p] += 2 * (x[p] - x[a])
            grad[n] += 2 * (x[a] - x[n])
    count = max(len(triplets), 1)
    return loss / count, grad / count


def loss_and_gradient(batch):
    x = leaf(batch.embeddings)
    loss = margin_ranking_loss(x, batch.labels, batch.margin)
    loss.backward()
    return loss.item(), x.grad


# 1. values and gradients equal a plain loop on exact batches (integer embeddings: every tie and hinge exact)
def test_matches_the_loops_on_exact_batches():
    assert_matches_reference(loss_and_gradient, lambda b: margin_ranking_by_loops(b.embeddings, b.labels, b.margin),
                             exact_batches(), rtol=1e-10, atol=1e-10)


# 2. the backward pass agrees with finite differences, on batches whose hinges are all 1e-3 or more from 0
@given(triplet_batches(loss="batch_all", margin=st.sampled_from([0.2, 1.0])))
def test_gradients_match_finite_differences(batch):
    check_gradients(lambda x: margin_ranking_loss(x, batch.labels, batch.margin), batch.embeddings, batch=batch)


# 3. a property of the loss itself: neither the order of the batch nor the numbers naming the people matter
@given(triplet_batches(), st.data())
def test_the_order_of_the_batch_and_the_names_of_the_people_do_not_matter(batch, data):
    order = np.array(data.draw(st.permutations(range(len(batch.labels)))))
    shuffled, renamed = batch.embeddings[order], 7 * batch.labels[order] + 1000  # the same people, other names
    before = margin_ranking_loss(leaf(batch.embeddings), batch.labels, batch.margin).item()
    assert np.isclose(margin_ranking_loss(leaf(shuffled), renamed, batch.margin).item(), before, rtol=1e-12)
