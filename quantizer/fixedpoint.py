"""Fixed-point primitives of TFLite's int8 reference kernels, bit-exact and vectorized.

Everything here follows TensorFlow Lite (``quantization_util.cc``, ``common.h``) and gemmlowp
(``fixedpoint.h``) to the bit, including what their C++ does at the edges in a release build:
int32 results wrap (two's complement) where the C++ casts a wider value down to ``int32_t``.

All functions accept Python ints or numpy integer arrays; per-channel parameters broadcast
against the data (``x`` of shape ``(..., C)`` with ``m0``/``shift`` of shape ``(C,)``).
Arrays are computed in int64, which holds every intermediate exactly: a 32×32-bit product is
below 2^62 in magnitude.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from hw.contract import POW2_M0, REQUANT_MODES, SHIFT_MAX, SHIFT_MIN

from .errors import QuantizerError

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

Rounding = Literal["double", "single", "pow2"]
#: The rounding modes, as the requantizer hardware names them.
ROUNDING_MODES: tuple[str, ...] = REQUANT_MODES

# SHIFT_MIN..SHIFT_MAX (the shift range every rounding mode accepts: single rounding needs
# 31 − shift ≥ 1, RoundingDivideByPOT an exponent of at most 31) and POW2_M0 (what
# quantize_multiplier returns for every power of two) are the hardware contract's, imported above.


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a real multiplier into ``(m0, shift)`` with ``real ≈ m0 · 2^(shift − 31)``.

    Exactly TFLite's ``QuantizeMultiplier`` (double-rounding build): ``m0`` is in
    ``[2^30, 2^31 − 1]``; a mantissa that rounds up to 2^31 is halved and the shift bumped;
    multipliers below 2^−32 (shift < −31) underflow to ``(0, 0)``; zero gives ``(0, 0)``.

    Raises :class:`QuantizerError` for negative, NaN or infinite multipliers.
    """
    real = float(real)
    if math.isnan(real) or math.isinf(real):
        raise QuantizerError(f"multiplier must be finite, got {real}")
    if real < 0:
        raise QuantizerError(
            f"multiplier must be non-negative, got {real}: scales are positive, "
            "so s_in·s_w/s_out cannot be negative")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    # TfLiteRound is std::round: half away from zero. q·2^31 is exact, and so is +0.5.
    q_fixed = math.floor(q * (1 << 31) + 0.5)
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel :func:`quantize_multiplier`: returns int64 arrays ``(m0, shift)``."""
    flat = np.asarray(reals, dtype=np.float64).reshape(-1)
    pairs = [quantize_multiplier(r) for r in flat]
    shape = np.shape(reals)
    m0 = np.array([p[0] for p in pairs], dtype=np.int64).reshape(shape)
    shift = np.array([p[1] for p in pairs], dtype=np.int64).reshape(shape)
    return m0, shift


def wrap_int32(x):
    """Two's-complement wrap to int32: what ``static_cast<int32_t>`` does to a wider value."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _as_int64(name: str, value, lo: int, hi: int) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except OverflowError:
        raise QuantizerError(f"{name} must lie in [{lo}, {hi}]") from None
    if arr.dtype == object and all(isinstance(v, int) for v in arr.flat):
        raise QuantizerError(f"{name} must lie in [{lo}, {hi}]")  # ints beyond int64
    if arr.dtype.kind not in "iu":
        raise QuantizerError(f"{name} must hold integers, got {arr.dtype} values")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr[(arr < lo) | (arr > hi)].flat[0]
        raise QuantizerError(f"{name} must lie in [{lo}, {hi}], got {bad}")
    return arr.astype(np.int64)


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul: ``round(a·b / 2^31)`` on int32.

    Ties round toward +∞ (the nudge is ``2^30`` for non-negative products, ``1 − 2^30``
    otherwise, followed by C++'s truncating division); the only saturating case is
    ``INT32_MIN · INT32_MIN``, which gives ``INT32_MAX``.
    """
    a = _as_int64("a", a, INT32_MIN, INT32_MAX)
    b = _as_int64("b", b, INT32_MIN, INT32_MAX)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    # C++ integer division truncates toward zero.
    quotient = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    overflow = (a == b) & (a == INT32_MIN)
    return _scalar_or_array(np.where(overflow, INT32_MAX, quotient))


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: ``x / 2^exponent`` rounded half away from zero.

    ``exponent`` must be in ``[0, 31]``.
    """
    x = _as_int64("x", x, INT32_MIN, INT32_MAX)
    exponent = _as_int64("exponent", exponent, 0, 31)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return _scalar_or_array((x >> exponent) + (remainder > threshold))


def rounding_shift_right(x, n):
    """The shift-only requantizer: ``(x + 2^(n−1)) >> n``, ties toward +∞.

    ``n`` may be negative (a left shift, wrapping to int32 like the C++ it mirrors) or zero
    (identity). With ``n = 1 − shift`` this equals single rounding with ``m0 = 2^30``, i.e.
    single rounding by any power-of-two multiplier.
    """
    x = _as_int64("x", x, INT32_MIN, INT32_MAX)
    n = _as_int64("n", n, 1 - SHIFT_MAX, 1 - SHIFT_MIN)
    right = np.maximum(n, 0)
    rounded = (x + ((np.int64(1) << right) >> 1)) >> right
    return _scalar_or_array(wrap_int32(rounded << np.maximum(-n, 0)))


def multiply_by_quantized_multiplier(x, m0, shift, rounding: Rounding = "double"):
    """TFLite's MultiplyByQuantizedMultiplier: ``x · m0 · 2^(shift − 31)`` rounded to int32.

    Parameters
    ----------
    x : int32 values (any shape).
    m0, shift : the multiplier from :func:`quantize_multiplier`, scalars or per-channel arrays
        broadcasting against ``x``. ``shift`` must be in ``[-31, 30]``.
    rounding :
        ``"double"``: ``RoundingDivideByPOT(SRDHM(x·2^left, m0), right)`` (gemmlowp, TFLite
        Micro, TFLite's default build); the left shift wraps to int32 as the C++ does.
        ``"single"``: ``(x·m0 + 2^(t−1)) >> t`` with ``t = 31 − shift``
        (``TFLITE_SINGLE_ROUNDING``); ``m0`` must be non-negative.
        ``"pow2"``: the shift-only datapath ``(x + 2^(n−1)) >> n`` with ``n = 1 − shift``;
        ``m0`` must be exactly ``2^30`` (a power-of-two multiplier) or 0.
    """
    if rounding not in ROUNDING_MODES:
        raise QuantizerError(
            f"unknown rounding mode {rounding!r}: choose one of {', '.join(ROUNDING_MODES)}")
    x = _as_int64("x", x, INT32_MIN, INT32_MAX)
    shift = _as_int64("shift", shift, SHIFT_MIN, SHIFT_MAX)
    if rounding == "double":
        m0 = _as_int64("m0", m0, INT32_MIN, INT32_MAX)
        left = np.maximum(shift, 0)
        right = np.maximum(-shift, 0)
        high = saturating_rounding_doubling_high_mul(wrap_int32(x << left), m0)
        return rounding_divide_by_pot(high, right)
    m0 = _as_int64("m0", m0, 0, INT32_MAX)
    if rounding == "single":
        total = 31 - shift
        rounded = (x * m0 + (np.int64(1) << (total - 1))) >> total
        return _scalar_or_array(wrap_int32(rounded))
    if np.any((m0 != POW2_M0) & (m0 != 0)):
        raise QuantizerError(
            "pow2 rounding needs power-of-two multipliers (m0 == 2^30); "
            "quantize with a power-of-two scheme or use 'single'/'double'")
    return _scalar_or_array(np.where(m0 == 0, 0, rounding_shift_right(x, 1 - shift)))


def _scalar_or_array(result: np.ndarray):
    """Return a Python int for 0-d results, so scalar calls read like the C++ they mirror."""
    result = np.asarray(result, dtype=np.int64)
    return int(result) if result.ndim == 0 else result
