"""mxugen quantizer: float → int8, and the integer golden model that specifies the silicon."""

from .accumulator import (AccumulatorOverflowError, AccumulatorRange, accumulator_range,
                          check_accumulator)
from .errors import QuantizerError
from .fixedpoint import (INT32_MAX, INT32_MIN, ROUNDING_MODES, multiply_by_quantized_multiplier,
                         quantize_multiplier, quantize_multipliers, rounding_divide_by_pot,
                         rounding_shift_right, saturating_rounding_doubling_high_mul)
from .golden import accumulate, dtype_range, requantize
from .graph import Graph, Operator, Tensor
from .kernels.conv import conv2d
from .kernels.depthwise_conv import depthwise_conv2d
from .kernels.fully_connected import fully_connected

__all__ = [
    "AccumulatorOverflowError", "AccumulatorRange", "Graph", "INT32_MAX", "INT32_MIN",
    "Operator", "QuantizerError", "ROUNDING_MODES", "Tensor", "accumulate", "accumulator_range",
    "check_accumulator", "conv2d", "depthwise_conv2d", "dtype_range", "fully_connected",
    "multiply_by_quantized_multiplier", "quantize_multiplier", "quantize_multipliers",
    "requantize", "rounding_divide_by_pot", "rounding_shift_right",
    "saturating_rounding_doubling_high_mul",
]
