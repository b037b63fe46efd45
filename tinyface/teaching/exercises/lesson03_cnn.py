"""Lesson 3, the CNN from image to embedding: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _array, _call, _check, _given, _Wrong


def _im2col(x: np.ndarray, k: int, stride: int, padding: int) -> np.ndarray:
    """The check's own im2col, (C*k*k, N*Ho*Wo): rows ordered (channel, i, j), columns (image, y, x)."""
    n, c, _, _ = x.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    ho, wo = windows.shape[2], windows.shape[3]
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * k * k, n * ho * wo)


@_check
def check_im2col(fn: Callable[[np.ndarray, int, int, int], np.ndarray]) -> str:
    """fn(x, k, stride, padding) for images x (N, C, H, W): cols (C*k*k, N*Ho*Wo), column m the k x k patch (all
    channels) under output pixel m, flattened as (C, k, k); columns ordered by image, then row, then column of the
    output. Then W (O, C*k*k) @ cols is the convolution, as tinyface's F.conv2d computes it."""
    from tinyface.nn import functional as F
    from tinyface.tensor import Tensor

    rng = np.random.default_rng(30)
    cases = [((1, 1, 5, 5), 3, 1, 0), ((2, 3, 7, 9), 3, 1, 1), ((2, 2, 8, 6), 3, 2, 0), ((1, 2, 9, 7), 2, 2, 1),
             ((3, 1, 6, 6), 1, 1, 0)]
    for shape, k, stride, padding in cases:
        x = rng.standard_normal(shape)
        n, c, h, w = shape
        ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
        expected = _im2col(x, k, stride, padding)
        where = f"for x of shape {shape}, k={k}, stride={stride}, padding={padding}"
        answer = np.asarray(_given(_call(fn, x.copy(), k, stride, padding)))
        transposed = (f"{where} cols should have shape {expected.shape} (C*k*k rows, N*Ho*Wo columns): yours is "
                      "transposed")
        if answer.shape != expected.shape and answer.shape == expected.shape[::-1]:
            raise _Wrong(transposed)
        if answer.shape != expected.shape:
            unpadded = (c * k * k, n * ((h - k) // stride + 1) * ((w - k) // stride + 1))
            unstrided = (c * k * k, n * (h + 2 * padding - k + 1) * (w + 2 * padding - k + 1))
            hint = (" (that is the shape without padding: pad x with zeros first)" if answer.shape == unpadded
                    else " (that is the shape with stride 1: step the window by `stride`)" if answer.shape == unstrided
                    else "")
            raise _Wrong(f"{where} cols should have shape {expected.shape} = (C*k*k, N*Ho*Wo) with Ho, Wo = {ho}, "
                         f"{wo}; got {answer.shape}{hint}")
        got = _array(answer, expected.shape, "cols")
        if np.allclose(got, expected):
            continue
        if got.shape[0] == got.shape[1] and np.allclose(got, expected.T):
            raise _Wrong(transposed)
        rows_kkc = _im2col(x, k, stride, padding).reshape(c, k, k, -1).transpose(1, 2, 0, 3).reshape(c * k * k, -1)
        if np.allclose(got, rows_kkc):
            raise _Wrong("the rows are ordered (i, j, channel); order them (channel, i, j), as w.reshape(O, C*k*k) "
                         "flattens a filter")
        cols_yxn = expected.reshape(-1, n, ho, wo).transpose(0, 2, 3, 1).reshape(c * k * k, -1)
        if np.allclose(got, cols_yxn):
            raise _Wrong("the columns are ordered (y, x, image); order them (image, y, x), so that the product "
                         "reshapes to (O, N, Ho, Wo)")
        if np.allclose(np.sort(got, axis=0), np.sort(expected, axis=0)):
            raise _Wrong("each column holds the right numbers in the wrong order: flatten a patch as (C, k, k)")
        raise _Wrong(f"{where} your cols differ from the expected ones, largest difference "
                     f"{np.max(np.abs(got - expected)):.3g}: column m must be the patch under output pixel m")
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    weights = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    cols = _array(_call(fn, x.copy(), 3, 1, 1), (27, 128), "cols").astype(np.float32)
    ours = (weights.reshape(4, -1) @ cols).reshape(4, 2, 8, 8)
    library = F.conv2d(Tensor(x), Tensor(weights), padding=1).numpy()
    if not np.allclose(ours.transpose(1, 0, 2, 3), library, atol=1e-4):
        raise _Wrong("on float32 images W @ cols differs from F.conv2d: keep the images' values (no rounding)")
    return "W @ cols, reshaped to (N, O, Ho, Wo), is F.conv2d: the whole convolution is one matrix product"


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


__all__ = ["check_conv_parameter_count", "check_im2col", "check_max_pool"]
