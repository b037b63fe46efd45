"""Checkpoints: a run folder holds `run.json` (what the run is) and one `.npz` of arrays (what it learned).

    run.json                  architecture (model.config), preprocessing, the threshold tau, the training
                              configuration, step, epoch, RNG state, history; the name and sha256 of the .npz
    checkpoint-<step>.npz     "model/<name>" (model.state_dict()), "optimizer/<key>", "head/<name>" (a softmax
                              classifier, when training has one), "log/step_loss", "tau/distances",
                              "tau/distances_flip", "tau/same" (the pairs tau was chosen on, for the confidence of
                              a comparison without the training data); read with allow_pickle=False

Saving is atomic: the new .npz is written under a new name (temporary file, then rename), then run.json is
replaced the same way, and only then is the old .npz removed. The rename of run.json is the commit: an interrupted
save leaves the previous checkpoint whole, and a damaged file is caught by its checksum when loading.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyface.files import atomic_write
from tinyface.nn.models import FaceCNN, build_model

RUN_FILE = "run.json"
FORMAT = "tinyface-run/1"


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

    try:
        previous = _read_record(folder / RUN_FILE) if (folder / RUN_FILE).is_file() else None
    except CheckpointError:
        previous = None  # a damaged record is replaced
    atomic_write(folder / weights, lambda file: file.write(data))
    atomic_write(folder / RUN_FILE, lambda file: file.write(text.encode()))
    if previous and previous.get("weights") not in (None, weights):
        (folder / Path(previous["weights"]).name).unlink(missing_ok=True)
    return folder / RUN_FILE


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
    weights = folder / Path(meta["weights"]).name
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing; the checkpoint in {folder} is incomplete")
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise CheckpointError(f"{weights} is corrupt (its checksum does not match {RUN_FILE}); train again, "
                              "or restore the file")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{weights} cannot be read: {error}") from None

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
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is corrupt ({error}); train again, or restore the file") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"{path} is corrupt: expected a JSON object")
    return record


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
    record = save_checkpoint(out, meta, state, head_state=checkpoint.head_state or None,
                             tau_pairs=checkpoint.tau_pairs, compressed=True)
    metrics = Path(run) / "metrics.json"  # what the run measured on its test pairs travels with it
    if metrics.is_file():
        atomic_write(Path(out) / metrics.name, lambda file: file.write(metrics.read_bytes()))
    return record
