"""Images per second of a whole training loop: `tinyface train`'s loop beside a PyTorch loop with the same recipe.

Both train the default LFW recipe's network (the lfw CNN, widths 32-64-128-256-256) on the same LFW View 1 training
images (grey 48 x 48, the central 0.4 of the frame) with the same batches (32 people x 4 images from tinyface's P x
K sampler), the same augmentation (prewhitening, a random mirror and a shift of up to 4 pixels, in NumPy), semi-hard
triplets with margin 0.2 (PyTorch: the sort-based version of benchmarks/hotpath.py) and Adam 1e-3; the same process,
the same thread count, one after the other, each `--steps` steps after steps that are not counted (PyTorch:
`--warmup`; tinyface: one epoch of `--steps`, for Numba's compilation). Prints images/s and the ratio. Usage:

    python benchmarks/train_throughput.py --data LFW_ROOT [--steps 60] [--warmup 5] [--repeats 2]
"""

from __future__ import annotations  # noqa: I001 - tinyface is imported before NumPy, see tinyface/runtime.py

import tinyface  # noqa: F401

import argparse
import time

import numpy as np

from hotpath import torch_semihard_sorted
from tinyface.data import PKSampler
from tinyface.runtime import keep_freed_memory
from tinyface.training.split import load_split
from tinyface.training.train import ARCHITECTURES, TrainConfig, train, training_batch


def torch_images_per_second(data, config: TrainConfig, warmup: int) -> float:
    import torch
    from torch import nn

    def block(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + [nn.MaxPool2d(2)] if pool else layers

    torch.manual_seed(0)
    widths = (1, *ARCHITECTURES[config.model])
    blocks = [layer for k in range(1, len(widths)) for layer in block(widths[k - 1], widths[k], k < len(widths) - 1)]
    model = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], 128))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(1)
    sampler = PKSampler(data.labels, config.people_per_batch, config.images_per_person, rng)
    steps = config.steps - warmup
    start = time.perf_counter()
    for k in range(config.steps):
        if k == warmup:
            start = time.perf_counter()
        batch = sampler.sample()
        x = torch.from_numpy(training_batch(data.images[batch], config, rng))
        labels = torch.from_numpy(data.labels[batch])
        optimizer.zero_grad()
        loss = torch_semihard_sorted(nn.functional.normalize(model(x), dim=-1), labels)
        loss.backward()
        optimizer.step()
    return steps * config.people_per_batch * config.images_per_person / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the LFW folder")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    keep_freed_memory()  # one process: it applies to both loops
    import torch

    data = load_split("lfw-view1", args.data, validation_people=0, grayscale=True, image_size=48).train
    recipe = {"model": "lfw", "image_size": 48, "people_per_batch": 32, "images_per_person": 4}
    config = TrainConfig(**recipe, steps=args.warmup + args.steps)
    # tinyface: a first epoch warms up (compilation, caches; its images/s are not used), the second is measured
    warm = TrainConfig(**recipe, steps=2 * args.steps, steps_per_epoch=args.steps)
    ours, theirs = [], []
    for _ in range(args.repeats):
        result = train(warm, data, progress=False, log=lambda line: None)
        ours.append(result.history[-1]["images_per_second"])
        theirs.append(torch_images_per_second(data, config, args.warmup))
    best_ours, best_theirs = max(ours), max(theirs)
    print(f"training loop, lfw CNN, 32 x 4 grey 48 x 48 LFW faces, semi-hard, Adam; {args.steps} steps, "
          f"best of {args.repeats}")
    print(f"{'implementation':<36} {'images/s':>9} {'vs torch':>9}")
    print(f"{'tinyface train':<36} {best_ours:9.0f} {best_ours / best_theirs:8.2f}x")
    print(f"{f'torch {torch.__version__} ({torch.get_num_threads()} threads)':<36} {best_theirs:9.0f} {1:8.2f}x")


if __name__ == "__main__":
    main()
