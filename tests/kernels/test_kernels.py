"""tinyface.kernels: numpy_ref against plain triple loops (tinyface.testing.references), and every other backend
against numpy_ref.

Exact batches (tinyface.testing.exact_batches): small integer embeddings in float64, so every distance, tie and
comparison is exact on every backend; selections must then be equal, and losses and gradients equal up to the order
of summation.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyface import kernels
from tinyface.kernels import cupy_cuda  # imports without CuPy: its compile options need none
from tinyface.kernels.contract import FALLBACKS
from tinyface.testing import assert_matches_reference, exact_batches, references

numpy_ref = kernels.numpy_ref
CUDA_SOURCES = sorted(Path(kernels.__file__).parent.glob("*.cu"))


def random_batch(seed, b, dim=5, ids=3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(dtype), rng.integers(0, ids, b)


MARKS = {"cupy": [pytest.mark.gpu], "numba_cuda": [pytest.mark.slow]}  # the simulator takes its time


def backend_param(name, *values):
    reason = f"kernel backend {name!r} not available"
    missing = pytest.mark.skipif(name not in kernels.available_backends(), reason=reason)
    return pytest.param(name, *values, marks=[missing, *MARKS.get(name, [])], id=name)


# the Numba CUDA simulator runs every GPU thread in Python: keep its batches small and few
OTHER_BACKENDS = [
    backend_param("numba", 10, 60),
    backend_param("numba_cuda", 8, 6),
    backend_param("cupy", 10, 40),
]
EXACT = settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow])


# -- numpy_ref against the loops -----------------------------------------------------------------------------
@EXACT
@given(exact_batches())
def test_numpy_ref_distances_and_selection_match_loops(batch):
    x, labels = batch.embeddings, batch.labels
    d = numpy_ref.pairwise_sqdist(x)
    assert np.array_equal(d, references.pairwise_sqdist(x))
    for fallback in FALLBACKS:
        pairs, negatives = numpy_ref.semihard_negatives(d, labels, fallback)
        want = references.semihard_negative_triplets(d, labels, fallback)
        assert [tuple(t) for t in np.column_stack([pairs, negatives])] == want


LOSS_KERNELS = [("batch_all_triplet", ()), ("batch_hard_triplet", (False,)), ("batch_hard_triplet", (True,))] + [
    ("semihard_triplet", (fallback,)) for fallback in FALLBACKS
]


@pytest.mark.parametrize("name, options", LOSS_KERNELS, ids=[f"{n}{o}" for n, o in LOSS_KERNELS])
def test_numpy_ref_losses_match_loops(name, options):
    """Every result (loss, gradient, counts) of numpy_ref equals the plain loops' on exact batches."""

    def call(module):
        return lambda batch: getattr(module, name)(batch.embeddings, batch.labels, batch.margin, *options)

    assert_matches_reference(call(numpy_ref), call(references), exact_batches(batch=(2, 8)), max_examples=80)


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_count_below_matches_loops(seed, inclusive):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 5, (4, 6)).astype(float)
    values[rng.random(values.shape) < 0.2] = np.inf
    queries = rng.integers(0, 5, (4, 3)).astype(float)
    counts, sums = numpy_ref.count_below(values, queries, inclusive)
    for i, j in itertools.product(range(4), range(3)):
        below = [v for v in values[i] if (v <= queries[i, j] if inclusive else v < queries[i, j])]
        assert counts[i, j] == len(below)
        assert sums[i, j] == sum(v for v in below if np.isfinite(v))


def test_pairwise_sqdist_backward_is_the_gradient_of_the_weighted_sum():
    rng = np.random.default_rng(1)
    x, weights = rng.standard_normal((6, 3)), rng.standard_normal((6, 6))
    grad = numpy_ref.pairwise_sqdist_backward(x, weights)
    np.testing.assert_allclose(grad, references.pairwise_sqdist_backward(x, weights), atol=1e-12)


def test_distances_are_clamped_at_zero_and_zero_on_the_diagonal():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((4, 64)) * 1e3).astype(np.float32)
    x = np.concatenate([x, x + np.float32(1e-4)])  # near-duplicates: the expansion rounds below 0 without a clamp
    for name in kernels.available_backends():
        d = kernels.pairwise_sqdist(x, backend=name)
        assert d.dtype == np.float32 and d.min() >= 0 and np.all(np.diagonal(d) == 0), name


def test_no_semihard_negative_uses_the_fallback():
    # one dimension: identity 0 at 0 and 3, identity 1 at 1 and 2. Both negatives of identity 0 are nearer than its
    # positive (d_ap = 9, d_an in {1, 4}): the fallback decides; identity 1 has a semi-hard negative (d_ap = 1 < 4)
    x = np.array([[0.0], [3.0], [1.0], [2.0]])
    labels = np.array([0, 0, 1, 1])
    d = numpy_ref.pairwise_sqdist(x)
    for name in kernels.available_backends():
        pairs, negatives = kernels.semihard_negatives(d, labels, "easiest", backend=name)
        assert pairs.tolist() == [[0, 1], [1, 0], [2, 3], [3, 2]] and negatives.tolist() == [3, 2, 1, 0], name
        assert kernels.semihard_negatives(d, labels, "hardest", backend=name)[1].tolist() == [2, 3, 1, 0]
        assert len(kernels.semihard_negatives(d, labels, "skip", backend=name)[0]) == 2  # (2,3), (3,2) remain
        loss, grad, kept = kernels.semihard_triplet(x, labels, 0.5, "easiest", backend=name)
        assert kept == 4 and loss == pytest.approx(np.mean([9 + 0.5 - 4, 9 + 0.5 - 4, 0, 0]))


