"""AVERAGE_POOL_2D and MAX_POOL_2D on NHWC int8 (or uint8) activations.

Transcribes ``reference_integer_ops/pooling.h`` (``AveragePool``, ``MaxPool``), which LiteRT's
``tflite/kernels/pooling.cc`` (kReference) and TFLite Micro's ``micro/kernels/pooling.h`` both
call, with the padding of ``ComputePaddingHeightWidth``. Pooling never rescales: the input's
scale and zero point are the output's.

Average pooling divides the window's sum by the number of taps inside the input (padded taps
are not counted), rounding half away from zero with C++'s truncating division:
``acc > 0 ? (acc + n/2)/n : (acc − n/2)/n``.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizerError
from ..golden import conv_output_size, im2col
from ..graph import NUMPY_DTYPES, Graph, Operator, Tensor, activation_range
from . import kernel


#: The padding of a pooling operator without the option.
PADDING = "VALID"


def window_pair(op: Operator, name: str, default=None) -> tuple[int, int]:
    """The ``(height, width)`` of a pooling option (``filter`` or ``stride``)."""
    value = op.options.get(name, default)
    if value is None:
        raise QuantizerError(f"{op.kind} {op.name}: the {name} option is missing")
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise QuantizerError(f"{op.kind} {op.name}: {name} must be a positive int or a pair "
                             f"of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def windows(x: np.ndarray, filter_: tuple[int, int], stride: tuple[int, int], padding: str,
            pad_value: int) -> np.ndarray:
    """``(N, OH, OW, FH·FW, C)``: every pooling window of NHWC ``x``, padded taps set to
    ``pad_value``."""
    n, h, w, c = x.shape
    oh, _ = conv_output_size(h, filter_[0], stride[0], 1, padding)
    ow, _ = conv_output_size(w, filter_[1], stride[1], 1, padding)
    patches = im2col(x, filter_, stride=stride, padding=padding, pad_value=pad_value)
    return patches.reshape(n, oh, ow, filter_[0] * filter_[1], c)


def average_pool(x, filter_: tuple[int, int], stride: tuple[int, int], padding: str,
                 act_min: int, act_max: int) -> np.ndarray:
    """``reference_integer_ops::AveragePool``: int64 results of NHWC ``x``."""
    x = np.asarray(x)
    acc = windows(x.astype(np.int64), filter_, stride, padding, 0).sum(axis=3)
    count = windows(np.ones((1, *x.shape[1:3], 1), np.int64), filter_, stride, padding,
                    0).sum(axis=3)
    half = count // 2
    # C++ integer division truncates toward zero; both branches divide non-negative values.
    rounded = np.where(acc > 0, (acc + half) // count, -((half - acc) // count))
    return np.clip(rounded, act_min, act_max)


def max_pool(x, filter_: tuple[int, int], stride: tuple[int, int], padding: str,
             act_min: int, act_max: int) -> np.ndarray:
    """``reference_integer_ops::MaxPool``: the largest valid tap (the running maximum starts at
    the type's lowest value, so padding with it changes nothing), clamped."""
    x = np.asarray(x)
    lowest = int(np.iinfo(x.dtype).min)
    taps = windows(x.astype(np.int64), filter_, stride, padding, lowest)
    return np.clip(taps.max(axis=3), act_min, act_max)


def check_pooling(op: Operator, input_: Tensor, out: Tensor, runtime: str) -> None:
    """Refuses what neither runtime pools: other types, rescaling, uint8 in TFLite Micro."""
    if out.dtype not in ("int8", "uint8") or input_.dtype != out.dtype:
        raise QuantizerError(f"{op.kind} {op.name}: only int8 or uint8 pooling is supported, "
                             f"got {input_.dtype} → {out.dtype}")
    if out.dtype == "uint8" and runtime == "tflm":
        raise QuantizerError(f"{op.kind} {op.name}: TFLite Micro has no uint8 pooling")
    if abs(input_.scalar_scale - out.scalar_scale) > 1e-6 or input_.zp != out.zp:
        # TFLite Micro refuses the model (PoolingPrepare); LiteRT only DCHECKs and would
        # output the input's integers unscaled, which no converter produces.
        raise QuantizerError(f"{op.kind} {op.name}: input and output quantization differ "
                             f"({input_.scalar_scale}, {input_.zp} vs {out.scalar_scale}, "
                             f"{out.zp}); TFLite pools without rescaling")


@kernel("AVERAGE_POOL_2D", "MAX_POOL_2D")
def evaluate(op: Operator, graph: Graph, inputs: list, runtime: str) -> np.ndarray:
    input_, out = graph.op_inputs(op)[0], graph.op_output(op)
    check_pooling(op, input_, out, runtime)
    x = np.asarray(inputs[0])
    if x.ndim != 4:
        raise QuantizerError(f"{op.kind} {op.name}: needs an NHWC input, got shape {x.shape}")
    act_min, act_max = activation_range(op.activation, out)
    pool = average_pool if op.kind == "AVERAGE_POOL_2D" else max_pool
    y = pool(x, window_pair(op, "filter"), window_pair(op, "stride", 1),
             op.options.get("padding", PADDING),
             act_min, act_max)
    return y.astype(NUMPY_DTYPES[out.dtype])
