"""`--detect` on the face tools: a snapshot with the face anywhere compares as its LFW frame."""

import importlib.util

import pytest
from cli_helpers import fails, run
from PIL import Image

needs_cv2 = pytest.mark.skipif(importlib.util.find_spec("cv2") is None, reason="OpenCV is not installed")


@needs_cv2
@pytest.mark.real_data
def test_compare_with_detect_recognises_a_snapshot_and_refuses_two_framings(data_dir, tmp_path, capsys):
    frame = sorted((data_dir / "lfw" / "lfw-deepfunneled").glob("A*/*_0001.jpg"))[0]
    with Image.open(frame) as image:
        canvas = Image.new("RGB", (900, 700), (90, 110, 90))
        canvas.paste(image.convert("RGB").resize((320, 320)), (520, 40))
        canvas.save(tmp_path / "snapshot.jpg", quality=95)
    code, out, _ = run(["compare", "--detect", frame, tmp_path / "snapshot.jpg"], capsys)
    assert code == 0 and "same person" in out, out
    fails(["compare", "--detect", "--aligned", frame, tmp_path / "snapshot.jpg"], capsys, "exclude each other")
    Image.new("RGB", (300, 300), (128, 128, 128)).save(tmp_path / "wall.png")
    fails(["compare", "--detect", frame, tmp_path / "wall.png"], capsys, "no face found in")
