"""tinyface.mining: each selection against its definition, written as a plain loop over triplets."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyface import kernels, mining
from tinyface.testing import exact_batches, references

numpy_ref = kernels.numpy_ref
SETTINGS = settings(deadline=None, max_examples=50)


@st.composite
def labelled_distances(draw):
    """(d, labels): exact squared distances of small integer points, with ties, singletons, single identities."""
    batch = draw(exact_batches(batch=(1, 9), dim=2))
    return numpy_ref.pairwise_sqdist(batch.embeddings), batch.labels


@SETTINGS
@given(labelled_distances(), st.sampled_from([0.0, 1.0, 2.0]))
def test_enumerating_selections_match_their_definitions(batch, margin):
    d, labels = batch
    everything = references.all_triplets(labels)
    assert [tuple(t) for t in mining.all_triplets(labels)] == everything
    hard = [(a, p, n) for a, p, n in everything if d[a, n] < d[a, p]]
    assert [tuple(t) for t in mining.hard_triplets(d, labels)] == hard
    semihard = [(a, p, n) for a, p, n in everything if d[a, p] < d[a, n] < d[a, p] + margin]
    assert [tuple(t) for t in mining.semihard_triplets(d, labels, margin)] == semihard
    for name in ("all_triplets", "hard_triplets", "semihard_triplets"):
        out = getattr(mining, name)(*((labels,) if name == "all_triplets" else (d, labels)))
        assert out.dtype == np.int64 and out.shape[1:] == (3,)


@SETTINGS
@given(labelled_distances())
def test_batch_hard_triplets_take_the_farthest_positive_and_nearest_negative(batch):
    d, labels = batch
    assert [tuple(t) for t in mining.batch_hard_triplets(d, labels)] == references.batch_hard_triplets(d, labels)


@SETTINGS
@given(labelled_distances(), st.sampled_from(kernels.contract.FALLBACKS))
def test_semihard_negative_triplets_follow_the_loss_selection(batch, fallback):
    d, labels = batch
    out = mining.semihard_negative_triplets(d, labels, fallback)
    assert [tuple(t) for t in out] == references.semihard_negative_triplets(d, labels, fallback)
    pairs, negatives = numpy_ref.semihard_negatives(d, labels, fallback)
    assert np.array_equal(out, np.column_stack([pairs, negatives]))


def test_random_triplets_are_valid_uniform_and_reproducible():
    labels = np.array([0, 0, 1, 1, 1, 2])
    everything = references.all_triplets(labels)
    out = mining.random_triplets(labels, 24000, np.random.default_rng(0))
    counts = Counter(map(tuple, out))
    assert set(counts) == set(everything)  # every draw valid, every valid triplet drawn
    expected = len(out) / len(everything)
    assert all(abs(c - expected) < 0.15 * expected for c in counts.values())
    again = mining.random_triplets(labels, 24000, np.random.default_rng(0))
    assert np.array_equal(out, again) and out.dtype == np.int64


@SETTINGS
@given(labelled_distances(), st.sampled_from([0.5, 2.0]), st.booleans(), st.integers(0, 2**32 - 1))
def test_random_violating_triplets_follow_the_rule(batch, margin, semihard_only, seed):
    d, labels = batch
    out = mining.random_violating_triplets(d, labels, np.random.default_rng(seed), margin, semihard_only, chunk=3)

    def candidates(a, p):
        return [n for n in range(len(labels)) if labels[n] != labels[a] and d[a, n] - d[a, p] < margin
                and (not semihard_only or d[a, n] > d[a, p])]

    pairs = [(a, p) for a, p in itertools.combinations(range(len(labels)), 2) if labels[a] == labels[p]]
    assert sorted((a, p) for a, p, _ in out) == [pair for pair in pairs if candidates(*pair)]  # each pair once
    assert all(n in candidates(a, p) for a, p, n in out)
    again = mining.random_violating_triplets(d, labels, np.random.default_rng(seed), margin, semihard_only, chunk=3)
    assert np.array_equal(out, again) and out.dtype == np.int64 and out.shape[1:] == (3,)


def test_random_violating_negatives_are_drawn_among_all_candidates():
    d = np.zeros((4, 4))
    labels = np.array([0, 0, 1, 2])
    rngs = [np.random.default_rng(seed) for seed in range(40)]
    seen = {tuple(t) for rng in rngs for t in mining.random_violating_triplets(d, labels, rng)}
    assert seen == {(0, 1, 2), (0, 1, 3)}


def test_mining_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"\(B, B\) distance matrix"):
        mining.hard_triplets(np.zeros((3, 2)), np.array([0, 0, 1]))
    with pytest.raises(TypeError, match="integers"):
        mining.all_triplets(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        mining.batch_hard_triplets(np.full((2, 2), np.nan), np.array([0, 1]))
    with pytest.raises(ValueError, match="no valid triplet"):
        mining.random_triplets(np.array([0, 1, 2]), 5, np.random.default_rng(0))
