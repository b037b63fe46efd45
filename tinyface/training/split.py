"""Who trains, who validates, and which pairs test: the experiments of `tinyface train` and `validate`.

    olivetti    people 0-29 train (the last `validation_people` of them validate), people 30-39 test: all 450
                matched pairs and 450 mismatched pairs of their 100 images
    lfw-view1   LFW's development view: peopleDevTrain train, the 500 + 500 pairs of pairsDevTest test
    lfw-view2   LFW's protocol, one of ten trainings: the people of the nine other folds (people.txt) train,
                the 300 + 300 pairs of fold k test, with tau chosen on the other folds' pairs (pairs.txt)
    folder      a folder in the person/image layout: a random `test_fraction` of the people test (all matched
                pairs, as many mismatched pairs)

Every split is described by a JSON-able dict that rebuilds it exactly (`load_split(**description)`); the people are
listed by name, so nothing depends on a random draw being repeated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyface.data import (
    FaceDataset,
    image_root,
    load_image_folder,
    load_olivetti,
    read_pairs,
    read_people,
)
from tinyface.data.lfw import LFW_FRAME
from tinyface.data.transforms import resize
from tinyface.eval import lfw_pairs_to_indices, pairs_from_labels
from tinyface.training.measure import Pairs

DATASETS = ("olivetti", "lfw-view1", "lfw-view2", "folder")
OLIVETTI_TEST_PEOPLE = tuple(range(30, 40))
LFW_FACE_CROP = 0.4  # side of the central square kept around an LFW face, as a fraction of the frame (100 pixels)
LFW_FOLDS = 10


@dataclass
class Split:
    """Training people (without the validation people), validation people (or None), test people and pairs."""

    dataset: str
    train: FaceDataset
    validation: FaceDataset | None
    test: FaceDataset
    pairs: Pairs
    fold: int | None
    description: dict[str, Any]

    @property
    def training_people(self) -> FaceDataset:
        """Everyone the model may learn from (train + validation): for fitting baselines such as Eigenfaces."""
        if self.validation is None:
            return self.train
        labels = np.concatenate([self.train.labels, self.validation.labels + self.train.num_people])
        return FaceDataset(np.concatenate([self.train.images, self.validation.images]), labels,
                           self.train.names + self.validation.names)


def load_split(
    dataset: str,
    data: str | Path | None = None,
    *,
    fold: int | None = None,
    validation_people: int | float | list[str] | None = None,
    test_fraction: float = 0.25,
    test_people: list[str] | None = None,
    image_size: int = 64,
    grayscale: bool | None = None,
    face_crop: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> Split:
    """Load the images of one experiment (see the module docstring).

    data: olivetti: a folder holding olivettifaces.mat (default: $TINYFACE_DATA, the cache, or a download);
    lfw-*: the LFW folder (protocol files and lfw-deepfunneled/; default $TINYFACE_DATA/lfw); folder: the image
    folder. validation_people: a count, a fraction of the training people, or names (default: 5 for Olivetti,
    5% for LFW and folders; 0 for none). grayscale: default True for Olivetti, False (RGB) for the others.
    face_crop: LFW and folders: keep the central square of this fraction of each image's shorter side before
    resizing (default LFW_FACE_CROP for LFW, the whole image for folders); the run records it, so that photos of
    any size are embedded at the same scale.
    seed: chooses the random people (validation, folder test people), which are then listed by name.
    progress: show a progress bar while image files are decoded (the first time; later they come from the cache).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if face_crop is not None and not 0 < face_crop <= 1:
        raise ValueError(f"face_crop is a fraction of the image's side in (0, 1], got {face_crop}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    if dataset == "olivetti":
        faces = load_olivetti(data)
        if image_size != faces.images.shape[-1]:
            faces = FaceDataset(resize(faces.images, image_size), faces.labels, faces.names)
        test_names = [faces.names[p] for p in OLIVETTI_TEST_PEOPLE]
        train_names = [n for n in faces.names if n not in test_names]
        everyone, pairs_of, crop, grayscale = faces, None, None, True
        default_validation = 5
    elif dataset == "folder":
        if data is None:
            raise ValueError("--dataset folder needs --data PATH: a folder with one sub-folder of images per person")
        grayscale = False if grayscale is None else grayscale
        everyone = _with_pairs(load_image_folder(data, size=image_size, grayscale=grayscale, progress=progress,
                                                 face_crop=face_crop), data)
        crop, pairs_of = face_crop, None
        if test_people is None:
            count, people = round(test_fraction * everyone.num_people), everyone.num_people
            if not 2 <= count <= people - 2:
                raise ValueError(f"a test fraction of {test_fraction:g} tests {count} of the {people} people with "
                                 "two or more images; testing needs 2 of them and training 2 others: choose a "
                                 f"fraction between {2 / people:.2f} and {(people - 2) / people:.2f} (--test-fraction)")
            test_people = [everyone.names[p] for p in np.sort(rng.choice(everyone.num_people, count, False))]
        test_names = list(test_people)
        train_names = [n for n in everyone.names if n not in set(test_names)]
        default_validation = 0.05
    else:
        root = _lfw_root(data)
        grayscale = False if grayscale is None else grayscale
        crop = LFW_FACE_CROP if face_crop is None else face_crop
        everyone = load_image_folder(image_root(root), size=image_size, grayscale=grayscale, face_crop=crop,
                                     progress=progress)
        if dataset == "lfw-view1":
            train_names = _names_in(read_people(root / "peopleDevTrain.txt"))
            pairs_of = read_pairs(root / "pairsDevTest.txt")
        else:
            if fold is None or not 0 <= fold < LFW_FOLDS:
                raise ValueError(f"lfw-view2 needs a fold in 0..{LFW_FOLDS - 1}, got {fold}")
            folds = read_people(root / "people.txt")
            train_names = _names_in([f for k, f in enumerate(folds) if k != fold])
            pairs_of = read_pairs(root / "pairs.txt")
        test_names = sorted({p.name1 for p in pairs_of} | {p.name2 for p in pairs_of})
        default_validation = 0.05

    train = _select(everyone, train_names, data)
    test = _select(everyone, test_names, data)
    if pairs_of is None:
        i, j, same = pairs_from_labels(test.labels, rng=0)
        pairs = Pairs(i, j, same)
    else:
        i, j, same, pair_folds = lfw_pairs_to_indices(pairs_of, test)
        pairs = Pairs(i, j, same, pair_folds if dataset == "lfw-view2" else None)
    train, validation = _split_validation(train, default_validation if validation_people is None
                                          else validation_people, rng)
    _need_pairs(train, "training", data)
    _need_folds(int(pairs.same.sum()), int((~pairs.same).sum()), f"the {test.num_people} test people",
                "add images or people to the folder, or test more of them (--test-fraction)" if dataset == "folder"
                else "check the protocol files")
    if validation is not None:
        _need_folds(*_pair_counts(validation), f"the {validation.num_people} validation people",
                    "validate on more people (--validation-people), or on none (0)")
    else:  # tau is chosen on training people's pairs
        _need_folds(*_pair_counts(train), f"the {train.num_people} training people",
                    "add images or people, or test fewer of them")
    description = {"dataset": dataset, "data": None if data is None else str(Path(data).expanduser().resolve()),
                   "fold": fold, "image_size": image_size, "grayscale": grayscale, "face_crop": crop,
                   "validation_people": [] if validation is None else validation.names,
                   "test_people": test.names if dataset == "folder" else None, "seed": seed}
    return Split(dataset, train, validation, test, pairs, fold, description)


def split_from_description(description: dict[str, Any], **changes: Any) -> Split:
    """Rebuild the split a run was trained on, from the `task` dict saved in its run.json."""
    args = {k: description.get(k) for k in ("dataset", "data", "fold", "validation_people", "test_people",
                                            "image_size", "grayscale", "face_crop", "seed")}
    if args["face_crop"] is None and description.get("source_crop"):  # runs of tinyface 0.1: pixels of LFW's 250
        args["face_crop"] = description["source_crop"] / LFW_FRAME
    args.update(changes)
    args["validation_people"] = args["validation_people"] or 0
    return load_split(args.pop("dataset"), args.pop("data"), **{k: v for k, v in args.items() if v is not None})


def _lfw_root(data: str | Path | None) -> Path:
    if data is None:
        if not os.environ.get("TINYFACE_DATA"):
            raise ValueError("LFW needs --data PATH: the LFW folder holding pairs.txt, people.txt and "
                             "lfw-deepfunneled/ (or set TINYFACE_DATA to a folder holding lfw/)")
        data = Path(os.environ["TINYFACE_DATA"]) / "lfw"
    root = Path(data).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the LFW folder (holding pairs.txt and "
                                "lfw-deepfunneled/)")
    return root


def _names_in(folds: list[list[str]]) -> list[str]:
    return sorted({name for fold in folds for name in fold})


def _select(everyone: FaceDataset, names: list[str], data: Any) -> FaceDataset:
    label_of = {name: label for label, name in enumerate(everyone.names)}
    missing = [n for n in names if n not in label_of]
    if missing:
        raise FileNotFoundError(f"{len(missing)} people of the protocol have no images under {data}: {missing[:5]}")
    return everyone.people([label_of[n] for n in names])


def _with_pairs(dataset: FaceDataset, data: Any) -> FaceDataset:
    """The people with 2 or more images (the others give no matched pair and no anchor-positive pair)."""
    enough = np.flatnonzero(dataset.image_counts() >= 2)
    if len(enough) < 4:
        raise ValueError(f"{len(enough)} people in {data} have two or more images; training and testing need at "
                         "least 4 such people (training needs anchor-positive pairs, testing needs matched pairs)")
    return dataset.people(enough)


def _need_pairs(train: FaceDataset, what: str, data: Any) -> None:
    if np.sum(train.image_counts() >= 2) < 2:
        raise ValueError(f"fewer than 2 {what} people have two or more images (in {data}): triplets need an "
                         "anchor-positive pair and a negative")


def _pair_counts(people: FaceDataset) -> tuple[int, int]:
    """(matched, mismatched) pairs that eval.pairs_from_labels makes of these people's images: every matched
    pair, and as many mismatched ones as there are (n_k images of person k, N in all)."""
    n = people.image_counts().astype(np.int64)
    matched = int(np.sum(n * (n - 1) // 2))
    return matched, min(matched, int((n.sum() ** 2 - np.sum(n**2)) // 2))


def _need_folds(matched: int, mismatched: int, who: str, remedy: str) -> None:
    """Refuse, before any training, pairs that k-fold accuracy cannot use: fewer than k matched or mismatched
    pairs (k = LFW_FOLDS), for the test pairs and for the pairs each epoch validates on and chooses tau from."""
    if min(matched, mismatched) < LFW_FOLDS:
        raise ValueError(f"{who} give {matched} matched and {mismatched} mismatched pairs, and {LFW_FOLDS}-fold "
                         f"accuracy needs at least {LFW_FOLDS} of each: {remedy}")


def _split_validation(
    train: FaceDataset, validation: int | float | list[str], rng: np.random.Generator
) -> tuple[FaceDataset, FaceDataset | None]:
    """(train, validation): the validation people are the last `count` training people (Olivetti-style
    integer), a random fraction of them, or the people named."""
    if isinstance(validation, (list, tuple)):
        if not validation:
            return train, None
        names = list(validation)
    elif isinstance(validation, float) and 0 < validation < 1:
        candidates = np.flatnonzero(train.image_counts() >= 2)
        count = max(2, round(validation * len(candidates)))
        names = [train.names[p] for p in np.sort(rng.choice(candidates, min(count, len(candidates)), False))]
    else:
        count = int(validation)
        if count == 0:
            return train, None
        if not 2 <= count <= train.num_people - 2:
            raise ValueError(f"validation_people={count}: need 2 or more, and at least 2 people left to train on "
                             f"(there are {train.num_people} training people)")
        names = train.names[-count:]
    keep = [n for n in train.names if n not in set(names)]
    label_of = {name: label for label, name in enumerate(train.names)}
    validation_set = train.people([label_of[n] for n in names])
    if not np.any(validation_set.image_counts() >= 2):
        raise ValueError("no validation person has two images; choose more validation people, or 0 for none")
    return train.people([label_of[n] for n in keep]), validation_set




def check_never_seen(task: dict[str, Any], split: Split) -> None:
    """Refuse to measure a run on another dataset's pairs when their people include people it was trained on (LFW's
    View 1 training people are most of View 2's, for example). task: the run's split description ({} if unknown)."""
    if not task:
        return
    trained = set(split_from_description(task).training_people.names)
    seen = sorted(trained & set(split.test.names))
    if seen:
        raise ValueError(f"{len(seen)} of the {split.test.num_people} people in these pairs were trained on by this "
                         f"run (e.g. {', '.join(seen[:3])}): accuracy must be measured on people a model never saw")
