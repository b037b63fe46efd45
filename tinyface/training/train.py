"""The training loop: P x K batches -> augmented images -> embeddings -> a loss -> Adam, with a progress bar,
a log line per epoch, a validation metric, and a checkpoint written atomically at the end of every epoch.

Per epoch we log the mean loss; the fraction of active triplets (hinge (d_ap + alpha) - d_an > 0 among the
triplets the loss uses; for contrastive the fraction of pairs with a non-zero loss, for softmax the fraction of the
batch misclassified); the mean d(a, p) over same-person pairs and d(a, n) over different-person pairs of the batch;
the spread mean ||f(x) - mean f||^2 of the batch's embeddings (0 when the embedding has collapsed); and on the
validation people (or, without them, on some training people) k-fold verification accuracy, AUC and the
threshold tau that maximises accuracy on their pairs, which the checkpoint keeps.

`compatible_with=OLD_RUN` trains a harmonic embedding, comparable with the old run's (training/compatibility.py):
each loss but softmax runs on the pool of both versions' embeddings of the batch, softmax adds BCT's influence
loss, and a run started from `init` first trains its re-initialised embedding layer alone (`embedding_steps`).

Softmax may add Wen et al.'s center loss (`center_loss`: its weight lambda), which pulls each training person's
embeddings to a center that follows them; the centers are saved with the classifier.

`resume=True` continues from the last checkpoint exactly: weights, BatchNorm statistics, the optimiser's moments,
the center loss's centers, the data generator's state (batches, augmentation, mining) and the step are all
restored, so N steps in one go and N/2 + resume + N/2 give the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import tinyface
from tinyface import kernels, losses, mining, nn, optim
from tinyface.data import FaceDataset, PKSampler
from tinyface.data.transforms import random_crop, random_flip, random_rotate_zoom, resize
from tinyface.eval import auc as area_under
from tinyface.eval import best_threshold, kfold_accuracy, pair_distances, pairs_from_labels, roc_curve
from tinyface.nn.models import FaceCNN
from tinyface.pretrained import pretrained_run
from tinyface.runtime import keep_freed_memory
from tinyface.tensor import Tensor, no_grad
from tinyface.training.checkpoint import CENTERS_KEY, has_checkpoint, load_checkpoint, save_checkpoint
from tinyface.training.compatibility import OldBatch, OldVersion, mixed_threshold
from tinyface.training.measure import NORMALIZATIONS, embed, preprocess

LOSSES = ("semihard", "batch-hard", "batch-all", "facenet", "contrastive", "softmax")
OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad")
SCHEDULES = ("constant", "cosine")
ARCHITECTURES = {"reference": (32, 64, 128, 128), "lfw": (32, 64, 128, 256, 256)}
MAX_TAU_IMAGES = 500  # without validation people, tau is chosen on the pairs of at most this many training images


@dataclass
class TrainConfig:
    """Everything that decides a training run. The defaults are the Olivetti benchmark's: the reference CNN,
    semi-hard triplet loss with margin 0.2, batches of 10 people x 10 images, Adam 1e-3, prewhitened 64x64
    images with random flips and shifts (a crop of the image padded by `crop_padding`), 300 steps."""

    loss: str = "semihard"
    margin: float | str | None = None  # None: 0.2 for triplets, 1.0 (plain L2) for contrastive; "soft": batch-hard
    people_per_batch: int = 10
    images_per_person: int = 10
    extra_people: int = 0  # one image each of this many more people per batch (PKSampler): negatives
    steps: int = 300
    steps_per_epoch: int = 30
    minutes: float | None = None  # a wall-clock budget: train until it is spent (then `steps` is only a ceiling)
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    model: str = "reference"
    widths: tuple[int, ...] | None = None  # overrides the architecture's widths (tiny models for tests)
    embedding_dim: int = 128
    image_size: int = 64
    normalization: str = "prewhiten"
    augment: bool = True
    crop_padding: int = 4
    rotation: float = 0.0  # augment: turn each image by up to this many degrees either way
    zoom: float = 0.0  # augment: enlarge each image about its centre by up to 1 + zoom
    seed: int = 0
    init: str | None = None  # start from the weights of this run folder ("pretrained": the bundled model)
    compatible_with: str | None = None  # train a harmonic embedding, comparable with this old run's
    embedding_steps: int | None = None  # FaceNet's first stage (see embedding_only_steps); None: the default
    center_loss: float = 0.0  # softmax only: lambda of Wen et al.'s center loss, added to the cross-entropy
    center_rate: float = 0.5  # how far the class centers move towards their batch's embeddings each step

    def __post_init__(self) -> None:
        if self.widths is not None:
            self.widths = tuple(int(w) for w in self.widths)
        for name, value, choices in (("loss", self.loss, LOSSES), ("optimizer", self.optimizer, OPTIMIZERS),
                                     ("lr_schedule", self.lr_schedule, SCHEDULES),
                                     ("model", self.model, tuple(ARCHITECTURES)),
                                     ("normalization", self.normalization, NORMALIZATIONS)):
            if value not in choices:
                raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
        for name in ("people_per_batch", "steps", "steps_per_epoch", "embedding_dim", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.people_per_batch < 2 or self.images_per_person < 2:
            raise ValueError("batches need at least 2 people x 2 images (anchor-positive pairs and negatives), got "
                             f"{self.people_per_batch} x {self.images_per_person}")
        if not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay}")
        for name in ("extra_people", "crop_padding", "seed"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if not (0 <= self.rotation <= 180 and 0 <= self.zoom <= 1):
            raise ValueError(f"rotation must be in [0, 180] degrees and zoom in [0, 1], got {self.rotation}, "
                             f"{self.zoom}")
        if self.margin == "soft":
            if self.loss != "batch-hard":
                raise ValueError(f"the soft margin is batch-hard's (log(1 + exp(d_ap - d_an))), not {self.loss}'s")
        elif self.margin is not None and not (isinstance(self.margin, (int, float)) and 0 <= self.margin < math.inf):
            raise ValueError(f"margin must be a number >= 0 (or 'soft' for batch-hard), got {self.margin!r}")
        smallest = 2 ** (len(self.widths or ARCHITECTURES[self.model]) - 1)  # one max-pool per block but the last
        if self.image_size < smallest:
            raise ValueError(f"image_size {self.image_size} is too small for the {self.model} model's pooling: "
                             f"use {smallest} or more")
        if self.minutes is not None and not (0 < self.minutes < math.inf):
            raise ValueError(f"minutes must be a positive number, got {self.minutes}")
        if not 0 <= self.center_loss < math.inf or (self.center_loss > 0 and self.loss != "softmax"):
            raise ValueError(f"center_loss must be a number >= 0, and > 0 only with loss='softmax' (it pulls each "
                             f"person's embeddings to the center the classifier's class keeps), got "
                             f"{self.center_loss} with loss={self.loss!r}")
        if not 0 < self.center_rate <= 1:
            raise ValueError(f"center_rate must be in (0, 1], got {self.center_rate}")
        if self.embedding_steps is not None:
            if self.compatible_with is None:
                raise ValueError("embedding_steps is the first stage of a compatible run (FaceNet's schedule): it "
                                 "needs compatible_with (--compatible-with OLD_RUN)")
            if self.embedding_steps < 0 or (self.embedding_steps > 0 and self.init is None):
                raise ValueError(f"embedding_steps must be >= 0, and > 0 only when starting from init (the "
                                 f"independently trained network whose embedding layer is re-initialised), got "
                                 f"{self.embedding_steps} with init={self.init}")

    @property
    def alpha(self) -> float | str:
        """The margin in use ("soft" for batch-hard's soft margin)."""
        if self.margin == "soft":
            return "soft"
        if self.margin is not None:
            return float(self.margin)
        return 1.0 if self.loss == "contrastive" else 0.2

    @property
    def embedding_only_steps(self) -> int:
        """Steps at the start of a compatible run that train only the embedding layer, re-initialised (FaceNet's
        schedule): embedding_steps if given, else one epoch when the run starts from init, else 0."""
        if self.embedding_steps is not None:
            return self.embedding_steps
        return self.steps_per_epoch if self.compatible_with is not None and self.init is not None else 0

    @property
    def epochs(self) -> int:
        """Epochs of the run (with a wall-clock budget, the most it may take)."""
        return math.ceil(self.steps / self.steps_per_epoch)

    @property
    def budget_seconds(self) -> float:
        return math.inf if self.minutes is None else 60.0 * self.minutes

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainResult:
    """A trained model (eval mode), the threshold chosen for it, and the record of the run."""

    model: FaceCNN
    tau: float
    config: TrainConfig
    preprocessing: dict[str, Any]
    history: list[dict[str, Any]]
    step_losses: np.ndarray
    wall_time: float
    folder: Path | None = None
    head: nn.Linear | None = field(default=None, repr=False)


def build_face_model(config: TrainConfig, channels: int, rng: np.random.Generator) -> FaceCNN:
    return FaceCNN(channels, config.widths or ARCHITECTURES[config.model], config.embedding_dim, rng=rng)


def start_from(model: FaceCNN, run: str | Path, preprocessing: dict[str, Any]) -> None:
    """Load the weights of a trained run into `model` (fine-tuning): the architecture and the preprocessing must
    be the same. run: a run folder, or "pretrained" for the model that comes with tinyface."""
    folder = pretrained_run() if str(run) == "pretrained" else Path(run)
    checkpoint = load_checkpoint(folder)
    if checkpoint.meta["model"] != model.config:
        raise ValueError(f"cannot start from {run}: its model {checkpoint.meta['model']} is not this run's "
                         f"{model.config}; choose the same --model, --embedding-dim and grey/RGB")
    theirs = {k: checkpoint.preprocessing.get(k) for k in preprocessing}
    if theirs != preprocessing:
        raise ValueError(f"cannot start from {run}: it was trained on {theirs}, this run feeds {preprocessing}; "
                         "choose the same --image-size and grey/RGB")
    model.load_state_dict(checkpoint.model_state)


def build_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> optim.Optimizer:
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    return optim.Adagrad(params, lr=config.lr, weight_decay=config.weight_decay)


def learning_rate(config: TrainConfig, progress: float) -> float:
    """lr at a point of the run, progress in [0, 1): constant, or cosine from lr down to 0,
    lr (1 + cos(pi progress)) / 2."""
    if config.lr_schedule == "cosine":
        return config.lr * (1 + math.cos(math.pi * min(progress, 1.0))) / 2
    return config.lr


def run_progress(config: TrainConfig, step: int, seconds: float) -> float:
    """How far the run has gone, in [0, 1]: by steps, or by the wall-clock budget when one is set (whichever
    ends it first), so that a schedule follows the budget."""
    return max(step / config.steps, seconds / config.budget_seconds)


def train(
    config: TrainConfig,
    train_data: FaceDataset,
    validation: FaceDataset | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    metadata: dict[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], Any] = print,
    callbacks: Sequence[Callable[[dict[str, Any]], Any]] = (),
    old_view: tuple[FaceDataset, FaceDataset | None] | None = None,
) -> TrainResult:
    """Train a face model on `train_data` and return it with its threshold tau.

    validation: people never trained on, measured every epoch (tau is chosen on their pairs); without them, tau is
    chosen on pairs of training images. out: a run folder, where a checkpoint is written after every epoch;
    resume=True continues the checkpoint there (its configuration must match, except a larger `steps`).
    metadata: JSON-able facts saved in run.json beside the run's own (e.g. how the data was split).
    callbacks: called with each epoch's record (a dict of the logged numbers) after it is logged.
    old_view: with config.compatible_with, (train_data, validation) as the old model's training read images (its
    size, grey or RGB, face crop), image by image the same (OldVersion.view_for gives it; train_run passes it);
    default: train_data and validation as they are, resized to the old model's input.
    """
    if out is None and resume:
        raise ValueError("resume=True needs the run folder `out` holding the checkpoint")
    keep_freed_memory()  # the same large temporaries every step: keep their memory instead of page-faulting it back
    images = _training_images(train_data, config)
    channels = images.shape[1]
    preprocessing = {"image_size": config.image_size, "channels": channels, "normalization": config.normalization}
    seeds = np.random.SeedSequence(config.seed).spawn(2)
    init_rng, data_rng = np.random.default_rng(seeds[0]), np.random.default_rng(seeds[1])
    model = build_face_model(config, channels, init_rng)
    resuming = resume and has_checkpoint(out)
    if config.init is not None and not resuming:  # a resumed run's own checkpoint replaces the weights anyway
        start_from(model, config.init, preprocessing)
    if config.embedding_only_steps > 0:  # FaceNet's schedule: a new embedding layer on the independent network
        model.embedding = nn.Linear(model.embedding.in_features, config.embedding_dim, rng=init_rng)
    old, old_monitored = None, None
    if config.compatible_with is not None:
        old = OldVersion(config.compatible_with)
        old.check_new(model.config, config.loss)
        old_train, old_validation = old_view or (train_data, validation)
        if not np.array_equal(old_train.labels, train_data.labels):
            raise ValueError("old_view must hold the training images in the order of train_data")
        old.prepare(old_train.images, train_data.names, config.loss)
        old_monitored = old.embed((old_validation if validation is not None else tau_people(old_train)).images)
    head = nn.Linear(config.embedding_dim, train_data.num_people, rng=init_rng) if config.loss == "softmax" else None
    # center loss: one center per training person in the space of the (unnormalised) embedding, moved each step
    centers = np.zeros((train_data.num_people, config.embedding_dim), np.float32) if config.center_loss else None
    optimizer = build_optimizer(config, model.parameters() + (head.parameters() if head else []))
    sampler = PKSampler(train_data.labels, config.people_per_batch, config.images_per_person, data_rng,
                        extra_people=config.extra_people)
    monitor = _Monitor(validation if validation is not None else tau_people(train_data), preprocessing,
                       "validation" if validation is not None else "train", old_monitored)

    step, history, step_losses, wall_time = 0, [], [], 0.0
    if resuming:
        checkpoint = load_checkpoint(out)
        _check_resumable(TrainConfig.from_dict(checkpoint.meta.get("config", {})), config, out)
        if old is not None and checkpoint.meta["compatible_with"]["weights_sha256"] != old.weights_sha256:
            raise ValueError(f"cannot resume {out}: the weights of {config.compatible_with} have changed since it "
                             "started training compatible with them")
        model.load_state_dict(checkpoint.model_state)
        if head is not None:
            head_state = dict(checkpoint.head_state)
            if centers is not None:
                centers[...] = head_state.pop(CENTERS_KEY)
            head.load_state_dict(head_state)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        data_rng.bit_generator.state = checkpoint.meta["rng"]  # the sampler shares this generator
        step, history = int(checkpoint.meta["step"]), list(checkpoint.meta["history"])
        step_losses, wall_time = list(checkpoint.step_losses), float(checkpoint.meta.get("wall_time", 0.0))
        log(f"resuming {out} at step {step} of {config.steps}")

    batch_images = config.people_per_batch * config.images_per_person + config.extra_people
    epoch = step // config.steps_per_epoch
    while not _finished(config, step, wall_time, history):
        start = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        count, last = 0, min(config.steps_per_epoch, config.steps - step)
        total = f"{config.epochs}" if config.minutes is None else f"{config.minutes:g} min"
        bar = tqdm(total=last, desc=f"epoch {epoch + 1}/{total}", disable=not progress, leave=False,
                   dynamic_ncols=True)
        while count < last and (count == 0 or wall_time + time.perf_counter() - start < config.budget_seconds):
            batch = sampler.sample()
            x = training_batch(images[batch], config, data_rng)
            optimizer.lr = learning_rate(config, run_progress(config, step, wall_time + time.perf_counter() - start))
            numbers = _train_step(model, head, optimizer, x, train_data.labels[batch], config, data_rng,
                                  None if old is None else old.batch(batch, train_data.labels[batch]),
                                  embedding_only=step < config.embedding_only_steps, centers=centers)
            step, count = step + 1, count + 1
            step_losses.append(numbers["loss"])
            for key, value in numbers.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.update()
            bar.set_postfix(loss=f"{numbers['loss']:.4f}", active=f"{numbers['active']:.2f}",
                            img_s=f"{count * batch_images / (time.perf_counter() - start):.0f}")
        bar.close()
        train_seconds = time.perf_counter() - start
        measured = monitor.measure(model)
        tau, tau_flip = measured.pop("tau"), measured.pop("tau_flip")  # maximise accuracy on the monitored pairs
        tau_mixed = measured.pop("tau_mixed", None)  # for a new model's query against the old model's embeddings
        wall_time += time.perf_counter() - start
        epoch += 1
        record = {"epoch": epoch, "step": step, **{k: v / count for k, v in sums.items()}, **measured,
                  "tau": tau, "lr": optimizer.lr, "images_per_second": count * batch_images / train_seconds,
                  "seconds": time.perf_counter() - start}
        history.append(record)
        log(_format(record, config, monitor.source))
        if out is not None:
            meta = {"tinyface_version": tinyface.__version__, "model": model.config, "preprocessing": preprocessing,
                    "tau": tau, "tau_flip": tau_flip, "tau_source": monitor.source, "config": asdict(config),
                    "step": step, "epoch": epoch, "finished": _finished(config, step, wall_time, history),
                    "rng": data_rng.bit_generator.state, "history": history, "wall_time": wall_time, **(metadata or {})}
            if old is not None:  # which run, and which weights, this run's embeddings can be compared with
                meta["compatible_with"] = {**old.record(), "tau": tau_mixed}
            if head is not None:  # the classifier's classes, by name (an influence loss maps people to them)
                meta["head_classes"] = train_data.names
            head_state = None if head is None else {**head.state_dict(),
                                                    **({} if centers is None else {CENTERS_KEY: centers})}
            save_checkpoint(out, meta, model.state_dict(), optimizer.state_dict(), head_state,
                            np.asarray(step_losses), monitor.pairs)
        for callback in callbacks:
            callback(record)
    tau = history[-1]["tau"]  # of the last epoch (also when a finished run was "resumed")
    model.eval()
    return TrainResult(model, float(tau), config, preprocessing, history, np.asarray(step_losses), wall_time,
                       None if out is None else Path(out), head)


