import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyface.eval import Eigenfaces, squared_distances
from tinyface.eval.clustering import (
    NOISE,
    chinese_whispers,
    cluster_report,
    dbscan,
    pairwise_precision_recall,
)


def line_distances(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.abs(x[:, None] - x[None, :])


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renaming the clusters."""
    return len(set(zip(a, b, strict=True))) == len(set(a)) == len(set(b))


def textbook_dbscan(d: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Ester et al.'s algorithm, one point at a time."""
    labels = np.full(len(d), -2)  # -2: unvisited
    cluster = -1
    for p in range(len(d)):
        if labels[p] != -2:
            continue
        if np.sum(d[p] <= eps) < min_samples:
            labels[p] = NOISE
            continue
        cluster += 1
        labels[p] = cluster
        queue = list(np.flatnonzero(d[p] <= eps))
        while queue:
            q = queue.pop()
            if labels[q] == NOISE:
                labels[q] = cluster
            if labels[q] != -2:
                continue
            labels[q] = cluster
            if np.sum(d[q] <= eps) >= min_samples:
                queue.extend(np.flatnonzero(d[q] <= eps))
    return labels


def test_dbscan_on_a_line():
    x = [0, 1, 2, 10, 11, 50, 20, 20.5, 21]
    labels = dbscan(line_distances(x), eps=1.5, min_samples=2)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, NOISE, 2, 2, 2])


def test_dbscan_border_face_joins_its_nearest_core_face():
    # 0..2 and 5..7 are dense (3 neighbours each with min_samples=3); 3.6 is a border face near both clusters,
    # nearer to 5 than to 2; 3 and 4.5 have too few neighbours to be core
    x = [0, 0.5, 1, 3.6, 5, 5.5, 6]
    labels = dbscan(line_distances(x), eps=1.5, min_samples=3)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 1, 1])


def test_dbscan_with_min_samples_one_has_no_noise_and_huge_eps_one_cluster():
    d = line_distances([0, 5, 10])
    np.testing.assert_array_equal(dbscan(d, eps=1, min_samples=1), [0, 1, 2])
    np.testing.assert_array_equal(dbscan(d, eps=100, min_samples=3), [0, 0, 0])
    np.testing.assert_array_equal(dbscan(d, eps=1, min_samples=2), [NOISE] * 3)


@given(
    x=hnp.arrays(np.float64, st.integers(1, 25), elements=st.integers(0, 40).map(float)),
    eps=st.sampled_from([0.5, 1.0, 2.0, 3.5]),
    min_samples=st.integers(1, 4),
)
@settings(max_examples=80, deadline=None)
def test_dbscan_agrees_with_the_textbook_algorithm(x, eps, min_samples):
    d = line_distances(x)
    ours, textbook = dbscan(d, eps, min_samples), textbook_dbscan(d, eps, min_samples)
    core = (d <= eps).sum(axis=1) >= min_samples
    np.testing.assert_array_equal(ours == NOISE, textbook == NOISE)
    assert same_partition(ours[core], textbook[core])
    border = ~core & (ours != NOISE)
    for i in np.flatnonzero(border):  # a border face may go to either neighbouring cluster; ours is a neighbour's
        assert np.any(core & (d[i] <= eps) & (ours == ours[i]))
    assert set(ours[ours != NOISE]) == set(range(len(set(ours[ours != NOISE]))))


def test_chinese_whispers_finds_two_cliques_and_a_loner():
    x = [0, 0.1, 0.2, 0.3, 5, 5.1, 5.2, 20]
    for weighted in (False, True):
        labels = chinese_whispers(line_distances(x), tau=0.5, rng=0, weighted=weighted)
        np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1, 2])


