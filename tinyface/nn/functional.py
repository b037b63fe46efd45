"""The layer ops that are not Tensor methods, as functions with PyTorch's names and argument orders (conv2d,
max_pool2d, avg_pool2d, batch_norm, linear, normalize, dropout), each backed by a `Function` named for what it
computes (Convolution, MaxPooling, ...: forward and backward together). Elementwise ops are Tensor methods
(`x.relu()`), and the layers of tinyface.nn are Modules that call these.

Images are `(N, C, H, W)`. Convolution is im2col + one matrix product: the (C, kh, kw) patch under every output
pixel is laid out as a column, so that the convolution with O filters is  out = W (O, C*kh*kw) @ cols.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from tinyface.device import array_module
from tinyface.nn import _compiled as compiled
from tinyface.tensor import Function, Tensor


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _windows(x: Any, kernel: tuple[int, int], stride: tuple[int, int], writeable: bool = False) -> Any:
    """A strided view (N, C, Ho, Wo, kh, kw) of every kh x kw window of x (no copy)."""
    xp = array_module(x)
    options = {"writeable": True} if writeable and xp is np else {}  # CuPy views have no read-only flag
    view = xp.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3), **options)
    return view[:, :, :: stride[0], :: stride[1]]


def _add_windows(grad_windows: Any, shape: tuple[int, ...], stride: tuple[int, int]) -> Any:
    """The adjoint of `_windows`: add every window's gradient (N, C, Ho, Wo, kh, kw) back onto an image of
    `shape`. One vectorised add per kernel offset (kh * kw of them), never a loop over pixels."""
    xp = array_module(grad_windows)
    out = xp.zeros(shape, dtype=grad_windows.dtype)
    _, _, ho, wo, kh, kw = grad_windows.shape
    sh, sw = stride
    for i in range(kh):
        for j in range(kw):
            out[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += grad_windows[..., i, j]
    return out


def _pad_images(x: Any, padding: tuple[int, int], value: float = 0.0) -> Any:
    if padding == (0, 0):
        return x
    ph, pw = padding
    return array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _pad_channel_major(x: Any, padding: tuple[int, int]) -> Any:
    """Zero-pad (N, C, H, W) images into an array laid out in memory as (C, N, H, W) (see Convolution)."""
    xp = array_module(x)
    n, c, h, w = x.shape
    ph, pw = padding
    padded = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    padded[:, :, ph : ph + h, pw : pw + w] = x.transpose(1, 0, 2, 3)
    return padded


class Convolution(Function):
    """out[n, o] = sum_{c, i, j} w[o, c, i, j] * x_pad[n, c, s*y + i, s*x + j]  (+ b[o]).

    As one matrix product: cols (C*kh*kw, N*Ho*Wo) holds the patch under every output pixel of every image,
    and out (O, N*Ho*Wo) = W (O, C*kh*kw) @ cols. Backward:

        dW = g @ cols^T,   dcols = W^T @ g   (then each patch's gradient is added back onto the image)

    The product comes out channel-major, (O, N, Ho, Wo) in memory; we hand it on as an (N, O, Ho, Wo) view
    rather than copying it, and the next convolution reads that layout directly.
    """

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
        n, c, h, w = x.shape
        o, c_w, kh, kw = weight.shape
        if c != c_w:
            raise ValueError(f"conv2d: input has {c} channels but the weight expects {c_w}")
        self.x_shape, self.stride, self.padding = x.shape, stride, padding
        x_padded = _pad_channel_major(x, padding)  # (C, N, Hp, Wp)
        windows = _windows(x_padded, (kh, kw), stride)  # (C, N, Ho, Wo, kh, kw), a view
        ho, wo = windows.shape[2], windows.shape[3]
        self.cols = windows.transpose(0, 4, 5, 1, 2, 3).reshape(c * kh * kw, n * ho * wo)  # im2col: one copy
        self.weight = weight
        out = weight.reshape(o, -1) @ self.cols
        if bias is not None:
            out += bias.reshape(o, 1)
        self.has_bias = bias is not None
        return out.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)

    def backward(self, grad):
        n, o, ho, wo = grad.shape
        g = grad.transpose(1, 0, 2, 3).reshape(o, n * ho * wo)
        # dW is (O, C*kh*kw) summed over the long N*Ho*Wo: OpenBLAS shares such a product among its threads well
        # only when the output has more rows than columns (2-10x faster on 2 threads), so compute dW^T when C*kh*kw > O
        larger_first = o >= self.cols.shape[0]
        grad_weight = (g @ self.cols.T if larger_first else (self.cols @ g.T).T).reshape(self.weight.shape)
        grad_bias = g.sum(axis=1) if self.has_bias else None
        grad_x = None
        if self.needs_input_grad[0]:
            grad_x = self._col2im(self.weight.reshape(o, -1).T @ g)  # dcols (C*kh*kw, N*Ho*Wo) onto the image
        return (grad_x, grad_weight, grad_bias) if self.has_bias else (grad_x, grad_weight)

    def _col2im(self, grad_cols):
        """Each patch's gradient added back onto the pixels it was copied from (the adjoint of im2col)."""
        (n, c, h, w), (_, _, kh, kw), (ph, pw) = self.x_shape, self.weight.shape, self.padding
        if compiled.ENABLED and array_module(grad_cols) is np:  # one pass per plane (nn/_compiled.py)
            return compiled.col2im(grad_cols, self.x_shape, (kh, kw), self.stride, self.padding)
        ho, wo = (h + 2 * ph - kh) // self.stride[0] + 1, (w + 2 * pw - kw) // self.stride[1] + 1
        grad_windows = grad_cols.reshape(c, kh, kw, n, ho, wo).transpose(0, 3, 4, 5, 1, 2)
        grad_padded = _add_windows(grad_windows, (c, n, h + 2 * ph, w + 2 * pw), self.stride)  # (C, N, Hp, Wp)
        return grad_padded[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """2-D convolution (cross-correlation, as in every deep-learning library) of `(N, C, H, W)` images with
    `(O, C, kh, kw)` filters: `(N, O, Ho, Wo)` with Ho = (H + 2 p - kh) // s + 1."""
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(
            f"conv2d expects (N, C, H, W) images and (O, C, kh, kw) weights, got {x.shape} and {weight.shape}"
        )
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Convolution.apply(*inputs, stride=_pair(stride), padding=_pair(padding))


class MaxPooling(Function):
    """The largest value in each window; its gradient goes to the first position that holds it (as in PyTorch).

    Both directions loop over the kh * kw offsets inside the window, each step a whole-array op on a strided
    view (never a loop over pixels). When windows do not overlap, each input pixel belongs to one window, so
    backward writes every pixel once instead of adding into zeros."""

    def forward(self, x, kernel_size, stride, padding):
        self.x_shape, self.padding, self.stride = x.shape, padding, stride
        self.x_padded = _pad_images(x, padding, value=-np.inf)
        self.windows = _windows(self.x_padded, kernel_size, stride)  # (N, C, Ho, Wo, kh, kw), a view
        self.offsets = [(i, j) for i in range(kernel_size[0]) for j in range(kernel_size[1])]
        self.tiled = stride == kernel_size and all(
            n % k == 0 for n, k in zip(self.x_padded.shape[2:], kernel_size, strict=True)
        )
        self.compiled = self.tiled and padding == (0, 0) and compiled.ENABLED and array_module(x) is np
        if self.compiled:  # one pass in a compiled loop (nn/compiled.py); the NumPy code below is the reference
            self.out, self.winner = compiled.maxpool2d_forward(x, kernel_size)
            return self.out
        self.out = functools.reduce(array_module(x).maximum, (self.windows[..., i, j] for i, j in self.offsets))
        return self.out

    def backward(self, grad):
        if self.compiled:
            return compiled.maxpool2d_backward(grad, self.winner, self.windows.shape[-2:])
        xp = array_module(grad)
        grad_x = xp.empty_like(self.x_padded) if self.tiled else xp.zeros_like(self.x_padded)
        grad_windows = _windows(grad_x, self.windows.shape[-2:], self.stride, writeable=True)  # view of grad_x
        unclaimed = xp.ones(grad.shape, dtype=bool)  # windows whose maximum has not been given its gradient
        for i, j in self.offsets:
            first = (self.windows[..., i, j] == self.out) & unclaimed
            unclaimed &= ~first
            if self.tiled:
                grad_windows[..., i, j] = grad * first
            else:
                grad_windows[..., i, j] += grad * first
        ph, pw = self.padding
        return grad_x[:, :, ph : ph + self.x_shape[2], pw : pw + self.x_shape[3]]


def max_pool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0) -> Tensor:
    """Max over each kernel_size window, moving by `stride` (default: kernel_size)."""
    return MaxPooling.apply(x, **_pooling(kernel_size, stride, padding))


class AveragePooling(Function):
    """The mean of each window (zero padding counts, as in PyTorch's default)."""

    def forward(self, x, kernel_size, stride, padding):
        self.x_shape, self.stride, self.padding, self.kernel = x.shape, stride, padding, kernel_size
        x_padded = _pad_images(x, padding)
        self.padded_shape = x_padded.shape
        return _windows(x_padded, kernel_size, stride).mean(axis=(-2, -1))

    def backward(self, grad):
        xp = array_module(grad)
        kh, kw = self.kernel
        share = grad / (kh * kw)
        grad_windows = xp.broadcast_to(share[..., None, None], (*grad.shape, kh, kw))
        grad_x = _add_windows(grad_windows, self.padded_shape, self.stride)
        ph, pw = self.padding
        return grad_x[:, :, ph : ph + self.x_shape[2], pw : pw + self.x_shape[3]]


def avg_pool2d(x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
               padding: int | tuple[int, int] = 0) -> Tensor:
    """Mean over each kernel_size window, moving by `stride` (default: kernel_size)."""
    return AveragePooling.apply(x, **_pooling(kernel_size, stride, padding))


def _pooling(kernel_size: Any, stride: Any, padding: Any) -> dict[str, tuple[int, int]]:
    """A pooling op's options as (height, width) pairs; the stride defaults to the kernel size."""
    kernel = _pair(kernel_size)
    return {"kernel_size": kernel, "stride": _pair(stride or kernel), "padding": _pair(padding)}


def global_avg_pool2d(x: Tensor) -> Tensor:
    """Global average pooling: (N, C, H, W) -> (N, C)."""
    return x.mean(axis=(2, 3))


class BatchNormalization(Function):
    """y = gamma * xhat + beta,  xhat = (x - mean) / sqrt(var + eps), with the mean and (biased) variance of
    each channel (axis 1) over all other axes. Backward, with m values per channel:

        dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat))

    Both directions are written as per-channel affine maps of whole arrays (y = a x + b; dx = a g + c x + d),
    so that each costs a couple of passes over memory instead of one temporary per term.
    """

    def forward(self, x, weight, bias, eps=1e-5, running_mean=None, running_var=None, momentum=0.1):
        xp = array_module(x)
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.shape = (1, -1) + (1,) * (x.ndim - 2)
        self.compiled = x.ndim == 4 and compiled.ENABLED and xp is np  # see nn/compiled.py
        if self.compiled:
            mean, var = compiled.batchnorm_statistics(x)
        else:
            mean, var = x.mean(axis=self.axes), x.var(axis=self.axes)
        inv_std = 1.0 / xp.sqrt(var + eps)
        scale = weight * inv_std
        shift = bias - mean * scale
        self.x, self.weight, self.mean, self.inv_std = x, weight, mean, inv_std
        if running_mean is not None:  # in place: running = (1 - momentum) running + momentum batch (unbiased var)
            count = x.size // x.shape[1]
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
            running_var *= 1 - momentum
            running_var += (momentum * var * (count / (count - 1))).astype(running_var.dtype)
        if self.compiled:
            return compiled.channel_affine(x, scale, shift)
        out = x * scale.astype(x.dtype).reshape(self.shape)
        out += shift.astype(x.dtype).reshape(self.shape)
        return out

    def backward(self, grad):
        count = grad.size // grad.shape[1]
        if self.compiled:
            sum_g, sum_gx = compiled.batchnorm_backward_sums(grad, self.x)
        else:
            sum_g, sum_gx = grad.sum(axis=self.axes), (grad * self.x).sum(axis=self.axes)
        mean_g = sum_g / count
        mean_g_xhat = (sum_gx / count - self.mean * mean_g) * self.inv_std  # mean(g * xhat)
        scale = self.weight * self.inv_std
        x_coefficient = -scale * self.inv_std * mean_g_xhat
        constant = -scale * mean_g - x_coefficient * self.mean
        if self.compiled:
            grad_x = compiled.channel_affine2(grad, self.x, scale, x_coefficient, constant)
        else:
            grad_x = grad * scale.astype(grad.dtype).reshape(self.shape)
            grad_x += self.x * x_coefficient.astype(grad.dtype).reshape(self.shape)
            grad_x += constant.astype(grad.dtype).reshape(self.shape)
        grad_weight = (mean_g_xhat * count).astype(grad.dtype)
        return grad_x, grad_weight, sum_g.astype(grad.dtype)


def batch_norm(
    x: Tensor,
    running_mean: Any,
    running_var: Any,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation over axis 1 of (N, C) or (N, C, H, W). In training it normalises with the batch's
    statistics and updates the running ones in place (running = (1 - momentum) running + momentum batch, with
    the unbiased variance); in evaluation it uses the running statistics."""
    xp = array_module(x.data)
    channels = x.shape[1]
    weight = weight if weight is not None else Tensor(xp.ones(channels, dtype=x.dtype))
    bias = bias if bias is not None else Tensor(xp.zeros(channels, dtype=x.dtype))
    if training:
        if x.size // channels < 2:
            raise ValueError(f"batch_norm in training needs more than one value per channel, got shape {x.shape}")
        return BatchNormalization.apply(x, weight, bias, eps=eps, running_mean=running_mean,
                                        running_var=running_var, momentum=momentum)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    scale = weight * Tensor(1.0 / xp.sqrt(running_var + eps))
    return (x - Tensor(running_mean).reshape(shape)) * scale.reshape(shape) + bias.reshape(shape)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ W^T + b, with W of shape (out_features, in_features) as in PyTorch."""
    out = x @ weight.T
    return out + bias if bias is not None else out


class L2Normalization(Function):
    """y = x / max(||x||_2, eps) along `dim`. Where the norm exceeds eps:

        dy/dx^T g = (g - y (y . g)) / ||x||

    and where it does not (x near 0) y = x / eps, whose gradient is g / eps: no NaN at zero norm."""

    def forward(self, x, dim=-1, eps=1e-12):
        xp = array_module(x)
        norm = xp.sqrt((x * x).sum(axis=dim, keepdims=True))
        self.scaled = norm > eps
        self.denominator = xp.maximum(norm, eps)
        self.out = x / self.denominator
        self.dim = dim
        return self.out

    def backward(self, grad):
        radial = (self.out * grad).sum(axis=self.dim, keepdims=True) * self.scaled
        return (grad - self.out * radial) / self.denominator


def normalize(x: Tensor, p: float = 2, dim: int = -1, eps: float = 1e-12) -> Tensor:
    """Scale each vector along `dim` to unit L2 norm (the embedding lies on the unit hypersphere)."""
    if p != 2:
        raise ValueError(f"normalize supports p=2 only (the face embedding is L2-normalised), got p={p}")
    return L2Normalization.apply(x, dim=dim, eps=eps)


class InvertedDropout(Function):
    """Zero each value with probability p and scale the rest by 1 / (1 - p) (inverted dropout)."""

    def forward(self, x, p, rng):
        keep = rng.random(x.shape) >= p
        self.mask = array_module(x).asarray(keep, dtype=x.dtype) / (1 - p)
        return x * self.mask

    def backward(self, grad):
        return grad * self.mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None) -> Tensor:
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    from tinyface.rng import default_generator

    return InvertedDropout.apply(x, p=p, rng=rng or default_generator())


__all__ = [
    "global_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv2d",
    "dropout",
    "linear",
    "max_pool2d",
    "normalize",
]