# -- one step ------------------------------------------------------------------------------------------------
def _train_step(model: FaceCNN, head: nn.Linear | None, optimizer: optim.Optimizer, x: np.ndarray,
                labels: np.ndarray, config: TrainConfig, rng: np.random.Generator, old: OldBatch | None = None,
                embedding_only: bool = False, centers: np.ndarray | None = None) -> dict[str, float]:
    """Forward, loss, backward, update; returns the batch's loss, active fraction and distance statistics (and
    for a compatible run d_old_new, the mean d(v1(x), v2(x)) of an image's two embeddings).
    embedding_only: only the embedding layer learns; the features are fixed (no gradient, BatchNorm in eval).
    centers: the center loss's class centers (softmax with config.center_loss), moved here after the step."""
    if embedding_only:
        model.features.eval()
        with no_grad():
            features = model.features(Tensor(x))
        model.features.train()
        raw = model.embedding(features)
    else:
        raw = model.embed_unnormalized(Tensor(x))
    embeddings = model.normalize(raw) if model.normalize is not None else raw
    e = embeddings.numpy()
    d = np.asarray(kernels.pairwise_sqdist(e))
    loss, active = _objective(embeddings, raw, labels, d, head, config, rng, old, centers)
    optimizer.zero_grad()
    if loss is not None:
        loss.backward()
        optimizer.step()
    if centers is not None:  # Wen et al.: the centers follow the embeddings the step was computed on
        centers[...] = losses.update_centers(centers, raw.numpy(), labels, config.center_rate)
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    numbers = {"loss": 0.0 if loss is None else float(loss.item()), "active": float(active),
               "d_ap": float(d[same & off_diagonal].mean()), "d_an": float(d[~same].mean()),
               "spread": float(np.mean(np.sum((e - e.mean(axis=0)) ** 2, axis=1)))}
    if old is not None:
        numbers["d_old_new"] = float(np.mean(np.sum((e - old.embeddings) ** 2, axis=1)))
    return numbers


