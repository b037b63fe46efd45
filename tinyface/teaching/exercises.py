"""Checks for the lessons' exercises: each one tells a student whether an answer is right, and if not, why not.

A check takes the student's answer (a value, a function or a class) and whatever it needs to work out the right
answer itself, and returns a `Verdict`, shown in a notebook as one line:

    ✓ right: ...        ✗ wrong: a hint        … not answered yet

A check never raises on a wrong or missing answer, so a lesson runs top to bottom with its exercises open. An
answer is "not answered yet" while it is the placeholder: None, `...`, or a function that raises
NotImplementedError. Any other error in the student's code is reported as a wrong answer with the error.

Lesson 01 (the similarity function): check_squared_distance, check_far_frr, check_identify.
Lesson 02 (autograd): check_anchor_gradient, check_numerical_gradient, check_function.
Lesson 03 (the CNN): check_conv_output_size, check_conv_parameter_count, check_max_pool.
Lesson 07 (measuring): check_auc, check_threshold_at_far, check_pairwise_precision_recall.
Lesson 04 (Siamese networks): check_contrastive_loss, check_balanced_pairs, check_push_distance.
Lesson 05 (the triplet loss): check_triplet_loss, check_collapsed_loss, check_triplet_gradients.
Lesson 06 (choosing triplets): check_semihard_triplets, check_batch_hard, check_fraction_active.
Lesson 08 (GPU kernels): check_pairwise_sqdist, check_cuda_sqdist_kernel, check_cubic_memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SYMBOLS = {"right": "✓", "wrong": "✗", "unanswered": "…"}


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: status is "right", "wrong" or "unanswered"; true only when right."""

    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == "right"

    def __repr__(self) -> str:
        return f"{SYMBOLS[self.status]} {self.message}"

    __str__ = __repr__


class _Unanswered(Exception):
    pass


class _Wrong(Exception):
    pass


def _check(check: Callable[..., str]) -> Callable[..., Verdict]:
    """Turn a function that returns a success message (or raises _Wrong / _Unanswered) into a check."""

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> Verdict:
        try:
            message = check(*args, **kwargs)
        except _Unanswered:
            return Verdict("unanswered", "not answered yet: replace the placeholder with your answer, then rerun")
        except _Wrong as wrong:
            return Verdict("wrong", f"not yet right: {wrong}")
        return Verdict("right", f"right: {message}")

    return run


