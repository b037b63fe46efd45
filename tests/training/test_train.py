"""The training loop: every loss trains, seeds reproduce, resume is exact, checkpoints say what they hold, and on
real faces the loss falls and held-out people are told apart."""

import json
import time

import numpy as np
import pytest

from tinyface.data import FaceDataset
from tinyface.eval import pairs_from_labels
from tinyface.training.checkpoint import load_checkpoint
from tinyface.training.measure import Pairs, embed, verification_metrics
from tinyface.training.split import load_split
from tinyface.training.train import LOSSES, TrainConfig, learning_rate, run_progress, train, training_batch


def synthetic_faces(people=8, images=6, size=16, seed=0) -> FaceDataset:
    """Each person a random smooth pattern; their images are noisy, shifted copies of it."""
    rng = np.random.default_rng(seed)
    base = rng.random((people, 1, size // 4, size // 4)).repeat(4, axis=2).repeat(4, axis=3)
    noisy = base[:, None] + 0.15 * rng.standard_normal((people, images, 1, size, size))
    shifted = np.stack([np.roll(noisy[:, k], rng.integers(-1, 2), axis=-1) for k in range(images)], axis=1)
    pixels = (np.clip(shifted, 0, 1) * 255).round().astype(np.uint8).reshape(-1, 1, size, size)
    return FaceDataset(pixels, np.repeat(np.arange(people), images), [f"p{k}" for k in range(people)])


def tiny(**changes) -> TrainConfig:
    settings = {"steps": 4, "steps_per_epoch": 2, "people_per_batch": 4, "images_per_person": 3, "widths": (4, 8),
                "embedding_dim": 8, "image_size": 16, "crop_padding": 2, "lr": 3e-3}
    return TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def faces():
    data = synthetic_faces()
    return data.people(range(6)), data.people([6, 7])


def weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_and_logs_its_numbers(loss, faces):
    records = []
    result = train(tiny(loss=loss), *faces, progress=False, log=lambda line: None, callbacks=[records.append])
    assert len(result.history) == 2 and records == result.history
    assert len(result.step_losses) == 4 and np.all(np.isfinite(result.step_losses))
    for record in result.history:
        assert 0 <= record["active"] <= 1 and 0 <= record["d_ap"] <= 4 and 0 <= record["d_an"] <= 4
        assert 0 < record["spread"] <= 4 and 0 <= record["validation_accuracy"] <= 1
    assert np.isfinite(result.tau) and not result.model.training


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_with_extra_one_image_people_as_negatives(loss, faces):
    train_data, validation = faces
    single = synthetic_faces(people=9, seed=1).people([8])  # a person with one image: only ever an extra
    with_single = FaceDataset(np.concatenate([train_data.images, single.images[:1]]),
                              np.concatenate([train_data.labels, [train_data.num_people]]),
                              [*train_data.names, "single"])
    result = train(tiny(loss=loss, extra_people=3), with_single, validation, progress=False, log=lambda line: None)
    assert np.all(np.isfinite(result.step_losses)) and np.isfinite(result.tau)
    assert all(0 <= r["active"] <= 1 and r["images_per_second"] > 0 for r in result.history)
    with pytest.raises(ValueError, match="extra_people must be an integer between 0 and the 3 people"):
        train(tiny(loss=loss, extra_people=4), with_single, validation, progress=False, log=lambda line: None)


def test_a_seed_reproduces_a_run_and_another_seed_does_not(faces):
    quiet = {"progress": False, "log": lambda line: None}
    first, second = train(tiny(), *faces, **quiet), train(tiny(), *faces, **quiet)
    other = train(tiny(seed=1), *faces, **quiet)
    assert weights_equal(first.model, second.model) and first.tau == second.tau
    assert not weights_equal(first.model, other.model)


class Interrupt(Exception):
    pass


def interrupted_and_resumed(config, data, folder):
    """Train `config` into `folder`, die right after the first checkpoint (epoch 1), then resume to the end."""
    quiet = {"progress": False, "log": lambda line: None}

    def stop_after_epoch_one(record):
        if record["epoch"] == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, *data, folder, callbacks=[stop_after_epoch_one], **quiet)
    assert load_checkpoint(folder).meta["step"] == config.steps_per_epoch
    return train(config, *data, folder, resume=True, **quiet)


@pytest.mark.parametrize(("loss", "extra"), [("semihard", 0), ("softmax", 0), ("facenet", 0), ("semihard", 2)])
def test_resume_continues_an_interrupted_run_exactly(loss, extra, faces, tmp_path):
    config = tiny(loss=loss, steps=6, lr_schedule="cosine", extra_people=extra)
    quiet = {"progress": False, "log": lambda line: None}
    straight = train(config, *faces, tmp_path / "straight", **quiet)
    resumed = interrupted_and_resumed(config, faces, tmp_path / "resumed")
    assert weights_equal(straight.model, resumed.model)
    np.testing.assert_array_equal(straight.step_losses, resumed.step_losses)
    assert straight.tau == resumed.tau
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    if loss == "softmax":
        assert weights_equal(straight.head, resumed.head)


def test_softmax_with_center_loss_pulls_people_to_their_centers_and_resumes_exactly(faces, tmp_path):
    quiet = {"progress": False, "log": lambda line: None}
    config = tiny(loss="softmax", center_loss=0.5, steps=6)
    straight = train(config, *faces, tmp_path / "straight", **quiet)
    centers = load_checkpoint(tmp_path / "straight").head_state["centers"]
    assert centers.shape == (6, 8) and np.abs(centers).sum() > 0  # moved from zero towards the embeddings
    resumed = interrupted_and_resumed(config, faces, tmp_path / "resumed")
    assert weights_equal(straight.model, resumed.model) and weights_equal(straight.head, resumed.head)
    np.testing.assert_array_equal(centers, load_checkpoint(tmp_path / "resumed").head_state["centers"])
    np.testing.assert_array_equal(straight.step_losses, resumed.step_losses)
    plain = train(tiny(loss="softmax", steps=6), *faces, **quiet)  # same seed, batches and start: no center term
    assert straight.step_losses[0] > plain.step_losses[0] + 1e-3  # centers start at 0: the term is 1/2 ||x||^2


def test_the_center_loss_is_refused_without_softmax_and_out_of_range():
    for bad in ({"center_loss": 0.1}, {"loss": "softmax", "center_loss": -1.0},
                {"loss": "softmax", "center_loss": float("nan")}):
        with pytest.raises(ValueError, match="center_loss must be a number >= 0"):
            TrainConfig(**bad)
    for rate in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="center_rate must be in"):
            TrainConfig(loss="softmax", center_loss=0.1, center_rate=rate)


