"""Lesson 3, the CNN from image to embedding: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _Wrong


@_check
def check_conv_output_size(fn: Callable[[int, int, int, int], int]) -> str:
    """fn(h, k, stride, padding): the output height of a convolution (or pooling) of an h-pixel input."""
    cases = [(64, 3, 1, 1), (64, 3, 1, 0), (64, 2, 2, 0), (7, 3, 2, 0), (8, 3, 2, 1), (5, 5, 1, 2), (10, 4, 3, 1)]
    for h, k, s, p in cases:
        expected = (h + 2 * p - k) // s + 1
        got = _call(fn, h, k, s, p)
        _given(got)
        if got == expected and float(got).is_integer():
            continue
        if np.isclose(float(got), (h + 2 * p - k) / s + 1):
            raise _Wrong(f"for h={h}, k={k}, stride={s}, padding={p}: a window cannot start half-way; round down (//)")
        if got == (h + 2 * p - k) // s:
            raise _Wrong("off by one: the first window counts too, (h + 2p - k) // s + 1")
        raise _Wrong(f"for h={h}, k={k}, stride={s}, padding={p} the output has {expected} rows, you gave {got}")
    return "H_out = (H + 2p - k) // s + 1"


@_check
def check_conv_parameter_count(fn: Callable[[int, int, int, bool], int]) -> str:
    """fn(in_channels, out_channels, k, bias): how many numbers a k x k Conv2d layer learns."""
    from tinyface import nn

    for c_in, c_out, k, bias in [(1, 32, 3, False), (32, 64, 3, False), (3, 16, 5, True), (64, 128, 1, True)]:
        layer = nn.Conv2d(c_in, c_out, k, bias=bias, rng=np.random.default_rng(0))
        expected = sum(p.size for p in layer.parameters())
        got = _call(fn, c_in, c_out, k, bias)
        _given(got)
        if got == expected:
            continue
        if got == c_out * k * k + (c_out if bias else 0):
            raise _Wrong("each filter spans every input channel: a filter has in_channels * k * k weights")
        if bias and got == c_in * c_out * k * k:
            raise _Wrong("with bias=True each output channel also has one bias")
        raise _Wrong(f"Conv2d({c_in}, {c_out}, {k}, bias={bias}) has {expected} parameters, you gave {got}")
    return "out_channels * (in_channels * k * k) weights, plus out_channels biases if any"


@_check
def check_max_pool(fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """fn(x): 2 x 2 max pooling with stride 2 of a NumPy array (N, C, H, W) with even H and W."""
    from tinyface.nn import functional as F
    from tinyface.tensor import Tensor

    x = np.random.default_rng(4).standard_normal((2, 3, 6, 8)).astype(np.float32)
    expected = F.max_pool2d(Tensor(x), 2).numpy()
    got = _array(_call(fn, x.copy()), expected.shape, "the pooled array")
    if np.allclose(got, expected):
        return "each output is the largest of its 2 x 2 window"
    if np.allclose(got, x.reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))):
        raise _Wrong("that is average pooling; take the max of each window")
    raise _Wrong("the values differ from F.max_pool2d: reshape to (N, C, H/2, 2, W/2, 2), then max over axes 3, 5")


__all__ = ["check_conv_output_size", "check_conv_parameter_count", "check_max_pool"]
