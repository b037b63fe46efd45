"""The input checks every evaluation, mining and face tool shares: what they accept and what they say."""

import numpy as np
import pytest

from tinyface.eval.checks import check_distances, check_embeddings, check_labels


def test_check_embeddings_accepts_finite_n_by_d_and_casts_on_request():
    x = np.ones((3, 2), dtype=np.float32)
    assert check_embeddings(x) is x
    assert check_embeddings(x, dtype=np.float64).dtype == np.float64
    assert check_embeddings([[1, 2]]).shape == (1, 2)


def test_check_embeddings_says_what_is_wrong():
    with pytest.raises(ValueError, match=r"probe embeddings must be \(N, D\), got shape \(3,\)"):
        check_embeddings(np.ones(3), "probe embeddings")
    with pytest.raises(ValueError, match="numbers"):
        check_embeddings(np.array([["a", "b"]]))
    x = np.ones((4, 2))
    x[1, 0], x[3, 1] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite values \(2 of 4 rows\).*diverge"):
        check_embeddings(x)


def test_check_distances_counts_the_bad_values_and_checks_square_matrices():
    assert check_distances([0.5, 1], dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="1 of 3 distances are NaN or infinite; check the embeddings"):
        check_distances(np.array([0.1, np.nan, 0.3]))
    with pytest.raises(ValueError, match=r"must be a square \(N, N\) matrix"):
        check_distances(np.zeros((2, 3)), square=True)
    assert check_distances(np.zeros((2, 3))).shape == (2, 3)


def test_check_labels_wants_one_integer_per_embedding():
    assert check_labels(np.array([1, 2], dtype=np.int32)).dtype == np.int64
    with pytest.raises(ValueError, match="1-D integer array"):
        check_labels(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="give one label per embedding: 3 embeddings, 2 labels"):
        check_labels([0, 1], count=3)