def _given(answer: Any) -> Any:
    if answer is None or answer is Ellipsis:
        raise _Unanswered
    return answer


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run the student's function: NotImplementedError means not answered, any other error is a wrong answer."""
    _given(fn)
    if not callable(fn):
        raise _Wrong(f"expected a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise _Unanswered from None
    except Exception as error:  # the student's bug, reported rather than raised
        raise _Wrong(f"your code raised {type(error).__name__}: {error}") from None


def _number(value: Any, what: str) -> float:
    _given(value)
    try:
        number = float(np.asarray(getattr(value, "data", value)).reshape(()))
    except (TypeError, ValueError):
        raise _Wrong(f"{what} should be one number, got {type(value).__name__} {np.shape(value)}") from None
    if not np.isfinite(number):
        raise _Wrong(f"{what} is {number}")
    return number


def _pair_of_numbers(answer: Any, what: str) -> tuple[float, float]:
    _given(answer)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise _Wrong(f"give {what} as a pair of numbers, e.g. (0.1, 0.2)")
    return _number(answer[0], what.split(", ")[0]), _number(answer[1], what.split(", ")[-1])


def _array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    _given(value)
    array = np.asarray(getattr(value, "data", value), dtype=np.float64)
    if array.shape != shape:
        raise _Wrong(f"{what} should have shape {shape}, got {array.shape}")
    return array


# -- lesson 01: the similarity function --------------------------------------------------------------------------


@_check
def check_squared_distance(fn: Callable[[np.ndarray, np.ndarray], float]) -> str:
    """fn(img1, img2): the squared L2 distance between the two images' pixel vectors, each flattened and
    scaled to unit length (so the answer lies in [0, 4])."""
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 1, 64, 64), dtype=np.uint8)
    cases = [(a, b), (a, a), (b, a), (a, (a // 2).astype(np.uint8)), (a, 255 - a)]
    for x, y in cases:
        u = x.reshape(-1).astype(np.float64)
        v = y.reshape(-1).astype(np.float64)
        unit_u, unit_v = u / np.linalg.norm(u), v / np.linalg.norm(v)
        expected = float(np.sum((unit_u - unit_v) ** 2))
        got = _number(_call(fn, x.copy(), y.copy()), "d(img1, img2)")
        if np.isclose(got, expected, rtol=1e-4, atol=1e-5):
            continue
        if np.isclose(got, np.sqrt(expected), rtol=1e-4, atol=1e-5):
            raise _Wrong("that is the distance, not its square: FaceNet's d is the squared L2 distance")
        if np.isclose(got, np.sum((u - v) ** 2), rtol=1e-3) or got > 4 + 1e-6:
            raise _Wrong("scale each pixel vector to unit length first (x / ||x||), so that d lies in [0, 4]")
        raise _Wrong(f"for one pair of test images the answer is {expected:.6f}, you gave {got:.6f}")
    return "d(img1, img2) = ||x1/||x1|| - x2/||x2|| ||^2, 0 for identical images and at most 4"


@_check
def check_far_frr(answer: tuple[float, float], distances: np.ndarray, same: np.ndarray, tau: float) -> str:
    """answer = (FAR, FRR) when pairs with distance <= tau are accepted as the same person."""
    far, frr = _pair_of_numbers(answer, "FAR, FRR")
    d, s = np.asarray(distances), np.asarray(same, dtype=bool)
    accepted = d <= tau
    expected = float(np.mean(accepted[~s])), float(np.mean(~accepted[s]))
    if np.allclose((far, frr), expected, atol=1e-9):
        return f"FAR = {expected[0]:.4f} (different pairs accepted), FRR = {expected[1]:.4f} (same pairs rejected)"
    if np.allclose((frr, far), expected, atol=1e-9):
        raise _Wrong("you swapped them: FAR counts different-person pairs accepted, FRR same-person pairs rejected")
    if np.isclose(far, expected[0]) and np.isclose(frr, 1 - expected[1]):
        raise _Wrong("FAR is right; FRR is the fraction of same pairs REJECTED (d > tau), not accepted")
    if np.isclose(far, float(np.mean(accepted & ~s))) or np.isclose(frr, float(np.mean(~accepted & s))):
        raise _Wrong("divide by the number of different pairs (for FAR) or same pairs (for FRR), not by all pairs")
    raise _Wrong(f"expected FAR, FRR near ({expected[0]:.3f}, {expected[1]:.3f}); accept a pair when d <= tau")


@_check
def check_identify(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], int]) -> str:
    """fn(probe (D,), gallery (K, D), gallery_labels (K,), tau): the label of the nearest gallery face when its
    squared distance is <= tau, else -1 (an unknown person: open-set identification)."""
    gallery = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.8, 0.0]])
    labels = np.array([7, 3, 9, 3])
    cases = [  # probe, tau, expected label
        (np.array([0.9, 0.1, 0.0]), 0.5, 7),
        (np.array([0.1, 0.2, 0.95]), 0.5, 9),
        (np.array([0.55, 0.85, 0.0]), 0.5, 3),
        (np.array([0.58, 0.0, -0.8]), 0.5, -1),  # nearest is too far: unknown
        (np.array([0.58, 0.0, -0.8]), 2.0, 7),
    ]
    for probe, tau, expected in cases:
        got = _call(fn, probe / np.linalg.norm(probe), gallery.copy(), labels.copy(), tau)
        _given(got)
        try:
            got = int(got)
        except (TypeError, ValueError):
            raise _Wrong(f"return one integer label (or -1), got {got!r}") from None
        if got == expected:
            continue
        distances = np.sum((gallery - probe / np.linalg.norm(probe)) ** 2, axis=1)
        if got == int(np.argmin(distances)) and expected != -1:
            raise _Wrong("you returned the index of the nearest gallery face; return its label, gallery_labels[i]")
        if expected == -1:
            raise _Wrong("a probe whose nearest gallery face is farther than tau is unknown: return -1")
        if got == -1:
            raise _Wrong("you rejected a probe whose nearest gallery face is within tau (accept when d <= tau)")
        raise _Wrong(f"expected label {expected}, got {got}: take the gallery face with the smallest distance")
    return "nearest gallery face, accepted only within tau: 1:K identification with an open door for strangers"


# -- lesson 02: autograd -------------------------------------------------------------------------------------


