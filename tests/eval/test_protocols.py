"""Pair protocols, 1:N identification and baselines; end to end on real faces when TINYFACE_DATA is set."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyface.data import FaceDataset, Pair, load_image_folder, load_olivetti, read_pairs, split_people
from tinyface.data.lfw import image_root, people_in_pairs
from tinyface.eval import protocols
from tinyface.eval.baselines import Eigenfaces, pixel_embeddings
from tinyface.eval.distances import pair_distances, squared_distances
from tinyface.eval.identification import cmc, one_shot_rank1, open_set_identification, split_gallery
from tinyface.eval.metrics import verification_report
from tinyface.eval.protocols import lfw_pairs_to_indices, pairs_from_labels


def clustered_embeddings(labels, noise=0.05, dim=64, seed=0):
    """Unit vectors near one random direction per identity: easy to recognise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels.max() + 1, dim))
    x = centres[labels] / np.linalg.norm(centres[labels], axis=1, keepdims=True) + noise * rng.normal(
        size=(len(labels), dim)
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_pairs_from_labels_olivetti_held_out_people():
    labels = np.repeat(np.arange(30, 40), 10)
    i, j, same = pairs_from_labels(labels, rng=0)
    assert same.sum() == 450 and (~same).sum() == 450
    assert np.all(i < j)
    np.testing.assert_array_equal(labels[i] == labels[j], same)
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == 900  # no pair twice
    again = pairs_from_labels(labels, rng=0)
    assert all(np.array_equal(a, b) for a, b in zip((i, j, same), again, strict=True))
    other = pairs_from_labels(labels, rng=1)
    assert not np.array_equal(j, other[1])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=40), st.integers(0, 2**32 - 1))
def test_pairs_from_labels_counts_match_combinatorics(label_list, seed):
    labels = np.array(label_list)
    counts = np.bincount(labels)
    matched = int(np.sum(counts * (counts - 1) // 2))
    cross = len(labels) * (len(labels) - 1) // 2 - matched
    if matched == 0 or cross < matched:
        with pytest.raises(ValueError):
            pairs_from_labels(labels, rng=seed)
        return
    i, j, same = pairs_from_labels(labels, rng=seed)
    assert same.sum() == matched and (~same).sum() == matched
    np.testing.assert_array_equal(labels[i] == labels[j], same)
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == 2 * matched


def test_pairs_from_labels_by_rejection_sampling(monkeypatch):
    monkeypatch.setattr(protocols, "ENUMERATE_LIMIT", 0)  # force the path used for large datasets
    labels = np.random.default_rng(0).integers(0, 300, 3000)
    i, j, same = pairs_from_labels(labels, rng=0, max_mismatched=5000)
    assert (~same).sum() == 5000
    assert np.all(labels[i[~same]] != labels[j[~same]]) and np.all(i < j)
    assert len(set(zip(i[~same].tolist(), j[~same].tolist(), strict=True))) == 5000


def test_pairs_from_labels_refuses_data_without_matched_pairs():
    with pytest.raises(ValueError, match="2 or more images"):
        pairs_from_labels(np.arange(10))


def test_lfw_pairs_to_indices_uses_file_names():
    names = ["Ann_A", "Bob_B"]
    paths = ["/x/Ann_A/Ann_A_0001.jpg", "/x/Ann_A/Ann_A_0002.jpg", "/x/Bob_B/Bob_B_0001.jpg"]
    dataset = FaceDataset(np.zeros((3, 1, 4, 4), np.uint8), np.array([0, 0, 1]), names, paths)
    pairs = [Pair("Ann_A", 2, "Ann_A", 1, 0), Pair("Ann_A", 1, "Bob_B", 1, 3)]
    i, j, same, fold = lfw_pairs_to_indices(pairs, dataset)
    np.testing.assert_array_equal(i, [1, 0])
    np.testing.assert_array_equal(j, [0, 2])
    np.testing.assert_array_equal(same, [True, False])
    np.testing.assert_array_equal(fold, [0, 3])
    with pytest.raises(ValueError, match="Bob_B/Bob_B_0007.jpg"):
        lfw_pairs_to_indices([Pair("Ann_A", 1, "Bob_B", 7, 0)], dataset)


def test_split_gallery_enrols_one_image_per_person():
    labels = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])
    gallery, probes = split_gallery(labels, rng=0)
    assert sorted(labels[gallery].tolist()) == [0, 1, 2, 3]
    np.testing.assert_array_equal(np.sort(np.concatenate([gallery, probes])), np.arange(10))
    galleries = {tuple(split_gallery(labels, rng=seed)[0]) for seed in range(20)}
    assert len(galleries) > 1  # random choice of the enrolled image


