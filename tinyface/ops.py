"""The ops of the engine, each a `Function` with its forward and backward side by side.

One way to call each: an op of one tensor is a Tensor method (`x.exp()`, `x.relu()`, `x.sum(axis=1)`); the ops
of several tensors, or with other options, are the functions at the end (`maximum`, `where`, `concatenate`, `pad`,
`logsumexp`, ...).

Broadcasting: an input of shape (3, 1) added to one of shape (3, 4) was copied 4 times along the last axis, so
its gradient is the output gradient summed back over that axis (`unbroadcast`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinyface.device import array_module, scatter_add
from tinyface.tensor import Function, Tensor


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum `grad` over the axes that broadcasting added or stretched, so that it has `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim for a in axis))


def _expand(grad: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """Undo a reduction's shape: put the reduced axes back as size 1 so `grad` broadcasts over the input."""
    if not keepdims:
        for a in _axes(axis, len(shape)):
            grad = array_module(grad).expand_dims(grad, a)
    return grad


# -- elementwise, two inputs ---------------------------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad):
        return unbroadcast(grad, self.shapes[0]), unbroadcast(grad, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad):
        return unbroadcast(grad, self.shapes[0]), unbroadcast(-grad, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        return unbroadcast(grad * self.b, self.a.shape), unbroadcast(grad * self.a, self.b.shape)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        grad_a = grad / self.b
        return unbroadcast(grad_a, self.a.shape), unbroadcast(-grad_a * self.a / self.b, self.b.shape)


class Maximum(Function):
    """max(a, b) elementwise; at a tie the gradient goes half to each."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a).maximum(a, b)

    def backward(self, grad):
        share_a = (self.a > self.b) + 0.5 * (self.a == self.b)
        grad_a = grad * share_a.astype(grad.dtype)
        return unbroadcast(grad_a, self.a.shape), unbroadcast(grad - grad_a, self.b.shape)


class Minimum(Function):
    """min(a, b) elementwise; at a tie the gradient goes half to each."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return array_module(a).minimum(a, b)

    def backward(self, grad):
        share_a = (self.a < self.b) + 0.5 * (self.a == self.b)
        grad_a = grad * share_a.astype(grad.dtype)
        return unbroadcast(grad_a, self.a.shape), unbroadcast(grad - grad_a, self.b.shape)


class Where(Function):
    """condition ? a : b, with `condition` a boolean array (no gradient)."""

    def forward(self, a, b, condition):
        xp = array_module(a)
        self.condition = xp.asarray(condition, dtype=bool)
        self.shapes = a.shape, b.shape
        return xp.where(self.condition, a, b)

    def backward(self, grad):
        zero = grad.dtype.type(0)
        xp = array_module(grad)
        grad_a = xp.where(self.condition, grad, zero)
        grad_b = xp.where(self.condition, zero, grad)
        return unbroadcast(grad_a, self.shapes[0]), unbroadcast(grad_b, self.shapes[1])


# -- elementwise, one input ----------------------------------------------------------------------------------
class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


class Cast(Function):
    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.dtype)


class Pow(Function):
    """x ** p for a constant p:  d/dx = p x^(p-1)."""

    def forward(self, x, exponent):
        self.x, self.exponent = x, exponent
        return x**exponent

    def backward(self, grad):
        return grad * self.exponent * self.x ** (self.exponent - 1)


class Exp(Function):
    def forward(self, x):
        self.out = array_module(x).exp(x)
        return self.out

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).log(x)

    def backward(self, grad):
        return grad / self.x


class Sqrt(Function):
    """sqrt(x):  d/dx = 1 / (2 sqrt(x)); infinite at 0, so guard with `x + eps` where 0 can happen."""

    def forward(self, x):
        self.out = array_module(x).sqrt(x)
        return self.out

    def backward(self, grad):
        return grad / (2 * self.out)


class Abs(Function):
    def forward(self, x):
        self.x = x
        return array_module(x).abs(x)

    def backward(self, grad):
        return grad * array_module(grad).sign(self.x)


class ReLU(Function):
    """max(x, 0); its gradient passes where the output is positive. On NumPy arrays one compiled pass each way
    (nn/_compiled.py; imported here, not at the top, because tinyface.nn builds on this module)."""

    def forward(self, x):
        from tinyface.nn import _compiled as compiled

        self.out = compiled.relu(x) if compiled.ENABLED and array_module(x) is np else None
        if self.out is None:
            self.out = array_module(x).maximum(x, 0)  # not x * (x > 0): -inf * False is NaN
        return self.out

    def backward(self, grad):
        from tinyface.nn import _compiled as compiled

        grad_x = compiled.relu_backward(grad, self.out) if compiled.ENABLED and array_module(grad) is np else None
        return grad_x if grad_x is not None else grad * (self.out > 0)


class Tanh(Function):
    def forward(self, x):
        self.out = array_module(x).tanh(x)
        return self.out

    def backward(self, grad):
        return grad * (1 - self.out * self.out)


class Sigmoid(Function):
    def forward(self, x):
        xp = array_module(x)
        self.out = 0.5 * (1 + xp.tanh(0.5 * x))  # 1 / (1 + e^-x), without overflow
        return self.out

    def backward(self, grad):
        return grad * self.out * (1 - self.out)


class Softplus(Function):
    """log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|) so large |x| neither overflows nor loses digits."""

    def forward(self, x):
        xp = array_module(x)
        self.x = x
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, grad):
        xp = array_module(grad)
        return grad * 0.5 * (1 + xp.tanh(0.5 * self.x))


