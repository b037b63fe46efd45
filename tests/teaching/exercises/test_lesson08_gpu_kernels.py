"""The exercise checks of lesson 8, GPU kernels: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tinyface.teaching.exercises import lesson08_gpu_kernels as ex

try:  # a module global: the CUDA simulator swaps the `cuda` a kernel sees only among its globals
    from numba import cuda
except ImportError:  # pragma: no cover - numba-cuda missing
    cuda = None


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_pairwise_sqdist(unanswered)) == "unanswered"
    assert status(ex.check_batch_hard_kernel(None)) == "unanswered"


def test_check_pairwise_sqdist(status):
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


needs_cuda = pytest.mark.skipif(cuda is None or not cuda.is_available(),
                                reason="no CUDA GPU and no Numba CUDA simulator")


def batch_hard_kernel(strict=True, guarded=True):
    """The kernel of the exercise, right by default; strict=False (>=, <=: the last index wins a tie) and
    guarded=False are the usual mistakes."""

    @cuda.jit
    def kernel(d, labels, positives, negatives):
        a = cuda.grid(1)
        if guarded and a >= d.shape[0]:
            return
        best_p, best_n = -1.0, 1e300
        for j in range(d.shape[1]):
            if labels[j] == labels[a]:
                if j != a and (d[a, j] > best_p or (not strict and d[a, j] == best_p)):
                    best_p = d[a, j]
                    positives[a] = j
            elif d[a, j] < best_n or (not strict and d[a, j] == best_n):
                best_n = d[a, j]
                negatives[a] = j

    return kernel


@needs_cuda
def test_check_batch_hard_kernel(status):
    verdict = ex.check_batch_hard_kernel(batch_hard_kernel())
    assert status(verdict) == "right", verdict


@needs_cuda
def test_check_batch_hard_kernel_rejects_an_unguarded_kernel_and_the_last_index_at_ties():
    assert "guard" in ex.check_batch_hard_kernel(batch_hard_kernel(guarded=False)).message
    assert "LOWEST index" in ex.check_batch_hard_kernel(batch_hard_kernel(strict=False)).message


@needs_cuda
def test_check_batch_hard_kernel_rejects_ties_lost_among_the_negatives_only():
    @cuda.jit
    def last_negative_at_a_tie(d, labels, positives, negatives):
        a = cuda.grid(1)
        if a < d.shape[0]:
            best_p, best_n = -1.0, 1e300
            for j in range(d.shape[1]):
                if labels[j] == labels[a]:
                    if j != a and d[a, j] > best_p:
                        best_p = d[a, j]
                        positives[a] = j
                elif d[a, j] <= best_n:
                    best_n = d[a, j]
                    negatives[a] = j

    verdict = ex.check_batch_hard_kernel(last_negative_at_a_tie)
    assert "tie between negatives" in verdict.message


@needs_cuda
def test_check_batch_hard_kernel_rejects_the_wrong_picks():
    @cuda.jit
    def nearest_positive(d, labels, positives, negatives):
        a = cuda.grid(1)
        if a < d.shape[0]:
            best_p, best_n = 1e300, 1e300
            for j in range(d.shape[1]):
                if labels[j] == labels[a]:
                    if j != a and d[a, j] < best_p:
                        best_p = d[a, j]
                        positives[a] = j
                elif d[a, j] < best_n:
                    best_n = d[a, j]
                    negatives[a] = j

    @cuda.jit
    def with_itself(d, labels, positives, negatives):  # d[a, a] = 0 is never the farthest: so take the nearest
        a = cuda.grid(1)
        if a < d.shape[0]:
            best_p, best_n = 1e300, 1e300
            for j in range(d.shape[1]):
                if labels[j] == labels[a]:
                    if d[a, j] < best_p:
                        best_p = d[a, j]
                        positives[a] = j
                elif d[a, j] < best_n:
                    best_n = d[a, j]
                    negatives[a] = j

    @cuda.jit
    def positives_only(d, labels, positives, negatives):
        a = cuda.grid(1)
        if a < d.shape[0]:
            positives[a] = a

    def plain(d, labels, positives, negatives):
        pass

    assert "FARTHEST" in ex.check_batch_hard_kernel(nearest_positive).message
    assert "own positive" in ex.check_batch_hard_kernel(with_itself).message
    assert "no answer" in ex.check_batch_hard_kernel(positives_only).message
    assert "@cuda.jit" in ex.check_batch_hard_kernel(plain).message


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="reaches into the simulator's arrays")
def test_check_batch_hard_kernel_rejects_stray_writes_that_raise_nothing():
    from tinyface.mining import batch_hard_triplets

    class OnARealGPU:
        """An unguarded kernel as a GPU runs it: no error, and the threads past the last anchor write into the
        memory beyond the outputs (here the padding the check puts after them)."""

        def __getitem__(self, launch):
            return self.run

        def run(self, d, labels, positives, negatives):
            _, p, n = batch_hard_triplets(d._ary, labels._ary).T
            for out, values in ((positives._ary, p), (negatives._ary, n)):
                padded = np.lib.stride_tricks.as_strided(out, shape=(16,), strides=out.strides)
                padded[: len(values)] = values
                padded[len(values) :] = 0  # the stray threads

    assert "past the end" in ex.check_batch_hard_kernel(OnARealGPU()).message