def test_turns_and_zooms_augment_the_batches_and_are_checked():
    images = (np.random.default_rng(0).random((6, 1, 16, 16)) * 255).astype(np.uint8)
    plain, warped = (training_batch(images, TrainConfig(image_size=16, crop_padding=0, **extra),
                                    np.random.default_rng(1)) for extra in ({}, {"rotation": 15.0, "zoom": 0.2}))
    assert warped.shape == plain.shape and warped.dtype == np.float32 and not np.allclose(warped, plain)
    for bad in ({"rotation": -5.0}, {"rotation": 200.0}, {"zoom": 1.5}, {"zoom": float("nan")}):
        with pytest.raises(ValueError, match="rotation must be in"):
            TrainConfig(**bad)


def test_resume_can_extend_a_run_but_not_change_it(faces, tmp_path):
    quiet = {"progress": False, "log": lambda line: None}
    train(tiny(), *faces, tmp_path, **quiet)
    longer = train(tiny(steps=6), *faces, tmp_path, resume=True, **quiet)
    assert [h["step"] for h in longer.history] == [2, 4, 6]
    with pytest.raises(ValueError, match="differs"):
        train(tiny(steps=8, lr=0.1), *faces, tmp_path, resume=True, **quiet)
    with pytest.raises(ValueError, match="fewer steps"):
        train(tiny(steps=2), *faces, tmp_path, resume=True, **quiet)


