"""Float ONNX CNN import: an ONNX graph → a float :class:`~quantizer.graph.Graph` with TFLite's
operator kinds and NHWC activations (:mod:`quantizer.float_graph` runs it, and
:mod:`quantizer.quantize_graph` turns it into the int8 graph a ``.tflite`` imports as).

One handler per ONNX operator type (:data:`HANDLERS`), so the registry is the list of supported
operators; a model using anything else is refused in one line naming every unsupported type with
its count. Nodes computed from constants alone (``Constant``, a ``Transpose`` of a weight,
``Shape`` of a tensor whose shape is fixed) are folded with onnx's reference implementation.

Layout: a 4-D ONNX value ``(N, C, H, W)`` is stored NHWC; the graph input too, so calibration
and evaluation arrays are NHWC (:func:`~quantizer.float_graph.conform_input` also takes NCHW
samples, transposing them). A feature map flattened in ONNX's C, H, W order is stored in H, W,
C order, and the Gemm/MatMul reading it gets its weight columns permuted to match. Tensor names
are the ONNX file's; weights and biases are ``<output>/weights`` and ``<output>/bias``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from ..errors import QuantizerError
from ..golden import conv_output_size
from ..graph import CHANNELS_FIRST_INPUT, Graph, Operator, Tensor
from .onnx import read_model

#: Operators a fused activation can follow (TFLite options with fused_activation_function).
FUSES_ACTIVATION = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D",
                    "AVERAGE_POOL_2D")
#: NCHW axis → NHWC axis.
NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


@dataclass
class Value:
    """Where an ONNX value lives in the graph: its tensor and how that tensor's layout relates
    to ONNX's — ``nhwc`` (a 4-D NCHW value stored NHWC), ``plain`` (ONNX's own layout) or
    ``hwc_flat`` (an NCHW map of sample shape ``chw`` flattened in H, W, C order)."""

    tensor: str
    layout: str = "plain"
    chw: tuple[int, int, int] | None = None


class Builder:
    """The graph being assembled, and what handlers need from the ONNX model."""

    def __init__(self, path: Path, model):
        self.path, self.opset = path, _opset(model)
        self.constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.tensors: dict[str, Tensor] = {}
        self.operators: list[Operator] = []
        self.values: dict[str, Value] = {}
        self.uses = Counter(name for node in model.graph.node for name in node.input if name)
        self.uses.update(o.name for o in model.graph.output)

    def error(self, node, message: str) -> QuantizerError:
        label = f"{node.op_type} node '{node.name}'" if node.name else f"{node.op_type} node"
        return QuantizerError(f"{self.path}: {label}: {message}")

    # -- operands -------------------------------------------------------------------------
    def value(self, node, index: int = 0) -> Value:
        name = node.input[index] if index < len(node.input) else ""
        if name in self.constants or name not in self.values:
            raise self.error(node, f"input {index} must be an activation (computed from the "
                                   "graph input), not a constant")
        return self.values[name]

    def constant(self, node, index: int, what: str | None = None) -> np.ndarray | None:
        name = node.input[index] if index < len(node.input) else ""
        if name and name not in self.constants:
            raise self.error(node, f"the {what or f'input {index}'} must be a constant")
        if not name and what:
            raise self.error(node, f"the {what} is missing")
        return np.asarray(self.constants[name], np.float64) if name else None

    def onnx_shape(self, value: Value) -> tuple[int, ...]:
        """The value's shape in ONNX's layout (batch 1)."""
        shape = self.tensors[value.tensor].shape
        if value.layout == "nhwc":
            return (shape[0], shape[3], shape[1], shape[2])
        return shape

    def producer(self, value: Value) -> Operator | None:
        return next((op for op in self.operators if op.outputs[0] == value.tensor), None)

    def fusable(self, node) -> Operator | None:
        """The operator computing the node's input when nothing else reads that result, so the
        node may be folded into it."""
        name = node.input[0]
        if self.uses[name] != 1 or name not in self.values:
            return None
        value = self.values[name]
        op = self.producer(value)
        return op if op is not None and value.tensor == name else None

    # -- building -------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        base, i = name, 1
        while name in self.tensors:
            name, i = f"{base}_{i}", i + 1
        return name

    def constant_tensor(self, name: str, data: np.ndarray) -> str:
        name = self.unique(name)
        data = np.asarray(data, np.float32)
        self.tensors[name] = Tensor(name, data.shape, "float32", data=data)
        return name

    def emit(self, kind: str, inputs, output: str, shape, options: dict | None = None,
             layout: str = "plain", chw=None) -> Operator:
        name = self.unique(output)
        self.tensors[name] = Tensor(name, shape, "float32")
        op = Operator(kind, tuple(inputs), (name,), dict(options or {}))
        self.operators.append(op)
        self.values[output] = Value(name, layout, chw)
        return op

    def rename(self, op: Operator, output: str) -> None:
        """Give ``op`` the ONNX value ``output`` (a node folded into it computes that now)."""
        old = self.tensors.pop(op.outputs[0])
        value = next(v for v in self.values.values() if v.tensor == old.name)
        name = self.unique(output)
        self.tensors[name] = Tensor(name, old.shape, "float32")
        op.outputs, op.name = (name,), name
        self.values[output] = Value(name, value.layout, value.chw)

    def weights_name(self, node, suffix: str) -> str:
        return f"{node.output[0]}/{suffix}"


Handler = Callable[[Builder, object, dict], None]
HANDLERS: dict[str, Handler] = {}


def handler(*op_types: str) -> Callable[[Handler], Handler]:
    """Register the importer of ONNX operator types: it adds operators to the builder and maps
    the node's output to a :class:`Value`."""
    def register(function: Handler) -> Handler:
        for op_type in op_types:
            HANDLERS[op_type] = function
        return function
    return register


