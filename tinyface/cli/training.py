"""`tinyface train` and `tinyface validate`: a run folder trained on one split, and measured on held-out people.

The work is done in tinyface.training (split: which people train and test; runs: train a split into a run folder,
measure it beside the baselines, format the table); here are the options and what is printed.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tinyface.cli.terminal import printable
from tinyface.eval import pair_distances
from tinyface.face.embedder import Embedder
from tinyface.files import check_output
from tinyface.training.checkpoint import Checkpoint, export_checkpoint, has_checkpoint, load_checkpoint
from tinyface.training.compatibility import format_compatibility, json_compatibility, measure_compatibility
from tinyface.training.figures import plot_hardest_pairs, plot_projection, plot_roc
from tinyface.training.lock import LOCK_FILE, run_lock
from tinyface.training.runs import (
    fold_folders,
    format_open_set,
    format_table,
    json_report,
    measure_open_set,
    measure_run,
    summarize_folds,
    train_run,
    train_view2,
    view2_setup,
)
from tinyface.training.split import DATASETS, Split, check_never_seen, load_split, split_from_description
from tinyface.training.train import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig

# The recipe of each dataset where the user gives no flag. LFW's and image folders' is the best row of
# benchmarks/recipes.py at equal wall-clock (see benchmarks/README.md); Olivetti's fine-tunes the model that comes
# with tinyface (trained with LFW's recipe on LFW View 1's training people, none of them an Olivetti face) on
# people 0-29 (`--init none --model reference --image-size 64 --lr 1e-3` is the from-scratch benchmark).
RECIPES: dict[str, dict[str, Any]] = {
    "olivetti": {"model": "lfw", "people_per_batch": 10, "images_per_person": 10, "lr_schedule": "constant",
                 "steps_per_epoch": 30, "image_size": 48, "init": "pretrained", "lr": 1e-4},
    "lfw": {"model": "lfw", "people_per_batch": 32, "images_per_person": 4, "lr_schedule": "cosine",
            "steps_per_epoch": 250, "image_size": 48, "minutes": 15.0, "optimizer": "adamw", "weight_decay": 0.2},
}


def recipe(dataset: str) -> dict[str, Any]:
    """The defaults of `tinyface train --dataset DATASET` (LFW's for lfw-view1, lfw-view2 and folders)."""
    return RECIPES["olivetti" if dataset == "olivetti" else "lfw"]


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `train` and `validate` to the subparsers of `tinyface`."""
    _add_train(commands)
    _add_validate(commands)
    _add_export(commands)


def _add_train(commands: argparse._SubParsersAction) -> None:
    """`tinyface train`: the split (--dataset, --data, ...) and the TrainConfig, flag by flag."""
    defaults = TrainConfig()
    p = commands.add_parser("train", help="train a face model and measure it on held-out people",
                            description="Train on the training people, write a run folder (checkpoint, "
                            "metrics.json, figures), and print the metrics on the held-out people.")
    p.add_argument("--dataset", choices=DATASETS,
                   help="olivetti: people 0-29 train, 30-39 test (default); lfw-view1: View 1's training people; "
                        "lfw-view2: ten trainings, LFW's protocol; folder: a person/image folder (--data)")
    p.add_argument("--data", metavar="PATH", help="folder holding olivettifaces.mat, the LFW folder, or an image "
                                                  "folder in the person/image layout")
    p.add_argument("--seed", type=int, help="seed of the initialisation, the batches and the split (default 0)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<dataset>-seed<N>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out, exactly")
    p.add_argument("--steps", type=int,
                   help=f"training steps (default {defaults.steps}, or as many as --minutes allows; with --resume, "
                        "the saved run's)")
    p.add_argument("--minutes", type=float, metavar="M",
                   help="train for this wall-clock budget (the learning-rate schedule follows it; --steps, if "
                        "given, is then a ceiling). Default: 15 for LFW and folders, none (300 steps) for Olivetti")
    p.add_argument("--init", metavar="RUN", help="start from the weights of a trained run folder ('none': from "
                                                 "random weights, LFW's default; 'pretrained', Olivetti's default: "
                                                 "the model that comes with tinyface), same architecture")
    p.add_argument("--compatible-with", metavar="OLD_RUN",
                   help="train a harmonic embedding, comparable with OLD_RUN's (a run folder or 'pretrained'): "
                        "the loss runs on both versions' embeddings of each batch, OLD_RUN's weights never change; "
                        "the run records OLD_RUN and the checksum of its weights. Same --embedding-dim as OLD_RUN; "
                        "width, depth, input size and data may differ")
    p.add_argument("--embedding-steps", type=int, metavar="N",
                   help="with --compatible-with and --init (FaceNet's schedule): the first N steps train only the "
                        "re-initialised embedding layer of the --init network, then the whole network (default: "
                        "one epoch with --init, 0 without)")
    p.add_argument("--steps-per-epoch", type=int,
                   help="a log line, a validation and a checkpoint every this many steps (default 30 for Olivetti, "
                        "250 otherwise)")
    p.add_argument("--loss", choices=LOSSES, help=f"default {defaults.loss}")
    p.add_argument("--margin", type=_margin, help="alpha (default 0.2; 1.0 for contrastive); 'soft' for "
                                                 "batch-hard's soft margin log(1 + exp(d_ap - d_an))")
    p.add_argument("--center-loss", type=float, metavar="LAMBDA",
                   help="with --loss softmax: add Wen et al.'s center loss, LAMBDA x mean 1/2 ||x - c_y||^2 on the "
                        "embedding layer, each person's center c_y following their embeddings (default 0: none)")
    p.add_argument("--center-rate", type=float, metavar="R",
                   help=f"how far each center moves towards its batch's embeddings per step, in (0, 1] (default "
                        f"{defaults.center_rate:g})")
    p.add_argument("--people-per-batch", "-P", type=int, help="people per batch (default 10 for Olivetti, else 32)")
    p.add_argument("--images-per-person", "-K", type=int, help="images per person (default 10 for Olivetti, else 4)")
    p.add_argument("--extra-people", type=int, metavar="N",
                   help="each batch also holds one image each of N more people, drawn from everyone (those with "
                        "a single image too): for the triplet and contrastive losses negatives only, never anchors; "
                        "softmax classifies them like the others (default 0)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default adamw (decoupled weight decay) for LFW and "
                                                           "folders, adam for Olivetti")
    p.add_argument("--lr", type=float, help=f"learning rate (default {defaults.lr:g})")
    p.add_argument("--weight-decay", type=float, help="default 0.2 for LFW and folders, 0 for Olivetti")
    p.add_argument("--lr-schedule", choices=SCHEDULES, help="default constant for Olivetti, cosine otherwise")
    p.add_argument("--model", choices=("reference", "lfw"),
                   help="architecture: reference (4 blocks, 257k parameters; Olivetti's default) or lfw (5 wider "
                        "blocks, 1.0M parameters; the default otherwise)")
    p.add_argument("--embedding-dim", type=int, help=f"default {defaults.embedding_dim}")
    p.add_argument("--image-size", type=int, help="side of the square input in pixels (default 64 for Olivetti, "
                                                  "48 otherwise)")
    colour = p.add_mutually_exclusive_group()
    colour.add_argument("--grayscale", action="store_true", help="images in grey (the default)")
    colour.add_argument("--rgb", action="store_true", help="LFW / folder images in colour")
    p.add_argument("--face-crop", type=float, metavar="F",
                   help="LFW / folder: keep the central square of this fraction of each image's side before "
                        "resizing (default 0.4 for LFW, whose faces fill the middle of the frame; 1 for folders)")
    p.add_argument("--rotation", type=float, metavar="DEG",
                   help="augment: turn each training image by a random angle of up to DEG degrees either way "
                        "(default 0)")
    p.add_argument("--zoom", type=float, metavar="Z",
                   help="augment: enlarge each training image about its centre by a random factor in [1, 1 + Z] "
                        "(default 0)")
    p.add_argument("--no-augment", action="store_true", help="no random flips, shifts, turns or zooms")
    p.add_argument("--validation-people", type=float, metavar="N",
                   help="training people held out to validate and choose tau: a count, or a fraction < 1 "
                        "(default: 5 for Olivetti, 0.05 otherwise; 0 for none)")
    p.add_argument("--test-fraction", type=float, help="folder: fraction of people tested (default 0.25)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true", help="write no PNG figures (metrics.json only)")
    p.set_defaults(handler=_train)


# The flags that set up a run (TrainConfig fields of the same name): a resumed run keeps the saved ones.
FIXED_ON_RESUME = ("loss", "margin", "people_per_batch", "images_per_person", "extra_people", "optimizer", "lr",
                   "weight_decay", "lr_schedule", "model", "embedding_dim", "image_size", "steps_per_epoch", "init",
                   "seed", "compatible_with", "embedding_steps", "center_loss", "center_rate", "rotation", "zoom")


def _train(args: argparse.Namespace) -> int:
    """Train into the run folder --out, holding its lock (one training at a time) from the checks to the end."""
    if args.out == "":
        raise ValueError("--out is empty: give the run folder's path (without --out: runs/<dataset>-seed<N>)")
    out = Path(args.out or f"runs/{args.dataset or 'olivetti'}-seed{args.seed or 0}")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; give a folder")
    with run_lock(out):
        try:
            return _train_into(args, out)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(_after_interrupt(out)) from None


def _after_interrupt(out: Path) -> str:
    """What to do after Ctrl-C stopped a training into `out`: resume it, or (no checkpoint yet) start again."""
    if fold_folders(out):
        return f"continue with `tinyface train --resume --dataset lfw-view2 --out {shlex.quote(str(out))}`"
    if has_checkpoint(out):
        return f"continue with `tinyface train --resume --out {shlex.quote(str(out))}`"
    return ("no checkpoint had been saved yet (one is saved every --steps-per-epoch steps), so there is nothing to "
            "resume: run the same command again")


def _train_into(args: argparse.Namespace, out: Path) -> int:
    progress = not args.no_progress
    if args.resume:
        if not has_checkpoint(out) and not fold_folders(out):
            raise FileNotFoundError(f"nothing to resume: {out} has no checkpoint")
    elif has_checkpoint(out) or fold_folders(out):
        raise ValueError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    elif any(p.name != LOCK_FILE for p in out.iterdir()):
        raise ValueError(f"{out} holds other files and is not a tinyface run; training writes metrics.json and "
                         "figures into --out, so give a new or empty folder")

    if args.resume and fold_folders(out) and args.dataset != "lfw-view2":
        raise ValueError(f"{out} holds an LFW View 2 run (fold-* folders): resume it with --dataset lfw-view2")
    if args.resume and has_checkpoint(out):  # the saved run decides everything; --steps may only lengthen it
        meta = load_checkpoint(out).meta
        config = _resumed_config(args, TrainConfig.from_dict(meta["config"]), meta["task"].get("dataset"), out)
        split = split_from_description(meta["task"])
        report = train_run(split, config, out, resume=True, progress=progress, figures=not args.no_figures)
        print(format_table(report))
        return 0
    setup = view2_setup(out) if args.resume and fold_folders(out) else None
    if setup is not None:  # View 2: its ten trainings continue with the config and split they were started with
        saved, data, options = setup
        config = _resumed_config(args, saved, "lfw-view2", out)
        summary = train_view2(config, args.data or data, out, resume=True, progress=progress,
                              figures=not args.no_figures, **options)
        print(format_table(summary))
        return 0

    args.dataset = args.dataset or "olivetti"
    if args.rgb and args.dataset == "olivetti":
        raise ValueError("the Olivetti faces are grey; --rgb is for LFW and image folders")
    chosen, defaults = recipe(args.dataset), TrainConfig()

    def given(name: str) -> Any:
        """The flag's value if given, else the dataset's recipe, else TrainConfig's default."""
        value = getattr(args, name)
        return chosen.get(name, getattr(defaults, name)) if value is None else value

    args.minutes = None if args.steps is not None and args.minutes is None else given("minutes")
    settings = {name: given(name) for name in FIXED_ON_RESUME}
    settings["init"] = None if settings["init"] == "none" else settings["init"]
    config = TrainConfig(**settings, steps=_steps(args), minutes=args.minutes, augment=not args.no_augment)
    validation = args.validation_people
    if validation is not None and not 0 <= validation < float("inf"):
        raise ValueError(f"--validation-people must be a count >= 0 or a fraction < 1, got {validation}")
    if validation is not None and (validation >= 1 or validation == 0):
        validation = int(validation)
    options = {"validation_people": validation, "image_size": config.image_size, "seed": config.seed,
               "grayscale": not args.rgb, "face_crop": args.face_crop}
    if args.dataset == "lfw-view2":
        summary = train_view2(config, args.data, out, resume=args.resume, progress=progress,
                              figures=not args.no_figures, **options)
        print(format_table(summary))
        return 0
    if args.test_fraction is not None:
        if args.dataset != "folder":
            raise ValueError(f"--test-fraction is for --dataset folder; {args.dataset} has its own test people")
        options["test_fraction"] = args.test_fraction
    split = load_split(args.dataset, args.data, progress=progress, **options)
    print(f"training on {split.train.num_people} people ({len(split.train)} images), validating on "
          f"{0 if split.validation is None else split.validation.num_people}, testing on {split.test.num_people} "
          f"({len(split.pairs.i)} pairs); run folder {out}")
    report = train_run(split, config, out, resume=False, progress=progress, figures=not args.no_figures)
    print(format_table(report))
    return 0


def _resumed_config(args: argparse.Namespace, saved: TrainConfig, dataset: str | None, out: Path) -> TrainConfig:
    """The saved run's config, refusing flags that would change it; --steps may only lengthen the run."""
    _check_unchanged(args, saved, dataset, out)
    if args.minutes is not None and args.minutes != saved.minutes:
        raise ValueError(f"cannot resume {out} with --minutes {args.minutes:g}: it was set up for {saved.minutes} "
                         "minutes")
    return TrainConfig.from_dict({**asdict(saved), "steps": max(args.steps or 0, saved.steps)})


def _check_unchanged(args: argparse.Namespace, saved: TrainConfig, dataset: str | None, out: Path) -> None:
    """Refuse the flags given to `train --resume` that differ from the saved run's: they cannot change on resume
    (--steps may only lengthen the run)."""
    old = {**{name: getattr(saved, name) for name in FIXED_ON_RESUME}, "margin": saved.alpha, "dataset": dataset}
    changed = [f"--{name.replace('_', '-')} {getattr(args, name)} (the run has {value})" for name, value in old.items()
               if getattr(args, name) is not None and getattr(args, name) != value]
    if args.steps is not None and args.steps < saved.steps:
        changed.append(f"--steps {args.steps} (the run has {saved.steps}; a resumed run can only be lengthened)")
    if changed:
        raise ValueError(f"cannot resume {out} with {', '.join(changed)}: a resumed run continues as it was set up; "
                         "drop these flags, or train a new run into another --out")


def _margin(value: str) -> float | str:
    if value == "soft":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'soft', not {value!r}") from None


def _steps(args: argparse.Namespace) -> int:
    """--steps as given (TrainConfig refuses 0 or less); without it the default, or with --minutes a ceiling that
    the budget reaches first."""
    if args.steps is not None:
        return args.steps
    return 10**9 if args.minutes is not None else TrainConfig().steps


def _add_validate(commands: argparse._SubParsersAction) -> None:
    """`tinyface validate RUN`: which test data, and how to print it."""
    p = commands.add_parser("validate", help="measure a trained run beside the raw-pixel and Eigenfaces baselines",
                            description="Print verification accuracy (10-fold, +- std), AUC, EER, VAL@FAR=1e-3 "
                            "and one-shot rank-1 of a run on its held-out people, beside the baselines.")
    p.add_argument("run", metavar="RUN", help="a run folder written by `tinyface train`")
    p.add_argument("--dataset", choices=DATASETS[:3], help="test data (default: the run's own held-out people)")
    p.add_argument("--data", metavar="PATH", help="where that dataset is (as for train)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--figures", metavar="DIR", help="also write projection.png (the test embeddings, coloured by "
                                                    "person) and hardest-pairs.png (the worst false accepts and "
                                                    "false rejects) into DIR")
    p.add_argument("--force", action="store_true", help="replace the figures if DIR already holds them")
    p.add_argument("--against", metavar="OLD_RUN",
                   help="compatibility with an older run: old/old, new/new and mixed rows (one image of each pair "
                        "embedded by each version, both orders) on the same test pairs, the update gain G, and 1:K "
                        "with OLD_RUN's gallery queried by RUN; with --figures, DIR/compatibility-roc.png")
    p.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    run = Path(args.run)
    if args.against is not None:
        return _validate_against(args, run)
    if args.figures:
        for name in VALIDATION_FIGURES:
            check_output(Path(args.figures) / name, args.force)
    folds = fold_folders(run)
    split = None
    if folds and not has_checkpoint(run):  # LFW View 2: ten run folders
        if args.dataset not in (None, "lfw-view2"):
            raise ValueError(f"{run} holds ten LFW View 2 trainings; validate them with --dataset lfw-view2")
        if args.figures:
            raise ValueError("--figures needs one run folder; pass one of the fold-k folders")
        reports = []
        for folder in folds:
            task = dict(load_checkpoint(folder).meta["task"])
            reports.append(measure_run(folder, split_from_description(task, **_data(args)))[0])
        report = summarize_folds(reports)
    else:
        checkpoint = load_checkpoint(run)
        split = _test_split(args, checkpoint)
        report = measure_run(run, split)[0]
        embeddings = Embedder(checkpoint).embed_images(split.test.images)
        report["open_set"] = measure_open_set(embeddings, split.test.labels, report["tau"])
        if args.figures:
            _validation_figures(Path(args.figures), embeddings, split, report["tau"])
    if args.json:
        out = json_report(report)
        if "open_set" in report:
            out["open_set"] = report["open_set"]
        print(json.dumps(out, indent=1))
    else:
        print(format_table(report) + format_open_set(report.get("open_set")))
    if args.figures and not args.json:  # the output of --json is JSON only
        print("figures: " + ", ".join(str(Path(args.figures) / name) for name in VALIDATION_FIGURES))
    return 0


VALIDATION_FIGURES = ("projection.png", "hardest-pairs.png")
COMPATIBILITY_FIGURE = "compatibility-roc.png"


def _test_split(args: argparse.Namespace, checkpoint: Checkpoint) -> Split | None:
    """The test pairs of `validate`: the run's own (its data moved with --data), or those of --dataset, whose
    people the run must never have trained on; None when the run does not say and no --dataset is given."""
    task = checkpoint.meta.get("task", {})
    if args.dataset is not None or args.data is not None:
        same_data = args.dataset in (None, task.get("dataset"))
        if same_data and task:
            return split_from_description(task, **_data(args))
        if args.dataset is None:
            raise ValueError("--data needs --dataset when the run does not say which data it was trained on")
        preprocessing = checkpoint.preprocessing
        view2 = args.dataset == "lfw-view2"
        split = load_split(args.dataset, args.data, fold=0 if view2 else None, validation_people=0,
                           image_size=preprocessing["image_size"], grayscale=preprocessing["channels"] == 1)
        split.fold = None  # all pairs, ten folds (LFW's own in View 2)
        check_never_seen(task, split)
        return split
    return split_from_description(task) if task else None


def _validate_against(args: argparse.Namespace, run: Path) -> int:
    """`validate NEW --against OLD`: the compatibility of two runs on NEW's test pairs (or --dataset's)."""
    figure = None if not args.figures else check_output(Path(args.figures) / COMPATIBILITY_FIGURE, args.force)
    if fold_folders(run) and not has_checkpoint(run):
        raise ValueError(f"{run} holds ten LFW View 2 trainings; --against compares two run folders: pass one of "
                         "its fold-k folders")
    report, curves = measure_compatibility(run, args.against, _test_split(args, load_checkpoint(run)))
    if figure is not None:
        plot_roc(curves, figure)
    print(json.dumps(json_compatibility(report), indent=1) if args.json else format_compatibility(report))
    if figure is not None and not args.json:  # the output of --json is JSON only
        print(f"figure: {figure}")
    return 0


def _validation_figures(folder: Path, embeddings: np.ndarray, split: Any, tau: float) -> None:
    names = [printable(name) for name in split.test.names]  # names from folders, shown as text
    plot_projection(embeddings, split.test.labels, names, folder / VALIDATION_FIGURES[0],
                    title=f"{split.dataset} test people")
    test = np.ones(len(split.pairs.same), bool) if split.fold is None else split.pairs.folds == split.fold
    i, j, same = split.pairs.i[test], split.pairs.j[test], split.pairs.same[test]
    plot_hardest_pairs(split.test.images, pair_distances(embeddings, i, j), same, i, j, tau,
                       folder / VALIDATION_FIGURES[1])


def _data(args: argparse.Namespace) -> dict[str, str]:
    return {"data": args.data} if args.data is not None else {}


def _add_export(commands: argparse._SubParsersAction) -> None:
    """`tinyface export RUN OUT_DIR`: the model of a run, to hand to others."""
    p = commands.add_parser("export", help="write a run's model as a small run folder to hand to others",
                            description="Write the model of RUN (weights, architecture, preprocessing, tau, the pairs "
                            "tau was chosen on, the training record) into OUT_DIR without the optimiser state or any "
                            "path of this machine; it works wherever a RUN is asked for, but cannot be resumed.")
    p.add_argument("run", metavar="RUN", help="a run folder written by `tinyface train`")
    p.add_argument("out", metavar="OUT_DIR", help="a new or empty folder")
    p.add_argument("--float16", action="store_true", help="store the weights in half precision (half the size)")
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder; choose a new one")
    export_checkpoint(args.run, out, float16=args.float16)
    size = sum(f.stat().st_size for f in out.iterdir())
    print(f"wrote the model of {args.run} to {out} ({size / 1e6:.2f} MB)")
    return 0
