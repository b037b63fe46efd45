import numpy as np
import pytest

from tinyface.eval import Eigenfaces, l2_normalize
from tinyface.face.classify import KNearestNeighbours, NearestCentroid, SoftmaxClassifier

CLASSIFIERS = [NearestCentroid, lambda: KNearestNeighbours(3), lambda: SoftmaxClassifier(steps=200)]


def blobs(seed: int, per_class: int = 20, names=("ada", "bob", "cy", "dee"), noise_seed: int = 0):
    """Well separated clusters on the unit sphere, labelled by name (centres from seed, noise from noise_seed)."""
    centres = l2_normalize(np.random.default_rng(seed).normal(size=(len(names), 8)))
    rng = np.random.default_rng([seed, noise_seed])
    truth = np.repeat(np.arange(len(names)), per_class)
    points = l2_normalize(centres[truth] + 0.05 * rng.normal(size=(len(truth), 8)))
    return points, np.array(names)[truth]


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_separable_clusters_are_classified_perfectly(make):
    train, train_names = blobs(0)
    test, test_names = blobs(0, per_class=5, noise_seed=1)
    classifier = make().fit(train, train_names)
    assert classifier.score(test, test_names) == 1.0
    assert set(classifier.predict(test)) == {"ada", "bob", "cy", "dee"}


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_classifiers_check_their_inputs(make):
    train, names = blobs(1)
    classifier = make()
    with pytest.raises(RuntimeError, match="call fit"):
        classifier.predict(train)
    with pytest.raises(ValueError, match="one label per embedding"):
        classifier.fit(train, names[:-1])
    classifier.fit(train, names)
    with pytest.raises(ValueError, match="D=7, the classifier was fit on D=8"):
        classifier.predict(train[:, :7])
    with pytest.raises(ValueError, match="NaN"):
        classifier.predict(np.full_like(train, np.nan))


def test_knn_votes_and_breaks_ties_by_the_nearest_neighbour():
    train = np.array([[0.0], [1.0], [1.1], [5.0]])
    labels = np.array([7, 8, 8, 9])
    knn = KNearestNeighbours(3).fit(train, labels)
    np.testing.assert_array_equal(knn.predict(np.array([[0.1], [4.0]])), [8, 8])  # two 8s outvote the nearer 7
    two = KNearestNeighbours(2).fit(train, labels)
    np.testing.assert_array_equal(two.predict(np.array([[0.4], [0.52], [3.5]])), [7, 8, 9])  # 1:1, nearer wins
    with pytest.raises(ValueError, match="only 4 training embeddings"):
        KNearestNeighbours(5).fit(train, labels)


def test_nearest_centroid_by_hand():
    classifier = NearestCentroid().fit(np.array([[0.0, 0], [2, 0], [10, 10]]), np.array([0, 0, 1]))
    np.testing.assert_array_equal(classifier.centroids, [[1, 0], [10, 10]])
    np.testing.assert_array_equal(classifier.predict(np.array([[4.0, 4], [6, 6]])), [0, 1])


def test_softmax_classifier_is_seeded_and_learns():
    train, names = blobs(2)
    a, b = SoftmaxClassifier(steps=50, seed=3).fit(train, names), SoftmaxClassifier(steps=50, seed=3).fit(train, names)
    np.testing.assert_array_equal(a.predict_proba(train), b.predict_proba(train))
    assert a.losses[-1] < a.losses[0] / 4
    p = a.predict_proba(train)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(a.classes[p.argmax(axis=1)], a.predict(train))


def test_olivetti_eigenfaces_are_classified_well_above_chance(olivetti):
    rng = np.random.default_rng(0)
    labels = olivetti.labels
    order = np.lexsort((rng.random(len(labels)), labels))  # grouped by person, shuffled within
    first_half = np.arange(len(labels)) % 10 < 5  # Olivetti: 10 images per person
    train, test = order[first_half], order[~first_half]
    eigenfaces = Eigenfaces(40).fit(olivetti.images[train])
    x_train, x_test = eigenfaces.transform(olivetti.images[train]), eigenfaces.transform(olivetti.images[test])
    accuracy = {
        name: make().fit(x_train, labels[train]).score(x_test, labels[test])
        for name, make in zip(("centroid", "knn", "softmax"), CLASSIFIERS, strict=True)
    }
    assert min(accuracy.values()) > 0.75, accuracy  # chance: 1/40
