"""Face alignment: move five facial landmarks onto a canonical template with a similarity transform, so that
every face reaches the model with its eyes, nose and mouth in the same places.

A similarity transform maps a point p = (x, y) to  s R p + t  (rotation R, scale s, translation t: 4 degrees of
freedom); as a 2x3 matrix M = [s R | t] acting on (x, y, 1). Coordinates are pixels (x right, y down) with
integer values at pixel centres, as in OpenCV. Detection (finding the face and its landmarks) is not done here:
landmarks come from a CSV file, and `detect_faces` offers OpenCV's Haar cascade when OpenCV is installed.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import numpy as np

# The ArcFace / InsightFace template for 112x112 crops, (x, y) in pixels: the eye on the image's left, the eye
# on the image's right, the nose tip, the mouth corner on the image's left, the one on the image's right.
CANONICAL_5_POINTS = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
CANONICAL_SIZE = 112

# The side of OpenCV's Haar face box in an LFW frame, as a fraction of the frame: the median over 400 random
# deep-funneled LFW images (10% and 90% quantiles 0.42 and 0.50; the box centred on the frame's centre within 1%).
# It turns a detected box into the crop a run was trained on: face_crop / HAAR_BOX_OF_LFW_FRAME box sides.
HAAR_BOX_OF_LFW_FRAME = 0.46


class NoFaceError(ValueError):
    """The detector found no face in an image."""


class DetectorMissingError(ValueError):
    """Face detection was asked for, and OpenCV 4 (its Haar cascade) is not installed."""


def canonical_template(size: int) -> np.ndarray:
    """CANONICAL_5_POINTS scaled from 112x112 to a size x size crop, (5, 2)."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return CANONICAL_5_POINTS * (size / CANONICAL_SIZE)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 matrix [s R | t] minimising sum_k ||target_k - (s R source_k + t)||^2 (Umeyama, 1991).

    With means mu_x, mu_y, the source variance sigma^2 = mean ||x_k - mu_x||^2 and the covariance
    C = mean (y_k - mu_y)(x_k - mu_x)^T = U D V^T (SVD):

        R = U S V^T,  S = diag(1, det(U) det(V))   (S flips the last axis when the best orthogonal map would be
                                                     a reflection: R is always a proper rotation)
        s = trace(D S) / sigma^2,   t = mu_y - s R mu_x
    """
    x, y = _points(source, "source"), _points(target, "target")
    if x.shape != y.shape:
        raise ValueError(f"source and target must hold the same number of points, got {x.shape} and {y.shape}")
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu_x, y - mu_y
    variance = np.mean(np.sum(xc**2, axis=1))
    if variance <= 1e-12 * max(1.0, float(np.abs(x).max())) ** 2:
        raise ValueError("the source points all coincide, so no rotation or scale can be estimated")
    u, d, vt = np.linalg.svd(yc.T @ xc / len(x))
    signs = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])  # U, V orthogonal: +-1
    rotation = (u * signs) @ vt
    scale = np.sum(d * signs) / variance
    translation = mu_y - scale * rotation @ mu_x
    return np.hstack([scale * rotation, translation[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the inverse map: [A | b]^-1 = [A^-1 | -A^-1 b]."""
    matrix = _matrix(matrix)
    a_inv = np.linalg.inv(matrix[..., :2])
    return np.concatenate([a_inv, -a_inv @ matrix[..., 2:]], axis=-1)


