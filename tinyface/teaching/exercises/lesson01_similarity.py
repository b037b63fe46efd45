"""Lesson 1, the similarity function: checks for its exercises."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyface.teaching.exercises.verdict import _call, _check, _given, _number, _pair_of_numbers, _Wrong


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


@_check
def check_centred_distance(fn: Callable[[np.ndarray, np.ndarray], float]) -> str:
    """fn(img1, img2): the squared L2 distance between the two images' pixel vectors, each flattened, its mean
    subtracted, and scaled to unit length: d = ||c1/||c1|| - c2/||c2|| ||^2 with c = x - mean(x), in [0, 4]. It is
    0 for img and a * img + b (a > 0, any b): blind to brightness and contrast."""
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 1, 16, 16)).astype(np.float64)
    cases = [(a, b), (a, a + 40), (a, 0.5 * a + 60), (b, 2 * b - 30), (a, 255 - a), (b, a)]
    for x, y in cases:
        u, v = x.reshape(-1), y.reshape(-1)
        expected = float(np.sum((_unit(u - u.mean()) - _unit(v - v.mean())) ** 2))
        got = _number(_call(fn, x.copy(), y.copy()), "d(img1, img2)")
        if np.isclose(got, expected, rtol=1e-6, atol=1e-9):
            continue
        if np.isclose(got, float(np.sum((_unit(u) - _unit(v)) ** 2)), rtol=1e-6, atol=1e-9):
            raise _Wrong("that is section 3's d: it is not 0 for img and img + 40. Subtract each image's own mean "
                         "before scaling to unit length")
        if np.isclose(got, np.sqrt(expected), rtol=1e-6, atol=1e-9):
            raise _Wrong("that is the distance, not its square: FaceNet's d is the squared L2 distance")
        if np.isclose(got, float(np.sum((_unit(u) - _unit(u).mean() - _unit(v) + _unit(v).mean()) ** 2)),
                      rtol=1e-6, atol=1e-9):
            raise _Wrong("subtract the mean first, then scale to unit length: the other way round the vectors are "
                         "no longer of length 1")
        standardised = float(np.sum(((u - u.mean()) / u.std() - (v - v.mean()) / v.std()) ** 2))
        if np.isclose(got, standardised, rtol=1e-6, atol=1e-9) or got > 4 + 1e-9:
            raise _Wrong("scale each centred vector to unit LENGTH (divide by its norm), not to unit standard "
                         "deviation, so that d lies in [0, 4]")
        raise _Wrong(f"for one pair of test images the answer is {expected:.6f}, you gave {got:.6f}")
    return ("d = 2 - 2 r, with r the correlation of the two images' pixels: 0 for img and a * img + b, "
            "4 for a negative")


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
    cases = [  # probe, tau
        (np.array([0.9, 0.1, 0.0]), 0.5),
        (np.array([0.1, 0.2, 0.95]), 0.5),
        (np.array([0.55, 0.85, 0.0]), 0.5),
        (np.array([0.58, 0.0, -0.8]), 0.5),  # nearest is too far: unknown
        (np.array([0.58, 0.0, -0.8]), 2.0),
        (np.array([0.8, 0.0, 0.6]), 0.5),  # d = 0.4 <= tau, but sqrt(d) = 0.63 > tau
        (np.array([0.35, 0.0, -np.sqrt(1 - 0.35**2)]), 1.2),  # d = 1.3 > tau, but sqrt(d) = 1.14 <= tau
        (np.array([0.0, 0.0, 1.0]), 0.0),  # the very face of the gallery, d = 0 = tau exactly
    ]
    probes = [probe / np.linalg.norm(probe) for probe, _ in cases]
    taus = [tau for _, tau in cases]
    nearest = [np.sum((gallery - probe) ** 2, axis=1) for probe in probes]  # squared distances to the gallery

    def rule(accept: Callable[[float, float], bool]) -> list[int]:
        """The answers of the rule that accepts the nearest face when accept(its distance, tau)."""
        return [int(labels[d.argmin()]) if accept(d.min(), tau) else -1 for d, tau in zip(nearest, taus, strict=True)]

    expected = rule(lambda d, tau: d <= tau)
    got = []
    for probe, tau in zip(probes, taus, strict=True):
        answer = _given(_call(fn, probe.copy(), gallery.copy(), labels.copy(), tau))
        try:
            got.append(int(answer))
        except (TypeError, ValueError):
            raise _Wrong(f"return one integer label (or -1), got {answer!r}") from None
    if got == expected:
        return "nearest gallery face, accepted only within tau: 1:K identification with an open door for strangers"
    if got == rule(lambda d, tau: np.sqrt(d) <= tau):
        raise _Wrong("you compared the plain distance ||probe - g|| with tau; tau is a threshold on the SQUARED "
                     "distance d = ||probe - g||^2 (no square root)")
    if got == rule(lambda d, tau: d < tau):
        raise _Wrong("a probe exactly at d = tau must be accepted: the rule is d <= tau, not d < tau")
    d, answer, right = next(miss for miss in zip(nearest, got, expected, strict=True) if miss[1] != miss[2])
    if answer == int(np.argmin(d)) and right != -1:
        raise _Wrong("you returned the index of the nearest gallery face; return its label, gallery_labels[i]")
    if right == -1:
        raise _Wrong("a probe whose nearest gallery face is farther than tau is unknown: return -1")
    if answer == -1:
        raise _Wrong("you rejected a probe whose nearest gallery face is within tau (accept when d <= tau)")
    raise _Wrong(f"expected label {right}, got {answer}: take the gallery face with the smallest distance")


__all__ = ["check_centred_distance", "check_far_frr", "check_identify"]
