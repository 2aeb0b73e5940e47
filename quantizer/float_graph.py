"""The float interpretation of a :class:`~quantizer.graph.Graph`: the same operators over
float32 tensors (float weights and biases, float activations; the quantization fields are
unused). It is what float importers (ONNX CNNs, :mod:`quantizer.importers.onnx_graph`) build,
what calibration runs (:mod:`quantizer.quantize_graph`), and the reference the int8 graph is
measured against.

One small numpy function per operator kind, with TFLite's semantics: NHWC activations, SAME
padding as ``conv_output_size`` computes it, average pooling over the real (unpadded) taps only,
max pooling ignoring padded taps, fused activations applied to the output. Arithmetic is
float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import QuantizerError
from .golden import im2col
from .graph import Graph, Operator
from .kernels.pooling import windows

FloatOp = Callable[[Operator, Graph, list], np.ndarray]
FLOAT_OPS: dict[str, FloatOp] = {}


def float_op(*kinds: str) -> Callable[[FloatOp], FloatOp]:
    def register(function: FloatOp) -> FloatOp:
        for kind in kinds:
            FLOAT_OPS[kind] = function
        return function
    return register


def activate(y: np.ndarray, activation: str) -> np.ndarray:
    """A TFLite fused activation on float values."""
    if activation == "NONE":
        return y
    if activation == "RELU":
        return np.maximum(y, 0.0)
    if activation == "RELU6":
        return np.clip(y, 0.0, 6.0)
    if activation == "RELU_N1_TO_1":
        return np.clip(y, -1.0, 1.0)
    raise QuantizerError(f"unknown fused activation {activation!r}")


def _pair(value, default=1) -> tuple[int, int]:
    value = default if value is None else value
    return (int(value), int(value)) if np.isscalar(value) else (int(value[0]), int(value[1]))


def _bias(bias, channels: int) -> np.ndarray:
    return np.zeros(channels) if bias is None else np.asarray(bias, np.float64).reshape(-1)


@float_op("FULLY_CONNECTED")
def _fully_connected(op, graph, inputs):
    x, w, bias = (inputs + [None])[:3]
    w = np.asarray(w, np.float64)
    y = np.asarray(x).reshape(-1, w.shape[1]) @ w.T + _bias(bias, w.shape[0])
    return y.reshape(len(x), *graph.op_output(op).sample_shape)


@float_op("CONV_2D")
def _conv(op, graph, inputs):
    x, w, bias = (inputs + [None])[:3]
    w = np.asarray(w, np.float64)
    if w.shape[3] != x.shape[3]:
        raise QuantizerError(f"CONV_2D {op.name}: {x.shape[3]} input channels, filters of "
                             f"{w.shape[3]}")
    patches = im2col(x, w.shape[1:3], stride=op.options.get("stride", 1),
                     dilation=op.options.get("dilation", 1),
                     padding=op.options.get("padding", "SAME"), pad_value=0.0)
    return patches @ w.reshape(w.shape[0], -1).T + _bias(bias, w.shape[0])


@float_op("DEPTHWISE_CONV_2D")
def _depthwise(op, graph, inputs):
    x, w, bias = (inputs + [None])[:3]
    w = np.asarray(w, np.float64)
    _, kh, kw, cout = w.shape
    n, cin = len(x), x.shape[3]
    patches = im2col(x, (kh, kw), stride=op.options.get("stride", 1),
                     dilation=op.options.get("dilation", 1),
                     padding=op.options.get("padding", "SAME"), pad_value=0.0)
    taps = patches.reshape(n, *patches.shape[1:3], kh * kw, cin, 1)
    filters = w.reshape(kh * kw, cin, cout // cin)
    y = np.einsum("nhwtcm,tcm->nhwcm", taps, filters).reshape(*patches.shape[:3], cout)
    return y + _bias(bias, cout)


@float_op("AVERAGE_POOL_2D", "MAX_POOL_2D")
def _pool(op, graph, inputs):
    x = np.asarray(inputs[0])
    filter_, stride = _pair(op.options["filter"]), _pair(op.options.get("stride"))
    padding = op.options.get("padding", "VALID")
    if op.kind == "MAX_POOL_2D":
        return windows(x, filter_, stride, padding, -np.inf).max(axis=3)
    total = windows(x, filter_, stride, padding, 0.0).sum(axis=3)
    count = windows(np.ones((1, *x.shape[1:3], 1)), filter_, stride, padding, 0.0).sum(axis=3)
    return total / count  # the real taps only, as TFLite


@float_op("MEAN")
def _mean(op, graph, inputs):
    x = np.asarray(inputs[0])
    axes = tuple(int(a) % x.ndim for a in np.atleast_1d(op.options["axis"]))
    y = x.mean(axis=axes, keepdims=bool(op.options.get("keep_dims", False)))
    return y.reshape(len(x), *graph.op_output(op).sample_shape)


@float_op("ADD")
def _add(op, graph, inputs):
    t1, t2 = graph.op_inputs(op)
    batch = next(len(x) for t, x in zip((t1, t2), inputs) if not t.is_constant)
    y = np.asarray(inputs[0], np.float64) + np.asarray(inputs[1], np.float64)
    return y.reshape(batch, *graph.op_output(op).sample_shape)


@float_op("RESHAPE")
def _reshape(op, graph, inputs):
    x = np.asarray(inputs[0])
    return x.reshape(len(x), *graph.op_output(op).sample_shape)


@float_op("PAD")
def _pad(op, graph, inputs):
    return np.pad(np.asarray(inputs[0]), [tuple(p) for p in op.options["paddings"]])


@float_op("CONCATENATION")
def _concatenation(op, graph, inputs):
    tensors = graph.op_inputs(op)
    batch = next(len(x) for t, x in zip(tensors, inputs) if not t.is_constant)
    parts = [np.broadcast_to(x, (batch, *np.shape(x)[1:])) if t.is_constant else x
             for t, x in zip(tensors, inputs)]
    return np.concatenate(parts, axis=int(op.options.get("axis", -1)))


@float_op("SOFTMAX")
def _softmax(op, graph, inputs):
    x = float(op.options.get("beta", 1.0)) * np.asarray(inputs[0], np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def conform_input(graph: Graph, x) -> np.ndarray:
    """``x`` as float64 ``(samples, *input sample shape)`` (:meth:`Graph.conform_layout`),
    refusing NaN and infinities."""
    x = graph.conform_layout(np.asarray(x, np.float64))
    if not np.all(np.isfinite(x)):
        raise QuantizerError("inputs contain NaN or inf")
    return x


def run_float(graph: Graph, x, all_tensors: bool = False):
    """Float inference of ``graph`` on ``x`` (see :func:`conform_input`): the output tensor's
    values, or with ``all_tensors`` every computed tensor (graph input included) by name."""
    values = {graph.inputs[0]: conform_input(graph, x)}
    for op in graph.operators:
        function = FLOAT_OPS.get(op.kind)
        if function is None:
            raise QuantizerError(f"no float implementation of operator {op.kind} ({op.name})")
        args = [None if n is None else values[n] if n in values
                else np.asarray(graph.tensors[n].data, np.float64) for n in op.inputs]
        values[op.outputs[0]] = activate(function(op, graph, args), op.activation)
    return values if all_tensors else values[graph.outputs[0]]
