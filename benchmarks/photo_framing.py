"""Photos framed unlike the training faces: the centre crop, --detect and --aligned on LFW View 1's test pairs.

A run trained on LFW keeps the central 0.4 of each 250 px frame, where LFW put the face. A phone photo does not
put the face there. This script measures the bundled model (or RUN) on the 1,000 View 1 test pairs three ways:

    LFW frames       the files as LFW gives them
    recomposed       each frame shrunk or grown to 250-400 px and pasted at a random place on an 800 x 600 canvas
                     of its mean colour (a face filling 15-25% of the photo, off-centre, as in a snapshot)
    tight crops      the central 0.4 of each frame only (a face crop from another collection)

and embeds each as `tinyface embed` would: with the default centre crop, with --detect (OpenCV's detector, the
face framed as in training) and with --aligned (no crop). 10-fold accuracy and AUC, as `tinyface validate`.
Usage (needs OpenCV 4: pip install 'opencv-python-headless<5'):

    python benchmarks/photo_framing.py [RUN] --data DATA_DIR/lfw [--pairs N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from tinyface.data.lfw import pair_paths, read_pairs
from tinyface.eval import pair_distances, verification_report
from tinyface.face.align import NoFaceError
from tinyface.face.embedder import Embedder
from tinyface.pretrained import pretrained_run


def recompose(frame: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An 800 x 600 'snapshot' holding the frame at a random size (250-400 px) and place."""
    side = int(rng.integers(250, 401))
    canvas = Image.new("RGB", (800, 600), tuple(int(c) for c in np.asarray(frame).reshape(-1, 3).mean(axis=0)))
    canvas.paste(frame.resize((side, side), Image.Resampling.BILINEAR),
                 (int(rng.integers(0, 800 - side + 1)), int(rng.integers(0, 600 - side + 1))))
    return canvas


def tight_crop(frame: Image.Image) -> Image.Image:
    """The central 100 px of a 250 px frame: the face and little else."""
    return frame.crop((75, 75, 175, 175))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="a run folder (default: the bundled model)")
    parser.add_argument("--data", required=True, help="the LFW folder (pairsDevTest.txt and the images)")
    parser.add_argument("--pairs", type=int, default=1000, help="use the first N/2 matched and mismatched pairs")
    args = parser.parse_args()
    pairs = read_pairs(Path(args.data) / "pairsDevTest.txt")
    matched, mismatched = [p for p in pairs if p.same], [p for p in pairs if not p.same]
    pairs = matched[: args.pairs // 2] + mismatched[: args.pairs // 2]
    paths = pair_paths(pairs, args.data)
    files = sorted({p for both in paths for p in both})
    index = {path: k for k, path in enumerate(files)}
    i = np.array([index[a] for a, _ in paths])
    j = np.array([index[b] for _, b in paths])
    same = np.array([p.same for p in pairs])
    checkpoint = Embedder.load(args.run or pretrained_run()).checkpoint
    ways = {"centre crop": Embedder(checkpoint), "--detect": Embedder(checkpoint, detect=True),
            "--aligned": Embedder(checkpoint, aligned=True)}
    rng = np.random.default_rng(0)
    print(f"{len(pairs)} View 1 test pairs, {len(files)} images; run {checkpoint.folder}")
    print(f"{'photos':<14} {'embedded with':<14} {'accuracy':>9} {'+-':>6} {'auc':>6} {'no face found':>14}")
    with tempfile.TemporaryDirectory() as scratch:
        variants = {"LFW frames": files}
        for name, change in (("recomposed", lambda f: recompose(f, rng)), ("tight crops", tight_crop)):
            folder = Path(scratch) / name.replace(" ", "-")
            folder.mkdir()
            variants[name] = []
            for k, path in enumerate(files):
                with Image.open(path) as frame:
                    change(frame.convert("RGB")).save(folder / f"{k:05d}.jpg", quality=95)
                variants[name].append(folder / f"{k:05d}.jpg")
        for photos, variant in variants.items():
            for way, embedder in ways.items():
                embeddings, missed = embed_all(embedder, variant)
                m = verification_report(pair_distances(embeddings, i, j), same)
                print(f"{photos:<14} {way:<14} {m['accuracy']:>9.3f} {m['accuracy_std']:>6.3f} {m['auc']:>6.3f} "
                      f"{missed:>14d}")


def embed_all(embedder: Embedder, paths: list[Path]) -> tuple[np.ndarray, int]:
    """Embeddings of every file; with --detect, a file where no face is found is centre-cropped instead
    (and counted), as a user would crop that photo by hand."""
    if not embedder.detect:
        return embedder.embed_files(paths)[1], 0
    fallback = Embedder(embedder.checkpoint)
    images, missed = [], 0
    for path in paths:
        try:
            images.append(embedder.read([path]))
        except NoFaceError:
            images.append(fallback.read([path]))
            missed += 1
    return embedder.embed_images(np.concatenate(images)), missed


if __name__ == "__main__":
    main()
