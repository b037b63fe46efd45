"""Optimisers against their update formulas written out by hand (and against torch.optim when it is installed),
and the learning-rate schedules."""

import math

import numpy as np
import pytest

from tinyface import Tensor, optim
from tinyface.nn import Parameter

STEPS = 4


def gradients(seed=0):
    """A fixed sequence of gradients for two parameters of shapes (2, 3) and (3,)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((2, 3)), rng.standard_normal(3)) for _ in range(STEPS)]


def initial(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 3)), rng.standard_normal(3)


def run(make, grads):
    """Apply `grads` step by step; the parameter values after every step."""
    params = [Parameter(p.copy()) for p in initial()]
    opt = make(params)
    history = []
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = g.copy()
        opt.step()
        history.append([p.numpy().copy() for p in params])
    return history


def by_hand(update, grads):
    """The same, with `update(p, g, state, t)` returning the new p for one parameter."""
    params = [p.copy() for p in initial()]
    states = [{} for _ in params]
    history = []
    for t, gs in enumerate(grads, start=1):
        params = [update(p, g, s, t) for p, g, s in zip(params, gs, states, strict=True)]
        history.append([p.copy() for p in params])
    return history


def assert_same(history, expected):
    for step, (got, want) in enumerate(zip(history, expected, strict=True)):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=f"step {step + 1}")


def sgd_by_hand(lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    def update(p, g, state, t):
        g = g + weight_decay * p
        if momentum:
            state["v"] = g if t == 1 else momentum * state["v"] + g
            g = g + momentum * state["v"] if nesterov else state["v"]
        return p - lr * g

    return update


def adam_by_hand(lr, b1, b2, eps, weight_decay=0.0, decoupled=False):
    def update(p, g, state, t):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        state["m"] = b1 * state.get("m", 0) + (1 - b1) * g
        state["v"] = b2 * state.get("v", 0) + (1 - b2) * g * g
        m_hat = state["m"] / (1 - b1**t)
        v_hat = state["v"] / (1 - b2**t)
        return p - lr * m_hat / (np.sqrt(v_hat) + eps)

    return update


def adagrad_by_hand(lr, eps, initial_value=0.0, weight_decay=0.0):
    def update(p, g, state, t):
        g = g + weight_decay * p
        state["s"] = state.get("s", initial_value) + g * g
        return p - lr * g / (np.sqrt(state["s"]) + eps)

    return update


CASES = {
    "sgd": (lambda ps: optim.SGD(ps, lr=0.1), sgd_by_hand(0.1)),
    "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), sgd_by_hand(0.1, 0.9)),
    "sgd_nesterov_wd": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
                        sgd_by_hand(0.05, 0.8, True, 0.01)),
    "adam": (lambda ps: optim.Adam(ps, lr=0.01), adam_by_hand(0.01, 0.9, 0.999, 1e-8)),
    "adam_l2": (lambda ps: optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), weight_decay=0.1),
                adam_by_hand(0.02, 0.8, 0.99, 1e-8, 0.1)),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1), adam_by_hand(0.01, 0.9, 0.999, 1e-8, 0.1, True)),
    "adagrad": (lambda ps: optim.Adagrad(ps, lr=0.05), adagrad_by_hand(0.05, 1e-10)),
    "adagrad_init_wd": (lambda ps: optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.5, weight_decay=0.01),
                        adagrad_by_hand(0.1, 1e-10, 0.5, 0.01)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_formulas_by_hand(name):
    make, update = CASES[name]
    grads = gradients()
    assert_same(run(make, grads), by_hand(update, grads))


TORCH_CASES = {
    "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), "SGD", {"lr": 0.1, "momentum": 0.9}),
    "sgd_nesterov_wd": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01), "SGD",
                        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.01}),
    "adam_l2": (lambda ps: optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), weight_decay=0.1), "Adam",
                {"lr": 0.02, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    "adamw": (lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1), "AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    "adagrad": (lambda ps: optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.5, weight_decay=0.01), "Adagrad",
                {"lr": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.01}),
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_against_torch_optim(name):
    torch = pytest.importorskip("torch")
    make, torch_name, kwargs = TORCH_CASES[name]
    grads = gradients(seed=2)
    # parameter 1 has no gradient at the first step: both must skip it and start its own step count later
    grads[0] = (grads[0][0], None)
    params = [torch.tensor(p.copy(), requires_grad=True) for p in initial()]
    opt = getattr(torch.optim, torch_name)(params, **kwargs)
    expected = []
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
        expected.append([p.detach().numpy().copy() for p in params])

    ours = [Parameter(p.copy()) for p in initial()]
    opt = make(ours)
    history = []
    for gs in grads:
        for p, g in zip(ours, gs, strict=True):
            p.grad = None if g is None else g.copy()
        opt.step()
        history.append([p.numpy().copy() for p in ours])
    for step, (got, want) in enumerate(zip(history, expected, strict=True)):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=f"step {step + 1}")


def test_adam_counts_steps_per_parameter():
    # a parameter that first gets a gradient at step 3 takes a full first Adam step (bias-corrected with t = 1):
    # m_hat / sqrt(v_hat) = g / |g|, so it moves by lr in the direction of -g
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    opt = optim.Adam([a, b], lr=0.1, eps=0.0)
    for _ in range(2):
        a.grad = np.ones(2)
        opt.step()
    a.grad, b.grad = np.ones(2), np.array([2.0, -3.0])
    opt.step()
    np.testing.assert_allclose(b.numpy(), [-0.1, 0.1], rtol=1e-12)


def test_parameters_without_gradient_are_left_alone():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(a.numpy(), [0.5, 0.5])
    np.testing.assert_array_equal(b.numpy(), [1.0, 1.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    frozen = Parameter(np.ones(2), requires_grad=False)
    assert optim.SGD([a, frozen], lr=0.1).params == [a]


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "adagrad"])
def test_state_dict_resumes_exactly(name):
    make, _ = CASES[name]
    grads = gradients(seed=3)
    straight = run(make, grads)

    params = [Parameter(p.copy()) for p in initial()]
    opt = make(params)
    for gs in grads[:2]:
        for p, g in zip(params, gs, strict=True):
            p.grad = g.copy()
        opt.step()
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state_dict().items()}
    resumed = [Parameter(p.numpy().copy()) for p in params]
    opt = make(resumed)
    opt.load_state_dict(state)
    for gs in grads[2:]:
        for p, g in zip(resumed, gs, strict=True):
            p.grad = g.copy()
        opt.step()
    for got, want in zip(resumed, straight[-1], strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


def test_minimises_a_quadratic_through_autograd():
    target = np.array([1.0, -2.0, 3.0])
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1),
                 lambda ps: optim.Adagrad(ps, lr=0.5)):
        p = Parameter(np.zeros(3))
        opt = make([p])
        for _ in range(300):
            opt.zero_grad()
            ((p - Tensor(target)) ** 2).sum().backward()
            opt.step()
        np.testing.assert_allclose(p.numpy(), target, atol=1e-2)


def test_optimizer_errors():
    with pytest.raises(ValueError, match="no parameters"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="positive"):
        optim.Adam([Parameter(np.ones(1))], lr=0.0)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([Parameter(np.ones(1))], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="total"):
        optim.CosineLR(optim.SGD([Parameter(np.ones(1))], lr=0.1), total=0)


# -- schedules -----------------------------------------------------------------------------------------------
def test_step_lr():
    opt = optim.SGD([Parameter(np.ones(1))], lr=0.8)
    schedule = optim.StepLR(opt, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(8):
        schedule.step()
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2])


def test_cosine_lr():
    opt = optim.SGD([Parameter(np.ones(1))], lr=1.0)
    schedule = optim.CosineLR(opt, total=4, min_lr=0.1)
    assert opt.lr == 1.0
    lrs = []
    for _ in range(6):
        schedule.step()
        lrs.append(opt.lr)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in (1, 2, 3, 4)]
    np.testing.assert_allclose(lrs, [*expected, 0.1, 0.1])
    assert lrs[1] == pytest.approx(0.55)


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs in [
        (lambda o: optim.StepLR(o, step_size=2, gamma=0.3),
         lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.3)),
        (lambda o: optim.CosineLR(o, total=7, min_lr=0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01)),
    ]:
        opt = optim.SGD([Parameter(np.ones(1))], lr=0.5)
        torch_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
        schedule, torch_schedule = ours(opt), theirs(torch_opt)
        for _ in range(7):
            torch_opt.step()
            schedule.step()
            torch_schedule.step()
            assert opt.lr == pytest.approx(torch_opt.param_groups[0]["lr"], rel=1e-9)
