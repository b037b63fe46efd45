"""The face tools: what to do with a trained run, as thin layers over tinyface.face and tinyface.eval.

    compare   1:1   squared L2 distances, same / different at the run's tau (face.compare)
    enroll    a gallery of known people (face.gallery)
    identify  1:K   the nearest enrolled person, or unknown (face.gallery)
    cluster   N:N   Chinese whispers or DBSCAN on the distances (eval.clustering)
    classify  nearest centroid, k-NN and softmax on embeddings (face.classify)
    embed     embeddings, labels and paths of a folder as .npz (face.embedder)
    align     face crops from 5 landmarks, or from OpenCV's detector (face.align)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from tinyface.cli.errors import USER_ERRORS
from tinyface.cli.terminal import printable
from tinyface.data import resize
from tinyface.data.folders import read_photo, write_image_folder
from tinyface.eval import NOISE, chinese_whispers, cluster_report, dbscan, squared_distances, symmetrize
from tinyface.face.align import NoFaceError, align_face, crop_largest_face, face_detector, read_landmarks_csv
from tinyface.face.classify import KNearestNeighbours, NearestCentroid, SoftmaxClassifier
from tinyface.face.compare import compare
from tinyface.face.embedder import Embedder, list_images, save_embeddings
from tinyface.face.gallery import UNKNOWN, Gallery
from tinyface.files import check_output
from tinyface.pretrained import pretrained_run
from tinyface.training.figures import plot_clusters, plot_projection

RUN_HELP = "a run folder written by `tinyface train` (default: the model that comes with tinyface)"
STORED_PATHS = ("The file records the absolute path of the run folder, and each image's path as given (absolute "
                "when the folder was given so): mind them before you hand the file to others.")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """How images reach the model: the flags shared by every command that embeds image files."""
    p.add_argument("--aligned", action="store_true",
                   help="the images are already face crops: no centre crop (default: the central part of each "
                        "image is kept as in the run's training images, e.g. 0.4 of an LFW-style frame)")
    p.add_argument("--detect", action="store_true",
                   help="find the largest face in each image with OpenCV's detector (pip install "
                        "'opencv-python-headless<5') and frame it as the run's training faces were: for photos of "
                        "any size or framing")
    p.add_argument("--flip", action="store_true",
                   help="test-time flipping: each image and its mirror embedded, summed and renormalised (the "
                        "run's tau for flipped embeddings is used)")


def _add_force_option(p: argparse.ArgumentParser) -> None:
    """--force: the flag of every command that would otherwise refuse to replace an existing output."""
    p.add_argument("--force", action="store_true", help="replace output files that already exist")


def _embedder(args: argparse.Namespace) -> Embedder:
    """The Embedder of the RUN given (or of the bundled model), with --aligned, --detect and --flip."""
    return Embedder.load(args.run if args.run is not None else pretrained_run(), aligned=args.aligned,
                         flip=args.flip, detect=args.detect)


def _run_then(args: argparse.Namespace, names: tuple[str, ...], many: str | None = None) -> None:
    """Split the positional arguments into an optional leading RUN folder, one value for each of `names`, and
    (when `many` is given) the rest as a list: RUN is there when the first argument is a folder that holds
    run.json, or when there are more arguments than the others need."""
    items = list(args.items)
    needed = len(names) + (1 if many else 0)
    first = Path(items[0]) if items else None
    run_given = first is not None and first.is_dir() and (len(items) > needed or (first / "run.json").is_file())
    args.run = items.pop(0) if run_given else None
    if len(items) < needed or (many is None and len(items) > needed):
        expected = " ".join([n.upper() for n in names] + ([f"{many.upper()} ..."] if many else []))
        raise ValueError(f"expected [RUN] {expected}, got {' '.join(args.items)}")
    for name in names:
        setattr(args, name, items.pop(0))
    if many:
        setattr(args, many, items)


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add the face tools (compare, enroll, identify, cluster, classify, embed, align) to `tinyface`."""
    _add_compare(commands)
    _add_enroll(commands)
    _add_identify(commands)
    _add_cluster(commands)
    _add_classify(commands)
    _add_embed(commands)
    _add_align(commands)


