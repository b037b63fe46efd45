"""P x K batches: P identities, K images of each, so every batch holds anchor-positive pairs to mine (and,
optionally, more people with one image each: negatives only)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class PKSampler:
    """Index batches of shape (P * K + extra_people,): P distinct identities, K images of each, grouped by person.

    A person's K images are drawn without replacement when they have at least K, with replacement otherwise.
    Identities with fewer than 2 images cannot give an anchor-positive pair: they are skipped and counted in
    `skipped_identities`. Asking for more identities per batch than there are usable ones is an error (rather
    than silently shrinking the batch). Each epoch yields `batches_per_epoch` batches (default: about one pass
    over the usable images); iterating again continues the generator's stream, so epochs differ but a run
    is reproducible from its seed.

    extra_people: each batch ends with one image each of this many more people, drawn from everyone not among
    the P, those with a single image included. They have no positive in the batch, so for the triplet and
    contrastive losses they are never anchors, only negatives for the others: people a P x K batch could never
    show (on LFW, most of them) still teach the model who is someone else. (A softmax loss classifies them like
    every other face of the batch.)
    """

    def __init__(
        self,
        labels: np.ndarray,
        people_per_batch: int,
        images_per_person: int,
        rng: np.random.Generator | int,
        batches_per_epoch: int | None = None,
        extra_people: int = 0,
    ):
        labels = np.asarray(labels)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
        if people_per_batch < 1 or images_per_person < 2:
            raise ValueError(
                f"need people_per_batch >= 1 and images_per_person >= 2 (for anchor-positive pairs), "
                f"got P={people_per_batch}, K={images_per_person}"
            )
        identities, counts = np.unique(labels, return_counts=True)
        usable = counts >= 2
        self.skipped_identities = int(np.sum(~usable))
        if usable.sum() < people_per_batch:
            raise ValueError(
                f"P={people_per_batch} identities per batch, but only {usable.sum()} identities have 2 or "
                f"more "
                f"images ({self.skipped_identities} have one); lower people_per_batch or add data"
            )
        others = len(identities) - people_per_batch
        if not isinstance(extra_people, (int, np.integer)) or not 0 <= extra_people <= others:
            raise ValueError(f"extra_people must be an integer between 0 and the {others} people not among the "
                             f"P={people_per_batch}, got {extra_people!r}")
        self.people_per_batch, self.images_per_person = people_per_batch, images_per_person
        self.extra_people = int(extra_people)
        self.rng = np.random.default_rng(rng)
        # The images of identity e are order[starts[e] : starts[e] + counts[e]]; P x K draws from `usable` only.
        self.order = np.argsort(labels, kind="stable")
        self.counts, self.starts = counts, np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.usable = np.flatnonzero(usable)
        if batches_per_epoch is not None and batches_per_epoch < 1:
            raise ValueError(f"batches_per_epoch must be positive, got {batches_per_epoch}")
        batch = people_per_batch * images_per_person
        self.batches_per_epoch = batches_per_epoch or max(1, int(counts[usable].sum()) // batch)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[np.ndarray]:
        for _ in range(self.batches_per_epoch):
            yield self.sample()

    def sample(self) -> np.ndarray:
        """One batch of indices into `labels`, (P * K + extra_people,): K of the first person, then K of the
        second..., then one image of each extra person."""
        p, k = self.people_per_batch, self.images_per_person
        chosen = self.usable[self.rng.choice(len(self.usable), size=p, replace=False)]
        counts = self.counts[chosen]
        # Without replacement: rank random keys within each person (padding keys are +inf), take the first K.
        keys = self.rng.random((p, counts.max()))
        keys[np.arange(counts.max()) >= counts[:, None]] = np.inf
        distinct = np.argsort(keys, axis=1)[:, :k]
        # With replacement, for people with fewer than K images.
        repeated = self.rng.integers(0, counts[:, None], size=(p, k))
        if distinct.shape[1] < k:  # nobody chosen has K images
            distinct = repeated
        offsets = np.where(counts[:, None] >= k, distinct, repeated)
        batch = self.order[self.starts[chosen][:, None] + offsets].reshape(-1)
        if not self.extra_people:
            return batch
        extra = self.rng.choice(np.delete(np.arange(len(self.counts)), chosen), size=self.extra_people, replace=False)
        one = self.rng.integers(0, self.counts[extra])
        return np.concatenate([batch, self.order[self.starts[extra] + one]])
