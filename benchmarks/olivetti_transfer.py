"""A model trained on LFW, never shown an Olivetti face, measured on the Olivetti faces (another camera, 1992).

Two rows per embedding: the ten people `tinyface validate RUN --dataset olivetti` tests (30-39: 450 matched + 450
mismatched pairs) and all 40 people (1,800 + 1,800 pairs), for the run's model (with and without test-time
flipping), raw pixels, and Eigenfaces fit on LFW View 1's training faces (so that no baseline sees an Olivetti face
before the test either). Usage:

    python benchmarks/olivetti_transfer.py [RUN] --data DATA_DIR

RUN defaults to the model that comes with tinyface; DATA_DIR holds olivettifaces.mat and lfw/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tinyface.data import load_olivetti, resize
from tinyface.eval import Eigenfaces, pairs_from_labels, pixel_embeddings
from tinyface.face.embedder import Embedder
from tinyface.pretrained import pretrained_run
from tinyface.training.measure import Pairs, verification_metrics
from tinyface.training.split import load_split

COLUMNS = ("accuracy", "accuracy_std", "auc", "eer", "val_at_far", "one_shot_rank1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", help="a run folder (default: the bundled model)")
    parser.add_argument("--data", required=True, help="folder holding olivettifaces.mat and lfw/")
    args = parser.parse_args()
    embedder = Embedder.load(args.run or pretrained_run())
    size = int(embedder.preprocessing["image_size"])
    faces = load_olivetti(args.data, download=False)
    images = faces.images if faces.images.shape[-1] == size else resize(faces.images, size)
    lfw = load_split("lfw-view1", Path(args.data) / "lfw", validation_people=0, image_size=size, grayscale=True)
    eigenfaces = Eigenfaces(100).fit(lfw.train.images[np.random.default_rng(0).choice(len(lfw.train), 2000, False)])
    flipped = Embedder(embedder.checkpoint, flip=True)
    embeddings = {"tinyface": embedder.embed_images(images), "  + flip": flipped.embed_images(images),
                  "pixels": pixel_embeddings(images), "eigenfaces (LFW)": eigenfaces.transform(images)}
    print(f"{'':<18} {'people':>7} " + " ".join(f"{c:>13}" for c in COLUMNS))
    for people, keep in (("30-39", faces.labels >= 30), ("all 40", np.ones(len(faces.labels), bool))):
        labels = faces.labels[keep]
        i, j, same = pairs_from_labels(labels, rng=0)
        for name, e in embeddings.items():
            m = verification_metrics(e[keep], labels, Pairs(i, j, same))
            print(f"{name:<18} {people:>7} " + " ".join(f"{m[c]:>13.3f}" for c in COLUMNS))


if __name__ == "__main__":
    main()
