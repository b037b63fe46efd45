import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyface.face.align import (
    CANONICAL_5_POINTS,
    align_face,
    canonical_template,
    crop_largest_face,
    detect_faces,
    invert_affine,
    read_landmarks_csv,
    similarity_transform,
    warp_affine,
)

HAS_CV2 = importlib.util.find_spec("cv2") is not None


def similarity(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def reference_warp(image: np.ndarray, matrix: np.ndarray, out_h: int, out_w: int, fill: float = 0.0):
    """Bilinear warp of a (H, W) image, one output pixel at a time: what warp_affine must equal."""
    h, w = image.shape
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    out = np.zeros((out_h, out_w))
    for qy in range(out_h):
        for qx in range(out_w):
            px, py = inverse @ [qx, qy, 1.0]
            x0, y0 = int(np.floor(px)), int(np.floor(py))
            for x, y in ((x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)):
                weight = (1 - abs(px - x)) * (1 - abs(py - y))
                value = image[y, x] if 0 <= x < w and 0 <= y < h else fill
                out[qy, qx] += weight * value
    return out


def test_similarity_transform_recovers_a_known_rotation_scale_and_translation():
    truth = similarity(0.7, 1.8, -12.5, 40.0)
    source = CANONICAL_5_POINTS
    np.testing.assert_allclose(similarity_transform(source, apply(truth, source)), truth, atol=1e-10)


def test_similarity_transform_is_a_least_squares_fit_and_never_a_reflection():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(5, 2)) * 20
    mirrored = source * [-1, 1]  # the best orthogonal map would be a reflection
    m = similarity_transform(source, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    # a least-squares optimum: no small change of (angle, scale, shift) lowers the error
    def error(matrix):
        return np.sum((apply(matrix, source) - mirrored) ** 2)
    angle, scale = np.arctan2(m[1, 0], m[0, 0]), np.hypot(m[0, 0], m[1, 0])
    base = error(m)
    for delta in np.eye(4) * 1e-4:
        for sign in (1, -1):
            a, s, tx, ty = np.array([angle, scale, m[0, 2], m[1, 2]]) + sign * delta
            assert error(similarity(a, s, tx, ty)) >= base - 1e-9


def test_similarity_transform_rejects_bad_points():
    with pytest.raises(ValueError, match="same number of points"):
        similarity_transform(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), CANONICAL_5_POINTS)
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        similarity_transform(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        similarity_transform(np.full((5, 2), np.nan), CANONICAL_5_POINTS)


@given(
    angle=st.floats(-np.pi, np.pi),
    scale=st.floats(0.2, 5.0),
    tx=st.floats(-100, 100),
    ty=st.floats(-100, 100),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=60, deadline=None)
def test_similarity_transform_round_trip(angle, scale, tx, ty, seed):
    source = np.random.default_rng(seed).uniform(0, 100, size=(5, 2))
    truth = similarity(angle, scale, tx, ty)
    target = apply(truth, source)
    forward = similarity_transform(source, target)
    np.testing.assert_allclose(forward, truth, atol=1e-7 * max(1.0, scale))
    back = similarity_transform(target, source)  # the inverse map, found the other way round
    np.testing.assert_allclose(apply(back, target), source, atol=1e-6)


def test_warp_with_the_identity_is_the_identity():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 2, 7, 9), dtype=np.uint8)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_array_equal(warp_affine(images, identity, (7, 9)), images)
    hwc = rng.random((5, 6, 3))
    np.testing.assert_array_equal(warp_affine(hwc, identity, (5, 6), fill=np.nan), hwc)


def test_warp_matches_a_per_pixel_reference_loop():
    rng = np.random.default_rng(2)
    image = rng.random((6, 8))
    for matrix in (similarity(0.3, 1.4, 1.5, -2.0), np.array([[0.8, 0.2, 1.3], [-0.1, 1.1, 0.7]])):
        expected = reference_warp(image, matrix, 7, 5, fill=0.25)
        np.testing.assert_allclose(warp_affine(image, matrix, (7, 5), fill=0.25), expected, atol=1e-12)


def test_warp_of_a_batch_with_one_matrix_per_image_matches_each_alone():
    rng = np.random.default_rng(3)
    images = rng.random((4, 3, 10, 12)).astype(np.float32)
    matrices = np.stack([similarity(a, 1 + a, 2 * a, -a) for a in np.linspace(-0.5, 0.5, 4)])
    batch = warp_affine(images, matrices, 8)
    assert batch.shape == (4, 3, 8, 8) and batch.dtype == np.float32
    for image, matrix, warped in zip(images, matrices, batch, strict=True):
        for channel, out in zip(image, warped, strict=True):
            np.testing.assert_allclose(out, reference_warp(channel, matrix, 8, 8), atol=1e-5)


def test_warp_shifts_by_whole_pixels_exactly():
    image = np.arange(20.0).reshape(4, 5)
    shifted = warp_affine(image, [[1, 0, 1], [0, 1, 0]], (4, 5))  # content moves one pixel right
    np.testing.assert_array_equal(shifted[:, 1:], image[:, :-1])
    np.testing.assert_array_equal(shifted[:, 0], 0)


