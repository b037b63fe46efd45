"""Checkpoints: a run folder holds `run.json` (what the run is) and one `.npz` of arrays (what it learned).

    run.json                  architecture (model.config), preprocessing, the threshold tau, the training
                              configuration, step, epoch, RNG state, history; the name and sha256 of the .npz
    checkpoint-<step>.npz     "model/<name>" (model.state_dict()), "optimizer/<key>", "head/<name>" (a softmax
                              classifier, when training has one; "head/centers": the center loss's class
                              centers), "log/step_loss", "tau/distances",
                              "tau/distances_flip", "tau/same" (the pairs tau was chosen on, for the confidence of
                              a comparison without the training data); read with allow_pickle=False

Saving is atomic: the new .npz is written under a new name (temporary file, then rename), then run.json is
replaced the same way, and only then is the old .npz removed (Ctrl-C waits for these two steps; any other
checkpoint-*.npz, left by a save that was killed, goes too). The rename of run.json is the commit: an interrupted
save leaves the previous checkpoint whole, and a damaged file is caught by its checksum when loading.

A run folder can come from anyone, and its sha256 covers only the .npz: `check_record` bounds every field of
run.json before a model is built, and the arrays are read with tinyface.data.untrusted and checked to be finite.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from tinyface.data.lfw import LFW_FRAME
from tinyface.data.untrusted import UntrustedFileError, read_json_object, read_npz
from tinyface.files import atomic_write
from tinyface.nn.models import FaceCNN, build_model
from tinyface.training.measure import NORMALIZATIONS

RUN_FILE = "run.json"
CENTERS_KEY = "centers"  # head/centers: the center loss's class centers, saved beside the softmax head
FORMAT = "tinyface-run/1"
WEIGHTS_NAME = re.compile(r"checkpoint-[0-9]{7,}\.npz")

# What a run.json may ask for. Anyone can hand over a run folder, and its sha256 covers only the .npz, so every
# number that sizes an allocation is bounded before a model is built or an image decoded: far above any model
# tinyface trains (the bundled one: 5 blocks, 1.0M parameters, 48 px), far below what would exhaust memory.
MAX_BLOCKS = 10
MAX_PARAMETERS = 50_000_000  # conv, BatchNorm and embedding numbers of the architecture
MAX_IMAGE_SIZE = 256  # side of the model's square input, pixels
MAX_FIRST_ACTIVATION = 2**24  # the first block's output per image, width x side^2 floats (64 MB)


class CheckpointError(ValueError):
    """A run folder without a checkpoint, or with a damaged one."""


@dataclass
class Checkpoint:
    """What load_checkpoint finds: the run's JSON record and its arrays, grouped by prefix."""

    folder: Path
    meta: dict[str, Any]
    model_state: dict[str, np.ndarray]
    optimizer_state: dict[str, Any]
    head_state: dict[str, np.ndarray]
    step_losses: np.ndarray
    tau_pairs: dict[str, np.ndarray]

    def build_model(self) -> FaceCNN:
        """The trained model, in eval mode."""
        model = build_model(self.meta["model"])
        model.load_state_dict(self.model_state)
        return model.eval()

    @property
    def tau(self) -> float:
        return float(self.meta["tau"])

    def tau_for(self, flip: bool) -> float:
        """The threshold for embeddings made with (flip=True) or without test-time flipping; runs saved before
        tinyface measured flipped embeddings have only the plain tau."""
        return float(self.meta.get("tau_flip", self.meta["tau"])) if flip else self.tau

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.meta["preprocessing"]


