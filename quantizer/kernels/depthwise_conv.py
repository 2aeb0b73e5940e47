"""DEPTHWISE_CONV_2D: TFLite's int8 reference kernel
(``reference_integer_ops/depthwise_conv.h``, ``DepthwiseConvPerChannel``): output channel
``ic · multiplier + m`` filters input channel ``ic`` alone; weights ``(1, KH, KW, Cin·mult)``."""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..golden import DType, check_zero_point, im2col, requantize
from ..fixedpoint import wrap_int32
from ..graph import Graph, Operator
from . import kernel
from .common import MacParams, bias_values, mac_params

#: Measured, see docs/arithmetic.md.
ROUNDING = {"litert": "double", "tflm": "double"}


def depthwise_conv2d(x, w, bias, *, input_zero_point: int, weight_zero_point: int = 0, m0,
                     shift, output_zero_point: int, depth_multiplier: int = 1, stride=1,
                     dilation=1, padding: str = "SAME", act_min: int | None = None,
                     act_max: int | None = None, rounding: str = "double",
                     dtype: DType = "int8") -> np.ndarray:
    """``x``: ``(N, H, W, Cin)``; ``w``: ``(KH, KW, Cin·depth_multiplier)``; ``bias``:
    ``(Cin·depth_multiplier,)`` or None. Returns ``(N, OH, OW, Cin·depth_multiplier)``."""
    x = np.asarray(x)
    w = np.asarray(w, dtype=np.int64)
    n, _h, _w, cin = x.shape
    kh, kw, cout = w.shape
    if cout != cin * depth_multiplier:
        raise QuantizerError(f"depthwise weights have {cout} channels, expected {cin} input "
                             f"channels × multiplier {depth_multiplier}")
    zx = check_zero_point("input zero point", input_zero_point, dtype)
    patches = im2col(x, (kh, kw), stride=stride, dilation=dilation, padding=padding,
                     pad_value=zx)
    _, oh, ow, _ = patches.shape
    taps = patches.reshape(n, oh, ow, kh * kw, cin, 1).astype(np.int64) - zx
    filters = (w - weight_zero_point).reshape(kh * kw, cin, depth_multiplier)
    acc = np.einsum("nhwtcm,tcm->nhwcm", taps, filters).reshape(n, oh, ow, cout)
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    return requantize(wrap_int32(acc), m0, shift, output_zero_point=output_zero_point,
                      act_min=act_min, act_max=act_max, rounding=rounding, dtype=dtype)


def params(op: Operator, graph: Graph, runtime: str) -> MacParams:
    return mac_params(op, graph, ROUNDING, runtime, graph.op_inputs(op)[1].shape[3])


@kernel("DEPTHWISE_CONV_2D")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    x, w, bias = (inputs + [None])[:3]
    p = params(op, graph, runtime)
    cout = w.shape[3]
    multiplier = cout // x.shape[3]  # the filter decides, as in TFLite's Prepare
    return depthwise_conv2d(
        x, w.reshape(w.shape[1:]), bias_values(bias, cout), input_zero_point=p.input_zero_point,
        weight_zero_point=p.weight_zero_point, m0=p.m0, shift=p.shift,
        output_zero_point=p.output_zero_point, depth_multiplier=multiplier,
        stride=op.options.get("stride", 1), dilation=op.options.get("dilation", 1),
        padding=op.options.get("padding", "SAME"), act_min=p.act_min, act_max=p.act_max,
        rounding=p.rounding, dtype=graph.op_output(op).dtype)
