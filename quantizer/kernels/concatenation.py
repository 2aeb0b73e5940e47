"""CONCATENATION of int8 (or uint8) tensors along a sample axis.

int8 is a byte copy (``reference_ops::Concatenation``) in both runtimes, and both refuse an
int8 input whose scale or zero point is not the output's: LiteRT in ``Prepare`` of
``tflite/kernels/concatenation.cc`` ("no re-scaling needed for Int8 quantized kernel"), TFLite
Micro in ``Prepare`` of ``micro/kernels/concatenation.cc`` (measured: the current release checks
both; older sources only stored the scales). Converters therefore give every int8 concatenation
input the output's quantization.

uint8 exists only in LiteRT, through ``reference_ops::ConcatenationWithScaling``
(``reference/concatenation.h``), which requantizes each input whose parameters differ in
float32: ``TfLiteRound(q·scale + bias) + zp_out`` with ``scale = s_in · (1/s_out)`` and
``bias = −zp_in · scale``, clamped to [0, 255].
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..graph import NUMPY_DTYPES, Graph, Operator, Tensor
from . import kernel


def _f32(value: float) -> np.float32:
    return np.float32(value)


def rescale_uint8(x, in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """``ConcatenationWithScaling``'s requantization of one uint8 input, in float32 like the
    C++ (``TfLiteRound`` rounds half away from zero); a plain copy when the parameters match."""
    x = np.asarray(x)
    if in_zp == out_zp and _f32(in_scale) == _f32(out_scale):
        return x
    scale = _f32(in_scale) * (np.float32(1) / _f32(out_scale))
    bias = np.float32(-in_zp) * scale
    real = (x.astype(np.float32) * scale + bias).astype(np.float64)
    rounded = np.sign(real) * np.floor(np.abs(real) + 0.5)  # std::round, exact in double
    return np.clip(rounded.astype(np.int64) + out_zp, 0, 255)


def _same_quantization(t: Tensor, out: Tensor) -> bool:
    return t.zp == out.zp and _f32(t.scalar_scale) == _f32(out.scalar_scale)


@kernel("CONCATENATION")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    tensors, out = graph.op_inputs(op), graph.op_output(op)
    if out.dtype not in ("int8", "uint8") or any(t.dtype != out.dtype for t in tensors):
        raise QuantizerError(f"CONCATENATION {op.name}: only int8 or uint8 tensors are "
                             "supported")
    if op.activation != "NONE":
        raise QuantizerError(f"CONCATENATION {op.name}: TFLite refuses a fused activation")
    rank = len(out.shape)
    axis = int(op.options.get("axis", -1))
    axis = axis + rank if axis < 0 else axis
    if not 1 <= axis < rank:
        raise QuantizerError(f"CONCATENATION {op.name}: axis {op.options.get('axis')} of a "
                             f"rank-{rank} tensor is not a sample axis (batch is axis 0)")
    if out.dtype == "uint8" and runtime == "tflm":
        raise QuantizerError(f"CONCATENATION {op.name}: TFLite Micro has no uint8 "
                             "concatenation")
    if out.dtype == "int8" and not all(_same_quantization(t, out) for t in tensors):
        raise QuantizerError(f"CONCATENATION {op.name}: LiteRT and TFLite Micro refuse int8 "
                             "inputs whose scale or zero point differs from the output's")
    batch = next((len(x) for t, x in zip(tensors, inputs) if not t.is_constant), 1)
    parts = []
    for t, x in zip(tensors, inputs):
        x = np.asarray(x)
        if t.is_constant:
            x = np.broadcast_to(x, (batch, *x.shape[1:]))
        if out.dtype == "uint8":
            x = rescale_uint8(x, t.scalar_scale, t.zp, out.scalar_scale, out.zp)
        parts.append(x)
    return np.concatenate(parts, axis=axis).astype(NUMPY_DTYPES[out.dtype])
