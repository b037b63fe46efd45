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
    assert status(ex.check_sqdist_backward(unanswered)) == "unanswered"
    assert status(ex.check_sqdist_backward(None)) == "unanswered"
    assert status(ex.check_batch_hard_kernel(None)) == "unanswered"


def sqdist_backward(x, g):
    s = g + g.T
    return 2 * (s.sum(axis=1)[:, None] * x - s @ x)


def test_check_sqdist_backward_accepts_the_matrix_products_and_tinyfaces_backward(status):
    from tinyface.kernels import numpy_ref

    assert status(ex.check_sqdist_backward(sqdist_backward)) == "right"
    assert status(ex.check_sqdist_backward(numpy_ref.pairwise_sqdist_backward)) == "right"
    in_float32 = lambda x, g: numpy_ref.pairwise_sqdist_backward(x.astype(np.float32), g.astype(np.float32))  # noqa: E731
    assert status(ex.check_sqdist_backward(in_float32)) == "right"  # the hot path's own precision


def test_check_sqdist_backwards_reference_is_autograds_gradient():
    """The check's right answer is the gradient autograd finds through the (B, B, D) differences."""
    import tinyface as tf

    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((6, 4)), rng.standard_normal((6, 6))
    t = tf.Tensor(x, requires_grad=True)
    d = ((t.reshape(6, 1, 4) - t.reshape(1, 6, 4)) ** 2).sum(axis=2)
    (d * g).sum().backward()
    np.testing.assert_allclose(sqdist_backward(x, g), t.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda x, g: 2 * (g.sum(axis=1)[:, None] * x - g @ x), "AND in d_jk"),
    (lambda x, g: 2 * (g.sum(axis=0)[:, None] * x - g.T @ x), "AND in d_jk"),
    (lambda x, g: -sqdist_backward(x, g), "sign"),
    (lambda x, g: 2 * sqdist_backward(x, g), "twice"),
    (lambda x, g: sqdist_backward(x, g) / 2, "half"),
    (lambda x, g: -2 * (g + g.T) @ x, "r_k x_k"),
    (lambda x, g: sqdist_backward(x, g) + 1, "largest difference"),
    (lambda x, g: sqdist_backward(x, g)[:, :2], "shape"),
    (lambda x, g: x[:, :, None] + g, "shape"),
])
def test_check_sqdist_backward_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_sqdist_backward(answer)
    assert status(verdict) == "wrong" and hint in verdict.message, verdict


def test_check_sqdist_backward_rejects_a_b_by_b_by_d_temporary(status):
    def broadcast(x, g):  # right, through every difference x_k - x_j at once
        s = g + g.T
        return 2 * np.einsum("kj,kjd->kd", s, x[:, None, :] - x[None, :, :])

    verdict = ex.check_sqdist_backward(broadcast)
    assert status(verdict) == "wrong" and "(B, B, D)" in verdict.message, verdict


def test_check_sqdist_backward_reports_an_error_in_the_answer(status):
    def broken(x, g):
        return x @ g  # (B, D) @ (B, B): shapes do not match

    verdict = ex.check_sqdist_backward(broken)
    assert status(verdict) == "wrong" and "ValueError" in verdict.message


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
