"""ADD: TFLite's general 8-bit quantized addition, with broadcasting and a fused activation.

Transcribes ``tflite/kernels/add.cc`` (Prepare: ``left_shift = 20``, input multipliers
``s_i / (2·max(s_1, s_2))``, output multiplier ``2·max(s_1, s_2) / (2^20·s_out)``, each from
``QuantizeMultiplierSmallerThanOneExp``) and ``reference_integer_ops/add.h`` ``AddFunc`` (int8;
``reference/add.h`` ``AddElementwise`` for uint8 computes the same), as LiteRT
(google-ai-edge/LiteRT) and TFLite Micro (``micro/kernels/add_common.cc`` + ``add.cc``) both do.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, wrap_int32
from ..graph import NUMPY_DTYPES, Graph, Operator, activation_range
from . import kernel

#: How ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` rounds in each runtime's build.
#: Measured against both interpreters, see docs/arithmetic.md.
ROUNDING = {"litert": "double", "tflm": "double"}

#: The 8-bit path's headroom shift (``data->left_shift`` in add.cc).
LEFT_SHIFT = 20


def f32(value: float) -> float:
    """A scale as the model file stores it (``float``), widened back to double."""
    return float(np.float32(value))


def add_multipliers(scale1: float, scale2: float, out_scale: float
                    ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(m0, shift)`` of input 1, input 2 and the output, as add.cc's Prepare derives them."""
    scale1, scale2, out_scale = f32(scale1), f32(scale2), f32(out_scale)
    twice_max = 2 * max(scale1, scale2)
    real_out = twice_max / ((1 << LEFT_SHIFT) * out_scale)
    if not real_out < 1:
        raise QuantizerError(f"ADD output scale {out_scale} is too small for input scales "
                             f"{scale1} and {scale2} (TFLite needs a multiplier below 1)")
    return (quantize_multiplier(scale1 / twice_max), quantize_multiplier(scale2 / twice_max),
            quantize_multiplier(real_out))


def quantized_add(x1, x2, *, zp1: int, zp2: int, zp_out: int, mult1: tuple[int, int],
                  mult2: tuple[int, int], mult_out: tuple[int, int], act_min: int,
                  act_max: int, rounding: str) -> np.ndarray:
    """``AddFunc`` on broadcast int arrays: rescale both inputs to a common ``2^20`` scale, add,
    rescale to the output, add its zero point, clamp. Returns int64 values."""
    def scaled(x, zp, mult):
        shifted = (np.asarray(x, np.int64) - zp) * (1 << LEFT_SHIFT)
        return multiply_by_quantized_multiplier(shifted, *mult, rounding)

    raw_sum = wrap_int32(scaled(x1, zp1, mult1) + scaled(x2, zp2, mult2))
    raw_out = multiply_by_quantized_multiplier(raw_sum, *mult_out, rounding) + zp_out
    return np.clip(raw_out, act_min, act_max)


@kernel("ADD")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    t1, t2 = graph.op_inputs(op)
    out = graph.op_output(op)
    if out.dtype not in ("int8", "uint8") or t1.dtype != out.dtype or t2.dtype != out.dtype:
        raise QuantizerError(f"ADD {op.name}: only int8 or uint8 inputs and output are "
                             f"supported, got {t1.dtype} + {t2.dtype} → {out.dtype}")
    if out.dtype == "uint8" and runtime == "tflm":
        raise QuantizerError(f"ADD {op.name}: TFLite Micro has no uint8 ADD")
    x1, x2 = np.asarray(inputs[0]), np.asarray(inputs[1])
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise QuantizerError(f"ADD {op.name}: inputs {x1.shape} and {x2.shape} do not "
                             "broadcast") from None
    batch = next((len(x) for t, x in ((t1, x1), (t2, x2)) if not t.is_constant), 1)
    target = (batch, *out.sample_shape)
    if int(np.prod(shape)) != int(np.prod(target)):
        raise QuantizerError(f"ADD {op.name}: inputs broadcast to {shape}, the output is "
                             f"{out.shape}")
    mult1, mult2, mult_out = add_multipliers(t1.scalar_scale, t2.scalar_scale,
                                             out.scalar_scale)
    act_min, act_max = activation_range(op.activation, out)
    y = quantized_add(x1, x2, zp1=t1.zp, zp2=t2.zp, zp_out=out.zp, mult1=mult1, mult2=mult2,
                      mult_out=mult_out, act_min=act_min, act_max=act_max,
                      rounding=ROUNDING[runtime])
    return np.asarray(y).reshape(target).astype(NUMPY_DTYPES[out.dtype])
