"""Images per second of a whole training loop: `tinyface train`'s loop beside a PyTorch loop with the same recipe,
taking turns.

Both train the default LFW recipe's network (the lfw CNN, widths 32-64-128-256-256) on the same LFW View 1 training
images (grey 48 x 48, the central 0.4 of the frame) with the same batches (32 people x 4 images from tinyface's P x
K sampler), the same augmentation (prewhitening, a random mirror and a shift of up to 4 pixels, in NumPy), semi-hard
triplets with margin 0.2 (PyTorch: the sort-based version of benchmarks/hotpath.py) and AdamW 1e-3 (decoupled weight
decay 0.2), in the same process with the same thread count. They take turns, so that a busy machine slows both
alike: after each epoch of `--steps` steps of `tinyface.training.train` (its images/s leave out the measurement on
held-out pairs that ends an epoch), the PyTorch loop runs as many steps. The first turn of each warms up (Numba's
compilation, caches) and is not counted. Prints the median images/s of each over the turns and the median of the
per-turn ratios. Usage:

    python benchmarks/train_throughput.py --data LFW_ROOT [--steps 10] [--turns 6]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from hotpath import torch_semihard_sorted

from tinyface.data import PKSampler
from tinyface.runtime import keep_freed_memory
from tinyface.training.split import load_split
from tinyface.training.train import ARCHITECTURES, TrainConfig, train, training_batch

RECIPE = {"model": "lfw", "image_size": 48, "people_per_batch": 32, "images_per_person": 4, "optimizer": "adamw",
          "weight_decay": 0.2}


def torch_loop(data, config: TrainConfig) -> Callable[[int], float]:
    """The PyTorch loop, ready to run: `run(steps)` trains that many more steps and returns their images/s."""
    import torch
    from torch import nn

    def block(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + [nn.MaxPool2d(2)] if pool else layers

    torch.manual_seed(0)
    widths = (1, *ARCHITECTURES[config.model])
    blocks = [layer for k in range(1, len(widths)) for layer in block(widths[k - 1], widths[k], k < len(widths) - 1)]
    model = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], 128))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(1)
    sampler = PKSampler(data.labels, config.people_per_batch, config.images_per_person, rng)

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            batch = sampler.sample()
            x = torch.from_numpy(training_batch(data.images[batch], config, rng))
            labels = torch.from_numpy(data.labels[batch])
            optimizer.zero_grad()
            loss = torch_semihard_sorted(nn.functional.normalize(model(x), dim=-1), labels)
            loss.backward()
            optimizer.step()
        return steps * config.people_per_batch * config.images_per_person / (time.perf_counter() - start)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the LFW folder")
    parser.add_argument("--steps", type=int, default=10, help="steps per turn")
    parser.add_argument("--turns", type=int, default=6, help="turns of each, after the warm-up turn")
    args = parser.parse_args()
    keep_freed_memory()  # one process: it applies to both loops
    import torch

    data = load_split("lfw-view1", args.data, validation_people=0, grayscale=True, image_size=48).train
    config = TrainConfig(**RECIPE, steps=(args.turns + 1) * args.steps, steps_per_epoch=args.steps)
    theirs = torch_loop(data, config)
    ours, their_rates = [], []

    def take_turn(record: dict) -> None:  # after each tinyface epoch: as many PyTorch steps
        ours.append(record["images_per_second"])
        their_rates.append(theirs(args.steps))

    train(config, data, progress=False, log=lambda line: None, callbacks=[take_turn])
    ours, their_rates = np.array(ours[1:]), np.array(their_rates[1:])  # the first turn warmed up
    ratio = float(np.median(ours / their_rates))
    print(f"training loop, lfw CNN, 32 x 4 grey 48 x 48 LFW faces, semi-hard, AdamW; {args.turns} turns of "
          f"{args.steps} steps each, medians")
    print(f"{'implementation':<36} {'images/s':>9} {'vs torch':>9}")
    print(f"{'tinyface train':<36} {np.median(ours):9.0f} {ratio:8.2f}x")
    print(f"{f'torch {torch.__version__} ({torch.get_num_threads()} threads)':<36} {np.median(their_rates):9.0f} "
          f"{1:8.2f}x")


if __name__ == "__main__":
    main()
