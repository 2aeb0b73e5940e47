"""SOFTMAX over the last axis, int8 in, int8 out (scale 1/256, zero point −128).

Both runtimes run the same fixed-point algorithm: LiteRT's ``tflite/kernels/activations.cc``
(``SoftmaxPrepare``/``SoftmaxEval`` with kernel_type kReference, which is what the BUILTIN_REF
resolver registers; the LUT-based ``optimized_ops::SoftmaxInt8LUT`` is only the optimized
kernel's) and TFLite Micro's ``micro/kernels/softmax_common.cc`` + ``softmax.cc`` both call the
quantized ``reference_ops::Softmax`` of ``reference/softmax.h`` with the scaling of
``PreprocessSoftmaxScaling`` and ``CalculateInputRadius`` (``quantization_util.cc``).

The exponential and the reciprocal are gemmlowp's (``fixedpoint/fixedpoint.h``:
``exp_on_negative_values``, ``one_over_one_plus_x_for_x_in_0_1``) and TFLite's
``GetReciprocal`` (``kernels/internal/common.h``), transcribed here on int32 arrays.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import QuantizerError
from ..fixedpoint import (INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier,
                          quantize_multiplier, rounding_divide_by_pot,
                          saturating_rounding_doubling_high_mul, wrap_int32)
from ..graph import NUMPY_DTYPES, Graph, Operator
from . import kernel

#: How each runtime's build rounds (TFLITE_SINGLE_ROUNDING changes the input rescaling
#: ``MultiplyByQuantizedMultiplierGreaterThanOne`` and the cap of PreprocessSoftmaxScaling).
#: Measured against both interpreters, see docs/arithmetic.md.
ROUNDING = {"litert": "double", "tflm": "double"}

#: Q5.26 for the scaled input differences, Q12.19 for the sum of exponentials.
SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12

_srdhm = saturating_rounding_doubling_high_mul


def _sat_shift_left(x, exponent: int):
    """gemmlowp's ``SaturatingRoundingMultiplyByPOT<exponent>`` for ``exponent > 0``."""
    threshold = (1 << (31 - exponent)) - 1
    x = np.asarray(x, np.int64)
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, wrap_int32(x << exponent)))


def exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """gemmlowp: ``exp(a)`` for Q0.31 ``a`` in [−1/4, 0), a Taylor expansion around −1/8."""
    constant_term, constant_1_over_3 = 1895147668, 715827883
    x = wrap_int32(np.asarray(a, np.int64) + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        wrap_int32(_srdhm(wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap_int32(constant_term + _srdhm(constant_term, wrap_int32(x + poly)))


#: ``(exponent, Q0.31 exp(−2^exponent))`` of gemmlowp's barrel shifter.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int = SCALED_DIFF_INTEGER_BITS):
    """gemmlowp: ``exp(a)`` as Q0.31 for ``a ≤ 0`` in Q``integer_bits``.(31 − integer_bits)."""
    a = np.asarray(a, np.int64)
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        _sat_shift_left(a_mod_quarter_minus_one_quarter, integer_bits))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder >> (fractional_bits + exponent)) & 1
            result = np.where(bit == 1, _srdhm(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _rounding_half_sum(a, b):
    total = np.asarray(a, np.int64) + np.asarray(b, np.int64)
    biased = total + np.where(total >= 0, 1, -1)
    return np.where(biased >= 0, biased // 2, -((-biased) // 2))  # C++ truncation


def one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp: ``1 / (1 + a)`` as Q0.31 for Q0.31 ``a`` in [0, 1), Newton–Raphson."""
    half_denominator = _rounding_half_sum(a, INT32_MAX)
    one_f2 = 1 << 29
    x = wrap_int32(1515870810 + _srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus_half_denominator_times_x = wrap_int32(one_f2 - _srdhm(half_denominator, x))
        x = wrap_int32(x + _sat_shift_left(_srdhm(x, one_minus_half_denominator_times_x), 2))
    return _sat_shift_left(x, 1)


def get_reciprocal(x, x_integer_digits: int):
    """TFLite's ``GetReciprocal``: ``(Q0.31 scale, num_bits_over_unit)`` with
    ``1/x ≈ scale · 2^−num_bits_over_unit`` for positive Q``x_integer_digits`` ``x``."""
    x = np.asarray(x, np.int64)
    headroom_plus_one = 32 - np.frexp(x.astype(np.float64))[1]  # CountLeadingZeros, x > 0
    shifted_sum_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one),
            x_integer_digits - headroom_plus_one)


def softmax_params(beta: float, input_scale: float, rounding: str) -> tuple[int, int, int]:
    """``(input_multiplier, input_left_shift, diff_min)``: ``PreprocessSoftmaxScaling`` and
    ``−CalculateInputRadius`` for Q5.26 differences."""
    cap = (1 << 31) - 1.0 if rounding == "double" else (1 << 30) - 1.0
    real = min(float(np.float32(beta)) * float(np.float32(input_scale))
               * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), cap)
    if not real > 1:
        raise QuantizerError(f"softmax beta·scale {beta}·{input_scale} is too small "
                             "(TFLite needs an input multiplier above 1)")
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift > 30:  # beta·scale ≥ 16: the C++ shifts 1 << 31 and overflows
        raise QuantizerError(f"softmax beta·scale {beta}·{input_scale} is too large for "
                             "TFLite's int8 softmax (at most 16)")
    radius = math.floor(((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                        * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift))
    return multiplier, left_shift, -radius


def quantized_softmax(x, multiplier: int, left_shift: int, diff_min: int, rounding: str,
                      out_dtype: str = "int8") -> np.ndarray:
    """The quantized ``reference_ops::Softmax`` over the last axis of ``x``; int64 results
    (8-bit output, zero point at the type's minimum)."""
    x = np.asarray(x, np.int64)
    out_min, out_max = (-128, 127) if out_dtype == "int8" else (0, 255)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    rescaled = multiply_by_quantized_multiplier(np.where(valid, diff, 0), multiplier,
                                                left_shift, rounding)
    exps = exp_on_negative_values(rescaled)
    # Rescale<12>: Q0.31 → Q12.19, then an int32 sum over the row.
    rescaled_exps = rounding_divide_by_pot(exps, ACCUMULATION_INTEGER_BITS)
    sum_of_exps = np.where(valid, rescaled_exps, 0).sum(axis=-1, keepdims=True)
    scale, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    if np.any((exponent < 0) | (exponent > 31)):
        raise QuantizerError(
            "SOFTMAX: a row's sum of exponentials reaches 512 (too many classes near the "
            "maximum); TFLite's reference kernel aborts there (TFLITE_CHECK on the exponent)")
    unsat = rounding_divide_by_pot(_srdhm(scale, exps), exponent)
    return np.where(valid, np.clip(unsat + out_min, out_min, out_max), out_min)


@kernel("SOFTMAX")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    input_, out = graph.op_inputs(op)[0], graph.op_output(op)
    if input_.dtype not in ("int8", "uint8") or out.dtype != input_.dtype:
        raise QuantizerError(f"SOFTMAX {op.name}: only int8 → int8 (or uint8 → uint8) is "
                             f"supported, got {input_.dtype} → {out.dtype}")
    if out.dtype == "uint8" and runtime == "tflm":
        raise QuantizerError(f"SOFTMAX {op.name}: TFLite Micro has no uint8 softmax")
    if out.dtype == "int8":
        # SoftmaxPrepare: LiteRT accepts the scale within 0.1 %, TFLite Micro exactly.
        scale = float(np.float32(out.scalar_scale))
        close = scale == 1 / 256 or (runtime == "litert"
                                     and abs(scale - 1 / 256) <= 0.001 / 256)
        if out.zp != -128 or not close:
            raise QuantizerError(f"SOFTMAX {op.name}: the output must have scale 1/256 and "
                                 f"zero point -128, got {out.scalar_scale} and {out.zp}")
    x = np.asarray(inputs[0])
    if x.ndim < 2:
        raise QuantizerError(f"SOFTMAX {op.name}: needs a batch dimension and a class axis, "
                             f"got shape {x.shape}")
    rounding = ROUNDING[runtime]
    multiplier, left_shift, diff_min = softmax_params(op.options.get("beta", 1.0),
                                                      input_.scalar_scale, rounding)
    y = quantized_softmax(x, multiplier, left_shift, diff_min, rounding, out.dtype)
    return y.astype(NUMPY_DTYPES[out.dtype])