def supported_operators() -> list[str]:
    return sorted(HANDLERS)


def _opset(model) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _attributes(node) -> dict:
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


# -- windows: convolution and pooling ------------------------------------------------------
def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding ``(before, after)`` along one axis."""
    out, before = conv_output_size(size, kernel, stride, dilation, "SAME")
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return before, total - before


def _window(b: Builder, node, attrs: dict, x: Value, kernel: tuple[int, int]) -> dict:
    """Strides, dilations and padding of a Conv or pool node: ``padding`` is SAME when the
    node's padding is TFLite's SAME padding, else VALID with explicit ``pads`` (a PAD first)."""
    _, _, h, w = b.onnx_shape(x)
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2:
        raise b.error(node, "only 2-D windows (NCHW inputs) are supported")
    if min(*kernel, *strides, *dilations) < 1:
        raise b.error(node, f"kernel {kernel}, strides {strides} and dilations {dilations} "
                            "must be at least 1 (the file is damaged)")
    same = [_same_pads(size, k, s, d) for size, k, s, d in zip((h, w), kernel, strides,
                                                               dilations)]
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        pads = [(0, 0), (0, 0)]
    elif auto == "SAME_UPPER":
        pads = same
    elif auto == "SAME_LOWER":
        pads = [(after, before) for before, after in same]
    else:
        p = list(attrs.get("pads", (0, 0, 0, 0)))
        pads = [(p[0], p[2]), (p[1], p[3])]
    if any(v < 0 for pair in pads for v in pair):
        raise b.error(node, f"negative pads {pads} are not supported")
    result = {"stride": strides, "dilation": dilations, "pads": None}
    if all(v == 0 for pair in pads for v in pair):
        result["padding"] = "VALID"
    elif pads == same:
        result["padding"] = "SAME"
    else:
        result.update(padding="VALID", pads=pads)
    if attrs.get("ceil_mode", 0):
        for size, k, s, d, (pb, pa) in zip((h, w), kernel, strides, dilations, pads):
            span = size + pb + pa - (k - 1) * d - 1
            if span % s:
                raise b.error(node, "ceil_mode=1 changes the output size here; TFLite rounds "
                                    "down (export with ceil_mode=False)")
    return result


def _output_hw(b: Builder, x: Value, kernel, window: dict) -> tuple[int, int]:
    """The output size of a window over ``x`` (already padded if it needed a PAD)."""
    _, _, h, w = b.onnx_shape(x)
    return tuple(conv_output_size(size, k, s, d, window["padding"])[0]
                 for size, k, s, d in zip((h, w), kernel, window["stride"], window["dilation"]))


def _pad_first(b: Builder, node, x: Value, pads) -> Value:
    """A PAD operator (zeros) in front of a window whose padding is not TFLite's SAME."""
    n, h, w, c = b.tensors[x.tensor].shape
    (top, bottom), (left, right) = pads
    name = f"{node.output[0]}/pad"
    b.emit("PAD", (x.tensor,), name, (n, h + top + bottom, w + left + right, c),
           {"paddings": ((0, 0), (top, bottom), (left, right), (0, 0))}, "nhwc")
    return b.values[name]


