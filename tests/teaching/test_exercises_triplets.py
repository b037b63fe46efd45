"""The exercise checks of lessons 04, 05, 06 and 08: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np
import pytest

from tinyface import mining
from tinyface.teaching import exercises as ex

try:  # a module global: the CUDA simulator swaps the `cuda` a kernel sees only among its globals
    from numba import cuda
except ImportError:  # pragma: no cover - numba-cuda missing
    cuda = None


def status(verdict: ex.Verdict) -> str:
    assert isinstance(verdict, ex.Verdict)
    assert repr(verdict).startswith(ex.SYMBOLS[verdict.status])
    return verdict.status


def unanswered(*args):
    raise NotImplementedError


def test_placeholders_are_not_answered_yet():
    assert status(ex.check_contrastive_loss(unanswered)) == "unanswered"
    assert status(ex.check_balanced_pairs(None)) == "unanswered"
    assert status(ex.check_push_distance(None, 1.0)) == "unanswered"
    assert status(ex.check_triplet_loss(unanswered)) == "unanswered"
    assert status(ex.check_collapsed_loss(..., 10, 0.2)) == "unanswered"
    assert status(ex.check_triplet_gradients(unanswered)) == "unanswered"
    assert status(ex.check_semihard_triplets(unanswered)) == "unanswered"
    assert status(ex.check_batch_hard(unanswered)) == "unanswered"
    assert status(ex.check_fraction_active(unanswered)) == "unanswered"
    assert status(ex.check_pairwise_sqdist(unanswered)) == "unanswered"
    assert status(ex.check_cuda_sqdist_kernel(None)) == "unanswered"
    assert status(ex.check_cubic_memory(None, 1024)) == "unanswered"


# -- lesson 04 ---------------------------------------------------------------------------------------------------


def contrastive(x1, x2, same, margin):
    d = np.sum((x1 - x2) ** 2, axis=1)
    return np.mean(np.where(same, d, np.maximum(margin - np.sqrt(d), 0) ** 2))


def test_check_contrastive_loss():
    assert status(ex.check_contrastive_loss(contrastive)) == "right"
    swapped = ex.check_contrastive_loss(lambda a, b, s, m: contrastive(a, b, ~s, m))
    assert "swapped" in swapped.message

    def no_sqrt(x1, x2, same, margin):
        d = np.sum((x1 - x2) ** 2, axis=1)
        return np.mean(np.where(same, d, np.maximum(margin - d, 0) ** 2))

    assert "sqrt(d)" in ex.check_contrastive_loss(no_sqrt).message
    summed = ex.check_contrastive_loss(lambda a, b, s, m: len(a) * contrastive(a, b, s, m))
    assert "mean" in summed.message


def test_check_contrastive_loss_agrees_with_the_library():
    from tinyface.losses import contrastive_loss

    assert status(ex.check_contrastive_loss(lambda a, b, s, m: contrastive_loss(a, b, s, m).item())) == "right"


def balanced(labels, n, rng):
    same = np.argwhere((labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool))
    different = np.argwhere(labels[:, None] != labels[None, :])
    s = same[rng.choice(len(same), n)]
    d = different[rng.choice(len(different), n)]
    return np.concatenate([s[:, 0], d[:, 0]]), np.concatenate([s[:, 1], d[:, 1]])


def test_check_balanced_pairs():
    assert status(ex.check_balanced_pairs(balanced)) == "right"

    def with_self_pairs(labels, n, rng):
        i, j = balanced(labels, n, rng)
        j[:n] = i[:n]
        return i, j

    assert "i != j" in ex.check_balanced_pairs(with_self_pairs).message
    swapped = ex.check_balanced_pairs(lambda labels, n, rng: tuple(a[::-1] for a in balanced(labels, n, rng)))
    assert status(swapped) == "wrong"
    fixed = ex.check_balanced_pairs(lambda labels, n, rng: balanced(labels, n, np.random.default_rng(0)))
    assert "rng" in fixed.message


def test_check_push_distance():
    assert status(ex.check_push_distance(0.25, 0.5)) == "right"
    assert "sqrt(d)" in ex.check_push_distance(0.5, 0.5).message
    assert status(ex.check_push_distance(0.0, 0.5)) == "wrong"


# -- lesson 05 ---------------------------------------------------------------------------------------------------


def triplet(a, p, n, alpha):
    return np.sum(np.maximum(np.sum((a - p) ** 2, 1) - np.sum((a - n) ** 2, 1) + alpha, 0))


def test_check_triplet_loss():
    assert status(ex.check_triplet_loss(triplet)) == "right"
    assert "mean" in ex.check_triplet_loss(lambda a, p, n, alpha: triplet(a, p, n, alpha) / len(a)).message
    assert "swapped" in ex.check_triplet_loss(lambda a, p, n, alpha: triplet(a, n, p, alpha)).message
    no_hinge = ex.check_triplet_loss(lambda a, p, n, al: np.sum(np.sum((a - p) ** 2, 1) - np.sum((a - n) ** 2, 1) + al))
    assert "hinge" in no_hinge.message


def test_check_triplet_loss_agrees_with_the_library():
    from tinyface.losses import triplet_loss

    assert status(ex.check_triplet_loss(lambda a, p, n, alpha: triplet_loss(a, p, n, alpha).item())) == "right"


def test_check_collapsed_loss():
    assert status(ex.check_collapsed_loss(20.0, 100, 0.2)) == "right"
    assert "without a margin" in ex.check_collapsed_loss(0, 100, 0.2).message
    assert "sum" in ex.check_collapsed_loss(0.2, 100, 0.2).message


def gradients(a, p, n, alpha):
    if np.sum((a - p) ** 2) - np.sum((a - n) ** 2) + alpha <= 0:
        return np.zeros_like(a), np.zeros_like(a), np.zeros_like(a)
    return 2 * (n - p), 2 * (p - a), 2 * (a - n)


def test_check_triplet_gradients():
    assert status(ex.check_triplet_gradients(gradients)) == "right"
    always = ex.check_triplet_gradients(lambda a, p, n, alpha: (2 * (n - p), 2 * (p - a), 2 * (a - n)))
    assert "easy" in always.message
    flipped = ex.check_triplet_gradients(lambda a, p, n, alpha: tuple(-g for g in gradients(a, p, n, alpha)))
    assert "sign" in flipped.message


# -- lesson 06 ---------------------------------------------------------------------------------------------------


def semihard(d, labels, margin):
    t = mining.all_triplets(labels)
    d_ap, d_an = d[t[:, 0], t[:, 1]], d[t[:, 0], t[:, 2]]
    return t[(d_ap < d_an) & (d_an < d_ap + margin)]


def test_check_semihard_triplets():
    assert status(ex.check_semihard_triplets(semihard)) == "right"
    assert status(ex.check_semihard_triplets(mining.semihard_triplets)) == "right"

    def with_hard(d, labels, margin):
        t = mining.all_triplets(labels)
        return t[d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]] + margin]

    assert "hard" in ex.check_semihard_triplets(with_hard).message
    assert status(ex.check_semihard_triplets(lambda d, labels, m: semihard(d, labels, m)[:-1])) == "wrong"


def batch_hard(d, labels):
    same = labels[:, None] == labels[None, :]
    positive = same & ~np.eye(len(labels), dtype=bool)
    return np.where(positive, d, -np.inf).argmax(axis=1), np.where(~same, d, np.inf).argmin(axis=1)


def test_check_batch_hard():
    assert status(ex.check_batch_hard(batch_hard)) == "right"

    def nearest_positive(d, labels):
        same = labels[:, None] == labels[None, :]
        positive = same & ~np.eye(len(labels), dtype=bool)
        return np.where(positive, d, np.inf).argmin(axis=1), batch_hard(d, labels)[1]

    assert "FARTHEST" in ex.check_batch_hard(nearest_positive).message

    def with_self(d, labels):
        same = labels[:, None] == labels[None, :]
        return np.where(same, d, np.inf).argmin(axis=1), batch_hard(d, labels)[1]

    assert "own positive" in ex.check_batch_hard(with_self).message


def fraction(d, labels, margin):
    t = mining.all_triplets(labels)
    return np.mean(d[t[:, 0], t[:, 1]] - d[t[:, 0], t[:, 2]] + margin > 0)


def test_check_fraction_active():
    assert status(ex.check_fraction_active(fraction)) == "right"
    assert "INACTIVE" in ex.check_fraction_active(lambda d, labels, m: 1 - fraction(d, labels, m)).message

    def only_hard(d, labels, margin):
        t = mining.all_triplets(labels)
        return np.mean(d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]])

    assert "hard" in ex.check_fraction_active(only_hard).message


def test_check_fraction_active_agrees_with_the_kernel():
    from tinyface.kernels import numpy_ref

    def by_kernel(d, labels, margin):  # embeddings whose distances are d: not available, so rebuild from d
        return fraction(d, labels, margin)

    d, labels = ex._mining_batch(64)
    x = np.random.default_rng(0).standard_normal((12, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = numpy_ref.pairwise_sqdist(x)
    assert np.isclose(fraction(d, labels, 0.2), numpy_ref.batch_all_triplet(x, labels, 0.2)[2])
    assert status(ex.check_fraction_active(by_kernel)) == "right"


# -- lesson 08 ---------------------------------------------------------------------------------------------------


def test_check_pairwise_sqdist():
    from tinyface.kernels import numpy_ref

    assert status(ex.check_pairwise_sqdist(numpy_ref.pairwise_sqdist)) == "right"

    def unclamped(x):
        x = x.astype(np.float32)
        sq = np.sum(x * x, axis=1)
        d = sq[:, None] + sq[None, :] - 2 * x @ x.T
        return d

    assert status(ex.check_pairwise_sqdist(unclamped)) == "wrong"
    assert "square root" in ex.check_pairwise_sqdist(lambda x: np.sqrt(numpy_ref.pairwise_sqdist(x))).message

    def loops(x):
        return np.array([[np.sum((a - b) ** 2) for b in x] for a in x])

    assert status(ex.check_pairwise_sqdist(loops)) == "right"


@pytest.mark.skipif(cuda is None or not cuda.is_available(), reason="no CUDA GPU and no Numba CUDA simulator")
def test_check_cuda_sqdist_kernel():
    @cuda.jit
    def right(x, d):
        j, i = cuda.grid(2)
        if i < d.shape[0] and j < d.shape[1]:
            total = 0.0
            for k in range(x.shape[1]):
                total += (x[i, k] - x[j, k]) ** 2
            d[i, j] = total

    @cuda.jit
    def unguarded(x, d):
        j, i = cuda.grid(2)
        total = 0.0
        for k in range(x.shape[1]):
            total += (x[i, k] - x[j, k]) ** 2
        d[i, j] = total

    @cuda.jit
    def diagonal_only(x, d):
        j, i = cuda.grid(2)
        if i < d.shape[0] and j < d.shape[1] and i == j:
            d[i, j] = 0.0

    def plain(x, d):
        pass

    verdict = ex.check_cuda_sqdist_kernel(right)
    assert status(verdict) == "right", verdict
    assert "guard" in ex.check_cuda_sqdist_kernel(unguarded).message
    assert "never written" in ex.check_cuda_sqdist_kernel(diagonal_only).message
    assert "@cuda.jit" in ex.check_cuda_sqdist_kernel(plain).message


def test_check_cubic_memory():
    assert status(ex.check_cubic_memory(4 * 1024**3, 1024)) == "right"
    assert "4 bytes" in ex.check_cubic_memory(1024**3, 1024).message
    assert "B x B" in ex.check_cubic_memory(4 * 1024**2, 1024).message
