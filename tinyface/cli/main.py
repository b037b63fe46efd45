"""The `tinyface` command.

    tinyface train [--dataset olivetti | lfw-view1 | lfw-view2 | folder] [--data PATH] [--seed N] [--out DIR] ...
    tinyface validate RUN [--dataset ...] [--data PATH] [--json] [--figures DIR]
    tinyface compare RUN IMAGE IMAGE [IMAGE ...] [--json]
    tinyface enroll RUN GALLERY_DIR -o gallery.npz
    tinyface identify RUN gallery.npz IMAGE [IMAGE ...] [--by nearest|mean] [--json]
    tinyface cluster RUN DIR [--method chinese-whispers|dbscan] [--figure PNG] [--json]
    tinyface classify RUN --train DIR --test DIR [--k 5] [--json]
    tinyface embed RUN DIR -o embeddings.npz [--figure PNG]
    tinyface align LANDMARKS.csv -o OUT_DIR [--size 112]  |  tinyface align --detect IMAGE_DIR -o OUT_DIR
    tinyface demo collapse [--out DIR] [--data PATH] [--fast]
    tinyface --version

RUN is a run folder written by `tinyface train`: its model embeds image files with the run's own preprocessing
(run.json: image size, grey or RGB, source crop, normalisation), and its threshold tau decides "same person".
An image folder DIR holds one sub-folder of images per person (labelled) and/or loose images (unlabelled).

Errors in what the user gave (a missing dataset, a wrong path, a run folder without a checkpoint, a corrupt one)
are printed as `tinyface: error: ...` with exit status 2, without a traceback (`--debug` shows it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

import tinyface
from tinyface.data import DownloadError, LFWFormatError, MatFileError, load_olivetti, resize
from tinyface.data.folders import read_photo, write_image_folder
from tinyface.eval import (
    NOISE,
    chinese_whispers,
    cluster_report,
    dbscan,
    open_set_report,
    pair_distances,
    squared_distances,
)
from tinyface.face.align import NoFaceError, align_face, crop_largest_face, read_landmarks_csv
from tinyface.face.classify import KNearestNeighbours, NearestCentroid, SoftmaxClassifier
from tinyface.face.compare import compare
from tinyface.face.embedder import Embedder, list_images, save_embeddings
from tinyface.face.gallery import UNKNOWN, Gallery
from tinyface.files import atomic_write
from tinyface.teaching.collapse import CollapseConfig, plot_collapse, run_collapse
from tinyface.training.checkpoint import has_checkpoint, load_checkpoint
from tinyface.training.figures import plot_clusters, plot_hardest_pairs, plot_projection
from tinyface.training.runs import (
    fold_folders,
    format_table,
    json_report,
    measure_run,
    summarize_folds,
    train_run,
    train_view2,
)
from tinyface.training.split import DATASETS, Split, load_split, split_from_description
from tinyface.training.train import LOSSES, OPTIMIZERS, SCHEDULES, TrainConfig

# what a user can cause and mend (OSError: a missing file, an existing folder, a full disk, no permission ...)
USER_ERRORS = (ValueError, OSError, DownloadError, MatFileError, LFWFormatError)
OPEN_SET_FARS = (0.01, 0.1)


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
    t.add_argument("--steps", type=int,
                   help=f"training steps (default {defaults.steps}; with --resume, the saved run's)")
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
    v.add_argument("--figures", metavar="DIR", help="also write projection.png (the test embeddings, coloured by "
                                                    "person) and hardest-pairs.png (the worst false accepts and "
                                                    "false rejects) into DIR")

    c = commands.add_parser("compare", help="distances between face images, and same / different at the run's tau",
                            description="Print the matrix of squared L2 distances between the images and, for each "
                            "pair, same or different at the run's tau with the confidence the run's validation "
                            "pairs support: c(d) = FRR(d) / (FRR(d) + FAR(d)) for same, 1 - c(d) for different.")
    c.add_argument("run", metavar="RUN", help="a run folder written by `tinyface train`")
    c.add_argument("images", metavar="IMAGE", nargs="+", help="two or more image files")
    c.add_argument("--no-confidence", action="store_true", help="skip the confidence (it reloads the run's data)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")

    e = commands.add_parser("enroll", help="enroll a folder of people into a gallery for `tinyface identify`",
                            description="Embed GALLERY_DIR/<person>/<image> with the run's model and write a gallery "
                            "(.npz, written atomically) recording the run's architecture and weights.")
    e.add_argument("run", metavar="RUN")
    e.add_argument("folder", metavar="GALLERY_DIR", help="one sub-folder of images per person")
    e.add_argument("-o", "--out", metavar="GALLERY", required=True, help="the gallery file to write (.npz)")

    i = commands.add_parser("identify", help="who is in each image: the nearest enrolled person, or unknown",
                            description="1:K identification with open-set rejection: each image is given the "
                            "nearest enrolled person, or 'unknown' when that person is farther than tau.")
    i.add_argument("run", metavar="RUN")
    i.add_argument("gallery", metavar="GALLERY", help="a gallery written by `tinyface enroll` with this run")
    i.add_argument("images", metavar="IMAGE", nargs="+")
    i.add_argument("--by", choices=("nearest", "mean"), default="nearest",
                   help="distance to a person: to their nearest enrolled face (default) or their mean embedding")
    i.add_argument("--tau", type=float, help="rejection threshold (default: the run's tau)")
    i.add_argument("--json", action="store_true")

    k = commands.add_parser("cluster", help="group unlabelled faces by their distances (N:N)",
                            description="Cluster the images of DIR by their squared L2 distances (Chinese whispers "
                            "or DBSCAN, both linking faces within tau); with person sub-folders, also report pairwise "
                            "precision and recall and the number of clusters against the number of people.")
    k.add_argument("run", metavar="RUN")
    k.add_argument("folder", metavar="DIR", help="images, loose or in one sub-folder per person")
    k.add_argument("--method", choices=("chinese-whispers", "dbscan"), default="chinese-whispers")
    k.add_argument("--eps", type=float, help="link distance (default: the run's tau)")
    k.add_argument("--min-samples", type=int, default=2, help="DBSCAN: neighbours (itself included) of a core face")
    k.add_argument("--figure", metavar="PNG", help="write the gallery of each cluster as a figure")
    k.add_argument("--json", action="store_true")

    f = commands.add_parser("classify", help="classifiers on embeddings: nearest centroid, k-NN, softmax",
                            description="Fit nearest centroid, k-nearest neighbours and a linear softmax classifier "
                            "(trained with tinyface) on the embeddings of --train, and print their accuracy on --test. "
                            "Both folders hold one sub-folder per person; test people must be training people.")
    f.add_argument("run", metavar="RUN")
    f.add_argument("--train", metavar="DIR", required=True)
    f.add_argument("--test", metavar="DIR", required=True)
    f.add_argument("--k", type=int, default=5, help="neighbours of k-NN (at most the training images)")
    f.add_argument("--steps", type=int, default=300, help="full-batch Adam steps of the softmax classifier")
    f.add_argument("--json", action="store_true")

    m = commands.add_parser("embed", help="write embeddings, labels and file paths of a folder as .npz",
                            description="Embed every image of DIR and write embeddings (N, D), labels (N,; -1 for "
                            "loose images), names, paths and the run's signature to an .npz (atomically).")
    m.add_argument("run", metavar="RUN")
    m.add_argument("folder", metavar="DIR")
    m.add_argument("-o", "--out", metavar="NPZ", required=True)
    m.add_argument("--figure", metavar="PNG", help="also write the 2-D projection of the embeddings by person")

    a = commands.add_parser("align", help="aligned face crops from landmarks (or, with OpenCV, detected faces)",
                            description="From a CSV of rows `image, x1, y1, ..., x5, y5` (eyes, nose tip, mouth "
                            "corners; paths relative to the CSV), warp each face onto the canonical 5-point template "
                            "and write the crops as PNG under OUT_DIR at the same relative paths. With --detect "
                            "(needs OpenCV), SOURCE is a folder of images instead, and the largest face found by "
                            "OpenCV's Haar cascade is cropped and resized. OUT_DIR appears whole or not at all.")
    a.add_argument("source", metavar="SOURCE", help="landmarks CSV (or, with --detect, an image folder)")
    a.add_argument("-o", "--out", metavar="OUT_DIR", required=True)
    a.add_argument("--size", type=int, default=112, help="side of the output crops in pixels (default 112)")
    a.add_argument("--detect", action="store_true", help="detect faces with OpenCV instead of reading landmarks")
    a.add_argument("--margin", type=float, default=0.2, help="--detect: the face box grown by this much per side")

    d = commands.add_parser("demo", help="teaching demos")
    demos = d.add_subparsers(dest="demo", metavar="DEMO", required=True)
    dc = demos.add_parser("collapse", help="why the triplet loss needs its margin (Olivetti, ~1 minute)",
                          description="Train the reference CNN on Olivetti people 0-29 three times (alpha = 0, "
                          "alpha = 0.2, alpha = 0 unnormalised) and measure on people 30-39: without a margin the "
                          "embeddings collapse. Writes collapse.png and collapse.json into --out.")
    dc.add_argument("--out", metavar="DIR", default="runs/demo-collapse")
    dc.add_argument("--data", metavar="PATH", help="folder holding olivettifaces.mat")
    dc.add_argument("--fast", action="store_true", help="3 epochs of 8 steps (for tests and a quick look)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    commands = {"train": _train, "validate": _validate, "compare": _compare, "enroll": _enroll,
                "identify": _identify, "cluster": _cluster, "classify": _classify, "embed": _embed, "align": _align,
                "demo": _demo}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        hint = ("continue with `tinyface train --resume --out RUN`" if args.command == "train"
                else "nothing was half-written (outputs are written whole, then renamed into place)")
        print(f"\ntinyface: interrupted; {hint}", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"tinyface: error: {error}", file=sys.stderr)
        return 2


def _check_never_seen(task: dict, split: Split) -> None:
    """Refuse to measure a run on another dataset's pairs when their people include people it was trained on (LFW's
    View 1 training people are most of View 2's, for example)."""
    if not task:
        return
    trained = set(split_from_description(task).training_people.names)
    seen = sorted(trained & set(split.test.names))
    if seen:
        raise ValueError(f"{len(seen)} of the {split.test.num_people} people in these pairs were trained on by this "
                         f"run (e.g. {', '.join(seen[:3])}): accuracy must be measured on people a model never saw")


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out or f"runs/{args.dataset}-seed{args.seed}")
    progress = not args.no_progress
    if args.resume:
        if not has_checkpoint(out) and not fold_folders(out):
            raise FileNotFoundError(f"nothing to resume: {out} has no checkpoint")
    elif has_checkpoint(out) or fold_folders(out):
        raise ValueError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")

    if args.resume and fold_folders(out) and args.dataset != "lfw-view2":
        raise ValueError(f"{out} holds an LFW View 2 run (fold-* folders): resume it with --dataset lfw-view2")
    if args.resume and has_checkpoint(out):  # the saved run decides everything; --steps may only lengthen it
        meta = load_checkpoint(out).meta
        config = TrainConfig.from_dict({**meta["config"], "steps": max(args.steps or 0, meta["config"]["steps"])})
        split = split_from_description(meta["task"])
        report = train_run(split, config, out, resume=True, progress=progress, figures=not args.no_figures)
        print(format_table(report))
        return 0

    channels_default = "reference" if args.dataset == "olivetti" else "lfw"
    config = TrainConfig(
        loss=args.loss, margin=args.margin, people_per_batch=args.people_per_batch,
        images_per_person=args.images_per_person, steps=args.steps or TrainConfig().steps,
        steps_per_epoch=args.steps_per_epoch,
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
        task = checkpoint.meta.get("task", {})
        if args.dataset is not None or args.data is not None:
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
                split.fold = None  # all pairs, ten folds (LFW's own in View 2)
                _check_never_seen(task, split)
        elif task:
            split = split_from_description(task)
        report = measure_run(run, split)[0]
        embeddings = Embedder(checkpoint).embed_images(split.test.images)
        report["open_set"] = _open_set(embeddings, split.test.labels, report["tau"])
        if args.figures:
            _validation_figures(Path(args.figures), embeddings, split, report["tau"])
    if args.json:
        out = json_report(report)
        if "open_set" in report:
            out["open_set"] = report["open_set"]
        print(json.dumps(out, indent=1))
    else:
        print(format_table(report) + _format_open_set(report.get("open_set")))
    if args.figures:
        print(f"figures: {Path(args.figures) / 'projection.png'}, {Path(args.figures) / 'hardest-pairs.png'}")
    return 0


def _open_set(embeddings: np.ndarray, labels: np.ndarray, tau: float) -> list[dict[str, Any]] | None:
    """Open-set identification on the held-out people (half enrolled with one image, half strangers, 10 trials):
    DIR at fixed false alarm rates and at the run's tau; None when the test people cannot be split so."""
    try:
        points = open_set_report(embeddings, labels, rng=0, false_alarm_rates=OPEN_SET_FARS, tau=tau)
    except ValueError:
        return None
    return [{"condition": p.condition, "dir": p.dir_mean, "dir_std": p.dir_std, "false_alarm_rate":
             p.false_alarm_rate, "threshold": p.threshold} for p in points]


def _format_open_set(points: list[dict[str, Any]] | None) -> str:
    if not points:
        return ""
    lines = [f"  {p['condition'] if not p['condition'].startswith('tau') else 'at the run tau':<14} DIR "
             f"{p['dir']:.3f} +- {p['dir_std']:.3f}   false alarms {p['false_alarm_rate']:.3f}   threshold "
             f"{p['threshold']:.3f}" for p in points]
    return ("\nopen-set identification on the test people (half enrolled with one image each, half strangers; "
            "10 trials):\n" + "\n".join(lines))


def _validation_figures(folder: Path, embeddings: np.ndarray, split: Any, tau: float) -> None:
    plot_projection(embeddings, split.test.labels, split.test.names, folder / "projection.png",
                    title=f"{split.dataset} test people")
    test = np.ones(len(split.pairs.same), bool) if split.fold is None else split.pairs.folds == split.fold
    i, j, same = split.pairs.i[test], split.pairs.j[test], split.pairs.same[test]
    plot_hardest_pairs(split.test.images, pair_distances(embeddings, i, j), same, i, j, tau,
                       folder / "hardest-pairs.png")


# -- face tools: thin layers over tinyface.face.compare, .gallery, .eval.clustering, .classify, .embed, .align --------
def _compare(args: argparse.Namespace) -> int:
    if len(args.images) < 2:
        raise ValueError("compare needs at least two images")
    embedder = Embedder.load(args.run)
    _, embeddings = embedder.embed_files(args.images)
    validation, note = None, ""
    if not args.no_confidence:
        try:
            validation = embedder.tau_pairs()
        except (*USER_ERRORS, KeyError) as error:  # the run's data has moved or gone: distances still mean something
            note = f"no confidence: the pairs tau was chosen on cannot be loaded ({error})"
    result = compare(embeddings, embedder.tau, validation)
    names = [str(p) for p in args.images]
    index_pairs = [(a, b) for a in range(len(names)) for b in range(a + 1, len(names))]
    pairs = []
    for a, b in index_pairs:
        same = bool(result.same[a, b])
        c = None if result.confidence is None else float(result.confidence[a, b])
        pairs.append({"image1": names[a], "image2": names[b], "distance": float(result.distances[a, b]),
                      "same": same, "confidence": None if c is None else (c if same else 1 - c)})
    if args.json:
        print(json.dumps({"tau": embedder.tau, "images": names, "distances": result.distances.tolist(),
                          "pairs": pairs, "note": note or None}, indent=1))
        return 0
    short = [f"[{k + 1}]" for k in range(len(names))]
    for label, name in zip(short, names, strict=True):
        print(f"{label:>5} {name}")
    print("squared L2 distances:")
    print(" " * 6 + "".join(f"{label:>8}" for label in short))
    for label, row in zip(short, result.distances, strict=True):
        print(f"{label:>5} " + "".join(f"{d:>8.3f}" for d in row))
    print(f"at tau = {embedder.tau:.3f} (same person when d <= tau):")
    for pair, (a, b) in zip(pairs, index_pairs, strict=True):
        verdict = "same" if pair["same"] else "different"
        confidence = "" if pair["confidence"] is None else f"  confidence {pair['confidence']:.3f}"
        print(f"  {short[a]} {short[b]}  d = {pair['distance']:.3f}  {verdict:<9}{confidence}")
    if note:
        print(note)
    return 0


def _enroll(args: argparse.Namespace) -> int:
    embedder = Embedder.load(args.run)
    faces = list_images(args.folder)
    if not faces.labelled:
        raise ValueError(f"{args.folder} holds images outside person folders; enroll needs the layout "
                         "GALLERY_DIR/<person>/<image>")
    _, embeddings = embedder.embed_files(faces.paths)
    gallery = Gallery(meta=embedder.signature).enroll(embeddings, faces.label_names(), faces.paths)
    gallery.save(args.out)
    print(f"enrolled {len(gallery.names)} people ({len(gallery)} faces) into {args.out}")
    return 0


def _identify(args: argparse.Namespace) -> int:
    embedder = Embedder.load(args.run)
    gallery = Gallery.load(args.gallery)
    embedder.check_signature(gallery.meta, f"gallery {args.gallery}")
    tau = embedder.tau if args.tau is None else args.tau
    _, embeddings = embedder.embed_files(args.images)
    results = gallery.identify(embeddings, tau, by=args.by)
    if args.json:
        print(json.dumps({"tau": tau, "by": args.by, "results": [
            {"image": str(p), "identity": r.name, "distance": r.distance}
            for p, r in zip(args.images, results, strict=True)]}, indent=1))
        return 0
    width = max(len(str(p)) for p in args.images)
    for path, result in zip(args.images, results, strict=True):
        print(f"{str(path):<{width}}  {result.name:<20} d = {result.distance:.3f}")
    known = sum(r.name != UNKNOWN for r in results)
    print(f"{known} of {len(results)} identified among {len(gallery.names)} people at tau = {tau:.3f} "
          f"(distance to a person's {'nearest face' if args.by == 'nearest' else 'mean embedding'})")
    return 0


def _cluster(args: argparse.Namespace) -> int:
    embedder = Embedder.load(args.run)
    faces = list_images(args.folder)
    images, embeddings = embedder.embed_files(faces.paths)
    eps = embedder.tau if args.eps is None else args.eps
    distances = squared_distances(embeddings, embeddings)
    distances = np.maximum((distances + distances.T) / 2, 0)
    np.fill_diagonal(distances, 0)
    if args.method == "dbscan":
        clusters = dbscan(distances, eps, args.min_samples)
    else:
        clusters = chinese_whispers(distances, eps)
    report = cluster_report(clusters, faces.labels if faces.labelled else None)
    if args.figure:
        plot_clusters(images, clusters, args.figure, captions=[f"{p.parent.name}/{p.name}" for p in faces.paths])
    if args.json:
        print(json.dumps({"method": args.method, "eps": eps, "report": report, "clusters": [
            {"image": str(p), "cluster": int(c)} for p, c in zip(faces.paths, clusters, strict=True)]}, indent=1))
        return 0
    for cluster in [*np.unique(clusters[clusters >= 0]), *([NOISE] if np.any(clusters == NOISE) else [])]:
        members = [str(faces.paths[k]) for k in np.flatnonzero(clusters == cluster)]
        print(f"{'noise' if cluster == NOISE else f'cluster {cluster}'} ({len(members)}): " + ", ".join(members))
    line = (f"{report['faces']} faces -> {report['clusters']} clusters ({report['singletons']} singletons, "
            f"{report['noise']} noise, largest {report['largest']}) with {args.method} at d <= {eps:.3f}")
    if "people" in report:
        line += (f"\n{report['people']} people: pairwise precision {report['precision']:.3f}, recall "
                 f"{report['recall']:.3f}, F1 {report['f1']:.3f}")
    print(line)
    if args.figure:
        print(f"figure: {args.figure}")
    return 0


def _classify(args: argparse.Namespace) -> int:
    embedder = Embedder.load(args.run)
    train_faces, test_faces = list_images(args.train), list_images(args.test)
    for faces, option in ((train_faces, "--train"), (test_faces, "--test")):
        if not faces.labelled:
            raise ValueError(f"{option} {faces.paths[0].parent}: every image must sit in a person sub-folder")
    strangers = sorted(set(test_faces.names) - set(train_faces.names))
    if strangers:
        raise ValueError(f"{len(strangers)} test people have no training images: {strangers[:5]}; a classifier "
                         "can only name people it was trained on")
    if args.k > len(train_faces):
        raise ValueError(f"--k {args.k} is more than the {len(train_faces)} training images")
    train_x = embedder.embed_files(train_faces.paths)[1]
    test_x = embedder.embed_files(test_faces.paths)[1]
    train_y, test_y = np.array(train_faces.label_names()), np.array(test_faces.label_names())
    start = time.perf_counter()
    classifiers = {"nearest centroid": NearestCentroid(), f"{args.k}-NN": KNearestNeighbours(args.k),
                   "softmax": SoftmaxClassifier(steps=args.steps)}
    accuracy = {name: clf.fit(train_x, train_y).score(test_x, test_y) for name, clf in classifiers.items()}
    if args.json:
        print(json.dumps({"train_images": len(train_faces), "test_images": len(test_faces),
                          "people": len(train_faces.names), "accuracy": accuracy}, indent=1))
        return 0
    print(f"{len(train_faces.names)} people, {len(train_faces)} training and {len(test_faces)} test images "
          f"(fitted in {time.perf_counter() - start:.1f} s)")
    for name, value in accuracy.items():
        print(f"{name:<18} accuracy {value:.3f}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    embedder = Embedder.load(args.run)
    faces = list_images(args.folder)
    _, embeddings = embedder.embed_files(faces.paths)
    save_embeddings(args.out, embeddings, faces, embedder.signature)
    people = f" of {len(faces.names)} people" if faces.names else ""
    print(f"wrote {len(faces)} embeddings (D={embeddings.shape[1]}){people} to {args.out}")
    if args.figure:
        plot_projection(embeddings, faces.labels, faces.names, args.figure, title=str(args.folder))
        print(f"figure: {args.figure}")
    return 0


def _align(args: argparse.Namespace) -> int:
    if args.size < 8:
        raise ValueError(f"--size must be at least 8 pixels, got {args.size}")
    crops: dict[str, np.ndarray] = {}
    if args.detect:
        if importlib.util.find_spec("cv2") is None:
            raise ValueError("--detect needs OpenCV, which is not installed: pip install opencv-python-headless "
                             "(or give a CSV of landmarks instead)")
        faces = list_images(args.source)
        for path in faces.paths:
            try:
                face = crop_largest_face(read_photo(path), margin=args.margin)
            except NoFaceError:
                raise NoFaceError(f"no face found in {path}; crop it by hand, or give landmarks instead") from None
            resized = resize(_as_batch(face), args.size)[0]
            crops[_output_name(path, Path(args.source))] = _from_batch(resized)
    else:
        source = Path(args.source)
        if source.is_dir():
            raise ValueError(f"{source} is a folder: give a CSV of landmarks, or pass --detect to find faces")
        for name, points in read_landmarks_csv(source).items():
            path = Path(name) if Path(name).is_absolute() else source.parent / name
            crops[_output_name(path, source.parent)] = align_face(read_photo(path), points, args.size)
    write_image_folder(crops, args.out)
    print(f"wrote {len(crops)} aligned {args.size}x{args.size} face(s) to {args.out}")
    return 0


def _output_name(path: Path, root: Path) -> str:
    """person/image.png for a file under root, else image.png."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        relative = Path(path.name)
    return str(relative.with_suffix(".png"))


def _as_batch(image: np.ndarray) -> np.ndarray:
    return image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]


def _from_batch(image: np.ndarray) -> np.ndarray:
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)


def _demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    config = CollapseConfig(epochs=3, steps_per_epoch=8) if args.fast else CollapseConfig()
    faces = load_olivetti(args.data)
    train, held_out = faces.people(range(30)), faces.people(range(30, 40))
    print(f"training the reference CNN on Olivetti people 0-29 three times ({config.epochs} epochs of "
          f"{config.steps_per_epoch} steps each), measuring on people 30-39")
    histories = run_collapse(train, config, log=print, held_out=held_out)
    figure = atomic_write(out / "collapse.png",
                          lambda file: plot_collapse(histories, held_out.labels, file))  # a file object: PNG
    summary = {"config": {k: v for k, v in asdict(config).items() if k != "variants"},
               "variants": [h.summary() for h in histories]}
    atomic_write(out / "collapse.json", lambda file: file.write(json.dumps(summary, indent=1).encode()))
    print(f"wrote {figure} and {out / 'collapse.json'}")
    return 0


def _data(args: argparse.Namespace) -> dict[str, str]:
    return {"data": args.data} if args.data is not None else {}


if __name__ == "__main__":
    sys.exit(main())
