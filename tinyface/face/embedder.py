"""Embed image files with a trained run: its model and its preprocessing, exactly as in training.

A run's `run.json` says how images reached the model: the side of the square input (`image_size`), grey or RGB
(`channels`), the normalisation (prewhiten), and for LFW-style data the central square kept around the face,
`face_crop`, a fraction of the frame (so photos of any resolution framed like LFW's land alike); `aligned=True` is
for images that are already face crops (no crop), and `detect=True` finds the face with OpenCV's detector and
frames it as the training images were (see face.align.frame_detected_face). An Embedder reads image files that
way, so a face photographed like the training data lands where the run's threshold tau means something.

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
from PIL import Image

from tinyface.data.folders import IMAGE_SUFFIXES, decode_images, image_files, model_input, person_folders, read_photo
from tinyface.data.lfw import LFW_FRAME
from tinyface.data.untrusted import read_json_object, read_npz
from tinyface.eval.checks import check_embeddings
from tinyface.face.align import NoFaceError, face_detector, frame_detected_face
from tinyface.face.gallery import FILE_MEMBERS  # an embeddings file holds the same arrays as a gallery
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

    aligned: the image files are already face crops (no centre crop). detect: find the largest face in each
    image with OpenCV's detector and frame it as the run's training faces were (runs trained on LFW-style
    frames). flip: test-time flipping (see measure.embed); tau is then the one chosen for flipped embeddings."""

    def __init__(self, checkpoint: Checkpoint, aligned: bool = False, flip: bool = False,
                 detect: bool = False) -> None:
        self.checkpoint, self.aligned, self.flip, self.detect = checkpoint, aligned, flip, detect
        if aligned and detect:
            raise ValueError("--aligned (the images are face crops already) and --detect (find the face in each "
                             "image) exclude each other: pass one")
        if detect and self.trained_face_crop is None:
            raise ValueError(f"--detect frames a face as a run trained on LFW-style frames saw it, but "
                             f"{checkpoint.folder} was trained on whole images (no face_crop in its run.json): "
                             "crop the faces as its training images were and pass --aligned")
        if detect:
            face_detector()  # raises, saying how to install OpenCV, before any image is read
        self.model: FaceCNN = checkpoint.build_model()

    @classmethod
    def load(cls, run: str | Path, aligned: bool = False, flip: bool = False, detect: bool = False) -> Embedder:
        """The Embedder of a run folder written by `tinyface train` (CheckpointError if it has no usable one)."""
        return cls(load_checkpoint(run), aligned, flip, detect)

    @property
    def tau(self) -> float:
        return self.checkpoint.tau_for(self.flip)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.checkpoint.preprocessing

    @property
    def face_crop(self) -> float | None:
        """The fraction of an image's side kept around the face before resizing (as in the run's training images),
        or None for the whole image (aligned crops, detected faces, or runs trained on whole images)."""
        return None if self.aligned or self.detect else self.trained_face_crop

    @property
    def trained_face_crop(self) -> float | None:
        """The fraction of the frame around the face that the run's training images kept (None: whole images)."""
        task = self.checkpoint.meta.get("task", {})
        if task.get("face_crop") is not None:
            return float(task["face_crop"])
        if task.get("source_crop") is not None:  # runs of tinyface 0.1 stored pixels of LFW's 250 px frames
            return task["source_crop"] / LFW_FRAME
        return None

    @property
    def signature(self) -> dict[str, Any]:
        """What makes two sets of embeddings comparable: architecture, preprocessing, crop and the weights."""
        return {"model": self.checkpoint.meta["model"], "preprocessing": self.preprocessing,
                "face_crop": self.face_crop, "detect": self.detect, "flip": self.flip,
                "weights_sha256": self.checkpoint.meta["sha256"], "run": str(self.checkpoint.folder.resolve()),
                "tau": self.tau}

    def check_signature(self, signature: dict[str, Any], what: str, old_version_ok: bool = False) -> None:
        """Raise ValueError when embeddings with this signature (of `what`, e.g. "gallery x.npz") were not made by
        this run's model: another architecture, other preprocessing, or other weights. old_version_ok: also accept
        embeddings of the old weights this run was trained compatible with (a harmonic embedding queried against
        an old gallery; never to add to one)."""
        ours = self.signature
        if not signature or "model" not in signature:
            raise ValueError(f"{what} does not say which model made it; make it again with this run")
        if self.declares_compatibility(signature) and signature.get("weights_sha256") != ours["weights_sha256"]:
            if old_version_ok:
                return
            raise ValueError(f"{what} was made by the old run this run was trained compatible with "
                             f"({signature.get('run')}): this run may query it (tinyface identify), but its own "
                             "embeddings must not join it; enroll into a new gallery")
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

    def declares_compatibility(self, signature: dict[str, Any]) -> bool:
        """Whether this run was trained compatible with exactly the weights (and architecture and preprocessing)
        that made embeddings of `signature` (`tinyface train --compatible-with`, run.json's "compatible_with")."""
        declared = self.checkpoint.meta.get("compatible_with") or {}
        return (bool(declared.get("weights_sha256")) and signature.get("weights_sha256") == declared["weights_sha256"]
                and signature.get("model") == declared.get("model")
                and signature.get("preprocessing") == declared.get("preprocessing"))

    def threshold_for(self, signature: dict[str, Any]) -> float:
        """tau for this run's embeddings against embeddings of `signature`: the run's own tau, or for the old
        weights it declares compatibility with, the tau its training chose on mixed pairs (one image by each
        version, plain embeddings; used with --flip too)."""
        if signature.get("weights_sha256") != self.checkpoint.meta["sha256"] and self.declares_compatibility(signature):
            return float(self.checkpoint.meta["compatible_with"]["tau"])
        return self.tau

    def read(self, paths: list[str | Path]) -> np.ndarray:
        """uint8 images (N, C, H, W) of image files, decoded as the run's training images were."""
        size, channels = int(self.preprocessing["image_size"]), int(self.preprocessing["channels"])
        if self.detect:
            return np.stack([self._detected_face(path, size, channels == 1) for path in paths])
        return read_images(paths, size, grayscale=channels == 1, face_crop=self.face_crop)

    def _detected_face(self, path: str | Path, size: int, grayscale: bool) -> np.ndarray:
        try:
            face = frame_detected_face(read_photo(path), self.trained_face_crop)
        except NoFaceError:
            raise NoFaceError(f"no face found in {path}; crop it by hand and pass --aligned instead of --detect"
                              ) from None
        return model_input(Image.fromarray(face), size, grayscale)

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
    embeddings = check_embeddings(np.asarray(embeddings, dtype=np.float32), "the embeddings to save")  # no NaN
    arrays = {"embeddings": embeddings, "labels": faces.labels,
              "names": np.array(faces.names, dtype=str), "paths": np.array([str(p) for p in faces.paths], dtype=str),
              "meta": np.array(json.dumps(signature)), "format": np.array(EMBEDDINGS_FORMAT)}
    return atomic_write(path, lambda file: np.savez(file, **arrays), mode=0o600)  # biometric templates