def _nhwc(b: Builder, node, index: int = 0) -> Value:
    x = b.value(node, index)
    if x.layout != "nhwc":
        raise b.error(node, f"needs a 4-D NCHW input, got shape {b.onnx_shape(x)}")
    return x


@handler("Conv")
def _conv(b: Builder, node, attrs: dict) -> None:
    x = _nhwc(b, node)
    w = b.constant(node, 1, "weight")
    if w.ndim != 4:
        raise b.error(node, f"only 2-D convolutions are supported, weight shape {w.shape}")
    cout, cin_group, kh, kw = w.shape
    cin, group = b.onnx_shape(x)[1], int(attrs.get("group", 1))
    bias = b.constant(node, 2)
    bias = np.zeros(cout) if bias is None else bias.reshape(-1)
    window = _window(b, node, attrs, x, (kh, kw))
    options = {"stride": window["stride"], "dilation": window["dilation"],
               "padding": window["padding"], "activation": "NONE"}
    if group == 1:
        kind, weight = "CONV_2D", w.transpose(0, 2, 3, 1)               # (Cout, KH, KW, Cin)
    elif group == cin and cin_group == 1:
        kind, weight = "DEPTHWISE_CONV_2D", w.transpose(1, 2, 3, 0)     # (1, KH, KW, Cout)
        options["depth_multiplier"] = cout // cin
    else:
        raise b.error(node, f"grouped convolution (group={group} of {cin} channels) is not "
                            "supported: only group 1 and depthwise (group = channels)")
    if window["pads"]:
        x = _pad_first(b, node, x, window["pads"])
    oh, ow = _output_hw(b, x, (kh, kw), window)
    b.emit(kind, (x.tensor, b.constant_tensor(b.weights_name(node, "weights"), weight),
                  b.constant_tensor(b.weights_name(node, "bias"), bias)),
           node.output[0], (1, oh, ow, cout), options, "nhwc")


@handler("MaxPool", "AveragePool")
def _pool(b: Builder, node, attrs: dict) -> None:
    x = _nhwc(b, node)
    if len(node.output) > 1 and node.output[1]:
        raise b.error(node, "the Indices output is not supported")
    kernel = tuple(attrs["kernel_shape"])
    window = _window(b, node, attrs, x, kernel)
    if window["dilation"] != (1, 1):
        raise b.error(node, "dilated pooling is not supported")
    kind = "MAX_POOL_2D" if node.op_type == "MaxPool" else "AVERAGE_POOL_2D"
    explicit = window["pads"] or (window["padding"] == "SAME" and kind == "AVERAGE_POOL_2D"
                                  and attrs.get("count_include_pad", 0))
    if explicit:
        pads = window["pads"] or [_same_pads(size, k, s, 1) for size, k, s in zip(
            b.onnx_shape(x)[2:], kernel, window["stride"])]
        # A zero PAD then VALID pooling is exact for an average counting the padding, and for
        # a maximum over non-negative inputs; TFLite's SAME pooling skips padded taps.
        producer = b.producer(x)
        if kind == "MAX_POOL_2D" and (producer is None or producer.activation not in (
                "RELU", "RELU6")):
            raise b.error(node, f"pads {pads} differ from TFLite's SAME padding, and the input "
                                "may be negative (only a ReLU'd input can be zero-padded)")
        if kind == "AVERAGE_POOL_2D" and not attrs.get("count_include_pad", 0):
            raise b.error(node, f"pads {pads} differ from TFLite's SAME padding, whose average "
                                "counts only real taps (count_include_pad=0)")
        x = _pad_first(b, node, x, pads)
        window.update(padding="VALID")
    oh, ow = _output_hw(b, x, kernel, window)
    b.emit(kind, (x.tensor,), node.output[0], (1, oh, ow, b.onnx_shape(x)[1]),
           {"filter": kernel, "stride": window["stride"], "padding": window["padding"],
            "activation": "NONE"}, "nhwc")