class Clip(Function):
    """min(max(x, low), high); the gradient is 1 strictly inside, 0 outside."""

    def forward(self, x, low=None, high=None):
        xp = array_module(x)
        self.inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            self.inside &= x > low
        if high is not None:
            self.inside &= x < high
        return xp.clip(x, low, high)

    def backward(self, grad):
        return grad * self.inside


# -- reductions ----------------------------------------------------------------------------------------------
class Sum(Function):
    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=_axes(axis, x.ndim), keepdims=keepdims)

    def backward(self, grad):
        xp = array_module(grad)
        return xp.broadcast_to(_expand(grad, self.shape, self.axis, self.keepdims), self.shape)


class Max(Function):
    """The largest entry along `axis`; at a tie the gradient is shared equally among the tied entries."""

    def forward(self, x, axis=None, keepdims=False):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = x.max(axis=_axes(axis, x.ndim), keepdims=True)
        return self.out if keepdims else self.out.reshape(_reduced_shape(x.shape, axis))

    def backward(self, grad):
        winners = (self.x == self.out).astype(grad.dtype)
        winners /= winners.sum(axis=_axes(self.axis, self.x.ndim), keepdims=True)
        return winners * _expand(grad, self.x.shape, self.axis, self.keepdims)


class Min(Function):
    """The smallest entry along `axis`; at a tie the gradient is shared equally among the tied entries."""

    def forward(self, x, axis=None, keepdims=False):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = x.min(axis=_axes(axis, x.ndim), keepdims=True)
        return self.out if keepdims else self.out.reshape(_reduced_shape(x.shape, axis))

    def backward(self, grad):
        winners = (self.x == self.out).astype(grad.dtype)
        winners /= winners.sum(axis=_axes(self.axis, self.x.ndim), keepdims=True)
        return winners * _expand(grad, self.x.shape, self.axis, self.keepdims)


def _reduced_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    reduced = _axes(axis, len(shape))
    return tuple(n for i, n in enumerate(shape) if i not in reduced)


# -- linear algebra ------------------------------------------------------------------------------------------
class MatMul(Function):
    """a @ b, batched over leading axes with broadcasting:  dL/da = g @ b^T,  dL/db = a^T @ g."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        xp = array_module(grad)
        a = self.a[None, :] if self.a.ndim == 1 else self.a  # a vector is a (1, n) row ...
        b = self.b[:, None] if self.b.ndim == 1 else self.b  # ... or an (n, 1) column
        if self.b.ndim == 1:  # first, so that the () gradient of vector @ vector becomes (1, 1)
            grad = xp.expand_dims(grad, -1)
        if self.a.ndim == 1:
            grad = xp.expand_dims(grad, -2)
        grad_a = grad @ xp.swapaxes(b, -1, -2)
        grad_b = xp.swapaxes(a, -1, -2) @ grad
        grad_a = unbroadcast(grad_a, a.shape).reshape(self.a.shape)
        grad_b = unbroadcast(grad_b, b.shape).reshape(self.b.shape)
        return grad_a, grad_b


# -- shapes --------------------------------------------------------------------------------------------------
class Reshape(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.shape)


class Permute(Function):
    def forward(self, x, axes):
        self.axes = tuple(a % x.ndim for a in axes)  # negative axes would confuse argsort in backward
        return x.transpose(self.axes)

    def backward(self, grad):
        return grad.transpose(tuple(np.argsort(self.axes)))


class GetItem(Function):
    """x[index] for slices and integer arrays; repeated indices add up in backward (scatter-add)."""

    def forward(self, x, index):
        self.shape, self.dtype = x.shape, x.dtype
        self.index = index.data.astype(np.int64) if isinstance(index, Tensor) else index  # Tensors hold floats
        return x[self.index]

    def backward(self, grad):
        xp = array_module(grad)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad  # slices never repeat an element
        else:
            scatter_add(out, self.index, grad)
        return out


def _is_basic_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


class Concatenate(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return array_module(*arrays).concatenate(arrays, axis=axis)

    def backward(self, grad):
        return tuple(array_module(grad).split(grad, self.splits, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        return array_module(*arrays).stack(arrays, axis=axis)

    def backward(self, grad):
        xp = array_module(grad)
        return tuple(xp.squeeze(g, axis=self.axis) for g in xp.split(grad, grad.shape[self.axis], axis=self.axis))


class Pad(Function):
    """Zero padding; `pad_width` as in numpy.pad: ((before, after), ...) per axis."""

    def forward(self, x, pad_width, value=0.0):
        self.slices = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, x.shape, strict=True))
        return array_module(x).pad(x, pad_width, constant_values=value)

    def backward(self, grad):
        return grad[self.slices]


# -- functions of several tensors, or not elementwise (elementwise ops of one tensor are Tensor methods) -----
def maximum(a: Any, b: Any) -> Tensor:
    return Maximum.apply(a, b)


def minimum(a: Any, b: Any) -> Tensor:
    return Minimum.apply(a, b)


def where(condition: Any, a: Any, b: Any) -> Tensor:
    cond = condition.data if isinstance(condition, Tensor) else condition
    return Where.apply(a, b, condition=cond)


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    return Stack.apply(*tensors, axis=axis)


def pad(x: Tensor, pad_width: Sequence[tuple[int, int]], value: float = 0.0) -> Tensor:
    widths = tuple((int(b), int(a)) for b, a in pad_width)
    return Pad.apply(x, pad_width=widths, value=value)


def logsumexp(x: Tensor, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log sum_i exp(x_i), shifted by the (constant) max so that exp never overflows."""
    shift = Tensor(x.data.max(axis=axis, keepdims=True))
    out = (x - shift).exp().sum(axis=axis, keepdims=True).log() + shift
    return out if keepdims else out.reshape(_reduced_shape(x.shape, axis))
