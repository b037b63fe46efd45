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
    assert status(ex.check_cuda_sqdist_kernel(None)) == "unanswered"
    assert status(ex.check_cubic_memory(None, 1024)) == "unanswered"


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


@pytest.mark.skipif(cuda is None or not cuda.is_available(), reason="no CUDA GPU and no Numba CUDA simulator")
def test_check_cuda_sqdist_kernel(status):
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


@pytest.mark.skipif(cuda is None or not cuda.is_available(), reason="no CUDA GPU and no Numba CUDA simulator")
def test_check_cuda_sqdist_kernel_rejects_half_guards():
    @cuda.jit
    def rows_only(x, d):
        j, i = cuda.grid(2)
        if i < d.shape[0]:
            d[i, j] = 0.0

    @cuda.jit
    def off_by_one(x, d):
        j, i = cuda.grid(2)
        if i <= d.shape[0] and j <= d.shape[1]:
            d[i, j] = 0.0

    assert "guard" in ex.check_cuda_sqdist_kernel(rows_only).message
    assert "guard" in ex.check_cuda_sqdist_kernel(off_by_one).message


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason="reaches into the simulator's arrays")
def test_check_cuda_sqdist_kernel_rejects_stray_writes_that_raise_nothing():
    class OnARealGPU:
        """An unguarded kernel as a GPU runs it: no error, and the threads past the edge write into the memory
        beyond d (here the padding the check puts around it), following d's strides."""

        def __getitem__(self, launch):
            return self.run

        def run(self, x, d):
            host = d._ary  # the simulator's NumPy view of the padded array
            grid = np.lib.stride_tricks.as_strided(host, shape=(16, 16), strides=host.strides)
            rows = x._ary.shape[0]
            grid[:rows, :rows] = [[np.sum((a - b) ** 2) for b in x._ary] for a in x._ary]
            grid[rows:, :] = 0.0  # the stray threads
            grid[:, rows:] = 0.0

    assert "past its edge" in ex.check_cuda_sqdist_kernel(OnARealGPU()).message


def test_check_cubic_memory(status):
    assert status(ex.check_cubic_memory(4 * 1024**3, 1024)) == "right"
    assert "4 bytes" in ex.check_cubic_memory(1024**3, 1024).message
    assert "B x B" in ex.check_cubic_memory(4 * 1024**2, 1024).message