@handler("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(b: Builder, node, attrs: dict) -> None:
    x = _nhwc(b, node)
    _, c, h, w = b.onnx_shape(x)
    if node.op_type == "GlobalAveragePool":   # as the TFLite converter writes it
        b.emit("MEAN", (x.tensor,), node.output[0], (1, 1, 1, c),
               {"axis": (1, 2), "keep_dims": True}, "nhwc")
    else:
        b.emit("MAX_POOL_2D", (x.tensor,), node.output[0], (1, 1, 1, c),
               {"filter": (h, w), "stride": (1, 1), "padding": "VALID", "activation": "NONE"},
               "nhwc")


@handler("ReduceMean")
def _reduce_mean(b: Builder, node, attrs: dict) -> None:
    x = b.value(node)
    shape = b.onnx_shape(x)
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = b.constant(node, 1, "axes").astype(int).tolist()
    axes = sorted({int(a) % len(shape) for a in (axes if axes is not None
                                                  else range(len(shape)))})
    if 0 in axes or x.layout == "hwc_flat":
        raise b.error(node, "only a mean over sample axes of an unflattened tensor is supported")
    keep = bool(attrs.get("keepdims", 1))
    stored = [NHWC_AXIS[a] for a in axes] if x.layout == "nhwc" else axes
    order = [0, 2, 3, 1] if x.layout == "nhwc" else list(range(len(shape)))  # ONNX axes, stored
    kept = [a for a in order if a not in axes]
    if not keep and x.layout == "nhwc" and kept != sorted(kept):
        raise b.error(node, "this reduction without keepdims would need a transpose")
    out = [1 if a in stored else d for a, d in enumerate(b.tensors[x.tensor].shape)]
    if not keep:
        out = [d for a, d in enumerate(out) if a not in stored]
    b.emit("MEAN", (x.tensor,), node.output[0], out,
           {"axis": tuple(sorted(stored)), "keep_dims": keep},
           x.layout if keep else "plain")


# -- elementwise, activations, normalization ------------------------------------------------
def _clip_activation(b: Builder, node, attrs: dict) -> str:
    lo, hi = b.constant(node, 1), b.constant(node, 2)
    lo = float(attrs.get("min", -np.inf) if lo is None else lo)
    hi = float(attrs.get("max", np.inf) if hi is None else hi)
    activation = {(0.0, 6.0): "RELU6", (0.0, np.inf): "RELU", (-1.0, 1.0): "RELU_N1_TO_1"}.get(
        (lo, hi))
    if activation is None:
        raise b.error(node, f"Clip({lo:g}, {hi:g}) is not supported: only Clip(0, 6) (ReLU6), "
                            "Clip(-1, 1) and Clip(0, inf) (ReLU)")
    return activation


def _combine(first: str, then: str) -> str | None:
    """The one fused activation equal to ``then`` applied after ``first``, if any."""
    if first in ("NONE", then):
        return then
    if {first, then} == {"RELU", "RELU6"}:
        return "RELU6"
    return None


@handler("Relu", "Clip")
def _activation(b: Builder, node, attrs: dict) -> None:
    activation = "RELU" if node.op_type == "Relu" else _clip_activation(b, node, attrs)
    x = b.value(node)
    producer = b.producer(x)
    if producer is not None and _combine(producer.activation, activation) == \
            producer.activation:      # already applied: e.g. a Relu after a fused ReLU6
        b.values[node.output[0]] = x
        return
    op = b.fusable(node)
    fused = _combine(op.activation, activation) if op is not None and \
        op.kind in FUSES_ACTIVATION else None
    if fused is None:
        after = f"after {producer.kind} {producer.name}" if producer else "on the graph input"
        raise b.error(node, f"a standalone {node.op_type} {after} cannot be fused into the "
                            "operator before it (TFLite fuses activations into Conv, Gemm, Add "
                            "and pooling whose result nothing else reads)")
    op.options["activation"] = fused
    b.rename(op, node.output[0])


@handler("BatchNormalization")
def _batchnorm(b: Builder, node, attrs: dict) -> None:
    """``γ·(y − μ)/√(σ² + ε) + β``: folded into the Conv or Gemm before it; anywhere else a
    1x1 depthwise convolution (4-D) or a diagonal fully-connected layer (2-D)."""
    if attrs.get("training_mode", 0) or any(node.output[1:]):
        raise b.error(node, "training-mode BatchNormalization is not supported (export in eval "
                            "mode)")
    x = b.value(node)
    gamma, beta, mean, var = (b.constant(node, i, what) for i, what in zip(
        range(1, 5), ("scale", "bias", "mean", "variance")))
    factor = gamma / np.sqrt(var + attrs.get("epsilon", 1e-5))
    shift = beta - mean * factor
    op = b.fusable(node)
    if op is not None and op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") \
            and op.activation == "NONE":
        w, bias = (b.tensors[name] for name in op.inputs[1:3])
        scale = factor.reshape((-1, 1, 1, 1) if op.kind == "CONV_2D" else
                               (1, 1, 1, -1) if op.kind == "DEPTHWISE_CONV_2D" else (-1, 1))
        w.data = (w.data * scale).astype(np.float32)
        bias.data = (bias.data * factor + shift).astype(np.float32)
        b.rename(op, node.output[0])
    elif x.layout == "nhwc":
        c = len(factor)
        b.emit("DEPTHWISE_CONV_2D", (x.tensor, b.constant_tensor(
            b.weights_name(node, "weights"), factor.reshape(1, 1, 1, c)),
            b.constant_tensor(b.weights_name(node, "bias"), shift)), node.output[0],
            b.tensors[x.tensor].shape, {"stride": (1, 1), "dilation": (1, 1),
                                        "padding": "VALID", "activation": "NONE",
                                        "depth_multiplier": 1}, "nhwc")
    elif x.layout == "plain" and len(b.onnx_shape(x)) == 2:
        b.emit("FULLY_CONNECTED", (x.tensor, b.constant_tensor(
            b.weights_name(node, "weights"), np.diag(factor)),
            b.constant_tensor(b.weights_name(node, "bias"), shift)), node.output[0],
            b.tensors[x.tensor].shape, {"activation": "NONE"})
    else:
        raise b.error(node, f"cannot normalize a tensor of shape {b.onnx_shape(x)}")


@handler("Add")
def _add(b: Builder, node, attrs: dict) -> None:
    constant = next((i for i in (0, 1) if node.input[i] in b.constants), None)
    if constant is None:
        x1, x2 = b.value(node, 0), b.value(node, 1)
        if (x1.layout, x1.chw) != (x2.layout, x2.chw):
            raise b.error(node, f"adds tensors of different layouts ({x1.layout}, {x2.layout})")
        shape = np.broadcast_shapes(b.tensors[x1.tensor].shape, b.tensors[x2.tensor].shape)
        b.emit("ADD", (x1.tensor, x2.tensor), node.output[0], shape, {"activation": "NONE"},
               x1.layout, x1.chw)
        return
    x = b.value(node, 1 - constant)
    c = np.asarray(b.constants[node.input[constant]], np.float64)
    shape = b.onnx_shape(x)
    try:
        full = np.broadcast_to(c, shape)
    except ValueError:
        raise b.error(node, f"a constant of shape {c.shape} does not broadcast to "
                            f"{shape}") from None
    op = b.fusable(node)
    channel = full[(0, slice(None), *([0] * (len(shape) - 2)))] if len(shape) >= 2 else None
    if op is not None and op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") \
            and op.activation == "NONE" and x.layout != "hwc_flat" and channel is not None \
            and np.array_equal(np.broadcast_to(
                channel.reshape(1, -1, *([1] * (len(shape) - 2))), shape), full):
        bias = b.tensors[op.inputs[2]]            # a bias after MatMul or Conv: fold it
        bias.data = (bias.data + channel).astype(np.float32)
        b.rename(op, node.output[0])
        return
    if x.layout == "hwc_flat":
        raise b.error(node, "adding a constant to a flattened feature map is not supported")
    if x.layout == "nhwc":
        c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 2, 3, 1)
    b.emit("ADD", (x.tensor, b.constant_tensor(f"{node.output[0]}/constant", c)),
           node.output[0], b.tensors[x.tensor].shape, {"activation": "NONE"}, x.layout, x.chw)