def _objective(embeddings: Tensor, raw: Tensor, labels: np.ndarray, d: np.ndarray, head: nn.Linear | None,
               config: TrainConfig, rng: np.random.Generator, old: OldBatch | None = None,
               centers: np.ndarray | None = None) -> tuple[Tensor | None, float]:
    """(loss, fraction active) of the configured loss; loss None when the "facenet" rule selects no triplet.
    old: a compatible run's old embeddings of the batch: every loss but softmax runs on the pool of both versions
    (losses.version_union: the harmonic loss); softmax adds the influence loss of the old classifier.
    centers: softmax with center loss, L = cross-entropy + lambda mean_i 1/2 ||x_i - c_(y_i)||^2 (Wen et al.)."""
    alpha = config.alpha
    if old is not None and config.loss != "softmax":
        embeddings, labels = losses.version_union(embeddings, old.embeddings, labels)
        d = np.asarray(kernels.pairwise_sqdist(embeddings.numpy()))
    if config.loss == "semihard":
        return losses.semihard_triplet_loss(embeddings, labels, alpha), _active(d, mining.semihard_negative_triplets(
            d, labels), alpha)
    if config.loss == "batch-hard":
        return losses.batch_hard_triplet_loss(embeddings, labels, alpha), _active(d, mining.batch_hard_triplets(
            d, labels), alpha)
    if config.loss == "batch-all":
        return losses.batch_all_triplet_loss(embeddings, labels, alpha)
    if config.loss == "facenet":
        # per anchor-positive pair a random negative with d_an - d_ap < alpha (VGG Face's rule, which davidsandberg/
        # facenet uses); the fraction logged is that of the pairs which found one (each triplet is active)
        t = mining.random_violating_triplets(d, labels, rng, alpha)
        pairs = int(np.sum(np.triu(labels[:, None] == labels[None, :], k=1)))
        if len(t) == 0:
            return None, 0.0
        loss = losses.triplet_loss(embeddings[t[:, 0]], embeddings[t[:, 1]], embeddings[t[:, 2]], alpha, "mean")
        return loss, len(t) / pairs
    if config.loss == "contrastive":
        # every same-person pair of the batch, and as many different-person pairs drawn at random
        i, j = np.triu_indices(len(labels), k=1)
        same = labels[i] == labels[j]
        different = rng.choice(np.flatnonzero(~same), size=min(same.sum(), (~same).sum()), replace=False)
        keep = np.concatenate([np.flatnonzero(same), np.sort(different)])
        per_pair = losses.contrastive_loss(embeddings[i[keep]], embeddings[j[keep]], same[keep], alpha, "none")
        return per_pair.mean(), float(np.mean(per_pair.numpy() > 0))
    logits = head(raw)  # softmax: a classifier over the training people on the embedding layer
    wrong = np.mean(logits.numpy().argmax(axis=1) != labels)
    loss = losses.cross_entropy(logits, labels)
    if centers is not None:
        loss = loss + config.center_loss * losses.center_loss(raw, labels, centers)
    known = np.flatnonzero(old.classes >= 0) if old is not None else []
    if len(known):  # BCT: the old classifier, frozen, also classifies the new embeddings of the people it knows
        loss = loss + losses.influence_loss(raw[known], *old.classifier, old.classes[known])
    return loss, float(wrong)


