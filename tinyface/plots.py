"""Figures of a run, written as PNG with matplotlib's Agg backend (no display needed): the loss curve, the
distance histograms of same and different pairs with the threshold tau, and ROC curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
import numpy as np  # noqa: E402

from tinyface.eval import roc_curve  # noqa: E402


def plot_loss_curve(step_losses: np.ndarray, history: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """The loss at every step (and its running mean over an epoch), with the per-epoch validation accuracy."""
    losses = np.asarray(step_losses, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="0.75", lw=0.8, label="loss per step")
    window = max(1, min(len(losses), int(history[0]["step"]) if history else 1))
    if len(losses) >= window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, color="C0", label=f"mean of {window} steps")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    key = next((k for k in ("validation_accuracy", "train_accuracy") if history and k in history[0]), None)
    if key is not None:
        twin = ax.twinx()
        twin.plot([h["step"] for h in history], [h[key] for h in history], "o-", color="C1",
                  label=key.replace("_", " "))
        twin.set_ylabel("verification accuracy")
        twin.set_ylim(0.4, 1.0)
        twin.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title("training loss")
    return _save(fig, path)


def plot_distance_histograms(distances: np.ndarray, same: np.ndarray, tau: float, path: str | Path,
                             title: str = "test pairs") -> Path:
    """Histograms of d = ||f(x1) - f(x2)||^2 for same-person and different-person pairs, and the threshold."""
    d, s = np.asarray(distances), np.asarray(same, dtype=bool)
    fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
    bins = np.linspace(0, max(4.0, float(d.max())), 61)
    ax.hist(d[s], bins=bins, alpha=0.6, color="C2", label=f"same person ({s.sum()})")
    ax.hist(d[~s], bins=bins, alpha=0.6, color="C3", label=f"different people ({(~s).sum()})")
    ax.axvline(tau, color="k", ls="--", label=f"tau = {tau:.3f}")
    ax.set_xlabel("squared L2 distance d")
    ax.set_ylabel("pairs")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """ROC curves (TAR against FAR, FAR on a log axis), one per name: {name: (distances, same)}."""
    fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
    for name, (distances, same) in curves.items():
        far, tar, _ = roc_curve(distances, same)
        ax.plot(np.maximum(far, 1e-4), tar, label=name)
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (VAL)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    ax.set_title("ROC on the test pairs")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
