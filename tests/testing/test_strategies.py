"""tinyface.testing's strategies keep their promises on every example they draw.

The kink promise is checked twice: by nearest_kink, and independently by the reference kernels: nudging the rows
so that some squared distance moves by 0.45 min_gap (a hinge or a difference of two distances by at most 0.9
min_gap, a million times gradcheck's step) must change no choice the loss makes: which triplets are active, which
positive and which negative are picked, in which order the distances from an anchor come.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from tinyface.kernels import numpy_ref
from tinyface.kernels.contract import FALLBACKS
from tinyface.testing import (
    EXACT_MARGINS,
    away_from_zero,
    distinct,
    embeddings,
    exact_batches,
    has_valid_triplet,
    images,
    pk_labels,
    triplet_batches,
)

SETTINGS = settings(max_examples=100, deadline=None)
KINDS = [("all", 0.2, "easiest"), ("batch_all", 1.0, "easiest"), ("batch_hard", 0.2, "easiest"),
         ("batch_hard", "soft", "easiest")] + [("semihard", 0.2, fallback) for fallback in FALLBACKS]


def choices(x, labels, margin, loss, fallback):
    """Everything `loss` decides about the batch, as the reference kernels decide it."""
    d = numpy_ref.pairwise_sqdist(x)
    positive, negative = numpy_ref.label_masks(labels)
    if loss == "batch_hard":
        a, p, n = numpy_ref.hardest_in_batch(d, labels)
        hinges = [] if margin == "soft" else (d[a, p] + margin) - d[a, n] > 0
        return [a.tolist(), p.tolist(), n.tolist(), list(hinges)]
    if loss == "semihard":
        pairs, n = numpy_ref.semihard_negatives(d, labels, fallback)
        a, p = pairs[:, 0], pairs[:, 1]
        return [pairs.tolist(), n.tolist(), ((d[a, p] + margin) - d[a, n] > 0).tolist()]
    active = (positive[:, :, None] & negative[:, None, :]) & ((d[:, :, None] + margin) - d[:, None, :] > 0)
    order = [np.argsort(row, kind="stable").tolist() for row in d]
    return [active.tolist()] + ([order] if loss == "all" else [])


def nudged(x, seed, size):
    """x moved in a random direction until the largest change of a squared distance is `size`."""
    step = np.random.default_rng(seed).standard_normal(x.shape)
    d = numpy_ref.pairwise_sqdist(x)
    for _ in range(3):  # the change is nearly linear in the step: rescale it a few times
        change = np.abs(numpy_ref.pairwise_sqdist(x + step) - d).max()
        step *= size / max(change, 1e-300)
    return x + step


@pytest.mark.parametrize("loss, margin, fallback", KINDS, ids=[f"{k[0]}-{k[1]}-{k[2]}" for k in KINDS])
def test_triplet_batches_keep_every_kink_min_gap_away(loss, margin, fallback):
    gap = 0.01 if loss == "all" else 0.05  # wide, so that the nudge can reach a kink the strategy let through

    @SETTINGS
    @given(st.booleans().flatmap(lambda normalized: triplet_batches(
        loss=loss, margin=margin, fallback=fallback, min_gap=gap, normalized=normalized)), st.integers(0, 2**32 - 1))
    def check(batch, seed):
        x, labels = batch.embeddings, batch.labels
        assert x.dtype == np.float64 and x.shape == (len(labels), x.shape[1]) and labels.dtype == np.int64
        assert (batch.loss, batch.margin, batch.fallback, batch.min_gap) == (loss, margin, fallback, gap)
        assert batch.nearest_kink().distance >= gap and has_valid_triplet(labels)
        want = choices(x, labels, margin, loss, fallback)
        assert choices(nudged(x, seed, 0.45 * gap), labels, margin, loss, fallback) == want

    check()


@SETTINGS
@given(triplet_batches(normalized=True, min_gap=0.01, people=3, images=2, ragged=False, shuffle=False, dim=(2, 5)))
def test_triplet_batches_normalized_pk_and_in_order(batch):
    np.testing.assert_allclose(np.linalg.norm(batch.embeddings, axis=1), 1.0)
    labels = batch.labels
    assert len(labels) == 6 and np.array_equal(labels[::2], labels[1::2]) and len(set(labels)) == 3
    assert batch.nearest_kink().distance >= 0.01 and 2 <= batch.embeddings.shape[1] <= 5


def test_valid_false_lets_batches_without_a_triplet_through():
    """valid=True never draws one; valid=False does when the sizes allow it."""
    def invalid(batch):
        return not has_valid_triplet(batch.labels)

    assert invalid(find(triplet_batches(people=(1, 3), images=(1, 2), valid=False), invalid))
    with pytest.raises(NoSuchExample):
        find(triplet_batches(people=(1, 3), images=(1, 2)), invalid, settings=settings(max_examples=200, database=None))


@SETTINGS
@given(st.data(), st.integers(1, 5), st.integers(1, 4), st.booleans(), st.booleans())
def test_pk_labels(data, people, images, ragged, shuffle):
    labels = data.draw(pk_labels(people, images, ragged=ragged, shuffle=shuffle))
    ids, counts = np.unique(labels, return_counts=True)
    assert labels.dtype == np.int64 and len(ids) == people and np.all((ids >= 0) & (ids <= 99))
    if ragged:
        assert np.all((counts >= 1) & (counts <= images)) and (images < 2 or counts.max() >= 2)
    else:
        assert np.all(counts == images)
    if not shuffle:  # grouped by person, as PKSampler gives them
        assert np.count_nonzero(np.diff(labels)) == people - 1


@SETTINGS
@given(embeddings(batch=(2, 9), dim=(2, 6), min_gap=0.05))
def test_embeddings_have_no_two_rows_within_min_gap(x):
    d = numpy_ref.pairwise_sqdist(x)
    assert x.dtype == np.float64 and 2 <= len(x) <= 9 and 2 <= x.shape[1] <= 6
    assert np.min(d + np.diag(np.full(len(x), np.inf))) >= 0.05


@SETTINGS
@given(embeddings(batch=5, dim=3, normalized=True, dtype=np.float32))
def test_embeddings_normalized_and_cast(x):
    assert x.shape == (5, 3) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)


@SETTINGS
@given(exact_batches())
def test_exact_batches_are_small_integers(batch):
    x = batch.embeddings
    assert x.dtype == np.float64 and np.array_equal(x, np.round(x)) and np.abs(x).max() <= 2
    assert batch.margin in EXACT_MARGINS and batch.min_gap == 0.0 and len(batch.labels) == len(x)
    assert np.array_equal(numpy_ref.pairwise_sqdist(x), np.round(numpy_ref.pairwise_sqdist(x)))  # exact


@SETTINGS
@given(st.data(), st.tuples(st.integers(1, 3), st.integers(1, 4)), st.sampled_from([0.1, 0.3]))
def test_distinct_and_away_from_zero(data, shape, spacing):
    x = data.draw(distinct(shape, spacing))
    assert x.shape == shape and np.min(np.diff(np.sort(x.reshape(-1))), initial=np.inf) >= spacing - 1e-12
    y = data.draw(away_from_zero(shape, 0.5, 2.0))
    assert y.shape == shape and np.all((np.abs(y) >= 0.5) & (np.abs(y) <= 2.0))


@SETTINGS
@given(images(batch=2, channels=(1, 3), height=(2, 4), width=4, unique=True))
def test_images_are_nchw_and_unique_when_asked(x):
    assert x.ndim == 4 and x.shape[0] == 2 and 1 <= x.shape[1] <= 3 and 2 <= x.shape[2] <= 4 and x.shape[3] == 4
    assert len(np.unique(x)) == x.size


@pytest.mark.parametrize("options, message", [
    ({"loss": "lifted"}, "loss must be one of"),
    ({"fallback": "random"}, "fallback must be one of"),
    ({"min_gap": 0.0}, "min_gap must be > 0"),
    ({"loss": "batch_all", "margin": "soft"}, "soft margin"),
    ({"normalized": True, "dim": 1}, "dim >= 2"),
])
def test_bad_options_say_what_is_wrong(options, message):
    @settings(max_examples=1, database=None)
    @given(triplet_batches(**options))
    def draw(batch):
        pass

    with pytest.raises(ValueError, match=message):
        draw()