def warp_affine(
    images: np.ndarray, matrix: np.ndarray, output_size: int | tuple[int, int], fill: float = 0.0
) -> np.ndarray:
    """Warp images by the affine map `matrix` (input pixel -> output pixel) with bilinear sampling.

    images: (N, C, H, W), (H, W) or (H, W, C). matrix: (2, 3), or (N, 2, 3) for one map per image.
    output_size: side, or (height, width). Each output pixel q samples the input at p = M^-1 q:

        out(q) = (1 - a)(1 - b) I(x0, y0) + a (1 - b) I(x0 + 1, y0) + (1 - a) b I(x0, y0 + 1) + a b I(x0 + 1, y0 + 1)

    with x0 = floor(p_x), a = p_x - x0 (and likewise y0, b); neighbours outside the image count as `fill`
    (fill=NaN marks exactly the output pixels that needed samples from outside).
    Float images come back in their dtype, integer images rounded and clipped to theirs.
    """
    original = np.asarray(images)
    if original.ndim not in (2, 3, 4):
        raise ValueError(f"images must be (N, C, H, W), (H, W) or (H, W, C), got shape {original.shape}")
    batch = original if original.ndim == 4 else np.moveaxis(np.atleast_3d(original), -1, 0)[None]
    n, c, h, w = batch.shape
    matrix = _matrix(matrix)
    if matrix.ndim == 3 and (original.ndim != 4 or len(matrix) != n):
        raise ValueError(f"give one (2, 3) matrix, or one per image: (N, 2, 3) with N = {n}, got {matrix.shape}")
    out_h, out_w = _size(output_size)

    # where each output pixel samples the input: p = M^-1 q, for q on the output grid, (N or 1, out_h, out_w)
    inverse = np.broadcast_to(invert_affine(matrix), (n, 2, 3))
    qy, qx = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    px = inverse[:, 0, 0, None, None] * qx + inverse[:, 0, 1, None, None] * qy + inverse[:, 0, 2, None, None]
    py = inverse[:, 1, 0, None, None] * qx + inverse[:, 1, 1, None, None] * qy + inverse[:, 1, 2, None, None]
    x0, y0 = np.floor(px), np.floor(py)
    a, b = px - x0, py - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)

    source = batch.astype(np.float32 if batch.dtype != np.float64 else np.float64, copy=False)
    rows = np.arange(n)[:, None, None]
    out = np.zeros((n, out_h, out_w, c), dtype=source.dtype)
    for dx, dy, weight in ((0, 0, (1 - a) * (1 - b)), (1, 0, a * (1 - b)), (0, 1, (1 - a) * b), (1, 1, a * b)):
        xs, ys = x0 + dx, y0 + dy
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        values = source[rows, :, np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)]  # (N, out_h, out_w, C)
        values = np.where(inside[..., None], values, fill)
        out += np.where(weight[..., None] > 0, weight[..., None] * values, 0).astype(source.dtype)  # 0 * NaN fill
    out = out.transpose(0, 3, 1, 2)  # (N, C, out_h, out_w)

    if np.issubdtype(original.dtype, np.integer):
        limits = np.iinfo(original.dtype)
        out = np.clip(np.rint(out), limits.min, limits.max).astype(original.dtype)
    if original.ndim == 4:
        return out
    out = np.moveaxis(out[0], 0, -1)
    return out[..., 0] if original.ndim == 2 else out


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = CANONICAL_SIZE, template: np.ndarray | None = None
) -> np.ndarray:
    """The face in `image` ((H, W) or (H, W, C)) warped so that its five `landmarks` (5, 2), (x, y) in pixels,
    land on `template` (default: the canonical 5 points scaled to size x size). Returns (size, size[, C])."""
    template = canonical_template(size) if template is None else _points(template, "template")
    landmarks = _points(landmarks, "landmarks")
    if landmarks.shape != template.shape:
        raise ValueError(f"landmarks {landmarks.shape} and template {template.shape} must match point for point")
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
    return warp_affine(image, similarity_transform(landmarks, template), size)


