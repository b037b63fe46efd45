"""Training a new model compatible with an old one (harmonic embeddings): the old model never changes, the run
records what it is compatible with, FaceNet's schedule trains the new embedding layer alone first, a compatible
run resumes exactly, softmax runs add BCT's influence loss; on real faces a harmonic v2 can be compared with v1
and a v2 trained without it cannot."""

import hashlib
import json

import numpy as np
import pytest
from test_train import interrupted_and_resumed, synthetic_faces, tiny, weights_equal

from tinyface.training.checkpoint import load_checkpoint
from tinyface.training.compatibility import OldVersion, measure_compatibility
from tinyface.training.runs import train_run
from tinyface.training.split import load_split
from tinyface.training.train import TrainConfig, train

QUIET = {"progress": False, "log": lambda line: None}


@pytest.fixture(scope="module")
def faces():
    data = synthetic_faces()
    return data.people(range(6)), data.people([6, 7])


@pytest.fixture(scope="module")
def old_run(faces, tmp_path_factory):
    """v1: a tiny model trained for 4 steps."""
    out = tmp_path_factory.mktemp("v1")
    train(tiny(), *faces, out, **QUIET)
    return out


def files_of(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_the_old_model_is_bit_identical_after_a_harmonic_training(faces, old_run, tmp_path, monkeypatch):
    used = []

    class Recorded(OldVersion):  # the old version the training loop holds, to look at after training
        def __init__(self, run):
            super().__init__(run)
            used.append(self)

    monkeypatch.setattr("tinyface.training.train.OldVersion", Recorded)
    before, files = load_checkpoint(old_run).build_model(), files_of(old_run)
    result = train(tiny(steps=6, seed=1, compatible_with=str(old_run)), *faces, tmp_path / "v2", **QUIET)
    (old,) = used
    assert weights_equal(old.model, before)  # weights and BatchNorm statistics, in memory
    assert all(p.grad is None for p in old.model.parameters())  # no gradient ever reached them
    assert files_of(old_run) == files  # and on disk
    assert not weights_equal(result.model, before)


def test_the_run_records_the_old_run_its_weights_and_the_mixed_threshold(faces, old_run, tmp_path):
    records = []
    train(tiny(seed=1, compatible_with=str(old_run)), *faces, tmp_path / "v2", callbacks=[records.append], **QUIET)
    declared = load_checkpoint(tmp_path / "v2").meta["compatible_with"]
    old = load_checkpoint(old_run).meta
    assert declared["run"] == str(old_run.resolve()) and declared["weights_sha256"] == old["sha256"]
    assert declared["model"] == old["model"] and declared["preprocessing"] == old["preprocessing"]
    assert 0 <= declared["tau"] <= 4
    assert all(0 <= r["validation_mixed_accuracy"] <= 1 and 0 <= r["d_old_new"] <= 4 for r in records)


def test_the_embedding_dimension_must_match_and_other_settings_are_checked(faces, old_run, tmp_path):
    with pytest.raises(ValueError, match="D=8, this run's D=4; choose --embedding-dim 8"):
        train(tiny(embedding_dim=4, compatible_with=str(old_run)), *faces, **QUIET)
    train(tiny(widths=(8, 8, 16), compatible_with=str(old_run)), *faces, **QUIET)  # width and depth may differ
    with pytest.raises(ValueError, match="needs compatible_with"):
        tiny(embedding_steps=2)
    with pytest.raises(ValueError, match="only when starting from init"):
        tiny(embedding_steps=2, compatible_with=str(old_run))
    with pytest.raises(ValueError, match="influence loss"):  # v1 was not trained with softmax: it has no classifier
        train(tiny(loss="softmax", compatible_with=str(old_run)), *faces, **QUIET)


def test_facenet_schedule_trains_the_reinitialised_embedding_layer_alone_first(faces, old_run, tmp_path):
    independent = tmp_path / "independent"
    train(tiny(seed=2), *faces, independent, **QUIET)
    start = load_checkpoint(independent).model_state
    config = tiny(seed=3, steps=2, init=str(independent), compatible_with=str(old_run))
    assert config.embedding_only_steps == config.steps_per_epoch == 2  # the default: one epoch
    state = train(config, *faces, **QUIET).model.state_dict()
    features = [k for k in state if not k.startswith("embedding.")]
    assert all(np.array_equal(state[k], start[k]) for k in features)  # convolutions and BatchNorm statistics
    assert not np.array_equal(state["embedding.weight"], start["embedding.weight"])
    whole = train(tiny(seed=3, steps=4, init=str(independent), compatible_with=str(old_run)), *faces, **QUIET)
    assert not all(np.array_equal(whole.model.state_dict()[k], start[k]) for k in features)  # then the whole net


def test_a_compatible_run_resumes_exactly(faces, old_run, tmp_path):
    independent = tmp_path / "independent"
    train(tiny(seed=2), *faces, independent, **QUIET)
    config = tiny(seed=3, steps=6, init=str(independent), compatible_with=str(old_run), embedding_steps=3)
    straight = train(config, *faces, tmp_path / "straight", **QUIET)
    resumed = interrupted_and_resumed(config, faces, tmp_path / "resumed")
    assert weights_equal(straight.model, resumed.model)
    np.testing.assert_array_equal(straight.step_losses, resumed.step_losses)


def test_softmax_versions_train_with_the_influence_loss_of_the_old_classifier(faces, tmp_path):
    train(tiny(loss="softmax"), *faces, tmp_path / "v1", **QUIET)
    old = load_checkpoint(tmp_path / "v1")
    assert old.meta["head_classes"] == faces[0].names and old.head_state["weight"].shape == (6, 8)
    files = files_of(tmp_path / "v1")
    plain = train(tiny(loss="softmax", seed=1), *faces, **QUIET)
    bct = train(tiny(loss="softmax", seed=1, compatible_with=str(tmp_path / "v1")), *faces, **QUIET)
    assert bct.step_losses[0] > plain.step_losses[0]  # the same first batch, plus the old classifier's loss
    assert files_of(tmp_path / "v1") == files
    other_people = faces[0].people(range(6))
    other_people.names = [f"stranger{k}" for k in range(6)]
    with pytest.raises(ValueError, match="none of this run's training people"):
        train(tiny(loss="softmax", compatible_with=str(tmp_path / "v1")), other_people, faces[1], **QUIET)


def test_old_version_reads_the_data_as_its_own_training_did(olivetti_path, tmp_path):
    split = load_split("olivetti", olivetti_path.parent, image_size=16, validation_people=5)
    train_run(split, tiny(steps=1, image_size=24, widths=(4, 8)), tmp_path / "v1",
              progress=False, figures=False, log=lambda line: None)
    view = OldVersion(tmp_path / "v1").view_for(split)
    assert view.train.images.shape[2:] == (24, 24) and split.train.images.shape[2:] == (16, 16)
    np.testing.assert_array_equal(view.train.labels, split.train.labels)
    np.testing.assert_array_equal(view.pairs.i, split.pairs.i)


def test_on_olivetti_a_harmonic_v2_can_be_compared_with_v1_and_the_control_cannot(olivetti_path, tmp_path):
    """v1 and an independent v2 (the control), 30 steps each from random weights; the harmonic v2 starts from the
    control and trains its new embedding layer with the harmonic loss (FaceNet's first stage, 80 steps)."""
    split = load_split("olivetti", olivetti_path.parent, image_size=32, validation_people=5)
    base = {"image_size": 32, "people_per_batch": 10, "images_per_person": 4, "widths": (8, 16, 32), "lr": 3e-3}
    quiet = {"progress": False, "figures": False, "log": lambda line: None}
    train_run(split, TrainConfig(**base, steps=30, steps_per_epoch=30), tmp_path / "v1", **quiet)
    train_run(split, TrainConfig(**base, steps=30, steps_per_epoch=30, seed=1), tmp_path / "control", **quiet)
    train_run(split, TrainConfig(**base, steps=80, steps_per_epoch=80, seed=1, init=str(tmp_path / "control"),
                                 compatible_with=str(tmp_path / "v1")), tmp_path / "harmonic", **quiet)
    harmonic = measure_compatibility(tmp_path / "harmonic", tmp_path / "v1")[0]
    control = measure_compatibility(tmp_path / "control", tmp_path / "v1")[0]
    assert harmonic["declared"] and not control["declared"]
    assert control["mixed"]["accuracy"] < 0.6 < harmonic["mixed"]["accuracy"] - 0.05
    assert harmonic["mixed"]["rank1"] > control["mixed"]["rank1"] + 0.15
    assert harmonic["old"] == control["old"]  # the same v1 on the same pairs
    saved = json.loads((tmp_path / "harmonic" / "metrics.json").read_text())
    assert saved["model"]["accuracy"] == harmonic["new"]["accuracy"]  # new/new is what validate reports


def test_a_tampered_compatibility_record_is_refused(faces, old_run, tmp_path):
    from tinyface.training.checkpoint import CheckpointError

    train(tiny(seed=1, compatible_with=str(old_run)), *faces, tmp_path / "v2", **QUIET)
    record = json.loads((tmp_path / "v2" / "run.json").read_text())
    for bad in ({"weights_sha256": "x"}, {"tau": "0.5"}, {"tau": -1}):
        edited = {**record, "compatible_with": {**record["compatible_with"], **bad}}
        (tmp_path / "v2" / "run.json").write_text(json.dumps(edited))
        with pytest.raises(CheckpointError, match="compatible_with"):
            load_checkpoint(tmp_path / "v2")
