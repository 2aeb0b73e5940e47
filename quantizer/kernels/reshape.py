"""RESHAPE (a copy of the integers in a new shape) and QUANTIZE between 8-bit tensors
(requantization to another scale and zero point).

RESHAPE copies bytes in LiteRT (``tflite/kernels/reshape.cc``) and TFLite Micro
(``micro/kernels/reshape.cc``). QUANTIZE int8/uint8 → int8/uint8 transcribes
``reference_ops::Requantize`` (``reference/requantize.h``) with the multiplier of
``QuantizeMultiplier(s_in / s_out)``, as LiteRT's ``tflite/kernels/quantize.cc`` and TFLite
Micro's ``micro/kernels/quantize_common.cc`` both call it.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ..graph import NUMPY_DTYPES, Graph, Operator
from . import kernel

#: How ``MultiplyByQuantizedMultiplier`` rounds in QUANTIZE in each runtime's build.
#: Measured against both interpreters, see docs/arithmetic.md.
ROUNDING = {"litert": "double", "tflm": "double"}


@kernel("RESHAPE")
def reshape(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    out = graph.op_output(op)
    x = np.asarray(inputs[0])
    target = (len(x), *out.sample_shape)
    if x.size != int(np.prod(target)):
        raise QuantizerError(f"RESHAPE {op.name}: {x.shape[1:]} samples do not fit the output "
                             f"shape {out.shape} (the batch must stay the first dimension)")
    return x.reshape(target).astype(NUMPY_DTYPES[out.dtype])


def requantize(x, in_scale: float, in_zp: int, out_scale: float, out_zp: int, out_dtype: str,
               rounding: str) -> np.ndarray:
    """``Requantize``: ``MultiplyByQuantizedMultiplier(q − zp_in, m0, shift) + zp_out``,
    clamped to the output type; int64 results."""
    real = float(np.float32(in_scale)) / float(np.float32(out_scale))
    m0, shift = quantize_multiplier(real)
    lo, hi = (-128, 127) if out_dtype == "int8" else (0, 255)
    y = multiply_by_quantized_multiplier(np.asarray(x, np.int64) - in_zp, m0, shift, rounding)
    return np.clip(np.asarray(y) + out_zp, lo, hi)


@kernel("QUANTIZE")
def quantize(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    input_, out = graph.op_inputs(op)[0], graph.op_output(op)
    if input_.dtype not in ("int8", "uint8") or out.dtype not in ("int8", "uint8"):
        raise QuantizerError(f"QUANTIZE {op.name}: only 8-bit → 8-bit requantization is "
                             f"supported, got {input_.dtype} → {out.dtype}")
    if runtime == "tflm" and input_.dtype == "uint8" and out.dtype == "uint8":
        raise QuantizerError(f"QUANTIZE {op.name}: TFLite Micro has no uint8 → uint8 QUANTIZE")
    y = requantize(inputs[0], input_.scalar_scale, input_.zp, out.scalar_scale, out.zp,
                   out.dtype, ROUNDING[runtime])
    return y.astype(NUMPY_DTYPES[out.dtype])
