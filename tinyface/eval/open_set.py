"""The open-set identification protocol on held-out people: enrol some, keep the others as strangers.

Each trial splits the people at random: a fraction `unknown_fraction` are never enrolled (all their images are
unknown probes); the others have `per_person` random images enrolled and the rest are known probes. At each
target false alarm rate, tau is the largest threshold accepting at most that fraction of unknown probes
(open_set_identification), and the detection-and-identification rate (DIR) is the fraction of known probes
accepted as the right person. Results are averaged over trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from tinyface.eval.checks import check_embeddings, check_labels, check_same_images
from tinyface.eval.identification import open_set_identification, split_gallery


class OpenSetPoint(NamedTuple):
    """DIR (mean and std over trials) at a target false alarm rate, or at a fixed tau; the false alarm rate
    measured and the threshold used, averaged over trials."""

    condition: str
    dir_mean: float
    dir_std: float
    false_alarm_rate: float
    threshold: float


def open_set_report(
    embeddings: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator | int,
    false_alarm_rates: Sequence[float] = (0.01, 0.1),
    tau: float | None = None,
    unknown_fraction: float = 0.5,
    per_person: int = 1,
    trials: int = 10,
    query_embeddings: np.ndarray | None = None,
) -> list[OpenSetPoint]:
    """Open-set identification of held-out people (embeddings (N, D), labels (N,)): one point per target false
    alarm rate, and one at the run's `tau` when given. query_embeddings: the same images embedded by another
    model, used for the probes (an old model's gallery queried with a new model); default: `embeddings`."""
    embeddings = check_embeddings(embeddings)
    labels = check_labels(labels, count=len(embeddings))
    queries = embeddings if query_embeddings is None else check_same_images(query_embeddings, embeddings)
    if not 0 < unknown_fraction < 1:
        raise ValueError(f"unknown_fraction must lie strictly between 0 and 1, got {unknown_fraction}")
    if trials < 1 or per_person < 1:
        raise ValueError(f"trials and per_person must be positive, got {trials} and {per_person}")
    people = np.unique(labels)
    n_unknown = int(round(unknown_fraction * len(people)))
    if not 1 <= n_unknown < len(people):
        raise ValueError(f"{len(people)} people cannot be split into enrolled and unknown ones; need at least 2")
    rng = np.random.default_rng(rng)
    conditions = [(f"FAR<={far:g}", None, far) for far in false_alarm_rates]
    conditions += [] if tau is None else [(f"tau={tau:g}", tau, None)]
    results: list[list] = [[] for _ in conditions]
    for _ in range(trials):
        unknown_people = rng.choice(people, n_unknown, replace=False)
        is_unknown = np.isin(labels, unknown_people)
        known = np.flatnonzero(~is_unknown)
        enrolled, known_probes = split_gallery(labels[known], rng, per_person)
        gallery, probes = known[enrolled], np.concatenate([known[known_probes], np.flatnonzero(is_unknown)])
        if len(known_probes) == 0:
            raise ValueError(f"no enrolled person has more than per_person={per_person} images, so no known probes")
        for result, (_, fixed_tau, far) in zip(results, conditions, strict=True):
            result.append(open_set_identification(embeddings[gallery], labels[gallery], queries[probes],
                                                  labels[probes], tau=fixed_tau, false_alarm_rate=far))
    return [
        OpenSetPoint(name, float(np.mean([r[0] for r in rs])), float(np.std([r[0] for r in rs])),
                     float(np.mean([r[1] for r in rs])), float(np.mean([r[2] for r in rs])))
        for (name, _, _), rs in zip(conditions, results, strict=True)
    ]
