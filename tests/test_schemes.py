"""Quantization schemes against their defining formulas and TFLite's ChooseQuantizationParams
vectors (quantization_util_test.cc)."""

from __future__ import annotations

import numpy as np
import pytest

from quantizer import QuantizerError, quantize_multiplier
from quantizer.schemes import choose_qparams


@pytest.mark.parametrize("rmin, rmax, scale, zero_point", [
    (-10.0, 30.0, 0.156863, 64),    # ChooseQuantizationParams
    (0.0, 30.0, 0.117647, 0),       # ...ZeroPointOnMinBoundary
    (-10.0, 0.0, 0.039216, 255),    # ...ZeroPointOnMaxBoundary
])
def test_asymmetric_matches_tflite_vectors(rmin, rmax, scale, zero_point):
    qp = choose_qparams(rmin, rmax, scheme="asymmetric", dtype="uint8")
    assert abs(float(qp.scale) - scale) < 1e-5
    assert int(qp.zero_point) == zero_point


def test_asymmetric_represents_real_zero_exactly(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        rmin, rmax = -rng.uniform(0, 10), rng.uniform(0, 10)
        qp = choose_qparams(rmin, rmax, dtype="int8")
        assert qp.dequantize(qp.quantize(0.0)) == 0.0
        assert -128 <= int(qp.zero_point) <= 127


def test_symmetric_is_restricted_and_odd():
    qp = choose_qparams(-3.0, 2.0, scheme="symmetric")
    assert int(qp.zero_point) == 0 and float(qp.scale) == pytest.approx(3.0 / 127)
    q = qp.quantize(np.array([-3.0, -3.5, 3.0, 1.234]))
    assert q.min() == -127  # never -128, even past the range
    assert qp.quantize(-1.234) == -qp.quantize(1.234)


def test_pow2_scales_make_power_of_two_multipliers(seed):
    rng = np.random.default_rng(seed)
    s_in, s_out = (float(choose_qparams(-v, v, scheme="pow2").scale)
                   for v in rng.uniform(0.1, 9, 2))
    lo, hi = -rng.uniform(0.01, 1, 4), rng.uniform(0.01, 1, 4)
    s_w = choose_qparams(lo, hi, scheme="pow2", axis=0)
    for s in s_w.scale:
        m0, _shift = quantize_multiplier(s_in * s / s_out)
        assert m0 == 1 << 30
    needed = np.maximum(-lo, hi) / 127  # the range still fits, at most 2x coarser
    assert np.all((s_w.scale >= needed) & (s_w.scale < 2 * needed))


def test_per_channel_quantize_uses_each_channels_scale():
    w = np.array([[1.0, -1.0], [100.0, -40.0]])  # channel axis 0
    qp = choose_qparams(w.min(axis=1), w.max(axis=1), scheme="symmetric", axis=0)
    np.testing.assert_array_equal(qp.quantize(w), [[127, -127], [127, -51]])


def test_rounding_is_half_away_from_zero():
    qp = choose_qparams(-127.0, 127.0, scheme="symmetric")  # scale exactly 1
    np.testing.assert_array_equal(qp.quantize([0.5, -0.5, 1.5, -2.5]), [1, -1, 2, -3])


@pytest.mark.parametrize("call, message", [
    (lambda: choose_qparams(0.0, 0.0), r"single point at 0 .* zero scale"),
    (lambda: choose_qparams(float("nan"), 1.0), r"NaN or inf"),
    (lambda: choose_qparams(2.0, 1.0), r"minimum exceeds maximum"),
    (lambda: choose_qparams(-1.0, 1.0, scheme="log"), r"unknown scheme 'log'"),
    (lambda: choose_qparams(-1.0, 1.0, dtype="int4"), r"unknown data type 'int4'"),
    (lambda: choose_qparams([-1.0, -2.0], [1.0, 2.0]), r"per-channel ranges need an axis"),
    (lambda: choose_qparams(-1.0, 1.0).quantize([np.inf]), r"cannot quantize NaN"),
])
def test_bad_ranges_are_refused(call, message):
    with pytest.raises(QuantizerError, match=message):
        call()
