"""Clustering (N:N): group unlabelled faces by identity from their distances alone, and score the grouping.

Both methods read a precomputed (N, N) matrix of squared L2 distances and link two faces when they are close:
DBSCAN (Ester et al., 1996) grows clusters through dense regions and calls isolated faces noise (-1); Chinese
whispers (Biemann, 2006) lets every face adopt the label most common among its neighbours until labels settle,
needing no count of clusters (davidsandberg/facenet's `cluster` program and dlib use it for faces).
"""

from __future__ import annotations

import numpy as np

from tinyface.eval.checks import check_distances, check_labels

NOISE = -1


def dbscan(distances: np.ndarray, eps: float, min_samples: int = 2) -> np.ndarray:
    """Cluster labels (N,) in 0..K-1, NOISE (-1) for faces in no cluster.

    Neighbours of i: {j : d(i, j) <= eps}, i included. Core faces have at least min_samples neighbours;
    clusters are the connected components of the core faces under the neighbour relation; a non-core face
    next to a core face joins the cluster of its nearest core face (order-independent, where textbook DBSCAN
    takes whichever reaches it first); all others are noise. Clusters are numbered by their first face.
    """
    d = _check_distances(distances)
    if min_samples < 1:
        raise ValueError(f"min_samples must be at least 1, got {min_samples}")
    neighbours = d <= eps
    core = neighbours.sum(axis=1) >= min_samples
    core_links = neighbours & core[:, None] & core[None, :]
    labels = np.full(len(d), NOISE, dtype=np.int64)
    cluster = 0
    for seed in np.flatnonzero(core):  # breadth-first search over core faces, one whole frontier at a time
        if labels[seed] != NOISE:
            continue
        frontier = np.zeros(len(d), dtype=bool)
        frontier[seed] = True
        while frontier.any():
            labels[frontier] = cluster
            frontier = core_links[frontier].any(axis=0) & (labels == NOISE)
        cluster += 1
    border = ~core & neighbours[:, core].any(axis=1)
    if border.any():
        core_index = np.flatnonzero(core)
        nearest_core = core_index[np.argmin(d[np.ix_(border, core_index)], axis=1)]
        labels[border] = labels[nearest_core]
    return _renumber(labels)


def chinese_whispers(
    distances: np.ndarray,
    tau: float,
    iterations: int = 20,
    rng: np.random.Generator | int = 0,
    weighted: bool = False,
) -> np.ndarray:
    """Cluster labels (N,) in 0..K-1 (a face with no neighbour is a cluster of its own).

    Graph: an edge between faces i != j when d(i, j) <= tau, of weight 1, or exp(-d / tau) when `weighted`
    (1 for identical faces, 1/e at the threshold). Each face starts with its own label; each iteration visits
    the faces in a random order and gives each the label of largest total edge weight among its neighbours
    (ties: the smallest label), stopping early when an iteration changes nothing.
    """
    d = _check_distances(distances)
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    rng = np.random.default_rng(rng)
    n = len(d)
    edges = (d <= tau) & ~np.eye(n, dtype=bool)
    weights = np.where(edges, np.exp(-d / tau) if weighted else 1.0, 0.0)
    has_edges = edges.any(axis=1)
    labels = np.arange(n)
    for _ in range(iterations):
        changed = False
        for i in rng.permutation(np.flatnonzero(has_edges)):  # updates are sequential: each sees the last
            votes = np.bincount(labels, weights=weights[i], minlength=n)
            best = int(np.argmax(votes))
            if best != labels[i]:
                labels[i], changed = best, True
        if not changed:
            break
    return _renumber(labels)


def pairwise_precision_recall(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(precision, recall, F1) over pairs of faces: a pair is predicted "same" when both faces share a
    cluster (noise, -1, shares with nobody) and truly "same" when both show one person.

    With the contingency table n_kp = #faces in cluster k showing person p, and C(m) = m (m - 1) / 2:

        TP = sum_kp C(n_kp),  precision = TP / sum_k C(n_k.),  recall = TP / sum_p C(n_.p)

    A grouping that claims no pair has precision 1; if no two faces show one person, recall is 1.
    """
    predicted, truth = _check_labelings(predicted, truth)
    clustered = predicted != NOISE
    _, cells = np.unique(np.stack([predicted[clustered], truth[clustered]]), axis=1, return_counts=True)
    _, cluster_sizes = np.unique(predicted[clustered], return_counts=True)
    _, person_sizes = np.unique(truth, return_counts=True)
    true_positives = _pairs(cells)
    predicted_pairs, true_pairs = _pairs(cluster_sizes), _pairs(person_sizes)
    precision = true_positives / predicted_pairs if predicted_pairs else 1.0
    recall = true_positives / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def cluster_report(predicted: np.ndarray, truth: np.ndarray | None = None) -> dict[str, float | int]:
    """Counts of a clustering (faces, clusters, singletons, noise, largest cluster) and, given the true
    identities, the number of people and pairwise precision, recall and F1."""
    predicted = check_labels(predicted, "predicted labels")
    sizes = np.unique(predicted[predicted != NOISE], return_counts=True)[1]
    report: dict[str, float | int] = {
        "faces": len(predicted),
        "clusters": len(sizes),
        "singletons": int(np.sum(sizes == 1)),
        "noise": int(np.sum(predicted == NOISE)),
        "largest": int(sizes.max()) if len(sizes) else 0,
    }
    if truth is not None:
        predicted, truth = _check_labelings(predicted, truth)
        precision, recall, f1 = pairwise_precision_recall(predicted, truth)
        report |= {"people": len(np.unique(truth)), "precision": precision, "recall": recall, "f1": f1}
    return report


def _pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int(np.sum(counts * (counts - 1) // 2))


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Labels 0..K-1 in order of each cluster's first face; NOISE stays."""
    out = np.full(len(labels), NOISE, dtype=np.int64)
    clustered = labels != NOISE
    _, first, inverse = np.unique(labels[clustered], return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    out[clustered] = rank[inverse.reshape(-1)]
    return out


def _check_distances(distances: np.ndarray) -> np.ndarray:
    d = check_distances(distances, square=True, dtype=np.float64)
    if len(d) == 0:
        raise ValueError("there are no faces to cluster")
    if np.any(d < 0):
        raise ValueError("distances must be non-negative; compute them with squared_distances")
    if not np.allclose(d, d.T, rtol=1e-5, atol=1e-6):
        raise ValueError("distances must be symmetric (d(i, j) = d(j, i)); make them so with symmetrize")
    return d


def _check_labelings(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted, truth = check_labels(predicted, "predicted labels"), check_labels(truth, "true labels")
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted labels for {len(truth)} true ones; give one per face")
    if np.any(predicted < NOISE):
        raise ValueError("predicted labels must be cluster numbers >= 0, or -1 for noise")
    return predicted, truth
