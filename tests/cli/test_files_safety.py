"""Issue 11, users' own files: `tinyface` never replaces or corrupts them without a word. train refuses a folder
of other files and holds a lock on its run folder; outputs are not replaced without --force (galleries can be
appended to) nor written into a run folder; replaced files keep their mode, templates are private; align refuses
colliding output names; --resume refuses the flags it cannot honour."""

import os
import stat
import subprocess
import sys

import numpy as np
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


# -- files from strangers: a run folder, a gallery, an embeddings file, checked before anything is allocated ------
def tampered_run(run_dir, tmp_path, record=None, text=None, arrays=None):
    """A copy of run_dir whose run.json is changed by `record(meta)` (or replaced by `text`), and whose weights are
    changed by `arrays(dict)` (the sha256 updated to match, as anyone handing over a folder can do)."""
    import hashlib
    import json
    import shutil

    copy = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(run_dir, copy)
    meta = json.loads((copy / "run.json").read_text())
    if arrays is not None:
        weights = copy / meta["weights"]
        with np.load(weights) as stored:
            state = {key: stored[key] for key in stored.files}
        arrays(state)
        np.savez(weights, **state)
        meta["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    if record is not None:
        record(meta)
    (copy / "run.json").write_text(text if text is not None else json.dumps(meta))
    return copy


@pytest.mark.parametrize("change, message", [
    (lambda m: m["model"].update(widths=[10**7, 10**7]), "parameters"),
    (lambda m: m["model"].update(widths="wide"), "model.widths"),
    (lambda m: m["preprocessing"].update(image_size=10**6), "preprocessing.image_size"),
    (lambda m: m["preprocessing"].update(channels=3), "preprocessing.channels"),
    (lambda m: m["task"].update(source_crop=0, face_crop=None), "task.source_crop"),
    (lambda m: m["task"].update(face_crop=-1), "task.face_crop"),
    (lambda m: m.update(task="lfw"), "task is \"lfw\""),
    (lambda m: m.update(tau=[0.5, 1.0]), "tau is [0.5, 1.0]"),
    (lambda m: m.update(tau_flip=-1), "tau_flip"),
    (lambda m: m["task"].update(test_people="Person_01"), "task.test_people"),
    (lambda m: m.update(weights="../../etc/passwd"), "weights"),
])
def test_a_run_record_out_of_range_is_refused_before_anything_is_built(run_dir, faces, tmp_path, capsys, change,
                                                                        message):
    tampered = tampered_run(run_dir, tmp_path, change)
    fails(["embed", tampered, faces, "-o", tmp_path / "e.npz"], capsys, message)
    assert not (tmp_path / "e.npz").exists()


def test_nan_in_a_run_folder_is_refused_where_it_is_read(run_dir, faces, tmp_path, capsys):
    text = (run_dir / "run.json").read_text()
    nan_tau = tampered_run(run_dir, tmp_path, text=text.replace('"tau": ', '"tau": NaN, "was": ', 1))
    fails(["cluster", nan_tau, faces, "--json"], capsys, "NaN")

    def nan_weight(state):
        state["model/embedding.weight"][0, 0] = np.nan

    def negative_variance(state):
        key = next(k for k in state if k.endswith("running_var"))
        state[key][0] = -1.0

    for change, message in ((nan_weight, "NaN or infinite"), (negative_variance, "negative variances")):
        fails(["embed", tampered_run(run_dir, tmp_path, arrays=change), faces, "-o", tmp_path / "e.npz"], capsys,
              message)
        assert not (tmp_path / "e.npz").exists()


def npz_with(path, **arrays):
    np.savez(path, **arrays)
    return path


def huge_member(path, arrays, name, shape):
    """The .npz of `arrays` with member `name` replaced by one that declares `shape` float32 values in a few bytes."""
    import io
    import zipfile

    npz_with(path, **{key: value for key, value in arrays.items() if key != name})
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(f"{name}.npy", header.getvalue() + b"\0" * 16)
    return path


def test_crafted_galleries_and_embeddings_files_are_refused_before_they_are_read(run_dir, faces, tmp_path, capsys,
                                                                                  monkeypatch):
    gallery = tmp_path / "g.npz"
    assert run(["enroll", run_dir, faces, "-o", gallery], capsys)[0] == 0
    with np.load(gallery) as stored:
        good = {key: stored[key] for key in stored.files}
    crafted = {"format": {"format": np.array([1, 1])}, "meta": {"meta": np.array("[1, 2]")},
               "names": {"names": np.array("Person_00"), "labels": np.zeros(len(good["labels"]), int)},
               "meta NaN": {"meta": np.array('{"model": NaN}')}}
    for what, change in crafted.items():
        path = npz_with(tmp_path / f"{what}.npz", **{**good, **change})
        fails(["identify", run_dir, path, faces / "Person_00" / "1.png"], capsys, "gallery")
    huge = huge_member(tmp_path / "huge.npz", good, "embeddings", (10**12, 8))
    fails(["identify", run_dir, huge, faces / "Person_00" / "1.png"], capsys, "declares shape")

    # a member that deflates to far more than it weighs is refused from the zip directory's sizes
    np.savez_compressed(tmp_path / "bomb.npz", **{**good, "embeddings": np.zeros((2**16, 8), np.float32)})
    assert (tmp_path / "bomb.npz").stat().st_size < 2**16
    from tinyface.data import untrusted

    monkeypatch.setattr(untrusted, "MAX_NPZ_BYTES", 2**18)
    fails(["identify", run_dir, tmp_path / "bomb.npz", faces / "Person_00" / "1.png"], capsys, "declares")
    monkeypatch.undo()

    from tinyface.face.embedder import load_embeddings

    embeddings = tmp_path / "e.npz"
    assert run(["embed", run_dir, faces, "-o", embeddings], capsys)[0] == 0
    with np.load(embeddings) as stored:
        good = {key: stored[key] for key in stored.files}
    for change, message in (({"embeddings": np.full_like(good["embeddings"], np.nan)}, "NaN"),
                            ({"names": np.array("Person_00")}, "names"), ({"meta": np.array("[]")}, "object"),
                            ({"labels": good["labels"] + 100}, "inconsistent")):
        with pytest.raises(ValueError, match=message):
            load_embeddings(npz_with(tmp_path / "bad-e.npz", **{**good, **change}))
    with pytest.raises(ValueError, match="declares shape"):
        load_embeddings(huge_member(tmp_path / "huge-e.npz", good, "embeddings", (10**12, 8)))


# -- what the protocol needs is checked before training ------------------------------------------------------------
def test_a_folder_too_small_for_ten_folds_is_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYFACE_CACHE", str(tmp_path / "cache"))
    write_people(tmp_path / "six", people=6, images=3)
    err = fails([*train_args(tmp_path / "six", tmp_path / "run"), "--validation-people", "0"], capsys,
                "10-fold accuracy needs at least 10")
    assert "test people give 6 matched" in err and not (tmp_path / "run").exists()  # refused before training
    write_people(tmp_path / "eight", people=8, images=3)
    err = fails([*train_args(tmp_path / "eight", tmp_path / "run"), "--test-fraction", "0.5",
                 "--validation-people", "2", "-P", "2"], capsys, "the 2 validation people give 6 matched")
    assert "--validation-people" in err and not (tmp_path / "run").exists()


def test_a_test_fraction_out_of_range_is_refused_not_clamped(folder, tmp_path, capsys):
    for fraction, message in (("0.01", "tests 0 of the 12 people"), ("0.95", "tests 11 of the 12 people"),
                              ("1.5", "between 0 and 1")):
        fails([*train_args(folder, tmp_path / "run"), "--test-fraction", fraction], capsys, message)
    fails(["train", "--test-fraction", "0.3", "--out", tmp_path / "run"], capsys, "for --dataset folder")
    assert not (tmp_path / "run").exists()


def test_nan_and_negative_flags_of_the_face_tools_are_refused(run_dir, faces, tmp_path, capsys):
    for argv, message in ((["cluster", run_dir, faces, "--eps", "nan"], "--eps"),
                          (["cluster", run_dir, faces, "--eps=-1"], "--eps"),
                          (["cluster", run_dir, faces, "--method", "dbscan", "--min-samples", "0"], "--min-samples"),
                          (["align", tmp_path / "faces.csv", "-o", tmp_path / "out", "--margin", "nan"], "--margin")):
        fails(argv, capsys, message)


# -- names are text: in figures, and on the terminal ----------------------------------------------------------------
@pytest.fixture
def odd_names(tmp_path):
    """Person folders named like markup and like terminal commands."""
    names = ["Rich $mith", "_underscore", "Cash $ and $ Carry", "Red\x1b[31m\x1b]0;owned\x07"]
    root = tmp_path / "odd"
    write_people(root, people=len(names), images=3)
    for k, name in enumerate(names):
        (root / f"Person_{k:02d}").rename(root / name)
    (root / names[0] / "1.png").rename(root / names[0] / "$1.png")
    return root, names


def test_names_in_figures_are_text_not_markup(run_dir, odd_names, tmp_path, capsys, monkeypatch):
    from tinyface.training import figures

    root, names = odd_names
    code, out, err = run(["cluster", run_dir, root, "--figure", tmp_path / "c.png"], capsys)
    assert code == 0 and "clusters" in out and (tmp_path / "c.png").is_file(), err
    drawn = []
    real_save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path: drawn.append(
        [t.get_text() for t in fig.axes[0].get_legend().get_texts()]) or real_save(fig, path))
    assert run(["embed", run_dir, root, "-o", tmp_path / "e.npz", "--figure", tmp_path / "e.png"], capsys)[0] == 0
    from tinyface.cli.terminal import printable

    assert sorted(drawn[0]) == sorted(map(printable, names))  # "_underscore" included, "$" kept as written


