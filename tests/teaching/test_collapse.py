"""The teacher's demo really shows the trivial solution: without a margin the embeddings collapse, with one not."""

import numpy as np

from tinyface.teaching.collapse import CollapseConfig, run_collapse


def test_no_margin_collapses_and_margin_keeps_faces_apart(olivetti):
    config = CollapseConfig(epochs=3, steps_per_epoch=8)
    train, held_out = olivetti.people(range(30)), olivetti.people(range(30, 40))
    histories = {h.variant.name: h for h in run_collapse(train, config, log=lambda *_: None, held_out=held_out)}
    no_margin, margin, unnormalised = (histories[v.name] for v in config.variants)

    # f -> 0: without normalisation and without a margin, the spread falls more than 10x and the loss goes with it
    assert unnormalised.spread[-1] < unnormalised.spread[0] / 10
    assert unnormalised.loss[-1] < unnormalised.loss[0] / 5
    # with normalisation, alpha = 0 leaves the faces bunched together while alpha = 0.2 pulls them apart (measured
    # on ten people the networks never saw)
    assert no_margin.loss[-1] < 0.01
    assert margin.spread[-1] > 10 * no_margin.spread[-1]
    assert max(margin.accuracy) > 0.6 and no_margin.accuracy[-1] <= 0.55
    # the same seed: both normalised runs start from the same network
    np.testing.assert_allclose(no_margin.start_embeddings, margin.start_embeddings)