@handler("Concat")
def _concat(b: Builder, node, attrs: dict) -> None:
    values = [b.value(node, i) for i in range(len(node.input))]
    layouts = {(v.layout, v.chw) for v in values}
    if len(layouts) != 1 or values[0].layout == "hwc_flat":
        raise b.error(node, "concatenates tensors of different or flattened layouts")
    rank = len(b.onnx_shape(values[0]))
    axis = int(attrs.get("axis", 1)) % rank
    if axis == 0:
        raise b.error(node, "concatenation along the batch axis is not supported")
    axis = NHWC_AXIS[axis] if values[0].layout == "nhwc" else axis
    shapes = [b.tensors[v.tensor].shape for v in values]
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    b.emit("CONCATENATION", [v.tensor for v in values], node.output[0], out,
           {"axis": axis, "activation": "NONE"}, values[0].layout)


@handler("Pad")
def _pad(b: Builder, node, attrs: dict) -> None:
    x = b.value(node)
    if attrs.get("mode", "constant") != "constant" or (len(node.input) > 3 and node.input[3]):
        raise b.error(node, "only constant padding of every axis is supported")
    pads = attrs.get("pads")
    pads = b.constant(node, 1, "pads").astype(int).tolist() if pads is None else list(pads)
    value = b.constant(node, 2) if len(node.input) > 2 else None
    if value is not None and float(np.asarray(value).reshape(-1)[0]) != 0.0:
        raise b.error(node, "only zero padding is supported (TFLite's PAD)")
    rank = len(pads) // 2
    pairs = [(int(pads[i]), int(pads[i + rank])) for i in range(rank)]
    if x.layout == "hwc_flat" or pairs[0] != (0, 0) or any(v < 0 for p in pairs for v in p):
        raise b.error(node, f"pads {pads}: only non-negative padding of sample axes")
    if x.layout == "nhwc":
        pairs = [pairs[0], pairs[2], pairs[3], pairs[1]]
    shape = [d + sum(p) for d, p in zip(b.tensors[x.tensor].shape, pairs)]
    b.emit("PAD", (x.tensor,), node.output[0], shape, {"paddings": tuple(pairs)}, x.layout)


