import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyface.eval import Eigenfaces, l2_normalize, squared_distances
from tinyface.face.compare import compare, confidence

samples = hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 4))


def test_confidence_by_hand():
    same, diff = np.array([0.1, 0.2, 0.3, 0.6]), np.array([0.4, 0.7, 0.8, 0.9])
    # d = 0.25: FRR = (2 + 1) / 6, FAR = (0 + 1) / 6  ->  c = 3 / 4
    assert confidence(0.25, same, diff) == pytest.approx(0.75)
    # d = 0.5: one same pair above, one different pair below: FAR = FRR, c = 1/2
    assert confidence(0.5, same, diff) == pytest.approx(0.5)
    # beyond every pair: FRR = 1 / 6, FAR = 5 / 6
    assert confidence(3.0, same, diff) == pytest.approx(1 / 6)


@given(same=samples, diff=samples, grid=hnp.arrays(np.float64, 50, elements=st.floats(-1, 5)))
@settings(max_examples=80, deadline=None)
def test_confidence_falls_with_distance_and_stays_inside_zero_one(same, diff, grid):
    c = confidence(np.sort(grid), same, diff)
    assert np.all((c > 0) & (c < 1))
    assert np.all(np.diff(c) <= 1e-15)


def test_confidence_needs_both_kinds_of_pairs_and_no_nan():
    with pytest.raises(ValueError, match="distances_diff is empty"):
        confidence(0.5, [0.1], [])
    with pytest.raises(ValueError, match="NaN"):
        confidence(np.nan, [0.1], [1.0])


def test_compare_matrix():
    rng = np.random.default_rng(0)
    e = l2_normalize(rng.normal(size=(4, 8)))
    e[1] = e[0]  # the same face twice
    result = compare(e, tau=0.5)
    np.testing.assert_array_equal(np.diag(result.distances), 0)
    np.testing.assert_allclose(result.distances, result.distances.T)
    np.testing.assert_allclose(result.distances[0, 2], np.sum((e[0] - e[2]) ** 2))
    np.testing.assert_array_equal(result.same, result.distances <= 0.5)
    assert result.same[0, 1] and result.confidence is None
    validation = (np.array([0.1, 0.2, 1.5, 1.9]), np.array([1, 1, 0, 0]))
    with_confidence = compare(e, tau=0.5, validation=validation)
    np.testing.assert_allclose(with_confidence.confidence, confidence(result.distances, [0.1, 0.2], [1.5, 1.9]))
    with pytest.raises(ValueError, match="at least two faces"):
        compare(e[:1], 0.5)
    with pytest.raises(ValueError, match="tau"):
        compare(e, -1.0)
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        compare(e, 0.5, validation=(np.zeros(3), np.zeros(2)))


def test_confidence_tracks_the_share_of_same_pairs_on_unseen_olivetti_people(olivetti):
    embeddings = Eigenfaces(40).fit_transform(olivetti.images)  # unsupervised
    labels = olivetti.labels

    def pairs(people):
        x, y = embeddings[people], labels[people]
        upper = np.triu_indices(len(x), 1)
        return squared_distances(x, x)[upper], (y[:, None] == y[None, :])[upper]

    d_val, s_val = pairs(labels < 20)  # validation people give the ROC...
    d_test, s_test = pairs(labels >= 20)  # ...other people are scored
    c = confidence(d_test, d_val[s_val], d_val[~s_val])
    # the share of same pairs per confidence bin, with equal priors as c assumes: rises with c
    bins = np.digitize(c, [0.2, 0.5, 0.8])
    rate_same = np.array([np.mean(bins[s_test] == b) for b in range(4)])
    rate_diff = np.array([np.mean(bins[~s_test] == b) for b in range(4)])
    share = rate_same / (rate_same + rate_diff)
    assert np.all(np.diff(share) > 0), share
    assert share[0] < 0.2 and share[-1] > 0.7, share
