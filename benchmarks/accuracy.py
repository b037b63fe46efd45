"""Accuracy of the reference CNN trained from random weights on the Olivetti faces, over seeds, beside the baselines
and PyTorch's numbers.

Trains as `tinyface train --init none --model reference --image-size 64 --lr 1e-3` does (semi-hard, margin 0.2,
10 people x 10 images, Adam 1e-3, prewhitening, flip + shift augmentation, 300 steps) on people 0-29 and measures
it on people 30-39: all 450 matched + 450 mismatched pairs. Prints one row per seed, then mean +- std over seeds. Usage:

    TINYFACE_DATA=/path/to/data python benchmarks/accuracy.py [--seeds 0 1 2] [--steps 300] [--validation-people 5]

`--validation-people 0` trains on all 30 people, as the PyTorch measurement did (tau then comes from their pairs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinyface.training.measure import baseline_metrics, embed, verification_metrics
from tinyface.training.split import load_split
from tinyface.training.train import TrainConfig, train

# PyTorch, the same CNN and recipe, 300 steps (73 s) on this kind of machine, 3 seeds
PYTORCH = {"accuracy": 0.904, "accuracy_std": 0.006, "auc": 0.953, "eer": 0.098, "one_shot_rank1": 0.844}
COLUMNS = ("accuracy", "auc", "eer", "val_at_far", "one_shot_rank1")


def row(name: str, metrics: dict, seconds: float | None = None) -> str:
    cells = " ".join(f"{metrics.get(k, float('nan')):>9.3f}" for k in COLUMNS)
    return f"{name:<22} {cells} {'' if seconds is None else f'{seconds:>8.0f}'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--validation-people", type=int, default=5)
    parser.add_argument("--data", help="folder holding olivettifaces.mat (default: $TINYFACE_DATA)")
    args = parser.parse_args()

    split = load_split("olivetti", args.data, validation_people=args.validation_people)
    print(f"Olivetti: {split.train.num_people} training people, "
          f"{0 if split.validation is None else split.validation.num_people} validation, "
          f"{split.test.num_people} test people, {len(split.pairs.i)} test pairs\n")
    print(f"{'':<22} " + " ".join(f"{c[:9]:>9}" for c in COLUMNS) + f" {'seconds':>8}")
    results = []
    for seed in args.seeds:
        start = time.perf_counter()
        result = train(TrainConfig(steps=args.steps, seed=seed), split.train, split.validation, progress=False,
                       log=lambda line: None)
        seconds = time.perf_counter() - start
        metrics = verification_metrics(embed(result.model, split.test.images, result.preprocessing),
                                       split.test.labels, split.pairs)
        results.append((metrics, seconds))
        print(row(f"tinyface seed {seed}", metrics, seconds), flush=True)
    mean = {k: float(np.mean([m[k] for m, _ in results])) for k in COLUMNS}
    std = float(np.std([m["accuracy"] for m, _ in results]))
    print(row("tinyface mean", mean, float(np.mean([s for _, s in results]))) + f"   accuracy std over seeds {std:.3f}")
    print(row("PyTorch (reference)", PYTORCH, 73) + f"   accuracy std over seeds {PYTORCH['accuracy_std']:.3f}")
    for name, metrics in baseline_metrics(split.training_people, split.test, split.pairs).items():
        print(row(name, metrics))


if __name__ == "__main__":
    main()
