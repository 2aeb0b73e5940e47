"""CONV_2D: TFLite's int8 reference kernel (``reference_integer_ops/conv.h``,
``ConvPerChannel``), NHWC, weights ``(Cout, KH, KW, Cin)``, stride, dilation, SAME/VALID."""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..golden import DType, check_zero_point, im2col
from ..graph import Graph, Operator
from . import kernel
from .common import MacParams, bias_values, mac_params
from .fully_connected import fully_connected

#: Both runtimes round convolutions twice (gemmlowp). Measured, see docs/arithmetic.md.
ROUNDING = {"litert": "double", "tflm": "double"}


def conv2d(x, w, bias, *, input_zero_point: int, weight_zero_point: int = 0, m0, shift,
           output_zero_point: int, stride=1, dilation=1, padding: str = "SAME",
           act_min: int | None = None, act_max: int | None = None,
           rounding: str = "double", dtype: DType = "int8") -> np.ndarray:
    """``x``: ``(N, H, W, Cin)``; ``w``: ``(Cout, KH, KW, Cin)``; ``bias``: ``(Cout,)`` or
    None. Padding taps count as the input zero point, i.e. real 0, exactly like the reference
    kernel skipping them. Returns ``(N, OH, OW, Cout)``."""
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 4 or w.ndim != 4 or x.shape[3] != w.shape[3]:
        raise QuantizerError(
            f"conv2d needs NHWC input and (Cout, KH, KW, Cin) weights with matching Cin, "
            f"got input {x.shape} and weights {w.shape}")
    zx = check_zero_point("input zero point", input_zero_point, dtype)
    patches = im2col(x, (w.shape[1], w.shape[2]), stride=stride, dilation=dilation,
                     padding=padding, pad_value=zx)
    n, oh, ow, depth = patches.shape
    out = fully_connected(patches.reshape(-1, depth), w.reshape(w.shape[0], depth), bias,
                          input_zero_point=zx, weight_zero_point=weight_zero_point, m0=m0,
                          shift=shift, output_zero_point=output_zero_point, act_min=act_min,
                          act_max=act_max, rounding=rounding, dtype=dtype)
    return out.reshape(n, oh, ow, w.shape[0])


def params(op: Operator, graph: Graph, runtime: str) -> MacParams:
    return mac_params(op, graph, ROUNDING, runtime, graph.op_inputs(op)[1].shape[0])


@kernel("CONV_2D")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    x, w, bias = (inputs + [None])[:3]
    if w.shape[3] != x.shape[3]:
        raise QuantizerError(f"CONV_2D {op.name}: grouped convolution ({x.shape[3]} input "
                             f"channels, filters of {w.shape[3]}) is not supported")
    p = params(op, graph, runtime)
    return conv2d(x, w, bias_values(bias, w.shape[0]), input_zero_point=p.input_zero_point,
                  weight_zero_point=p.weight_zero_point, m0=p.m0, shift=p.shift,
                  output_zero_point=p.output_zero_point, stride=op.options.get("stride", 1),
                  dilation=op.options.get("dilation", 1),
                  padding=op.options.get("padding", "SAME"), act_min=p.act_min,
                  act_max=p.act_max, rounding=p.rounding, dtype=graph.op_output(op).dtype)
