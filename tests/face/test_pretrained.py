"""The model that comes with tinyface: it loads, is small, says how it was made, and (when LFW is present) still
measures on LFW View 1's test pairs what its model card states."""

import json

import pytest

from tinyface.face.embedder import Embedder
from tinyface.pretrained import pretrained_run
from tinyface.training.checkpoint import load_checkpoint
from tinyface.training.runs import measure_run
from tinyface.training.split import split_from_description


def test_the_bundled_model_loads_is_small_and_has_its_card():
    folder = pretrained_run()
    checkpoint = load_checkpoint(folder)
    assert sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) < 2_000_000
    assert checkpoint.optimizer_state == {} and checkpoint.meta["task"]["data"] is None  # exported, no paths
    card = (folder / "MODEL_CARD.md").read_text()
    assert "tinyface train --dataset lfw-view1" in card and "tinyface export" in card
    stated = json.loads((folder / "metrics.json").read_text())
    assert stated["dataset"] == "lfw-view1" and f"{stated['model']['accuracy']:.3f}" in card
    assert "distances" in checkpoint.tau_pairs  # compare's confidence needs no training data
    assert Embedder.load(folder).tau == checkpoint.tau


@pytest.mark.real_data
def test_the_bundled_model_measures_what_its_card_states_on_lfw_view1(data_dir, monkeypatch):
    monkeypatch.setenv("TINYFACE_DATA", str(data_dir))
    folder = pretrained_run()
    stated = json.loads((folder / "metrics.json").read_text())
    split = split_from_description(load_checkpoint(folder).meta["task"], data=str(data_dir / "lfw"))
    report, _ = measure_run(folder, split, baselines=False)
    assert report["model"]["accuracy"] == pytest.approx(stated["model"]["accuracy"], abs=0.01)
    assert report["model_flip"]["accuracy"] == pytest.approx(stated["model_flip"]["accuracy"], abs=0.01)
