"""`Module`: a layer or a network, holding `Parameter`s and sub-modules, as in PyTorch.

Attributes that are Parameters or Modules are found by name, so `named_parameters()` of a network lists
`"0.weight", "0.bias", "1.weight", ...` and `state_dict()` round-trips through a plain `.npz` file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from tinyface.device import array_module, to_device, to_numpy
from tinyface.tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module learns: requires_grad is on."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)


class Module:
    """Base class of layers and networks: subclasses set Parameters, buffers and sub-modules in `__init__` and
    write `forward`."""

    def __init__(self) -> None:
        self.training = True
        self._buffers: dict[str, Any] = {}

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- what a module holds ---------------------------------------------------------------------------------
    def register_buffer(self, name: str, value: Any) -> None:
        """An array saved in the state_dict but not learned (e.g. BatchNorm's running mean)."""
        if "_buffers" not in self.__dict__:
            raise RuntimeError("call super().__init__() before registering buffers")
        self._buffers[name] = value

    def __getattr__(self, name: str) -> Any:
        buffers = self.__dict__.get("_buffers", {})
        if name in buffers:
            return buffers[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "", _seen: set[int] | None = None) -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, each once (a module used twice is listed under its first name)."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every Parameter once, even when shared (an optimiser must not update a tied weight twice)."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{prefix}.{name}" if prefix else name), value

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        for prefix, module in self.named_modules():
            for name, value in module._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), value

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # -- modes -----------------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, device: str) -> Module:
        """Move every parameter and buffer to "cpu" or "cuda" (in place)."""
        for p in self.parameters():
            p.data = to_device(p.data, device)
            p.grad = None
        for _, module in self.named_modules():
            for name, value in module._buffers.items():
                module._buffers[name] = to_device(value, device)
        return self

    # -- saving ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by dotted name, as NumPy arrays (copies)."""
        state = {name: to_numpy(p.data).copy() for name, p in self.named_parameters()}
        state.update({name: to_numpy(b).copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays into the parameters and buffers of the same names; every name and shape must match."""
        params = dict(self.named_parameters())
        buffers = {name: (module, key) for prefix, module in self.named_modules() for key in module._buffers
                   for name in [f"{prefix}.{key}" if prefix else key]}
        expected = set(params) | set(buffers)
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not fit this {type(self).__name__}: missing {sorted(missing)}, "
                f"unexpected {sorted(unexpected)} (was it saved from another architecture?)"
            )
        for name, value in state.items():
            target = params[name].data if name in params else buffers[name][0]._buffers[buffers[name][1]]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{name}: saved shape {tuple(value.shape)} but the model has {tuple(target.shape)}")
            xp = array_module(target)
            if name in params:
                params[name].data = xp.asarray(value, dtype=target.dtype).copy()
            else:
                module, key = buffers[name]
                module._buffers[key] = xp.asarray(value, dtype=target.dtype).copy()

    def __repr__(self) -> str:
        lines = [f"  ({name}): {child!r}".replace("\n", "\n  ") for name, child in self.children()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}({extra}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self) -> str:
        return ""
