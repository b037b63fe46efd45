"""Run folders: train a split into one, measure its checkpoint on the test pairs beside the baselines, and write
`metrics.json` and the figures (loss.png, distances.png, roc.png). LFW View 2 is ten run folders, fold-0 ...
fold-9, each trained without that fold's people and tested on its pairs; the folder above holds their summary.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tinyface.eval import open_set_report, pair_distances
from tinyface.files import atomic_write
from tinyface.training.checkpoint import CheckpointError, has_checkpoint, load_checkpoint
from tinyface.training.compatibility import OldVersion
from tinyface.training.figures import plot_distance_histograms, plot_loss_curve, plot_roc
from tinyface.training.measure import METRIC_KEYS, baseline_metrics, embed, held_out_fold_metrics, verification_metrics
from tinyface.training.split import LFW_FOLDS, Split, load_split, split_from_description
from tinyface.training.train import TrainConfig, TrainResult, train

METRICS_FILE = "metrics.json"
VIEW2_FILE = "view2.json"  # what the ten trainings of an LFW View 2 run share: config, data, split options


def train_run(split: Split, config: TrainConfig, out: str | Path, *, resume: bool = False, progress: bool = True,
              figures: bool = True, log: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train on the split's training people into `out`, then measure on its test pairs; write metrics.json and
    (unless figures=False) the figures there. Returns the metrics report."""
    out = Path(out)
    old_view = None
    if config.compatible_with is not None:  # the old model sees the training images as its own training did
        view = OldVersion(config.compatible_with).view_for(split)
        old_view = (view.train, view.validation)
    result = train(config, split.train, split.validation, out, resume=resume, progress=progress, log=log,
                   metadata={"task": split.description}, old_view=old_view)
    report, curves = measure_run(out, split)
    write_report(out, report, curves, result if figures else None, figures)
    return report


