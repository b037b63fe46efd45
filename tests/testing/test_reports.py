"""check_gradients and assert_matches_reference: they pass what is right, and say what is wrong in words."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyface import GradcheckError, Tensor, kernels, losses
from tinyface.losses import KernelLoss
from tinyface.testing import TripletBatch, assert_matches_reference, check_gradients, exact_batches, references

numpy_ref = kernels.numpy_ref


def batch_all_with_a_wrong_element(x, labels, margin):
    """The batch-all loss with the gradient of element (1, 0) off by 0.5."""
    loss, grad, _, _ = numpy_ref.batch_all_triplet(x.data, labels, margin)
    grad = grad.copy()
    grad[1, 0] += 0.5
    return KernelLoss.apply(x, loss=loss, grad_x=grad)


BATCH = TripletBatch(np.array([[0.0, 0.1], [1.0, 0.3], [0.2, 2.0], [1.5, 1.4]]), np.array([3, 3, 7, 7]), 0.2,
                     "batch_all", "easiest", 1e-3)


def test_a_correct_gradient_passes_and_numpy_arrays_become_inputs():
    assert check_gradients(lambda x, labels: losses.batch_all_triplet_loss(x, labels)[0], BATCH.embeddings,
                           BATCH.labels, batch=BATCH)
    assert check_gradients(lambda a, b: (a * b).sum(), np.ones((2, 2)), Tensor(np.ones((2, 2))))  # b: a constant


def test_a_wrong_gradient_is_reported_element_by_element():
    with pytest.raises(GradcheckError) as info:
        check_gradients(lambda x: batch_all_with_a_wrong_element(x, BATCH.labels, BATCH.margin), BATCH.embeddings,
                        batch=BATCH)
    report = str(info.value)
    assert "input 0 `x` (shape (4, 2)) is wrong at element (1, 0)" in report
    analytic = float(re.search(r"analytic \(backward\) +(-?[\d.e+-]+)", report).group(1))
    numeric = float(re.search(r"finite differences +(-?[\d.e+-]+)", report).group(1))
    assert analytic - numeric == pytest.approx(0.5, abs=1e-5)
    assert re.search(r"relative error +[\d.e+-]+ +\(allowed: \|analytic - numeric\| <= 1e-05 \+ 0.001", report)
    assert "nearest kink" in report and "the backward pass is wrong" in report  # far from kinks: not the check's
    assert (info.value.input_index, info.value.element) == (0, (1, 0))


def test_near_a_kink_the_report_blames_the_finite_differences():
    # the hinge (d_ap + margin) - d_an of (0, 1, 2) is 1e-7 from 0: a step of 1e-6 crosses it
    x = np.array([[0.0], [1.0], [np.sqrt(1.2 + 1e-7)]])
    near = TripletBatch(x, np.array([0, 0, 1]), 0.2, "batch_all", "easiest", 0.0)
    with pytest.raises(GradcheckError, match="finite differences may be what is wrong"):
        check_gradients(lambda e: losses.batch_all_triplet_loss(e, near.labels, 0.2)[0], x, batch=near)


def test_without_a_batch_there_is_no_kink_line():
    with pytest.raises(GradcheckError) as info:
        check_gradients(lambda x: batch_all_with_a_wrong_element(x, BATCH.labels, 0.2), BATCH.embeddings)
    assert "kink" not in str(info.value) and "element (1, 0)" in str(info.value)


def test_assert_matches_reference_passes_equal_results_and_names_the_item_that_differs():
    def loss_and_gradient(module, fallback):
        return lambda b: module.semihard_triplet(b.embeddings, b.labels, b.margin, fallback)

    assert_matches_reference(loss_and_gradient(numpy_ref, "easiest"), loss_and_gradient(references, "easiest"),
                             max_examples=30)
    # identity 0 at 0 and 3, identity 1 at 1 and 2: anchor 0 has no semi-hard negative, the fallbacks differ
    fallback_matters = st.just(TripletBatch(np.array([[0.0], [3.0], [1.0], [2.0]]), np.array([0, 0, 1, 1]), 0.5))
    with pytest.raises(AssertionError, match="item 0 of the result differs from the reference"):
        assert_matches_reference(loss_and_gradient(numpy_ref, "hardest"), loss_and_gradient(references, "easiest"),
                                 fallback_matters)


def test_assert_matches_reference_compares_integers_exactly_and_shapes_first():
    with pytest.raises(AssertionError, match="shape"):
        assert_matches_reference(lambda b: np.zeros(2), lambda b: np.zeros(3), max_examples=5)
    with pytest.raises(AssertionError, match="a tuple of 2"):
        assert_matches_reference(lambda b: 1, lambda b: (1, 2), max_examples=5)
    with pytest.raises(AssertionError, match="differs"):
        assert_matches_reference(lambda b: np.array([1]), lambda b: np.array([2]), max_examples=5)
    assert_matches_reference(lambda b: [], lambda b: np.zeros((0, 3), np.int64), max_examples=5)  # both empty


def test_it_cannot_run_under_given():
    @settings(max_examples=1, database=None)
    @given(exact_batches())
    def nested(batch):
        assert_matches_reference(lambda b: 0, lambda b: 0, max_examples=1)

    with pytest.raises(Exception, match="Nesting @given"):
        nested()


def test_tinyface_imports_without_hypothesis_and_testing_says_how_to_get_it():
    code = """
import sys
sys.modules["hypothesis"] = None  # as if it were not installed
import tinyface
assert "tinyface.testing" not in sys.modules
try:
    import tinyface.testing
except ImportError as error:
    print(error)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'pip install "tinyface[test]"' in done.stdout
