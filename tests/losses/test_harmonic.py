"""The losses of compatible versions: FaceNet's harmonic triplet loss against a plain-loop reference over both
versions (which triplets, which negatives across versions, which rows get a gradient), its gradient by
gradcheck, and BCT's influence loss."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tinyface import Tensor, losses
from tinyface.testing import check_gradients, nearest_kink

CHECK = settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])


def harmonic_reference(new, old, labels, margin, fallback="easiest"):
    """The harmonic semi-hard triplet loss by plain loops over rows (version, image): version 0 is the old model,
    1 the new one. Returns (loss, gradient for the new rows (B, D), the triplets as ((v, k), (v, k), (v, k)))."""
    rows = [(version, k) for version in (0, 1) for k in range(len(labels))]
    vector = {(0, k): old[k] for k in range(len(labels))} | {(1, k): new[k] for k in range(len(labels))}

    def d(r, s):
        return float(np.sum((vector[r] - vector[s]) ** 2))

    triplets = []
    for a, p in itertools.product(rows, repeat=2):
        negatives = [n for n in rows if labels[n[1]] != labels[a[1]]]
        if a == p or labels[a[1]] != labels[p[1]] or not negatives:
            continue
        farther = [n for n in negatives if d(a, n) > d(a, p)]  # semi-hard: the nearest of these, lowest row first
        if farther:
            triplets.append((a, p, min(farther, key=lambda n: (d(a, n), rows.index(n)))))
        elif fallback == "easiest":
            triplets.append((a, p, min(negatives, key=lambda n: (-d(a, n), rows.index(n)))))
    grad = np.zeros_like(new)
    total = 0.0
    for a, p, n in triplets:
        hinge = (d(a, p) + margin) - d(a, n)
        if hinge > 0:
            total += hinge
            for row, slope in ((a, 2 * (vector[n] - vector[p])), (p, 2 * (vector[p] - vector[a])),
                               (n, 2 * (vector[a] - vector[n]))):
                if row[0] == 1:  # only the new version's rows learn
                    grad[row[1]] += slope / len(triplets)
    return (total / len(triplets) if triplets else 0.0), grad, triplets


@st.composite
def integer_versions(draw, batch=(2, 7), dim=(1, 3), people=(2, 3)):
    """(new, old, labels): small integer embeddings of the same B images by two versions (exact distances, many
    ties), labels with at least two people."""
    b, d = draw(st.integers(*batch)), draw(st.integers(*dim))
    p = draw(st.integers(people[0], min(people[1], b)))
    labels = np.array(list(range(p)) + draw(st.lists(st.integers(0, p - 1), min_size=b - p, max_size=b - p)))
    values = st.lists(st.integers(-2, 2), min_size=b * d, max_size=b * d)
    new, old = (np.array(draw(values), dtype=np.float64).reshape(b, d) for _ in range(2))
    return new, old, labels


@CHECK
@given(integer_versions(), st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.sampled_from(["easiest", "skip"]))
def test_harmonic_loss_equals_the_plain_loop_reference_on_integer_batches(versions, margin, fallback):
    new, old, labels = versions
    x = Tensor(new, requires_grad=True)
    loss = losses.harmonic_triplet_loss(x, old, labels, margin, fallback=fallback, backend="numpy")
    want, want_grad, _ = harmonic_reference(new, old, labels, margin, fallback)
    assert loss.item() == pytest.approx(want, abs=1e-12)
    loss.backward()
    np.testing.assert_allclose(x.grad, want_grad, atol=1e-12)


def test_negatives_are_chosen_across_versions_and_only_new_rows_get_a_gradient():
    # 1-D embeddings, person 0 = images 0 and 1, person 1 = image 2. The new model puts image 1 at 3 and image 2
    # at 5; the old one puts image 2 at 4. For the anchor new(0) = 0 with the positive new(1) (d_ap = 9), the
    # negatives are old(2) (d = 16) and new(2) (d = 25): the semi-hard one, nearest beyond d_ap, is the old row.
    old, new, labels = np.array([[0.0], [1.0], [4.0]]), np.array([[0.0], [3.0], [5.0]]), np.array([0, 0, 1])
    _, _, triplets = harmonic_reference(new, old, labels, margin=10.0)
    assert ((1, 0), (1, 1), (0, 2)) in triplets  # anchor and positive of v2, negative of v1
    assert ((0, 0), (1, 1), (0, 2)) in triplets  # anchor of v1, positive of v2, negative of v1
    x = Tensor(new, requires_grad=True)
    loss = losses.harmonic_triplet_loss(x, old, labels, margin=10.0, backend="numpy")
    loss.backward()
    assert x.grad.shape == new.shape  # old rows are constants: no gradient reaches them
    np.testing.assert_allclose(x.grad, harmonic_reference(new, old, labels, 10.0)[1])
    # the same loss with the old rows moved changes: old rows count as anchors, positives and negatives
    moved = losses.harmonic_triplet_loss(Tensor(new), old + 1.0, labels, margin=10.0, backend="numpy")
    assert moved.item() != pytest.approx(loss.item())


def test_every_backend_gives_the_harmonic_loss_of_the_reference():
    from tinyface.kernels import available_backends

    rng = np.random.default_rng(3)
    new, old, labels = rng.standard_normal((12, 4)), rng.standard_normal((12, 4)), np.repeat(np.arange(4), 3)
    want, want_grad, _ = harmonic_reference(new, old, labels, 0.2)
    for backend in (b for b in available_backends() if b != "cupy"):
        x = Tensor(new, requires_grad=True)
        loss = losses.harmonic_triplet_loss(x, old, labels, 0.2, backend=backend)
        loss.backward()
        assert loss.item() == pytest.approx(want, rel=1e-9), backend
        np.testing.assert_allclose(x.grad, want_grad, atol=1e-9, err_msg=backend)


@CHECK
@given(st.integers(0, 2**32 - 1), st.sampled_from(["semihard", "batch-hard", "batch-all"]), st.integers(2, 3))
def test_harmonic_loss_gradient_passes_gradcheck(seed, selection, people):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(people), 2)
    union = rng.standard_normal((2 * len(labels), 3))
    kink_of = {"semihard": "semihard", "batch-hard": "batch_hard", "batch-all": "batch_all"}[selection]
    assume(nearest_kink(union, np.concatenate([labels, labels]), 0.2, kink_of, "easiest").distance > 1e-3)
    old, new = union[: len(labels)], union[len(labels):]
    check_gradients(lambda x: losses.harmonic_triplet_loss(x, old, labels, 0.2, selection, backend="numpy"), new)


def test_harmonic_loss_refuses_mismatched_versions_and_other_selections():
    new, old, labels = np.zeros((4, 3)), np.zeros((4, 2)), np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="same images"):
        losses.harmonic_triplet_loss(Tensor(new), old, labels)
    with pytest.raises(ValueError, match="selection"):
        losses.harmonic_triplet_loss(Tensor(new), np.zeros((4, 3)), labels, selection="contrastive")
    with pytest.raises(ValueError, match="labels"):
        losses.harmonic_triplet_loss(Tensor(new), np.zeros((4, 3)), np.array([0, 1]))


def test_influence_loss_is_the_old_classifier_on_new_embeddings_and_passes_gradcheck():
    rng = np.random.default_rng(0)
    e, weight, bias, labels = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4), \
        np.array([0, 3, 1, 1, 2])
    logits = e @ weight.T + bias
    shifted = logits - logits.max(1, keepdims=True)
    want = -np.mean(shifted[np.arange(5), labels] - np.log(np.exp(shifted).sum(1)))
    assert losses.influence_loss(Tensor(e), weight, bias, labels).item() == pytest.approx(want)
    check_gradients(lambda x: losses.influence_loss(x, weight, bias, labels), e)
    with pytest.raises(ValueError, match="does not fit"):
        losses.influence_loss(Tensor(e), weight[:, :2], bias, labels)
