"""The fixed-point primitives against public references.

- TFLite ``tensorflow/lite/kernels/internal/quantization_util_test.cc``: QuantizeMultiplier
  (smaller/greater than one, underflow, the array test) and MultiplyByQuantizedMultiplierInt32.
- gemmlowp ``test_fixedpoint.cc``: RoundingDivideByPOT equals round-half-away-from-zero of
  x / 2^e, checked here with exact rational arithmetic.
- Property tests: the vectorized numpy versions against scalar references written directly
  from the C++ (plain Python ints, no numpy).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from cpp_reference import mbqm, srdhm
from hypothesis import given, settings
from hypothesis import strategies as st

from quantizer import (INT32_MAX, INT32_MIN, QuantizerError, multiply_by_quantized_multiplier,
                       quantize_multiplier, quantize_multipliers, rounding_divide_by_pot,
                       rounding_shift_right, saturating_rounding_doubling_high_mul)

# --- TFLite quantization_util_test.cc ---------------------------------------------------------

QUANTIZE_MULTIPLIER_VECTORS = [
    # QuantizeMultiplierSmallerThanOneExp
    (0.25, (1073741824, -1)),
    (0.50 - 5e-9, (2147483627, -1)),
    (0.50 - 1e-10, (1073741824, 0)),
    (0.50, (1073741824, 0)),
    (0.75, (1610612736, 0)),
    (1 - 1e-9, (2147483646, 0)),
    # QuantizeMultiplierGreaterThanOne
    (1 + 1e-11, (1073741824, 1)),
    (1.25, (1342177280, 1)),
    (1.50, (1610612736, 1)),
    (1.75, (1879048192, 1)),
    (2 - 1e-9, (2147483647, 1)),
    (2 - 1e-11, (1073741824, 2)),
    (2.0, (1073741824, 2)),
    # QuantizeMultiplierUnderflow (ldexp of float32 values)
    (math.ldexp(1.0, -31), (1073741824, -30)),
    (math.ldexp(1.0, -32), (1073741824, -31)),
    (math.ldexp(float(np.float32(0.99)), -32), (0, 0)),
    (math.ldexp(1.0, -33), (0, 0)),
    # QuantizeMultiplierArray, non-negative entries
    (0.0, (0, 0)), (0.125, (1073741824, -2)), (0.5, (1073741824, 0)), (1.0, (1073741824, 1)),
    (4.0, (1073741824, 3)),
]


@pytest.mark.parametrize("real, expected", QUANTIZE_MULTIPLIER_VECTORS)
def test_quantize_multiplier_tflite_vectors(real, expected):
    assert quantize_multiplier(real) == expected


def test_quantize_multipliers_vectorized_matches_scalar():
    reals = [0.0, 0.125, 0.3, 1.7, 2 - 1e-9, math.ldexp(1.0, -33)]
    m0, shift = quantize_multipliers(reals)
    assert [(int(a), int(b)) for a, b in zip(m0, shift)] == [quantize_multiplier(r) for r in reals]


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), -float("inf")])
def test_quantize_multiplier_rejects_bad_values(bad):
    with pytest.raises(QuantizerError, match="multiplier must be"):
        quantize_multiplier(bad)


MULTIPLY_VECTORS = [  # MultiplyByQuantizedMultiplierInt32, non-negative multipliers
    (0, 0.1, 0),
    (1, 0.0, 0),
    (10000, 0.00097656, 10),
    (-10000, 0.00097656, -10),
    (INT32_MIN, 0.00001, -21475),
    (INT32_MAX, 0.00001, 21475),
]


@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("x, real, expected", MULTIPLY_VECTORS)
def test_multiply_by_quantized_multiplier_tflite_vectors(rounding, x, real, expected):
    m0, shift = quantize_multiplier(real)
    assert multiply_by_quantized_multiplier(x, m0, shift, rounding) == expected


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_multiply_maximum_x_and_multiplier(rounding):
    """TFLite: x = m0 = INT32_MAX, shift = −3 gives round(x·m0 / 2^34), and −x gives −that."""
    x = m0 = INT32_MAX
    expected = _round_half_away(Fraction(x * m0, 1 << 34))
    assert multiply_by_quantized_multiplier(x, m0, -3, rounding) == expected
    assert multiply_by_quantized_multiplier(-x, m0, -3, rounding) == -expected


def test_double_and_single_rounding_differ_as_documented():
    """x = 1 times 0.25: double rounding rounds twice (0.5 → 1), single rounding once (→ 0)."""
    m0, shift = quantize_multiplier(0.25)
    assert multiply_by_quantized_multiplier(1, m0, shift, "double") == 1
    assert multiply_by_quantized_multiplier(1, m0, shift, "single") == 0


# --- gemmlowp test_fixedpoint.cc: RoundingDivideByPOT ---------------------------------------

def _round_half_away(value: Fraction) -> int:
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def _edge_values() -> list[int]:
    values = {INT32_MIN, INT32_MAX, 0}
    for i in range(31):
        for d in (-2, -1, 0, 1, 2):
            for sign in (1, -1):
                v = sign * (1 << i) + d
                if INT32_MIN <= v <= INT32_MAX:
                    values.add(v)
    return sorted(values)


def test_rounding_divide_by_pot_is_round_half_away_from_zero(seed):
    rng = np.random.default_rng(seed)
    xs = _edge_values() + [int(v) for v in rng.integers(INT32_MIN, INT32_MAX, 2000, endpoint=True)]
    x_arr = np.array(xs, dtype=np.int64)
    for exponent in range(32):
        got = rounding_divide_by_pot(x_arr, exponent)
        expected = [_round_half_away(Fraction(x, 1 << exponent)) for x in xs]
        assert got.tolist() == expected, f"exponent {exponent}"


def test_srdhm_saturates_only_min_times_min_and_rounds_ties_up():
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX) == -INT32_MAX
    # a·b = ±2^30 is exactly ±0.5 after the doubling high multiply: ties go toward +inf.
    assert saturating_rounding_doubling_high_mul(1 << 15, 1 << 15) == 1
    assert saturating_rounding_doubling_high_mul(-(1 << 15), 1 << 15) == 0


# --- the vectorized code against scalar references written from the C++ (cpp_reference) -------

int32s = st.integers(INT32_MIN, INT32_MAX)
m0s = st.one_of(st.integers(1 << 30, INT32_MAX), st.just(0), st.integers(0, INT32_MAX))
shifts = st.integers(-31, 30)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(int32s, int32s), min_size=1, max_size=20))
def test_srdhm_vectorized_matches_scalar(pairs):
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    assert saturating_rounding_doubling_high_mul(a, b).tolist() == \
        [srdhm(x, y) for x, y in pairs]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["double", "single"]),
       st.lists(st.tuples(int32s, m0s, shifts), min_size=1, max_size=20))
def test_multiply_vectorized_matches_scalar(rounding, cases):
    x, m0, shift = (np.array(column, dtype=np.int64) for column in zip(*cases))
    assert multiply_by_quantized_multiplier(x, m0, shift, rounding).tolist() == \
        [mbqm(*case, rounding) for case in cases]


@settings(max_examples=200, deadline=None)
@given(st.lists(int32s, min_size=1, max_size=8), st.lists(shifts, min_size=8, max_size=8))
def test_per_channel_parameters_broadcast(xs, channel_shifts):
    """x of shape (N, C) with (C,) parameters: each column uses its own channel's multiplier."""
    x = np.array(xs, dtype=np.int64)[:, None].repeat(8, axis=1)
    m0 = np.arange(8, dtype=np.int64) * 12345 + (1 << 30)
    shift = np.array(channel_shifts, dtype=np.int64)
    got = multiply_by_quantized_multiplier(x, m0, shift, "double")
    for c in range(8):
        assert got[:, c].tolist() == [mbqm(v, int(m0[c]), int(shift[c]), "double") for v in xs]


