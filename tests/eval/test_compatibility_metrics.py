"""Compatibility of two versions' embeddings: the mixed rows (both orders, one fold per pair), the update gain, and
identification with an old gallery queried by new embeddings."""

import numpy as np
import pytest

from tinyface.eval import (
    compatibility_report,
    l2_normalize,
    mixed_distances,
    one_shot_rank1,
    open_set_report,
    pairs_from_labels,
    update_gain,
)
from tinyface.eval.compatibility import row_distances


def people(seed, count=12, per_person=4, dim=16, noise=0.3):
    """Unit embeddings of `count` people (a random centre each, images scattered around it), and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(count), per_person)
    centres = rng.standard_normal((count, dim))
    return l2_normalize(centres[labels] + noise * rng.standard_normal((len(labels), dim))), labels


def test_mixed_distances_take_one_image_of_each_pair_from_each_version_in_both_orders():
    old, new = np.eye(3), np.eye(3)[[1, 2, 0]]
    i, j = np.array([0, 1]), np.array([1, 2])
    d = mixed_distances(old, new, i, j)
    want_first = [np.sum((old[0] - new[1]) ** 2), np.sum((old[1] - new[2]) ** 2)]
    want_second = [np.sum((new[0] - old[1]) ** 2), np.sum((new[1] - old[2]) ** 2)]
    np.testing.assert_allclose(d, want_first + want_second)
    rows = row_distances(old, new, i, j, np.array([True, False]), folds=np.array([3, 7]))
    np.testing.assert_array_equal(rows["mixed"][2], [3, 7, 3, 7])  # both orders of a pair in its fold
    np.testing.assert_array_equal(rows["mixed"][1], [True, False, True, False])
    with pytest.raises(ValueError, match="same images"):
        mixed_distances(old, new[:2], i, j)


def test_update_gain():
    assert update_gain(0.8, 0.9, 0.85) == pytest.approx(0.5)
    assert update_gain(0.8, 0.9, 0.8) == 0 and update_gain(0.8, 0.9, 0.9) == pytest.approx(1.0)
    assert update_gain(0.8, 0.8, 0.9) is None


def test_a_version_in_the_same_space_is_compatible_and_a_rotated_one_is_not():
    old, labels = people(0)
    i, j, same = pairs_from_labels(labels, rng=0)
    noise = np.random.default_rng(1).standard_normal(old.shape)
    same_space = l2_normalize(old + 0.05 * noise)  # the old model, slightly changed
    rotation = np.linalg.qr(np.random.default_rng(2).standard_normal((16, 16)))[0]
    rotated = l2_normalize(old @ rotation)  # as good as the old model alone, but in another space
    compatible = compatibility_report(old, same_space, labels, i, j, same)
    incompatible = compatibility_report(old, rotated, labels, i, j, same)
    assert compatible["mixed"]["accuracy"] > compatible["old"]["accuracy"] - 0.05
    assert incompatible["new"]["accuracy"] == pytest.approx(incompatible["old"]["accuracy"])  # distances kept
    assert incompatible["mixed"]["accuracy"] < 0.65 < incompatible["old"]["accuracy"]
    assert incompatible["mixed"]["rank1"] < 0.3 < compatible["mixed"]["rank1"]
    for report in (compatible, incompatible):
        assert set(report) >= {"old", "new", "mixed", "gain"}
        for row in ("old", "new", "mixed"):
            assert {"accuracy", "auc", "eer", "val_at_far", "rank1", "open_set"} <= set(report[row])
            assert set(report[row]["open_set"]) == {"FAR<=0.01", "FAR<=0.1"}
        gain = update_gain(report["old"]["accuracy"], report["new"]["accuracy"], report["mixed"]["accuracy"])
        assert report["gain"] == gain


def test_identification_with_queries_of_another_version():
    old, labels = people(3)
    assert one_shot_rank1(old, labels, 0, query_embeddings=old) == one_shot_rank1(old, labels, 0)
    assert open_set_report(old, labels, 0, query_embeddings=old) == open_set_report(old, labels, 0)
    shuffled = old[np.random.default_rng(0).permutation(len(old))]  # queries that are other people's faces
    assert one_shot_rank1(old, labels, 0, query_embeddings=shuffled) < one_shot_rank1(old, labels, 0)
    with pytest.raises(ValueError, match="same images"):
        one_shot_rank1(old, labels, 0, query_embeddings=old[:, :8])
