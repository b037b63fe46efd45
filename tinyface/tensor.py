"""The autograd engine: a `Tensor` that remembers how it was made, and `Function`, the op it was made by.

Every op is a `Function` with a `forward` on raw arrays and a `backward` that maps the gradient of the output
to the gradients of the inputs (chain rule, one op at a time). `Tensor.backward()` visits the graph in reverse
topological order and adds up the gradient that flows into each tensor along every path:

    dL/dx = sum over ops y = f(x, ...) that use x of  (dL/dy) * (dy/dx)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tinyface.device import DEFAULT_DTYPE, array_module, to_device, to_numpy

_grad_enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block ops record no graph: for evaluation and for optimiser updates."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def _as_array(data: Any, dtype: Any = None, like: Any = None) -> Any:
    """An array for `data`: floats become float32 unless they already are float64 arrays (or `dtype` says)."""
    xp = array_module(data) if like is None else array_module(like)
    if dtype is not None:
        return xp.asarray(data, dtype=dtype)
    array = xp.asarray(data)
    if array.dtype == np.float64 and hasattr(data, "dtype"):
        return array  # a float64 array is kept as given: gradcheck relies on it
    if array.dtype.kind in "fiub" and array.dtype != DEFAULT_DTYPE:
        return array.astype(DEFAULT_DTYPE)
    return array


class Tensor:
    """An n-dimensional array (NumPy or CuPy) with an optional gradient.

    `requires_grad=True` marks a leaf whose gradient `backward()` fills in `.grad` (adding to what is there).
    """

    __array_priority__ = 1000  # so that `ndarray * Tensor` calls Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        self.data = _as_array(data, dtype)
        self.grad: Any = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Function | None = None  # the op that made this tensor (None for a leaf)

    # -- array-like properties -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        return "cpu" if array_module(self.data) is np else "cuda"

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU when needed)."""
        return to_numpy(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def detach(self) -> Tensor:
        """The same data, cut from the graph (no gradient flows back through it)."""
        return Tensor(self.data)

    def to(self, device: str) -> Tensor:
        """A copy on "cpu" or "cuda"; leaves keep requires_grad."""
        return Tensor(to_device(self.data, device), requires_grad=self.requires_grad)

    def astype(self, dtype: Any) -> Tensor:
        return ops.Cast.apply(self, dtype=dtype)

    def zero_grad(self) -> None:
        self.grad = None

    # -- backward ----------------------------------------------------------------------------------------------
    def backward(self, grad: Any = None) -> None:
        """Fill in `.grad` of every leaf tensor (requires_grad=True, made by no op) this one depends on; leaves
        accumulate across calls. Intermediate results pass their gradient on without keeping it.

        `grad` is dL/dself; it defaults to 1 for a one-element tensor (a loss).
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input had requires_grad=True")
        xp = array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a scalar, got shape {self.shape}")
            grad = xp.ones_like(self.data)
        grad = xp.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
        if grad.shape != self.data.shape:
            raise ValueError(f"gradient of shape {grad.shape} given for a tensor of shape {self.shape}")

        grads: dict[int, Any] = {id(self): grad}
        for node in reversed(self._topological_order()):
            node_grad = grads.pop(id(node), None)
            if node_grad is None:
                continue
            if node._ctx is None:  # a leaf: accumulate
                # a copy the first time: node_grad may be a read-only broadcast view, or shared with other tensors
                node.grad = node_grad.copy() if node.grad is None else node.grad + node_grad
                continue
            ctx = node._ctx  # an intermediate result: its gradient flows on and is not kept (memory)
            input_grads = ctx.backward(node_grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(ctx.inputs):
                raise RuntimeError(f"{type(ctx).__name__}.backward returned {len(input_grads)} gradients for "
                                   f"{len(ctx.inputs)} inputs: return one per input (None where there is none)")
            for parent, parent_grad in zip(ctx.inputs, input_grads, strict=True):
                if parent_grad is None or not parent.requires_grad:
                    continue
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad

    def _topological_order(self) -> list[Tensor]:
        """Every tensor that needs a gradient, inputs before the ops that use them (iterative DFS: no recursion
        limit for deep graphs)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            if node._ctx is not None:
                stack.extend((p, False) for p in node._ctx.inputs if p.requires_grad and id(p) not in visited)
        return order

    # -- operators (the ops themselves live in tinyface.ops) ----------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.Add.apply(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(other, self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pow__(self, exponent: float) -> Tensor:
        return ops.Pow.apply(self, exponent=exponent)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=index)

    # comparisons give plain boolean arrays: they have no gradient
    def __lt__(self, other: Any) -> Any:
        return self.data < _data(other)

    def __le__(self, other: Any) -> Any:
        return self.data <= _data(other)

    def __gt__(self, other: Any) -> Any:
        return self.data > _data(other)

    def __ge__(self, other: Any) -> Any:
        return self.data >= _data(other)

    # -- methods that forward to ops ------------------------------------------------------------------------
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """The sum over `axis` divided by the number of entries it adds up."""
        count = int(np.prod([self.shape[a] for a in ops._axes(axis, self.ndim)]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.ReLU.apply(self)

    def softplus(self) -> Tensor:
        return ops.Softplus.apply(self)

    def clip(self, low: float | None = None, high: float | None = None) -> Tensor:
        return ops.Clip.apply(self, low=low, high=high)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.Reshape.apply(self, shape=shape)

    def transpose(self, *axes: int) -> Tensor:
        """Reverse the axes, or swap two (`transpose(0, 1)`), or permute all (`transpose(1, 0, 2)`)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if len(axes) == 0:
            axes = tuple(reversed(range(self.ndim)))
        elif len(axes) == 2:
            order = list(range(self.ndim))
            order[axes[0]], order[axes[1]] = order[axes[1]], order[axes[0]]
            axes = tuple(order)
        return ops.Permute.apply(self, axes=axes)

    def permute(self, *axes: int) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.Permute.apply(self, axes=axes)

    @property
    def T(self) -> Tensor:  # noqa: N802 - NumPy's name
        return self.transpose()

    def flatten(self, start_dim: int = 0) -> Tensor:
        return self.reshape(*self.shape[:start_dim], -1)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


class Function:
    """One differentiable op. Subclasses write `forward(*arrays, **options)` on raw arrays and
    `backward(grad)` returning one gradient per tensor input (None where there is none), and are called with
    `MyOp.apply(*inputs, **options)`. The instance is the context: keep what backward needs on `self`.

        class Square(Function):
            def forward(self, x):
                self.x = x
                return x * x

            def backward(self, grad):
                return 2 * self.x * grad
    """

    inputs: tuple[Tensor, ...]

    def forward(self, *arrays: Any, **options: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:
        raise NotImplementedError

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        return tuple(t.requires_grad for t in self.inputs)

    @classmethod
    def apply(cls, *inputs: Any, **options: Any) -> Tensor:
        reference = next((x for x in inputs if isinstance(x, Tensor)), None)
        like = reference.data if reference is not None else None
        tensors = tuple(
            x if isinstance(x, Tensor) else Tensor(_constant(x, like)) for x in inputs
        )
        fn = cls()
        fn.inputs = tensors
        out = Tensor(fn.forward(*(t.data for t in tensors), **options))
        if _grad_enabled and any(t.requires_grad for t in tensors):
            out.requires_grad = True
            out._ctx = fn
        return out


def _constant(value: Any, like: Any) -> Any:
    """A Python number or array used beside a tensor becomes an array of the tensor's dtype and device."""
    if like is None:
        return _as_array(value)
    xp = array_module(like)
    return xp.asarray(value, dtype=like.dtype)


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Shorthand for `Tensor(data, requires_grad, dtype)`."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


from tinyface import ops  # noqa: E402 - ops builds on Function and Tensor above
