"""gradcheck itself: it passes correct gradients, catches wrong ones (naming input, element and both values), and
works with non-tensor arguments."""

import re

import numpy as np
import pytest

from tinyface import Function, GradcheckError, Tensor, gradcheck, ops
from tinyface.testing import leaf


class WrongAtOneElement(Function):
    """a * b, with the gradient of b wrong at element (1, 0) only."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        grad_b = grad * self.a
        grad_b[1, 0] += 0.5
        return grad * self.b, grad_b


class ForgetsToReverse(Function):
    """x[::-1] whose backward forgets to reverse: sum(grad) is right, each element is wrong."""

    def forward(self, x):
        return x[::-1].copy()

    def backward(self, grad):
        return grad


def test_passes_on_correct_functions():
    rng = np.random.default_rng(0)
    a, b = leaf(rng.standard_normal((3, 2))), leaf(rng.standard_normal((2, 4)))
    assert gradcheck(lambda x, y: (x @ y).tanh() * x.sum(), a, b) is True
    assert gradcheck(lambda x: ops.logsumexp(x * x, axis=0), a) is True


def test_names_the_input_the_element_and_both_values():
    rng = np.random.default_rng(1)
    a, b = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((2, 3)))
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x, y: WrongAtOneElement.apply(x, y), a, b)
    message = str(info.value)
    assert "input 1" in message
    assert "(1, 0)" in message
    numbers = [float(v) for v in re.findall(r"(?:analytic|finite differences) (-?[\d.e+-]+)", message)]
    assert len(numbers) == 2
    # the two values named are the wrong analytic and the true numeric gradient of sum(a * b * w)
    assert abs(numbers[0] - numbers[1]) == pytest.approx(0.5, abs=1e-4)
    assert isinstance(info.value, AssertionError)  # so that a failing gradcheck reads as a test failure
    error = info.value  # the same facts as fields, for tools that build on gradcheck (tinyface.testing)
    assert (error.input_index, error.element, error.eps) == (1, (1, 0), 1e-6)
    assert [error.analytic, error.numeric] == pytest.approx(numbers, rel=1e-7)


def test_catches_a_gradient_whose_sum_is_right():
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(lambda x: ForgetsToReverse.apply(x), leaf([1.0, 2.0, 3.0, 4.0]))


def test_works_with_non_tensor_arguments():
    x = leaf([[0.5, 1.5], [2.0, 0.3]])
    assert gradcheck(lambda t, p, axis, scale: (t**p).sum(axis=axis) * scale, x, 3, 0, 0.5)
    assert gradcheck(lambda t, mask: ops.where(mask, t, t * 2.0), x, np.array([[True, False], [False, True]]))


def test_inputs_without_requires_grad_are_constants():
    x, c = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    assert gradcheck(lambda a, b: a * b, x, c)
    assert gradcheck(lambda a, b: a * 2.0, x, leaf([5.0, 6.0]))  # an unused input has gradient 0 both ways


def test_casts_to_float64_and_leaves_the_inputs_alone():
    x = Tensor(np.array([0.1, 0.2], dtype=np.float32), requires_grad=True)
    seen = []

    def f(t):
        seen.append(t.dtype)
        return t * t

    assert gradcheck(f, x)
    assert set(seen) == {np.dtype(np.float64)}
    assert x.dtype == np.float32 and x.grad is None
    np.testing.assert_array_equal(x.numpy(), np.array([0.1, 0.2], dtype=np.float32))


def test_refuses_what_it_cannot_check():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2.0, Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="Tensor"):
        gradcheck(lambda t: t.numpy(), leaf([1.0]))
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t.astype(np.float32), leaf([1.0]))


def test_tolerance_is_respected():
    class SlightlyOff(Function):
        def forward(self, x):
            return 2 * x

        def backward(self, grad):
            return grad * (2 + 1e-4)

    x = leaf([1.0, -1.0, 0.5])
    assert gradcheck(lambda t: SlightlyOff.apply(t), x, atol=1e-3)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: SlightlyOff.apply(t), x, atol=1e-6, rtol=1e-6)