@_check
def check_anchor_gradient(fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> str:
    """fn(a, p, n): the gradient with respect to a of  L = ||a - p||^2 - ||a - n||^2 + alpha."""
    rng = np.random.default_rng(2)
    for _ in range(3):
        a, p, n = rng.standard_normal((3, 5))
        got = _array(_call(fn, a.copy(), p.copy(), n.copy()), (5,), "dL/da")
        expected = 2 * (n - p)
        if np.allclose(got, expected, atol=1e-6):
            continue
        if np.allclose(got, -expected, atol=1e-6):
            raise _Wrong("the sign is flipped: d/da ||a - p||^2 = 2 (a - p), and the negative term flips its own")
        if np.allclose(got, expected / 2, atol=1e-6):
            raise _Wrong("a factor of 2 is missing: d/dx x^2 = 2x")
        if np.allclose(got, 2 * (a - p), atol=1e-6):
            raise _Wrong("that is the gradient of the first term only; add the gradient of -||a - n||^2")
        raise _Wrong("differentiate each squared distance: d/da ||a - b||^2 = 2 (a - b); then simplify")
    return "dL/da = 2 (a - p) - 2 (a - n) = 2 (n - p): it pulls a towards p and pushes it from n"


@_check
def check_numerical_gradient(fn: Callable[[Callable[[np.ndarray], float], np.ndarray, float], np.ndarray]) -> str:
    """fn(f, x, eps): the central-difference estimate of the gradient of a scalar function f at the float64
    array x, (f(x + eps e_k) - f(x - eps e_k)) / (2 eps) for every element k; x must be left unchanged."""

    def f(x: np.ndarray) -> float:
        return float(np.sum(np.sin(x) * x**2))

    x = np.array([[0.3, -1.2, 2.0], [0.7, 1.5, -0.4]])
    original = x.copy()
    got = _array(_call(fn, f, x, 1e-5), x.shape, "the gradient")
    if not np.array_equal(x, original):
        raise _Wrong("x was changed: put each element back after nudging it (or nudge a copy)")
    expected = np.cos(x) * x**2 + 2 * x * np.sin(x)
    error = float(np.max(np.abs(got - expected)))
    if error < 1e-7:
        return f"central differences agree with the exact gradient to {error:.1e}"
    if error < 1e-3:
        raise _Wrong(f"close (error {error:.1e}) but not central: use (f(x + eps) - f(x - eps)) / (2 eps)")
    raise _Wrong(f"the estimate is off by up to {error:.2g}; nudge one element at a time, by +eps and by -eps")


@_check
def check_function(function: type, reference: Callable[[np.ndarray], np.ndarray]) -> str:
    """function: a tinyface Function subclass of one input; its forward must match `reference` on arrays and
    its backward must pass gradcheck."""
    from tinyface.gradcheck import gradcheck
    from tinyface.tensor import Tensor

    _given(function)
    x = np.random.default_rng(3).standard_normal((4, 3))
    x[np.abs(x) < 0.05] = 0.5  # keep away from kinks, where finite differences are unreliable
    out = _call(lambda: function.apply(Tensor(x.copy())))
    got = _array(out, x.shape, "the forward output")
    if not np.allclose(got, reference(x), atol=1e-6):
        raise _Wrong("the forward pass does not compute the function; check it before the backward")
    _call(gradcheck, lambda t: function.apply(t), Tensor(x.copy(), requires_grad=True))  # GradcheckError: wrong
    return "forward matches and backward passes gradcheck: a new op for the engine"


# -- lesson 03: the CNN ----------------------------------------------------------------------------------------


@_check
def check_conv_output_size(fn: Callable[[int, int, int, int], int]) -> str:
    """fn(h, k, stride, padding): the output height of a convolution (or pooling) of an h-pixel input."""
    cases = [(64, 3, 1, 1), (64, 3, 1, 0), (64, 2, 2, 0), (7, 3, 2, 0), (8, 3, 2, 1), (5, 5, 1, 2), (10, 4, 3, 1)]
    for h, k, s, p in cases:
        expected = (h + 2 * p - k) // s + 1
        got = _call(fn, h, k, s, p)
        _given(got)
        if got == expected and float(got).is_integer():
            continue
        if np.isclose(float(got), (h + 2 * p - k) / s + 1):
            raise _Wrong(f"for h={h}, k={k}, stride={s}, padding={p}: a window cannot start half-way; round down (//)")
        if got == (h + 2 * p - k) // s:
            raise _Wrong("off by one: the first window counts too, (h + 2p - k) // s + 1")
        raise _Wrong(f"for h={h}, k={k}, stride={s}, padding={p} the output has {expected} rows, you gave {got}")
    return "H_out = (H + 2p - k) // s + 1"


@_check
def check_conv_parameter_count(fn: Callable[[int, int, int, bool], int]) -> str:
    """fn(in_channels, out_channels, k, bias): how many numbers a k x k Conv2d layer learns."""
    from tinyface import nn

    for c_in, c_out, k, bias in [(1, 32, 3, False), (32, 64, 3, False), (3, 16, 5, True), (64, 128, 1, True)]:
        layer = nn.Conv2d(c_in, c_out, k, bias=bias, rng=np.random.default_rng(0))
        expected = sum(p.size for p in layer.parameters())
        got = _call(fn, c_in, c_out, k, bias)
        _given(got)
        if got == expected:
            continue
        if got == c_out * k * k + (c_out if bias else 0):
            raise _Wrong("each filter spans every input channel: a filter has in_channels * k * k weights")
        if bias and got == c_in * c_out * k * k:
            raise _Wrong("with bias=True each output channel also has one bias")
        raise _Wrong(f"Conv2d({c_in}, {c_out}, {k}, bias={bias}) has {expected} parameters, you gave {got}")
    return "out_channels * (in_channels * k * k) weights, plus out_channels biases if any"


@_check
def check_max_pool(fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """fn(x): 2 x 2 max pooling with stride 2 of a NumPy array (N, C, H, W) with even H and W."""
    from tinyface.nn import functional as F
    from tinyface.tensor import Tensor

    x = np.random.default_rng(4).standard_normal((2, 3, 6, 8)).astype(np.float32)
    expected = F.max_pool2d(Tensor(x), 2).numpy()
    got = _array(_call(fn, x.copy()), expected.shape, "the pooled array")
    if np.allclose(got, expected):
        return "each output is the largest of its 2 x 2 window"
    if np.allclose(got, x.reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5))):
        raise _Wrong("that is average pooling; take the max of each window")
    raise _Wrong("the values differ from F.max_pool2d: reshape to (N, C, H/2, 2, W/2, 2), then max over axes 3, 5")