# -- shapes, dense layers, softmax ----------------------------------------------------------
def _flat(b: Builder, node, x: Value) -> None:
    """A 4-D map flattened to ``(N, C·H·W)``: stored in H, W, C order."""
    _, c, h, w = b.onnx_shape(x)
    trivial = c == 1 or h * w == 1     # both orders agree
    b.emit("RESHAPE", (x.tensor,), node.output[0], (1, c * h * w), {},
           "plain" if trivial else "hwc_flat", None if trivial else (c, h, w))


@handler("Flatten")
def _flatten(b: Builder, node, attrs: dict) -> None:
    x = b.value(node)
    shape = b.onnx_shape(x)
    if int(attrs.get("axis", 1)) % max(len(shape), 1) != 1:
        raise b.error(node, "only Flatten with axis=1 (samples × features) is supported")
    if len(shape) == 2:
        b.values[node.output[0]] = x
    elif x.layout == "nhwc":
        _flat(b, node, x)
    else:
        b.emit("RESHAPE", (x.tensor,), node.output[0], (1, int(np.prod(shape[1:]))), {})


@handler("Reshape")
def _reshape(b: Builder, node, attrs: dict) -> None:
    x = b.value(node)
    shape = b.onnx_shape(x)
    target = b.constant(node, 1, "shape").astype(int).tolist()
    target = [shape[i] if t == 0 and not attrs.get("allowzero", 0) else t
              for i, t in enumerate(target)]
    if -1 in target:
        known = int(np.prod([t for t in target if t != -1]))
        target[target.index(-1)] = int(np.prod(shape)) // max(known, 1)
    if int(np.prod(target)) != int(np.prod(shape)) or target[0] != 1:
        raise b.error(node, f"reshape of {shape} to {target}: the batch must stay the first "
                            "dimension")
    if tuple(target) == shape:
        b.values[node.output[0]] = x
        return

    def trivial(s):   # NCHW and NHWC orders agree
        return len(s) != 4 or s[1] == 1 or s[2] * s[3] == 1

    if x.layout == "nhwc" and len(target) == 2:
        _flat(b, node, x)
    elif x.layout == "hwc_flat" or (x.layout == "nhwc" and not trivial(shape)) \
            or not trivial(target):
        raise b.error(node, f"reshape of {shape} to {target} would need a transpose in NHWC")
    elif len(target) == 4:
        n, c, h, w = target
        b.emit("RESHAPE", (x.tensor,), node.output[0], (n, h, w, c), {}, "nhwc")
    else:
        b.emit("RESHAPE", (x.tensor,), node.output[0], target, {})


