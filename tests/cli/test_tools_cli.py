"""The face tools of the `tinyface` command: compare, enroll / identify, cluster, classify, embed, align, the
collapse demo, and validate's open-set rate and figures; each on real Olivetti faces written as image files, with
a tiny run trained once for the session; clear errors, nothing half-written."""

import json
import sys

import numpy as np
import pytest
from cli_helpers import fails, run
from PIL import Image

from tinyface.face.align import face_detector
from tinyface.face.embedder import load_embeddings
from tinyface.face.gallery import Gallery
from tinyface.training.runs import train_run
from tinyface.training.split import load_split
from tinyface.training.train import TrainConfig

PEOPLE = 12  # Olivetti people 0-11, as s00 ... s11
IMAGES = 6  # the first six images of each


def write_faces(root, olivetti, people, images):
    """root/sNN/K.png: Olivetti faces as grey 64x64 PNG files in the person/image layout."""
    for person in people:
        (root / f"s{person:02d}").mkdir(parents=True)
        for k, index in enumerate(np.flatnonzero(olivetti.labels == person)[images]):
            Image.fromarray(olivetti.images[index, 0]).save(root / f"s{person:02d}" / f"{k}.png")
    return root


@pytest.fixture(scope="session")
def faces(tmp_path_factory, olivetti):
    return write_faces(tmp_path_factory.mktemp("faces"), olivetti, range(PEOPLE), slice(0, IMAGES))


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, faces):
    """A tiny model trained for 4 steps on the folder (16x16 grey, widths (4, 8), D = 8)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYFACE_CACHE", str(tmp_path_factory.mktemp("cache")))
        split = load_split("folder", faces, image_size=16, grayscale=True)
        config = TrainConfig(steps=4, steps_per_epoch=2, people_per_batch=4, images_per_person=3, widths=(4, 8),
                             embedding_dim=8, image_size=16, lr=3e-3)
        out = tmp_path_factory.mktemp("run")
        train_run(split, config, out, progress=False, figures=False, log=lambda *_: None)
    return out


def test_compare_prints_distances_verdicts_and_confidence(run_dir, faces, capsys):
    images = [faces / "s00" / "0.png", faces / "s00" / "1.png", faces / "s01" / "0.png"]
    code, out, err = run(["compare", run_dir, *images, "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    d = np.array(result["distances"])
    assert d.shape == (3, 3) and np.allclose(d, d.T) and np.all(np.diag(d) == 0) and np.all(d <= 4 + 1e-5)
    assert len(result["pairs"]) == 3 and result["note"] is None
    for pair in result["pairs"]:
        assert pair["same"] == (pair["distance"] <= result["tau"])
        assert 0 < pair["confidence"] < 1  # of the verdict given: a probability-like number inside (0, 1)
    code, out, _ = run(["compare", run_dir, *images], capsys)
    assert code == 0 and "squared L2 distances" in out and "confidence" in out and out.count("d = ") == 3


def test_compare_errors(run_dir, faces, tmp_path, capsys):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    fails(["compare", run_dir, faces / "s00" / "0.png", tmp_path / "broken.png"], capsys, "cannot read 1 image")
    fails(["compare", run_dir, faces / "s00" / "0.png", tmp_path / "missing.png"], capsys, "no such file")
    fails(["compare", run_dir, faces / "s00" / "0.png"], capsys, "at least two images")
    fails(["compare", tmp_path, faces / "s00" / "0.png", faces / "s00" / "1.png"], capsys, "no checkpoint")


@pytest.fixture
def gallery(run_dir, olivetti, tmp_path, capsys):
    """s00-s03 enrolled with 3 images each."""
    people = write_faces(tmp_path / "people", olivetti, range(4), slice(0, 3))
    code, out, err = run(["enroll", run_dir, people, "-o", tmp_path / "gallery.npz"], capsys)
    assert code == 0, err
    assert "enrolled 4 people (12 faces)" in out
    return tmp_path / "gallery.npz"


def test_enroll_and_identify_with_open_set_rejection(run_dir, gallery, faces, capsys):
    probes = [faces / "s00" / "5.png", faces / "s02" / "5.png", faces / "s09" / "0.png"]  # s09 is not enrolled
    code, out, err = run(["identify", run_dir, gallery, *probes, "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    for item in result["results"]:
        assert (item["identity"] == "unknown") == (item["distance"] > result["tau"])
        assert item["identity"] in {"s00", "s01", "s02", "s03", "unknown"}
    code, out, _ = run(["identify", run_dir, gallery, *probes, "--tau", "0"], capsys)  # rejects everyone
    assert code == 0 and out.count("unknown") == 3 and "0 of 3 identified among 4 people" in out
    code, out, _ = run(["identify", run_dir, gallery, *probes, "--by", "mean", "--tau", "4"], capsys)
    assert code == 0 and "3 of 3 identified" in out and "mean embedding" in out
    meta = Gallery.load(gallery).meta
    assert meta["model"]["widths"] == [4, 8] and meta["preprocessing"]["image_size"] == 16


def test_identify_rejects_galleries_of_other_models_and_empty_ones(run_dir, gallery, faces, tmp_path, capsys):
    probe = faces / "s00" / "5.png"
    other = Gallery.load(gallery)
    other.meta = {**other.meta, "model": {**other.meta["model"], "widths": [8, 16]}}
    other.save(tmp_path / "other.npz")
    fails(["identify", run_dir, tmp_path / "other.npz", probe], capsys, "another architecture")
    other.meta = {**Gallery.load(gallery).meta, "weights_sha256": "0" * 64}
    other.save(tmp_path / "retrained.npz")
    fails(["identify", run_dir, tmp_path / "retrained.npz", probe], capsys, "other weights")
    np.savez(tmp_path / "empty.npz", embeddings=np.zeros((0, 8), np.float32), labels=np.zeros(0, np.int64),
             names=np.array([], dtype=str), paths=np.array([], dtype=str), meta=np.array("{}"), format=np.array(1))
    fails(["identify", run_dir, tmp_path / "empty.npz", probe], capsys, "empty gallery")
    fails(["identify", run_dir, tmp_path / "nowhere.npz", probe], capsys, "does not exist")
    (tmp_path / "no-people").mkdir()
    fails(["enroll", run_dir, tmp_path / "no-people", "-o", tmp_path / "g.npz"], capsys, "no image files")
    assert not (tmp_path / "g.npz").exists()


def test_cluster_reports_quality_against_the_folders_and_draws_the_clusters(run_dir, faces, tmp_path, capsys):
    figure = tmp_path / "clusters.png"
    code, out, err = run(["cluster", run_dir, faces, "--json", "--figure", figure], capsys)
    assert code == 0, err
    result = json.loads(out)
    report = result["report"]
    assert report["faces"] == PEOPLE * IMAGES and report["people"] == PEOPLE
    assert 0 <= report["precision"] <= 1 and 0 <= report["recall"] <= 1 and report["clusters"] >= 1
    assert len(result["clusters"]) == PEOPLE * IMAGES and figure.stat().st_size > 0
    code, out, _ = run(["cluster", run_dir, faces / "s03", "--method", "dbscan", "--eps", "4"], capsys)
    assert code == 0 and "6 faces -> 1 clusters" in out and "precision" not in out  # loose images: no labels


def test_classify_fits_three_classifiers(run_dir, olivetti, tmp_path, capsys):
    train = write_faces(tmp_path / "train", olivetti, range(5), slice(0, 6))
    test = write_faces(tmp_path / "test", olivetti, range(5), slice(6, 10))
    code, out, err = run(["classify", run_dir, "--train", train, "--test", test, "--k", "3", "--steps", "50",
                          "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert set(result["accuracy"]) == {"nearest centroid", "3-NN", "softmax"}
    assert all(0 <= a <= 1 for a in result["accuracy"].values()) and result["test_images"] == 20
    stranger = write_faces(tmp_path / "stranger", olivetti, [30], slice(0, 2))
    fails(["classify", run_dir, "--train", train, "--test", stranger], capsys, "no training images")


def test_embed_writes_embeddings_labels_and_paths(run_dir, faces, tmp_path, capsys):
    code, out, err = run(["embed", run_dir, faces, "-o", tmp_path / "e.npz", "--figure", tmp_path / "p.png"],
                         capsys)
    assert code == 0, err
    embeddings, files, signature = load_embeddings(tmp_path / "e.npz")
    assert embeddings.shape == (PEOPLE * IMAGES, 8)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    assert files.names == [f"s{p:02d}" for p in range(PEOPLE)] and files.paths[0].name == "0.png"
    assert np.array_equal(files.labels, np.repeat(np.arange(PEOPLE), IMAGES))
    assert signature["model"]["embedding_dim"] == 8 and (tmp_path / "p.png").stat().st_size > 0


def test_an_interrupted_embed_leaves_no_file(run_dir, faces, tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupt)
    code, _, err = run(["embed", run_dir, faces, "-o", tmp_path / "e.npz"], capsys)
    assert code == 130 and "nothing was half-written" in err
    assert not [p for p in tmp_path.iterdir() if "e.npz" in p.name]  # neither the file nor its temporary


def test_align_warps_faces_from_a_landmarks_csv(olivetti, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", olivetti, range(2), slice(0, 2))
    points = "24,26,40,26,32,36,26,46,38,46"  # roughly where Olivetti's eyes, nose and mouth are (64x64)
    rows = ["image,lx,ly,rx,ry,nx,ny,mlx,mly,mrx,mry"] + [f"faces/s{p:02d}/{k}.png,{points}" for p in range(2)
                                                           for k in range(2)]
    (tmp_path / "landmarks.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run(["align", tmp_path / "landmarks.csv", "-o", tmp_path / "aligned", "--size", "48"], capsys)
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path / "aligned").as_posix() for p in (tmp_path / "aligned").rglob("*.png"))
    assert written == ["faces/s00/0.png", "faces/s00/1.png", "faces/s01/0.png", "faces/s01/1.png"]
    assert np.asarray(Image.open(tmp_path / "aligned" / "faces/s00/0.png")).shape == (48, 48)
    assert faces.is_dir()
    fails(["align", tmp_path / "landmarks.csv", "-o", tmp_path / "aligned"], capsys, "already exists")


def test_align_errors(olivetti, tmp_path, capsys, monkeypatch):
    write_faces(tmp_path / "faces", olivetti, range(1), slice(0, 1))
    (tmp_path / "short.csv").write_text("faces/s00/0.png,24,26,40,26\n")
    fails(["align", tmp_path / "short.csv", "-o", tmp_path / "out"], capsys, "expected 11 columns")
    (tmp_path / "missing.csv").write_text("faces/s00/9.png,24,26,40,26,32,36,26,46,38,46\n")
    fails(["align", tmp_path / "missing.csv", "-o", tmp_path / "out"], capsys, "does not exist")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))  # nothing half-written
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError, as without OpenCV
    face_detector.cache_clear()
    try:
        fails(["align", "--detect", tmp_path / "faces", "-o", tmp_path / "out"], capsys, "needs OpenCV")
    finally:
        face_detector.cache_clear()


def test_validate_reports_open_set_identification_and_draws_figures(run_dir, tmp_path, capsys):
    code, out, err = run(["validate", run_dir, "--json", "--figures", tmp_path / "figures"], capsys)
    assert code == 0, err
    report = json.loads(out)  # --json prints JSON only, figures or not
    assert report["accuracy"] is not None and "baselines" in report  # the existing keys stay
    conditions = [p["condition"] for p in report["open_set"]]
    assert conditions[:2] == ["FAR<=0.01", "FAR<=0.1"] and conditions[2].startswith("tau=")
    assert all(0 <= p["dir"] <= 1 for p in report["open_set"])
    for name in ("projection.png", "hardest-pairs.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 0
    code, out, _ = run(["validate", run_dir], capsys)
    assert code == 0 and "open-set identification on the test people" in out


def test_demo_collapse_fast(olivetti_path, tmp_path, capsys):
    code, out, err = run(["demo", "collapse", "--fast", "--data", olivetti_path.parent, "--out", tmp_path], capsys)
    assert code == 0, err
    assert out.count("accuracy@tau") == 3
    summary = json.loads((tmp_path / "collapse.json").read_text())
    assert [v["variant"] for v in summary["variants"]] == ["alpha = 0", "alpha = 0.2", "alpha = 0, unnormalised"]
    assert summary["config"]["epochs"] == 3 and (tmp_path / "collapse.png").stat().st_size > 0


def test_compare_without_a_run_uses_the_bundled_model(run_dir, faces, capsys, monkeypatch):
    monkeypatch.setattr("tinyface.cli.face.pretrained_run", lambda: run_dir)  # stands in for tinyface/pretrained
    images = [faces / "s00" / "0.png", faces / "s01" / "0.png"]
    with_run = json.loads(run(["compare", run_dir, *images, "--json"], capsys)[1])
    code, out, err = run(["compare", *images, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["distances"] == with_run["distances"]
    for argv in (["enroll", faces, "-o", faces.parent / "g.npz"], ["cluster", faces], ["embed", faces, "-o",
                 faces.parent / "e.npz"]):
        assert run(argv, capsys)[0] == 0
    fails(["cluster", run_dir, faces, faces], capsys, "expected [RUN] FOLDER")


def test_flip_embeds_each_image_with_its_mirror_and_uses_the_flipped_tau(run_dir, faces, capsys):
    from tinyface.training.checkpoint import load_checkpoint

    images = [faces / "s00" / "0.png", faces / "s00" / "1.png", faces / "s01" / "0.png"]
    plain = json.loads(run(["compare", run_dir, *images, "--json"], capsys)[1])
    flipped = json.loads(run(["compare", run_dir, *images, "--json", "--flip"], capsys)[1])
    assert flipped["tau"] == load_checkpoint(run_dir).tau_for(flip=True)
    assert not np.allclose(plain["distances"], flipped["distances"])
    assert all(p["confidence"] is not None for p in flipped["pairs"])  # from the pairs kept in the checkpoint


def test_a_runs_face_crop_is_a_fraction_of_each_photo_and_aligned_skips_it(run_dir, tmp_path):
    from tinyface.face.embedder import Embedder
    from tinyface.training.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run_dir)
    checkpoint.meta["task"] = {**checkpoint.meta["task"], "face_crop": 0.5}
    for side in (40, 400):  # the same framing at two resolutions: the same crop
        image = Image.new("L", (side, side), 0)
        image.paste(255, (side // 4, side // 4, 3 * side // 4, 3 * side // 4))
        image.save(tmp_path / f"{side}.png")
    cropped = Embedder(checkpoint).read([tmp_path / "40.png", tmp_path / "400.png"])
    assert cropped.min() == 255  # only the white middle half is kept, at either size
    assert Embedder(checkpoint, aligned=True).read([tmp_path / "400.png"]).mean() < 200
