"""Image transforms on whole batches (N, C, H, W), no loop over images. Random ones take a Generator."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def to_float32(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]; float images are cast to float32 unchanged."""
    images = _check_batch(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255)
    return images.astype(np.float32, copy=False)


def prewhiten(images: np.ndarray) -> np.ndarray:
    """Per-image standardisation, as davidsandberg/facenet's `prewhiten` (a popular reimplementation of FaceNet; the
    paper does not describe its input normalisation): (x - mean) / max(std, 1 / sqrt(n)), n = C * H * W.

    The floor on std keeps a flat image (std 0) finite.
    """
    x = to_float32(images)
    n = np.prod(x.shape[1:])
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(x.std(axis=(1, 2, 3), keepdims=True), np.float32(1 / np.sqrt(n)))
    return (x - mean) / std


def standardize(images: np.ndarray, mean: float | np.ndarray, std: float | np.ndarray) -> np.ndarray:
    """(x - mean) / std with fixed statistics: scalars or one value per channel, (C,)."""
    x = to_float32(images)
    mean, std = (np.asarray(v, dtype=np.float32).reshape(-1, 1, 1) for v in (mean, std))
    if np.any(std <= 0):
        raise ValueError(f"std must be positive, got {std.ravel()}")
    return (x - mean) / std


def random_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability p."""
    images = _check_batch(images)
    flip = rng.random(len(images)) < p
    return np.where(flip[:, None, None, None], images[..., ::-1], images)


def random_crop(
    images: np.ndarray,
    rng: np.random.Generator,
    size: int | tuple[int, int] | None = None,
    padding: int = 0,
) -> np.ndarray:
    """A random window of each image: zero-pad by `padding` on every side, then crop `size` (default: the
    original H, W, so the output has the input's shape and the image shifts by up to `padding` pixels)."""
    images = _check_batch(images)
    n, _, h, w = images.shape
    crop_h, crop_w = (h, w) if size is None else _pair(size)
    if padding:
        images = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    room_h, room_w = images.shape[2] - crop_h, images.shape[3] - crop_w
    if room_h < 0 or room_w < 0:
        raise ValueError(f"crop {crop_h}x{crop_w} is larger than the (padded) images {images.shape[2:]}")
    top = rng.integers(0, room_h + 1, size=n)
    left = rng.integers(0, room_w + 1, size=n)
    # windows[n, c, i, j] is the crop_h x crop_w window whose top-left corner is (i, j): a view, no copy.
    windows = sliding_window_view(images, (crop_h, crop_w), axis=(2, 3))
    return windows[np.arange(n), :, top, left]  # (N, C, crop_h, crop_w)


def random_rotate_zoom(
    images: np.ndarray, rng: np.random.Generator, degrees: float = 0.0, zoom: float = 0.0
) -> np.ndarray:
    """Turn each image by a random angle in [-degrees, degrees] and enlarge it by a random factor in [1, 1 + zoom]
    about its centre: one bilinear warp of the whole batch, pixels from outside the image are zero.

    Output pixel p (coordinates from the image centre) samples the input at R(theta) p / s: a rotation by theta
    and a zoom by s, so the face turns and fills more of the frame, as it would with a slightly closer camera.
    """
    images = _check_batch(images)
    if not (0 <= degrees <= 180 and 0 <= zoom < np.inf):
        raise ValueError(f"degrees must be in [0, 180] and zoom >= 0, got {degrees}, {zoom}")
    n, c, h, w = images.shape
    theta = np.deg2rad(rng.uniform(-degrees, degrees, size=(n, 1, 1))).astype(np.float32)
    scale = rng.uniform(1.0, 1.0 + zoom, size=(n, 1, 1)).astype(np.float32)
    y, x = np.mgrid[:h, :w].astype(np.float32)
    y, x = y - (h - 1) / 2, x - (w - 1) / 2
    cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
    src_y = cos * y - sin * x + (h - 1) / 2  # (N, H, W) source coordinates of every output pixel
    src_x = sin * y + cos * x + (w - 1) / 2
    # In the image padded by one zero pixel, the four neighbours of a source point inside (-1, h) x (-1, w) are
    # all within bounds: corner (y0, x0) at flat index y0 * (w + 2) + x0, the others 1, w + 2 and w + 3 after it.
    inside = (src_y > -1) & (src_y < h) & (src_x > -1) & (src_x < w)
    src_y, src_x = np.where(inside, src_y + 1, 0), np.where(inside, src_x + 1, 0)
    y0, x0 = np.floor(src_y), np.floor(src_x)
    wy, wx = (src_y - y0) * inside, src_x - x0  # weight 0 for a point outside: its pixel stays zero
    corner = (y0.astype(np.int64) * (w + 2) + x0.astype(np.int64)).reshape(n, 1, h * w)
    flat = np.pad(images.astype(np.float32, copy=False), ((0, 0), (0, 0), (1, 1), (1, 1))).reshape(n, c, -1)
    out = np.zeros((n, c, h * w), dtype=np.float32)
    for offset, weight in ((0, (inside - wy) * (1 - wx)), (1, (inside - wy) * wx), (w + 2, wy * (1 - wx)),
                           (w + 3, wy * wx)):
        out += np.take_along_axis(flat, corner + offset, axis=2) * weight.reshape(n, 1, h * w)
    return out.reshape(n, c, h, w).astype(images.dtype if images.dtype.kind == "f" else np.float32)


def center_crop(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """The central `size` window of each image."""
    images = _check_batch(images)
    crop_h, crop_w = _pair(size)
    h, w = images.shape[2:]
    if crop_h > h or crop_w > w:
        raise ValueError(f"crop {crop_h}x{crop_w} is larger than the images {h}x{w}")
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    return images[:, :, top : top + crop_h, left : left + crop_w]


def resize(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Bilinear resize of every image to `size`, antialiased when shrinking (as Pillow's BILINEAR).

    Separable: out = Ry @ x @ Rx^T, where row i of Ry holds the weights of the input rows for output row i
    (a triangle filter centred on the output pixel, widened by the shrink factor). uint8 stays uint8.
    """
    images = _check_batch(images)
    out_h, out_w = _pair(size)
    rows = _resize_weights(images.shape[2], out_h)
    cols = _resize_weights(images.shape[3], out_w)
    out = rows @ images.astype(np.float32) @ cols.T
    if images.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out


def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) interpolation matrix of a triangle filter in half-pixel-centre coordinates."""
    scale = n_in / n_out
    support = max(scale, 1.0)  # widen the filter when shrinking, so every input pixel contributes
    centres = (np.arange(n_out) + 0.5) * scale  # output pixel centres in input coordinates
    distance = np.abs(np.arange(n_in) + 0.5 - centres[:, None]) / support
    weights = np.maximum(0.0, 1.0 - distance)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if np.isscalar(size) else size
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    return int(h), int(w)


def _check_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (N, C, H, W), got shape {images.shape}")
    return images