def _dense(b: Builder, node, x: Value, weight: np.ndarray, bias: np.ndarray) -> None:
    """FULLY_CONNECTED with ``weight`` ``(out, in)`` in ONNX's column order."""
    if x.layout == "nhwc" or len(b.onnx_shape(x)) != 2:
        raise b.error(node, f"needs a 2-D (samples × features) input, got shape "
                            f"{b.onnx_shape(x)}")
    if weight.shape[1] != b.onnx_shape(x)[1]:
        raise b.error(node, f"weight {weight.shape} does not match {b.onnx_shape(x)[1]} inputs")
    if x.layout == "hwc_flat":    # the columns of an NCHW flatten, in the stored H, W, C order
        weight = weight.reshape(len(weight), *x.chw).transpose(0, 2, 3, 1).reshape(
            len(weight), -1)
    b.emit("FULLY_CONNECTED", (x.tensor, b.constant_tensor(b.weights_name(node, "weights"),
                                                           weight),
                               b.constant_tensor(b.weights_name(node, "bias"), bias)),
           node.output[0], (1, weight.shape[0]), {"activation": "NONE"})


@handler("Gemm")
def _gemm(b: Builder, node, attrs: dict) -> None:
    if attrs.get("transA", 0):
        raise b.error(node, "transA=1 is not supported (samples must be rows)")
    w = b.constant(node, 1, "weight")
    if w.ndim != 2:
        raise b.error(node, f"the weight must be 2-D, got shape {w.shape}")
    weight = (w if attrs.get("transB", 0) else w.T) * attrs.get("alpha", 1.0)
    c = b.constant(node, 2)
    bias = np.zeros(len(weight)) if c is None else \
        np.broadcast_to(c * attrs.get("beta", 1.0), (1, len(weight))).reshape(-1)
    _dense(b, node, b.value(node), weight, bias)


@handler("MatMul")
def _matmul(b: Builder, node, attrs: dict) -> None:
    w = b.constant(node, 1, "weight (x @ W)")
    if w.ndim != 2:
        raise b.error(node, f"the weight must be 2-D, got shape {w.shape}")
    _dense(b, node, b.value(node), w.T, np.zeros(w.shape[1]))


@handler("Softmax")
def _softmax(b: Builder, node, attrs: dict) -> None:
    x = b.value(node)
    rank = len(b.onnx_shape(x))
    axis = int(attrs.get("axis", -1 if b.opset >= 13 else 1)) % rank
    last = (x.layout == "nhwc" and axis == 1 and b.opset >= 13) or \
        (x.layout == "plain" and axis == rank - 1)
    if not last:
        raise b.error(node, "only a softmax over the last (class) axis is supported")
    b.emit("SOFTMAX", (x.tensor,), node.output[0], b.tensors[x.tensor].shape, {"beta": 1.0},
           x.layout)


@handler("Identity", "Dropout")
def _identity(b: Builder, node, attrs: dict) -> None:
    if any(node.output[1:]) and b.uses[node.output[1]]:
        raise b.error(node, "the dropout mask output is not supported")
    b.values[node.output[0]] = b.value(node)


