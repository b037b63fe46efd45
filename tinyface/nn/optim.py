"""Optimisers: each `step()` moves every parameter against its gradient, p <- p - lr * update(grad).

All updates happen in place on the arrays, with no graph recorded. Learning-rate schedules set `optimizer.lr`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from tinyface.device import array_module
from tinyface.nn.module import Parameter


class Optimizer:
    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("optimizer got no parameters that require grad")
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr = lr
        self.initial_lr = lr
        self.state: list[dict[str, Any]] = [{} for _ in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.steps += 1
        for p, state in zip(self.params, self.state, strict=True):
            if p.grad is not None:
                self.update(p, p.grad, state)

    def update(self, p: Parameter, grad: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Arrays and numbers by name (`"3.m"` is parameter 3's first moment), to resume a run exactly."""
        out: dict[str, Any] = {"steps": self.steps, "lr": self.lr}
        for i, state in enumerate(self.state):
            out.update({f"{i}.{key}": value for key, value in state.items()})
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.lr = int(state["steps"]), float(state["lr"])
        for key, value in state.items():
            if "." in key:
                index, name = key.split(".", 1)
                xp = array_module(self.params[int(index)].data)
                self.state[int(index)][name] = xp.asarray(value).copy()


class SGD(Optimizer):
    """v <- momentum v + g (+ weight_decay p);  p <- p - lr v  (Nesterov: p <- p - lr (g + momentum v))."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def update(self, p, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if self.momentum:
            velocity = state.get("v")
            velocity = grad.copy() if velocity is None else velocity * self.momentum + grad
            state["v"] = velocity
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        p.data -= self.lr * grad


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,  p <- p - lr m_hat / (sqrt(v_hat) + eps), with the
    bias corrections m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t). weight_decay adds wd * p to g (L2)."""

    decoupled = False

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def update(self, p, grad, state):
        beta1, beta2 = self.betas
        if self.weight_decay and not self.decoupled:
            grad = grad + self.weight_decay * p.data
        if "m" not in state:
            xp = array_module(p.data)
            state["m"], state["v"] = xp.zeros_like(p.data), xp.zeros_like(p.data)
        # the step count is per parameter (as in torch.optim): one that had no gradient for a while starts its
        # bias correction at t = 1 when it first gets one
        state["step"] = t = int(state.get("step", 0)) + 1
        m, v = state["m"], state["v"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        step_size = self.lr / (1 - beta1**t)
        denominator = array_module(v).sqrt(v / (1 - beta2**t)) + self.eps
        if self.weight_decay and self.decoupled:
            p.data -= self.lr * self.weight_decay * p.data
        p.data -= step_size * m / denominator


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p <- p - lr wd p, apart from the gradient."""

    decoupled = True

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


class Adagrad(Optimizer):
    """The FaceNet paper's optimiser: s <- s + g^2,  p <- p - lr g / (sqrt(s) + eps)."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.05, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.eps, self.initial, self.weight_decay = eps, initial_accumulator_value, weight_decay

    def update(self, p, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if "sum" not in state:
            state["sum"] = array_module(p.data).full_like(p.data, self.initial)
        state["sum"] += grad * grad
        p.data -= self.lr * grad / (array_module(grad).sqrt(state["sum"]) + self.eps)


class StepLR:
    """lr = initial_lr * gamma ^ floor(epoch / step_size); call `step()` once per epoch."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.optimizer, self.step_size, self.gamma, self.epoch = optimizer, step_size, gamma, 0

    def step(self) -> None:
        self.epoch += 1
        self.optimizer.lr = self.optimizer.initial_lr * self.gamma ** (self.epoch // self.step_size)


class CosineLR:
    """lr = min_lr + (initial_lr - min_lr) (1 + cos(pi t / total)) / 2, from initial_lr at t = 0 down to min_lr
    at t = total; call `step()` once per step (or epoch)."""

    def __init__(self, optimizer: Optimizer, total: int, min_lr: float = 0.0) -> None:
        if total <= 0:
            raise ValueError(f"CosineLR needs total > 0, got {total}")
        self.optimizer, self.total, self.min_lr, self.t = optimizer, total, min_lr, 0

    def step(self) -> None:
        self.t = min(self.t + 1, self.total)
        start = self.optimizer.initial_lr
        self.optimizer.lr = self.min_lr + (start - self.min_lr) * (1 + math.cos(math.pi * self.t / self.total)) / 2