@given(angle=st.floats(-np.pi, np.pi), scale=st.floats(0.5, 2.0), seed=st.integers(0, 2**16))
@settings(max_examples=30, deadline=None)
def test_warp_there_and_back_restores_a_smooth_image_inside(angle, scale, seed):
    # a linear ramp is reproduced exactly by bilinear sampling, so a round trip through any similarity that
    # keeps the centre in view returns it wherever both warps sampled inside the image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    image = rng.normal() * xx + rng.normal() * yy + 5
    centre = np.array([15.5, 15.5])
    m = similarity(angle, scale, 0, 0)
    m[:, 2] = centre - m[:, :2] @ centre  # rotate and scale about the centre
    there = warp_affine(image, m, 32, fill=np.nan)
    back = warp_affine(there, invert_affine(m), 32, fill=np.nan)
    valid = np.isfinite(back)
    assert valid[12:20, 12:20].all()
    np.testing.assert_allclose(back[valid], image[valid], atol=1e-8)


def test_warp_rejects_bad_arguments():
    with pytest.raises(ValueError, match="singular"):
        warp_affine(np.zeros((4, 4)), np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        warp_affine(np.zeros((4, 4)), np.eye(3), 4)
    with pytest.raises(ValueError, match="one per image"):
        warp_affine(np.zeros((2, 1, 4, 4)), np.tile(np.eye(2, 3), (3, 1, 1)), 4)
    with pytest.raises(ValueError, match="images must be"):
        warp_affine(np.zeros(4), np.eye(2, 3), 4)


def test_align_face_puts_the_landmarks_on_the_template():
    # draw a bright dot at each landmark of a rotated, scaled face; after alignment the dots sit at the template
    size = 96
    truth = similarity(0.4, 2.5, 30, 10)
    landmarks = apply(truth, canonical_template(size))
    image = np.zeros((400, 400, 3), dtype=np.uint8)
    for x, y in np.rint(landmarks).astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    aligned = align_face(image, landmarks, size=size)
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    for x, y in canonical_template(size):
        assert aligned[int(round(y)), int(round(x))].min() > 100
    assert aligned.mean() < 10  # and nothing else is bright


@pytest.mark.real_data
def test_align_face_on_a_real_lfw_image(tmp_path, data_dir):
    from PIL import Image

    path = data_dir / "lfw" / "lfw-deepfunneled" / "AJ_Cook" / "AJ_Cook_0001.jpg"
    image = np.asarray(Image.open(path).convert("RGB"))
    # deep-funneled LFW faces sit near the template scaled by ~1.1 about the 250x250 centre
    landmarks = (CANONICAL_5_POINTS - 56) * 1.1 + 125
    aligned = align_face(image, landmarks, size=112)
    assert aligned.shape == (112, 112, 3)
    assert aligned.std() > 20  # a face, not an empty border


def test_read_landmarks_csv(tmp_path):
    path = tmp_path / "marks.csv"
    rows = ["image,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5", "# a comment", "", "a/1.jpg," + ",".join(map(str, range(10))),
            '"b c/2.jpg",' + ",".join(["1.5"] * 10)]
    path.write_text("\n".join(rows) + "\n")
    marks = read_landmarks_csv(path)
    assert list(marks) == ["a/1.jpg", "b c/2.jpg"]
    np.testing.assert_array_equal(marks["a/1.jpg"], np.arange(10.0).reshape(5, 2))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x.jpg,1,2,3", "line 2: expected 11 columns"),
        ("x.jpg," + ",".join(["1"] * 9) + ",oops", "line 2: coordinates must be numbers"),
        ("x.jpg," + ",".join(["1"] * 9) + ",nan", "line 2: coordinates must be finite"),
        ("a.jpg," + ",".join(["1"] * 10), "line 2: a.jpg appears twice"),
    ],
)
def test_read_landmarks_csv_names_the_file_and_line_of_a_bad_row(tmp_path, line, message):
    path = tmp_path / "marks.csv"
    path.write_text("a.jpg," + ",".join(["0"] * 10) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=message) as error:
        read_landmarks_csv(path)
    assert str(path) in str(error.value)


def test_read_landmarks_csv_missing_or_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_landmarks_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("image,x1\n")
    with pytest.raises(ValueError, match="expected 11 columns"):
        read_landmarks_csv(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="holds no rows"):
        read_landmarks_csv(tmp_path / "blank.csv")


@pytest.mark.skipif(not HAS_CV2, reason="OpenCV is not installed")
def test_detection_finds_no_face_in_a_blank_image():
    from tinyface.face.align import NoFaceError

    assert detect_faces(np.zeros((100, 100), dtype=np.uint8)).shape == (0, 4)
    with pytest.raises(NoFaceError):
        crop_largest_face(np.zeros((100, 100, 3), dtype=np.uint8))
