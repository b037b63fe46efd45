"""The exercise checks of lesson 3, the CNN: right answers accepted, wrong ones rejected with a hint,
placeholders reported as not answered yet."""

from __future__ import annotations

import numpy as np

from tinyface.teaching.exercises import lesson03_cnn as ex


def test_placeholders_are_not_answered_yet(status, unanswered):
    assert status(ex.check_im2col(unanswered)) == "unanswered"
    assert status(ex.check_conv_parameter_count(unanswered)) == "unanswered"
    assert status(ex.check_max_pool(lambda x: None)) == "unanswered"


def im2col(x, k, stride, padding):
    n, c, _, _ = x.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    cols = np.empty((c, k, k, n, ho, wo), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = x[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride].transpose(1, 0, 2, 3)
    return cols.reshape(c * k * k, n * ho * wo)


def im2col_by_pixels(x, k, stride, padding):  # slow but right: a column per output pixel
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, w = x.shape
    columns = [x[b, :, y : y + k, z : z + k].reshape(-1)
               for b in range(n) for y in range(0, h - k + 1, stride) for z in range(0, w - k + 1, stride)]
    return np.stack(columns, axis=1)


def test_check_im2col(status):
    assert status(ex.check_im2col(im2col)) == "right"
    assert status(ex.check_im2col(im2col_by_pixels)) == "right"


def test_check_im2col_rejects_missing_padding_stride_and_transposition():
    assert "pad x" in ex.check_im2col(lambda x, k, s, p: im2col(x, k, s, 0)).message
    assert "stride" in ex.check_im2col(lambda x, k, s, p: im2col(x, k, 1, p)).message
    assert "transposed" in ex.check_im2col(lambda x, k, s, p: im2col(x, k, s, p).T).message


def test_check_im2col_rejects_the_wrong_row_and_column_orders():
    def rows_kkc(x, k, stride, padding):
        c = x.shape[1]
        return im2col(x, k, stride, padding).reshape(c, k, k, -1).transpose(1, 2, 0, 3).reshape(c * k * k, -1)

    def columns_yxn(x, k, stride, padding):
        n, c, h, w = x.shape
        ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
        cols = im2col(x, k, stride, padding).reshape(-1, n, ho, wo)
        return cols.transpose(0, 2, 3, 1).reshape(c * k * k, -1)

    def patches_transposed(x, k, stride, padding):  # each patch flattened as (C, j, i)
        c = x.shape[1]
        return im2col(x, k, stride, padding).reshape(c, k, k, -1).transpose(0, 2, 1, 3).reshape(c * k * k, -1)

    assert "(channel, i, j)" in ex.check_im2col(rows_kkc).message
    assert "(image, y, x)" in ex.check_im2col(columns_yxn).message
    assert "wrong order" in ex.check_im2col(patches_transposed).message


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
