"""The trivial solution of the triplet loss, and why the margin prevents it (the teacher's demo).

Without a margin the triplet loss  max(d(a, p) - d(a, n), 0)  is 0 when every face is mapped to the same point:
d(a, p) = d(a, n) = 0, and nothing in the loss pushes away from it. Three forces pull towards it: without
normalisation the loss itself (L(s f) = s^2 L(f) for alpha = 0, so shrinking f lowers any positive loss); on the
unit sphere, bunching the faces together (with alpha = 0 every active triplet is hard, d_an < d_ap, and pulling the
faces closer lowers every active hinge); and weight decay (every parameter pulled towards 0, biases and batch-norm
scales included). The demo makes the decay extreme (weight_decay=0 takes it away), so that with alpha = 0 the
network's output shrinks to a constant, the embeddings of all faces fall together and the loss is 0 within two
minutes, while alpha = 0.2 makes the collapsed state cost 0.2 per triplet and keeps the faces apart. Three runs from
the same seed and the same batches:

    alpha = 0,   L2-normalised embedding    (the pre-normalisation norm collapses; the spread follows)
    alpha = 0.2, L2-normalised embedding    (the faces stay apart)
    alpha = 0,   unnormalised embedding     (f = 0: the norm itself falls to nothing)

Per epoch we record the loss, the spread (mean squared distance between the embeddings of different images), the
mean norm of the embedding before normalisation, and verification accuracy at a fixed tau on all pairs of the
evaluation images; the 2-D projections (PCA) of the embeddings at the start and at the end show it at a glance.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tinyface.data import FaceDataset, PKSampler
from tinyface.data.transforms import prewhiten, resize, to_float32
from tinyface.eval.distances import l2_normalize, squared_distances
from tinyface.losses import batch_all_triplet_loss
from tinyface.nn.models import FaceCNN
from tinyface.nn.optim import AdamW
from tinyface.rng import manual_seed
from tinyface.tensor import Tensor, no_grad


@dataclass(frozen=True)
class Variant:
    name: str
    margin: float
    normalize: bool


VARIANTS = (
    Variant("alpha = 0", 0.0, True),
    Variant("alpha = 0.2", 0.2, True),
    Variant("alpha = 0, unnormalised", 0.0, False),
)


@dataclass
class CollapseConfig:
    """Settings of the demo. The reference CNN runs on 32x32 images here (it is fully convolutional) so that the
    three trainings fit in two minutes on two cores."""

    epochs: int = 16
    steps_per_epoch: int = 8
    image_size: int = 32
    people_per_batch: int = 8
    images_per_person: int = 4
    lr: float = 3e-3
    weight_decay: float = 3.0  # AdamW's decoupled decay: each step multiplies every parameter by (1 - lr * wd)
    tau: float = 0.5  # fixed verification threshold on squared distances between unit vectors
    eval_people: int = 10  # identities (of the training people) whose images are embedded each epoch
    seed: int = 0
    variants: tuple[Variant, ...] = VARIANTS


@dataclass
class CollapseHistory:
    variant: Variant
    loss: list[float] = field(default_factory=list)
    spread: list[float] = field(default_factory=list)
    norm: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    start_embeddings: np.ndarray | None = None
    end_embeddings: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "variant": self.variant.name,
            "loss_first": self.loss[0],
            "loss_last": self.loss[-1],
            "spread_start": self.spread[0],
            "spread_end": self.spread[-1],
            "norm_start": self.norm[0],
            "norm_end": self.norm[-1],
            "accuracy_start": self.accuracy[0],
            "accuracy_end": self.accuracy[-1],
        }


def prepare_images(dataset: FaceDataset, size: int) -> np.ndarray:
    """Float images, resized and prewhitened (per-image standardisation)."""
    images = to_float32(dataset.images)
    if images.shape[-1] != size:
        images = resize(images, size)
    return prewhiten(images)


def measure(model: FaceCNN, images: np.ndarray, labels: np.ndarray, tau: float) -> tuple[float, float, float, Any]:
    """(spread, mean pre-normalisation norm, accuracy at tau, embeddings) of the evaluation images."""
    model.eval()
    with no_grad():
        raw = model.embed_unnormalized(Tensor(images)).numpy()
    model.train()
    norms = np.linalg.norm(raw, axis=1)
    embeddings = l2_normalize(raw) if model.normalize is not None else raw
    d = squared_distances(embeddings, embeddings)
    upper = np.triu_indices(len(labels), k=1)
    same = (labels[:, None] == labels[None, :])[upper]
    distances = d[upper]
    accuracy = 0.5 * ((distances[same] <= tau).mean() + (distances[~same] > tau).mean())  # balanced
    return float(distances.mean()), float(norms.mean()), float(accuracy), embeddings


def train_variant(variant: Variant, images: np.ndarray, labels: np.ndarray, eval_images: np.ndarray,
                  eval_labels: np.ndarray, config: CollapseConfig) -> CollapseHistory:
    """One training run of the reference CNN with the batch-all triplet loss at the variant's margin.

    (Batch-all, not semi-hard: with alpha = 0 a semi-hard negative, d_an > d_ap, never has a positive hinge, so the
    semi-hard loss is 0 from the first step and shows nothing.)"""
    manual_seed(config.seed)
    model = FaceCNN(images.shape[1], (32, 64, 128, 128), 128, normalize=variant.normalize,
                    rng=np.random.default_rng(config.seed))
    optimizer = AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sampler = PKSampler(labels, config.people_per_batch, config.images_per_person, np.random.default_rng(config.seed))
    history = CollapseHistory(variant)

    def record(loss: float) -> np.ndarray:
        spread, norm, accuracy, embeddings = measure(model, eval_images, eval_labels, config.tau)
        history.loss.append(loss)
        history.spread.append(spread)
        history.norm.append(norm)
        history.accuracy.append(accuracy)
        return embeddings

    with no_grad():
        first = sampler.sample()
        initial_loss = batch_all_triplet_loss(model(Tensor(images[first])), labels[first], variant.margin)[0].item()
    history.start_embeddings = record(initial_loss)
    for _ in range(config.epochs):
        losses = []
        for _ in range(config.steps_per_epoch):
            batch = sampler.sample()
            loss, _ = batch_all_triplet_loss(model(Tensor(images[batch])), labels[batch], variant.margin)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.end_embeddings = record(float(np.mean(losses)))
    return history


def run_collapse(dataset: FaceDataset, config: CollapseConfig | None = None, log: Any = print,
                 held_out: FaceDataset | None = None) -> list[CollapseHistory]:
    """Train every variant from the same seed on `dataset` and return their histories. The measurements are taken
    on `held_out` (people the networks never see) when given, else on the first `config.eval_people` people of
    `dataset` (then the accuracy is a sign of collapse, not a recognition score)."""
    config = config or CollapseConfig()
    images = prepare_images(dataset, config.image_size)
    labels = np.asarray(dataset.labels)
    if held_out is not None:
        eval_images, eval_labels = prepare_images(held_out, config.image_size), np.asarray(held_out.labels)
    else:
        chosen = np.isin(labels, np.unique(labels)[: config.eval_people])
        eval_images, eval_labels = images[chosen], labels[chosen]
    histories = []
    for variant in config.variants:
        start = time.perf_counter()
        history = train_variant(variant, images, labels, eval_images, eval_labels, config)
        s = history.summary()
        log(f"{variant.name:<26} loss {s['loss_first']:.3f} -> {s['loss_last']:.3f}   "
            f"spread {s['spread_start']:.3g} -> {s['spread_end']:.3g}   norm {s['norm_start']:.3g} -> "
            f"{s['norm_end']:.3g}   accuracy@tau {s['accuracy_start']:.2f} -> {s['accuracy_end']:.2f}   "
            f"({time.perf_counter() - start:.0f} s)")
        histories.append(history)
    return histories


def plot_collapse(histories: list[CollapseHistory], labels: np.ndarray, path: str) -> None:
    """One figure: loss, spread, norm and accuracy per epoch for every variant, and the 2-D projection of the
    embeddings at the start and the end of each run."""
    from matplotlib.figure import Figure  # not pyplot: no global state, no display needed

    fig = Figure(figsize=(16, 4 + 3 * len(histories)), layout="constrained")
    grid = fig.add_gridspec(1 + len(histories), 4)
    curves = [("loss", "loss", False), ("spread", "spread: mean d(i, j)", True),
              ("norm", "mean ||f(x)|| before normalising", True), ("accuracy", "accuracy at fixed tau", False)]
    for column, (key, title, log_scale) in enumerate(curves):
        ax = fig.add_subplot(grid[0, column])
        for history in histories:
            ax.plot(getattr(history, key), marker="o", label=history.variant.name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if log_scale:
            ax.set_yscale("log")
        if column == 0:
            ax.legend(fontsize=8)
    for row, history in enumerate(histories, start=1):
        # one projection per run (the principal axes of its final embeddings), and the same axis limits at the
        # start and the end, so that a shrinking cloud looks like one
        end = history.end_embeddings
        _, _, vt = np.linalg.svd(end - end.mean(axis=0), full_matrices=False)
        points = [history.start_embeddings @ vt[:2].T, end @ vt[:2].T]
        centre = np.concatenate(points).mean(axis=0)
        radius = 1.05 * max(np.abs(p - centre).max() for p in points)
        for column, (when, xy) in enumerate(zip(("start", "end"), points, strict=True)):
            ax = fig.add_subplot(grid[row, 2 * column : 2 * column + 2])
            ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=14)
            ax.set_xlim(centre[0] - radius, centre[0] + radius)
            ax.set_ylim(centre[1] - radius, centre[1] + radius)
            ax.set_aspect("equal")
            ax.set_title(f"{history.variant.name}: embeddings at the {when} (PCA)")
    fig.savefig(path, dpi=90)


def collapse_summary(config: CollapseConfig, histories: list[CollapseHistory]) -> dict[str, Any]:
    """What collapse.json records: the settings (without the variants) and each run's first and last epoch."""
    return {"config": {k: v for k, v in asdict(config).items() if k != "variants"},
            "variants": [h.summary() for h in histories]}
