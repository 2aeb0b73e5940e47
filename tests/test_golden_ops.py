"""The reference ops against loop-by-loop transcriptions of TFLite's reference kernels
(``reference_integer_ops::FullyConnected`` and ``ConvPerChannel``)."""

from __future__ import annotations

import numpy as np
import pytest

from quantizer import (AccumulatorOverflowError, QuantizerError, accumulator_range,
                       check_accumulator, conv2d, fully_connected, multiply_by_quantized_multiplier,
                       quantize_multipliers)
from quantizer.golden import conv_output_size


def _requant_scalar(acc, m0, shift, zy, lo, hi, rounding):
    v = multiply_by_quantized_multiplier(int(acc), int(m0), int(shift), rounding) + zy
    return min(max(v, lo), hi)


def _fc_loops(x, w, bias, zx, zw, m0, shift, zy, lo, hi, rounding):
    out = np.zeros((x.shape[0], w.shape[0]), dtype=np.int64)
    for b in range(x.shape[0]):
        for c in range(w.shape[0]):
            acc = sum((int(x[b, k]) - zx) * (int(w[c, k]) - zw) for k in range(x.shape[1]))
            acc += int(bias[c])
            out[b, c] = _requant_scalar(acc, m0[c], shift[c], zy, lo, hi, rounding)
    return out


def _conv_loops(x, w, bias, zx, m0, shift, zy, stride, dilation, padding, rounding):
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    oh, pad_top = conv_output_size(h, kh, stride, dilation, padding)
    ow, pad_left = conv_output_size(wd, kw, stride, dilation, padding)
    out = np.zeros((n, oh, ow, cout), dtype=np.int64)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for c in range(cout):
                    acc = 0
                    for fy in range(kh):
                        for fx in range(kw):
                            iy = oy * stride - pad_top + dilation * fy
                            ix = ox * stride - pad_left + dilation * fx
                            if not (0 <= iy < h and 0 <= ix < wd):
                                continue  # the reference kernel skips padding taps
                            for ci in range(cin):
                                acc += int(w[c, fy, fx, ci]) * (int(x[b, iy, ix, ci]) - zx)
                    acc += int(bias[c])
                    out[b, oy, ox, c] = _requant_scalar(acc, m0[c], shift[c], zy, -128, 127,
                                                        rounding)
    return out


def _random_layer(rng, k, c):
    w = rng.integers(-127, 128, size=(c, k), dtype=np.int8)
    bias = rng.integers(-20000, 20000, size=c).astype(np.int32)
    m0, shift = quantize_multipliers(rng.uniform(1e-4, 2e-2, size=c))
    return w, bias, m0, shift


@pytest.mark.parametrize("rounding", ["single", "double"])
def test_fully_connected_matches_reference_loops(seed, rounding):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(5, 23), dtype=np.int8)
    w, bias, m0, shift = _random_layer(rng, 23, 7)
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
    got = fully_connected(x, w, bias, input_zero_point=zx, m0=m0, shift=shift,
                          output_zero_point=zy, act_min=-100, act_max=90, rounding=rounding)
    assert got.dtype == np.int8
    expected = _fc_loops(x, w, bias, zx, 0, m0, shift, zy, -100, 90, rounding)
    np.testing.assert_array_equal(got, expected)


def test_fully_connected_uint8_with_weight_zero_point(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(4, 9), dtype=np.uint8)
    w = rng.integers(0, 256, size=(3, 9), dtype=np.uint8)
    bias = rng.integers(-5000, 5000, size=3).astype(np.int32)
    m0, shift = quantize_multipliers([0.003, 0.004, 0.0005])
    got = fully_connected(x, w, bias, input_zero_point=7, weight_zero_point=250, m0=m0,
                          shift=shift, output_zero_point=128, dtype="uint8")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, _fc_loops(x, w, bias, 7, 250, m0, shift, 128, 0, 255,
                                                 "single"))


def test_per_tensor_multiplier_broadcasts():
    x = np.full((1, 4), 10, dtype=np.int8)
    w = np.ones((3, 4), dtype=np.int8)
    out = fully_connected(x, w, None, input_zero_point=0, m0=1 << 30, shift=0,
                          output_zero_point=0)  # multiplier 0.5 for every channel
    np.testing.assert_array_equal(out, [[20, 20, 20]])


@pytest.mark.parametrize("stride, dilation, padding", [
    (1, 1, "SAME"), (2, 1, "SAME"), (1, 2, "SAME"), (2, 1, "VALID"), (1, 2, "VALID"),
])
def test_conv2d_matches_reference_loops(seed, stride, dilation, padding):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(2, 7, 6, 3), dtype=np.int8)
    w = rng.integers(-127, 128, size=(4, 3, 3, 3), dtype=np.int8)
    bias = rng.integers(-3000, 3000, size=4).astype(np.int32)
    m0, shift = quantize_multipliers(rng.uniform(1e-3, 5e-3, size=4))
    zx, zy = int(rng.integers(-128, 128)), int(rng.integers(-20, 20))
    got = conv2d(x, w, bias, input_zero_point=zx, m0=m0, shift=shift, output_zero_point=zy,
                 stride=stride, dilation=dilation, padding=padding)
    expected = _conv_loops(x, w, bias, zx, m0, shift, zy, stride, dilation, padding, "double")
    np.testing.assert_array_equal(got, expected)


