"""A gallery of enrolled people, for 1:K identification with open-set rejection: who is this, if anyone?

A probe is compared with every enrolled identity; the nearest wins, unless it is farther than the threshold
tau (squared L2, the scale of the run's verification threshold), in which case the probe is "unknown".
The distance to an identity is, by default, to its nearest enrolled embedding (face to face, so tau means what
it means for a pair of images); with by="mean", to its mean embedding re-normalised to unit length.

Saved as .npz (no pickled objects; written to a temporary file and renamed, so never half-written).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from tinyface.data.untrusted import Member, UntrustedFileError, read_json_object, read_npz
from tinyface.eval.checks import check_embeddings
from tinyface.eval.distances import l2_normalize, squared_distances
from tinyface.files import atomic_write

UNKNOWN = "unknown"
GALLERY_FORMAT = 1
FILE_MEMBERS = {"embeddings": Member(2, "f"), "labels": Member(1, "iu"), "names": Member(1, "U"),
                "paths": Member(1, "U"), "meta": Member(0, "U"), "format": Member(0, "iu")}
"""The arrays of a gallery file (and of `tinyface embed`'s embeddings file): their dimensions and dtype kinds."""


class GalleryError(ValueError):
    """A gallery that cannot be used: empty, unreadable, or made for other embeddings."""


class Identification(NamedTuple):
    """The nearest enrolled identity (or UNKNOWN when it is farther than tau) and its distance."""

    name: str
    distance: float


@dataclass
class Gallery:
    """Enrolled faces: embeddings (M, D), labels (M,) indexing `names` (one per identity), the source path of
    each face ("" when unknown), and `meta`, JSON-able facts about the model that made the embeddings (so that
    a gallery is not used with another model's embeddings)."""

    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    names: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.names, self.paths = [str(n) for n in self.names], [str(p) for p in self.paths]
        m = len(self.labels)
        if self.embeddings.ndim != 2 or len(self.embeddings) != m or len(self.paths) != m:
            raise GalleryError(f"a gallery needs embeddings (M, D), M labels and M paths; got {self.embeddings.shape}"
                               f", {m} labels, {len(self.paths)} paths")
        _check_finite(self.embeddings, "gallery embeddings")
        if m and (self.labels.min() < 0 or self.labels.max() >= len(self.names)):
            raise GalleryError(f"labels must index the {len(self.names)} names, got {self.labels.min()}.."
                               f"{self.labels.max()}")
        if set(range(len(self.names))) - set(self.labels.tolist()):
            raise GalleryError("every name needs at least one enrolled embedding")
        if len(set(self.names)) != len(self.names):
            raise GalleryError("names must be distinct")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"Gallery({len(self.names)} people, {len(self)} faces, D={self.embeddings.shape[1]})"

    def enroll(
        self, embeddings: np.ndarray, names: Sequence[str], paths: Sequence[str] | None = None
    ) -> Gallery:
        """A new gallery holding this one's faces and these: embeddings (N, D) of the people `names` (one name
        per embedding; a name already enrolled gains faces). paths: the image of each embedding."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        names = [str(n) for n in names]
        paths = [""] * len(names) if paths is None else [str(p) for p in paths]
        if embeddings.ndim != 2 or not (len(embeddings) == len(names) == len(paths)):
            raise GalleryError(f"give embeddings (N, D) with one name and one path each: {embeddings.shape}, "
                               f"{len(names)} names, {len(paths)} paths")
        if len(embeddings) == 0:
            raise GalleryError("nothing to enroll: no embeddings (was the folder empty?)")
        if len(self) and embeddings.shape[1] != self.embeddings.shape[1]:
            raise GalleryError(f"embeddings of dimension {embeddings.shape[1]} cannot join a gallery of "
                               f"dimension {self.embeddings.shape[1]}: were they made by another model?")
        bad = {n for n in names if not n.strip() or n == UNKNOWN}
        if bad:
            raise GalleryError(f"names must be non-empty and not {UNKNOWN!r} (which means rejected): {sorted(bad)}")
        all_names = self.names + [n for n in dict.fromkeys(names) if n not in self.names]
        index = {name: i for i, name in enumerate(all_names)}
        old = self.embeddings if len(self) else self.embeddings.reshape(0, embeddings.shape[1])
        return Gallery(np.concatenate([old, embeddings]),
                       np.concatenate([self.labels, [index[n] for n in names]]).astype(np.int64),
                       all_names, self.paths + paths, dict(self.meta))

    def means(self) -> np.ndarray:
        """(P, D) each identity's mean embedding, re-normalised to unit length."""
        self._check_not_empty()
        sums = np.zeros((len(self.names), self.embeddings.shape[1]))
        np.add.at(sums, self.labels, self.embeddings)
        return l2_normalize(sums)

    def identity_distances(self, embeddings: np.ndarray, by: Literal["nearest", "mean"] = "nearest") -> np.ndarray:
        """(N, P) squared L2 distance of each probe to each identity: min over its faces, or to its mean."""
        probes = self._check_probes(embeddings)
        if by == "mean":
            return squared_distances(probes, self.means())
        if by != "nearest":
            raise ValueError(f"by must be 'nearest' or 'mean', got {by!r}")
        order = np.argsort(self.labels, kind="stable")  # faces grouped by identity, then min within each group
        starts = np.searchsorted(self.labels[order], np.arange(len(self.names)))
        return np.minimum.reduceat(squared_distances(probes, self.embeddings[order]), starts, axis=1)

    def identify(
        self, embeddings: np.ndarray, tau: float, by: Literal["nearest", "mean"] = "nearest"
    ) -> list[Identification]:
        """For each probe (N, D): the nearest identity and its distance, or UNKNOWN when that distance > tau."""
        if not np.isfinite(tau) or tau < 0:
            raise ValueError(f"tau must be a non-negative squared L2 distance, got {tau}")
        d = self.identity_distances(embeddings, by)
        nearest = d.argmin(axis=1)
        distance = d[np.arange(len(d)), nearest]
        return [Identification(self.names[i] if dist <= tau else UNKNOWN, float(dist))
                for i, dist in zip(nearest, distance, strict=True)]

    def save(self, path: str | Path) -> Path:
        """Write the gallery to `path` (.npz) atomically: a temporary file renamed into place (a new file is
        readable by its owner only: 0600)."""
        self._check_not_empty()
        arrays = {
            "embeddings": self.embeddings,
            "labels": self.labels,
            "names": np.array(self.names, dtype=str),
            "paths": np.array(self.paths, dtype=str),
            "meta": np.array(json.dumps(self.meta)),
            "format": np.array(GALLERY_FORMAT),
        }
        return atomic_write(path, lambda file: np.savez(file, **arrays), mode=0o600)  # biometric templates

    @classmethod
    def load(cls, path: str | Path) -> Gallery:
        """Read a gallery written by save; raises FileNotFoundError or GalleryError saying what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"gallery file {path} does not exist; create it with `tinyface enroll`")
        try:
            data = read_npz(path, expected=FILE_MEMBERS, only_expected=True)
            if int(data["format"]) != GALLERY_FORMAT:
                raise GalleryError(f"{path} has gallery format {int(data['format'])}, this tinyface reads "
                                   f"{GALLERY_FORMAT}; enroll again")
            gallery = cls(data["embeddings"], data["labels"], data["names"].tolist(), data["paths"].tolist(),
                          read_json_object(str(data["meta"]), f"the meta of {path}"))
        except UntrustedFileError as error:
            raise GalleryError(f"{error}: not a tinyface gallery, or a damaged one; enroll again") from None
        if len(gallery) == 0:
            raise GalleryError(f"{path} holds an empty gallery; enroll some faces first")
        return gallery

    def _check_not_empty(self) -> None:
        if len(self) == 0:
            raise GalleryError("the gallery is empty; enroll some faces first")

    def _check_probes(self, embeddings: np.ndarray) -> np.ndarray:
        self._check_not_empty()
        probes = np.asarray(embeddings, dtype=np.float32)
        if probes.ndim != 2 or probes.shape[1] != self.embeddings.shape[1]:
            raise GalleryError(f"probe embeddings must be (N, {self.embeddings.shape[1]}) like the gallery's, got "
                               f"{probes.shape}: were they made by another model?")
        return _check_finite(probes, "probe embeddings")


def _check_finite(embeddings: np.ndarray, what: str) -> np.ndarray:
    try:
        return check_embeddings(embeddings, what)
    except ValueError as error:
        raise GalleryError(str(error)) from None