# -- the model ------------------------------------------------------------------------------
def _is_constant(node, constants) -> bool:
    return node.op_type == "Shape" or all(name in constants for name in node.input if name)


def _check_supported(path: Path, model) -> None:
    constants = {t.name for t in model.graph.initializer}
    unsupported = Counter()
    for node in model.graph.node:
        if _is_constant(node, constants):
            constants.update(node.output)
        elif node.op_type not in HANDLERS:
            unsupported[node.op_type] += 1
    if unsupported:
        listed = ", ".join(f"{op} ×{n}" for op, n in sorted(unsupported.items()))
        quantized = " — the model is quantized already; this importer takes float models" \
            if {"QuantizeLinear", "DequantizeLinear"} & set(unsupported) else ""
        raise QuantizerError(f"{path}: unsupported ONNX operators: {listed}{quantized} "
                             f"(supported: {', '.join(supported_operators())})")


def _fold(b: Builder, node) -> None:
    """Evaluate a node computed from constants alone (``Shape``: from the fixed shape)."""
    if node.op_type == "Shape" and node.input[0] not in b.constants:
        shape = np.array(b.onnx_shape(b.value(node)), np.int64)
        attrs = _attributes(node)
        b.constants[node.output[0]] = shape[attrs.get("start", 0):attrs.get("end", None)]
        return
    try:
        values = ReferenceEvaluator(node).run(None, {name: b.constants[name]
                                                     for name in node.input if name})
    except Exception as exc:  # the reference ops raise many types
        raise b.error(node, f"cannot fold this constant expression: {exc}") from None
    b.constants.update(zip(node.output, values))


def _input_value(path: Path, b: Builder, graph_input) -> None:
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in graph_input.type.tensor_type.shape.dim]
    if len(dims) < 2 or any(d is None or d < 1 for d in dims[1:]):
        raise QuantizerError(f"{path}: input '{graph_input.name}' needs fixed sample dimensions "
                             f"(batch first), got {dims}")
    name = graph_input.name
    if len(dims) == 4:
        _, c, h, w = dims
        b.tensors[name] = Tensor(name, (1, h, w, c), "float32")
        b.values[name] = Value(name, "nhwc")
    else:
        b.tensors[name] = Tensor(name, (1, *dims[1:]), "float32")
        b.values[name] = Value(name)


def load_onnx_graph(path: Path | str) -> Graph:
    """Import the float ONNX model ``path`` as a float :class:`Graph` (NHWC, TFLite ops)."""
    path = Path(path)
    model = read_model(path)
    b = Builder(path, model)
    inputs = [i for i in model.graph.input if i.name not in b.constants]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise QuantizerError(f"{path}: the graph must have one input and one output, it has "
                             f"{len(inputs)} and {len(model.graph.output)}")
    _check_supported(path, model)
    _input_value(path, b, inputs[0])
    for node in model.graph.node:
        if _is_constant(node, b.constants):
            _fold(b, node)
        else:
            HANDLERS[node.op_type](b, node, _attributes(node))
    output = model.graph.output[0].name
    value = b.values.get(output)
    if value is None:
        raise QuantizerError(f"{path}: the graph output '{output}' is not computed from the "
                             "input")
    if value.layout == "hwc_flat":
        raise QuantizerError(f"{path}: the output '{output}' is a flattened feature map, whose "
                             "NHWC order differs from ONNX's; end the model with a Gemm")
    for name, tensor in b.tensors.items():
        if tensor.is_constant and not np.all(np.isfinite(tensor.data)):
            raise QuantizerError(f"{path}: {name} contains NaN or inf")
    used = {n for op in b.operators for n in op.inputs} | {inputs[0].name, value.tensor} | \
        {n for op in b.operators for n in op.outputs}
    tensors = {n: t for n, t in b.tensors.items() if n in used}
    meta = {"source": str(path), "format": "onnx", "input_layout": "NHWC"}
    if b.values[inputs[0].name].layout == "nhwc":
        meta[CHANNELS_FIRST_INPUT] = list(b.onnx_shape(b.values[inputs[0].name])[1:])
    if not b.operators:
        raise QuantizerError(f"{path}: the graph has no operators")
    return Graph(tensors, b.operators, [inputs[0].name], [value.tensor], meta)
