"""Hypothesis strategies for property tests of losses, layers and kernels.

For layer and op tests (float64 arrays, kept away from the kinks of relu, abs, max and pooling by construction):

    floats(low, high)              finite floats, no subnormals
    arrays(shape, low, high)       arrays of them
    away_from_zero(shape)          |x| in [0.1, 2], either sign: relu, abs and a norm are smooth there
    distinct(shape, spacing)       all entries `spacing` apart: max, min and max-pooling never tie
    images(batch, channels, height, width)   (N, C, H, W) arrays, with `unique=True` no two pixels equal

For triplet losses (a `TripletBatch`: embeddings, labels, margin and what is promised about them):

    embeddings(batch, dim)         (B, D) rows, no two identical
    pk_labels(people, images)      P people x K images (ragged=True: 1 to K each)
    triplet_batches(loss=...)      every kink of the named loss at least min_gap away (kinks.py): for gradcheck
    exact_batches()                small integer entries, so every distance and tie is exact: for comparing a
                                   loss with a plain-loop reference (checks.assert_matches_reference)

A size or a dimension may be a number, a range (low, high) with both ends included, or a strategy; a margin a
number or a strategy. Whatever is not a number is drawn anew for each example. Embeddings come from
a NumPy generator seeded by hypothesis: every example is reproducible, and hypothesis shrinks the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from hypothesis import assume, reject
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from tinyface.kernels.contract import Fallback, fallback_code
from tinyface.testing.kinks import LOSSES, Kink, LossName, identical_rows, nearest_kink

__all__ = [
    "EXACT_MARGINS",
    "TripletBatch",
    "arrays",
    "away_from_zero",
    "distinct",
    "embeddings",
    "exact_batches",
    "floats",
    "has_valid_triplet",
    "images",
    "pk_labels",
    "triplet_batches",
]

T = TypeVar("T")
Drawn = T | SearchStrategy[T]  # a value, or a strategy that draws one per example
Size = int | tuple[int, int] | SearchStrategy[int]  # a size, a range (low, high) both included, or a strategy
EXACT_MARGINS = (0.0, 0.5, 1.0, 2.0)  # exact in binary: the hinges of exact batches are exact too
TRIES = 20  # fresh embeddings to try for one example before rejecting it
SEEDS = st.integers(0, 2**32 - 1)


@dataclass(frozen=True, eq=False)
class TripletBatch:
    """A drawn batch: embeddings (B, D) float64, labels (B,) int64, the margin, and the promise kept: every kink of
    `loss` (semi-hard with `fallback`) is at least `min_gap` away (min_gap=0.0: no promise, as in exact batches)."""

    embeddings: np.ndarray
    labels: np.ndarray
    margin: float | str = 0.2
    loss: LossName = "all"
    fallback: Fallback = "easiest"
    min_gap: float = 0.0

    def nearest_kink(self) -> Kink:
        """The kink of `loss` nearest to this batch (kinks.nearest_kink)."""
        return nearest_kink(self.embeddings, self.labels, self.margin, self.loss, self.fallback)


# -- arrays for layers and ops -------------------------------------------------------------------------------
def floats(low: float = -2.0, high: float = 2.0) -> SearchStrategy[float]:
    """Finite floats in [low, high], without subnormals (too small for finite differences to see)."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays(shape: Drawn[tuple[int, ...]], low: float = -2.0, high: float = 2.0) -> SearchStrategy[np.ndarray]:
    """float64 arrays of `shape` (a tuple, or a strategy such as hypothesis.extra.numpy.array_shapes()) with
    entries in [low, high]."""
    return hnp.arrays(np.float64, shape, elements=floats(low, high))


def away_from_zero(shape: Drawn[tuple[int, ...]], low: float = 0.1, high: float = 2.0) -> SearchStrategy[np.ndarray]:
    """float64 arrays with |x| in [low, high], either sign: no kink of relu or abs (at 0) within reach of finite
    differences, and no norm near 0."""
    signed = st.tuples(floats(low, high), st.booleans()).map(lambda t: t[0] if t[1] else -t[0])
    return hnp.arrays(np.float64, shape, elements=signed)


@st.composite
def distinct(draw: Any, shape: Drawn[tuple[int, ...]], spacing: float = 0.3) -> np.ndarray:
    """float64 arrays of `shape` whose entries differ pairwise by at least `spacing` (a permuted grid around 0):
    max, min and max-pooling always have a single winner."""
    shape = draw(shape) if isinstance(shape, SearchStrategy) else shape
    size = int(np.prod(shape))
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64)
    return ((order - size / 2) * spacing + 0.01).reshape(shape)


@st.composite
def images(
    draw: Any,
    batch: Size = (1, 2),
    channels: Size = (1, 2),
    height: Size = (1, 5),
    width: Size = (1, 5),
    low: float = -2.0,
    high: float = 2.0,
    unique: bool = False,
) -> np.ndarray:
    """(N, C, H, W) float64 images for layer tests: entries in [low, high], or with `unique` all different
    (distinct() with spacing 0.1), so that no max-pooling window holds a tie."""
    shape = tuple(_size(draw, size) for size in (batch, channels, height, width))
    return draw(distinct(shape, spacing=0.1) if unique else arrays(shape, low, high))


