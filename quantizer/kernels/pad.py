"""PAD and PADV2: constant padding of int8 (or uint8) tensors, no requantization.

Transcribes ``tflite/kernels/pad.cc`` ``EvalInt`` (LiteRT) and ``micro/kernels/pad.cc``
``PadEval`` (TFLite Micro): PAD fills with the output's zero point (real 0), PADV2 with its
``constant_values`` integer; the input's integers are copied unchanged.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..graph import NUMPY_DTYPES, Graph, Operator
from . import kernel


def paddings_of(op: Operator, inputs: list, rank: int) -> list[tuple[int, int]]:
    """``(before, after)`` per dimension, batch first: the ``paddings`` option, else the
    constant paddings tensor."""
    paddings = op.options.get("paddings")
    if paddings is None and len(inputs) > 1 and inputs[1] is not None:
        paddings = np.asarray(inputs[1]).reshape(-1, 2).tolist()
    if paddings is None:
        raise QuantizerError(f"{op.kind} {op.name}: the paddings are missing")
    pairs = [(int(b), int(a)) for b, a in paddings]
    if len(pairs) != rank or any(b < 0 or a < 0 for b, a in pairs):
        raise QuantizerError(f"{op.kind} {op.name}: need {rank} non-negative (before, after) "
                             f"pairs, got {paddings!r}")
    if pairs[0] != (0, 0):
        raise QuantizerError(f"{op.kind} {op.name}: padding the batch dimension is not "
                             "supported")
    return pairs


def pad_value_of(op: Operator, graph: Graph, inputs: list) -> int:
    """PADV2's ``constant_values`` (the option ``constant_value`` or the third input), else
    the output's zero point."""
    out = graph.op_output(op)
    value = op.options.get("constant_value")
    if value is None and len(inputs) > 2 and inputs[2] is not None:
        constant = graph.op_inputs(op)[2]
        if constant.zp != out.zp or np.float32(constant.scalar_scale) != np.float32(
                out.scalar_scale):
            raise QuantizerError(f"{op.kind} {op.name}: constant_values must be quantized "
                                 "like the output")  # LiteRT's EvalInt
        value = np.asarray(inputs[2]).reshape(-1)[0]
    if value is None:
        return out.zp
    lo, hi = out.range
    if not lo <= int(value) <= hi:
        raise QuantizerError(f"{op.kind} {op.name}: pad value {value} outside {out.dtype}")
    return int(value)


@kernel("PAD", "PADV2")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    input_, out = graph.op_inputs(op)[0], graph.op_output(op)
    if out.dtype not in ("int8", "uint8") or input_.dtype != out.dtype:
        raise QuantizerError(f"{op.kind} {op.name}: only int8 or uint8 padding is supported, "
                             f"got {input_.dtype} → {out.dtype}")
    if out.dtype == "uint8" and runtime == "tflm":
        raise QuantizerError(f"{op.kind} {op.name}: TFLite Micro has no uint8 padding")
    x = np.asarray(inputs[0])
    pairs = paddings_of(op, inputs, x.ndim)
    y = np.pad(x, pairs, mode="constant", constant_values=pad_value_of(op, graph, inputs))
    return y.astype(NUMPY_DTYPES[out.dtype])
