"""Compare faces 1:1: the matrix of squared L2 distances, "same" where d <= tau, and a confidence that the
run's validation pairs support.

The confidence of "same" at distance d uses only the ROC of the validation pairs, through its two error rates:

    FRR(d) = #{same pairs with D > d} / #same       (how often a same pair looks at least this far apart)
    FAR(d) = #{diff pairs with D <= d} / #diff      (how often a different pair looks at least this close)
    c(d)   = FRR(d) / (FRR(d) + FAR(d))

FRR falls and FAR rises with d, so c falls monotonically from 1 to 0 and is exactly 1/2 where FAR = FRR (the
equal error rate threshold). It weighs the two one-sided tail probabilities as a posterior with equal priors
weighs likelihoods: a tail-based stand-in for P(same | d), which would need density estimates that a few
thousand pairs make noisy. It is not calibrated to any other prior, and it says nothing about pairs unlike the
validation pairs (other cameras, other people). Counts get add-one (Laplace) smoothing, (k + 1) / (n + 2), so
c stays inside (0, 1): n validation pairs cannot support certainty beyond about 1 / n.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinyface.eval.checks import check_distances, check_embeddings
from tinyface.eval.distances import squared_distances


class Comparison(NamedTuple):
    """distances (N, N) squared L2; same (N, N) d <= tau; confidence (N, N) c(d) of "same" (1 - c of
    "different"), or None when no validation pairs were given."""

    distances: np.ndarray
    same: np.ndarray
    confidence: np.ndarray | None


def confidence(distance: np.ndarray | float, distances_same: np.ndarray, distances_diff: np.ndarray) -> np.ndarray:
    """c(d) = FRR(d) / (FRR(d) + FAR(d)) with add-one smoothing (see the module docstring), elementwise for any
    shape of `distance`; distances_same and distances_diff are the validation pairs' distances."""
    same, diff = _sample(distances_same, "distances_same"), _sample(distances_diff, "distances_diff")
    d = np.asarray(distance, dtype=np.float64)
    if np.any(np.isnan(d)):
        raise ValueError("distance contains NaN")
    frr = (len(same) - np.searchsorted(same, d, side="right") + 1) / (len(same) + 2)
    far = (np.searchsorted(diff, d, side="right") + 1) / (len(diff) + 2)
    return frr / (frr + far)


def compare(
    embeddings: np.ndarray, tau: float, validation: tuple[np.ndarray, np.ndarray] | None = None
) -> Comparison:
    """All pairs among embeddings (N, D): distances, same/different at tau and, given the validation pairs as
    (distances, same flags), the confidence c(d) of "same"."""
    embeddings = check_embeddings(embeddings, dtype=np.float64)
    if len(embeddings) < 2:
        raise ValueError(f"compare needs the embeddings of at least two faces, got {len(embeddings)}")
    if not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be a non-negative squared L2 distance, got {tau}")
    d = squared_distances(embeddings, embeddings)
    np.fill_diagonal(d, 0.0)  # exactly, not a rounding error away
    c = None
    if validation is not None:
        pair_distances, pair_same = (np.asarray(a) for a in validation)
        if pair_distances.shape != pair_same.shape or pair_distances.ndim != 1:
            raise ValueError(f"validation must be (distances, same) of equal 1-D shapes, got {pair_distances.shape} "
                             f"and {pair_same.shape}")
        pair_same = pair_same.astype(bool)
        c = confidence(d, pair_distances[pair_same], pair_distances[~pair_same])
    return Comparison(d, d <= tau, c)


def _sample(distances: np.ndarray, name: str) -> np.ndarray:
    distances = check_distances(distances, name, dtype=np.float64).reshape(-1)
    if len(distances) == 0:
        raise ValueError(f"{name} is empty: the confidence needs validation pairs of both kinds")
    return np.sort(distances)
