"""Benchmark of the training hot path: pairwise distances and the in-batch triplet losses, forward + backward.

    python benchmarks/hotpath.py                 # B = 256, 1024, 4096
    python benchmarks/hotpath.py --sizes 256 1024 --repeats 5

D = 128, float32, P x K labels (32x8, 64x16, 256x16). For every kernel backend available (the Numba CUDA simulator
is skipped: it measures Python, not a GPU) and, when installed, for PyTorch: the best milliseconds of the repeats
(the fastest run: on a busy machine the slower ones measure the neighbours) and the peak extra memory (resident set
size sampled every 0.5 ms, and NumPy's own count from tracemalloc, whichever is larger).
PyTorch peers: the B x B x B broadcast formulation (only up to --cubic-max, it needs O(B^3) memory), sort-based
formulations (O(B^2 log B)), and pytorch-metric-learning's TripletMarginMiner("semihard") + TripletMarginLoss.

Two ratios per row, both measured in the same run (the machine may be busy: compare ratios, not times):
- "x floor": time / the GEMM floor, the bare matrix products the op cannot avoid: x @ x^T ((B, D) @ (D, B)) for
  the distances, and that plus one (B, B) @ (B, D) product (a gradient through a (B, B) matrix) for forward +
  backward. The floor is timed in turns with the row's own runs, so that both see the same load.
- "x torch": time / the fastest PyTorch row of the same op and B.
JIT warm-up is excluded.
"""

from __future__ import annotations  # noqa: I001 - tinyface is imported before NumPy, see tinyface/runtime.py

import tinyface  # noqa: F401 - first, for its thread policies

import argparse
import ctypes
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from tinyface import kernels
from tinyface.runtime import keep_freed_memory

try:
    import torch
except ImportError:
    torch = None

try:
    from pytorch_metric_learning import losses as pml_losses
    from pytorch_metric_learning import miners as pml_miners
except ImportError:
    pml_losses = pml_miners = None

LAYOUTS = {256: (32, 8), 1024: (64, 16), 4096: (256, 16)}
MARGIN = 0.2


# -- measuring -----------------------------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_heap() -> None:
    """Hand memory that malloc keeps after free() back to the OS, so that RSS growth shows reuse too (glibc)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_extra_memory(fn: Callable[[], object]) -> float:
    """Peak bytes above the starting point while fn runs: RSS sampled by a thread, and tracemalloc."""
    peak, done = [0], threading.Event()
    _release_free_heap()
    start = _rss()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss() - start)
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    tracemalloc.start()
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return float(max(peak[0], traced))


def best_ms(
    fn: Callable[[], object], floor: Callable[[], object], repeats: int, budget_s: float
) -> tuple[float, float]:
    """The fastest run of fn and of floor, in ms, timed in turns so that both see the same load on the machine."""
    fn(), floor()  # warm-up: JIT compilation, caches
    times: list[float] = []
    floor_times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeats and (len(times) < 2 or time.perf_counter() - started < budget_s):
        for run, out in ((fn, times), (floor, floor_times)):
            t0 = time.perf_counter()
            run()
            out.append(time.perf_counter() - t0)
    return 1e3 * min(times), 1e3 * min(floor_times)


# -- PyTorch peers -------------------------------------------------------------------------------------------
def torch_sqdist(x):
    gram = x @ x.T
    sq = torch.diagonal(gram)
    d = (sq[:, None] + sq[None, :] - 2 * gram).clamp_min(0)
    return d * (1 - torch.eye(len(x), dtype=x.dtype))


def torch_masks(labels):
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(labels), dtype=torch.bool), ~same


def torch_semihard_cubic(x, labels):
    """The TensorFlow Addons rule as a B x B x B broadcast: mask[a, p, n] = n negative of a and d_an > d_ap."""
    d = torch_sqdist(x)
    positive, negative = torch_masks(labels)
    d_an = d[:, None, :].expand(-1, len(x), -1)
    farther = negative[:, None, :] & (d_an > d[:, :, None])
    semihard = torch.where(farther, d_an, torch.inf).min(dim=2).values
    easiest = torch.where(negative, d, -torch.inf).max(dim=1).values[:, None].expand_as(d)
    d_an_chosen = torch.where(farther.any(dim=2), semihard, easiest)
    keep = positive & negative.any(dim=1)[:, None]
    return torch.relu((d + MARGIN) - d_an_chosen)[keep].mean()


def torch_semihard_sorted(x, labels):
    """The same rule, O(B^2 log B): sort each anchor's negatives, binary-search each d_ap (torch.searchsorted)."""
    d = torch_sqdist(x)
    positive, negative = torch_masks(labels)
    neg_d = torch.where(negative, d, torch.inf)
    nearest, order = neg_d.sort(dim=1, stable=True)
    first = torch.searchsorted(nearest.detach(), d.detach().contiguous(), right=True)
    found = first < negative.sum(dim=1, keepdim=True)
    semihard = torch.gather(d, 1, torch.gather(order, 1, first.clamp_max(len(x) - 1)))
    easiest = torch.where(negative, d, -torch.inf).max(dim=1).values[:, None].expand_as(d)
    keep = positive & negative.any(dim=1)[:, None]
    return torch.relu((d + MARGIN) - torch.where(found, semihard, easiest))[keep].mean()