def measure_run(folder: str | Path, split: Split | None = None, baselines: bool = True, flip: bool = True
                ) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(report, curves) of a run folder's checkpoint on a split's test pairs (default: the split it was trained
    on). report: {"model": metrics, "model_flip": the same with test-time flipping (unless flip=False),
    "pixels": ..., "eigenfaces": ..., "tau", "accuracy_at_tau", ...}; curves: {name: (distances, same)} of the
    test pairs, for the figures."""
    checkpoint = load_checkpoint(folder)
    if split is None:
        if "task" not in checkpoint.meta:
            raise CheckpointError(f"{folder} does not say which data it was trained on; pass --dataset")
        split = split_from_description(checkpoint.meta["task"])
    model = checkpoint.build_model()
    embeddings = embed(model, split.test.images, checkpoint.preprocessing)
    if split.fold is None:
        metrics = verification_metrics(embeddings, split.test.labels, split.pairs)
    else:
        metrics = held_out_fold_metrics(embeddings, split.test.labels, split.pairs, split.fold)
    test = np.ones(len(split.pairs.same), bool) if split.fold is None else split.pairs.folds == split.fold
    distances = pair_distances(embeddings, split.pairs.i, split.pairs.j)[test]
    same = split.pairs.same[test]
    report: dict[str, Any] = {
        "dataset": split.dataset, "fold": split.fold, "test_people": split.test.num_people,
        "test_pairs": int(test.sum()), "tau": checkpoint.tau,
        "accuracy_at_tau": float(np.mean((distances <= checkpoint.tau) == same)),
        "training_seconds": checkpoint.meta.get("wall_time"), "step": checkpoint.meta.get("step"),
        "model": metrics,
    }
    curves = {"tinyface": (distances, same)}
    if flip:
        flipped = embed(model, split.test.images, checkpoint.preprocessing, flip=True)
        if split.fold is None:
            report["model_flip"] = verification_metrics(flipped, split.test.labels, split.pairs)
        else:
            report["model_flip"] = held_out_fold_metrics(flipped, split.test.labels, split.pairs, split.fold)
    if baselines:
        for name, values in baseline_metrics(split.training_people, split.test, split.pairs, split.fold).items():
            report[name] = values
    return report, curves


def write_report(folder: str | Path, report: dict[str, Any], curves: dict[str, tuple[np.ndarray, np.ndarray]],
                 result: TrainResult | None = None, figures: bool = True) -> None:
    """metrics.json (atomically) and the figures of a measured run (the loss curve needs the TrainResult)."""
    folder = Path(folder)
    atomic_write(folder / METRICS_FILE, lambda f: f.write(json.dumps(report, indent=1).encode()))
    if not figures:
        return
    distances, same = curves["tinyface"]
    plot_distance_histograms(distances, same, report["tau"], folder / "distances.png",
                             title=f"{report['dataset']} test pairs (tau chosen on {_tau_source(folder)})")
    plot_roc(curves, folder / "roc.png")
    if result is not None and len(result.step_losses):
        plot_loss_curve(result.step_losses, result.history, folder / "loss.png")


def train_view2(config: TrainConfig, data: str | Path | None, out: str | Path, *, resume: bool = False,
                progress: bool = True, figures: bool = True, log: Callable[[str], Any] = print,
                **split_options: Any) -> dict[str, Any]:
    """LFW View 2: ten trainings, fold k's people held out and its pairs tested; finished folds (with a
    metrics.json) are skipped on resume. Returns the summary: the 10-fold mean +- std."""
    out = Path(out)
    setup = {"config": asdict(config), "data": None if data is None else str(data), "split_options": split_options}
    atomic_write(out / VIEW2_FILE, lambda f: f.write(json.dumps(setup, indent=1).encode()))
    reports = []
    for fold in range(LFW_FOLDS):
        folder = out / f"fold-{fold}"
        if resume and (folder / METRICS_FILE).is_file():
            reports.append(json.loads((folder / METRICS_FILE).read_text()))
            log(f"fold {fold}: done earlier, accuracy {reports[-1]['model']['accuracy']:.3f}")
            continue
        log(f"fold {fold}: training on the other nine folds' people")
        split = load_split("lfw-view2", data, fold=fold, progress=progress, **split_options)
        reports.append(train_run(split, config, folder, resume=resume and has_checkpoint(folder),
                                 progress=progress, figures=figures, log=log))
    summary = summarize_folds(reports)
    atomic_write(out / METRICS_FILE, lambda f: f.write(json.dumps(summary, indent=1).encode()))
    return summary


def view2_setup(out: str | Path) -> tuple[TrainConfig, str | None, dict[str, Any]] | None:
    """The config, data path and split options an LFW View 2 run in `out` was started with (None: a run of
    tinyface before view2.json), so that `--resume` continues it as it was set up."""
    path = Path(out) / VIEW2_FILE
    if not path.is_file():
        return None
    setup = json.loads(path.read_text())
    return TrainConfig.from_dict(setup["config"]), setup["data"], setup["split_options"]


def fold_folders(folder: str | Path) -> list[Path]:
    """The fold-k run folders of an LFW View 2 run, in order (empty for a plain run folder)."""
    return sorted((p for p in Path(folder).glob("fold-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))


def summarize_folds(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from per-fold reports: accuracy is the mean and std over folds (LFW's number), the other
    metrics are means."""
    summary: dict[str, Any] = {"dataset": reports[0]["dataset"], "fold": None, "folds": len(reports),
                               "test_pairs": sum(r["test_pairs"] for r in reports),
                               "tau": float(np.mean([r["tau"] for r in reports])),
                               "accuracy_at_tau": float(np.mean([r["accuracy_at_tau"] for r in reports]))}
    for name in ("model", "model_flip", "pixels", "eigenfaces"):
        if all(name in r for r in reports):
            rows = [r[name] for r in reports]
            row = {k: _mean([r[k] for r in rows]) for k in rows[0]}
            row["accuracy_std"] = float(np.std([r["accuracy"] for r in rows]))
            summary[name] = row
    return summary