# -- batches for triplet losses ------------------------------------------------------------------------------
@st.composite
def embeddings(
    draw: Any,
    batch: Size = (2, 8),
    dim: Size = (2, 4),
    normalized: bool = False,
    min_gap: float = 1e-3,
    dtype: Any = np.float64,
) -> np.ndarray:
    """(B, D) embeddings: standard normal rows (unit rows when `normalized`, as a face model outputs), no two rows
    within min_gap of each other in squared L2 distance (checked in float64, then cast to `dtype`)."""
    b, d = _size(draw, batch), _size(draw, dim)
    rng = np.random.default_rng(draw(SEEDS))
    for _ in range(TRIES):
        x = _rows(rng, b, d, normalized)
        if identical_rows(x).distance >= min_gap:
            return x.astype(dtype)
    reject()


@st.composite
def pk_labels(
    draw: Any,
    people: Size = (2, 4),
    images: Size = (2, 3),
    ragged: bool = False,
    shuffle: bool = False,
) -> np.ndarray:
    """(B,) int64 labels of P people with K images each, grouped by person (as tinyface.data.PKSampler gives
    them). `ragged`: each person has 1 to K images, and one at least 2 when K >= 2 (ragged batches have anchors
    without a positive); `shuffle`: in random order. The identities are distinct numbers in 0..99, not 0..P-1,
    so code that takes a label for an index fails."""
    p, k = _size(draw, people), _size(draw, images)
    if p < 1 or k < 1 or p > 100:
        raise ValueError(f"pk_labels needs 1 <= people <= 100 and images >= 1, got people={p}, images={k}")
    ids = np.array(draw(st.lists(st.integers(0, 99), min_size=p, max_size=p, unique=True)), dtype=np.int64)
    counts = [k] * p
    if ragged:
        counts = draw(st.lists(st.integers(1, k), min_size=p, max_size=p).filter(lambda c: k < 2 or max(c) >= 2))
    labels = np.repeat(ids, counts)
    if shuffle:
        labels = labels[np.array(draw(st.permutations(range(len(labels)))), dtype=np.int64)]
    return labels


@st.composite
def triplet_batches(
    draw: Any,
    people: Size = (2, 4),
    images: Size = (2, 3),
    dim: Size = (2, 4),
    margin: Drawn[float | str] = 0.2,
    loss: LossName = "all",
    fallback: Drawn[Fallback] = "easiest",
    min_gap: float = 1e-3,
    normalized: bool = False,
    ragged: bool = True,
    shuffle: bool = True,
    valid: bool = True,
) -> TripletBatch:
    """Batches (a TripletBatch) on which finite differences tell the truth about `loss`: every kink of it (hinges
    near 0, ties that flip a selection, the semi-hard boundary, identical rows; kinks.py) is at least `min_gap`
    away in squared distance. loss="all" is the strictest, for a loss of your own; "batch_all", "batch_hard" and
    "semihard" (with `fallback`) keep away only the kinks of that loss. margin="soft" is batch-hard's soft margin.

    Labels come from pk_labels(people, images, ragged, shuffle); by default ragged and shuffled, the harder case.
    `valid`: only batches with at least one valid triplet (a, p, n); valid=False lets through batches with none
    too (give people or images strategies that reach 1), to test the contract's "nothing to learn" rule.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not min_gap > 0:
        raise ValueError(f"min_gap must be > 0 (a distance in squared L2 units), got {min_gap}")
    labels = draw(pk_labels(people, images, ragged=ragged, shuffle=shuffle))
    if valid:
        assume(has_valid_triplet(labels))
    d, m, fallback = _size(draw, dim), _value(draw, margin), _value(draw, fallback)
    fallback_code(fallback)  # a ValueError for an unknown fallback, rather than a quiet default
    rng = np.random.default_rng(draw(SEEDS))
    for _ in range(TRIES):
        x = _rows(rng, len(labels), d, normalized)
        if nearest_kink(x, labels, m, loss, fallback).distance >= min_gap:
            return TripletBatch(x, labels, m, loss, fallback, min_gap)
    reject()


@st.composite
def exact_batches(
    draw: Any,
    batch: Size = (2, 10),
    dim: Size = (1, 3),
    people: Size = (1, 4),
    margin: Drawn[float] | None = None,
) -> TripletBatch:
    """Batches on which every implementation must agree to the index (min_gap=0.0: kinks everywhere): float64
    embeddings with entries in {-2, ..., 2}, so every squared distance and hinge is a small exact number; many
    ties and duplicate rows, sometimes a single identity or only singletons (nothing to learn). The margin is one
    of EXACT_MARGINS unless given."""
    b, d, p = _size(draw, batch), _size(draw, dim), _size(draw, people)
    x = np.array(draw(st.lists(st.integers(-2, 2), min_size=b * d, max_size=b * d)), dtype=np.float64)
    labels = np.array(draw(st.lists(st.integers(0, p - 1), min_size=b, max_size=b)), dtype=np.int64)
    m = draw(st.sampled_from(EXACT_MARGINS)) if margin is None else _value(draw, margin)
    return TripletBatch(x.reshape(b, d), labels, m)


def has_valid_triplet(labels: Any) -> bool:
    """Whether the labels hold a valid triplet: an identity with 2 or more rows, and another identity."""
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return len(counts) >= 2 and counts.max() >= 2


def _rows(rng: np.random.Generator, b: int, d: int, normalized: bool) -> np.ndarray:
    x = rng.standard_normal((b, d))
    if normalized:
        if d < 2:
            raise ValueError("normalized embeddings need dim >= 2: in one dimension a unit row is -1 or 1")
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _value(draw: Any, value: Drawn[T]) -> T:
    """`value` itself, or one drawn from it when it is a strategy."""
    return draw(value) if isinstance(value, SearchStrategy) else value


def _size(draw: Any, size: Size) -> int:
    """A size: given, drawn from the range (low, high), or drawn from a strategy."""
    return draw(st.integers(*size)) if isinstance(size, tuple) else _value(draw, size)