def _active(d: np.ndarray, triplets: np.ndarray, alpha: float) -> float:
    if len(triplets) == 0:
        return 0.0
    a, p, n = triplets.T
    return float(np.mean(d[a, p] + (0.0 if alpha == "soft" else alpha) > d[a, n]))  # soft: d_ap > d_an


# -- data ----------------------------------------------------------------------------------------------------
def _training_images(data: FaceDataset, config: TrainConfig) -> np.ndarray:
    """The training images as uint8 at the configured size (resized once, not every batch)."""
    images = data.images
    if images.shape[2:] != (config.image_size, config.image_size):
        images = resize(images, config.image_size)
    return images


def training_batch(images: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Normalised float32 images, then (augment) a random mirror, a random turn of up to `rotation` degrees and
    zoom of up to 1 + `zoom`, and a random shift of up to crop_padding pixels (crop of the zero-padded image: zero
    is the mean of a prewhitened image)."""
    x = preprocess(images, {"image_size": config.image_size, "channels": images.shape[1],
                            "normalization": config.normalization})
    if config.augment:
        x = random_flip(x, rng)
        if config.rotation or config.zoom:
            x = random_rotate_zoom(x, rng, degrees=config.rotation, zoom=config.zoom)
        if config.crop_padding:
            x = random_crop(x, rng, padding=config.crop_padding)
    return np.ascontiguousarray(x, dtype=np.float32)


def tau_people(data: FaceDataset) -> FaceDataset:
    """Training people with 2+ images, in label order, up to MAX_TAU_IMAGES images: their pairs choose tau."""
    counts = data.image_counts()
    people = np.flatnonzero(counts >= 2)
    keep = people[np.cumsum(counts[people]) <= MAX_TAU_IMAGES]
    return data.people(keep if len(keep) >= 2 else people[:2])


class _Monitor:
    """Verification on fixed pairs of held-out people after each epoch: k-fold accuracy, AUC and tau; for a
    compatible run (old: the old model's embeddings of these people) also on mixed pairs, one image by each
    version: their accuracy and tau_mixed."""

    def __init__(self, people: FaceDataset, preprocessing: dict[str, Any], source: str,
                 old: np.ndarray | None = None) -> None:
        self.people, self.preprocessing, self.source, self.old = people, preprocessing, source, old
        self.i, self.j, self.same = pairs_from_labels(people.labels, rng=0)
        self.pairs: dict[str, np.ndarray] = {}  # the distances last measured, kept in the checkpoint

    def measure(self, model: FaceCNN) -> dict[str, float]:
        """Accuracy and AUC of plain embeddings, and tau for plain and for flipped (test-time) embeddings."""
        e = embed(model, self.people.images, self.preprocessing)
        d = pair_distances(e, self.i, self.j)
        d_flip = pair_distances(embed(model, self.people.images, self.preprocessing, flip=True), self.i, self.j)
        far, tar, _ = roc_curve(d, self.same)
        self.pairs = {"distances": d.astype(np.float32), "distances_flip": d_flip.astype(np.float32), "same": self.same}
        measured = {f"{self.source}_accuracy": kfold_accuracy(d, self.same).mean,
                    f"{self.source}_auc": area_under(far, tar), "tau": best_threshold(d, self.same),
                    "tau_flip": best_threshold(d_flip, self.same)}
        if self.old is not None:
            measured[f"{self.source}_mixed_accuracy"], measured["tau_mixed"] = mixed_threshold(
                self.old, e, self.i, self.j, self.same)
        return measured


def _finished(config: TrainConfig, step: int, wall_time: float, history: list[dict[str, Any]]) -> bool:
    """The run is over when its steps are done or its wall-clock budget is spent (after at least one epoch)."""
    return step >= config.steps or (bool(history) and wall_time >= config.budget_seconds)


def _check_resumable(saved: TrainConfig, config: TrainConfig, out: Any) -> None:
    theirs, ours = asdict(saved), asdict(config)
    theirs.pop("steps"), ours.pop("steps")
    different = {k: (theirs[k], ours[k]) for k in ours if theirs.get(k) != ours[k]}
    if different:
        raise ValueError(f"cannot resume {out}: its configuration differs in {different} (saved, given)")
    if config.steps < saved.steps:
        raise ValueError(f"cannot resume {out} with fewer steps ({config.steps}) than it was set up for "
                         f"({saved.steps})")


def _format(record: dict[str, Any], config: TrainConfig, source: str) -> str:
    epochs = config.epochs if config.minutes is None else f"{config.minutes:g}min"
    mixed = (f"mixed acc {record[f'{source}_mixed_accuracy']:.3f} d(v1,v2) {record['d_old_new']:.3f}  "
             if f"{source}_mixed_accuracy" in record else "")
    return (f"epoch {record['epoch']:>3}/{epochs}  step {record['step']:>6}  loss {record['loss']:.4f}  "
            f"active {record['active']:.3f}  d(a,p) {record['d_ap']:.3f}  d(a,n) {record['d_an']:.3f}  "
            f"spread {record['spread']:.3f}  {source} acc {record[f'{source}_accuracy']:.3f} "
            f"auc {record[f'{source}_auc']:.3f}  tau {record['tau']:.3f}  {mixed}"
            f"{record['images_per_second']:.0f} img/s  ({record['seconds']:.1f} s)")