# -- lesson 07: measuring --------------------------------------------------------------------------------------


@_check
def check_auc(answer: float, far: np.ndarray, tar: np.ndarray) -> str:
    """answer: the area under the ROC curve (tar against far) by the trapezoid rule."""
    got = _number(answer, "AUC")
    far, tar = np.asarray(far, dtype=np.float64), np.asarray(tar, dtype=np.float64)
    expected = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))
    if np.isclose(got, expected, atol=1e-9):
        return f"AUC = {expected:.4f}: the chance that a random same pair is closer than a random different pair"
    if np.isclose(got, 1 - expected, atol=1e-9):
        raise _Wrong("that is 1 - AUC: integrate TAR (the y axis) over FAR (the x axis)")
    if np.isclose(got, float(np.sum(np.diff(far) * tar[1:])), atol=1e-9) or np.isclose(
        got, float(np.sum(np.diff(far) * tar[:-1])), atol=1e-9
    ):
        raise _Wrong("rectangles, not trapezoids: average the two heights, (tar[i] + tar[i+1]) / 2")
    raise _Wrong(f"expected about {expected:.3f}: sum over steps of width (far[i+1] - far[i]) x mean height")


@_check
def check_threshold_at_far(answer: float, distances: np.ndarray, same: np.ndarray, far_target: float) -> str:
    """answer: a threshold tau whose FAR on these pairs is at most far_target and which accepts as many
    different pairs as that target allows: any tau from the last allowed different-pair distance up to (not
    including) the first forbidden one is right, since all of them give the most VAL the target allows."""
    tau = _number(answer, "tau")
    d, s = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    far = float(np.mean(d[~s] <= tau))
    val = float(np.mean(d[s] <= tau))
    different = np.sort(d[~s])
    allowed = int(np.floor(far_target * len(different)))  # different pairs we may accept
    limit = np.inf if allowed >= len(different) else different[allowed]  # tau must stay below this one
    best_val = float(np.mean(d[s] < limit))
    if far > far_target:
        raise _Wrong(f"at tau = {tau:.4f} FAR is {far:.4f} > {far_target}: the threshold is too large")
    if (allowed == 0 and val < best_val) or (allowed > 0 and tau < different[allowed - 1]):
        raise _Wrong(f"FAR is within target, but VAL is only {val:.3f}: the target allows accepting {allowed} "
                     f"different pairs, so raise tau to at least the {allowed}-th smallest different-pair distance")
    return f"FAR = {far:.4f} <= {far_target}, VAL = {val:.3f} (up to {best_val:.3f} just below the next one)"


@_check
def check_pairwise_precision_recall(answer: tuple[float, float], clusters: np.ndarray, labels: np.ndarray) -> str:
    """answer = (precision, recall) of a clustering, counted over pairs of distinct images i < j:
    precision = same person among pairs put in one cluster; recall = put in one cluster among same-person pairs."""
    precision, recall = _pair_of_numbers(answer, "precision, recall")
    clusters, labels = np.asarray(clusters), np.asarray(labels)
    i, j = np.triu_indices(len(labels), k=1)
    together, same = clusters[i] == clusters[j], labels[i] == labels[j]
    expected = (float(np.mean(same[together])) if together.any() else 1.0, float(np.mean(together[same])))
    if np.allclose((precision, recall), expected, atol=1e-9):
        return f"pairwise precision {expected[0]:.3f}, recall {expected[1]:.3f}"
    if np.allclose((recall, precision), expected, atol=1e-9):
        raise _Wrong("you swapped them: precision asks 'of the pairs I merged, how many are one person?'")
    ii, jj = np.meshgrid(np.arange(len(labels)), np.arange(len(labels)), indexing="ij")
    together_all = clusters[ii] == clusters[jj]
    same_all = labels[ii] == labels[jj]
    with_self = (float(np.mean(same_all[together_all])), float(np.mean(together_all[same_all])))
    if np.allclose((precision, recall), with_self, atol=1e-9):
        raise _Wrong("count each pair of distinct images once (i < j); an image paired with itself says nothing")
    raise _Wrong(f"expected about ({expected[0]:.3f}, {expected[1]:.3f}); count pairs i < j")