def _add_compare(commands: argparse._SubParsersAction) -> None:
    """`tinyface compare RUN IMAGE IMAGE ...`: distances, and same / different at tau with a confidence."""
    p = commands.add_parser("compare", help="distances between face images, and same / different at the run's tau",
                            description="Print the matrix of squared L2 distances between the images and, for each "
                            "pair, same or different at the run's tau with the confidence the run's validation "
                            "pairs support: c(d) = FRR(d) / (FRR(d) + FAR(d)) for same, 1 - c(d) for different.")
    p.add_argument("items", metavar="[RUN] IMAGE", nargs="+", help=f"two or more image files, after RUN: {RUN_HELP}")
    p.add_argument("--no-confidence", action="store_true", help="skip the confidence (runs of tinyface 0.1 reload "
                                                                 "their data for it)")
    _add_model_options(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    _run_then(args, (), many="images")
    if len(args.images) < 2:
        raise ValueError("compare needs at least two images")
    embedder = _embedder(args)
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


def _add_enroll(commands: argparse._SubParsersAction) -> None:
    """`tinyface enroll RUN GALLERY_DIR -o GALLERY`: a gallery of the people in a folder."""
    p = commands.add_parser("enroll", help="enroll a folder of people into a gallery for `tinyface identify`",
                            description="Embed GALLERY_DIR/<person>/<image> with the run's model and write a gallery "
                            "(.npz, written atomically, readable by you only) recording the run's architecture and "
                            f"weights. {STORED_PATHS}")
    p.add_argument("items", metavar="[RUN] GALLERY_DIR", nargs="+",
                   help=f"a folder with one sub-folder of images per person, after RUN: {RUN_HELP}")
    p.add_argument("-o", "--out", metavar="GALLERY", required=True, help="the gallery file to write (.npz)")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--append", action="store_true", help="add the faces to the existing gallery GALLERY")
    existing.add_argument("--force", action="store_true", help="replace an existing gallery GALLERY")
    _add_model_options(p)
    p.set_defaults(handler=_enroll)


def _enroll(args: argparse.Namespace) -> int:
    _run_then(args, ("folder",))
    out = check_output(args.out, force=args.force or args.append)
    embedder = _embedder(args)
    gallery = Gallery(meta=embedder.signature)
    if args.append and out.exists():
        gallery = Gallery.load(out)
        embedder.check_signature(gallery.meta, f"gallery {out}")
    faces = list_images(args.folder)
    if not faces.labelled:
        raise ValueError(f"{args.folder} holds images outside person folders; enroll needs the layout "
                         "GALLERY_DIR/<person>/<image>")
    _, embeddings = embedder.embed_files(faces.paths)
    gallery = gallery.enroll(embeddings, faces.label_names(), faces.paths)
    gallery.save(out)
    print(f"enrolled {len(faces.names)} people ({len(faces)} faces) into {out}" +
          (f", which now holds {len(gallery.names)} people ({len(gallery)} faces)" if args.append else ""))
    return 0


def _add_identify(commands: argparse._SubParsersAction) -> None:
    """`tinyface identify RUN GALLERY IMAGE ...`: the nearest enrolled person, or unknown."""
    p = commands.add_parser("identify", help="who is in each image: the nearest enrolled person, or unknown",
                            description="1:K identification with open-set rejection: each image is given the "
                            "nearest enrolled person, or 'unknown' when that person is farther than tau.")
    p.add_argument("items", metavar="[RUN] GALLERY IMAGE", nargs="+",
                   help="a gallery written by `tinyface enroll` with this run (or with the old run it was trained "
                        f"--compatible-with), then image files; RUN: {RUN_HELP}")
    p.add_argument("--by", choices=("nearest", "mean"), default="nearest",
                   help="distance to a person: to their nearest enrolled face (default) or their mean embedding")
    p.add_argument("--tau", type=float, help="rejection threshold (default: the run's tau; for a gallery of the old "
                                             "run it is compatible with, the tau its training chose on mixed pairs)")
    p.add_argument("--json", action="store_true")
    _add_model_options(p)
    p.set_defaults(handler=_identify)


def _identify(args: argparse.Namespace) -> int:
    _run_then(args, ("gallery",), many="images")
    embedder = _embedder(args)
    gallery = Gallery.load(args.gallery)
    embedder.check_signature(gallery.meta, f"gallery {args.gallery}", old_version_ok=True)  # or a harmonic v2
    tau = embedder.threshold_for(gallery.meta) if args.tau is None else args.tau
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


def _add_cluster(commands: argparse._SubParsersAction) -> None:
    """`tinyface cluster RUN DIR`: groups of faces linked within tau."""
    p = commands.add_parser("cluster", help="group unlabelled faces by their distances (N:N)",
                            description="Cluster the images of DIR by their squared L2 distances (Chinese whispers "
                            "or DBSCAN, both linking faces within tau); with person sub-folders, also report pairwise "
                            "precision and recall and the number of clusters against the number of people.")
    p.add_argument("items", metavar="[RUN] DIR", nargs="+",
                   help=f"images, loose or in one sub-folder per person, after RUN: {RUN_HELP}")
    p.add_argument("--method", choices=("chinese-whispers", "dbscan"), default="chinese-whispers")
    p.add_argument("--eps", type=float, help="link distance (default: the run's tau)")
    p.add_argument("--min-samples", type=int, default=2, help="DBSCAN: neighbours (itself included) of a core face")
    p.add_argument("--figure", metavar="PNG", help="write the gallery of each cluster as a figure")
    _add_force_option(p)
    p.add_argument("--json", action="store_true")
    _add_model_options(p)
    p.set_defaults(handler=_cluster)


def _cluster(args: argparse.Namespace) -> int:
    _run_then(args, ("folder",))
    if args.eps is not None and not 0 <= args.eps < float("inf"):
        raise ValueError(f"--eps is a squared L2 distance >= 0, got {args.eps}")
    if args.min_samples < 1:
        raise ValueError(f"--min-samples counts faces (itself included), so it is at least 1, got {args.min_samples}")
    if args.figure:
        check_output(args.figure, args.force)
    embedder = _embedder(args)
    faces = list_images(args.folder)
    images, embeddings = embedder.embed_files(faces.paths)
    eps = embedder.tau if args.eps is None else args.eps
    distances = symmetrize(squared_distances(embeddings, embeddings))
    if args.method == "dbscan":
        clusters = dbscan(distances, eps, args.min_samples)
    else:
        clusters = chinese_whispers(distances, eps)
    report = cluster_report(clusters, faces.labels if faces.labelled else None)
    if args.figure:
        captions = [printable(f"{p.parent.name}/{p.name}") for p in faces.paths]
        plot_clusters(images, clusters, args.figure, captions=captions)
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


def _add_classify(commands: argparse._SubParsersAction) -> None:
    """`tinyface classify RUN --train DIR --test DIR`: three classifiers on the embeddings."""
    p = commands.add_parser("classify", help="classifiers on embeddings: nearest centroid, k-NN, softmax",
                            description="Fit nearest centroid, k-nearest neighbours and a linear softmax classifier "
                            "(trained with tinyface) on the embeddings of --train, and print their accuracy on --test. "
                            "Both folders hold one sub-folder per person; test people must be training people.")
    p.add_argument("run", metavar="RUN", nargs="?", help=RUN_HELP)
    p.add_argument("--train", metavar="DIR", required=True)
    p.add_argument("--test", metavar="DIR", required=True)
    p.add_argument("--k", type=int, default=5, help="neighbours of k-NN (at most the training images)")
    p.add_argument("--steps", type=int, default=300, help="full-batch Adam steps of the softmax classifier")
    p.add_argument("--json", action="store_true")
    _add_model_options(p)
    p.set_defaults(handler=_classify)


def _classify(args: argparse.Namespace) -> int:
    embedder = _embedder(args)
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


def _add_embed(commands: argparse._SubParsersAction) -> None:
    """`tinyface embed RUN DIR -o NPZ`: the embeddings of a folder."""
    p = commands.add_parser("embed", help="write embeddings, labels and file paths of a folder as .npz",
                            description="Embed every image of DIR and write embeddings (N, D), labels (N,; -1 for "
                            "loose images), names, paths and the run's signature to an .npz (atomically, readable by "
                            f"you only). {STORED_PATHS}")
    p.add_argument("items", metavar="[RUN] DIR", nargs="+", help=f"a folder of images, after RUN: {RUN_HELP}")
    p.add_argument("-o", "--out", metavar="NPZ", required=True)
    _add_model_options(p)
    p.add_argument("--figure", metavar="PNG", help="also write the 2-D projection of the embeddings by person")
    _add_force_option(p)
    p.set_defaults(handler=_embed)


def _embed(args: argparse.Namespace) -> int:
    _run_then(args, ("folder",))
    for output in (args.out, args.figure):
        if output:
            check_output(output, args.force)
    embedder = _embedder(args)
    faces = list_images(args.folder)
    _, embeddings = embedder.embed_files(faces.paths)
    save_embeddings(args.out, embeddings, faces, embedder.signature)
    people = f" of {len(faces.names)} people" if faces.names else ""
    print(f"wrote {len(faces)} embeddings (D={embeddings.shape[1]}){people} to {args.out}")
    if args.figure:
        plot_projection(embeddings, faces.labels, [printable(n) for n in faces.names], args.figure,
                        title=printable(str(args.folder)))
        print(f"figure: {args.figure}")
    return 0


def _add_align(commands: argparse._SubParsersAction) -> None:
    """`tinyface align SOURCE -o OUT_DIR`: aligned crops from landmarks, or from detected faces."""
    p = commands.add_parser("align", help="aligned face crops from landmarks (or, with OpenCV, detected faces)",
                            description="From a CSV of rows `image, x1, y1, ..., x5, y5` (eyes, nose tip, mouth "
                            "corners; paths relative to the CSV), warp each face onto the canonical 5-point template "
                            "and write the crops as PNG under OUT_DIR at the same relative paths. With --detect "
                            "(needs OpenCV), SOURCE is a folder of images instead, and the largest face found by "
                            "OpenCV's Haar cascade is cropped and resized. OUT_DIR appears whole or not at all.")
    p.add_argument("source", metavar="SOURCE", help="landmarks CSV (or, with --detect, an image folder)")
    p.add_argument("-o", "--out", metavar="OUT_DIR", required=True)
    p.add_argument("--size", type=int, default=112, help="side of the output crops in pixels (default 112)")
    p.add_argument("--detect", action="store_true", help="detect faces with OpenCV instead of reading landmarks")
    p.add_argument("--margin", type=float, default=0.2, help="--detect: the face box grown by this much per side")
    p.set_defaults(handler=_align)


def _align(args: argparse.Namespace) -> int:
    if args.size < 8:
        raise ValueError(f"--size must be at least 8 pixels, got {args.size}")
    if not 0 <= args.margin < float("inf"):
        raise ValueError(f"--margin is a fraction of the face box's side >= 0, got {args.margin}")
    if args.detect:
        face_detector()  # raises, saying how to install OpenCV, before any image is read
        paths = list_images(args.source).paths
        names = _output_names(paths, Path(args.source))
        crops = {name: _detected_face(path, args.size, args.margin) for name, path in zip(names, paths, strict=True)}
    else:
        source = Path(args.source)
        if source.is_dir():
            raise ValueError(f"{source} is a folder: give a CSV of landmarks, or pass --detect to find faces")
        rows = read_landmarks_csv(source)
        paths = [Path(name) if Path(name).is_absolute() else source.parent / name for name in rows]
        names = _output_names(paths, source.parent)
        crops = {name: align_face(read_photo(path), points, args.size)
                 for name, path, points in zip(names, paths, rows.values(), strict=True)}
    write_image_folder(crops, args.out)
    print(f"wrote {len(crops)} aligned {args.size}x{args.size} face(s) to {args.out}")
    return 0


def _detected_face(path: Path, size: int, margin: float) -> np.ndarray:
    """The largest face OpenCV finds in the photo, its box grown by `margin`, resized to size x size."""
    try:
        face = crop_largest_face(read_photo(path), margin=margin)
    except NoFaceError:
        raise NoFaceError(f"no face found in {path}; crop it by hand, or give landmarks instead") from None
    return _from_batch(resize(_as_batch(face), size)[0])


def _output_names(paths: list[Path], root: Path) -> list[str]:
    """The output name of each input (_output_name); refused, naming the inputs, when two inputs would share one."""
    names = [_output_name(path, root) for path in paths]
    inputs: dict[str, list[str]] = {}
    for name, path in zip(names, paths, strict=True):
        inputs.setdefault(name, []).append(str(path))
    collisions = {name: sources for name, sources in inputs.items() if len(sources) > 1}
    if collisions:
        listed = "; ".join(f"{' and '.join(sources)} -> {name}" for name, sources in list(collisions.items())[:5])
        raise ValueError(f"{len(collisions)} output names collide ({listed}): every crop is written as "
                         f"<path under {root}>.png, so rename those inputs (or move them under {root})")
    return names


def _output_name(path: Path, root: Path) -> str:
    """person/image.png for a file under root, else image.png. The paths are made absolute without following
    symbolic links (a linked photo keeps the person folder it is listed in; "a/../b" still means b)."""
    try:
        relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        relative = Path(path.name)
    return str(relative.with_suffix(".png"))


def _as_batch(image: np.ndarray) -> np.ndarray:
    return image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]


def _from_batch(image: np.ndarray) -> np.ndarray:
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
