"""Issue 11, users' own files: `tinyface` never replaces or corrupts them without a word. train refuses a folder
of other files and holds a lock on its run folder; outputs are not replaced without --force (galleries can be
appended to) nor written into a run folder; replaced files keep their mode, templates are private; align refuses
colliding output names; --resume refuses the flags it cannot honour."""

import os
import stat
import subprocess
import sys

import pytest
from cli_helpers import fails, run
from PIL import Image
from test_cli import FAST, write_people

from tinyface.face.gallery import Gallery
from tinyface.files import atomic_write
from tinyface.training.lock import LOCK_FILE, run_lock
from tinyface.training.runs import train_run
from tinyface.training.split import load_split
from tinyface.training.train import TrainConfig


@pytest.fixture
def folder(tmp_path):
    write_people(tmp_path / "faces", people=12, images=4)
    return tmp_path / "faces"


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    write_people(root, people=6, images=4)
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, faces):
    """A tiny model trained for 2 steps on the folder (16x16 grey, widths (4, 8), D = 8)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYFACE_CACHE", str(tmp_path_factory.mktemp("cache")))
        split = load_split("folder", faces, image_size=16, grayscale=True, validation_people=0)
        config = TrainConfig(steps=2, steps_per_epoch=2, people_per_batch=3, images_per_person=2, widths=(4, 8),
                             embedding_dim=8, image_size=16)
        out = tmp_path_factory.mktemp("run")
        train_run(split, config, out, progress=False, figures=False, log=lambda *_: None)
    return out


def train_args(folder, out):
    return ["train", "--dataset", "folder", "--data", folder, "--out", out, *FAST]


def test_train_refuses_a_folder_of_other_files_and_an_empty_out(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default run folder would go
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "metrics.json").write_text("my own notes")
    fails(train_args(folder, mine), capsys, "not a tinyface run")
    assert [p.name for p in mine.iterdir()] == ["metrics.json"]
    assert (mine / "metrics.json").read_text() == "my own notes"
    fails(train_args(folder, ""), capsys, "--out is empty")
    assert not (tmp_path / "runs").exists()


def test_replaced_files_keep_their_mode_and_templates_are_private(run_dir, faces, tmp_path, capsys):
    shared = tmp_path / "shared.txt"
    shared.write_text("old")
    shared.chmod(0o640)
    atomic_write(shared, lambda file: file.write(b"new"))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640 and shared.read_text() == "new"
    assert stat.S_IMODE(atomic_write(tmp_path / "new.bin", lambda f: f.write(b""), mode=0o600).stat().st_mode) == 0o600
    assert run(["enroll", run_dir, faces, "-o", tmp_path / "g.npz"], capsys)[0] == 0
    assert run(["embed", run_dir, faces, "-o", tmp_path / "e.npz"], capsys)[0] == 0
    for name in ("g.npz", "e.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_outputs_are_not_replaced_without_force_nor_written_into_a_run(run_dir, faces, tmp_path, capsys):
    gallery = tmp_path / "g.npz"
    assert run(["enroll", run_dir, faces, "-o", gallery], capsys)[0] == 0
    before = gallery.read_bytes()
    fails(["enroll", run_dir, faces, "-o", gallery], capsys, "--force")
    assert gallery.read_bytes() == before
    code, out, err = run(["enroll", run_dir, faces, "-o", gallery, "--append"], capsys)
    assert code == 0 and "now holds 6 people (48 faces)" in out, err
    assert len(Gallery.load(gallery)) == 48
    assert run(["enroll", run_dir, faces, "-o", gallery, "--force"], capsys)[0] == 0
    assert len(Gallery.load(gallery)) == 24

    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"keep me")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "projection.png").write_bytes(b"keep me")
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "collapse.json").write_bytes(b"keep me")
    for argv in (["embed", run_dir, faces, "-o", existing],
                 ["embed", run_dir, faces, "-o", tmp_path / "e.npz", "--figure", existing],
                 ["cluster", run_dir, faces, "--figure", existing],
                 ["validate", run_dir, "--figures", tmp_path / "figures"],
                 ["demo", "collapse", "--fast", "--out", tmp_path / "demo"]):
        fails(argv, capsys, "already exists; pass --force")
    assert existing.read_bytes() == (tmp_path / "figures" / "projection.png").read_bytes() == b"keep me"
    assert (tmp_path / "demo" / "collapse.json").read_bytes() == b"keep me" and not (tmp_path / "e.npz").exists()

    record = (run_dir / "run.json").read_bytes()
    fails(["enroll", run_dir, faces, "-o", run_dir / "run.json", "--force"], capsys, "inside the run folder")
    fails(["embed", run_dir, faces, "-o", run_dir / "e.npz"], capsys, "inside the run folder")
    fails(["cluster", run_dir, faces, "--figure", run_dir / "c.png"], capsys, "inside the run folder")
    assert (run_dir / "run.json").read_bytes() == record and not (run_dir / "e.npz").exists()


def test_the_run_folder_is_locked_while_training_and_a_stale_lock_is_taken_over(folder, tmp_path, capsys):
    with run_lock(tmp_path / "held") as lock:
        assert lock.read_text().strip() == str(os.getpid())
        fails(train_args(folder, tmp_path / "held"), capsys, LOCK_FILE)
    assert not (tmp_path / "held").exists()  # the lock made the folder, and took it away again

    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / LOCK_FILE).write_text(f"{dead.pid}\n")
    code, _, err = run(train_args(folder, tmp_path / "stale"), capsys)
    assert code == 0, err
    assert (tmp_path / "stale" / "run.json").is_file() and not (tmp_path / "stale" / LOCK_FILE).exists()


def test_align_refuses_colliding_output_names(tmp_path, capsys):
    for name in ("p/1.png", "p/1.jpg", "a/2.png", "b/2.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (64, 64), 128).save(tmp_path / name)
    points = "24,26,40,26,32,36,26,46,38,46"
    (tmp_path / "same-stem.csv").write_text(f"p/1.png,{points}\np/1.jpg,{points}\n")
    err = fails(["align", tmp_path / "same-stem.csv", "-o", tmp_path / "out"], capsys, "collide")
    assert "1.png and " in err and "1.jpg" in err
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "outside.csv").write_text(f"../a/2.png,{points}\n../b/2.png,{points}\n")
    err = fails(["align", tmp_path / "csv" / "outside.csv", "-o", tmp_path / "out"], capsys, "collide")
    assert "a/2.png" in err and "b/2.png" in err and not (tmp_path / "out").exists()


def test_resume_refuses_the_flags_it_cannot_change(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(train_args(folder, out), capsys)[0] == 0
    resume = ["train", "--resume", "--out", out, "--no-progress"]
    for flags, message in ((["--lr", "0.5"], "--lr 0.5 (the run has 0.001)"), (["--loss", "batch-hard"], "--loss"),
                           (["--dataset", "olivetti"], "--dataset olivetti (the run has folder)"),
                           (["--margin", "0.5"], "--margin"), (["-P", "4"], "--people-per-batch 4"),
                           (["-K", "3"], "--images-per-person"), (["--steps", "1"], "--steps 1")):
        fails([*resume, *flags], capsys, message)
    code, _, err = run([*resume, "-P", "3", "--dataset", "folder", "--margin", "0.2"], capsys)  # the same: fine
    assert code == 0, err
