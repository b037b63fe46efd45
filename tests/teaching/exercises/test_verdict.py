"""A check returns a Verdict and never raises: a missing answer is not answered yet, a wrong one or an error in the
student's code is wrong with a hint."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises.verdict import SYMBOLS, Verdict, _array, _call, _check, _number, _Wrong


@_check
def check_double(fn) -> str:
    got = _number(_call(fn, 3), "fn(3)")
    if got != 6:
        raise _Wrong(f"fn(3) should be 6, got {got:g}")
    return "fn(x) = 2x"


def test_a_verdict_is_true_only_when_right_and_shows_its_symbol():
    for state, symbol in SYMBOLS.items():
        verdict = Verdict(state, "a message")
        assert bool(verdict) == (state == "right")
        assert repr(verdict) == str(verdict) == f"{symbol} a message"


def test_a_check_tells_right_wrong_and_unanswered(status, unanswered):
    assert status(check_double(lambda x: 2 * x)) == "right"
    wrong = check_double(lambda x: x + 2)
    assert status(wrong) == "wrong" and "should be 6, got 5" in wrong.message
    assert status(check_double(unanswered)) == "unanswered"
    assert status(check_double(None)) == "unanswered"
    assert status(check_double(...)) == "unanswered"


def test_the_students_errors_are_wrong_answers_not_crashes(status):
    for fn, said in [(lambda x: 1 / 0, "ZeroDivisionError"), (42, "expected a function"), (lambda x: np.nan, "nan"),
                     (lambda x: [1, 2], "one number")]:
        verdict = check_double(fn)
        assert status(verdict) == "wrong" and said in verdict.message, verdict


def test_an_array_answer_must_have_its_shape(status):
    @_check
    def check_zeros(answer) -> str:
        _array(answer, (2, 3), "the zeros")
        return "shape (2, 3)"

    assert status(check_zeros(np.zeros((2, 3)))) == "right"
    assert "shape (2, 3), got (3, 2)" in check_zeros(np.zeros((3, 2))).message
