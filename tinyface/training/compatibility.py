"""Harmonic embeddings: a new model v2 trained so that its embeddings can be compared with an old model v1's, and
the measure of how comparable they are (FaceNet, Schroff, Kalenichenko and Philbin 2015, appendix, figures 8-10).

A system holds v1 embeddings of many faces (a gallery). A v2 trained with `compatible_with=OLD_RUN`
(`tinyface train --compatible-with OLD_RUN`) can be queried against that gallery without re-embedding it:

    v1 is fixed        OldVersion loads its checkpoint; its weights (and BatchNorm statistics) are never changed.
                       Each training image is embedded by v1 once, before training, as it is (no flip, no shift:
                       what a gallery holds), as v1's own training saw it (its image size, grey or RGB, face crop:
                       view_for). v2 sees the augmented batch as usual.
    harmonic loss      every batch pools v1's and v2's embeddings of its B images into one batch of 2B rows with
                       the labels twice (losses.version_union): the configured in-batch loss (semi-hard by default)
                       forms its triplets over the pool, so an anchor of one version meets positives and negatives
                       of both, and negatives are chosen among both versions' embeddings (the paper's figure 9).
                       Only v2's rows receive a gradient.
    influence loss     with --loss softmax, v2's own softmax plus Backward-Compatible Training's influence loss
                       (Shen et al., CVPR 2020): v2's embedding is also classified by v1's frozen classifier, for
                       the people v1 was trained on (weight 1, BCT's). v1 must be a softmax run (it has the head).
    FaceNet's schedule started from an independently trained network (`init`), v2's embedding layer is
                       re-initialised and trained alone (features frozen: no gradient, BatchNorm statistics kept)
                       with the same loss for the first `embedding_steps` steps (default: one epoch), then the
                       whole network.

Where the paper is silent, the choices above are ours: v1 embeds un-augmented images, once (v1 embedding each
augmented batch as v2 sees it, at the cost of a v1 forward pass per step, gave the same mixed accuracy on Olivetti:
0.820 against 0.817); triplets of three v1 rows stay in the mean (constants, they scale the gradient); the first
stage uses the harmonic loss itself.

The run records in run.json which run it is compatible with, by the checksum of its weights ("compatible_with"),
and the threshold for mixed pairs (one image by each version) chosen on its validation people. A gallery of
exactly those v1 weights can then be queried with v2 (face.embedder checks the checksum).

measure_compatibility (`tinyface validate NEW --against OLD`) measures old/old, new/new and mixed rows on the same
test pairs (eval.compatibility) and the update gain G.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from tinyface.data.lfw import LFW_FRAME
from tinyface.eval import best_threshold, compatibility_report, kfold_accuracy, mixed_distances, stratified_folds
from tinyface.eval.compatibility import ROWS, row_distances
from tinyface.pretrained import pretrained_run
from tinyface.training.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from tinyface.training.measure import embed
from tinyface.training.split import Split, check_never_seen, split_from_description

ROW_NAMES = {"old": "old/old", "new": "new/new", "mixed": "mixed"}


class OldBatch(NamedTuple):
    """What the old version brings to one training step: its embeddings (B, D) of the batch's images; for the
    influence loss its classifier (weight (C, D), bias (C,)) and the batch's people as its classes (-1: a person
    it was not trained on)."""

    embeddings: np.ndarray
    classes: np.ndarray | None = None
    classifier: tuple[np.ndarray, np.ndarray] | None = None


class OldVersion:
    """The fixed old model v1 that a new model is trained compatible with: a run folder ("pretrained": the model
    that comes with tinyface)."""

    def __init__(self, run: str | Path) -> None:
        self.name = str(run)
        self.checkpoint: Checkpoint = load_checkpoint(pretrained_run() if self.name == "pretrained" else Path(run))
        self.model = self.checkpoint.build_model()  # eval mode; no optimiser ever sees its parameters
        self.train_embeddings: np.ndarray | None = None
        self.train_classes: np.ndarray | None = None

    @property
    def weights_sha256(self) -> str:
        return self.checkpoint.meta["sha256"]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.checkpoint.preprocessing

    def record(self) -> dict[str, Any]:
        """What run.json keeps of v1 ("compatible_with"): the run, the checksum of its weights, its architecture
        and preprocessing."""
        return {"run": str(self.checkpoint.folder.resolve()), "weights_sha256": self.weights_sha256,
                "model": self.checkpoint.meta["model"], "preprocessing": self.preprocessing,
                "step": self.checkpoint.meta["step"]}

    def check_new(self, model_config: dict[str, Any], loss: str) -> None:
        """Refuse a new model whose embeddings cannot share v1's space, or a loss v1 cannot serve."""
        ours, theirs = model_config["embedding_dim"], self.checkpoint.meta["model"]["embedding_dim"]
        if ours != theirs:
            raise ValueError(f"cannot train compatible with {self.name}: its embeddings have D={theirs}, this run's "
                             f"D={ours}; choose --embedding-dim {theirs} (v2 may differ in width, depth, input size "
                             "and data, not in the dimension of the embedding)")
        if not self.checkpoint.meta["model"].get("normalize", True):
            raise ValueError(f"cannot train compatible with {self.name}: its embeddings are not L2-normalised")
        if loss == "softmax" and not (self.checkpoint.head_state and self.checkpoint.meta.get("head_classes")):
            raise ValueError(f"--loss softmax with --compatible-with trains with BCT's influence loss, which needs "
                             f"the old run's classifier and its people; {self.name} has none (it was not trained "
                             "with --loss softmax by this tinyface): use a triplet loss (harmonic), e.g. semihard")

    def embed(self, images: np.ndarray) -> np.ndarray:
        """v1's embeddings (N, D) of uint8 images (N, C, H, W), with its preprocessing (resized to its input)."""
        return embed(self.model, images, self.preprocessing)

    def prepare(self, images: np.ndarray, names: Sequence[str], loss: str) -> None:
        """Embed the training images (as v1 sees them, in the order of the training data) once; for the influence
        loss, map the training people (names, by label) to v1's classes."""
        self.train_embeddings = self.embed(images)
        if loss == "softmax":
            index = {name: k for k, name in enumerate(self.checkpoint.meta["head_classes"])}
            self.train_classes = np.array([index.get(name, -1) for name in names], dtype=np.int64)
            if not np.any(self.train_classes >= 0):
                raise ValueError(f"none of this run's training people is among the {len(index)} people "
                                 f"{self.name}'s classifier knows: the influence loss needs people both versions "
                                 "train on")

    def batch(self, indices: np.ndarray, labels: np.ndarray) -> OldBatch:
        """v1's part of a training batch: rows `indices` of the training data, with their labels."""
        if self.train_embeddings is None:
            raise RuntimeError("call prepare() with the training images first")
        if self.train_classes is None:
            return OldBatch(self.train_embeddings[indices])
        head = self.checkpoint.head_state
        return OldBatch(self.train_embeddings[indices], self.train_classes[labels], (head["weight"], head["bias"]))

    def image_settings(self) -> dict[str, Any]:
        """How v1's training read images: its input size, grey or RGB, and face crop (1.0: the whole image)."""
        task = self.checkpoint.meta.get("task") or {}
        return {"image_size": int(self.preprocessing["image_size"]),
                "grayscale": int(self.preprocessing["channels"]) == 1, "face_crop": _crop(task)}

    def view_for(self, split: Split) -> Split:
        """The same people and pairs as `split`, their images read as v1's training read its own (size, colour,
        crop): `split` itself when they agree, else the split loaded again with v1's settings."""
        settings = self.image_settings()
        theirs = {"image_size": split.description["image_size"], "grayscale": bool(split.description["grayscale"]),
                  "face_crop": _crop(split.description)}
        if settings == theirs or (split.dataset == "olivetti" and settings["image_size"] == theirs["image_size"]):
            # (Olivetti faces are grey whole images whatever the settings: only the size can differ)
            return split
        view = split_from_description(split.description, **settings)
        if not (np.array_equal(view.pairs.i, split.pairs.i) and np.array_equal(view.train.labels, split.train.labels)):
            raise ValueError(f"the data read with {self.name}'s settings {settings} does not give the same images "
                             "(an image that one size or crop cannot decode?)")
        return view


