"""Figures of a run, written as PNG with matplotlib's Agg backend (no display needed): the loss curve, the
distance histograms of same and different pairs with the threshold tau, and ROC curves.

Names of people, files and folders are text, not markup: matplotlib would read `$...$` as mathematics (and fail on
one `$`) and drop legend labels that start with `_`, so every such text goes through `_literal` and `_legend`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
import numpy as np  # noqa: E402

from tinyface.eval import roc_curve  # noqa: E402
from tinyface.files import atomic_write  # noqa: E402


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
    _literal(ax.set_title(title))
    ax.legend()
    return _save(fig, path)


def plot_roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> Path:
    """ROC curves (TAR against FAR, FAR on a log axis), one per name: {name: (distances, same)}."""
    fig, ax = plt.subplots(figsize=(6, 5), constrained_layout=True)
    handles = []
    for distances, same in curves.values():
        far, tar, _ = roc_curve(distances, same)
        handles += ax.plot(np.maximum(far, 1e-4), tar)
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylabel("true accept rate (VAL)")
    ax.grid(alpha=0.3, which="both")
    _legend(ax, handles, list(curves), loc="lower right")
    ax.set_title("ROC on the test pairs")
    return _save(fig, path)


def _literal(text: Any) -> Any:
    """A matplotlib Text shown as written: no mathtext, so a `$` in a name is a dollar sign."""
    text.set_parse_math(False)
    return text


def _legend(ax: Any, handles: Sequence[Any], labels: Sequence[str], **options: Any) -> Any:
    """A legend of these labels, as written: given explicitly (matplotlib drops collected labels that start
    with `_`), and literal (see _literal)."""
    legend = ax.legend(handles, [str(label) for label in labels], **options)
    for text in legend.get_texts():
        _literal(text)
    return legend


def _save(fig: Any, path: str | Path) -> Path:
    """Save as PNG through a temporary file renamed into place: an interrupted save leaves no broken figure."""
    try:
        return atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=100))
    finally:
        plt.close(fig)


# -- figures of embeddings and of faces (tinyface validate --figures, embed --figure, cluster --figure) ---------
def plot_projection(embeddings: np.ndarray, labels: np.ndarray, names: Sequence[str] | None, path: str | Path,
                    title: str = "embeddings") -> Path:
    """The embeddings (N, D) projected on their first two principal axes, one colour per person (labels (N,);
    -1 for unlabelled faces, drawn grey). A person's faces bunched together, apart from the others, is what
    training aims at."""
    e = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    _, _, vt = np.linalg.svd(e - e.mean(axis=0), full_matrices=False)
    xy = (e - e.mean(axis=0)) @ vt[:2].T if len(vt) >= 2 else np.column_stack([e[:, 0], np.zeros(len(e))])
    fig, ax = plt.subplots(figsize=(7, 6), constrained_layout=True)
    people = [p for p in np.unique(labels) if p >= 0]
    cmap = plt.get_cmap("tab20")
    handles, legend = [], []
    if np.any(labels < 0):
        handles.append(ax.scatter(*xy[labels < 0].T, s=14, color="0.6"))
        legend.append("unlabelled")
    for k, person in enumerate(people):
        handles.append(ax.scatter(*xy[labels == person].T, s=18, color=cmap(k % 20)))
        legend.append(names[person] if names is not None and person < len(names) else str(person))
    if 0 < len(people) <= 20:
        _legend(ax, handles, legend, fontsize=7, loc="best", markerscale=0.8)
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    _literal(ax.set_title(f"{title} (PCA, {len(e)} faces of {len(people)} people)"))
    return _save(fig, path)


def plot_hardest_pairs(images: np.ndarray, distances: np.ndarray, same: np.ndarray, i: np.ndarray, j: np.ndarray,
                       tau: float, path: str | Path, count: int = 6) -> Path:
    """The worst mistakes at tau as image pairs with their distances: the closest different-person pairs (false
    accepts when d <= tau) and the farthest same-person pairs (false rejects when d > tau). images: uint8
    (N, C, H, W); pairs (i, j) index them, with their distances and same flags."""
    d, same = np.asarray(distances), np.asarray(same, dtype=bool)
    different, matched = np.flatnonzero(~same), np.flatnonzero(same)
    rows = [("different people, closest first", different[np.argsort(d[different], kind="stable")][:count],
             "false accept"),
            ("same person, farthest first", matched[np.argsort(-d[matched], kind="stable")][:count], "false reject")]
    columns = max(1, max(len(r[1]) for r in rows))
    fig, axes = plt.subplots(2, columns, figsize=(2.2 * columns, 5.2), squeeze=False, constrained_layout=True)
    for row, (title, chosen, error) in enumerate(rows):
        for column in range(columns):
            ax = axes[row, column]
            ax.axis("off")
            if column >= len(chosen):
                continue
            k = chosen[column]
            wrong = (d[k] <= tau) != same[k]
            ax.imshow(_side_by_side(images[i[k]], images[j[k]]), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"d = {d[k]:.3f}" + (f"\n{error}" if wrong else "\ncorrect"), fontsize=9,
                         color="C3" if wrong else "k")
        axes[row, 0].text(-0.05, 0.5, title, transform=axes[row, 0].transAxes, rotation=90, ha="right",
                          va="center", fontsize=9)
    fig.suptitle(f"hardest test pairs at tau = {tau:.3f}")
    return _save(fig, path)


def plot_clusters(images: np.ndarray, clusters: np.ndarray, path: str | Path, per_cluster: int = 8,
                  max_clusters: int = 12, captions: Sequence[str] | None = None) -> Path:
    """The gallery of each cluster: one row of faces per cluster (largest first; noise, -1, last), at most
    `per_cluster` faces a row and `max_clusters` rows. images: uint8 (N, C, H, W); clusters: (N,)."""
    clusters = np.asarray(clusters)
    ids, sizes = np.unique(clusters, return_counts=True)
    order = sorted(range(len(ids)), key=lambda k: (ids[k] < 0, -sizes[k], ids[k]))[:max_clusters]
    columns = max(1, min(per_cluster, int(sizes.max())))
    fig, axes = plt.subplots(len(order), columns, figsize=(1.3 * columns + 1.2, 1.4 * len(order) + 0.4),
                             squeeze=False, constrained_layout=True)
    for row, k in enumerate(order):
        members = np.flatnonzero(clusters == ids[k])
        for column in range(columns):
            ax = axes[row, column]
            ax.axis("off")
            if column < len(members):
                ax.imshow(_display(images[members[column]]), cmap="gray", vmin=0, vmax=255)
                if captions is not None:
                    _literal(ax.set_title(captions[members[column]][:14], fontsize=6))
        name = "noise" if ids[k] < 0 else f"cluster {ids[k]}"
        axes[row, 0].text(-0.08, 0.5, f"{name}\n({sizes[k]})", transform=axes[row, 0].transAxes, ha="right",
                          va="center", fontsize=8)
    shown = "" if len(ids) <= max_clusters else f" (the {max_clusters} largest of {len(ids)})"
    fig.suptitle(f"clusters{shown}")
    return _save(fig, path)


def _display(image: np.ndarray) -> np.ndarray:
    """uint8 (C, H, W) -> (H, W) grey or (H, W, 3) RGB, for imshow."""
    image = np.asarray(image)
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)


def _side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = _display(a), _display(b)
    gap = np.full((a.shape[0], max(1, a.shape[1] // 16), *a.shape[2:]), 255, dtype=a.dtype)
    return np.concatenate([a, gap, b], axis=1)


