"""The exercise checks of lesson 2, gradients: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises import lesson02_autograd as ex
from tinyface.tensor import Function


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_anchor_gradient(unanswered)) == "unanswered"
    assert status(ex.check_numerical_gradient(unanswered)) == "unanswered"
    assert status(ex.check_function(None, np.tanh)) == "unanswered"


def test_check_anchor_gradient(status):
    assert status(ex.check_anchor_gradient(lambda a, p, n: 2 * (n - p))) == "right"
    assert "sign" in ex.check_anchor_gradient(lambda a, p, n: 2 * (p - n)).message
    assert "factor of 2" in ex.check_anchor_gradient(lambda a, p, n: n - p).message


def test_check_numerical_gradient(status):
    def central(f, x, eps):
        grad = np.zeros_like(x)
        for k in np.ndindex(x.shape):
            x_plus, x_minus = x.copy(), x.copy()
            x_plus[k] += eps
            x_minus[k] -= eps
            grad[k] = (f(x_plus) - f(x_minus)) / (2 * eps)
        return grad

    def forward(f, x, eps):
        grad = np.zeros_like(x)
        for k in np.ndindex(x.shape):
            x_plus = x.copy()
            x_plus[k] += eps
            grad[k] = (f(x_plus) - f(x)) / eps
        return grad

    def mutating(f, x, eps):
        grad = central(f, x, eps)
        x += 1
        return grad

    assert status(ex.check_numerical_gradient(central)) == "right"
    assert "central" in ex.check_numerical_gradient(forward).message
    assert "changed" in ex.check_numerical_gradient(mutating).message


class Softsign(Function):
    def forward(self, x):
        self.x = x
        return x / (1 + np.abs(x))

    def backward(self, grad):
        return grad / (1 + np.abs(self.x)) ** 2


class WrongSoftsign(Softsign):
    def backward(self, grad):
        return grad / (1 + np.abs(self.x))


class OpenSoftsign(Function):
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError


def test_check_function(status, unanswered):
    def reference(x):
        return x / (1 + np.abs(x))

    assert status(ex.check_function(Softsign, reference)) == "right"
    wrong = ex.check_function(WrongSoftsign, reference)
    assert status(wrong) == "wrong" and "GradcheckError" in wrong.message
    assert status(ex.check_function(OpenSoftsign, reference)) == "unanswered"