def test_same_padding_counts_as_real_zero():
    """A 3x3 box filter on a 1x1 image whose value equals the zero point gives exactly zero."""
    x = np.full((1, 1, 1, 1), 17, dtype=np.int8)
    w = np.ones((1, 3, 3, 1), dtype=np.int8)
    out = conv2d(x, w, None, input_zero_point=17, m0=1 << 30, shift=1, output_zero_point=0)
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == 0


def test_default_rounding_follows_tflite_per_operator():
    """Accumulator 1 times 0.25: fully-connected defaults to single rounding (0.25 → 0),
    convolution to double rounding (SRDHM gives 0.5 → 1, then the shift keeps 1)."""
    m0, shift = 1 << 30, -1  # 0.25
    x = np.array([[1]], dtype=np.int8)
    w = np.array([[1]], dtype=np.int8)
    fc = fully_connected(x, w, None, input_zero_point=0, m0=m0, shift=shift, output_zero_point=0)
    conv = conv2d(x.reshape(1, 1, 1, 1), w.reshape(1, 1, 1, 1), None, input_zero_point=0,
                  m0=m0, shift=shift, output_zero_point=0)
    assert int(fc[0, 0]) == 0  # single rounding: round(0.25) = 0
    assert int(conv[0, 0, 0, 0]) == 1  # double rounding: 0.5 after SRDHM, then up to 1


@pytest.mark.parametrize("call, message", [
    (lambda: fully_connected(np.zeros((2, 3), np.int8), np.zeros((4, 5), np.int8), None,
                             input_zero_point=0, m0=1, shift=0, output_zero_point=0),
     r"do not chain"),
    (lambda: fully_connected(np.zeros((2, 3), np.int8), np.zeros((4, 3), np.int8), None,
                             input_zero_point=200, m0=1, shift=0, output_zero_point=0),
     r"input zero point must lie in \[-128, 127\]"),
    (lambda: fully_connected(np.zeros((2, 3), np.int8), np.zeros((4, 3), np.int8), None,
                             input_zero_point=0, m0=1, shift=0, output_zero_point=0,
                             act_min=10, act_max=5),
     r"activation bounds \[10, 5\]"),
    (lambda: fully_connected(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.int8), None,
                             input_zero_point=0, m0=1, shift=0, output_zero_point=0),
     r"input must be an integer array"),
    (lambda: conv2d(np.zeros((1, 2, 2, 1), np.int8), np.zeros((1, 3, 3, 1), np.int8), None,
                    input_zero_point=0, m0=1, shift=0, output_zero_point=0, padding="VALID"),
     r"VALID convolution needs an input of at least 3"),
    (lambda: conv2d(np.zeros((1, 2, 2, 1), np.int8), np.zeros((1, 1, 1, 1), np.int8), None,
                    input_zero_point=0, m0=1, shift=0, output_zero_point=0, padding="FULL"),
     r"padding must be 'SAME' or 'VALID'"),
    (lambda: conv2d(np.zeros((1, 2, 2, 1), np.int8), np.zeros((1, 1, 1, 1), np.int8), None,
                    input_zero_point=0, m0=1, shift=0, output_zero_point=0, stride=0),
     r"stride must be a positive int"),
])
def test_bad_op_arguments(call, message):
    with pytest.raises(QuantizerError, match=message):
        call()


def test_accumulator_range_is_exact(seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, size=(3, 40))
    bias = rng.integers(-1000, 1000, size=3)
    rng_ = accumulator_range(w, input_zero_point=5, bias=bias)
    # The extremes are reached by choosing each input at an end of its range.
    x_max = np.where(w > 0, 127, -128)
    reached = ((x_max - 5) * w).sum(axis=1) + bias
    np.testing.assert_array_equal(rng_.final_max, reached)
    x_min = np.where(w > 0, -128, 127)
    np.testing.assert_array_equal(rng_.final_min, ((x_min - 5) * w).sum(axis=1) + bias)


def test_accumulator_check_refuses_overflow():
    w = np.full((1, 1 << 17), -128)  # with zx = 127: 2^17 products of 255·128 < 2^32
    with pytest.raises(AccumulatorOverflowError, match=r"dense1: accumulators can reach 33 bits"):
        check_accumulator(w, input_zero_point=127, layer="dense1")
    ok = check_accumulator(np.full((1, 1 << 10), -128), input_zero_point=0)
    assert ok.bits_needed() <= 32
    with pytest.raises(AccumulatorOverflowError, match="has 20"):
        check_accumulator(np.full((1, 1 << 10), -128), input_zero_point=0, acc_bits=20)
