"""The compiled CPU loops of nn/_compiled.py give the same numbers as the NumPy reference code in functional.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyface import Tensor, gradcheck
from tinyface.nn import _compiled as compiled
from tinyface.nn import functional as F

pytestmark = pytest.mark.skipif(not compiled.ENABLED, reason="numba not installed or TINYFACE_NUMBA=0")


def both_paths(fn):
    """fn() with the compiled loops, then with the NumPy reference."""
    fast = fn()
    compiled.ENABLED = False
    try:
        reference = fn()
    finally:
        compiled.ENABLED = True
    return fast, reference


def forward_backward(op, x, *params):
    inputs = [Tensor(x, requires_grad=True)] + [Tensor(p, requires_grad=True) for p in params]
    out = op(*inputs)
    weights = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    (out * Tensor(weights)).sum().backward()
    return [out.numpy()] + [t.grad for t in inputs]


shapes = st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(1, 4))


@settings(max_examples=25, deadline=None)
@given(shapes, st.sampled_from([(2, 2), (1, 2), (3, 1)]), st.integers(0, 2**31 - 1))
def test_max_pool_matches_reference(shape, kernel, seed):
    n, c, h, w = shape
    shape = (n, c, h * kernel[0], w * kernel[1])
    x = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape).astype(np.float32)  # no ties
    compiled, reference = both_paths(lambda: forward_backward(lambda t: F.max_pool2d(t, kernel), x))
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_max_pool_first_maximum_wins_at_a_tie():
    x = Tensor(np.zeros((1, 1, 2, 2), np.float32), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 0], [0, 0]])


@settings(max_examples=25, deadline=None)
@given(shapes, st.integers(0, 2**31 - 1))
def test_batch_norm_matches_reference(shape, seed):
    rng = np.random.default_rng(seed)
    if np.prod(shape) // shape[1] < 2:
        shape = (2, *shape[1:])
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    gamma = rng.uniform(0.5, 2, shape[1]).astype(np.float32)
    beta = rng.standard_normal(shape[1]).astype(np.float32)

    def run():
        return forward_backward(lambda t, g, b: F.batch_norm(t, None, None, g, b, training=True), x, gamma, beta)

    compiled, reference = both_paths(run)
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


def test_compiled_batch_norm_gradcheck():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 2, 2, 3)), requires_grad=True)
    gamma = Tensor(rng.uniform(0.5, 2, 2), requires_grad=True)
    beta = Tensor(rng.standard_normal(2), requires_grad=True)
    assert gradcheck(lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True), x, gamma, beta)


def test_max_pool_window_larger_than_256_cells():
    x = np.zeros((1, 1, 17, 17), np.float32)
    x[..., 16, 16] = 1
    t = Tensor(x, requires_grad=True)
    F.max_pool2d(t, 17).sum().backward()
    assert t.grad[0, 0, 16, 16] == 1 and t.grad.sum() == 1


@st.composite
def conv_shapes(draw):
    """Images, filters, stride and padding of a convolution whose output is at least 1 x 1."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 6))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 6))
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    return (n, c, h, w), (o, c, kh, kw), stride, padding


@settings(max_examples=40, deadline=None)
@given(conv_shapes(), st.integers(0, 2**31 - 1))
def test_convolution_col2im_matches_reference(shapes, seed):
    x_shape, w_shape, stride, padding = shapes
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape).astype(np.float32), rng.standard_normal(w_shape).astype(np.float32)
    compiled, reference = both_paths(lambda: forward_backward(
        lambda t, k: F.conv2d(t, k, stride=stride, padding=padding), x, w))
    for a, b in zip(compiled, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_compiled_loops_take_any_memory_layout():
    """Images laid out image-major (as a user passes them) or channel-major (as the convolutions make them)
    give the same numbers."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    channel_major = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    for op in (lambda t: F.max_pool2d(t, 2), lambda t: F.batch_norm(t, None, None, training=True)):
        a, b = forward_backward(op, x), forward_backward(op, channel_major)
        for u, v in zip(a, b, strict=True):
            np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", ["image-major", "channel-major", "strided", "broadcast gradient"])
def test_compiled_relu_matches_reference(layout):
    """One pass each way for any dense layout; a strided view or a broadcast gradient takes the NumPy path; the
    same numbers either way, -inf to 0 and NaN kept."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    x[0, 0, 0, :3] = [-np.inf, np.inf, np.nan]
    if layout == "channel-major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    if layout == "strided":
        x = x[:, :, ::2]

    grad = rng.standard_normal(x.shape).astype(np.float32)
    if layout == "broadcast gradient":
        grad = np.broadcast_to(grad[:1, :1, :1, :1], x.shape)

    def run():
        t = Tensor(x, requires_grad=True)
        out = t.relu()
        out.backward(grad)
        return out.numpy(), t.grad

    for a, b in zip(*both_paths(run), strict=True):
        np.testing.assert_array_equal(a, b)
    dense = np.ones((2, 3, 4, 4), np.float32)
    assert compiled.relu(dense[:, :, ::2]) is None and compiled.relu(dense).shape == dense.shape
    assert compiled.relu(dense.astype(np.float16)) is None  # Numba has no float16 loops: NumPy's path
