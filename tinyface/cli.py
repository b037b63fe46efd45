"""The `tinyface` command.

    tinyface train [--dataset olivetti | lfw-view1 | lfw-view2 | folder] [--data PATH] [--seed N] [--out DIR] ...
    tinyface validate RUN [--dataset ...] [--data PATH] [--json]
    tinyface --version

Errors in what the user gave (a missing dataset, a wrong path, a run folder without a checkpoint, a corrupt one)
are printed as `tinyface: error: ...` with exit status 2, without a traceback (`--debug` shows it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import tinyface
from tinyface.checkpoint import has_checkpoint, load_checkpoint
from tinyface.data import DownloadError, LFWFormatError, MatFileError
from tinyface.runs import fold_folders, format_table, json_report, measure_run, summarize_folds, train_run, train_view2
from tinyface.splits import DATASETS, load_split, split_from_description
from tinyface.train import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, DownloadError, MatFileError,
               LFWFormatError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyface", description="FaceNet-style face recognition from scratch.")
    parser.add_argument("--version", action="version", version=f"tinyface {tinyface.__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    defaults = TrainConfig()
    t = commands.add_parser("train", help="train a face model and measure it on held-out people",
                            description="Train on the training people, write a run folder (checkpoint, "
                            "metrics.json, figures), and print the metrics on the held-out people.")
    t.add_argument("--dataset", choices=DATASETS, default="olivetti",
                   help="olivetti: people 0-29 train, 30-39 test (default); lfw-view1: View 1's training people; "
                        "lfw-view2: ten trainings, LFW's protocol; folder: a person/image folder (--data)")
    t.add_argument("--data", metavar="PATH", help="folder holding olivettifaces.mat, the LFW folder, or an image "
                                                  "folder in the person/image layout")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", metavar="DIR", help="run folder (default: runs/<dataset>-seed<N>)")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out, exactly")
    t.add_argument("--steps", type=int, default=defaults.steps)
    t.add_argument("--steps-per-epoch", type=int, default=defaults.steps_per_epoch,
                   help="a log line, a validation and a checkpoint every this many steps")
    t.add_argument("--loss", choices=LOSSES, default=defaults.loss)
    t.add_argument("--margin", type=float, help="alpha (default 0.2; 1.0 for contrastive)")
    t.add_argument("--people-per-batch", "-P", type=int, default=defaults.people_per_batch)
    t.add_argument("--images-per-person", "-K", type=int, default=defaults.images_per_person)
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    t.add_argument("--lr", type=float, default=defaults.lr)
    t.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    t.add_argument("--lr-schedule", choices=SCHEDULES, default=defaults.lr_schedule)
    t.add_argument("--model", choices=("reference", "lfw"), help="architecture (default: reference for "
                                                                  "Olivetti, lfw for the others)")
    t.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim)
    t.add_argument("--image-size", type=int, default=defaults.image_size)
    t.add_argument("--grayscale", action="store_true", help="load LFW / folder images in grey (default RGB)")
    t.add_argument("--no-augment", action="store_true", help="no random flips and shifts")
    t.add_argument("--validation-people", type=float, metavar="N",
                   help="training people held out to validate and choose tau: a count, or a fraction < 1 "
                        "(default: 5 for Olivetti, 0.05 otherwise; 0 for none)")
    t.add_argument("--test-fraction", type=float, default=0.25, help="folder: fraction of people tested")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--no-figures", action="store_true", help="write no PNG figures (metrics.json only)")

    v = commands.add_parser("validate", help="measure a trained run beside the raw-pixel and Eigenfaces baselines",
                            description="Print verification accuracy (10-fold, +- std), AUC, EER, VAL@FAR=1e-3 "
                            "and one-shot rank-1 of a run on its held-out people, beside the baselines.")
    v.add_argument("run", metavar="RUN", help="a run folder written by `tinyface train`")
    v.add_argument("--dataset", choices=DATASETS[:3], help="test data (default: the run's own held-out people)")
    v.add_argument("--data", metavar="PATH", help="where that dataset is (as for train)")
    v.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"train": _train, "validate": _validate}[args.command](args)
    except KeyboardInterrupt:
        print("\ntinyface: interrupted; continue with `tinyface train --resume --out RUN`", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"tinyface: error: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out or f"runs/{args.dataset}-seed{args.seed}")
    progress = not args.no_progress
    if args.resume:
        if not has_checkpoint(out) and not fold_folders(out):
            raise FileNotFoundError(f"nothing to resume: {out} has no checkpoint")
    elif has_checkpoint(out) or fold_folders(out):
        raise ValueError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")

    if args.resume and has_checkpoint(out):  # the saved run decides everything but the number of steps
        meta = load_checkpoint(out).meta
        config = TrainConfig.from_dict({**meta["config"], "steps": max(args.steps, meta["config"]["steps"])})
        split = split_from_description(meta["task"])
        report = train_run(split, config, out, resume=True, progress=progress, figures=not args.no_figures)
        print(format_table(report))
        return 0

    channels_default = "reference" if args.dataset == "olivetti" else "lfw"
    config = TrainConfig(
        loss=args.loss, margin=args.margin, people_per_batch=args.people_per_batch,
        images_per_person=args.images_per_person, steps=args.steps, steps_per_epoch=args.steps_per_epoch,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, lr_schedule=args.lr_schedule,
        model=args.model or channels_default, embedding_dim=args.embedding_dim, image_size=args.image_size,
        augment=not args.no_augment, seed=args.seed,
    )
    validation = args.validation_people
    if validation is not None and validation >= 1:
        validation = int(validation)
    options = {"validation_people": validation, "image_size": args.image_size, "seed": args.seed,
               "grayscale": True if args.grayscale else None}
    if args.dataset == "lfw-view2":
        summary = train_view2(config, args.data, out, resume=args.resume, progress=progress,
                              figures=not args.no_figures, **options)
        print(format_table(summary))
        return 0
    if args.dataset == "folder":
        options["test_fraction"] = args.test_fraction
    split = load_split(args.dataset, args.data, progress=progress, **options)
    print(f"training on {split.train.num_people} people ({len(split.train)} images), validating on "
          f"{0 if split.validation is None else split.validation.num_people}, testing on {split.test.num_people} "
          f"({len(split.pairs.i)} pairs); run folder {out}")
    report = train_run(split, config, out, resume=False, progress=progress, figures=not args.no_figures)
    print(format_table(report))
    return 0


def _validate(args: argparse.Namespace) -> int:
    run = Path(args.run)
    folds = fold_folders(run)
    if folds and not has_checkpoint(run):  # LFW View 2: ten run folders
        if args.dataset not in (None, "lfw-view2"):
            raise ValueError(f"{run} holds ten LFW View 2 trainings; validate them with --dataset lfw-view2")
        reports = []
        for folder in folds:
            task = dict(load_checkpoint(folder).meta["task"])
            reports.append(measure_run(folder, split_from_description(task, **_data(args)))[0])
        report = summarize_folds(reports)
    else:
        checkpoint = load_checkpoint(run)
        split = None
        if args.dataset is not None or args.data is not None:
            task = checkpoint.meta.get("task", {})
            same_data = args.dataset in (None, task.get("dataset"))
            if same_data and task:
                split = split_from_description(task, **_data(args))
            elif args.dataset is None:
                raise ValueError("--data needs --dataset when the run does not say which data it was trained on")
            else:
                preprocessing = checkpoint.preprocessing
                view2 = args.dataset == "lfw-view2"
                split = load_split(args.dataset, args.data, fold=0 if view2 else None, validation_people=0,
                                   image_size=preprocessing["image_size"], grayscale=preprocessing["channels"] == 1)
                split.fold = None  # a model that never saw LFW: all pairs, ten folds (LFW's own in View 2)
        report = measure_run(run, split)[0]
    print(json.dumps(json_report(report), indent=1) if args.json else format_table(report))
    return 0


def _data(args: argparse.Namespace) -> dict[str, str]:
    return {"data": args.data} if args.data is not None else {}


if __name__ == "__main__":
    sys.exit(main())
