"""--detect: a face anywhere in a photo of any size is framed as the run's training faces were."""

import importlib.util

import numpy as np
import pytest
from PIL import Image

from tinyface.face import align
from tinyface.face.align import HAAR_BOX_OF_LFW_FRAME, DetectorMissingError, NoFaceError, frame_detected_face
from tinyface.face.embedder import Embedder
from tinyface.pretrained import pretrained_run

HAS_CV2 = importlib.util.find_spec("cv2") is not None
needs_cv2 = pytest.mark.skipif(not HAS_CV2, reason="OpenCV is not installed")


def test_the_detected_box_becomes_the_training_crop(monkeypatch):
    """A box of side w centred at (cx, cy) gives the square of side face_crop / 0.46 * w around (cx, cy),
    shifted inside the image where it would overflow, and the largest box wins."""
    image = np.arange(400 * 600, dtype=np.uint32).reshape(400, 600).astype(np.uint8)
    boxes = np.array([[300, 100, 92, 92], [10, 10, 40, 40]])
    monkeypatch.setattr(align, "detect_faces", lambda image: boxes)
    crop = frame_detected_face(image, 0.4)
    side = round(0.4 / HAAR_BOX_OF_LFW_FRAME * 92)
    top, left = round(146 - side / 2), round(346 - side / 2)
    assert crop.shape == (side, side)
    np.testing.assert_array_equal(crop, image[top : top + side, left : left + side])
    monkeypatch.setattr(align, "detect_faces", lambda image: np.array([[560, 360, 92, 92]]))  # in the corner:
    assert frame_detected_face(image, 0.4).shape == (side, side)  # shifted inside, never padded
    np.testing.assert_array_equal(frame_detected_face(image, 0.4), image[-side:, -side:])
    monkeypatch.setattr(align, "detect_faces", lambda image: np.zeros((0, 4), np.int64))
    with pytest.raises(NoFaceError, match="--aligned"):
        frame_detected_face(image, 0.4)
    with pytest.raises(ValueError, match="fraction"):
        frame_detected_face(image, 0.0)


def test_without_opencv_detection_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)  # import cv2 raises ImportError
    align.face_detector.cache_clear()
    try:
        with pytest.raises(DetectorMissingError, match="opencv-python-headless<5"):
            Embedder.load(pretrained_run(), detect=True)
    finally:
        align.face_detector.cache_clear()


def test_detect_and_aligned_exclude_each_other_and_whole_image_runs_refuse_detect(tmp_path):
    with pytest.raises(ValueError, match="exclude each other"):
        Embedder.load(pretrained_run(), detect=True, aligned=True)
    embedder = Embedder.load(pretrained_run())
    embedder.checkpoint.meta = {**embedder.checkpoint.meta, "task": {"dataset": "olivetti"}}
    with pytest.raises(ValueError, match="trained on whole images"):
        Embedder(embedder.checkpoint, detect=True)


@needs_cv2
@pytest.mark.real_data
def test_a_face_pasted_off_centre_in_a_large_photo_embeds_as_its_lfw_frame(data_dir, tmp_path):
    """An LFW frame shrunk into a corner of an 800 x 600 photo: the centre crop sees the background, --detect
    finds the face and lands near the embedding of the original frame."""
    frames = sorted((data_dir / "lfw" / "lfw-deepfunneled").glob("A*/*_0001.jpg"))[:8]
    photos = []
    for k, path in enumerate(frames):
        with Image.open(path) as frame:
            canvas = Image.new("RGB", (800, 600), (120, 120, 120))
            canvas.paste(frame.convert("RGB").resize((300, 300)), (40 + 50 * k, 260))
            canvas.save(tmp_path / f"{k}.jpg", quality=95)
            photos.append(tmp_path / f"{k}.jpg")
    original = Embedder.load(pretrained_run()).embed_files(frames)[1]
    centre = Embedder.load(pretrained_run()).embed_files(photos)[1]
    detected = Embedder.load(pretrained_run(), detect=True).embed_files(photos)[1]
    d_centre = np.sum((centre - original) ** 2, axis=1)
    d_detect = np.sum((detected - original) ** 2, axis=1)
    tau = Embedder.load(pretrained_run()).tau
    assert np.all(d_detect < tau / 2), d_detect  # recognised as the same face, with room to spare
    assert np.median(d_centre) > tau, d_centre  # the centre crop of the photo is not that face

