"""The exercise checks of lesson 11, face alignment: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np
import pytest

from tinyface.face.align import similarity_transform, warp_affine
from tinyface.teaching.exercises import lesson11_face_alignment as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_similarity_transform(unanswered)) == "unanswered"
    assert status(ex.check_inverse_warp(unanswered)) == "unanswered"
    assert status(ex.check_affine_fit(unanswered)) == "unanswered"
    assert status(ex.check_affine_fit(lambda source, target: None)) == "unanswered"


def umeyama(source, target, reflection_fix=True, scale_by="source", translation="right", transpose=False):
    """Umeyama's method, written out as a student would, with switches for the usual slips."""
    mu_x, mu_y = source.mean(axis=0), target.mean(axis=0)
    xc, yc = source - mu_x, target - mu_y
    covariance = (xc.T @ yc if transpose else yc.T @ xc) / len(source)
    u, d, vt = np.linalg.svd(covariance)
    s_fix = np.diag([1.0, np.linalg.det(u) * np.linalg.det(vt)]) if reflection_fix else np.eye(2)
    rotation = u @ s_fix @ vt
    variance = np.mean(np.sum((xc if scale_by == "source" else yc) ** 2, axis=1))
    scale = 1.0 if scale_by == "none" else np.trace(np.diag(d) @ s_fix) / variance
    shift = mu_y - scale * rotation @ mu_x if translation == "right" else mu_y - mu_x
    return np.hstack([scale * rotation, shift[:, None]])


def test_check_similarity_transform(status):
    assert status(ex.check_similarity_transform(umeyama)) == "right"
    assert status(ex.check_similarity_transform(similarity_transform)) == "right"


def affine_lstsq(source, target):
    return np.linalg.lstsq(np.hstack([source, np.ones((len(source), 1))]), target, rcond=None)[0].T


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda x, y: umeyama(x, y, reflection_fix=False), "det R = -1"),
    (lambda x, y: umeyama(x, y, scale_by="target"), "variance of the SOURCE"),
    (lambda x, y: umeyama(x, y, scale_by="none"), "your s is 1"),
    (lambda x, y: umeyama(x, y, translation="means"), "t = mu_y - s R mu_x"),
    (lambda x, y: umeyama(x, y, transpose=True), "the transpose"),
    (lambda x, y: similarity_transform(y, x), "the other way round"),
    (affine_lstsq, "shears or stretches"),
    (lambda x, y: umeyama(x, y) + [[0, 0, 1.0], [0, 0, 0]], "squared error"),
    (lambda x, y: umeyama(x, y)[:, :2], "shape (2, 3)"),
])
def test_check_similarity_transform_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_similarity_transform(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def sample(image, px, py, edge=False):
    h, w = image.shape
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    a, b = px - x0, py - y0
    out = np.zeros(px.shape)
    for dx, dy, weight in ((0, 0, (1 - a) * (1 - b)), (1, 0, a * (1 - b)), (0, 1, (1 - a) * b), (1, 1, a * b)):
        xs, ys = x0 + dx, y0 + dy
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        values = image[np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]
        out += weight * (values if edge else np.where(inside, values, 0.0))
    return out


def inverse_warp(image, matrix, size, direction="pull", interpolation="bilinear", outside="zero", swap=False):
    """The inverse warp, written out as a student would, with switches for the usual slips."""
    qy, qx = np.mgrid[0:size, 0:size].astype(np.float64)
    a_inv = np.linalg.inv(matrix[:, :2])
    m = np.hstack([a_inv, -a_inv @ matrix[:, 2:]]) if direction == "pull" else matrix
    px, py = m[0, 0] * qx + m[0, 1] * qy + m[0, 2], m[1, 0] * qx + m[1, 1] * qy + m[1, 2]
    source = image.T if swap else image
    if interpolation == "nearest":
        x, y = np.rint(px).astype(int), np.rint(py).astype(int)
        h, w = source.shape
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        return np.where(inside, source[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)], 0.0)
    return sample(source, px, py, edge=outside == "edge")


def looped_warp(image, matrix, size):
    """One output pixel at a time: the plainest correct answer."""
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))
    h, w = image.shape
    out = np.zeros((size, size))
    for y in range(size):
        for x in range(size):
            px, py, _ = inverse @ [x, y, 1]
            x0, y0 = int(np.floor(px)), int(np.floor(py))
            a, b = px - x0, py - y0
            for dx, dy, weight in ((0, 0, (1 - a) * (1 - b)), (1, 0, a * (1 - b)), (0, 1, (1 - a) * b),
                                   (1, 1, a * b)):
                if 0 <= x0 + dx < w and 0 <= y0 + dy < h:
                    out[y, x] += weight * image[y0 + dy, x0 + dx]
    return out


def test_check_inverse_warp(status):
    assert status(ex.check_inverse_warp(inverse_warp)) == "right"
    assert status(ex.check_inverse_warp(looped_warp)) == "right"
    assert status(ex.check_inverse_warp(lambda image, m, size: warp_affine(image, m, size))) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (lambda image, m, size: inverse_warp(image, m, size, direction="push"), "Pull instead"),
    (lambda image, m, size: inverse_warp(image, m, size, interpolation="nearest"), "bilinearly"),
    (lambda image, m, size: inverse_warp(image, m, size, outside="edge"), "count as 0"),
    (lambda image, m, size: inverse_warp(image, m, size, swap=True), "image[y, x]"),
    (lambda image, m, size: inverse_warp(image, m, size) + 1, "should be"),
    (lambda image, m, size: inverse_warp(image, m, size)[:-1], "should have shape"),
    (lambda image, m, size: inverse_warp(image, m, size + 1), "should have shape"),
])
def test_check_inverse_warp_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_inverse_warp(answer)
    assert status(verdict) == "wrong" and hint in verdict.message


def test_check_affine_fit(status):
    assert status(ex.check_affine_fit(affine_lstsq)) == "right"

    def normal_equations(source, target):
        design = np.hstack([source, np.ones((len(source), 1))])
        return np.linalg.solve(design.T @ design, design.T @ target).T

    assert status(ex.check_affine_fit(normal_equations)) == "right"


@pytest.mark.parametrize(("answer", "hint"), [
    (similarity_transform, "that is the similarity"),
    (lambda x, y: affine_lstsq(y, x), "the other way round"),
    (lambda x, y: np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0].reshape(2, 3),
     "do not reshape"),
    (lambda x, y: np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0], "shape (2, 3)"),
    (lambda x, y: affine_lstsq(x, y) * 1.01, "expected the least-squares affine"),
])
def test_check_affine_fit_rejects_the_usual_slips(status, answer, hint):
    verdict = ex.check_affine_fit(answer)
    assert status(verdict) == "wrong" and hint in verdict.message
