"""What every check returns, and the small helpers the lesson modules read answers with.

A check is written as a function that returns a success message and raises `_Wrong` (with a hint) or
`_Unanswered`; `_check` turns it into one that returns a `Verdict` instead, so that it never raises. The helpers
read an answer and raise one of the two when it is missing or malformed: `_given` (not the placeholder None or
`...`), `_call` (run the student's function), `_number`, `_pair_of_numbers` and `_array` (an answer of a given
shape). They are private to the package: a student calls only the lesson modules' `check_*` functions.
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


__all__ = ["SYMBOLS", "Verdict"]
