"""Lesson 11, face alignment: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.face.align import similarity_transform, warp_affine
from tinyface.teaching.exercises.verdict import _array, _call, _check, _Wrong


def _rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def _point_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """(source, target) point sets: an exact similarity, a noisy one, a mirror image (whose best orthogonal map
    is a reflection), and two points."""
    rng = np.random.default_rng(110)
    source = rng.uniform(20, 90, (5, 2))
    exact = source @ (1.4 * _rotation(0.5)).T + [12.0, -7.0]
    noisy = source @ (0.8 * _rotation(-0.3)).T + [3.0, 25.0] + rng.normal(0, 2.0, (5, 2))
    mirrored = source * [-1.0, 1.0] + [120.0, 0.0] + rng.normal(0, 1.0, (5, 2))
    two = source[:2], source[:2] @ (2.0 * _rotation(2.0)).T + [-4.0, 9.0]
    return [(source, exact), (source, noisy), (source, mirrored), two]


def _umeyama_variants(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The usual slips in Umeyama's method, each as the matrix it gives."""
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu_x, y - mu_y
    var_x, var_y = np.mean(np.sum(xc**2, axis=1)), np.mean(np.sum(yc**2, axis=1))
    u, d, vt = np.linalg.svd(yc.T @ xc / len(x))
    signs = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation, scale = (u * signs) @ vt, np.sum(d * signs) / var_x

    def matrix(r: np.ndarray, s: float, t: np.ndarray | None = None) -> np.ndarray:
        return np.hstack([s * r, (mu_y - s * r @ mu_x if t is None else t)[:, None]])

    return {
        "no reflection fix": matrix(u @ vt, np.sum(d) / var_x),
        "target variance": matrix(rotation, np.sum(d * signs) / var_y),
        "no scale": matrix(rotation, 1.0),
        "translation": matrix(rotation, scale, mu_y - mu_x),
        "transposed": matrix(rotation.T, scale),
    }


