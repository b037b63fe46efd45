"""The `tinyface` command: train and validate on a folder, Olivetti and LFW-shaped data; clear errors, no
tracebacks."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run
from PIL import Image

import tinyface
from tinyface.cli import main
from tinyface.training.checkpoint import load_checkpoint

FAST = ["--steps", "2", "--steps-per-epoch", "1", "--image-size", "16", "--embedding-dim", "8", "-P", "3", "-K", "2",
        "--no-progress"]


def write_people(root: Path, people: int, images: int, size: int = 24, seed: int = 0, suffix: str = ".png",
                 numbered: bool = False) -> list[str]:
    """A folder of people, each a random pattern seen with noise: root/<name>/<image>."""
    rng = np.random.default_rng(seed)
    names = [f"Person_{k:02d}" for k in range(people)]
    for name in names:
        base = rng.random((size // 4, size // 4, 3)).repeat(4, 0).repeat(4, 1)
        (root / name).mkdir(parents=True)
        for n in range(1, images + 1):
            pixels = np.clip(base + 0.1 * rng.standard_normal(base.shape), 0, 1)
            file = f"{name}_{n:04d}{suffix}" if numbered else f"{n}{suffix}"
            Image.fromarray((pixels * 255).astype(np.uint8)).save(root / name / file)
    return names


@pytest.fixture
def folder(tmp_path, cache):
    write_people(tmp_path / "faces", people=12, images=4)
    return tmp_path / "faces"


@pytest.fixture
def lfw(tmp_path, cache):
    """An LFW-shaped folder: 40 people (4 per View 2 fold) with 4 images each, and the protocol files; every fold
    (and View 1's test set) has 10 matched and 10 mismatched pairs."""
    root = tmp_path / "lfw"
    names = write_people(root / "lfw-deepfunneled", people=40, images=4, size=32, suffix=".jpg", numbered=True)

    def pairs(people):
        matched = [f"{people[k % len(people)]}\t{a}\t{b}\n" for k, (a, b) in
                   enumerate([(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)] * 2)][:10]
        mismatched = [f"{people[k % len(people)]}\t{k % 4 + 1}\t{people[(k + 1) % len(people)]}\t{k // 4 + 1}\n"
                      for k in range(10)]
        return "".join(matched + mismatched)

    folds = [names[4 * k : 4 * k + 4] for k in range(10)]
    (root / "people.txt").write_text("10\n" + "".join("4\n" + "".join(f"{n}\t4\n" for n in f) for f in folds))
    (root / "pairs.txt").write_text("10\t10\n" + "".join(pairs(f) for f in folds))
    (root / "peopleDevTrain.txt").write_text("28\n" + "".join(f"{n}\t4\n" for n in names[:28]))
    (root / "pairsDevTest.txt").write_text("10\n" + pairs(names[28:]))
    return root


def test_version_of_the_installed_command():
    command = shutil.which("tinyface", path=str(Path(sys.executable).parent)) or shutil.which("tinyface")
    assert command, "the tinyface console script is not installed (pip install -e .)"
    done = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"tinyface {tinyface.__version__}"


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and tinyface.__version__ in capsys.readouterr().out
    code, out, _ = run([], capsys)
    assert code == 2 and "train" in out and "validate" in out


def test_train_and_validate_a_folder(folder, tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, err = run(["train", "--dataset", "folder", "--data", folder, "--out", out_dir, *FAST], capsys)
    assert code == 0, err
    assert "epoch   2/2" in out and "tinyface" in out and "eigenfaces" in out
    for name in ("run.json", "metrics.json", "loss.png", "distances.png", "roc.png"):
        assert (out_dir / name).is_file(), name
    record = json.loads((out_dir / "run.json").read_text())
    assert record["task"]["dataset"] == "folder" and len(record["task"]["test_people"]) == 3

    code, out, _ = run(["validate", out_dir, "--json"], capsys)
    assert code == 0
    report = json.loads(out)
    for key in ("accuracy", "accuracy_std", "auc", "eer", "val_at_far", "far", "one_shot_rank1"):
        assert key in report and key in report["baselines"]["pixels"] and key in report["baselines"]["eigenfaces"]
    saved = json.loads((out_dir / "metrics.json").read_text())
    assert report["accuracy"] == saved["model"]["accuracy"]  # validate measures what train measured

    code, out, _ = run(["validate", out_dir], capsys)
    assert code == 0 and "accuracy" in out and "pixels" in out


def test_resume_continues_and_a_used_run_folder_is_not_overwritten(folder, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run(["train", "--dataset", "folder", "--data", folder, "--out", out_dir, *FAST], capsys)[0] == 0
    code, _, err = run(["train", "--dataset", "folder", "--data", folder, "--out", out_dir, *FAST], capsys)
    assert code == 2 and "--resume" in err
    steps = json.loads((out_dir / "run.json").read_text())["step"]
    code, out, err = run(["train", "--resume", "--out", out_dir, "--no-progress"], capsys)
    assert code == 0, err  # without --steps, a resumed run keeps its own length
    assert json.loads((out_dir / "run.json").read_text())["step"] == steps
    code, out, err = run(["train", "--resume", "--out", out_dir, "--steps", str(steps + 1), "--no-progress"], capsys)
    assert code == 0, err
    assert "resuming" in out and json.loads((out_dir / "run.json").read_text())["step"] == steps + 1


def test_train_on_olivetti_for_a_few_steps(olivetti_path, tmp_path, capsys):
    out_dir = tmp_path / "olivetti"
    code, out, err = run(["train", "--data", olivetti_path.parent, "--out", out_dir, "--steps", "2", "--init", "none",
                          "--model", "reference", "--steps-per-epoch", "2", "--image-size", "32", "--no-progress"],
                         capsys)
    assert code == 0, err
    assert "training on 25 people" in out and "testing on 10" in out and "900 test pairs" in out
    assert json.loads((out_dir / "metrics.json").read_text())["test_pairs"] == 900


def test_olivetti_training_starts_from_the_bundled_model_by_default(olivetti_path, tmp_path, capsys):
    from tinyface.pretrained import pretrained_run

    out_dir = tmp_path / "olivetti"
    code, out, err = run(["train", "--data", olivetti_path.parent, "--out", out_dir, "--steps", "1",
                          "--steps-per-epoch", "1", "--no-progress", "--no-figures"], capsys)
    assert code == 0, err
    run_meta, bundled = load_checkpoint(out_dir).meta, load_checkpoint(pretrained_run()).meta
    assert run_meta["config"]["init"] == "pretrained" and run_meta["model"] == bundled["model"]
    fails = run(["train", "--data", olivetti_path.parent, "--out", tmp_path / "x", "--image-size", "32"], capsys)
    assert fails[0] == 2 and "cannot start from pretrained" in fails[2]


def test_lfw_view1_and_view2(lfw, tmp_path, capsys):
    code, out, err = run(["train", "--dataset", "lfw-view1", "--data", lfw, "--out", tmp_path / "v1", *FAST,
                          "--no-figures"], capsys)
    assert code == 0, err
    assert "training on 26 people" in out and "20 test pairs" in out  # 28 minus 2 validation people
    assert (tmp_path / "v1" / "metrics.json").is_file() and not list((tmp_path / "v1").glob("*.png"))

    view2 = ["train", "--dataset", "lfw-view2", "--data", lfw, "--out", tmp_path / "v2", "--steps", "1",
             "--steps-per-epoch", "1", "--image-size", "16", "--embedding-dim", "8", "-P", "3", "-K", "2",
             "--no-progress", "--no-figures"]
    code, out, err = run(view2, capsys)
    assert code == 0, err
    assert "10 folds" in out and "fold 9" in out
    folds = sorted(p.name for p in (tmp_path / "v2").iterdir() if p.is_dir())
    assert folds == [f"fold-{k}" for k in range(10)]
    summary = json.loads((tmp_path / "v2" / "metrics.json").read_text())
    fold_reports = [json.loads((tmp_path / "v2" / f / "metrics.json").read_text()) for f in folds]
    assert all(r["test_pairs"] == 20 for r in fold_reports)
    accuracies = [r["model"]["accuracy"] for r in fold_reports]
    assert summary["model"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["model"]["accuracy_std"] == pytest.approx(np.std(accuracies))

    code, _, err = run(["validate", tmp_path / "v1", "--dataset", "lfw-view2", "--data", lfw, "--json"], capsys)
    assert code == 2 and "trained on" in err  # View 1's training people are among View 2's test people

    code, out, _ = run([*view2, "--resume"], capsys)  # everything done: nothing is trained again
    assert code == 0 and out.count("done earlier") == 10
    (tmp_path / "v2" / "fold-9" / "metrics.json").unlink()  # as if stopped in the last fold
    code, out, err = run(["train", "--resume", "--dataset", "lfw-view2", "--out", tmp_path / "v2", "--no-progress",
                          "--no-figures"], capsys)  # the command printed after Ctrl-C: the saved setup is used
    assert code == 0, err
    assert out.count("done earlier") == 9 and load_checkpoint(tmp_path / "v2" / "fold-9").meta["config"] == \
        load_checkpoint(tmp_path / "v2" / "fold-0").meta["config"]
    code, _, err = run(["train", "--resume", "--dataset", "lfw-view2", "--out", tmp_path / "v2", "--lr", "0.5"],
                       capsys)
    assert code == 2 and "--lr 0.5" in err
    code, out, _ = run(["validate", tmp_path / "v2", "--json"], capsys)
    assert code == 0 and json.loads(out)["accuracy"] == pytest.approx(summary["model"]["accuracy"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "{tmp}/nowhere"], "does not exist"),
        (["train", "--dataset", "folder"], "needs --data"),
        (["train", "--dataset", "folder", "--data", "{tmp}/nowhere"], "is not a folder"),
        (["train", "--dataset", "folder", "--data", "{tmp}/singles"], "two or more images"),
        (["train", "--dataset", "lfw-view1", "--data", "{tmp}/singles"], "does not exist"),
        (["train", "--resume", "--out", "{tmp}/empty"], "nothing to resume"),
        (["validate", "{tmp}/empty"], "no checkpoint"),
        (["validate", "{tmp}/nowhere"], "not a folder"),
    ],
)
def test_user_errors_are_one_line_not_a_traceback(argv, message, tmp_path, capsys, cache):
    write_people(tmp_path / "singles", people=5, images=1)
    (tmp_path / "empty").mkdir()
    code, out, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2
    assert "tinyface: error:" in err and message in err and "Traceback" not in err


def test_lfw_without_a_path_says_where_to_point(monkeypatch, capsys):
    monkeypatch.delenv("TINYFACE_DATA", raising=False)
    code, _, err = run(["train", "--dataset", "lfw-view1"], capsys)
    assert code == 2 and "--data" in err


def test_a_corrupt_checkpoint_is_reported_and_debug_shows_the_traceback(folder, tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert run(["train", "--dataset", "folder", "--data", folder, "--out", out_dir, *FAST], capsys)[0] == 0
    weights = next(out_dir.glob("checkpoint-*.npz"))
    weights.write_bytes(weights.read_bytes()[:-100])
    code, _, err = run(["validate", out_dir], capsys)
    assert code == 2 and "corrupt" in err
    with pytest.raises(ValueError, match="corrupt"):
        main(["--debug", "validate", str(out_dir)])
