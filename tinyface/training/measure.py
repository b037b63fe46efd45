"""Measure a face model: embed images in batches (eval mode, no graph recorded), then run the protocols.

Verification: the squared L2 distance d of each test pair, k-fold accuracy (tau chosen on the other folds), AUC,
EER and VAL@FAR; identification: one-shot rank-1 (one random enrolled image per person, the rest are probes).
The baselines a learned embedding has to beat are measured on the same pairs: raw pixels and Eigenfaces.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tinyface.data.dataset import FaceDataset
from tinyface.data.transforms import prewhiten, resize, to_float32
from tinyface.eval import (
    Eigenfaces,
    accuracy_at,
    best_threshold,
    l2_normalize,
    one_shot_rank1,
    pair_distances,
    pixel_embeddings,
    verification_report,
)
from tinyface.nn import Module
from tinyface.tensor import Tensor, no_grad

NORMALIZATIONS = ("prewhiten", "none")
METRIC_KEYS = ("accuracy", "accuracy_std", "auc", "eer", "val_at_far", "far", "one_shot_rank1")


class Pairs(NamedTuple):
    """Test pairs as indices into a dataset: (i, j) images, same identity or not, and the fold of each pair
    (None: ten stratified folds are made from the pair order)."""

    i: np.ndarray
    j: np.ndarray
    same: np.ndarray
    folds: np.ndarray | None = None


def preprocess(images: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """uint8 images (N, C, H, W) -> the model's float32 input: grey images repeated to the model's channels,
    resized to `image_size`, then normalised ("prewhiten": per image (x - mean) / std, FaceNet's)."""
    images = np.asarray(images)
    channels, size = int(preprocessing["channels"]), int(preprocessing["image_size"])
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {images.shape}")
    if images.shape[1] != channels:
        if images.shape[1] != 1:
            raise ValueError(f"the model takes {channels}-channel images, these have {images.shape[1]} channels")
        images = np.repeat(images, channels, axis=1)
    if images.shape[2:] != (size, size):
        images = resize(images, size)
    normalization = preprocessing.get("normalization", "prewhiten")
    if normalization == "prewhiten":
        return prewhiten(images)
    if normalization == "none":
        return to_float32(images)
    raise ValueError(f"unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}")


def embed(model: Module, images: np.ndarray, preprocessing: dict[str, Any], batch_size: int = 128,
          flip: bool = False) -> np.ndarray:
    """Embeddings (N, D) float32 of uint8 images (N, C, H, W): eval mode (BatchNorm's running statistics) and
    no graph; the model's train/eval mode is restored afterwards.

    flip: test-time augmentation, f(x) + f(mirror(x)) renormalised to unit length (a face and its mirror image
    are the same person, so their mean direction is a less noisy estimate of the embedding)."""
    was_training = model.training
    model.eval()

    def forward(batch: np.ndarray) -> np.ndarray:
        x = preprocess(batch, preprocessing)
        e = model(Tensor(x)).numpy()
        if flip:
            e = e + model(Tensor(np.ascontiguousarray(x[..., ::-1]))).numpy()
            e = l2_normalize(e)
        return e

    try:
        with no_grad():
            out = [forward(images[k : k + batch_size]) for k in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("no images to embed")
    return np.concatenate(out).astype(np.float32, copy=False)


def verification_metrics(
    embeddings: np.ndarray, labels: np.ndarray, pairs: Pairs, rng: np.random.Generator | int = 0
) -> dict[str, float | None]:
    """The table row of one embedding on test pairs: verification_report (k-fold accuracy and its std, AUC, EER,
    VAL at FAR = 1e-3 and the FAR reached, threshold) and one-shot rank-1 identification on all test images."""
    distances = pair_distances(embeddings, pairs.i, pairs.j)
    report = verification_report(distances, pairs.same, folds=pairs.folds)
    report["one_shot_rank1"] = _rank1(embeddings, labels, rng)
    return report


def held_out_fold_metrics(
    embeddings: np.ndarray, labels: np.ndarray, pairs: Pairs, fold: int, rng: np.random.Generator | int = 0
) -> dict[str, float | None]:
    """LFW View 2 for the model trained without fold `fold`'s people: accuracy on that fold's pairs at the tau
    chosen on the other folds' pairs; AUC, EER and VAL@FAR on that fold's pairs (ten stratified sub-folds)."""
    if pairs.folds is None:
        raise ValueError("held_out_fold_metrics needs the fold of each pair")
    distances = pair_distances(embeddings, pairs.i, pairs.j)
    test = pairs.folds == fold
    if not test.any() or test.all():
        raise ValueError(f"fold {fold} must hold some of the pairs, not all of them")
    tau = best_threshold(distances[~test], pairs.same[~test])
    report = verification_report(distances[test], pairs.same[test])
    report["accuracy"] = accuracy_at(distances[test], pairs.same[test], tau)
    report["accuracy_std"] = 0.0  # one fold: the spread comes from the ten trainings
    report["threshold"] = tau
    # one-shot identification among this fold's people only: the other folds' people were trained on
    fold_people = np.unique(np.concatenate([labels[pairs.i[test]], labels[pairs.j[test]]]))
    held = np.isin(labels, fold_people)
    report["one_shot_rank1"] = _rank1(embeddings[held], labels[held], rng)
    return report


def baseline_embeddings(
    train_images: np.ndarray, test_images: np.ndarray, n_components: int = 100, max_fit: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Raw pixels and Eigenfaces (PCA fit on at most `max_fit` training images, chosen at random with `seed`)
    as unit-length embeddings of the test images; the images are resized to the test images' size first."""
    size = test_images.shape[2:]
    if train_images.shape[2:] != size:
        train_images = resize(train_images, size)
    if train_images.shape[1] != test_images.shape[1]:
        raise ValueError(f"baselines need train and test images with the same channels, got "
                         f"{train_images.shape[1]} and {test_images.shape[1]}")
    if len(train_images) > max_fit:
        keep = np.sort(np.random.default_rng(seed).choice(len(train_images), size=max_fit, replace=False))
        train_images = train_images[keep]
    components = max(1, min(n_components, len(train_images) - 1))
    eigenfaces = Eigenfaces(components).fit(train_images)
    return {"pixels": pixel_embeddings(test_images), "eigenfaces": eigenfaces.transform(test_images)}


def baseline_metrics(
    train: FaceDataset, test: FaceDataset, pairs: Pairs, fold: int | None = None, n_components: int = 100
) -> dict[str, dict[str, float | None]]:
    """verification_metrics (or held_out_fold_metrics for a fold) of the raw-pixel and Eigenfaces baselines."""
    embeddings = baseline_embeddings(train.images, test.images, n_components)
    if fold is None:
        return {name: verification_metrics(e, test.labels, pairs) for name, e in embeddings.items()}
    return {name: held_out_fold_metrics(e, test.labels, pairs, fold) for name, e in embeddings.items()}


def _rank1(embeddings: np.ndarray, labels: np.ndarray, rng: np.random.Generator | int) -> float | None:
    """One-shot rank-1, or None when no test identity has a second image to probe with."""
    if not np.any(np.bincount(labels) >= 2):
        return None
    return one_shot_rank1(embeddings, labels, rng)