def _crop(task: dict[str, Any]) -> float:
    """The face crop a split description records, 1.0 for whole images (Olivetti, folders without a crop)."""
    if task.get("face_crop") is not None:
        return float(task["face_crop"])
    if task.get("source_crop"):  # runs of tinyface 0.1 stored pixels of LFW's 250 px frames
        return float(task["source_crop"]) / LFW_FRAME
    return 1.0


def mixed_threshold(old: np.ndarray, new: np.ndarray, i: np.ndarray, j: np.ndarray,
                    same: np.ndarray) -> tuple[float, float]:
    """(10-fold accuracy, accuracy-maximising tau) of mixed pairs (one image by each version, both orders) of
    monitored people: the mixed accuracy a log shows, and the tau to compare a v2 query with a v1 gallery."""
    d, both = mixed_distances(old, new, i, j), np.concatenate([same, same])
    folds = np.tile(stratified_folds(same), 2)  # both orders of a pair in its fold
    return kfold_accuracy(d, both, folds=folds).mean, best_threshold(d, both)


# -- measuring two runs ------------------------------------------------------------------------------------
def measure_compatibility(
    new_run: str | Path, old_run: str | Path, split: Split | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(report, curves) of a new run against an old one on the same test pairs: the new run's own test pairs by
    default, or `split`'s. Each version embeds the test images as its own training read images (size, colour,
    crop). The old run must never have trained on the test people.

    report: {"old", "new", "mixed": each a dict of accuracy (10-fold), accuracy_std, auc, eer, val_at_far, rank1,
    open_set, ...; "gain": G on accuracy; "declared": whether the new run declares compatibility with exactly the
    old run's weights; "dataset", "test_pairs", "new_run", "old_run"}. curves: {"old/old", "new/new", "mixed":
    (distances, same)}, for figures.plot_roc (the paper's figure 8).

    In a notebook:
        report, curves = measure_compatibility("runs/v2", "runs/v1")
        print(format_compatibility(report))
        plot_roc(curves, "compatibility-roc.png")      # tinyface.training.figures
    """
    new, old = _run(new_run), OldVersion(old_run)
    if split is None:
        task = new.meta.get("task")
        if not task:
            raise CheckpointError(f"{new_run} does not say which data it was trained on; pass a split")
        split = split_from_description(task)
    check_never_seen(old.checkpoint.meta.get("task") or {}, split)
    test = np.ones(len(split.pairs.same), bool) if split.fold is None else split.pairs.folds == split.fold
    i, j, same = split.pairs.i[test], split.pairs.j[test], split.pairs.same[test]
    new_embeddings = embed(new.build_model(), split.test.images, new.preprocessing)
    old_embeddings = old.embed(old.view_for(split).test.images)
    report = compatibility_report(old_embeddings, new_embeddings, split.test.labels, i, j, same)
    declared = (new.meta.get("compatible_with") or {}).get("weights_sha256")
    report.update({"dataset": split.dataset, "test_pairs": int(test.sum()), "new_run": str(new_run),
                   "old_run": str(old_run), "declared": declared == old.weights_sha256})
    curves = {ROW_NAMES[row]: (d, s) for row, (d, s, _) in row_distances(old_embeddings, new_embeddings, i, j,
                                                                          same).items()}
    return report, curves


def _run(run: str | Path) -> Checkpoint:
    return load_checkpoint(pretrained_run() if str(run) == "pretrained" else Path(run))


def format_compatibility(report: dict[str, Any]) -> str:
    """The three rows, G and the 1:K numbers as a text table."""
    rates = next((list(report[row]["open_set"]) for row in ROWS if report[row]["open_set"]), [])
    lines = [f"{report['new_run']} (new) against {report['old_run']} (old): {report['dataset']}, "
             f"{report['test_pairs']} test pairs",
             f"{'':<9} {'accuracy':>15} {'AUC':>7} {'EER':>7} {'VAL@FAR':>8} {'rank-1':>7}"
             + "".join(f" {'DIR@' + r.replace('FAR<=', ''):>9}" for r in rates)]
    for row in ROWS:
        m = report[row]
        lines.append(f"{ROW_NAMES[row]:<9} {m['accuracy']:>7.3f} +- {m['accuracy_std']:.3f} {m['auc']:>7.3f} "
                     f"{m['eer']:>7.3f} {m['val_at_far']:>8.3f} {_number(m['rank1'])}"
                     + "".join(f" {_number(m['open_set'][r], 9)}" for r in rates))
    gain = report["gain"]
    lines.append(f"update gain G = (mixed - old/old) / (new/new - old/old) on accuracy: "
                 f"{'undefined (new/new = old/old)' if gain is None else f'{gain:.2f}'}")
    lines.append("mixed: one image of each pair embedded by each version, both orders; rank-1 and DIR (open set, "
                 "half the people strangers) of mixed enrol old embeddings and query with new ones")
    if not report["declared"]:
        lines.append("note: the new run does not declare compatibility with these old weights (trained without "
                     "--compatible-with, or with another old run)")
    return "\n".join(lines)


def json_compatibility(report: dict[str, Any]) -> dict[str, Any]:
    """`validate --against --json`: "old", "new", "mixed" (accuracy, auc, eer, val_at_far, and more), "gain"."""
    keys = ("accuracy", "accuracy_std", "auc", "eer", "val_at_far", "far", "rank1", "open_set")
    out: dict[str, Any] = {row: {k: report[row][k] for k in keys} for row in ROWS}
    out.update({k: report[k] for k in ("gain", "declared", "dataset", "test_pairs", "new_run", "old_run")})
    return out


def _number(value: float | None, width: int = 7) -> str:
    return f"{value:>{width}.3f}" if value is not None else f"{'-':>{width}}"

