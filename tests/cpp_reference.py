"""Scalar transcriptions of TFLite's and gemmlowp's fixed-point primitives with plain Python
ints, one value at a time: the independent reference the fixed-point and kernel tests compare
the vectorized code against."""

from __future__ import annotations

import math

INT_MAX, INT_MIN = (1 << 31) - 1, -(1 << 31)


def wrap32(x: int) -> int:
    """``static_cast<int32_t>`` of a wider value."""
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def srdhm(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul."""
    if a == b == INT_MIN:
        return INT_MAX
    ab = a * b
    nudged = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return abs(nudged) // (1 << 31) * (1 if nudged >= 0 else -1)


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT."""
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def mbqm(x: int, m: int, shift: int, rounding: str = "double") -> int:
    """MultiplyByQuantizedMultiplier: the double-rounding build, or with ``rounding="single"``
    TFLITE_SINGLE_ROUNDING's ``(x·m + 2^(t−1)) >> t``, ``t = 31 − shift``."""
    if rounding == "double":
        return rdbpot(srdhm(wrap32(x * (1 << max(shift, 0))), m), max(-shift, 0))
    total = 31 - shift
    return wrap32((x * m + (1 << (total - 1))) >> total)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier."""
    if real == 0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = math.floor(q * (1 << 31) + 0.5)
    if q_fixed == 1 << 31:
        q_fixed, shift = q_fixed // 2, shift + 1
    return (0, 0) if shift < -31 else (q_fixed, shift)