@settings(max_examples=300, deadline=None)
@given(int32s, shifts)
def test_pow2_equals_single_for_power_of_two_multipliers(x, shift):
    single = multiply_by_quantized_multiplier(x, 1 << 30, shift, "single")
    assert multiply_by_quantized_multiplier(x, 1 << 30, shift, "pow2") == single
    assert rounding_shift_right(x, 1 - shift) == single


def test_pow2_is_not_double():
    """Shift-only rounding (ties up) differs from double rounding (ties away from zero)."""
    m0, shift = quantize_multiplier(0.25)  # -2 · 0.25 = -0.5 exactly: a tie
    assert multiply_by_quantized_multiplier(-2, m0, shift, "pow2") == 0
    assert multiply_by_quantized_multiplier(-2, m0, shift, "double") == -1


# --- bad arguments -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(x=1, m0=1 << 30, shift=31, rounding="double"), r"shift must lie in \[-31, 30\]"),
    (dict(x=1, m0=1 << 30, shift=-32, rounding="single"), r"shift must lie in \[-31, 30\]"),
    (dict(x=1 << 31, m0=1 << 30, shift=0, rounding="double"), r"x must lie in"),
    (dict(x=1.5, m0=1 << 30, shift=0, rounding="double"), r"x must hold integers"),
    (dict(x=1, m0=-5, shift=0, rounding="single"), r"m0 must lie in \[0,"),
    (dict(x=1, m0=1 << 30, shift=0, rounding="half-even"), r"unknown rounding mode"),
    (dict(x=1, m0=(1 << 30) + 1, shift=0, rounding="pow2"), r"power-of-two multipliers"),
    (dict(x=1, m0=1 << 30, shift=2 ** 70, rounding="double"), r"shift must lie in"),
])
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(QuantizerError, match=message):
        multiply_by_quantized_multiplier(**kwargs)


def test_rounding_divide_by_pot_rejects_out_of_range_exponent():
    with pytest.raises(QuantizerError, match=r"exponent must lie in \[0, 31\]"):
        rounding_divide_by_pot(5, 32)
