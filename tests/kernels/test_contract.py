"""Every backend module keeps the contract of tinyface/kernels/contract.py: the functions of `Backend` with the same
parameters, and results of the documented shapes and dtypes. (test_kernels.py checks the numbers themselves.)"""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from tinyface import kernels
from tinyface.kernels import contract
from tinyface.testing import references

FUNCTIONS = [name for name, value in vars(contract.Backend).items() if inspect.isfunction(value) and name[0] != "_"]
LABELS = np.array([0, 0, 1, 1, 2, 2])  # three identities of two: every kind of triplet exists
PAIRS = 6  # anchor-positive pairs of LABELS (two per identity)


def parameters(function) -> list[tuple[str, object]]:
    """(name, default) of each parameter, `self` left out."""
    return [(p.name, p.default) for p in inspect.signature(function).parameters.values() if p.name != "self"]


def importable(module: str):
    try:
        return importlib.import_module(f"tinyface.kernels.{module}")
    except ImportError as error:  # an optional dependency (Numba) missing
        pytest.skip(f"tinyface.kernels.{module} does not import here: {error}")


def available(name: str):
    marks = [pytest.mark.skipif(name not in kernels.available_backends(), reason=f"{name!r} not available")]
    return pytest.param(name, marks=marks + ([pytest.mark.gpu] if name == "cupy" else []))


def assert_array(value, shape, dtype) -> None:
    assert isinstance(value, np.ndarray), type(value)
    assert value.shape == shape and value.dtype == dtype, (value.shape, value.dtype, shape, dtype)


def test_the_protocol_lists_every_kernel_and_the_fallbacks_agree():
    assert sorted(FUNCTIONS) == sorted(
        ["pairwise_sqdist", "pairwise_sqdist_backward", "semihard_negatives", "semihard_triplet",
         "batch_all_triplet", "batch_hard_triplet"]
    )
    assert get_args(contract.Fallback) == contract.FALLBACKS  # the type's names are the codes' names
    assert sorted(contract.FALLBACK_CODES.values()) == list(range(len(contract.FALLBACKS)))
    with pytest.raises(ValueError, match="fallback must be one of"):
        contract.fallback_code("nearest")


@pytest.mark.parametrize("module", kernels.BACKENDS.values())
def test_backend_has_every_function_with_the_contracts_parameters(module):
    """Checked on every module that imports, CuPy or not: cupy_cuda imports without CuPy."""
    backend = importable(module)
    for name in FUNCTIONS:
        assert callable(getattr(backend, name, None)), f"{module} lacks {name}"
        assert parameters(getattr(backend, name)) == parameters(getattr(contract.Backend, name)), f"{module}.{name}"


def test_the_plain_loop_references_have_the_contracts_parameters():
    """tinyface.testing.references, the definitions the kernels are tested by, is called like a backend."""
    for name in FUNCTIONS:
        assert parameters(getattr(references, name)) == parameters(getattr(contract.Backend, name)), name


def test_dispatch_takes_the_contracts_parameters_and_a_backend():
    for name in FUNCTIONS:
        assert parameters(getattr(kernels, name)) == [*parameters(getattr(contract.Backend, name)), ("backend", None)]


@pytest.mark.parametrize("name", [available(name) for name in kernels.BACKENDS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backend_returns_the_documented_shapes_and_dtypes(name, dtype):
    """On a small batch (the CUDA backends run in Numba's simulator when there is no GPU)."""
    backend = kernels.get_backend(name)
    b, dim = len(LABELS), 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, dim)).astype(dtype)

    d = backend.pairwise_sqdist(x)
    assert_array(d, (b, b), dtype)
    assert d.min() >= 0 and not np.diagonal(d).any()
    assert_array(backend.pairwise_sqdist_backward(x, rng.standard_normal((b, b)).astype(dtype)), (b, dim), dtype)

    for fallback in contract.FALLBACKS:
        pairs, negatives = backend.semihard_negatives(d, LABELS, fallback)
        kept = len(negatives)
        assert kept == PAIRS or (fallback == "skip" and kept <= PAIRS), (fallback, kept)
        assert_array(pairs, (kept, 2), np.int64)
        assert_array(negatives, (kept,), np.int64)
        loss, grad, num_pairs = backend.semihard_triplet(x, LABELS, 0.2, fallback)
        assert type(loss) is float and type(num_pairs) is int and num_pairs == kept
        assert_array(grad, (b, dim), dtype)

    loss, grad, fraction, num_active = backend.batch_all_triplet(x, LABELS, 0.2)
    assert type(loss) is float and type(fraction) is float and type(num_active) is int
    assert 0 <= fraction <= 1 and 0 <= num_active <= PAIRS * 4  # each pair has 4 negatives
    assert_array(grad, (b, dim), dtype)

    for soft in (False, True):
        loss, grad = backend.batch_hard_triplet(x, LABELS, 0.2, soft)
        assert type(loss) is float
        assert_array(grad, (b, dim), dtype)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed")
def test_cuda_sources_refuse_to_compile_without_the_contracts_codes(tmp_path):
    source = Path(kernels.__file__).with_name("triplet.cu")
    result = subprocess.run(
        ["nvcc", "--ptx", str(source), "-o", str(tmp_path / "triplet.ptx")], capture_output=True, text=True
    )
    assert result.returncode != 0 and "contract.py" in result.stderr