def test_control_characters_in_names_are_escaped_on_the_terminal(run_dir, odd_names, tmp_path, capsys):
    root, names = odd_names
    for argv in (["cluster", run_dir, root], ["enroll", run_dir, root, "-o", tmp_path / "g.npz"],
                 ["identify", run_dir, tmp_path / "g.npz", *sorted((root / names[3]).iterdir())]):
        code, out, err = run(argv, capsys)
        assert code == 0, err
        assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[31m\\x1b]0;owned\\x07" in out  # identify names the person, escaped
    err = fails(["compare", run_dir, root / "x\x1b[2Jy.png", root / names[1] / "1.png"], capsys, "x\\x1b[2Jy.png")
    assert "\x1b" not in err


# -- downloads: a cut or oversized transfer is a DownloadError, not a traceback ------------------------------------
class FakeResponse:
    def __init__(self, read):
        self.read = read

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_an_olivetti_download_cut_short_or_too_long_is_one_line(tmp_path, capsys, monkeypatch):
    import http.client
    import urllib.request

    monkeypatch.delenv("TINYFACE_DATA", raising=False)
    monkeypatch.setenv("TINYFACE_CACHE", str(tmp_path / "cache"))

    def cut_short(amount=None):
        raise http.client.IncompleteRead(b"MATLAB 5.0", 1_432_511)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: FakeResponse(cut_short))
    fails(["train", "--out", tmp_path / "run"], capsys, "could not download olivettifaces.mat")
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout: FakeResponse(lambda amount=None: b"\0" * (amount or 64 * 2**20)))
    fails(["train", "--out", tmp_path / "run"], capsys, "sent more than")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache" / "olivettifaces.mat").exists()