def format_table(report: dict[str, Any]) -> str:
    """The metrics of the model and the baselines as a text table."""
    fold = f", fold {report['fold']}" if report.get("fold") is not None else ""
    folds = f", {report['folds']} folds" if report.get("folds") else ""
    lines = [f"{report['dataset']}{fold}{folds}: {report['test_pairs']} test pairs",
             f"{'':<12} {'accuracy':>15} {'AUC':>7} {'EER':>7} {'VAL@FAR':>8} {'FAR':>7} {'rank-1':>7}"]
    for name in ("model", "model_flip", "pixels", "eigenfaces"):
        if name in report:
            m = report[name]
            label = {"model": "tinyface", "model_flip": "  + flip"}.get(name, name)
            lines.append(f"{label:<12} {m['accuracy']:>7.3f} +- {m['accuracy_std']:.3f} {m['auc']:>7.3f} "
                         f"{m['eer']:>7.3f} {m['val_at_far']:>8.3f} {m['far']:>7.4f} {_number(m['one_shot_rank1'])}")
    if report.get("folds"):
        lines.append(f"accuracy: mean +- std over the {report['folds']} trainings, each at the tau chosen on the "
                     "other folds' pairs; the other columns are means")
    else:
        lines.append(f"tau = {report['tau']:.3f} (chosen in training): accuracy {report['accuracy_at_tau']:.3f} on "
                     "the test pairs; the accuracy above is 10-fold (tau chosen on the other folds)")
    return "\n".join(lines)


def json_report(report: dict[str, Any]) -> dict[str, Any]:
    """`validate --json`: the model's metrics at the top level, the baselines under "baselines"."""
    out = {key: report["model"][key] for key in METRIC_KEYS}
    out.update({"tau": report["tau"], "accuracy_at_tau": report["accuracy_at_tau"], "dataset": report["dataset"],
                "test_pairs": report["test_pairs"],
                "baselines": {name: {key: report[name][key] for key in METRIC_KEYS}
                              for name in ("pixels", "eigenfaces") if name in report}})
    if "model_flip" in report:
        out["flip"] = {key: report["model_flip"][key] for key in METRIC_KEYS}  # test-time flipping
    return out


def _tau_source(folder: Path) -> str:
    try:
        return load_checkpoint(folder).meta.get("tau_source", "training") + " pairs"
    except CheckpointError:
        return "training"


def _mean(values: list[Any]) -> float | None:
    numbers = [v for v in values if v is not None]
    return float(np.mean(numbers)) if numbers else None


def _number(value: float | None) -> str:
    return f"{value:>7.3f}" if value is not None else f"{'-':>7}"


def measure_open_set(embeddings: np.ndarray, labels: np.ndarray, tau: float,
                     false_alarm_rates: tuple[float, ...] = (0.01, 0.1)) -> list[dict[str, Any]] | None:
    """Open-set identification on the held-out people (half enrolled with one image, half strangers, 10 trials):
    DIR at fixed false alarm rates and at the run's tau, as JSON-able rows; None when the test people cannot be
    split so."""
    try:
        points = open_set_report(embeddings, labels, rng=0, false_alarm_rates=false_alarm_rates, tau=tau)
    except ValueError:
        return None
    return [{"condition": p.condition, "dir": p.dir_mean, "dir_std": p.dir_std, "false_alarm_rate":
             p.false_alarm_rate, "threshold": p.threshold} for p in points]


def format_open_set(rows: list[dict[str, Any]] | None) -> str:
    """The rows of measure_open_set as lines to append to format_table's table ("" when there are none)."""
    if not rows:
        return ""
    lines = [f"  {p['condition'] if not p['condition'].startswith('tau') else 'at the run tau':<14} DIR "
             f"{p['dir']:.3f} +- {p['dir_std']:.3f}   false alarms {p['false_alarm_rate']:.3f}   threshold "
             f"{p['threshold']:.3f}" for p in rows]
    return ("\nopen-set identification on the test people (half enrolled with one image each, half strangers; "
            "10 trials):\n" + "\n".join(lines))