def read_landmarks_csv(path: str | Path, points: int = 5) -> dict[str, np.ndarray]:
    """Landmarks per image from a CSV file with rows `image_path, x1, y1, ..., x5, y5` (order as in
    CANONICAL_5_POINTS). A first row whose coordinates are not numbers is a header; blank lines and lines
    starting with # are skipped. Keys are the paths as written (relative ones are relative to the CSV's
    folder, for the caller to resolve). Values are float64 (points, 2)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"landmarks file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read landmarks file {path}: {error}") from error
    columns = 1 + 2 * points
    landmarks: dict[str, np.ndarray] = {}
    first_row = True
    for line_number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"{path}, line {line_number}"
        if len(row) != columns:
            raise ValueError(f"{where}: expected {columns} columns (image path, then x, y for {points} points), "
                             f"got {len(row)}: {','.join(row)!r}")
        try:
            values = np.array([float(v) for v in row[1:]])
        except ValueError:
            if first_row:  # a header
                first_row = False
                continue
            raise ValueError(f"{where}: coordinates must be numbers, got {row[1:]}") from None
        first_row = False
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{where}: coordinates must be finite, got {row[1:]}")
        name = row[0].strip()
        if not name:
            raise ValueError(f"{where}: the image path is empty")
        if name in landmarks:
            raise ValueError(f"{where}: {name} appears twice; give one row per image")
        landmarks[name] = values.reshape(points, 2)
    if not landmarks:
        raise ValueError(f"landmarks file {path} holds no rows")
    return landmarks


@functools.cache
def face_detector() -> Any:
    """OpenCV's shipped frontal-face Haar cascade; DetectorMissingError (saying how to install it) without
    OpenCV 4 (OpenCV 5 moved the cascade out of its main module)."""
    try:
        import cv2
    except ImportError:
        raise DetectorMissingError("face detection needs OpenCV, which is not installed: pip install "
                                   "'opencv-python-headless<5' (or crop the faces yourself and pass --aligned)"
                                   ) from None
    if not hasattr(cv2, "CascadeClassifier"):
        raise DetectorMissingError(f"face detection needs OpenCV 4 (OpenCV {cv2.__version__} moved its Haar cascade "
                                   "out of the main module): pip install 'opencv-python-headless<5'")
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def detect_faces(image: np.ndarray, min_size: int = 30) -> np.ndarray:
    """Face boxes (M, 4) as (x, y, width, height), largest first, from OpenCV's shipped frontal-face Haar
    cascade. image: uint8 (H, W) or (H, W, 3) RGB. Needs OpenCV 4 (`pip install 'opencv-python-headless<5'`)."""
    cascade = face_detector()
    import cv2  # installed: face_detector() has checked
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    boxes = np.asarray(cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size,) * 2))
    boxes = boxes.reshape(-1, 4).astype(np.int64)
    return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]


def largest_face_box(image: np.ndarray, advice: str) -> np.ndarray:
    """(x, y, width, height) of the largest detected face; NoFaceError, ending with `advice`, when none."""
    boxes = detect_faces(image)
    if len(boxes) == 0:
        raise NoFaceError(f"no face found in the image; {advice}")
    return boxes[0]


def crop_largest_face(image: np.ndarray, margin: float = 0.2) -> np.ndarray:
    """The largest detected face, its box grown by `margin` of its side on every side (clamped to the image).
    Raises NoFaceError when the detector finds none."""
    x, y, w, h = largest_face_box(image, "crop it by hand or give landmarks instead")
    grow_x, grow_y = int(round(margin * w)), int(round(margin * h))
    top, left = max(0, y - grow_y), max(0, x - grow_x)
    return np.asarray(image)[top : y + h + grow_y, left : x + w + grow_x]


def frame_detected_face(image: np.ndarray, face_crop: float) -> np.ndarray:
    """The square around the largest detected face that a run trained on LFW-style frames with `face_crop` saw:
    centred on the face box, of side face_crop / HAAR_BOX_OF_LFW_FRAME box sides (LFW's 0.4 crop: 0.87 of the
    box), shifted inside the image where it would overflow. So a phone photo, a tight crop or a face off-centre
    lands as the training faces did. Raises NoFaceError when the detector finds none."""
    if not 0 < face_crop <= 1:
        raise ValueError(f"face_crop is a fraction of the frame in (0, 1], got {face_crop}")
    image = np.asarray(image)
    x, y, w, h = largest_face_box(image, "crop it by hand and pass --aligned, or give landmarks")
    height, width = image.shape[:2]
    side = min(round(face_crop / HAAR_BOX_OF_LFW_FRAME * max(w, h)), height, width)
    top = int(np.clip(round(y + h / 2 - side / 2), 0, height - side))
    left = int(np.clip(round(x + w / 2 - side / 2), 0, width - side))
    return image[top : top + side, left : left + side]


def _points(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
        raise ValueError(f"{name} must be (K, 2) points (x, y) with K >= 2, got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    return points


def _matrix(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape[-2:] != (2, 3) or matrix.ndim not in (2, 3):
        raise ValueError(f"an affine matrix is (2, 3), or (N, 2, 3) for a batch, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("the affine matrix contains NaN or infinite values")
    if np.any(np.abs(np.linalg.det(matrix[..., :2])) < 1e-12):
        raise ValueError("the affine matrix is singular (it collapses the image onto a line or a point)")
    return matrix


def _size(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if np.isscalar(size) else size
    if int(h) < 1 or int(w) < 1:
        raise ValueError(f"output_size must be positive, got {size}")
    return int(h), int(w)
