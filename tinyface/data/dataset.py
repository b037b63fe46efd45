"""FaceDataset: images with identity labels, and identity-disjoint train/test splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class FaceDataset:
    """Face images and who they show.

    images: uint8 (N, C, H, W); labels: int64 (N,) in 0..P-1; names[p]: the identity with label p;
    paths: the source file of each image, or None when the images did not come from files.
    """

    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    paths: list[str] | None = None

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images)
        self.labels = np.asarray(self.labels)
        self.names = list(self.names)
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}; "
                "convert floats with (x * 255).round().astype(np.uint8)"
            )
        if not np.issubdtype(self.labels.dtype, np.integer) or self.labels.shape != (len(self.images),):
            raise ValueError(
                f"labels must be integers of shape ({len(self.images)},), "
                f"got {self.labels.dtype} {self.labels.shape}"
            )
        self.labels = self.labels.astype(np.int64, copy=False)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.names)):
            raise ValueError(
                f"labels must lie in 0..{len(self.names) - 1} (one name per label), "
                f"got {self.labels.min()}..{self.labels.max()}"
            )
        if self.paths is not None:
            self.paths = [str(p) for p in self.paths]
            if len(self.paths) != len(self.images):
                raise ValueError(
                    f"{len(self.paths)} paths for {len(self.images)} images; give one path per image"
                )

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        return f"FaceDataset({n} images of {self.num_people} people, {c}x{h}x{w})"

    @property
    def num_people(self) -> int:
        return len(self.names)

    def image_counts(self) -> np.ndarray:
        """Images per identity, (P,)."""
        return np.bincount(self.labels, minlength=self.num_people)

    def subset(self, indices: Sequence[int] | np.ndarray) -> FaceDataset:
        """The images at `indices` (ints or a boolean mask). Labels and names are kept as they are."""
        indices = np.asarray(indices)
        if indices.dtype == bool:
            if indices.shape != (len(self),):
                raise ValueError(f"a boolean mask must have shape ({len(self)},), got {indices.shape}")
            indices = np.flatnonzero(indices)
        indices = indices.astype(np.int64, copy=False).reshape(-1)
        paths = None if self.paths is None else [self.paths[i] for i in indices]
        return FaceDataset(self.images[indices], self.labels[indices], self.names, paths)

    def people(self, label_ids: Sequence[int] | np.ndarray) -> FaceDataset:
        """All images of the identities `label_ids`, relabelled 0..len(label_ids)-1 in the order given."""
        label_ids = np.asarray(label_ids, dtype=np.int64).reshape(-1)
        if len(np.unique(label_ids)) != len(label_ids):
            raise ValueError("label_ids contains repeats; give each identity once")
        if len(label_ids) and (label_ids.min() < 0 or label_ids.max() >= self.num_people):
            raise ValueError(f"label_ids must lie in 0..{self.num_people - 1}")
        new_label = np.full(self.num_people, -1, dtype=np.int64)
        new_label[label_ids] = np.arange(len(label_ids))
        keep = np.flatnonzero(new_label[self.labels] >= 0)
        paths = None if self.paths is None else [self.paths[i] for i in keep]
        names = [self.names[i] for i in label_ids]
        return FaceDataset(self.images[keep], new_label[self.labels[keep]], names, paths)

    def to_float(self) -> np.ndarray:
        """Images as float32 in [0, 1], (N, C, H, W)."""
        return self.images.astype(np.float32) / np.float32(255)


def split_people(
    dataset: FaceDataset,
    test_people: float | int | Sequence[int] | Sequence[str],
    rng: np.random.Generator | int | None = None,
) -> tuple[FaceDataset, FaceDataset]:
    """Split into (train, test) datasets that share no identity; each is relabelled 0..P-1.

    test_people: a fraction in (0, 1) of the identities or a count, chosen at random with `rng` (a Generator
    or seed, required then); or an explicit list of label ids or names (no randomness).
    """
    if isinstance(test_people, (float, int, np.integer, np.floating)) and not isinstance(test_people, bool):
        count = test_people
        if isinstance(count, (float, np.floating)):
            if not 0 < count < 1:
                raise ValueError(f"a fraction of test people must lie in (0, 1), got {count}")
            count = round(count * dataset.num_people)
        if not 0 < count < dataset.num_people:
            raise ValueError(
                f"test_people={test_people} leaves no train or no test identities "
                f"(there are {dataset.num_people})"
            )
        if rng is None:
            raise ValueError(
                "pass rng (a numpy Generator or an int seed) to choose test people at random, "
                "or pass an explicit list of test identities"
            )
        test_ids = np.sort(
            np.random.default_rng(rng).choice(dataset.num_people, size=int(count), replace=False)
        )
    else:
        label_of_name = {name: label for label, name in enumerate(dataset.names)}
        unknown = [who for who in test_people if isinstance(who, str) and who not in label_of_name]
        if unknown:
            raise ValueError(f"no identity named {unknown[:5]} in the dataset")
        test_ids = np.asarray([label_of_name.get(who, who) for who in test_people], dtype=np.int64)
    train_ids = np.setdiff1d(np.arange(dataset.num_people), test_ids)
    return dataset.people(train_ids), dataset.people(test_ids)
