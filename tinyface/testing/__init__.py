"""Property tests for losses, layers and kernels: strategies that keep away from kinks, and checks that explain.

Finite differences check a gradient only where the function is smooth; a triplet loss has kinks (hinges at 0,
selections that flip at a tie), and inputs drawn at random land near them. These strategies draw inputs at least
`min_gap` from every kink of the loss named, and the checks say what went wrong when a test fails:

    from hypothesis import given
    from tinyface.testing import check_gradients, triplet_batches

    @given(triplet_batches(loss="batch_all", margin=0.2))
    def test_my_loss_gradient(batch):
        check_gradients(lambda x: my_loss(x, batch.labels, batch.margin), batch.embeddings, batch=batch)

Open strategies.py first (what can be drawn), then checks.py (check_gradients, assert_matches_reference), kinks.py
(where a loss is not smooth, from the rules of tinyface/kernels/contract.py) and references.py (the kernel contract
as plain loops). docs/property-testing.md walks through a complete example. Needs hypothesis, which the test extra
brings: pip install "tinyface[test]".
"""

try:
    import hypothesis  # noqa: F401 - only to say clearly what is missing
except ImportError:
    raise ImportError('tinyface.testing needs hypothesis, which comes with the test extra: pip install "tinyface[test]"'
                      ) from None

from tinyface.testing import references
from tinyface.testing.checks import assert_matches_reference, check_gradients, leaf
from tinyface.testing.kinks import LOSSES, Kink, identical_rows, nearest_kink
from tinyface.testing.strategies import (
    EXACT_MARGINS,
    TripletBatch,
    arrays,
    away_from_zero,
    distinct,
    embeddings,
    exact_batches,
    floats,
    has_valid_triplet,
    images,
    pk_labels,
    triplet_batches,
)

__all__ = [
    "EXACT_MARGINS",
    "LOSSES",
    "Kink",
    "TripletBatch",
    "arrays",
    "assert_matches_reference",
    "away_from_zero",
    "check_gradients",
    "distinct",
    "embeddings",
    "exact_batches",
    "floats",
    "has_valid_triplet",
    "identical_rows",
    "images",
    "leaf",
    "nearest_kink",
    "pk_labels",
    "references",
    "triplet_batches",
]
