"""The exercise checks of lesson 3, the CNN: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

from tinyface.teaching.exercises import lesson03_cnn as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_conv_output_size(unanswered)) == "unanswered"
    assert status(ex.check_conv_parameter_count(unanswered)) == "unanswered"
    assert status(ex.check_max_pool(lambda x: None)) == "unanswered"


def test_check_conv_output_size(status):
    assert status(ex.check_conv_output_size(lambda h, k, s, p: (h + 2 * p - k) // s + 1)) == "right"
    assert "off by one" in ex.check_conv_output_size(lambda h, k, s, p: (h + 2 * p - k) // s).message
    assert "round down" in ex.check_conv_output_size(lambda h, k, s, p: (h + 2 * p - k) / s + 1).message


def test_check_conv_parameter_count(status):
    assert status(ex.check_conv_parameter_count(lambda i, o, k, b: o * i * k * k + (o if b else 0))) == "right"
    assert "every input channel" in ex.check_conv_parameter_count(lambda i, o, k, b: o * k * k).message
    assert "bias" in ex.check_conv_parameter_count(lambda i, o, k, b: o * i * k * k).message


def test_check_max_pool(status):
    def right(x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    def average(x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))

    assert status(ex.check_max_pool(right)) == "right"
    assert "average" in ex.check_max_pool(average).message
    assert status(ex.check_max_pool(lambda x: x[:, :, ::2, ::2])) == "wrong"