def test_identification_of_well_separated_people_is_perfect():
    labels = np.repeat(np.arange(20), 5)
    embeddings = clustered_embeddings(labels)
    assert one_shot_rank1(embeddings, labels, rng=0) == 1.0
    assert one_shot_rank1(np.random.default_rng(0).normal(size=(100, 64)), labels, rng=0) < 0.3


def test_cmc_rises_to_one_at_the_number_of_people():
    labels = np.repeat(np.arange(8), 4)
    embeddings = np.random.default_rng(1).normal(size=(32, 16))
    curve = cmc(embeddings, labels, rng=0, trials=3, max_rank=8)
    assert np.all(np.diff(curve) >= 0) and curve[-1] == 1.0
    assert curve[0] == pytest.approx(one_shot_rank1(embeddings, labels, rng=0, trials=3))


def test_open_set_identification_at_a_threshold_and_at_a_false_alarm_rate():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0]])
    probes = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.8], [-1.0, 0.0], [0.0, -1.0]])
    probe_labels = np.array([0, 1, 0, 7, 8])  # 7 and 8 are not enrolled
    d = squared_distances(probes, gallery)
    result = open_set_identification(gallery, np.array([0, 1]), probes, probe_labels, tau=0.5)
    # Probe 2 is nearest to person 1 (wrong); unknown probes are at distance 2 (rejected).
    assert d[2].argmin() == 1
    assert result.detection_identification_rate == pytest.approx(2 / 3) and result.false_alarm_rate == 0
    loose = open_set_identification(gallery, np.array([0, 1]), probes, probe_labels, false_alarm_rate=1.0)
    assert loose.false_alarm_rate == 1.0 and loose.threshold >= 2.0 - 1e-9
    strict = open_set_identification(gallery, np.array([0, 1]), probes, probe_labels, false_alarm_rate=0.4)
    assert strict.false_alarm_rate == 0 and strict.threshold < 2.0


def test_pixel_embeddings_are_unit_vectors():
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 8, 8), dtype=np.uint8)
    e = pixel_embeddings(images)
    assert e.shape == (4, 64) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-6)


def test_eigenfaces_are_the_top_eigenvectors_of_the_pixel_covariance():
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(30, 1, 4, 4)) * np.linspace(1, 5, 16).reshape(1, 1, 4, 4)).astype(np.float32)
    model = Eigenfaces(3).fit(images)
    x = images.reshape(30, -1)
    covariance = np.cov(x, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    top = eigenvectors[:, ::-1][:, :3].T
    np.testing.assert_allclose(np.abs(model.components @ top.T), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(3), atol=1e-5)
    e = model.transform(images)
    assert e.shape == (30, 3)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="n_components"):
        Eigenfaces(31).fit(images)


def test_olivetti_baselines_on_held_out_people(data_dir):
    train, test = split_people(load_olivetti(data_dir), test_people=range(30, 40))
    i, j, same = pairs_from_labels(test.labels, rng=0)
    assert (same.sum(), (~same).sum()) == (450, 450)
    pixels = pixel_embeddings(test.images)
    eigen = Eigenfaces(40).fit(train.images).transform(test.images)
    report = verification_report(pair_distances(pixels, i, j), same)
    assert (
        0.7 < report["accuracy"] < 0.95 and 0.8 < report["auc"] < 0.95
    )  # pixels: far from chance, far from 1
    assert one_shot_rank1(eigen, test.labels, rng=0) > 0.6


def test_lfw_pairs_of_a_few_people_through_the_image_folder(data_dir, tmp_path):
    pairs = [p for p in read_pairs(data_dir / "lfw" / "pairsDevTest.txt")][::40]
    dataset = load_image_folder(
        image_root(data_dir / "lfw"), size=32, face_crop=0.6, people=people_in_pairs(pairs), cache_dir=tmp_path
    )
    i, j, same, _ = lfw_pairs_to_indices(pairs, dataset)
    assert same.sum() == 13 and len(same) == 25
    for a, b, pair in zip(i, j, pairs, strict=True):
        assert Path(dataset.paths[a]).name == f"{pair.name1}_{pair.index1:04d}.jpg"
        assert Path(dataset.paths[b]).name == f"{pair.name2}_{pair.index2:04d}.jpg"
    distances = pair_distances(pixel_embeddings(dataset.images), i, j)
    assert np.all((0 <= distances) & (distances <= 4))
