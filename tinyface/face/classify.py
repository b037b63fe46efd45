"""Classifiers on embeddings: once faces are points where distance means identity, a simple classifier on top
names the people it was shown (davidsandberg/facenet's `classifier` program trains an SVM there).

Each has fit(embeddings (N, D), labels (N,)), predict(embeddings (M, D)) -> labels (M,) and
score(embeddings, labels) -> accuracy. Labels may be any 1-D array (integers or names); distances are
squared L2, as everywhere in tinyface.
"""

from __future__ import annotations

import numpy as np

from tinyface import nn
from tinyface.eval.checks import check_embeddings
from tinyface.eval.distances import squared_distances
from tinyface.losses import cross_entropy
from tinyface.nn.optim import Adam
from tinyface.tensor import Tensor, no_grad


class _Classifier:
    classes: np.ndarray | None = None  # the distinct labels seen in fit, sorted

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> _Classifier:
        embeddings, labels = _check_fit(embeddings, labels)
        self.classes, targets = np.unique(labels, return_inverse=True)
        self._fit(embeddings, targets.reshape(-1))
        return self

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """The predicted label of each embedding, (M,)."""
        if self.classes is None:
            raise RuntimeError(f"call fit(embeddings, labels) before predict on this {type(self).__name__}")
        return self.classes[self._predict(self._check(embeddings))]

    def score(self, embeddings: np.ndarray, labels: np.ndarray) -> float:
        """Accuracy: the fraction of embeddings whose predicted label is theirs."""
        return float(np.mean(self.predict(embeddings) == _check_names(labels, len(embeddings))))

    _dimension: int

    def _check(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = check_embeddings(embeddings, dtype=np.float64)
        if embeddings.shape[1] != self._dimension:
            raise ValueError(f"embeddings have D={embeddings.shape[1]}, the classifier was fit on D={self._dimension}")
        return embeddings

    def _fit(self, embeddings: np.ndarray, targets: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, embeddings: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class NearestCentroid(_Classifier):
    """The class whose mean embedding is nearest: argmin_c ||x - mu_c||^2, mu_c = mean of class c's embeddings."""

    def _fit(self, embeddings, targets):
        self._dimension = embeddings.shape[1]
        counts = np.bincount(targets)
        self.centroids = np.zeros((len(counts), embeddings.shape[1]))
        np.add.at(self.centroids, targets, embeddings)
        self.centroids /= counts[:, None]

    def _predict(self, embeddings):
        return squared_distances(embeddings, self.centroids).argmin(axis=1)


class KNearestNeighbours(_Classifier):
    """Majority vote of the k nearest training embeddings; a tie goes to the tied class with the nearest
    neighbour (so k = 1 is the nearest neighbour rule)."""

    def __init__(self, k: int = 5) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k

    def _fit(self, embeddings, targets):
        if len(embeddings) < self.k:
            raise ValueError(f"k={self.k} neighbours asked for, but only {len(embeddings)} training embeddings")
        self._dimension = embeddings.shape[1]
        self._embeddings, self._targets = embeddings, targets

    def _predict(self, embeddings):
        d = squared_distances(embeddings, self._embeddings)
        nearest = np.argsort(d, axis=1, kind="stable")[:, : self.k]  # (M, k), nearest first
        voters = self._targets[nearest]
        rows = np.arange(len(embeddings))[:, None]
        votes = np.zeros((len(embeddings), len(self.classes)), dtype=np.int64)
        np.add.at(votes, (rows, voters), 1)
        is_winner = votes[rows, voters] == votes.max(axis=1, keepdims=True)
        return voters[rows[:, 0], np.argmax(is_winner, axis=1)]  # the nearest voter of a most-voted class


class SoftmaxClassifier(_Classifier):
    """A linear layer z = W x + b trained with softmax cross-entropy, L = mean_i (log sum_c exp z_ic - z_i,y_i),
    by full-batch Adam for `steps` steps (weight_decay adds L2 regularisation). Seeded: same fit, same model."""

    def __init__(self, steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-4, seed: int = 0) -> None:
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.steps, self.lr, self.weight_decay, self.seed = steps, lr, weight_decay, seed
        self.losses: list[float] = []

    def _fit(self, embeddings, targets):
        self._dimension = embeddings.shape[1]
        self.layer = nn.Linear(embeddings.shape[1], len(self.classes), rng=np.random.default_rng(self.seed))
        optimizer = Adam(self.layer.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        x = Tensor(embeddings.astype(np.float32))
        self.losses = []
        for _ in range(self.steps):
            optimizer.zero_grad()
            loss = cross_entropy(self.layer(x), targets)
            loss.backward()
            optimizer.step()
            self.losses.append(loss.item())

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """Softmax probabilities (M, classes), columns in the order of `classes`."""
        logits = self._logits(self._check(embeddings))
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def _logits(self, embeddings):
        with no_grad():
            return self.layer(Tensor(embeddings.astype(np.float32))).numpy().astype(np.float64)

    def _predict(self, embeddings):
        return self._logits(embeddings).argmax(axis=1)


def _check_fit(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    embeddings = check_embeddings(embeddings, dtype=np.float64)
    labels = _check_names(labels, len(embeddings))
    if len(embeddings) == 0:
        raise ValueError("there is nothing to fit: no embeddings")
    return embeddings, labels


def _check_names(labels: np.ndarray, count: int) -> np.ndarray:
    """Labels of any kind (integers or names), one per embedding."""
    labels = np.asarray(labels)
    if labels.shape != (count,):
        raise ValueError(f"give one label per embedding: {count} embeddings, labels {labels.shape}")
    return labels