__all__ = [
    "Verdict",
    "check_anchor_gradient",
    "check_auc",
    "check_conv_output_size",
    "check_conv_parameter_count",
    "check_far_frr",
    "check_function",
    "check_identify",
    "check_max_pool",
    "check_numerical_gradient",
    "check_pairwise_precision_recall",
    "check_squared_distance",
    "check_threshold_at_far",
]


# -- lesson 04: Siamese networks and the contrastive loss --------------------------------------------------------


@_check
def check_contrastive_loss(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]) -> str:
    """fn(x1, x2, same, margin): the mean over pairs of d (same person) or max(margin - sqrt(d), 0)^2 (different
    people), with d = ||x1 - x2||^2 per row: tinyface.losses.contrastive_loss in plain NumPy."""
    rng = np.random.default_rng(40)
    x1, x2 = rng.standard_normal((2, 12, 4)) * 0.4
    same = np.arange(12) % 3 == 0
    margin = 1.0
    d = np.sum((x1 - x2) ** 2, axis=1)
    expected = float(np.mean(np.where(same, d, np.maximum(margin - np.sqrt(d), 0) ** 2)))
    got = _number(_call(fn, x1.copy(), x2.copy(), same.copy(), margin), "the loss")
    if np.isclose(got, expected, rtol=1e-6):
        return f"L = {expected:.4f}: same pairs pulled together by d, different pairs pushed out to the margin"
    if np.isclose(got, float(np.mean(np.where(~same, d, np.maximum(margin - np.sqrt(d), 0) ** 2))), rtol=1e-6):
        raise _Wrong("same and different are swapped: a same-person pair costs d, a different pair the hinge")
    if np.isclose(got, float(np.mean(np.where(same, d, np.maximum(margin - d, 0) ** 2))), rtol=1e-6):
        raise _Wrong("the hinge uses the plain distance sqrt(d), not d: max(margin - sqrt(d), 0)^2")
    if np.isclose(got, float(np.mean(np.where(same, d, np.maximum(margin - np.sqrt(d), 0)))), rtol=1e-6):
        raise _Wrong("square the hinge: max(margin - sqrt(d), 0)^2")
    if np.isclose(got, float(np.sum(np.where(same, d, np.maximum(margin - np.sqrt(d), 0) ** 2))), rtol=1e-6):
        raise _Wrong("that is the sum over pairs; take the mean (as contrastive_loss does by default)")
    raise _Wrong(f"expected {expected:.4f}, got {got:.4f}: d = sum((x1 - x2)**2, axis=1), one per pair")


@_check
def check_balanced_pairs(fn: Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]) -> str:
    """fn(labels, n, rng) -> (i, j): 2n index pairs, the first n of the same person (i != j), the last n of
    different people, drawn at random with rng."""
    labels = np.repeat(np.arange(6), 5)
    draws = []
    for seed in (0, 1):
        answer = _call(fn, labels.copy(), 20, np.random.default_rng(seed))
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise _Wrong("return two index arrays, (i, j)")
        i, j = (np.asarray(a) for a in answer)
        if i.shape != (40,) or j.shape != (40,) or i.dtype.kind not in "iu" or j.dtype.kind not in "iu":
            raise _Wrong(f"i and j should be integer arrays of shape (40,) for n = 20, got {i.shape} and {j.shape}")
        if i.min() < 0 or j.min() < 0 or max(i.max(), j.max()) >= len(labels):
            raise _Wrong("the indices must point into labels")
        if np.any(labels[i[:20]] != labels[j[:20]]):
            raise _Wrong("the first n pairs must show the same person: labels[i] == labels[j]")
        if np.any(i[:20] == j[:20]):
            raise _Wrong("a same-person pair needs two different photos (i != j); an image paired with itself "
                         "teaches nothing")
        if np.any(labels[i[20:]] == labels[j[20:]]):
            raise _Wrong("the last n pairs must show two different people")
        draws.append((i, j))
    if all(np.array_equal(a, b) for a, b in zip(draws[0], draws[1], strict=True)):
        raise _Wrong("two different generators gave the same pairs: draw them with rng")
    return "n same-person pairs and n different-person pairs: a balanced diet for a Siamese network"


@_check
def check_push_distance(answer: float, margin: float) -> str:
    """answer: the squared distance d = ||f(x1) - f(x2)||^2 beyond which a different-person pair costs nothing."""
    got = _number(answer, "d")
    if np.isclose(got, margin**2):
        return f"d >= margin^2 = {margin**2:g}: the margin is a plain distance, sqrt(d) >= {margin:g}"
    if np.isclose(got, margin):
        raise _Wrong("the hinge is max(margin - sqrt(d), 0): it vanishes when sqrt(d) reaches the margin; "
                     "what is d then?")
    if np.isclose(got, 0):
        raise _Wrong("at d = 0 a different pair costs the most, margin^2; find where the hinge reaches 0")
    raise _Wrong("solve margin - sqrt(d) = 0 for d")


# -- lesson 05: the triplet loss ---------------------------------------------------------------------------------


