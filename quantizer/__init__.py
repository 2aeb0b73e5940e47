"""mxugen quantizer: float → int8, and the integer golden model that specifies the silicon."""

from .accumulator import (AccumulatorOverflowError, AccumulatorRange, accumulator_range,
                          check_accumulator)
from .errors import QuantizerError
from .fixedpoint import (INT32_MAX, INT32_MIN, ROUNDING_MODES, multiply_by_quantized_multiplier,
                         quantize_multiplier, quantize_multipliers, rounding_divide_by_pot,
                         rounding_shift_right, saturating_rounding_doubling_high_mul)
from .golden import accumulate, conv2d, dtype_range, fully_connected, requantize

__all__ = [
    "AccumulatorOverflowError", "AccumulatorRange", "INT32_MAX", "INT32_MIN", "QuantizerError",
    "ROUNDING_MODES", "accumulate", "accumulator_range", "check_accumulator", "conv2d",
    "dtype_range", "fully_connected", "multiply_by_quantized_multiplier", "quantize_multiplier",
    "quantize_multipliers", "requantize", "rounding_divide_by_pot", "rounding_shift_right",
    "saturating_rounding_doubling_high_mul",
]
