"""Distances between embeddings: squared L2 (matrix and pairs), L2 normalisation, symmetrising a matrix."""

import numpy as np
import pytest

from tinyface.eval.distances import l2_normalize, pair_distances, squared_distances, symmetrize


def test_pair_distances_are_squared_l2():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(6, 5))
    i, j = np.array([0, 1, 2, 5]), np.array([3, 4, 5, 5])
    expected = [np.sum((e[a] - e[b]) ** 2) for a, b in zip(i, j, strict=True)]
    np.testing.assert_allclose(pair_distances(e, i, j), expected)
    e[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pair_distances(e, i, j)


def test_squared_distances_match_differences_and_are_never_negative():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    expected = np.sum((a[:, None] - b[None]) ** 2, axis=2)
    np.testing.assert_allclose(squared_distances(a, b), expected, atol=1e-12)
    assert np.all(squared_distances(a, a) >= 0) and np.allclose(
        np.diag(squared_distances(a, a)), 0, atol=1e-12
    )


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-3, 0.0]])
    np.testing.assert_allclose(l2_normalize(x), [[0.6, 0.8], [0.0, 0.0], [1.0, 0.0]])


def test_symmetrize_averages_the_two_halves_and_clamps_at_zero():
    d = np.array([[0.1, 1.0, -1e-9], [1.2, 0.0, 2.0], [0.0, 2.0, 0.0]])
    out = symmetrize(d)
    np.testing.assert_allclose(out, [[0.0, 1.1, 0.0], [1.1, 0.0, 2.0], [0.0, 2.0, 0.0]])
    np.testing.assert_array_equal(out, out.T)
    with pytest.raises(ValueError, match="square"):
        symmetrize(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        symmetrize(np.full((2, 2), np.nan))
