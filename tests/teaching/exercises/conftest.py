"""The two helpers every exercise-check test uses, as fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tinyface.teaching.exercises.verdict import SYMBOLS, Verdict


@pytest.fixture
def status() -> Callable[[Verdict], str]:
    """status(verdict): the verdict's status ("right", "wrong" or "unanswered"), after checking that it is a
    Verdict shown with its symbol."""

    def status(verdict: Verdict) -> str:
        assert isinstance(verdict, Verdict)
        assert repr(verdict).startswith(SYMBOLS[verdict.status])
        return verdict.status

    return status


@pytest.fixture
def unanswered() -> Callable[..., None]:
    """An exercise's placeholder function: it raises NotImplementedError, as the open cells do."""

    def unanswered(*args):
        raise NotImplementedError

    return unanswered