@_check
def check_triplet_loss(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], float]) -> str:
    """fn(a, p, n, alpha) for embeddings (T, D): FaceNet's loss, the SUM over triplets of
    max(||a - p||^2 - ||a - n||^2 + alpha, 0)."""
    rng = np.random.default_rng(50)
    a, p, n = rng.standard_normal((3, 16, 5)) * 0.5
    alpha = 0.2
    d_ap, d_an = np.sum((a - p) ** 2, axis=1), np.sum((a - n) ** 2, axis=1)
    hinge = d_ap - d_an + alpha
    expected = float(np.sum(np.maximum(hinge, 0)))
    got = _number(_call(fn, a.copy(), p.copy(), n.copy(), alpha), "the loss")
    if np.isclose(got, expected, rtol=1e-6):
        return f"L = {expected:.4f}: only the triplets whose negative is not yet alpha farther than the positive count"
    if np.isclose(got, expected / len(a), rtol=1e-6):
        raise _Wrong("that is the mean; the paper's formula sums over the triplets")
    if np.isclose(got, float(np.sum(hinge)), rtol=1e-6):
        raise _Wrong("the hinge is missing: max(..., 0), so that easy triplets cost 0 instead of a reward")
    if np.isclose(got, float(np.sum(np.maximum(d_an - d_ap + alpha, 0))), rtol=1e-6):
        raise _Wrong("positive and negative are swapped: the loss should grow when the POSITIVE is far away")
    sqrt_hinge = np.sqrt(d_ap) - np.sqrt(d_an) + alpha
    if np.isclose(got, float(np.sum(np.maximum(sqrt_hinge, 0))), rtol=1e-6):
        raise _Wrong("use squared distances, ||a - p||^2, as the paper does (no square root)")
    raise _Wrong(f"expected {expected:.4f}, got {got:.4f}: sum over rows of max(d_ap - d_an + alpha, 0)")


@_check
def check_collapsed_loss(answer: float, num_triplets: int, alpha: float) -> str:
    """answer: the (summed) triplet loss of `num_triplets` triplets when f maps every face to the same point."""
    got = _number(answer, "the loss")
    expected = num_triplets * alpha
    if np.isclose(got, expected):
        return (f"{num_triplets} x alpha = {expected:g}: d_ap = d_an = 0, so every hinge is exactly alpha; "
                "with alpha = 0 the collapse would cost nothing")
    if np.isclose(got, 0):
        raise _Wrong("0 is the answer without a margin; with alpha > 0 what is max(0 - 0 + alpha, 0)?")
    if np.isclose(got, alpha):
        raise _Wrong("that is one triplet's loss; the paper's loss is a sum over all of them")
    raise _Wrong("all embeddings equal means d_ap = d_an = 0 for every triplet: add up the hinges")


@_check
def check_triplet_gradients(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple]) -> str:
    """fn(a, p, n, alpha) for one triplet of vectors (D,): (dL/da, dL/dp, dL/dn) of
    L = max(||a - p||^2 - ||a - n||^2 + alpha, 0)."""
    rng = np.random.default_rng(51)
    alpha = 0.2
    cases = []
    for _ in range(2):
        a = rng.standard_normal(4)
        cases.append((a, a + 0.1 * rng.standard_normal(4), a + 0.1 * rng.standard_normal(4)))  # active (close n)
        cases.append((a, a + 0.05 * rng.standard_normal(4), a + 3 + rng.standard_normal(4)))  # inactive: easy
    for a, p, n in cases:
        answer = _call(fn, a.copy(), p.copy(), n.copy(), alpha)
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 3:
            raise _Wrong("return three gradients, (grad_a, grad_p, grad_n)")
        got = [_array(g, (4,), name) for g, name in zip(answer, ("grad_a", "grad_p", "grad_n"), strict=True)]
        active = np.sum((a - p) ** 2) - np.sum((a - n) ** 2) + alpha > 0
        expected = [2 * (n - p), 2 * (p - a), 2 * (a - n)] if active else [np.zeros(4)] * 3
        if all(np.allclose(g, e, atol=1e-6) for g, e in zip(got, expected, strict=True)):
            continue
        if not active:
            raise _Wrong("for an easy triplet (d_an > d_ap + alpha) the hinge is 0 and flat: all three gradients "
                         "are 0")
        for g, e, name in zip(got, expected, ("grad_a", "grad_p", "grad_n"), strict=True):
            if np.allclose(g, -e, atol=1e-6):
                raise _Wrong(f"{name} has the wrong sign")
            if not np.allclose(g, e, atol=1e-6):
                raise _Wrong(f"{name} is not right for an active triplet: differentiate ||a - p||^2 - ||a - n||^2")
    return "grad_a = 2(n - p), grad_p = 2(p - a), grad_n = 2(a - n) when active, all 0 when not; they sum to 0"


# -- lesson 06: choosing triplets --------------------------------------------------------------------------------