def test_all_same_label_and_no_pairs_give_zero():
    x = np.arange(12.0).reshape(4, 3)
    for labels in (np.zeros(4, np.int64), np.arange(4)):
        for name in kernels.available_backends():
            loss, grad, fraction, active = kernels.batch_all_triplet(x, labels, 0.2, backend=name)
            assert (loss, fraction, active) == (0.0, 0.0, 0) and not grad.any()
            loss, grad = kernels.batch_hard_triplet(x, labels, 0.2, backend=name)
            assert loss == 0.0 and not grad.any()
            loss, grad, kept = kernels.semihard_triplet(x, labels, 0.2, backend=name)
            assert (loss, kept) == (0.0, 0) and not grad.any()


def test_reference_memory_stays_quadratic():
    """B = 200: a B x B x B float64 array would be 64 MB; the reference must stay far below."""
    x, labels = random_batch(3, 200, dim=16, ids=20, dtype=np.float64)
    tracemalloc.start()
    numpy_ref.batch_all_triplet(x, labels, 0.2)
    numpy_ref.semihard_triplet(x, labels, 0.2)
    numpy_ref.batch_hard_triplet(x, labels, 0.2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200**3 * 8 / 8, f"peak {peak / 1e6:.1f} MB"


# -- every backend against numpy_ref -------------------------------------------------------------------------
def assert_same_results(name, x, labels, margin, exact):
    """`exact`: the distances are exactly representable, so selections must agree to the index."""
    rtol, atol = (1e-10, 1e-10) if x.dtype == np.float64 else (1e-5, 2e-6)
    d_ref = numpy_ref.pairwise_sqdist(x)
    d = kernels.pairwise_sqdist(x, backend=name)
    assert d.dtype == x.dtype
    np.testing.assert_allclose(d, d_ref, rtol=0 if exact else rtol, atol=0 if exact else 4 * atol)
    g = np.random.default_rng(0).standard_normal(d.shape).astype(x.dtype)
    np.testing.assert_allclose(
        kernels.pairwise_sqdist_backward(x, g, backend=name), numpy_ref.pairwise_sqdist_backward(x, g),
        rtol=rtol, atol=20 * atol,
    )
    for fallback in FALLBACKS:
        pairs, negatives = kernels.semihard_negatives(d_ref, labels, fallback, backend=name)
        want_pairs, want_negatives = numpy_ref.semihard_negatives(d_ref, labels, fallback)
        assert np.array_equal(pairs, want_pairs) and np.array_equal(negatives, want_negatives), fallback
        assert pairs.dtype == negatives.dtype == np.int64
        got, want = (kernels.semihard_triplet(x, labels, margin, fallback, backend=name),
                     numpy_ref.semihard_triplet(x, labels, margin, fallback))
        assert got[2] == want[2]
        np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=atol)
        np.testing.assert_allclose(got[1], want[1], rtol=rtol, atol=atol)
        assert got[1].dtype == x.dtype
    got = kernels.batch_all_triplet(x, labels, margin, backend=name)
    want = numpy_ref.batch_all_triplet(x, labels, margin)
    assert got[2:] == want[2:]
    np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(got[1], want[1], rtol=rtol, atol=atol)
    for soft in (False, True):
        got = kernels.batch_hard_triplet(x, labels, margin, soft, backend=name)
        want = numpy_ref.batch_hard_triplet(x, labels, margin, soft)
        np.testing.assert_allclose(got[0], want[0], rtol=rtol, atol=atol)
        np.testing.assert_allclose(got[1], want[1], rtol=rtol, atol=atol)


@pytest.mark.parametrize("name, max_size, examples", OTHER_BACKENDS)
def test_backend_matches_reference_on_exact_batches(name, max_size, examples):
    @settings(deadline=None, max_examples=examples, suppress_health_check=[HealthCheck.too_slow])
    @given(exact_batches(batch=(2, max_size)), st.sampled_from([np.float64, np.float32]))
    def check(batch, dtype):
        assert_same_results(name, batch.embeddings.astype(dtype), batch.labels, batch.margin, exact=True)

    check()