def torch_batch_all_cubic(x, labels):
    d = torch_sqdist(x)
    positive, negative = torch_masks(labels)
    hinge = (d[:, :, None] + MARGIN) - d[:, None, :]
    valid = positive[:, :, None] & negative[:, None, :]
    losses = torch.relu(hinge) * valid
    return losses.sum() / (losses > 0).sum().clamp_min(1)


def torch_batch_all_sorted(x, labels):
    """Batch-all in O(B^2 log B): the negatives that (a, p) makes active, d_an < d_ap + margin, are the first
    `count` of a's sorted negatives, so their hinges sum to count (d_ap + margin) - (the sum of those d_an)."""
    d = torch_sqdist(x)
    positive, negative = torch_masks(labels)
    nearest = torch.where(negative, d, torch.inf).sort(dim=1).values
    q = d + MARGIN
    count = torch.where(positive, torch.searchsorted(nearest.detach(), q.detach().contiguous()), 0)
    finite = torch.where(torch.isfinite(nearest), nearest, 0)  # the negatives, then 0 for the rest of the row
    prefix = torch.cat([torch.zeros(len(x), 1), finite.cumsum(dim=1)], dim=1)
    hinge_sums = torch.where(positive, count * q - torch.gather(prefix, 1, count), 0)
    return hinge_sums.sum() / count.sum().clamp_min(1)


def torch_batch_hard(x, labels):
    d = torch_sqdist(x)
    positive, negative = torch_masks(labels)
    hardest_positive = torch.where(positive, d, -torch.inf).max(dim=1).values
    hardest_negative = torch.where(negative, d, torch.inf).min(dim=1).values
    valid = positive.any(dim=1) & negative.any(dim=1)
    return torch.relu((hardest_positive + MARGIN) - hardest_negative)[valid].mean()


def torch_pml_semihard(x, labels):
    from pytorch_metric_learning.distances import LpDistance

    distance = LpDistance(normalize_embeddings=False, p=2, power=2)
    miner = pml_miners.TripletMarginMiner(margin=MARGIN, type_of_triplets="semihard", distance=distance)
    loss = pml_losses.TripletMarginLoss(margin=MARGIN, distance=distance)
    return loss(x, labels, miner(x, labels))


def torch_forward_backward(loss_fn, x_np, labels_np) -> Callable[[], object]:
    labels = torch.from_numpy(labels_np)

    def run():
        x = torch.from_numpy(x_np).requires_grad_(True)
        loss_fn(x, labels).backward()
        return x.grad

    return run