def save_checkpoint(
    folder: str | Path,
    meta: dict[str, Any],
    model_state: dict[str, np.ndarray],
    optimizer_state: dict[str, Any] | None = None,
    head_state: dict[str, np.ndarray] | None = None,
    step_losses: np.ndarray | None = None,
    tau_pairs: dict[str, np.ndarray] | None = None,
    compressed: bool = False,
) -> Path:
    """Write a checkpoint into `folder` atomically; `meta` must be JSON-able and hold "step". Returns run.json.
    compressed: deflate the .npz (smaller, slower to write; for exported models)."""
    folder = Path(folder)
    arrays = {f"model/{k}": np.asarray(v) for k, v in model_state.items()}
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in (optimizer_state or {}).items()})
    arrays.update({f"head/{k}": np.asarray(v) for k, v in (head_state or {}).items()})
    arrays["log/step_loss"] = np.asarray([] if step_losses is None else step_losses, dtype=np.float64)
    arrays.update({f"tau/{k}": np.asarray(v) for k, v in (tau_pairs or {}).items()})
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    data = buffer.getvalue()

    weights = f"checkpoint-{int(meta['step']):07d}.npz"
    record = {"format": FORMAT, **meta, "weights": weights, "sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(record, indent=1, allow_nan=False)  # fail before writing anything if meta is not JSON

    atomic_write(folder / weights, lambda file: file.write(data))
    with _ctrl_c_held():  # the commit and the removal of the weights it replaces happen together
        atomic_write(folder / RUN_FILE, lambda file: file.write(text.encode()))
        for old in folder.glob("checkpoint-*.npz"):  # the previous weights, and any a killed save left behind
            if old.name != weights and WEIGHTS_NAME.fullmatch(old.name):
                old.unlink(missing_ok=True)
    return folder / RUN_FILE


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Ctrl-C (SIGINT) waits until the body is done, then interrupts as it would have (Python runs signal handlers
    in the main thread only, so elsewhere the body runs unguarded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and previous is not signal.SIG_IGN:
            (previous if callable(previous) else signal.default_int_handler)(signal.SIGINT, None)


def has_checkpoint(folder: str | Path) -> bool:
    return (Path(folder) / RUN_FILE).is_file()


def load_checkpoint(folder: str | Path) -> Checkpoint:
    """Read a run folder's checkpoint, checking it is whole: CheckpointError says what is wrong."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; pass a run folder written by `tinyface train --out`")
    if not (folder / RUN_FILE).is_file():
        raise CheckpointError(f"{folder} has no checkpoint ({RUN_FILE} is missing); was training started with "
                              "--out pointing here, and did it finish its first epoch?")
    meta = _read_record(folder / RUN_FILE)
    missing = [k for k in ("weights", "sha256", "model", "preprocessing", "tau", "step") if k not in meta]
    if meta.get("format") != FORMAT or missing:
        raise CheckpointError(f"{folder / RUN_FILE} is not a tinyface checkpoint (format {meta.get('format')!r}, "
                              f"missing {missing})")
    check_record(meta, folder / RUN_FILE)
    weights = folder / meta["weights"]
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing; the checkpoint in {folder} is incomplete")
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise CheckpointError(f"{weights} is corrupt (its checksum does not match {RUN_FILE}); train again, "
                              "or restore the file")
    try:
        arrays = read_npz(data, str(weights))
    except UntrustedFileError as error:
        raise CheckpointError(f"{weights} cannot be read: {error}; train again, or restore the file") from None
    _check_arrays(arrays, weights)

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    checkpoint = Checkpoint(folder, meta, group("model/"), group("optimizer/"), group("head/"),
                            arrays.get("log/step_loss", np.zeros(0)), group("tau/"))
    try:
        build_model(meta["model"]).load_state_dict(checkpoint.model_state)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"the weights in {weights} do not fit the architecture in {RUN_FILE}: {error}") from None
    return checkpoint


def _read_record(path: Path) -> dict[str, Any]:
    try:
        return read_json_object(path.read_bytes(), str(path))
    except (OSError, UntrustedFileError) as error:
        raise CheckpointError(f"{path} is corrupt ({error}); train again, or restore the file") from None


def check_record(meta: dict[str, Any], path: str | Path) -> None:
    """Refuse a run record (the dict in run.json, at `path`) whose fields have the wrong type or are out of range:
    the architecture, the preprocessing, tau, the crop and the split's description, before anything is built
    (see the MAX_ limits above). Raises CheckpointError naming the field."""

    def fail(field: str, value: Any, expected: str) -> NoReturn:
        raise CheckpointError(f"{path}: {field} is {_short(value)}, expected {expected}; this run folder was not "
                              "written by tinyface train (or was edited): train again, or restore the file")

    if not isinstance(meta["weights"], str) or not WEIGHTS_NAME.fullmatch(meta["weights"]):
        fail("weights", meta["weights"], "a file name checkpoint-<step>.npz")
    if not isinstance(meta["sha256"], str) or not re.fullmatch("[0-9a-f]{64}", meta["sha256"]):
        fail("sha256", meta["sha256"], "64 hexadecimal digits")
    if not _integer(meta["step"], 0):
        fail("step", meta["step"], "a whole number >= 0")
    for name in ("tau", "tau_flip"):
        if name in meta and not _number(meta[name], 0):
            fail(name, meta[name], "a finite squared distance >= 0")

    model = meta["model"]
    if not isinstance(model, dict) or model.get("name") != "FaceCNN":
        fail("model", model, "an architecture {'name': 'FaceCNN', ...}")
    if model.get("in_channels") not in (1, 3) or isinstance(model.get("in_channels"), bool):
        fail("model.in_channels", model.get("in_channels"), "1 (grey) or 3 (RGB)")
    widths = model.get("widths")
    if not isinstance(widths, list) or not 1 <= len(widths) <= MAX_BLOCKS or not all(_integer(w, 1) for w in widths):
        fail("model.widths", widths, f"a list of 1 to {MAX_BLOCKS} whole numbers >= 1")
    if not _integer(model.get("embedding_dim"), 1):
        fail("model.embedding_dim", model.get("embedding_dim"), "a whole number >= 1")
    if not isinstance(model.get("normalize", True), bool):
        fail("model.normalize", model.get("normalize"), "true or false")
    inputs = [model["in_channels"], *widths[:-1]]  # 3x3 convolutions, BatchNorm, then the embedding layer
    parameters = sum((9 * c + 4) * w for c, w in zip(inputs, widths, strict=True))
    parameters += (widths[-1] + 1) * model["embedding_dim"]
    if parameters > MAX_PARAMETERS:
        fail("model", model, f"at most {MAX_PARAMETERS:,} parameters (this architecture has about {parameters:,})")

    preprocessing = meta["preprocessing"]
    if not isinstance(preprocessing, dict):
        fail("preprocessing", preprocessing, "an object")
    size = preprocessing.get("image_size")
    if not _integer(size, 2 ** (len(widths) - 1)) or size > MAX_IMAGE_SIZE:
        fail("preprocessing.image_size", size, f"a side in pixels from {2 ** (len(widths) - 1)} (the model halves "
             f"it {len(widths) - 1} times) to {MAX_IMAGE_SIZE}")
    if widths[0] * size**2 > MAX_FIRST_ACTIVATION:
        fail("preprocessing.image_size", size, f"a side whose first activations ({widths[0]} x {size}^2) stay "
             f"under {MAX_FIRST_ACTIVATION:,} numbers per image")
    if preprocessing.get("channels") != model["in_channels"]:
        fail("preprocessing.channels", preprocessing.get("channels"), f"the model's {model['in_channels']}")
    if preprocessing.get("normalization", "prewhiten") not in NORMALIZATIONS:
        fail("preprocessing.normalization", preprocessing.get("normalization"), f"one of {NORMALIZATIONS}")

    task = meta.get("task", {})
    if not isinstance(task, dict):
        fail("task", task, "an object describing the data the run was trained on")
    crop = task.get("face_crop")
    if crop is not None and not (_number(crop, 0) and 0 < crop <= 1):
        fail("task.face_crop", crop, "a fraction of the image's side in (0, 1]")
    legacy = task.get("source_crop")
    if legacy is not None and not (_number(legacy, 0) and 0 < legacy <= LFW_FRAME):
        fail("task.source_crop", legacy, f"pixels of LFW's frame in (0, {LFW_FRAME}]")
    for key, kind in {"dataset": str, "data": str, "fold": int, "image_size": int, "grayscale": bool,
                      "seed": int}.items():
        value = task.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
            fail(f"task.{key}", value, f"a {kind.__name__} or null")
    for key in ("validation_people", "test_people"):
        people = task.get(key)
        if people is not None and not (isinstance(people, list) and all(isinstance(n, str) for n in people)):
            fail(f"task.{key}", people, "a list of names")

    compatible = meta.get("compatible_with")  # a harmonic embedding: the old weights it can be compared with
    if compatible is not None:
        if not isinstance(compatible, dict) or not isinstance(compatible.get("weights_sha256"), str) or not \
                re.fullmatch("[0-9a-f]{64}", compatible["weights_sha256"]):
            fail("compatible_with", compatible, "an object naming the old run's weights_sha256")
        if not _number(compatible.get("tau"), 0):
            fail("compatible_with.tau", compatible.get("tau"), "a finite squared distance >= 0")


def _check_arrays(arrays: dict[str, np.ndarray], weights: Path) -> None:
    """Refuse arrays that are not plain numbers, weights or thresholds' pairs that are not finite, and negative
    BatchNorm running variances (each would make every embedding NaN)."""
    for name, array in arrays.items():
        if array.dtype.kind not in "fiub":
            raise CheckpointError(f"{weights}: {name} holds {array.dtype} values, not numbers; train again")
        if name.startswith(("model/", "head/", "tau/", "optimizer/")) and not np.all(np.isfinite(array)):
            raise CheckpointError(f"{weights}: {name} holds NaN or infinite values, so every embedding would be NaN "
                                  "(did training diverge?); train again, or use an earlier run")
        if name.startswith("model/") and name.endswith("running_var") and np.any(array < 0):
            raise CheckpointError(f"{weights}: {name} holds negative variances; train again")
    pairs = [arrays[f"tau/{key}"] for key in ("distances", "distances_flip", "same") if f"tau/{key}" in arrays]
    if len({len(pair) for pair in pairs}) > 1 or any(pair.ndim != 1 for pair in pairs):
        raise CheckpointError(f"{weights}: the pairs tau was chosen on have arrays of different shapes; train again")


def _integer(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number(value: Any, low: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) and value >= low


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def export_checkpoint(run: str | Path, out: str | Path, float16: bool = False) -> Path:
    """Write the model of a run folder into `out` as a weights-only checkpoint to hand to others: no optimiser
    state, RNG state or loss log (a third of the size; it cannot be resumed), and no path of this machine (the
    data folder is dropped from the record of the split); the run's metrics.json is copied beside it. It loads
    with load_checkpoint like any run. float16: store the weights in half precision (half the size; the model
    computes in float32 as before, with weights rounded to 11 significant bits)."""
    checkpoint = load_checkpoint(run)
    meta = {k: v for k, v in checkpoint.meta.items() if k not in ("format", "weights", "sha256", "rng")}
    if isinstance(meta.get("task"), dict):
        meta["task"] = {**meta["task"], "data": None}
    meta["exported_from"] = {"step": checkpoint.meta["step"], "sha256": checkpoint.meta["sha256"],
                             "float16": float16}
    state = {k: v.astype(np.float16) if float16 and v.dtype == np.float32 else v
             for k, v in checkpoint.model_state.items()}
    head = {k: v for k, v in checkpoint.head_state.items() if k != CENTERS_KEY}  # the classifier, not training state
    record = save_checkpoint(out, meta, state, head_state=head or None,
                             tau_pairs=checkpoint.tau_pairs, compressed=True)
    metrics = Path(run) / "metrics.json"  # what the run measured on its test pairs travels with it
    if metrics.is_file():
        atomic_write(Path(out) / metrics.name, lambda file: file.write(metrics.read_bytes()))
    return record