def test_chinese_whispers_is_reproducible_and_validates():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(60, 4))
    d = squared_distances(points, points)
    np.testing.assert_array_equal(chinese_whispers(d, 2.0, rng=5), chinese_whispers(d, 2.0, rng=5))
    with pytest.raises(ValueError, match="tau must be positive"):
        chinese_whispers(d, 0.0)
    with pytest.raises(ValueError, match="square"):
        chinese_whispers(d[:5], 1.0)
    with pytest.raises(ValueError, match="symmetric"):
        chinese_whispers(d + np.triu(np.ones_like(d)), 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        dbscan(-d, 1.0)


def test_chinese_whispers_separates_gaussian_blobs():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 16)) * 10
    truth = np.repeat(np.arange(5), 12)
    points = centres[truth] + rng.normal(size=(60, 16))
    d = squared_distances(points, points)
    labels = chinese_whispers(d, tau=4 * 16, rng=0)  # within-blob d ~ 2 * 16, between ~ 200 * 16
    assert same_partition(labels, truth)
    assert same_partition(dbscan(d, eps=4 * 16, min_samples=3), truth)


def test_pairwise_precision_recall_by_hand():
    truth = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([5, 5, 7, 7, 7, NOISE])
    # predicted pairs: (0,1) (2,3) (2,4) (3,4) -> 4; true pairs: (0,1) (0,2) (1,2) (3,4) -> 4; both: (0,1) (3,4)
    assert pairwise_precision_recall(predicted, truth) == pytest.approx((0.5, 0.5, 0.5))
    assert pairwise_precision_recall(truth, truth) == (1.0, 1.0, 1.0)
    assert pairwise_precision_recall(np.arange(6), truth) == (1.0, 0.0, 0.0)  # claims nothing, finds nothing
    precision, recall, _ = pairwise_precision_recall(np.zeros(6, dtype=int), truth)
    assert (precision, recall) == (4 / 15, 1.0)


@given(
    predicted=hnp.arrays(np.int64, 12, elements=st.integers(-1, 3)),
    truth=hnp.arrays(np.int64, 12, elements=st.integers(0, 3)),
)
@settings(max_examples=60, deadline=None)
def test_pairwise_precision_recall_counts_every_pair(predicted, truth):
    pairs = list(itertools.combinations(range(12), 2))
    claimed = {(i, j) for i, j in pairs if predicted[i] == predicted[j] != NOISE}
    real = {(i, j) for i, j in pairs if truth[i] == truth[j]}
    precision, recall, f1 = pairwise_precision_recall(predicted, truth)
    assert precision == pytest.approx(len(claimed & real) / len(claimed) if claimed else 1.0)
    assert recall == pytest.approx(len(claimed & real) / len(real) if real else 1.0)
    assert 0 <= f1 <= 1


def test_cluster_report_counts():
    report = cluster_report(np.array([0, 0, 1, NOISE, 2, 2, 2]), np.array([0, 0, 0, 1, 1, 1, 1]))
    assert {k: report[k] for k in ("faces", "clusters", "singletons", "noise", "largest", "people")} == {
        "faces": 7, "clusters": 3, "singletons": 1, "noise": 1, "largest": 3, "people": 2}
    assert report["precision"] == 1.0 and report["recall"] == pytest.approx(4 / 9)
    assert "precision" not in cluster_report(np.array([0, 1]))
    with pytest.raises(ValueError, match="one per face"):
        cluster_report(np.array([0, 1]), np.array([0]))


def test_clustering_olivetti_eigenfaces_beats_chance(olivetti):
    embeddings = Eigenfaces(40).fit_transform(olivetti.images)  # unsupervised: no labels used
    truth = olivetti.labels
    d = squared_distances(embeddings, embeddings)
    upper = np.triu_indices(len(d), 1)
    same = (truth[:, None] == truth[None, :])[upper]
    tau = float(np.quantile(d[upper][same], 0.3))  # as a run's validation threshold would be chosen
    rng = np.random.default_rng(0)
    for labels in (chinese_whispers(d, tau, rng=0, weighted=True), dbscan(d, tau, min_samples=2)):
        precision, recall, f1 = pairwise_precision_recall(labels, truth)
        chance_f1 = np.mean([pairwise_precision_recall(rng.permutation(labels), truth)[2] for _ in range(20)])
        assert precision > 0.4 and recall > 0.3
        assert f1 > 5 * chance_f1