@_check
def check_similarity_transform(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(source, target) -> the 2x3 matrix [s R | t] of the similarity (R a rotation, det R = +1) minimising
    sum_k ||target_k - (s R source_k + t)||^2, for (K, 2) point sets: Umeyama's method, as
    tinyface.face.align.similarity_transform."""
    hints = {
        "no reflection fix": "on mirrored points your R is a reflection (det R = -1): a face cannot be mirrored by "
                             "a rotation. Use R = U S V^T with S = diag(1, det(U) det(V)), and s = trace(D S) / "
                             "sigma_x^2",
        "target variance": "the scale is trace(D S) divided by the variance of the SOURCE points (those s "
                           "multiplies), not of the target",
        "no scale": "a similarity also scales: s = trace(D S) / sigma_x^2 (your s is 1)",
        "translation": "t = mu_y - s R mu_x: the source mean rotated and scaled, not mu_y - mu_x",
        "transposed": "your R is the transpose (the inverse rotation): C = mean (y - mu_y)(x - mu_x)^T, target "
                      "first, and R = U S V^T",
    }
    for source, target in _point_pairs():
        expected = similarity_transform(source, target)
        got = _array(_call(fn, source.copy(), target.copy()), (2, 3), "the matrix [s R | t]")
        if np.allclose(got, expected, atol=1e-7):
            continue
        if np.allclose(got, similarity_transform(target, source), atol=1e-7):
            raise _Wrong("your matrix maps the target onto the source: the other way round")
        for name, matrix in _umeyama_variants(source, target).items():
            if np.allclose(got, matrix, atol=1e-7):
                raise _Wrong(hints[name])
        if abs(np.linalg.det(got[:, :2])) > 1e-12:
            linear = got[:, :2] / np.sqrt(abs(np.linalg.det(got[:, :2])))
            if not np.allclose(linear.T @ linear, np.eye(2), atol=1e-6):
                raise _Wrong("the left 2x2 block should be s R, a scaled rotation ([[a, -b], [b, a]]); yours "
                             "shears or stretches")
        error = np.sum((target - (source @ got[:, :2].T + got[:, 2])) ** 2)
        best = np.sum((target - (source @ expected[:, :2].T + expected[:, 2])) ** 2)
        raise _Wrong(f"your matrix leaves a squared error of {error:.4f} over the points; the best similarity "
                     f"leaves {best:.4f}")
    return "Umeyama's least-squares similarity, rotation kept proper on mirrored points"


def _sample(image: np.ndarray, px: np.ndarray, py: np.ndarray, edge: bool = False) -> np.ndarray:
    """Bilinear samples of image at (px, py), neighbours outside counting as 0 (or, with edge, clamped)."""
    h, w = image.shape
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    a, b = px - x0, py - y0
    out = np.zeros(px.shape)
    for dx, dy, weight in ((0, 0, (1 - a) * (1 - b)), (1, 0, a * (1 - b)), (0, 1, (1 - a) * b), (1, 1, a * b)):
        xs, ys = x0 + dx, y0 + dy
        values = image[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        out += weight * (values if edge else np.where(inside, values, 0.0))
    return out


def _warp_variants(image: np.ndarray, matrix: np.ndarray, size: int) -> dict[str, np.ndarray]:
    qy, qx = np.mgrid[0:size, 0:size].astype(np.float64)
    a_inv = np.linalg.inv(matrix[:, :2])
    inverse = np.hstack([a_inv, -a_inv @ matrix[:, 2:]])

    def at(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return m[0, 0] * qx + m[0, 1] * qy + m[0, 2], m[1, 0] * qx + m[1, 1] * qy + m[1, 2]

    px, py = at(inverse)
    h, w = image.shape
    nearest_x, nearest_y = np.rint(px).astype(int), np.rint(py).astype(int)
    inside = (nearest_x >= 0) & (nearest_x < w) & (nearest_y >= 0) & (nearest_y < h)
    return {
        "forward": _sample(image, *at(matrix)),
        "nearest": np.where(inside, image[np.clip(nearest_y, 0, h - 1), np.clip(nearest_x, 0, w - 1)], 0.0),
        "edge": _sample(image, px, py, edge=True),
        "swapped": _sample(image.T, px, py),  # image[x, y]: the input read with rows and columns exchanged
    }


@_check
def check_inverse_warp(fn: Callable[[np.ndarray, np.ndarray, int], np.ndarray]) -> str:
    """fn(image, matrix, size) -> the (size, size) float image `image` (H, W) warped by the 2x3 affine `matrix`
    (input pixel -> output pixel): each output pixel q = (x, y) samples the input at p = M^-1 q, bilinearly from
    its four neighbours, neighbours outside the image counting as 0; as tinyface.face.align.warp_affine."""
    rng = np.random.default_rng(111)
    image = rng.uniform(0, 255, (20, 26))
    cases = [
        (np.hstack([0.9 * _rotation(0.4), [[4.0], [-3.0]]]), 18),
        (np.hstack([1.3 * _rotation(-0.2), [[-2.5], [6.0]]]), 24),
        (np.array([[1.0, 0.0, -3.5], [0.0, 1.0, 2.25]]), 16),  # a shift by a fraction of a pixel
    ]
    hints = {
        "forward": "your output pixel q samples the input at M q: that pushes the image by the inverse map. Pull "
                   "instead: p = M^-1 q (invert the 2x3: [A | b]^-1 = [A^-1 | -A^-1 b])",
        "nearest": "that is the nearest input pixel; interpolate bilinearly: with x0 = floor(p_x), a = p_x - x0 "
                   "(likewise y0, b), weight the four neighbours (1-a)(1-b), a(1-b), (1-a)b, ab",
        "edge": "neighbours outside the image should count as 0, not as the nearest edge pixel",
        "swapped": "x is the column and y the row: sample image[y, x]",
    }
    for matrix, size in cases:
        expected = warp_affine(image, matrix, size).astype(np.float64)
        got = _array(_call(fn, image.copy(), matrix.copy(), size), (size, size), "the warped image")
        if np.allclose(got, expected, atol=1e-6):
            continue
        for name, variant in _warp_variants(image, matrix, size).items():
            if np.allclose(got, variant, atol=1e-6):
                raise _Wrong(hints[name])
        worst = np.unravel_index(np.argmax(np.abs(got - expected)), expected.shape)
        raise _Wrong(f"output pixel (x={worst[1]}, y={worst[0]}) should be {expected[worst]:.4f}, got {got[worst]:.4f}")
    return "the inverse warp: every output pixel pulls its value from M^-1 q, so the output has no holes"


@_check
def check_affine_fit(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(source, target) -> the 2x3 affine matrix M (6 free numbers) minimising
    sum_k ||target_k - M [x_k, y_k, 1]||^2: a linear least-squares problem, lstsq([x y 1], target)."""
    rng = np.random.default_rng(112)
    source = rng.uniform(20, 90, (5, 2))
    sheared = np.array([[1.2, 0.4, 5.0], [-0.1, 0.7, -8.0]])
    cases = [(source, source @ sheared[:, :2].T + sheared[:, 2]),
             (source, source @ (1.1 * _rotation(0.2)).T + [4.0, 2.0] + rng.normal(0, 2.0, (5, 2)))]
    for x, y in cases:
        design = np.hstack([x, np.ones((len(x), 1))])
        expected = np.linalg.lstsq(design, y, rcond=None)[0].T
        got = _array(_call(fn, x.copy(), y.copy()), (2, 3), "the affine matrix")
        if np.allclose(got, expected, atol=1e-7):
            continue
        if np.allclose(got, similarity_transform(x, y), atol=1e-7):
            raise _Wrong("that is the similarity (4 degrees of freedom: s, the angle, t); an affine map has 6, "
                         "solve the least-squares problem for all of them")
        if np.allclose(got, np.linalg.lstsq(np.hstack([y, np.ones((len(y), 1))]), x, rcond=None)[0].T, atol=1e-7):
            raise _Wrong("your matrix maps the target onto the source: the other way round")
        solution = np.linalg.lstsq(design, y, rcond=None)[0]  # (3, 2): the rows of the design's columns
        if np.allclose(got, solution.reshape(2, 3), atol=1e-7):
            raise _Wrong("lstsq gives a (3, 2) array whose columns are the rows of M: transpose it, do not reshape")
        raise _Wrong(f"expected the least-squares affine {np.round(expected, 4).tolist()}, got "
                     f"{np.round(got, 4).tolist()}")
    return "six numbers fitted by least squares: it can shear and stretch a face, which a similarity cannot"


__all__ = ["check_affine_fit", "check_inverse_warp", "check_similarity_transform"]