# -- Ctrl-C -------------------------------------------------------------------------------------------------------
def test_ctrl_c_in_training_says_how_to_go_on_with_the_real_folder(folder, tmp_path, capsys, monkeypatch):
    from tinyface.training import runs

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "my run"
    monkeypatch.setattr(runs, "train", interrupt)  # before the first checkpoint
    code, _, err = run(train_args(folder, out), capsys)
    assert code == 130 and "nothing to resume" in err and "--resume" not in err and not out.exists(), err
    monkeypatch.undo()
    monkeypatch.setattr(runs, "measure_run", interrupt)  # after the training, during the measurement
    code, _, err = run(train_args(folder, out), capsys)
    assert code == 130 and f"tinyface train --resume --out '{out}'" in err, err


# -- the decoded-image cache -----------------------------------------------------------------------------------------
def test_cache_clear_removes_the_decoded_images_and_nothing_else(folder, tmp_path, capsys, monkeypatch):
    from tinyface.data import load_image_folder

    monkeypatch.setenv("TINYFACE_CACHE", str(tmp_path / "cache"))
    load_image_folder(folder, size=8)
    images = tmp_path / "cache" / "images"
    assert len(list(images.iterdir())) == 1
    (images / "notes.txt").write_text("mine")
    code, out, _ = run(["cache"], capsys)
    assert code == 0 and "1 file(s) of decoded images" in out
    code, out, _ = run(["cache", "clear"], capsys)
    assert code == 0 and "removed 1 file(s)" in out
    assert [p.name for p in images.iterdir()] == ["notes.txt"]


