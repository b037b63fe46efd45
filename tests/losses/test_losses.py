"""tinyface.losses: values against the formulas, gradients by gradcheck (float64, away from kinks), errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinyface import Tensor, gradcheck, kernels, losses, no_grad
from tinyface.testing import check_gradients, embeddings, triplet_batches

numpy_ref = kernels.numpy_ref
CHECK = settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
GAP = 1e-3  # inputs stay this far from every kink (hinge at 0, ties in a selection): eps = 1e-6 never crosses one


def seeded(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


def batch(seed, b, dim=3, ids=3):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.arange(ids), rng.integers(0, ids, b - ids)])  # every identity at least once
    return rng.standard_normal((b, dim)), labels


# -- the paper's triplet loss --------------------------------------------------------------------------------
@CHECK
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.sampled_from(["sum", "mean", "none"]))
def test_triplet_loss_matches_the_formula_and_gradcheck(seed, t, reduction):
    a, p, n = seeded(seed, 3, t, 4)
    hinge = np.sum((a - p) ** 2, 1) - np.sum((a - n) ** 2, 1) + 0.2
    assume(np.min(np.abs(hinge)) > GAP)
    out = losses.triplet_loss(Tensor(a), Tensor(p), Tensor(n), 0.2, reduction)
    want = np.maximum(hinge, 0)
    np.testing.assert_allclose(out.data, {"sum": want.sum(), "mean": want.mean(), "none": want}[reduction])
    inputs = [Tensor(v, requires_grad=True) for v in (a, p, n)]
    assert gradcheck(lambda a, p, n: losses.triplet_loss(a, p, n, 0.2, reduction), *inputs)


def test_triplet_loss_default_is_the_course_sum():
    a, p, n = np.zeros((2, 2)), np.array([[1.0, 0], [0, 2]]), np.array([[0, 3.0], [0, 1]])
    # hinges: 1 - 9 + 0.2 < 0, and 4 - 1 + 0.2 = 3.2
    assert losses.triplet_loss(Tensor(a), Tensor(p), Tensor(n)).item() == pytest.approx(3.2)


# -- contrastive and cross-entropy ---------------------------------------------------------------------------
@CHECK
@given(st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_contrastive_loss_matches_the_formula_and_gradcheck(seed, n):
    x1, x2 = seeded(seed, 2, n, 3) * 0.6
    same = np.random.default_rng(seed).random(n) < 0.5
    distance = np.sqrt(np.sum((x1 - x2) ** 2, 1))
    assume(np.min(np.abs(distance - 1.0)) > GAP)
    want = np.where(same, distance**2, np.maximum(1.0 - distance, 0) ** 2).mean()
    assert losses.contrastive_loss(Tensor(x1), Tensor(x2), same).item() == pytest.approx(want)
    assert gradcheck(lambda a, b: losses.contrastive_loss(a, b, same), Tensor(x1, requires_grad=True),
                     Tensor(x2, requires_grad=True))


def test_contrastive_loss_at_identical_embeddings_has_no_nan():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    loss = losses.contrastive_loss(x, Tensor(np.ones((2, 3))), [False, True], margin=0.5, reduction="sum")
    loss.backward()
    assert loss.item() == pytest.approx(0.25) and np.all(np.isfinite(x.grad)) and not x.grad.any()


@CHECK
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(2, 5))
def test_cross_entropy_matches_the_formula_and_gradcheck(seed, n, classes):
    logits = seeded(seed, n, classes) * 3
    labels = np.random.default_rng(seed).integers(0, classes, n)
    shifted = logits - logits.max(1, keepdims=True)
    want = -np.mean(shifted[np.arange(n), labels] - np.log(np.exp(shifted).sum(1)))
    assert losses.cross_entropy(Tensor(logits), labels).item() == pytest.approx(want)
    assert gradcheck(lambda z: losses.cross_entropy(z, labels), Tensor(logits, requires_grad=True))


def test_cross_entropy_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        losses.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3]))


@CHECK
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 4))
def test_center_loss_matches_the_formula_and_gradcheck(seed, n, classes):
    x = seeded(seed, n, 3)
    centers = seeded(seed + 1, classes, 3)
    labels = np.random.default_rng(seed).integers(0, classes, n)
    want = np.mean([0.5 * np.sum((x[i] - centers[labels[i]]) ** 2) for i in range(n)])
    assert losses.center_loss(Tensor(x), labels, centers).item() == pytest.approx(want)
    assert gradcheck(lambda e: losses.center_loss(e, labels, centers), Tensor(x, requires_grad=True))


def test_center_update_follows_wen_et_al_and_leaves_absent_classes():
    centers = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    x = np.array([[2.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    labels = np.array([0, 0, 1])
    new = losses.update_centers(centers, x, labels, rate=0.5)
    # class 0: delta = ((0 - 2) + (0 - 0), (0 - 0) + (0 - 2)) / 3; class 1: ((1 - 3), (1 - 1)) / 2; class 2 absent
    np.testing.assert_allclose(new, [[1 / 3, 1 / 3], [1.5, 1.0], [5.0, 5.0]])
    assert centers[0, 0] == 0.0  # the input is not changed in place
    with pytest.raises(ValueError, match="rate"):
        losses.update_centers(centers, x, labels, rate=0.0)
    with pytest.raises(ValueError, match="index the 3 centers"):
        losses.center_loss(Tensor(x), np.array([0, 1, 3]), centers)
    with pytest.raises(ValueError, match="share D"):
        losses.center_loss(Tensor(x), labels, centers[:, :1])


# -- distances and the in-batch losses -----------------------------------------------------------------------
@CHECK
@given(embeddings(batch=(2, 6), dim=3))
def test_pairwise_sqdist_gradcheck(x):
    assert gradcheck(losses.pairwise_sqdist, Tensor(x, requires_grad=True))
    np.testing.assert_allclose(losses.pairwise_sqdist(Tensor(x)).data, numpy_ref.pairwise_sqdist(x))


@CHECK
@given(triplet_batches(loss="batch_all", margin=st.sampled_from([0.2, 1.0]), dim=3))
def test_batch_all_triplet_loss_gradcheck(batch):
    x, labels, margin = batch.embeddings, batch.labels, batch.margin
    loss, fraction = losses.batch_all_triplet_loss(Tensor(x), labels, margin)
    want = numpy_ref.batch_all_triplet(x, labels, margin)
    assert loss.item() == pytest.approx(want[0]) and fraction == pytest.approx(want[2]) and 0 <= fraction <= 1
    check_gradients(lambda e: losses.batch_all_triplet_loss(e, labels, margin)[0], x, batch=batch)


@CHECK
@given(triplet_batches(loss="batch_hard", margin=st.sampled_from([0.2, 1.0, "soft"]), dim=3))
def test_batch_hard_triplet_loss_gradcheck(batch):
    check_gradients(lambda e: losses.batch_hard_triplet_loss(e, batch.labels, batch.margin), batch.embeddings,
                    batch=batch)


@CHECK
@given(triplet_batches(loss="semihard", fallback=st.sampled_from(kernels.contract.FALLBACKS), dim=3))
def test_semihard_triplet_loss_gradcheck(batch):
    x, labels, fallback = batch.embeddings, batch.labels, batch.fallback
    loss = losses.semihard_triplet_loss(Tensor(x), labels, 0.2, fallback)
    assert loss.item() == pytest.approx(numpy_ref.semihard_triplet(x, labels, 0.2, fallback)[0])
    check_gradients(lambda e: losses.semihard_triplet_loss(e, labels, 0.2, fallback), x, batch=batch)


def test_soft_margin_is_softplus_of_the_hardest_gap():
    x = np.array([[0.0], [1.0], [3.0]])  # anchor 0: positive 1 (d = 1), negative 2 (d = 9)
    loss = losses.batch_hard_triplet_loss(Tensor(x), np.array([0, 0, 1]), margin="soft")
    # anchors 0 and 1 (d_ap = 1; d_an = 9 and 4); anchor 2 has no positive
    assert loss.item() == pytest.approx(np.mean([np.log1p(np.exp(1 - 9)), np.log1p(np.exp(1 - 4))]))


def test_kernel_losses_join_the_graph():
    x, labels = batch(7, 12)
    e = Tensor(x, requires_grad=True)
    (3 * losses.semihard_triplet_loss(e, labels)).backward()
    np.testing.assert_allclose(e.grad, 3 * numpy_ref.semihard_triplet(x, labels, 0.2)[1])
    with no_grad():
        assert not losses.batch_all_triplet_loss(e, labels)[0].requires_grad
    e32 = Tensor(x.astype(np.float32), requires_grad=True)
    loss = losses.batch_hard_triplet_loss(e32, labels)
    loss.backward()
    assert loss.dtype == np.float32 and e32.grad.dtype == np.float32


# -- errors --------------------------------------------------------------------------------------------------
ALL_BATCH_LOSSES = [
    lambda e, y: losses.batch_all_triplet_loss(e, y),
    lambda e, y: losses.batch_hard_triplet_loss(e, y),
    lambda e, y: losses.semihard_triplet_loss(e, y),
]


@pytest.mark.parametrize("loss", ALL_BATCH_LOSSES)
def test_batch_losses_reject_bad_batches(loss):
    x = Tensor(np.ones((4, 2)))
    with pytest.raises(ValueError, match="no anchor-positive pair"):
        loss(x, np.arange(4))
    with pytest.raises(ValueError, match="single identity"):
        loss(x, np.zeros(4, int))
    with pytest.raises(ValueError, match="NaN or infinite"):
        loss(Tensor(np.array([[0.0, np.nan], [1, 1], [2, 2], [3, 3]])), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        loss(x, np.array([0, 0, 1]))
    with pytest.raises(TypeError, match="labels must be integers"):
        loss(x, np.array([0.0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"shape \(B, D\)"):
        loss(Tensor(np.ones((4, 2, 1))), np.array([0, 0, 1, 1]))


def test_bad_options_are_rejected():
    x, labels = Tensor(np.eye(4)), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="fallback"):
        losses.semihard_triplet_loss(x, labels, fallback="random")
    with pytest.raises(ValueError, match="margin"):
        losses.batch_hard_triplet_loss(x, labels, margin="hard")
    with pytest.raises(ValueError, match="margin"):
        losses.batch_all_triplet_loss(x, labels, margin=-1)
    with pytest.raises(ValueError, match="reduction"):
        losses.triplet_loss(x, x, x, reduction="max")
    with pytest.raises(ValueError, match="same shape"):
        losses.triplet_loss(x, x, Tensor(np.eye(3)))
