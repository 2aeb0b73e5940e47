"""MEAN of int8 (or uint8) activations over sample axes — what the converter emits for
GlobalAveragePooling2D (axes (1, 2), keep_dims) — with input and output quantization that may
differ.

Both runtimes run the integer ``reference_ops::QuantizedMeanOrSum`` of
``reference/reduce.h`` (LiteRT: ``tflite/kernels/reduce.cc`` ``EvalMean`` → ``EvalQuantizedMean``
for kReference; TFLite Micro: ``micro/kernels/reduce_common.cc`` ``EvalMeanHelper`` →
``QuantizedMeanOrSum``), with the multiplier ``QuantizeMultiplier(s_in / s_out)`` of
``PrepareMeanOrSum``: the 1/n of the mean is folded into that multiplier, and the sum, less
``n·zp_in``, is requantized once. Measured on both interpreters, including equal input and
output quantization (no truncating ``reference_ops::Mean`` shortcut) and axes other than (1, 2);
the older float and ``reference_integer_ops::Mean`` variants do not match.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, wrap_int32
from ..graph import NUMPY_DTYPES, Graph, Operator
from . import kernel

#: How ``MultiplyByQuantizedMultiplier`` rounds in MEAN in each runtime's build.
#: Measured against both interpreters, see docs/arithmetic.md.
ROUNDING = {"litert": "double", "tflm": "double"}


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """``(m0, shift)`` of ``s_in / (s_out · count)``: QuantizedMeanOrSum folds ``1/count`` into
    ``QuantizeMultiplier(s_in / s_out)`` by shifting the multiplier up by ``floor(log2
    count)`` bits (at most 32, and keeping ``shift ≥ −31``) and dividing, truncating."""
    m0, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    bits = min(count.bit_length() - 1, 32, 31 + shift)
    return int((m0 << bits) // count), shift - bits


def quantized_mean(x, axes: tuple[int, ...], *, in_scale: float, in_zp: int,
                   out_scale: float, out_zp: int, rounding: str,
                   out_range: tuple[int, int] = (-128, 127)) -> np.ndarray:
    """``QuantizedMeanOrSum`` (mean) of ``x`` over ``axes`` (kept, size 1); int64 results."""
    x = np.asarray(x)
    count = int(np.prod([x.shape[a] for a in axes]))
    m0, shift = mean_multiplier(in_scale, out_scale, count)
    total = x.astype(np.int64).sum(axis=axes, keepdims=True)  # the int32 temp_sum
    shifted = wrap_int32(wrap_int32(total) - in_zp * count)
    y = multiply_by_quantized_multiplier(shifted, m0, shift, rounding)
    return np.clip(np.asarray(y) + out_zp, *out_range)


def resolve_axes(op: Operator, rank: int) -> tuple[int, ...]:
    """The ``axis`` option made non-negative and deduplicated (``ResolveAxis``)."""
    axes = op.options.get("axis")
    if axes is None:
        raise QuantizerError(f"MEAN {op.name}: the axis option is missing")
    resolved: list[int] = []
    for axis in np.atleast_1d(axes):
        axis = int(axis) + rank if int(axis) < 0 else int(axis)
        if not 0 <= axis < rank:
            raise QuantizerError(f"MEAN {op.name}: axis {axis} of a rank-{rank} tensor")
        if axis == 0:
            raise QuantizerError(f"MEAN {op.name}: averaging over the batch is not supported")
        if axis not in resolved:
            resolved.append(axis)
    return tuple(resolved)


@kernel("MEAN")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    input_, out = graph.op_inputs(op)[0], graph.op_output(op)
    if out.dtype not in ("int8", "uint8") or input_.dtype != out.dtype:
        raise QuantizerError(f"MEAN {op.name}: only int8 or uint8 means are supported, got "
                             f"{input_.dtype} → {out.dtype}")
    if out.dtype == "uint8" and runtime == "tflm":
        raise QuantizerError(f"MEAN {op.name}: TFLite Micro has no uint8 MEAN")
    x = np.asarray(inputs[0])
    axes = resolve_axes(op, x.ndim)
    y = quantized_mean(x, axes, in_scale=input_.scalar_scale, in_zp=input_.zp,
                       out_scale=out.scalar_scale, out_zp=out.zp, rounding=ROUNDING[runtime],
                       out_range=out.range)
    if not op.options.get("keep_dims", False):
        y = y.reshape([d for i, d in enumerate(y.shape) if i not in axes])
    return y.reshape(len(x), *out.sample_shape).astype(NUMPY_DTYPES[out.dtype])