# -- the table -----------------------------------------------------------------------------------------------
def batch(b: int, dim: int = 128) -> tuple[np.ndarray, np.ndarray]:
    p, k = LAYOUTS.get(b, (b // 8, 8))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, np.repeat(np.arange(p), k)


def cases(b: int, backends: list[str], cubic_max: int):
    """(op, implementation, callable)."""
    x, labels = batch(b)
    for name in backends:
        yield "pairwise", name, lambda n=name: kernels.pairwise_sqdist(x, backend=n)
        yield "semihard f+b", name, lambda n=name: kernels.semihard_triplet(x, labels, MARGIN, backend=n)
        yield "batch-all f+b", name, lambda n=name: kernels.batch_all_triplet(x, labels, MARGIN, backend=n)
        yield "batch-hard f+b", name, lambda n=name: kernels.batch_hard_triplet(x, labels, MARGIN, backend=n)
    if torch is None:
        return
    xt = torch.from_numpy(x)
    yield "pairwise", "torch a@a.T", lambda: torch_sqdist(xt)
    yield "pairwise", "torch cdist^2", lambda: torch.cdist(xt, xt) ** 2
    yield "semihard f+b", "torch sort", torch_forward_backward(torch_semihard_sorted, x, labels)
    yield "batch-all f+b", "torch sort", torch_forward_backward(torch_batch_all_sorted, x, labels)
    if b <= cubic_max:
        yield "semihard f+b", "torch B^3", torch_forward_backward(torch_semihard_cubic, x, labels)
        yield "batch-all f+b", "torch B^3", torch_forward_backward(torch_batch_all_cubic, x, labels)
    if pml_miners is not None and b <= max(cubic_max, 1024):
        yield "semihard f+b", "torch pml", torch_forward_backward(torch_pml_semihard, x, labels)
    yield "batch-hard f+b", "torch", torch_forward_backward(torch_batch_hard, x, labels)


def gemm_floor(b: int) -> dict[str, Callable[[], object]]:
    """The bare products an op cannot avoid: "pairwise" x @ x^T, "f+b" that and a (B, B) @ (B, D) product."""
    x, _ = batch(b)
    x_t = np.ascontiguousarray(x.T)
    weights = np.random.default_rng(1).standard_normal((b, b)).astype(np.float32)
    return {"pairwise": lambda: x @ x_t, "f+b": lambda: (x @ x_t, weights @ x)}


def check_agreement(b: int = 256) -> None:
    """The peers compute the same losses as numpy_ref (else the comparison would be meaningless)."""
    if torch is None:
        return
    x, labels = batch(b)
    xt, lt = torch.from_numpy(x).double(), torch.from_numpy(labels)
    ref = kernels.numpy_ref
    x64 = x.astype(np.float64)
    pairs = [
        ("semihard, torch sort", torch_semihard_sorted(xt, lt).item(), ref.semihard_triplet(x64, labels, MARGIN)[0]),
        ("semihard, torch B^3", torch_semihard_cubic(xt, lt).item(), ref.semihard_triplet(x64, labels, MARGIN)[0]),
        ("batch-all, torch B^3", torch_batch_all_cubic(xt, lt).item(), ref.batch_all_triplet(x64, labels, MARGIN)[0]),
        ("batch-all, torch sort", torch_batch_all_sorted(xt, lt).item(), ref.batch_all_triplet(x64, labels, MARGIN)[0]),
        ("batch-hard, torch", torch_batch_hard(xt, lt).item(), ref.batch_hard_triplet(x64, labels, MARGIN)[0]),
    ]
    print("agreement with numpy_ref at B=256 (float64): " + ", ".join(
        f"{name} {abs(a - b) / abs(b):.1e}" for name, a, b in pairs))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--repeats", type=int, default=25, help="runs per row at most (the fastest counts)")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timing per row at most (>= 2 runs)")
    parser.add_argument("--cubic-max", type=int, default=256, help="largest B for the B^3 PyTorch peers")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as in training (one process: it applies to every implementation measured)
    simulated = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    backends = [n for n in kernels.available_backends() if not (n == "numba_cuda" and simulated)]
    print(f"tinyface hot path: D=128 float32, margin {MARGIN}; backends {backends}; "
          f"torch {torch.__version__ if torch else 'not installed'}; "
          f"pytorch-metric-learning {'installed' if pml_miners else 'not installed'}; {os.cpu_count()} CPUs")
    check_agreement()
    header = (f"{'op':<15} {'B':>5} {'P x K':>8} {'implementation':<14} {'best ms':>9} {'floor ms':>9} "
              f"{'x floor':>8} {'x torch':>8} {'peak MB':>8}")
    print(header)
    print("-" * len(header))
    for b in args.sizes:
        p, k = LAYOUTS.get(b, (b // 8, 8))
        floors = gemm_floor(b)
        rows = []
        for op, name, fn in cases(b, backends, args.cubic_max):
            floor = floors["pairwise" if op == "pairwise" else "f+b"]
            rows.append((op, name, *best_ms(fn, floor, args.repeats, args.budget), peak_extra_memory(fn) / 2**20))
        fastest_torch: dict[str, float] = {}
        for op, name, ms, _, _ in rows:
            if name.startswith("torch"):
                fastest_torch[op] = min(ms, fastest_torch.get(op, ms))
        for op, name, ms, floor_ms, peak in rows:
            versus_torch = f"{ms / fastest_torch[op]:.2f}" if op in fastest_torch else ""
            print(f"{op:<15} {b:>5} {f'{p}x{k}':>8} {name:<14} {ms:>9.2f} {floor_ms:>9.2f} {ms / floor_ms:>8.2f} "
                  f"{versus_torch:>8} {peak:>8.1f}")
        print(flush=True)


if __name__ == "__main__":
    sys.exit(main())
