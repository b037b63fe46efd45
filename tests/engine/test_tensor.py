"""The autograd engine: Tensor's properties, dtype policy, backward (topological order, accumulation, deep
graphs), no_grad, detach, and custom Functions."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from tinyface import Function, Tensor, is_grad_enabled, no_grad, ops, tensor
from tinyface.testing import arrays


# -- properties and dtype policy -------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [[1.0, 2.0], [1, 2], 3.5, np.arange(4), np.ones(2, dtype=np.float16),
                                  np.ones((2, 3), dtype=np.int64), [True, False]])
def test_float32_by_default(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), np.asarray(data, dtype=np.float32))


def test_float64_kept_when_given():
    assert Tensor(np.ones(3)).dtype == np.float64
    assert Tensor(np.float64(2.0)).dtype == np.float64
    assert Tensor([1.0, 2.0], dtype=np.float64).dtype == np.float64
    assert tensor([1, 2], dtype=np.float64).dtype == np.float64
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    y = (x * 2.0 + 1.0).exp().sum()
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


def test_python_numbers_do_not_change_the_dtype_of_a_float32_tensor():
    x = Tensor([1.0, 2.0])
    for out in (x + 1, 2 * x, x / 3.0, 1.0 - x, x**2, -x):
        assert out.dtype == np.float32


def test_shape_ndim_size_len_item_numpy():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and isinstance(x.shape, tuple)
    assert (x.ndim, x.size, len(x)) == (2, 6, 2)
    assert isinstance(x.numpy(), np.ndarray)
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
    assert x.device == "cpu"
    s = x.sum()
    assert s.item() == 15.0 and isinstance(s.item(), float)
    assert Tensor([[7.0]]).item() == 7.0
    with pytest.raises(ValueError, match="one element"):
        x.item()
    assert "requires_grad=True" in repr(Tensor([1.0], requires_grad=True))


def test_requires_grad_defaults_and_propagation():
    a = Tensor([1.0, 2.0])
    b = Tensor([3.0, 4.0], requires_grad=True)
    assert not a.requires_grad and a.grad is None
    assert b.requires_grad and b.grad is None
    assert not (a * 2).requires_grad
    assert (a * b).requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        (a * 2).sum().backward()


def test_comparisons_give_boolean_arrays():
    x = Tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x > 1.5, [False, True, True])
    np.testing.assert_array_equal(x <= Tensor([1.0, 1.0, 5.0]), [True, False, True])


# -- backward ----------------------------------------------------------------------------------------------------
def test_backward_defaults_to_one_for_a_scalar_and_needs_a_gradient_otherwise():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3))
    (x * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])
    x.zero_grad()
    (x * x).backward(Tensor([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])


def test_backward_on_a_leaf():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_diamond_graph():
    # x -> a -> (b, c) -> d: both paths must be summed, and `a` must be done after both b and c
    x = Tensor([2.0], requires_grad=True)
    a = x * 3.0
    b = a + 1.0
    c = a * a
    d = b * c  # (3x + 1) * 9x^2 = 27x^3 + 9x^2; d' = 81x^2 + 18x
    d.sum().backward()
    np.testing.assert_allclose(x.grad, [81 * 4 + 18 * 2])


def test_paths_of_different_lengths():
    # y depends on x directly and through a long chain: a naive depth-first order would process x's consumer
    # before all of its gradient had arrived
    x = Tensor([1.5], requires_grad=True)
    h = x
    for _ in range(10):
        h = h * 1.0 + 0.0
    y = (h * x).sum()  # x^2
    y.backward()
    np.testing.assert_allclose(x.grad, [3.0])


@settings(max_examples=25, deadline=None)
@given(arrays(hnp.array_shapes(max_dims=3, max_side=4), -3, 3))
def test_gradient_accumulates_when_a_tensor_is_used_more_than_once(x):
    t = Tensor(x, requires_grad=True)
    (t + t + t * t).sum().backward()
    np.testing.assert_allclose(t.grad, 2 + 2 * x)


def test_leaf_gradients_accumulate_across_backward_calls():
    x = Tensor([1.0, -2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0 + 2.0, 3.0 - 4.0])
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_leaf_gradients_are_separate_writeable_arrays():
    # Add's backward hands the same array to both inputs, and Sum's is a read-only broadcast view: a leaf
    # must get its own copy, or `x.grad *= 0.5` (gradient clipping) would fail or change another tensor's grad
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, 4.0], requires_grad=True)
    (x + y).sum().backward()
    assert x.grad is not y.grad
    x.grad *= 0.5
    np.testing.assert_array_equal(x.grad, [0.5, 0.5])
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    g = np.array([1.0, 1.0])
    x.zero_grad()
    x.backward(g)
    g[0] = 100.0
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_deep_graph_does_not_hit_the_recursion_limit():
    depth = 5000
    assert depth > sys.getrecursionlimit() / 2
    x = Tensor([1.0], requires_grad=True, dtype=np.float64)
    y = x
    for i in range(depth):
        y = y * 0.9999 + x * 0.0001 if i % 2 else (y + 1.0) - 1.0
    y.sum().backward()
    # y_k = a y_{k-1} + b x every other step, with a + b = 1: dy/dx stays exactly 1
    np.testing.assert_allclose(x.grad, [1.0], rtol=1e-9)


def test_intermediate_tensors_that_need_no_grad_get_none():
    x = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([5.0, 6.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, [5.0, 6.0])


# -- no_grad and detach ------------------------------------------------------------------------------------------
def test_no_grad_records_nothing_and_restores_the_mode():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y._ctx is None
    with pytest.raises(ValueError), no_grad():
        raise ValueError
    assert is_grad_enabled()


def test_detach_cuts_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d._ctx is None
    np.testing.assert_array_equal(d.numpy(), x.numpy())
    (d * x).sum().backward()  # d is a constant: the gradient is d, not 2x
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])
    assert Tensor(np.ones(2), requires_grad=True).detach().dtype == np.float64


# -- custom Functions --------------------------------------------------------------------------------------------
class Cube(Function):
    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, grad):
        return 3 * self.x**2 * grad


class ScaleBy(Function):
    def forward(self, x, factor):
        self.factor = factor
        return x * factor

    def backward(self, grad):
        return grad * self.factor


def test_custom_function_with_options():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = ScaleBy.apply(Cube.apply(x), factor=2.0)
    assert isinstance(y._ctx, ScaleBy)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 24.0])


def test_needs_input_grad():
    seen = {}

    class Probe(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, grad):
            seen["needs"] = self.needs_input_grad
            return grad, None

    a = Tensor([1.0], requires_grad=True)
    Probe.apply(a, Tensor([2.0])).sum().backward()
    assert seen["needs"] == (True, False)
    np.testing.assert_array_equal(a.grad, [1.0])


def test_ops_accept_arrays_and_numbers_on_either_side():
    x = Tensor([1.0, 2.0], requires_grad=True)
    arr = np.array([3.0, 4.0], dtype=np.float32)
    out = arr * x + arr - x / arr + (1.0 - x)
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, arr - 1 / arr - 1, rtol=1e-6)


def test_transpose_forms():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(0, 2).shape == (4, 3, 2)
    assert x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.permute((2, 0, 1)).shape == (4, 2, 3)
    m = Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(m.transpose(0, 1).numpy(), m.numpy().T)  # swaps, as the docstring says
    np.testing.assert_array_equal(m.transpose(1, 0).numpy(), m.numpy().T)


def test_grad_of_ops_through_a_reshape_and_index_chain():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.reshape(3, 2)[np.array([0, 0, 2])]  # row 0 twice
    (y * Tensor(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))).sum().backward()
    # reshaped x: [[x0, x1], [x2, x3], [x4, x5]]; row 0 weighted (1, 2) + (3, 4), row 2 (5, 6)
    np.testing.assert_array_equal(x.grad, [[4.0, 6.0, 0.0], [0.0, 5.0, 6.0]])


def test_each_op_has_one_way_to_call_it():
    for name in ["logsumexp", "maximum", "minimum", "where", "concatenate", "stack", "pad"]:
        assert callable(getattr(ops, name)), name
    for name in ["exp", "log", "sqrt", "abs", "relu", "tanh", "sigmoid", "softplus", "clip", "mean", "sum", "max"]:
        assert callable(getattr(Tensor, name)) and not hasattr(ops, name), name


def test_a_float64_constant_keeps_a_float32_tensor_float32():
    x = Tensor(np.ones(2, np.float32), requires_grad=True)
    y = x * np.array([1.0, 2.0])  # a float64 NumPy array beside a float32 tensor
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_a_backward_with_the_wrong_number_of_gradients_is_an_error():
    class Broken(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, grad):
            return (grad,)

    a, b = Tensor([1.0], requires_grad=True), Tensor([2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="one per input"):
        Broken.apply(a, b).sum().backward()
