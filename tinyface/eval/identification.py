"""Identification (1:N): who is this? Compare a probe with a gallery of enrolled faces; the nearest wins.

Closed set: every probe's identity is enrolled; we report the CMC curve, whose first value is rank-1 accuracy.
Open set: some probes show people who are not enrolled; a probe is accepted only when its nearest gallery
face is within tau (squared L2), and we report the detection-and-identification rate (DIR) and the false
alarm rate (unknown probes accepted).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinyface.eval.checks import check_embeddings, check_labels, check_same_images
from tinyface.eval.distances import squared_distances


def split_gallery(
    labels: np.ndarray, rng: np.random.Generator | int, per_person: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(gallery indices, probe indices): `per_person` random images of each identity enrolled, rest probes.

    Identities with no more than `per_person` images are enrolled whole and give no probe.
    """
    labels = check_labels(labels)
    rng = np.random.default_rng(rng)
    order = np.lexsort((rng.random(len(labels)), labels))  # by identity, random within identity
    sorted_labels = labels[order]
    _, starts = np.unique(sorted_labels, return_index=True)
    rank = np.arange(len(labels)) - np.repeat(starts, np.diff(np.append(starts, len(labels))))
    in_gallery = rank < per_person
    return np.sort(order[in_gallery]), np.sort(order[~in_gallery])


def cmc(
    embeddings: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator | int,
    trials: int = 10,
    max_rank: int = 10,
    query_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Cumulative match characteristic, (max_rank,): cmc[k-1] = fraction of probes whose own identity is among
    the k nearest gallery faces, one random image per person enrolled, averaged over `trials` galleries.

    query_embeddings: the same images embedded by another model, used for the probes (a gallery enrolled with
    an old model, queried with a new one); default: `embeddings` for both."""
    embeddings = check_embeddings(embeddings)
    labels = check_labels(labels, count=len(embeddings))
    queries = embeddings if query_embeddings is None else check_same_images(query_embeddings, embeddings)
    rng = np.random.default_rng(rng)
    curves = []
    for _ in range(trials):
        gallery, probes = split_gallery(labels, rng)
        if len(probes) == 0:
            raise ValueError("no identity has 2 or more images, so there is nothing to identify")
        d = squared_distances(queries[probes], embeddings[gallery])  # (probes, gallery)
        own = labels[gallery][None, :] == labels[probes][:, None]
        own_distance = np.where(own, d, np.inf).min(axis=1)
        rank = np.sum(d < own_distance[:, None], axis=1)  # 0 = nearest (ties count in the probe's favour)
        curves.append(np.mean(rank[:, None] < np.arange(1, max_rank + 1), axis=0))
    return np.mean(curves, axis=0)


def one_shot_rank1(
    embeddings: np.ndarray, labels: np.ndarray, rng: np.random.Generator | int, trials: int = 10,
    query_embeddings: np.ndarray | None = None,
) -> float:
    """Rank-1 accuracy with one random enrolled image per person, mean over `trials` random galleries (probes
    embedded by another model: query_embeddings, see cmc)."""
    return float(cmc(embeddings, labels, rng, trials, max_rank=1, query_embeddings=query_embeddings)[0])


class OpenSetResult(NamedTuple):
    """DIR: known probes accepted as the right person; false alarm rate: unknown probes accepted at all."""

    detection_identification_rate: float
    false_alarm_rate: float
    threshold: float


def open_set_identification(
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    probes: np.ndarray,
    probe_labels: np.ndarray,
    tau: float | None = None,
    false_alarm_rate: float | None = None,
) -> OpenSetResult:
    """Open-set 1:N at a threshold: give tau, or a target false_alarm_rate to use the largest tau whose false
    alarm rate does not exceed it. Probes whose label is not in gallery_labels are unknown.

    A probe is accepted when its nearest gallery distance is <= tau, and identified when, in addition, that
    nearest face has its label.
    """
    gallery, probes = check_embeddings(gallery, "gallery embeddings"), check_embeddings(probes, "probe embeddings")
    gallery_labels = check_labels(gallery_labels, "gallery labels", count=len(gallery))
    probe_labels = check_labels(probe_labels, "probe labels", count=len(probes))
    if (tau is None) == (false_alarm_rate is None):
        raise ValueError("give exactly one of tau and false_alarm_rate")
    d = squared_distances(probes, gallery)
    nearest = d.argmin(axis=1)
    nearest_distance = d[np.arange(len(probes)), nearest]
    known = np.isin(probe_labels, gallery_labels)
    if not known.any() or known.all():
        raise ValueError("open-set identification needs both enrolled (known) and unknown probes")
    if tau is None:
        # The false alarm rate at tau is the fraction of unknown probes with nearest distance <= tau; the
        # largest tau keeping it <= target lies just below the (floor(target * U) + 1)-th smallest of them.
        unknown_distances = np.sort(nearest_distance[~known])
        allowed = int(np.floor(false_alarm_rate * len(unknown_distances)))
        tau = (
            float(unknown_distances[-1])
            if allowed >= len(unknown_distances)
            else float(np.nextafter(unknown_distances[allowed], -np.inf))
        )
    accepted = nearest_distance <= tau
    identified = accepted & (gallery_labels[nearest] == probe_labels)
    return OpenSetResult(float(identified[known].mean()), float(accepted[~known].mean()), float(tau))
