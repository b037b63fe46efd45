"""Harmonic embeddings at the command line: `train --compatible-with`, `validate NEW --against OLD`, and an old
gallery queried by a new run that declares compatibility with exactly its weights (any other pairing refused)."""

import json

import numpy as np
import pytest
from cli_helpers import fails, run
from PIL import Image

from tinyface.training.checkpoint import load_checkpoint

TINY = ["--init", "none", "--model", "reference", "--image-size", "16", "--embedding-dim", "8", "-P", "4", "-K", "3",
        "--steps", "2", "--steps-per-epoch", "2", "--no-progress", "--no-figures"]


@pytest.fixture(scope="module")
def versions(olivetti_path, tmp_path_factory):
    """Olivetti runs: v1, v2 trained --compatible-with v1, and a control v2 trained without it."""
    root = tmp_path_factory.mktemp("versions")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYFACE_CACHE", str(root / "cache"))
        for name, flags in {"v1": [], "v2": ["--seed", "1", "--compatible-with", root / "v1"],
                            "control": ["--seed", "1"]}.items():
            assert run_quietly(["train", "--data", olivetti_path.parent, "--out", root / name, *TINY, *flags]) == 0
    return root


def run_quietly(argv):
    from tinyface.cli import main

    return main([str(a) for a in argv])


def test_train_compatible_with_records_the_old_run_and_validate_against_reports_three_rows(versions, tmp_path,
                                                                                           capsys):
    declared = load_checkpoint(versions / "v2").meta["compatible_with"]
    assert declared["weights_sha256"] == load_checkpoint(versions / "v1").meta["sha256"]
    assert "compatible_with" not in load_checkpoint(versions / "control").meta

    code, out, err = run(["validate", versions / "v2", "--against", versions / "v1", "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    for row in ("old", "new", "mixed"):
        assert {"accuracy", "auc", "eer", "val_at_far"} <= set(report[row])
        assert 0 <= report[row]["accuracy"] <= 1
    assert report["declared"] and report["test_pairs"] == 900
    old, new, mixed = (report[row]["accuracy"] for row in ("old", "new", "mixed"))
    assert report["gain"] == pytest.approx((mixed - old) / (new - old))
    saved = json.loads((versions / "v1" / "metrics.json").read_text())
    assert report["old"]["accuracy"] == saved["model"]["accuracy"]  # old/old is what `validate v1` measures

    code, out, err = run(["validate", versions / "control", "--against", versions / "v1", "--figures", tmp_path],
                         capsys)
    assert code == 0, err
    assert "old/old" in out and "new/new" in out and "mixed" in out and "update gain G" in out
    assert "does not declare compatibility" in out and (tmp_path / "compatibility-roc.png").stat().st_size > 0
    fails(["validate", versions / "control", "--against", versions / "v1", "--figures", tmp_path], capsys,
          "already exists")


def test_the_embedding_dimension_must_match(versions, olivetti_path, tmp_path, capsys):
    argv = ["train", "--data", olivetti_path.parent, "--out", tmp_path / "v2", *TINY, "--compatible-with",
            versions / "v1", "--embedding-dim", "4"]
    fails(argv, capsys, "D=8, this run's D=4")
    fails(["train", "--data", olivetti_path.parent, "--out", tmp_path / "v3", *TINY, "--embedding-steps", "3"],
          capsys, "needs compatible_with")
    fails(["validate", versions / "v2", "--against", tmp_path / "nothing"], capsys, "not a folder")


def test_an_old_gallery_can_be_queried_by_a_declared_new_version_only(versions, olivetti, tmp_path, capsys):
    people = tmp_path / "people"
    for person in range(4):
        (people / f"s{person:02d}").mkdir(parents=True)
        for k, index in enumerate(np.flatnonzero(olivetti.labels == person)[:3]):
            Image.fromarray(olivetti.images[index, 0]).save(people / f"s{person:02d}" / f"{k}.png")
    gallery = tmp_path / "old_gallery.npz"
    assert run(["enroll", versions / "v1", people, "-o", gallery], capsys)[0] == 0
    probe = people / "s01" / "2.png"

    code, out, err = run(["identify", versions / "v2", gallery, probe, "--json"], capsys)
    assert code == 0, err
    tau = load_checkpoint(versions / "v2").meta["compatible_with"]["tau"]
    assert json.loads(out)["tau"] == tau  # the threshold chosen on mixed pairs
    assert run(["identify", versions / "v1", gallery, probe], capsys)[0] == 0  # its own gallery, as before
    fails(["identify", versions / "control", gallery, probe], capsys, "other weights")
    # the new version may query the old gallery, never add its own embeddings to it
    fails(["enroll", versions / "v2", people, "-o", gallery, "--append"], capsys, "must not join it")
