"""FULLY_CONNECTED: TFLite's int8 reference kernel (``reference_integer_ops/fully_connected.h``),
per tensor or per output channel."""

from __future__ import annotations

import numpy as np

from ..golden import DType, accumulate, requantize
from ..graph import Graph, Operator
from . import kernel
from .common import MacParams, bias_values, mac_params

#: LiteRT's reference kernel rounds FULLY_CONNECTED once (TFLITE_SINGLE_ROUNDING); TFLite
#: Micro twice (gemmlowp). Measured, see docs/arithmetic.md.
ROUNDING = {"litert": "single", "tflm": "double"}


def fully_connected(x, w, bias, *, input_zero_point: int, weight_zero_point: int = 0,
                    m0, shift, output_zero_point: int, act_min: int | None = None,
                    act_max: int | None = None, rounding: str = "single",
                    dtype: DType = "int8") -> np.ndarray:
    """``x``: ``(N, K)``; ``w``: ``(C, K)``; ``bias``: ``(C,)`` int32 or None;
    ``m0``/``shift``: scalars or ``(C,)``. Returns ``(N, C)``."""
    acc = accumulate(x, w, input_zero_point=input_zero_point,
                     weight_zero_point=weight_zero_point, bias=bias, dtype=dtype)
    return requantize(acc, m0, shift, output_zero_point=output_zero_point, act_min=act_min,
                      act_max=act_max, rounding=rounding, dtype=dtype)


def params(op: Operator, graph: Graph, runtime: str) -> MacParams:
    return mac_params(op, graph, ROUNDING, runtime, graph.op_inputs(op)[1].shape[0])


@kernel("FULLY_CONNECTED")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    x, w, bias = (inputs + [None])[:3]
    p = params(op, graph, runtime)
    out = graph.op_output(op)
    y = fully_connected(np.asarray(x).reshape(-1, w.shape[1]), w, bias_values(bias, w.shape[0]),
                        input_zero_point=p.input_zero_point,
                        weight_zero_point=p.weight_zero_point, m0=p.m0, shift=p.shift,
                        output_zero_point=p.output_zero_point, act_min=p.act_min,
                        act_max=p.act_max, rounding=p.rounding, dtype=out.dtype)
    return y.reshape(len(x), *out.sample_shape)
