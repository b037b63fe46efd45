"""Embed image files with a trained run: its model and its preprocessing, exactly as in training.

A run's `run.json` says how images reached the model: the side of the square input (`image_size`), grey or RGB
(`channels`), the normalisation (prewhiten), and for LFW-style data the central square kept around the face,
`face_crop`, a fraction of the frame (so photos of any resolution framed like LFW's land alike); `aligned=True` is
for images that are already face crops (no crop). An Embedder reads image files that way, so a face photographed
like the training data lands where the run's threshold tau means something.

Faces on disk come in two layouts, both handled by `list_images`:

    DIR/person_name/image.jpg    labelled: one sub-folder per person (LFW's layout)
    DIR/image.jpg                unlabelled: images directly in the folder (labels -1)

Embeddings made by different weights do not share a space, so files of embeddings (galleries, `tinyface embed`)
carry the run's `signature`: its architecture, preprocessing and the checksum of its weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyface.data.folders import IMAGE_SUFFIXES, decode_images, image_files, person_folders
from tinyface.data.lfw import LFW_FRAME
from tinyface.files import atomic_write
from tinyface.nn.models import FaceCNN
from tinyface.training.checkpoint import Checkpoint, load_checkpoint
from tinyface.training.measure import embed

EMBEDDINGS_FORMAT = 1
UNLABELLED = -1


@dataclass
class FaceFiles:
    """Image files and who they show: labels (N,) index `names`, or are UNLABELLED (-1) for loose images."""

    paths: list[Path]
    labels: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labelled(self) -> bool:
        return bool(len(self.labels)) and bool(np.all(self.labels != UNLABELLED))

    def label_names(self) -> list[str]:
        """The person of each file ("" for unlabelled ones)."""
        return [self.names[k] if k != UNLABELLED else "" for k in self.labels]


def list_images(root: str | Path) -> FaceFiles:
    """The image files under `root`: those in its sub-folders labelled by the sub-folder's name (people sorted by
    name, files by file name), and those directly in it unlabelled. Hidden files and folders are skipped."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass a folder of images, or of one sub-folder per person")
    loose = image_files(root)
    people = person_folders(root)
    files = [image_files(root / name) for name in people]
    names = [n for n, f in zip(people, files, strict=True) if f]
    files = [f for f in files if f]
    paths = loose + [p for person in files for p in person]
    labels = np.concatenate([np.full(len(loose), UNLABELLED), np.repeat(np.arange(len(names)), [len(f) for f in files])
                             ]).astype(np.int64)
    if not paths:
        raise FileNotFoundError(f"no image files in {root} (expected {', '.join(sorted(IMAGE_SUFFIXES))} files, "
                                "directly in it or in one sub-folder per person)")
    return FaceFiles(paths, labels, names)


def read_images(paths: list[str | Path], size: int, grayscale: bool, face_crop: float | None = None) -> np.ndarray:
    """uint8 images (N, C, size, size) of image files (see decode_images). Raises ValueError naming every file that
    cannot be read (missing, not an image, truncated), so that nothing is embedded from a partial list."""
    images, problems = decode_images(paths, size, grayscale, face_crop)
    bad = [f"{path} ({problem})" for path, problem in zip(paths, problems, strict=True) if problem is not None]
    if bad:
        listed = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"cannot read {len(bad)} image file(s): {listed}")
    return images