def _triplet_set(answer: Any, what: str) -> set[tuple[int, int, int]]:
    _given(answer)
    array = np.asarray(answer)
    if array.size == 0:
        return set()
    if array.ndim != 2 or array.shape[1] != 3:
        raise _Wrong(f"{what}: return an integer array (T, 3) of rows [anchor, positive, negative], got {array.shape}")
    return {tuple(int(v) for v in row) for row in array}


def _mining_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(4), 3)
    x = rng.standard_normal((12, 3)) + 1.2 * rng.standard_normal((4, 3))[labels]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = np.sum((x[:, None] - x[None]) ** 2, axis=2)
    return d, labels


@_check
def check_semihard_triplets(fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray]) -> str:
    """fn(d, labels, margin): every valid triplet (a, p, n) with d_ap < d_an < d_ap + margin, as (T, 3)."""
    from tinyface.mining import all_triplets, semihard_triplets

    for seed in (60, 61):
        d, labels = _mining_batch(seed)
        expected = {tuple(int(v) for v in row) for row in semihard_triplets(d, labels, 0.5)}
        got = _triplet_set(_call(fn, d.copy(), labels.copy(), 0.5), "the semi-hard triplets")
        if got == expected:
            continue
        valid = {tuple(int(v) for v in row) for row in all_triplets(labels)}
        if not got <= valid:
            a, p, n = next(iter(got - valid))
            raise _Wrong(f"({a}, {p}, {n}) is not a valid triplet: p must be another photo of a's person, n "
                         "someone else")
        extra, missing = got - expected, expected - got
        if extra and all(d[a, n] <= d[a, p] for a, p, n in extra):
            raise _Wrong("some of yours are hard (d_an <= d_ap): a semi-hard negative is FARTHER than the positive")
        if extra and all(d[a, n] >= d[a, p] + 0.5 for a, p, n in extra):
            raise _Wrong("some of yours are easy (d_an >= d_ap + margin): their hinge is 0, they teach nothing")
        raise _Wrong(f"{len(missing)} semi-hard triplets missing and {len(extra)} extra; test "
                     "d[a, p] < d[a, n] < d[a, p] + margin for every valid (a, p, n)")
    return "d_ap < d_an < d_ap + margin: negatives farther than the positive, yet inside the margin"