def test_the_checkpoint_records_what_is_needed_to_use_and_resume_the_run(faces, tmp_path):
    result = train(tiny(), *faces, tmp_path, metadata={"task": {"dataset": "synthetic"}}, progress=False,
                   log=lambda line: None)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["model"] == result.model.config
    assert record["preprocessing"] == {"image_size": 16, "channels": 1, "normalization": "prewhiten"}
    assert record["tau"] == result.tau and record["tau_source"] == "validation"
    assert record["config"]["loss"] == "semihard" and record["config"]["widths"] == [4, 8]
    assert record["step"] == 4 and record["finished"] and record["task"] == {"dataset": "synthetic"}
    assert record["rng"]["bit_generator"] == "PCG64"
    model = load_checkpoint(tmp_path).build_model()
    np.testing.assert_array_equal(embed(model, faces[1].images, record["preprocessing"]),
                                  embed(result.model, faces[1].images, result.preprocessing))


def test_without_validation_people_tau_comes_from_training_pairs(faces):
    result = train(tiny(), faces[0], progress=False, log=lambda line: None)
    assert "train_accuracy" in result.history[-1] and np.isfinite(result.tau)


def test_bad_settings_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="semihard"):
        TrainConfig(loss="hardest")
    with pytest.raises(ValueError, match="2 people x 2 images"):
        TrainConfig(images_per_person=1)
    with pytest.raises(ValueError, match="resume"):
        train(tiny(), synthetic_faces(), resume=True)


def test_cosine_schedule_goes_from_lr_to_zero():
    config = TrainConfig(lr=0.1, steps=10, lr_schedule="cosine")
    at = [learning_rate(config, run_progress(config, step, 0.0)) for step in (0, 5, 10)]
    assert at == pytest.approx([0.1, 0.05, 0.0])
    assert learning_rate(TrainConfig(lr=0.1), 0.7) == 0.1


def test_training_on_real_faces_lowers_the_loss_and_separates_held_out_people(olivetti_path):
    split = load_split("olivetti", olivetti_path.parent, image_size=32, validation_people=0)
    config = TrainConfig(steps=40, steps_per_epoch=20, image_size=32, widths=(16, 32, 64), embedding_dim=32,
                         people_per_batch=10, images_per_person=5, lr=3e-3)
    result = train(config, split.train, progress=False, log=lambda line: None)
    losses = result.step_losses
    assert losses[-10:].mean() < 0.8 * losses[:10].mean()
    i, j, same = pairs_from_labels(split.test.labels)
    metrics = verification_metrics(embed(result.model, split.test.images, result.preprocessing), split.test.labels,
                                   Pairs(i, j, same))
    assert len(i) == 900 and metrics["accuracy"] > 0.75 and metrics["auc"] > 0.8


def test_a_wall_clock_budget_ends_the_run_and_the_schedule_follows_it(faces):
    config = tiny(minutes=0.02, steps=10**6, steps_per_epoch=5, lr_schedule="cosine")
    start = time.perf_counter()
    result = train(config, *faces, progress=False, log=lambda line: None)
    assert time.perf_counter() - start < 60 and 1.2 - 0.5 < result.wall_time < 1.2 + 10
    assert result.history and all(r["images_per_second"] > 0 for r in result.history)
    assert learning_rate(config, run_progress(config, 0, 0.0)) == config.lr
    assert learning_rate(config, run_progress(config, 5, 0.6)) == pytest.approx(config.lr / 2)
    assert learning_rate(config, run_progress(config, 5, 10.0)) == 0.0


@pytest.mark.parametrize("bad", [{"minutes": 0}, {"minutes": -1.0}, {"minutes": float("nan")}, {"lr": float("nan")},
                                 {"weight_decay": float("nan")}, {"margin": float("nan")}, {"steps": 0},
                                 {"seed": -1}, {"seed": 1.5}, {"crop_padding": -1}])
def test_bad_settings_are_refused_with_their_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        tiny(**bad)


def test_a_run_can_start_from_another_runs_weights(faces, tmp_path):
    quiet = {"progress": False, "log": lambda line: None}
    first = train(tiny(), *faces, tmp_path / "first", **quiet)
    tuned = train(tiny(init=str(tmp_path / "first"), lr=1e-12, seed=3), *faces, **quiet)
    for before, after in zip(first.model.parameters(), tuned.model.parameters(), strict=True):  # lr ~ 0: unchanged
        np.testing.assert_allclose(after.data, before.data, atol=1e-6)
    with pytest.raises(ValueError, match="cannot start from"):
        train(tiny(init=str(tmp_path / "first"), embedding_dim=4), *faces, **quiet)