def test_enroll_and_embed_say_which_paths_they_store(capsys):
    for command in ("enroll", "embed"):
        with pytest.raises(SystemExit):
            run([command, "--help"], capsys)
        assert "absolute path" in " ".join(capsys.readouterr().out.split())


# -- align and the lock ----------------------------------------------------------------------------------------------
def test_align_keeps_the_person_folder_of_a_linked_photo(tmp_path, capsys):
    (tmp_path / "elsewhere").mkdir()
    Image.new("L", (64, 64), 128).save(tmp_path / "elsewhere" / "photo.png")
    (tmp_path / "people" / "alice").mkdir(parents=True)
    (tmp_path / "people" / "alice" / "1.png").symlink_to(tmp_path / "elsewhere" / "photo.png")
    (tmp_path / "people" / "faces.csv").write_text("alice/1.png,24,26,40,26,32,36,26,46,38,46\n")
    assert run(["align", tmp_path / "people" / "faces.csv", "-o", tmp_path / "out"], capsys)[0] == 0
    assert [str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")] == ["alice/1.png"]


def test_the_lock_of_a_training_that_has_not_written_its_pid_yet_holds(tmp_path):
    """The instant between creating the lock file and writing the pid into it: another process must not take it."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from tinyface.training.lock import run_lock\n"
        f"with run_lock({str(tmp_path)!r}):\n    print('held', flush=True); sys.stdin.readline()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (tmp_path / LOCK_FILE).write_text("")  # as it reads before its owner wrote the pid
        with pytest.raises(OSError, match="being trained by another process"), run_lock(tmp_path):
            pass
    finally:
        holder.communicate("\n", timeout=30)
    with run_lock(tmp_path):  # free again once its owner is done
        pass


def test_center_loss_flags_out_of_range_or_without_softmax_are_refused(folder, tmp_path, capsys):
    for flags, message in ((["--center-loss", "0.1"], "only with loss='softmax'"),
                           (["--loss", "softmax", "--center-loss", "nan"], "center_loss must be a number >= 0"),
                           (["--loss", "softmax", "--center-loss", "0.1", "--center-rate", "0"],
                            "center_rate must be in")):
        fails([*train_args(folder, tmp_path / "run"), *flags], capsys, message)
    assert not any((tmp_path / "run").glob("checkpoint-*.npz"))


def test_turn_and_zoom_flags_out_of_range_are_refused(folder, tmp_path, capsys):
    for flags in (["--rotation", "-5"], ["--rotation", "nan"], ["--zoom", "2"]):
        fails([*train_args(folder, tmp_path / "run"), *flags], capsys, "rotation must be in")
    assert not any((tmp_path / "run").glob("checkpoint-*.npz"))
