"""Checkpoints: round trip, atomic replacement, and clear errors for missing or damaged files."""

import json

import numpy as np
import pytest

import tinyface as tf
from tinyface.nn.models import FaceCNN
from tinyface.training import checkpoint as ck
from tinyface.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def tiny_model(seed=0):
    return FaceCNN(1, (4, 8), 6, rng=np.random.default_rng(seed))


def meta_for(model, step, tau=0.7):
    return {"model": model.config, "preprocessing": {"image_size": 16, "channels": 1, "normalization": "prewhiten"},
            "tau": tau, "step": step, "history": [{"epoch": 1, "loss": 0.1}]}


def test_round_trip_restores_the_model_and_everything_saved(tmp_path):
    model = tiny_model()
    model.features[1].running_mean[:] = 0.25  # a buffer, not a parameter: must be saved too
    optimizer_state = {"steps": 3, "lr": 1e-3, "0.m": np.ones((4, 1, 3, 3), np.float32)}
    save_checkpoint(tmp_path, meta_for(model, 3), model.state_dict(), optimizer_state,
                    {"weight": np.eye(2, dtype=np.float32)}, np.array([0.3, 0.2, 0.1]))
    loaded = load_checkpoint(tmp_path)
    assert loaded.tau == 0.7 and loaded.meta["step"] == 3 and loaded.meta["history"][0]["loss"] == 0.1
    assert loaded.preprocessing["image_size"] == 16
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.model_state[name], value)
    assert int(loaded.optimizer_state["steps"]) == 3
    np.testing.assert_array_equal(loaded.optimizer_state["0.m"], optimizer_state["0.m"])
    np.testing.assert_array_equal(loaded.head_state["weight"], np.eye(2))
    np.testing.assert_array_equal(loaded.step_losses, [0.3, 0.2, 0.1])
    x = tf.Tensor(np.random.default_rng(1).standard_normal((3, 1, 16, 16)).astype(np.float32))
    rebuilt = loaded.build_model()
    assert not rebuilt.training
    with tf.no_grad():
        np.testing.assert_array_equal(rebuilt(x).numpy(), model.eval()(x).numpy())
    # the arrays are plain: numpy reads them without pickle
    with np.load(tmp_path / loaded.meta["weights"], allow_pickle=False) as stored:
        assert all(stored[k].dtype != object for k in stored.files)


def test_a_new_checkpoint_replaces_the_old_one(tmp_path):
    model = tiny_model()
    save_checkpoint(tmp_path, meta_for(model, 1), model.state_dict())
    save_checkpoint(tmp_path, meta_for(model, 2, tau=0.9), model.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-0000002.npz", "run.json"]
    assert load_checkpoint(tmp_path).tau == 0.9


def test_an_interrupted_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    model = tiny_model()
    save_checkpoint(tmp_path, meta_for(model, 1), model.state_dict())
    real_write = ck.atomic_write

    def crash_on_the_record(path, write):
        if path.name == "run.json":
            raise KeyboardInterrupt  # the process dies after the new weights, before the commit
        return real_write(path, write)

    monkeypatch.setattr(ck, "atomic_write", crash_on_the_record)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, meta_for(model, 2, tau=0.9), tiny_model(1).state_dict())
    loaded = load_checkpoint(tmp_path)
    assert loaded.meta["step"] == 1 and loaded.tau == 0.7
    np.testing.assert_array_equal(loaded.model_state["embedding.weight"], model.state_dict()["embedding.weight"])


def test_meta_that_is_not_json_is_refused_before_anything_is_written(tmp_path):
    model = tiny_model()
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path, {**meta_for(model, 1), "tau": float("nan")}, model.state_dict())
    assert not any(tmp_path.iterdir())


def test_missing_and_damaged_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a folder"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)

    model = tiny_model()
    save_checkpoint(tmp_path, meta_for(model, 1), model.state_dict())
    weights = tmp_path / "checkpoint-0000001.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path)

    (tmp_path / "run.json").write_text('{"format": "tinyface-run/1", "weights": ')
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path)

    (tmp_path / "run.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a tinyface checkpoint"):
        load_checkpoint(tmp_path)


def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path):
    model = tiny_model()
    meta = meta_for(model, 1)
    meta["model"] = {**model.config, "widths": [4, 16]}
    save_checkpoint(tmp_path, meta, model.state_dict())
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path)



def test_an_exported_checkpoint_holds_the_model_and_no_path_or_optimizer(tmp_path):
    model = tiny_model()
    meta = {**meta_for(model, 5), "rng": {"state": 1}, "task": {"dataset": "lfw-view1", "data": "/home/me/lfw"}}
    head = {"weight": np.ones((3, 8), np.float32), "bias": np.zeros(3, np.float32),
            ck.CENTERS_KEY: np.ones((3, 8), np.float32)}  # a softmax head, and the center loss's centers
    save_checkpoint(tmp_path / "run", meta, model.state_dict(), {"0.m": np.ones(1000, np.float32)}, head)
    ck.export_checkpoint(tmp_path / "run", tmp_path / "model")
    exported = load_checkpoint(tmp_path / "model")
    assert exported.optimizer_state == {} and "rng" not in exported.meta and exported.meta["task"]["data"] is None
    assert sorted(exported.head_state) == ["bias", "weight"]  # the classifier travels, the training state not
    assert exported.meta["exported_from"]["step"] == 5 and exported.tau == 0.7
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(exported.model_state[name], value)


def test_a_float16_export_is_half_the_size_and_embeds_almost_the_same(tmp_path):
    model = tiny_model()
    save_checkpoint(tmp_path / "run", meta_for(model, 5), model.state_dict())
    ck.export_checkpoint(tmp_path / "run", tmp_path / "half", float16=True)
    full, half = load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "half")
    assert all(v.dtype == np.float16 for k, v in half.model_state.items() if full.model_state[k].dtype == np.float32)
    x = tf.Tensor(np.random.default_rng(1).standard_normal((3, 1, 16, 16)).astype(np.float32))
    np.testing.assert_allclose(half.build_model()(x).numpy(), full.build_model()(x).numpy(), atol=2e-2)


def test_ctrl_c_during_the_commit_waits_until_the_old_weights_are_gone(tmp_path, monkeypatch):
    import signal

    model = tiny_model()
    save_checkpoint(tmp_path, meta_for(model, 1), model.state_dict())
    real_write = ck.atomic_write

    def ctrl_c_after_the_record(path, write):
        written = real_write(path, write)
        if path.name == "run.json":
            # Ctrl-C right after the commit, before the old .npz is removed: the handler in place then is called,
            # as Python calls it when the signal arrives (sending a real signal made the test depend on which
            # thread received it and when the main thread looked)
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        return written

    monkeypatch.setattr(ck, "atomic_write", ctrl_c_after_the_record)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before
    try:
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(tmp_path, meta_for(model, 2), model.state_dict())
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-0000002.npz", "run.json"]
    monkeypatch.undo()
    (tmp_path / "checkpoint-0000009.npz").write_bytes(b"left by a save that was killed")
    save_checkpoint(tmp_path, meta_for(model, 3), model.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-0000003.npz", "run.json"]
