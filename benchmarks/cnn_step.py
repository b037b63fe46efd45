"""Milliseconds of one training step (forward, backward, Adam update) of the reference face CNN, tinyface beside
PyTorch, in every import order.

Batches of 1x64x64 images, a loss on the embeddings. Each measurement runs in its own process, which imports
`tinyface` first, `numpy` first or `torch` first (thread settings that only worked when tinyface loaded first are
what this catches), and, when jupyter_client and ipykernel are installed, in a Jupyter kernel where a cell
imported NumPy before tinyface. In each process the tinyface step, the PyTorch step (same thread count) and a
large NumPy float32 matrix product (the machine's GEMM speed, the ceiling for a convolution done as a matrix
product) take turns, repeat after repeat, so that a busy machine slows all three alike; the table gives
medians, the ratio tinyface / PyTorch (median of the per-repeat ratios), and GFLOP/s: the step's multiply-adds
(x 2) of the convolutions and the linear layer, forward and backward, over its time.

PyTorch runs as installed: its OpenMP threads spin for a while after each op, waiting for the next one, which on a
busy machine takes cores from everything else, PyTorch's own other threads included. `--omp-passive` sets
OMP_WAIT_POLICY=PASSIVE for it (they sleep at once, as tinyface's threads do). Usage:

    python benchmarks/cnn_step.py [--batch 64 128] [--repeats 7] [--orders tinyface numpy torch jupyter]
                                  [--omp-passive]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time

ORDERS = ("tinyface", "numpy", "torch", "jupyter")
WIDTHS, SIZE = (32, 64, 128, 128), 64  # the reference CNN on 64 x 64 grey images
GEMM_N = 2048


def step_flops(batch: int) -> float:
    """Floating-point operations (2 per multiply-add) of a training step: each 3x3 convolution costs its forward
    product, the weight gradient and (all but the first, whose input needs no gradient) the input gradient."""
    flops, channels, size = 0.0, 1, SIZE
    for i, width in enumerate(WIDTHS):
        forward = 2.0 * batch * size * size * width * channels * 9
        flops += forward * (2 if i == 0 else 3)
        channels = width
        size = size // 2 if i < len(WIDTHS) - 1 else size
    return flops + 3 * 2.0 * batch * channels * 128


def tinyface_step(images, target):
    import tinyface as tf
    from tinyface.nn.models import reference_cnn
    from tinyface.nn.optim import Adam

    np = importlib.import_module("numpy")
    model = reference_cnn(rng=np.random.default_rng(0))
    optimizer = Adam(model.parameters(), lr=1e-3)
    x, t = tf.Tensor(images), tf.Tensor(target)

    def step() -> None:
        optimizer.zero_grad()
        loss = ((model(x) - t) ** 2).sum()
        loss.backward()
        optimizer.step()

    return step


def torch_step(images, target):
    import torch
    from torch import nn

    def block(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        return layers + [nn.MaxPool2d(2)] if pool else layers

    widths = (1, *WIDTHS)
    blocks = [layer for k in range(1, len(widths)) for layer in block(widths[k - 1], widths[k], k < len(WIDTHS))]
    model = nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTHS[-1], 128))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, t = torch.from_numpy(images), torch.from_numpy(target)

    def step() -> None:
        optimizer.zero_grad()
        loss = ((nn.functional.normalize(model(x), dim=-1) - t) ** 2).sum()
        loss.backward()
        optimizer.step()

    return step


def measure(first: str, batches: list[int], repeats: int) -> dict:
    """In this process: import `first`, then the rest; time the steps taking turns. A dict for the table."""
    for name in (first, "tinyface", "torch"):  # `first`, then the others (a module imported twice loads once)
        importlib.import_module(name)
    import torch

    np = importlib.import_module("numpy")
    from tinyface.runtime import keep_freed_memory

    keep_freed_memory()  # applies to both libraries: same process, same allocator
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((GEMM_N, GEMM_N)).astype(np.float32) for _ in range(2))
    rows = []
    for batch in batches:
        images = rng.standard_normal((batch, 1, SIZE, SIZE)).astype(np.float32)
        target = rng.standard_normal((batch, 128)).astype(np.float32)
        runs = {"tinyface": tinyface_step(images, target), "torch": torch_step(images, target),
                "gemm": lambda: a @ b}
        times: dict[str, list[float]] = {name: [] for name in runs}
        for k in range(repeats + 2):  # the first two warm up (Numba's compilation, caches, allocator)
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                if k >= 2:
                    times[name].append(time.perf_counter() - start)
        median = {name: float(np.median(t)) for name, t in times.items()}
        ratio = float(np.median(np.array(times["tinyface"]) / np.array(times["torch"])))
        flops = step_flops(batch)
        rows.append({"batch": batch, "tinyface_ms": 1e3 * median["tinyface"], "torch_ms": 1e3 * median["torch"],
                     "ratio": ratio, "tinyface_gflops": flops / median["tinyface"] / 1e9,
                     "torch_gflops": flops / median["torch"] / 1e9,
                     "gemm_gflops": 2 * GEMM_N**3 / median["gemm"] / 1e9})
    return {"first": first, "torch": f"{torch.__version__} ({torch.get_num_threads()} threads)", "rows": rows}


def in_process(first: str, batches: list[int], repeats: int, env: dict[str, str]) -> dict:
    """`measure` in a fresh Python process (or Jupyter kernel), so that its imports come in the order asked."""
    options = ["--measure", first if first != "jupyter" else "numpy", "--repeats", str(repeats), "--batch",
               *map(str, batches)]
    if first != "jupyter":
        done = subprocess.run([sys.executable, __file__, *options], capture_output=True, text=True, check=True,
                              env=env)
        return json.loads(done.stdout.strip().splitlines()[-1])
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", stderr=subprocess.DEVNULL, env=env)
    lines: list[str] = []

    def collect(message: dict) -> None:
        if message["msg_type"] == "stream" and message["content"]["name"] == "stdout":
            lines.extend(message["content"]["text"].splitlines())
        if message["msg_type"] == "error":
            raise RuntimeError("\n".join(message["content"]["traceback"]))

    try:
        client.execute_interactive("import numpy", timeout=60)  # a first cell, as in most notebooks
        client.execute_interactive(f"%run {__file__} {' '.join(options)}", timeout=3600, output_hook=collect)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    result = json.loads(lines[-1])
    result["first"] = "jupyter"
    return result


def jupyter_available() -> bool:
    try:
        importlib.import_module("jupyter_client")
        importlib.import_module("ipykernel")
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--orders", nargs="+", choices=ORDERS, default=list(ORDERS))
    parser.add_argument("--omp-passive", action="store_true", help="PyTorch's OpenMP threads sleep when idle")
    parser.add_argument("--measure", choices=ORDERS[:3], help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.batch, args.repeats)))
        return
    try:
        importlib.import_module("torch")
    except ImportError:
        sys.exit("PyTorch is not installed: pip install torch==2.13.0 to compare (tinyface never needs it)")
    orders = [o for o in args.orders if o != "jupyter" or jupyter_available()]
    env = dict(os.environ, **({"OMP_WAIT_POLICY": "PASSIVE"} if args.omp_passive else {}))
    results = [in_process(first, args.batch, args.repeats, env) for first in orders]
    policy = f"OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}" if "OMP_WAIT_POLICY" in env else "as installed"
    print(f"reference CNN training step, batches of 1x{SIZE}x{SIZE}, median of {args.repeats} repeats taking turns "
          f"with PyTorch {results[0]['torch']}, {policy}, and a {GEMM_N}^2 float32 NumPy product, one process "
          "per row")
    header = (f"{'first import':<13} {'batch':>5} {'tinyface ms':>11} {'torch ms':>9} {'vs torch':>9} "
              f"{'tinyface GFLOP/s':>16} {'torch GFLOP/s':>13} {'GEMM GFLOP/s':>12}")
    print(header)
    for result in results:
        for row in result["rows"]:
            print(f"{result['first']:<13} {row['batch']:>5} {row['tinyface_ms']:11.0f} {row['torch_ms']:9.0f} "
                  f"{row['ratio']:8.2f}x {row['tinyface_gflops']:16.1f} {row['torch_gflops']:13.1f} "
                  f"{row['gemm_gflops']:12.1f}")
    if "jupyter" in args.orders and "jupyter" not in orders:
        print("(no Jupyter row: pip install jupyter_client ipykernel)")


if __name__ == "__main__":
    main()
