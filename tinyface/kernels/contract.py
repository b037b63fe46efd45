"""The triplet-kernel contract: what every backend computes, on what shapes and dtypes, and by which rules.

Open this file first; then numpy_ref.py, the reference that implements it in plain NumPy. Every backend module
(numpy_ref, numba_cpu, numba_cuda, cupy_cuda with the CUDA C of pairwise.cu and triplet.cu) has the functions of
`Backend` below, with the same parameters, and returns the same numbers as numpy_ref within float32 rounding.
tests/kernels/test_contract.py checks the signatures, shapes and dtypes; tests/kernels/test_kernels.py the numbers.

Shapes and dtypes
    x        (B, D) embeddings, float32 (to train) or float64 (to check); every float result has x's dtype
    labels   (B,) integer identities; a and b are positives of each other when labels[a] == labels[b], a != b
    d        (B, B) squared distances; pairs (T, 2) int64 [anchor, positive]; negatives (T,) int64
    losses are Python floats, counts Python ints; arrays come back where x was (NumPy, or CuPy on "cupy")

Squared distances (FaceNet's d(a, b) = ||f(a) - f(b)||^2)
    d_ij = max(||x_i||^2 + ||x_j||^2 - 2 x_i.x_j, 0),   d_ii = 0 exactly
    The expansion turns the work into one matrix product, but it subtracts nearly equal numbers when x_i is close
    to x_j, so rounding can leave d_ij slightly below 0: the clamp removes that rounding error (a distance is never
    negative) and the diagonal is set, not computed. The backward pass is the gradient of the exact ||x_i - x_j||^2.

Hinges
    A hinge is computed as (d_ap + margin) - d_an, with the margin first cast to x's dtype, so every backend rounds
    it alike; the triplet (a, p, n) is active exactly when the hinge is > 0, i.e. d_an < d_ap + margin.

Ties: the lowest index wins
    Among equal candidates (the farthest positive, the nearest negative, the semi-hard negative, a fallback) every
    backend picks the one with the lowest index: scan upwards and compare strictly, or use a stable sort / argmin.

Semi-hard selection (FaceNet, section 3.2)
    For every anchor-positive pair (a, p), in row-major order: the negative n with the smallest d_an among those
    with d_an > d_ap (strictly). When there is none, the fallback decides; its code is what compiled kernels take:
        "easiest" (FALLBACK_EASIEST = 0): the anchor's largest d_an (the TensorFlow Addons rule)
        "hardest" (FALLBACK_HARDEST = 1): the anchor's smallest d_an
        "skip"    (FALLBACK_SKIP = 2):    drop the pair
    Pairs of an anchor without any negative are dropped. The codes live here only: the Python backends import them,
    and cupy_cuda passes them to the CUDA C compiler as -DFALLBACK_EASIEST=0 ... (see its compile_options).

Nothing to learn from
    When a batch has no valid (or no kept) triplet, a loss is 0.0 with an all-zero gradient and zero counts.

Memory: O(B^2), never B^3
    Each loss is a sum of w_ij d_ij over the distance matrix, so a backend builds one weight matrix W (B, B) and
    returns pairwise_sqdist_backward(x, W) as the gradient (see numpy_ref), or, for a loss with few triplets,
    adds each triplet's terms to the gradient directly (numba_cpu's semi-hard and batch-hard). Extra memory is a
    few B x B matrices; no backend allocates a B x B x B array (B = 1,800, FaceNet's batch, would need 47 GB in
    float64).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

__all__ = [
    "FALLBACKS",
    "FALLBACK_CODES",
    "FALLBACK_EASIEST",
    "FALLBACK_HARDEST",
    "FALLBACK_SKIP",
    "Array",
    "Backend",
    "Fallback",
    "fallback_code",
]

Array = Any  # a numpy.ndarray; a cupy.ndarray on the "cupy" backend
Fallback = Literal["easiest", "hardest", "skip"]

FALLBACK_EASIEST, FALLBACK_HARDEST, FALLBACK_SKIP = 0, 1, 2
FALLBACK_CODES: dict[str, int] = {"easiest": FALLBACK_EASIEST, "hardest": FALLBACK_HARDEST, "skip": FALLBACK_SKIP}
FALLBACKS: tuple[str, ...] = tuple(FALLBACK_CODES)  # ("easiest", "hardest", "skip")


def fallback_code(fallback: str) -> int:
    """The integer code of a semi-hard fallback, as the compiled kernels take it."""
    if fallback not in FALLBACK_CODES:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    return FALLBACK_CODES[fallback]


class Backend(Protocol):
    """The functions of a backend module (a module satisfies a Protocol by defining them, PEP 544). A GPU backend
    also has `is_available() -> bool`: whether it can run here."""

    def pairwise_sqdist(self, x: Array) -> Array:
        """x (B, D) -> d (B, B) of x's dtype: d_ij = max(||x_i||^2 + ||x_j||^2 - 2 x_i.x_j, 0), d_ii = 0."""
        ...

    def pairwise_sqdist_backward(self, x: Array, grad_d: Array) -> Array:
        """x (B, D), grad_d (B, B) -> (B, D) of x's dtype: the gradient of sum_ij grad_d_ij ||x_i - x_j||^2,
        dL/dx_k = 2 sum_j (G_kj + G_jk)(x_k - x_j)."""
        ...

    def semihard_negatives(self, d: Array, labels: Array, fallback: str = "easiest") -> tuple[Array, Array]:
        """d (B, B), labels (B,) -> (pairs (T, 2) int64, negatives (T,) int64): per anchor-positive pair, row-major,
        the semi-hard negative or the fallback's (see the module docstring); a ValueError for an unknown fallback."""
        ...

    def semihard_triplet(
        self, x: Array, labels: Array, margin: float, fallback: str = "easiest"
    ) -> tuple[float, Array, int]:
        """(loss, grad_x (B, D), number of kept pairs T): loss = mean over the T pairs of
        max((d_ap + margin) - d_an, 0), n from semihard_negatives."""
        ...

    def batch_all_triplet(self, x: Array, labels: Array, margin: float) -> tuple[float, Array, float, int]:
        """(loss, grad_x (B, D), fraction of valid triplets that are active, number active N): loss = the mean over
        the N active triplets of (d_ap + margin) - d_an; N is a constant in the gradient."""
        ...

    def batch_hard_triplet(self, x: Array, labels: Array, margin: float, soft: bool = False) -> tuple[float, Array]:
        """(loss, grad_x (B, D)): per anchor with a positive and a negative, its farthest positive p* and nearest
        negative n*; z = (d_ap* + margin) - d_an*; the mean of max(z, 0), or of softplus(z) when `soft`."""
        ...