class Embedder:
    """A run's model with its preprocessing: embeds uint8 images or image files as (N, D) unit vectors.

    aligned: the image files are already face crops (no centre crop). flip: test-time flipping (see measure.embed);
    tau is then the one chosen for flipped embeddings."""

    def __init__(self, checkpoint: Checkpoint, aligned: bool = False, flip: bool = False) -> None:
        self.checkpoint, self.aligned, self.flip = checkpoint, aligned, flip
        self.model: FaceCNN = checkpoint.build_model()

    @classmethod
    def load(cls, run: str | Path, aligned: bool = False, flip: bool = False) -> Embedder:
        """The Embedder of a run folder written by `tinyface train` (CheckpointError if it has no usable one)."""
        return cls(load_checkpoint(run), aligned, flip)

    @property
    def tau(self) -> float:
        return self.checkpoint.tau_for(self.flip)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.checkpoint.preprocessing

    @property
    def face_crop(self) -> float | None:
        """The fraction of an image's side kept around the face before resizing (as in the run's training images),
        or None for the whole image (aligned crops, or runs trained on whole images)."""
        task = self.checkpoint.meta.get("task", {})
        if self.aligned:
            return None
        if task.get("face_crop") is not None:
            return float(task["face_crop"])
        if task.get("source_crop") is not None:  # runs of tinyface 0.1 stored pixels of LFW's 250 px frames
            return task["source_crop"] / LFW_FRAME
        return None

    @property
    def signature(self) -> dict[str, Any]:
        """What makes two sets of embeddings comparable: architecture, preprocessing, crop and the weights."""
        return {"model": self.checkpoint.meta["model"], "preprocessing": self.preprocessing,
                "face_crop": self.face_crop, "flip": self.flip, "weights_sha256": self.checkpoint.meta["sha256"],
                "run": str(self.checkpoint.folder.resolve()), "tau": self.tau}

    def check_signature(self, signature: dict[str, Any], what: str) -> None:
        """Raise ValueError when embeddings with this signature (of `what`, e.g. "gallery x.npz") were not made by
        this run's model: another architecture, other preprocessing, or other weights."""
        ours = self.signature
        if not signature or "model" not in signature:
            raise ValueError(f"{what} does not say which model made it; make it again with this run")
        if signature["model"] != ours["model"]:
            raise ValueError(f"{what} was made by a model of another architecture ({_describe(signature['model'])}) "
                             f"than this run's ({_describe(ours['model'])}); make it again with this run")
        if signature.get("preprocessing") != ours["preprocessing"]:
            raise ValueError(f"{what} was made with other preprocessing ({signature.get('preprocessing')}) than this "
                             f"run's ({ours['preprocessing']}); make it again with this run")
        if signature.get("weights_sha256") != ours["weights_sha256"]:
            raise ValueError(f"{what} was made by other weights of the same architecture (run "
                             f"{signature.get('run')}); embeddings of different trainings are not comparable, "
                             "so make it again with this run")

    def read(self, paths: list[str | Path]) -> np.ndarray:
        """uint8 images (N, C, H, W) of image files, decoded as the run's training images were."""
        size, channels = int(self.preprocessing["image_size"]), int(self.preprocessing["channels"])
        return read_images(paths, size, grayscale=channels == 1, face_crop=self.face_crop)

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """(N, D) float32 unit vectors of uint8 images (N, C, H, W)."""
        return embed(self.model, images, self.preprocessing, flip=self.flip)

    def embed_files(self, paths: list[str | Path]) -> tuple[np.ndarray, np.ndarray]:
        """(images, embeddings) of image files: uint8 (N, C, H, W) and (N, D)."""
        if not paths:
            raise ValueError("no images to embed")
        images = self.read(paths)
        return images, self.embed_images(images)

    def tau_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(distances, same) of the pairs the run chose tau on (its validation people, or without them some
        training people), measured again with its final weights: what the confidence of a comparison rests on.
        Read from the checkpoint when it keeps them (runs of tinyface 0.2 on); otherwise the run's data is
        reloaded, raising what loading it raises when the data has gone."""
        stored = self.checkpoint.tau_pairs
        if "distances" in stored:
            return stored["distances_flip" if self.flip else "distances"], stored["same"].astype(bool)
        from tinyface.eval import pair_distances, pairs_from_labels
        from tinyface.training.split import split_from_description
        from tinyface.training.train import tau_people  # the same people training measured

        task = self.checkpoint.meta.get("task")
        if not task:
            raise ValueError(f"{self.checkpoint.folder} does not say which data it was trained on")
        split = split_from_description(task)
        people = split.validation if split.validation is not None else tau_people(split.train)
        i, j, same = pairs_from_labels(people.labels, rng=0)
        return pair_distances(self.embed_images(people.images), i, j), same


def save_embeddings(path: str | Path, embeddings: np.ndarray, faces: FaceFiles, signature: dict[str, Any]) -> Path:
    """Write embeddings (N, D), labels (N,) (-1: unlabelled), names, file paths and the run's signature as .npz,
    atomically (a temporary file renamed into place). Read it back with numpy.load or load_embeddings."""
    arrays = {"embeddings": np.asarray(embeddings, dtype=np.float32), "labels": faces.labels,
              "names": np.array(faces.names, dtype=str), "paths": np.array([str(p) for p in faces.paths], dtype=str),
              "meta": np.array(json.dumps(signature)), "format": np.array(EMBEDDINGS_FORMAT)}
    return atomic_write(path, lambda file: np.savez(file, **arrays), mode=0o600)  # biometric templates


def load_embeddings(path: str | Path) -> tuple[np.ndarray, FaceFiles, dict[str, Any]]:
    """(embeddings, faces, signature) of a file written by save_embeddings."""
    with np.load(path, allow_pickle=False) as data:
        faces = FaceFiles([Path(p) for p in data["paths"].tolist()], data["labels"], data["names"].tolist())
        return data["embeddings"], faces, json.loads(str(data["meta"]))


def _describe(model: dict[str, Any]) -> str:
    return (f"{model.get('name')} widths {model.get('widths')}, {model.get('in_channels')} channel(s), "
            f"D={model.get('embedding_dim')}")