def load_embeddings(path: str | Path) -> tuple[np.ndarray, FaceFiles, dict[str, Any]]:
    """(embeddings, faces, signature) of a file written by save_embeddings; every array is checked (see
    tinyface.data.untrusted) before it is read, and the embeddings must be finite (ValueError otherwise)."""
    data = read_npz(path, expected=FILE_MEMBERS, only_expected=True)
    if int(data["format"]) != EMBEDDINGS_FORMAT:
        raise ValueError(f"{path} has embeddings format {int(data['format'])}; this tinyface reads "
                         f"{EMBEDDINGS_FORMAT}")
    embeddings = check_embeddings(data["embeddings"], f"the embeddings in {path}")
    labels, paths, names = data["labels"], data["paths"], data["names"]
    if not len(embeddings) == len(labels) == len(paths) or np.any((labels < UNLABELLED) | (labels >= len(names))):
        raise ValueError(f"{path} is inconsistent: {len(embeddings)} embeddings, {len(labels)} labels (each -1 or an "
                         f"index into the {len(names)} names), {len(paths)} paths")
    faces = FaceFiles([Path(p) for p in paths.tolist()], labels.astype(np.int64), names.tolist())
    return embeddings, faces, read_json_object(str(data["meta"]), f"the meta of {path}")


def _describe(model: dict[str, Any]) -> str:
    return (f"{model.get('name')} widths {model.get('widths')}, {model.get('in_channels')} channel(s), "
            f"D={model.get('embedding_dim')}")
