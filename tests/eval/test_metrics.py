"""Verification metrics against their definitions, computed the slow and obvious way on small inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyface.eval.metrics import (
    accuracy_at,
    auc,
    best_threshold,
    eer,
    far_frr,
    kfold_accuracy,
    kfold_val,
    roc_curve,
    stratified_folds,
    threshold_at_far,
    val_at_far,
    verification_report,
)


@st.composite
def scored_pairs(draw, max_size=40):
    """Distances on a coarse grid (so ties happen) and labels with both classes present."""
    n = draw(st.integers(2, max_size))
    distances = np.array(draw(st.lists(st.integers(0, 8), min_size=n, max_size=n)), dtype=float) / 2
    same = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    same[0], same[1] = True, False
    return distances, same


def rates_by_loop(distances, same, tau):
    far = sum(d <= tau and not s for d, s in zip(distances, same, strict=True)) / sum(not s for s in same)
    tar = sum(d <= tau and s for d, s in zip(distances, same, strict=True)) / sum(same)
    return far, tar


def separable(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    same = np.arange(n) % 2 == 0
    distances = np.where(same, rng.uniform(0, 0.8, n), rng.uniform(1.2, 4, n))
    return distances, same


@settings(max_examples=60, deadline=None)
@given(scored_pairs())
def test_roc_curve_matches_a_loop_over_thresholds(pairs):
    distances, same = pairs
    far, tar, thresholds = roc_curve(distances, same)
    assert thresholds[0] == -np.inf and (far[0], tar[0]) == (0, 0)
    np.testing.assert_array_equal(thresholds[1:], np.unique(distances))
    for f, t, tau in zip(far, tar, thresholds, strict=True):
        np.testing.assert_allclose((f, t), rates_by_loop(distances, same, tau))
    assert (far[-1], tar[-1]) == (1, 1)


@settings(max_examples=60, deadline=None)
@given(scored_pairs())
def test_auc_is_the_probability_a_same_pair_is_closer_than_a_different_pair(pairs):
    distances, same = pairs
    d_same, d_diff = distances[same][:, None], distances[~same][None, :]
    mann_whitney = np.mean((d_same < d_diff) + 0.5 * (d_same == d_diff))
    assert auc(*roc_curve(distances, same)[:2]) == pytest.approx(mann_whitney)


def test_auc_of_perfect_reversed_and_chance_scores():
    distances, same = separable()
    assert auc(*roc_curve(distances, same)[:2]) == 1.0
    assert auc(*roc_curve(-distances, same)[:2]) == 0.0
    rng = np.random.default_rng(1)
    assert auc(*roc_curve(rng.random(20000), rng.random(20000) < 0.5)[:2]) == pytest.approx(0.5, abs=0.02)


def test_eer_where_far_equals_frr_at_a_threshold():
    # same: 0.1 0.2 0.3 0.9 | different: 0.5 0.7 0.8 1.0. At tau = 0.5: FRR = 1/4 (0.9), FAR = 1/4 (0.5).
    distances = np.array([0.1, 0.2, 0.3, 0.9, 0.5, 0.7, 0.8, 1.0])
    same = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    rate, tau = eer(distances, same)
    assert rate == pytest.approx(0.25)
    assert far_frr(distances, same, tau) == pytest.approx((0.25, 0.25))


@settings(max_examples=60, deadline=None)
@given(scored_pairs())
def test_eer_lies_between_the_best_roc_points_on_either_side(pairs):
    distances, same = pairs
    far, tar, _ = roc_curve(distances, same)
    frr = 1 - tar
    rate, _ = eer(distances, same)
    assert np.max(np.minimum(far, frr)) - 1e-12 <= rate <= np.min(np.maximum(far, frr)) + 1e-12


def test_far_frr_and_accuracy_by_hand():
    distances = np.array([0.2, 0.6, 1.0, 0.4, 1.5, 2.0])
    same = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    assert far_frr(distances, same, 0.6) == pytest.approx((1 / 3, 1 / 3))
    assert accuracy_at(distances, same, 0.6) == pytest.approx(4 / 6)
    assert accuracy_at(distances, same, 1.0) == pytest.approx(5 / 6)


@settings(max_examples=60, deadline=None)
@given(scored_pairs())
def test_best_threshold_reaches_the_best_accuracy_of_any_threshold(pairs):
    distances, same = pairs
    candidates = np.concatenate([[-1.0], np.unique(distances)])
    best = max(np.mean((distances <= tau) == same) for tau in candidates)
    assert accuracy_at(distances, same, best_threshold(distances, same)) == pytest.approx(best)


def test_best_threshold_sits_in_the_gap_between_classes():
    distances = np.array([0.1, 0.3, 1.1, 1.5])
    same = np.array([True, True, False, False])
    assert best_threshold(distances, same) == pytest.approx(0.7)


def test_kfold_accuracy_is_one_when_separable_and_half_when_random():
    distances, same = separable()
    result = kfold_accuracy(distances, same)
    assert result.mean == 1.0 and result.std == 0.0 and len(result.accuracies) == 10
    assert np.all((0.8 <= result.thresholds) & (result.thresholds <= 1.2))
    rng = np.random.default_rng(2)
    chance = kfold_accuracy(rng.uniform(0, 4, 6000), rng.random(6000) < 0.5)
    assert chance.mean == pytest.approx(0.5, abs=0.03)


def test_kfold_accuracy_chooses_the_threshold_without_the_test_fold():
    # Fold 1 alone would want a threshold near 3, but folds 0 and 2 agree on ~1: fold 1 is measured at ~1.
    distances = np.array([0.5, 1.5, 0.5, 1.5, 2.5, 3.5, 0.6, 1.6])
    same = np.array([True, False, True, False, True, False, True, False])
    folds = np.array([0, 0, 2, 2, 1, 1, 3, 3])
    result = kfold_accuracy(distances, same, folds=folds)
    np.testing.assert_allclose(result.accuracies, [1.0, 0.5, 1.0, 1.0])
    assert result.thresholds[1] == pytest.approx(1.0, abs=0.1)


def test_stratified_folds_reproduce_lfw_folds_for_lfw_order():
    # LFW's pairs.txt: per fold, 300 matched then 300 mismatched.
    same = np.tile(np.repeat([True, False], 300), 10)
    np.testing.assert_array_equal(stratified_folds(same, 10), np.repeat(np.arange(10), 600))
    # Matched-first order (pairs_from_labels) still gives folds with both kinds.
    folds = stratified_folds(np.repeat([True, False], 450), 10)
    for fold in range(10):
        assert np.sum(folds[:450] == fold) == 45 and np.sum(folds[450:] == fold) == 45


def test_threshold_at_far_hits_the_target_far():
    rng = np.random.default_rng(3)
    distances = np.concatenate([rng.uniform(0, 2, 5000), rng.uniform(1, 4, 20000)])
    same = np.arange(25000) < 5000
    for target in (1e-3, 1e-2, 0.1):
        tau = threshold_at_far(distances, same, target)
        assert far_frr(distances, same, tau)[0] == pytest.approx(target, rel=0.1, abs=2 / 20000)


def test_threshold_at_far_is_zero_when_the_target_far_is_never_reached():
    distances = np.array([0.1, 0.2, 3.0])
    same = np.array([True, True, False])
    assert threshold_at_far(distances, same, far_target=1.5) == 0.0  # FAR never exceeds 1


def test_val_at_far_on_separable_pairs():
    distances, same = separable()
    val, far, tau = val_at_far(distances, same, 1e-3)
    assert val == 1.0 and far <= 2e-3  # 2e-3: one of the 500 different pairs
    assert distances[same].max() < tau <= distances[~same].min() + 1e-3
    result = kfold_val(distances, same, 1e-3)
    assert result.val_mean == 1.0 and result.far_mean <= 2e-3 and len(result.vals) == 10


def test_verification_report_keys_and_ranges():
    rng = np.random.default_rng(4)
    same = rng.random(2000) < 0.5
    distances = np.clip(np.where(same, rng.normal(0.8, 0.3, 2000), rng.normal(1.6, 0.3, 2000)), 0, 4)
    report = verification_report(distances, same)
    assert set(report) == {
        "accuracy",
        "accuracy_std",
        "auc",
        "eer",
        "val_at_far",
        "val_std",
        "far",
        "threshold",
    }
    assert 0.85 < report["accuracy"] < 0.95 and 0.9 < report["auc"] < 1 and 0.05 < report["eer"] < 0.15
    assert all(isinstance(value, float) for value in report.values())


@pytest.mark.parametrize(
    "call",
    [roc_curve, eer, best_threshold, kfold_accuracy, lambda d, s: far_frr(d, s, 1.0)],
)
def test_nan_distances_are_refused_with_a_clear_message(call):
    distances, same = separable(20)
    distances[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        call(distances, same)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="equally long"):
        roc_curve(np.zeros(3), np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="both"):
        roc_curve(np.zeros(3), np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="booleans"):
        accuracy_at(np.zeros(3), np.array([0, 1, 2]), 0.5)
    with pytest.raises(ValueError, match="ascending"):
        auc(np.array([0, 1, 0.5]), np.array([0, 1, 1]))