@_check
def check_batch_hard(fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> str:
    """fn(d, labels) -> (positives (B,), negatives (B,)): for each anchor its farthest positive and nearest
    negative."""
    from tinyface.mining import batch_hard_triplets

    for seed in (62, 63):
        d, labels = _mining_batch(seed)
        expected = batch_hard_triplets(d, labels)
        answer = _call(fn, d.copy(), labels.copy())
        _given(answer)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise _Wrong("return two index arrays, (positives, negatives), one entry per anchor")
        pos = _array(answer[0], (len(labels),), "positives").astype(np.int64)
        neg = _array(answer[1], (len(labels),), "negatives").astype(np.int64)
        if np.array_equal(pos, expected[:, 1]) and np.array_equal(neg, expected[:, 2]):
            continue
        anchors = np.arange(len(labels))
        if np.any(pos == anchors):
            raise _Wrong("an anchor was chosen as its own positive: leave the diagonal out (d[a, a] = 0)")
        if np.any(labels[pos] != labels) or np.any(labels[neg] == labels):
            raise _Wrong("a positive must share the anchor's label, a negative must not: mask by labels first")
        if not np.array_equal(pos, expected[:, 1]):
            raise _Wrong("the hardest positive is the FARTHEST photo of the same person (argmax of d over positives)")
        raise _Wrong("the hardest negative is the NEAREST photo of anyone else (argmin of d over negatives)")
    return "per anchor: the farthest positive and the nearest negative, the hardest triplet the batch holds"


@_check
def check_fraction_active(fn: Callable[[np.ndarray, np.ndarray, float], float]) -> str:
    """fn(d, labels, margin): the fraction of all valid triplets whose hinge d_ap - d_an + margin is > 0."""
    from tinyface.mining import all_triplets

    for seed, margin in ((64, 0.2), (65, 0.6)):
        d, labels = _mining_batch(seed)
        t = all_triplets(labels)
        hinge = d[t[:, 0], t[:, 1]] - d[t[:, 0], t[:, 2]] + margin
        expected = float(np.mean(hinge > 0))
        got = _number(_call(fn, d.copy(), labels.copy(), margin), "the fraction")
        if np.isclose(got, expected, atol=1e-9):
            continue
        if np.isclose(got, float(np.sum(hinge > 0))):
            raise _Wrong("that is the number of active triplets; divide by the number of valid triplets")
        if np.isclose(got, float(np.mean(hinge < 0))) or np.isclose(got, 1 - expected):
            raise _Wrong("that is the fraction of INACTIVE (easy) triplets")
        if np.isclose(got, float(np.mean(d[t[:, 0], t[:, 2]] < d[t[:, 0], t[:, 1]]))):
            raise _Wrong("that counts only the hard triplets (d_an < d_ap); semi-hard ones, within the margin, "
                         "are active too")
        raise _Wrong(f"expected {expected:.4f}, got {got:.4f}: among valid (a, p, n), the share with "
                     "d_ap - d_an + margin > 0")
    return "the share of valid triplets that still have something to teach; it falls as training succeeds"


# -- lesson 08: the hot path as kernels ---------------------------------------------------------------------------


@_check
def check_pairwise_sqdist(fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """fn(x): squared L2 distances (B, B) of the rows of x (B, D), never negative, exactly 0 on the diagonal."""
    from tinyface.kernels import numpy_ref

    rng = np.random.default_rng(80)
    x = rng.standard_normal((9, 6)).astype(np.float32)
    x[3] = x[5]  # two equal rows: rounding in the expanded formula can give a tiny negative distance
    x = x * np.float32(30)
    expected = numpy_ref.pairwise_sqdist(x.astype(np.float64))
    got = _array(_call(fn, x.copy()), (9, 9), "the distances")
    if np.any(got < 0):
        raise _Wrong("some distances are negative: rounding in ||x||^2 + ||y||^2 - 2 x.y; clamp at 0")
    if np.any(np.diagonal(got) != 0):
        raise _Wrong("d[i, i] must be exactly 0 (set the diagonal after the arithmetic)")
    if np.allclose(got, np.sqrt(expected), rtol=1e-4, atol=1e-3):
        raise _Wrong("those are plain distances; the hot path uses squared ones (no square root)")
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-2):
        raise _Wrong(f"largest difference from the reference: {np.max(np.abs(got - expected)):.3g}")
    return "the same numbers as numpy_ref.pairwise_sqdist, clamped at 0 with an exact zero diagonal"


@_check
def check_cuda_sqdist_kernel(kernel: Any, threads: int = 8) -> str:
    """kernel: a @cuda.jit function kernel(x, d) in which the thread at cuda.grid(2) = (j, i) writes d[i, j] (squared
    distance of rows i and j, 0 on the diagonal); launched on a grid larger than B x B, so it must guard."""
    import math

    from numba import cuda

    from tinyface.kernels import numpy_ref

    _given(kernel)
    if not hasattr(kernel, "__getitem__"):
        raise _Wrong("decorate the function with @cuda.jit, so that it can be launched as kernel[blocks, threads]")
    x = np.random.default_rng(81).standard_normal((11, 4))
    blocks = (math.ceil(11 / threads), math.ceil(11 / threads))
    d_device = cuda.to_device(np.full((11, 11), -1.0))
    try:
        _call(lambda: kernel[blocks, (threads, threads)](cuda.to_device(x), d_device))
    except _Wrong as wrong:
        if "IndexError" in str(wrong) or "out of bounds" in str(wrong):
            raise _Wrong("the grid is larger than B x B: guard with `if i < d.shape[0] and j < d.shape[1]:` "
                         f"({wrong})") from None
        raise
    got = d_device.copy_to_host()
    expected = numpy_ref.pairwise_sqdist(x)
    if np.any(got == -1.0):
        raise _Wrong("some entries were never written: each thread (i, j) writes d[i, j]")
    if np.allclose(got, expected.T, atol=1e-9) and not np.allclose(got, expected, atol=1e-9):
        raise _Wrong("rows and columns are swapped")
    if not np.allclose(got, expected, atol=1e-9):
        raise _Wrong(f"largest difference from the reference: {np.max(np.abs(got - expected)):.3g}")
    return "one thread per entry of d, guarded at the edges: the shape of every kernel in numba_cuda.py"


@_check
def check_cubic_memory(answer: float, batch: int) -> str:
    """answer: bytes taken by a float32 tensor of shape (B, B, B) (every d_ap - d_an of a batch) for B = batch."""
    got = _number(answer, "bytes")
    expected = 4 * batch**3
    if np.isclose(got, expected):
        return (f"4 B^3 = {expected / 2**30:.2f} GiB, against {4 * batch**2 / 2**20:.0f} MiB for the B x B "
                "distances: why the kernels never build it")
    if np.isclose(got, batch**3):
        raise _Wrong("that counts entries; a float32 takes 4 bytes each")
    if np.isclose(got, 4 * batch**2) or np.isclose(got, batch**2):
        raise _Wrong("that is the B x B distance matrix; the triplet tensor has a third axis")
    if np.isclose(got, 8 * batch**3):
        raise _Wrong("that is float64; float32 takes 4 bytes")
    raise _Wrong("count B x B x B entries of 4 bytes")


__all__ += [
    "check_balanced_pairs",
    "check_batch_hard",
    "check_collapsed_loss",
    "check_contrastive_loss",
    "check_cuda_sqdist_kernel",
    "check_cubic_memory",
    "check_fraction_active",
    "check_pairwise_sqdist",
    "check_push_distance",
    "check_semihard_triplets",
    "check_triplet_gradients",
    "check_triplet_loss",
]
