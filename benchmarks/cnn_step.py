"""Milliseconds of one training step (forward, backward, Adam update) of the reference face CNN.

Batch 64 of 1x64x64 images, a loss on the embeddings; tinyface and, when installed, PyTorch on the CPU with the
same thread count, measured in one run. Prints a table with the ratio. Usage:

    python benchmarks/cnn_step.py [--batch 64] [--repeats 10]
"""

from __future__ import annotations  # noqa: I001 - tinyface is imported before NumPy, see tinyface/runtime.py

import tinyface as tf

import argparse
import time

import numpy as np

from tinyface.runtime import keep_freed_memory
from tinyface.nn.models import reference_cnn
from tinyface.nn.optim import Adam


def median_ms(step, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def tinyface_step(images: np.ndarray, target: np.ndarray):
    model = reference_cnn(rng=np.random.default_rng(0))
    optimizer = Adam(model.parameters(), lr=1e-3)
    x, t = tf.Tensor(images), tf.Tensor(target)

    def step() -> None:
        optimizer.zero_grad()
        loss = ((model(x) - t) ** 2).sum()
        loss.backward()
        optimizer.step()

    return step


def torch_step(images: np.ndarray, target: np.ndarray):
    import torch
    from torch import nn

    def block(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + [nn.MaxPool2d(2)] if pool else layers

    model = nn.Sequential(*block(1, 32, True), *block(32, 64, True), *block(64, 128, True),
                          *block(128, 128, False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 128))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, t = torch.from_numpy(images), torch.from_numpy(target)

    def step() -> None:
        optimizer.zero_grad()
        loss = ((nn.functional.normalize(model(x), dim=-1) - t) ** 2).sum()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    keep_freed_memory()  # applies to both libraries: same process, same allocator
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch, 1, 64, 64)).astype(np.float32)
    target = rng.standard_normal((args.batch, 128)).astype(np.float32)

    rows = [("tinyface", median_ms(tinyface_step(images, target), args.repeats))]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        rows.append((f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
                     median_ms(torch_step(images, target), args.repeats)))
    print(f"reference CNN training step, batch {args.batch} x 1x64x64, median of {args.repeats}")
    print(f"{'implementation':<34} {'ms/step':>9} {'vs torch':>9}")
    reference = rows[-1][1] if torch is not None else None
    for name, ms in rows:
        ratio = f"{ms / reference:.2f}x" if reference else "-"
        print(f"{name:<34} {ms:9.1f} {ratio:>9}")
    if torch is None:
        print("(PyTorch not installed: pip install torch==2.13.0 to compare)")


if __name__ == "__main__":
    main()