@pytest.mark.parametrize("name, max_size, examples", OTHER_BACKENDS)
def test_backend_matches_reference_on_random_float32(name, max_size, examples):
    """Unit vectors in float32: distances differ by rounding between backends, but not by enough to change a
    selection on these seeds; losses and gradients agree to float32 precision."""
    for seed in range(max(2, examples // 10)):
        x, labels = random_batch(seed, 3 * max_size)
        assert_same_results(name, x, labels, 0.2, exact=False)


@pytest.mark.skipif("numba" not in kernels.available_backends(), reason="Numba is not installed")
def test_numba_matches_reference_with_many_positives_per_anchor():
    """numba_cpu sorts each anchor's positives and drops its negatives into the slots between them: batches of 2-4
    identities of up to 48 rows give an anchor dozens of positives, the small integer entries ties everywhere, and
    the labels are arbitrary integers (not 0..G-1)."""

    @settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
    @given(exact_batches(batch=(16, 48), people=(2, 4)), st.sampled_from([np.float64, np.float32]))
    def check(batch, dtype):
        labels = 7 * batch.labels - 3
        assert_same_results("numba", batch.embeddings.astype(dtype), labels, batch.margin, exact=True)

    check()


@pytest.mark.skipif("numba" not in kernels.available_backends(), reason="Numba is not installed")
def test_numba_semihard_selection_at_a_training_batch_size():
    """B = 1024 as 64 identities x 16 images, float32: the same selection as numpy_ref, index for index."""
    x, _ = random_batch(4, 1024, dim=16)
    labels = np.repeat(np.arange(64), 16)
    d = numpy_ref.pairwise_sqdist(x)
    for fallback in FALLBACKS:
        pairs, negatives = kernels.semihard_negatives(d, labels, fallback, backend="numba")
        want_pairs, want_negatives = numpy_ref.semihard_negatives(d, labels, fallback)
        assert np.array_equal(pairs, want_pairs) and np.array_equal(negatives, want_negatives), fallback


# -- dispatch ------------------------------------------------------------------------------------------------
def test_dispatch_follows_the_array_and_can_be_forced(monkeypatch):
    monkeypatch.delenv("TINYFACE_BACKEND", raising=False)
    assert kernels.get_backend(like=np.zeros(3)).__name__.endswith("numba_cpu")
    assert kernels.get_backend("numpy").__name__.endswith("numpy_ref")
    monkeypatch.setenv("TINYFACE_BACKEND", "numpy")
    assert kernels.get_backend(like=np.zeros(3)).__name__.endswith("numpy_ref")
    assert kernels.get_backend("numba").__name__.endswith("numba_cpu")  # the argument wins over the variable
    with pytest.raises(ValueError, match="unknown kernel backend"):
        kernels.get_backend("tpu")


@pytest.mark.skipif("cupy" in kernels.available_backends(), reason="CuPy and a GPU are present")
def test_forcing_an_unavailable_backend_says_so():
    with pytest.raises(RuntimeError, match="'cupy' is not available"):
        kernels.pairwise_sqdist(np.zeros((2, 2)), backend="cupy")


def test_bad_fallback_is_rejected():
    d, labels = np.zeros((3, 3)), np.array([0, 0, 1])
    for name in kernels.available_backends():
        with pytest.raises(ValueError, match="fallback"):
            kernels.semihard_negatives(d, labels, "nearest", backend=name)


# -- CUDA kernels for real: the simulator runs Python and checks no types, so type and lower each @cuda.jit kernel
# for the CUDA target (no GPU needed: numba's compile_cuda to LLVM IR), in a process without the simulator
LOWER_NUMBA_CUDA = """
from numba import types
from numba.cuda.compiler import compile_cuda
from tinyface.kernels import numba_cuda as k
for real in (types.float32, types.float64):
    m, i1, i2 = types.Array(real, 2, "C"), types.Array(types.int64, 1, "C"), types.Array(types.int64, 2, "C")
    f1, f2 = types.Array(types.float64, 1, "C"), types.Array(types.float64, 2, "C")
    for kernel, args in [
        (k._sqdist_kernel, (m, m)), (k._sqdist_backward_kernel, (m, m, real, m)),
        (k._semihard_select_kernel, (m, i1, types.int64, i2)), (k._semihard_weights_kernel, (m, i2, real, m, m)),
        (k._batch_all_kernel, (m, i1, real, m, f2)),
        (k._batch_hard_kernel, (m, i1, real, types.boolean, types.float64, m, f1)),
    ]:
        compile_cuda(kernel.py_func, types.void, args, cc=(7, 5))
"""


def test_numba_cuda_kernels_type_and_lower_for_the_gpu():
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, "-c", LOWER_NUMBA_CUDA], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]


# -- CUDA C sources ------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda p: p.name)
@pytest.mark.parametrize("real", ["float", "double"])
def test_cuda_sources_compile_with_nvcc(source, real, tmp_path):
    ptx = tmp_path / f"{source.stem}.ptx"
    result = subprocess.run(
        ["nvcc", "--ptx", *cupy_cuda.compile_options(real), str(source), "-o", str(ptx)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    entries = {line.split()[-1].rstrip("(") for line in ptx.read_text().splitlines() if ".entry" in line}
    launched = {
        "pairwise.cu": {"pairwise_sqdist", "pairwise_sqdist_backward"},
        "triplet.cu": {"semihard_select", "semihard_weights", "batch_all", "batch_hard"},
    }.get(source.name, set())
    assert launched <= entries
