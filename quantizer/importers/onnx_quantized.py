"""Quantized ONNX import: models ONNX Runtime's static quantization wrote (or any tool writing the
same operators) → the int8/uint8 :class:`~quantizer.graph.Graph`, with the model's own scales,
zero points and integer weights, so that the golden model (TFLite's integer arithmetic) runs it.

Two formats are read, also mixed in one file:

* **QDQ** — float operators wrapped in ``DequantizeLinear`` (inputs, weights, biases) and
  ``QuantizeLinear`` (output): every ``DequantizeLinear → op → QuantizeLinear`` group becomes
  one graph operator whose output takes the ``QuantizeLinear``'s parameters.
* **QOperator** — ``QLinearConv``, ``QLinearMatMul``, ``QGemm``, ``QLinearAdd``,
  ``QLinearAveragePool``, ``QLinearGlobalAveragePool``, ``QLinearConcat`` (the
  ``com.microsoft`` ones included) carry their parameters as operands; ``MaxPool``, ``Flatten``,
  ``Reshape``, ``Pad`` applied to integer tensors directly keep their input's parameters.

Operator mapping (ONNX → graph):

* ``Conv``, ``QLinearConv`` → ``CONV_2D`` (group 1) or ``DEPTHWISE_CONV_2D`` (group = input
  channels, any multiplier); other groupings are refused.
* ``Gemm``, ``QGemm``, ``MatMul``, ``QLinearMatMul`` → ``FULLY_CONNECTED``; an ``Add`` of a
  constant directly on a ``MatMul``'s float output folds in as its bias, an ``Add`` after the
  ``MatMul``'s own quantization (what ONNX Runtime writes) stays an ``ADD`` of a constant.
* ``Add``, ``QLinearAdd`` → ``ADD`` (a constant operand becomes a constant tensor).
* ``MaxPool`` → ``MAX_POOL_2D``; pads TFLite's SAME does not make become a ``PADV2`` with the
  type's minimum and a VALID pool.
* ``AveragePool``, ``QLinearAveragePool`` → ``AVERAGE_POOL_2D`` (``count_include_pad=1``: a
  ``PAD`` and a VALID pool).
* ``GlobalAveragePool``, ``QLinearGlobalAveragePool``, ``ReduceMean`` → ``MEAN``.
* ``Flatten``, ``Reshape`` → ``RESHAPE``; ``Concat``, ``QLinearConcat`` → ``CONCATENATION``;
  ``Pad`` (constant 0) → ``PAD``; ``Identity``, ``Dropout`` vanish.
* ``Relu``, ``Clip`` → the fused ``activation`` of the operator before them (see below).

Conventions of the graph that differ from ONNX's:

* Layout: ONNX activations are NCHW, the graph's NHWC. Rank-4 tensors are transposed (shapes,
  concatenation and mean axes, 4-D constants); the graph input is NHWC
  (``meta["onnx_input_shape"]`` keeps the ONNX one). Flattening an NCHW tensor orders its values
  C, H, W; the graph's flatten orders them H, W, C, so the weight columns of the
  ``Gemm``/``MatMul`` reading it are permuted to match. Any other use of such a flattened tensor
  (where the order would be visible) is refused.
* Padding: a convolution whose ``pads`` are TFLite's SAME padding for its geometry is SAME, zero
  pads VALID, anything else a ``PAD`` operator (the input's zero point, real 0) and VALID.
* Activations: ONNX Runtime removes a ``Relu``/``Clip`` that follows an operator and quantizes
  that operator's output with the activation's range instead, so the clamp is implied by the
  output's zero point and scale (the operator's activation is ``NONE``). A ``Relu``/``Clip``
  still present is fused into the operator before it: directly on its float output, or, when
  wrapped in its own ``DequantizeLinear``/``QuantizeLinear`` (``QDQKeepRemovableActivations``),
  into the producer of the tensor it reads when nothing else reads that tensor (followed by a
  ``QUANTIZE`` if the activation's output parameters differ). The clamp must be one of TFLite's
  (RELU, RELU6, RELU_N1_TO_1, or none within the output's range).
* Operators TFLite runs without rescaling (pools, reshape, int8 concatenation, padding) whose
  ONNX input and output parameters differ get a ``QUANTIZE`` (requantization) after them (before
  them, for concatenation inputs).
* Biases: int32 with scale ``s_in·s_w`` are imported as they are (ONNX Runtime writes them so);
  another scale, a float bias or an 8-bit quantized one is requantized to ``s_in·s_w`` (round
  half to even, as ONNX Runtime quantizes biases).
* Types: activations int8 or uint8 (the ``QuantizeLinear`` zero point's type; ONNX Runtime's
  ``quantize_static`` default is int8, ``QuantType.QUInt8`` gives uint8), weights int8 or uint8.
  The golden kernels take one 8-bit type for activations and weights, so weights of the other
  type are re-expressed exactly: ``w + 128`` with zero point ``z_w + 128`` (int8 → uint8), or
  ``− 128`` (uint8 → int8); ``w − z_w`` and every accumulator are unchanged
  (``meta["weights_offset"]`` records it).

Anything else is refused: one error line lists every unsupported operator with its count.
ONNX Runtime requantizes in float (round half to even) where TFLite uses fixed-point multipliers,
so its outputs agree with the golden model's to within one step, not bit for bit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import QuantizerError
from ..graph import NUMPY_DTYPES, Graph, Operator, Tensor, activation_range
from .onnx import read_model

#: Operator types that only a quantized model holds.
QUANTIZATION_OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv",
    "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu",
    "QLinearSoftmax", "QLinearReduceMean", "QLinearWhere", "QLinearConvTranspose",
    "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
    "QAttention", "QEmbedLayerNormalization", "QOrderedMatMul"})

_8BIT = ("int8", "uint8")
_STRUCTURAL = ("QuantizeLinear", "DequantizeLinear", "Constant", "Identity")
#: Graph operators that apply a fused activation.
_FUSES_ACTIVATION = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD",
                     "AVERAGE_POOL_2D", "MAX_POOL_2D")
#: NCHW axis → NHWC axis.
_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


def is_quantized_onnx(model: onnx.ModelProto) -> bool:
    """True when ``model`` holds quantization operators (QDQ or QOperator format, static or
    dynamic): it is for :func:`load_quantized_onnx`, not the float importer."""
    return any(node.op_type in QUANTIZATION_OPS for node in model.graph.node)


# ----------------------------------------------------------------------------------- operands

@dataclass
class _Const:
    """A constant operand as the model stores it: integers with their quantization (``scale``
    ``None`` when the operator implies it, as QLinearConv's int32 bias), or float data."""

    name: str
    data: np.ndarray
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int | None = None

    @property
    def dtype(self) -> str:
        return str(self.data.dtype)

    def real(self) -> np.ndarray:
        """The real values (float64)."""
        if self.scale is None or self.data.dtype.kind == "f":
            return self.data.astype(np.float64)
        axis = 0 if self.axis is None else self.axis  # QLinear weights: output channels
        zero = 0 if self.zero_point is None else _along(self.zero_point, self.data.ndim, axis)
        return (self.data.astype(np.float64) - zero) * _along(self.scale, self.data.ndim, axis)


@dataclass
class _Pending:
    """A graph operator whose output is still a float ONNX tensor, waiting for the
    ``QuantizeLinear`` that gives it its parameters."""

    op: Operator | None
    shape: tuple[int, ...]
    layout: tuple
    label: str
    #: The tensor whose parameters the kernel needs on its output (pools, reshape, padding).
    same_quant_as: str | None = None
    #: A fused Relu/Clip: (low, high) real bounds and the ONNX operator that asked for it.
    clip: tuple[float, float] | None = None
    clip_type: str = ""
    #: A Relu/Clip wrapped in its own Q/DQ: the tensor it reads, fused into that producer.
    fuse_into: Operator | None = None
    source: str | None = None


# ----------------------------------------------------------------------------------- handlers

class _Node:
    """What a handler sees of one ONNX node: its attributes, its operands resolved to graph
    tensors (activations) or :class:`_Const` (weights, biases), and :meth:`emit`."""

    def __init__(self, builder: _Builder, node, spec: _QLinear | None):
        self.b, self.node, self.spec = builder, node, spec
        self.attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.op_type = spec.op if spec else node.op_type
        label = node.name or (node.output[0] if node.output else "")
        self.label = f"{node.op_type} node '{label}'"
        self.name = node.name or node.output[0]
        self.slots = spec.slots(node) if spec else [i for i in range(len(node.input))]
        # qlinear: parameters are operands; direct: an integer tensor read without
        # DequantizeLinear (QOperator's MaxPool, Flatten…); qdq: float operands from
        # DequantizeLinear, the output quantized by the QuantizeLinear that follows.
        first = builder.float_alias.get(node.input[0], node.input[0]) if node.input else ""
        if spec:
            self.mode = "qlinear"
        elif first not in builder.dq and first not in builder.pending and \
                builder.alias.get(first, first) in builder.tensors:
            self.mode = "direct"
        else:
            self.mode = "qdq"

    def error(self, message: str) -> QuantizerError:
        return self.b.error(f"{self.label}: {message}")

    @property
    def count(self) -> int:
        return len(self.slots)

    def operand(self, i: int):
        """Operand ``i``: a graph tensor name (activation), a :class:`_Const`, a
        :class:`_Pending` (a float output not yet quantized) or ``None`` when omitted."""
        if i >= len(self.slots):
            return None
        slot = self.slots[i]
        if isinstance(slot, tuple):  # QLinear (data, scale, zero point)
            return self.b.qlinear_operand(self, *slot)
        name = self.node.input[slot] if slot < len(self.node.input) else ""
        return self.b.operand(self, name)

    def x(self, i: int) -> str:
        """Operand ``i``, which must be a quantized activation."""
        value = self.operand(i)
        if isinstance(value, str):
            return value
        if isinstance(value, _Pending):
            raise self.error(f"reads the float output of {value.label}, which is not "
                             "quantized (no QuantizeLinear between them)")
        raise self.error(f"operand {i} must be a quantized activation, got "
                         f"{'nothing' if value is None else 'a constant'}")

    def const(self, i: int) -> _Const | None:
        value = self.operand(i)
        if value is None or isinstance(value, _Const):
            return value
        raise self.error(f"operand {i} must be a constant in the model file (weights and "
                         "biases computed at run time are not supported)")

    def ints(self, name: str, default=None, length: int | None = None) -> list[int] | None:
        value = self.attrs.get(name, default)
        if value is None:
            return None
        value = [int(v) for v in np.atleast_1d(value)]
        if length is not None and len(value) != length:
            raise self.error(f"attribute {name} {value} needs {length} values")
        return value

    def emit(self, kind: str, inputs, options: dict, shape, layout, *,
             same_quant_as: str | None = None) -> _Pending:
        """Append the graph operator; its output is this node's output: quantized later by a
        QuantizeLinear (QDQ), now with the QLinear operator's parameters, or with
        ``same_quant_as``'s parameters (an integer tensor read directly)."""
        op = Operator(kind, tuple(inputs), (self.node.output[0],), options, self.name)
        self.b.operators.append(op)
        pending = _Pending(op, tuple(int(d) for d in shape), layout, self.label,
                           same_quant_as=same_quant_as)
        return self.b.settle(self, pending)


Handler = Callable[[_Node], None]
HANDLERS: dict[str, Handler] = {}


def handler(*op_types: str) -> Callable[[Handler], Handler]:
    """Register the importer of ONNX operators ``op_types`` (QLinear forms map onto these
    through :data:`QLINEAR`)."""
    def register(function: Handler) -> Handler:
        for op_type in op_types:
            HANDLERS[op_type] = function
        return function
    return register


@dataclass(frozen=True)
class _QLinear:
    """A QOperator-format node read as its float counterpart ``op``: ``operands`` are
    ``(data, scale, zero point)`` positions (or one position: an int32 bias), ``output`` the
    positions of the output's scale and zero point (``None`` for QLinearConcat's variadic
    form, handled in :meth:`slots`)."""

    op: str
    operands: tuple = ()
    output: tuple[int, int] | None = None

    def slots(self, node) -> list:
        if self.op == "Concat":
            return [(i, i + 1, i + 2) for i in range(2, len(node.input), 3)]
        return [s for s in self.operands if isinstance(s, tuple) or s < len(node.input)]

    def output_slots(self) -> tuple[int, int]:
        return self.output if self.output is not None else (0, 1)


QLINEAR: dict[str, _QLinear] = {
    "QLinearConv": _QLinear("Conv", ((0, 1, 2), (3, 4, 5), 8), (6, 7)),
    "QLinearMatMul": _QLinear("MatMul", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QGemm": _QLinear("Gemm", ((0, 1, 2), (3, 4, 5), 6), (7, 8)),
    "QLinearAdd": _QLinear("Add", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearAveragePool": _QLinear("AveragePool", ((0, 1, 2),), (3, 4)),
    "QLinearGlobalAveragePool": _QLinear("GlobalAveragePool", ((0, 1, 2),), (3, 4)),
    "QLinearConcat": _QLinear("Concat", (), None),
}


def supported_operators() -> list[str]:
    return sorted([*HANDLERS, *QLINEAR])


# ------------------------------------------------------------------------------ geometry

def _spatial(ctx: _Node, shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 4:
        raise ctx.error(f"needs a 4-D (N, C, H, W) input, got rank {len(shape)}")
    return shape[1], shape[2]


def _pads(ctx: _Node, size: tuple[int, int], kernel: tuple[int, int], stride, dilation
          ) -> list[tuple[int, int]]:
    """``[(top, bottom), (left, right)]`` from ``pads`` or ``auto_pad``."""
    auto = ctx.attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small = total // 2
            pairs.append((small, total - small) if auto == "SAME_UPPER" else
                         (total - small, small))
        return pairs
    if auto == "VALID":
        return [(0, 0), (0, 0)]
    pads = ctx.ints("pads", [0, 0, 0, 0], 4)
    return [(pads[0], pads[2]), (pads[1], pads[3])]


def _tflite_same(size, kernel, stride, dilation) -> list[tuple[int, int]]:
    """The padding TFLite's SAME adds: ``(before, after)`` per spatial axis."""
    pairs = []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        pairs.append((total // 2, total - total // 2))
    return pairs


def _out_size(ctx: _Node, size, kernel, stride, dilation, pads, ceil_mode=False
              ) -> tuple[int, int]:
    out = []
    for n, k, s, d, (a, b) in zip(size, kernel, stride, dilation, pads):
        span = n + a + b - ((k - 1) * d + 1)
        if span < 0:
            raise ctx.error(f"the window ({k}, dilation {d}) is larger than the padded input "
                            f"({n + a + b})")
        out.append((-(-span // s) if ceil_mode else span // s) + 1)
    return tuple(out)


def _window(ctx: _Node, x_shape, kernel) -> dict:
    """Stride, dilation, padding and output size of a convolution or pool."""
    size = (x_shape[1], x_shape[2])
    stride = tuple(ctx.ints("strides", [1, 1], 2))
    dilation = tuple(ctx.ints("dilations", [1, 1], 2))
    pads = _pads(ctx, size, kernel, stride, dilation)
    out = _out_size(ctx, size, kernel, stride, dilation, pads)
    if ctx.attrs.get("ceil_mode", 0) and \
            _out_size(ctx, size, kernel, stride, dilation, pads, True) != out:
        raise ctx.error("ceil_mode=1 gives an output size TFLite's pooling does not make")
    if all(p == (0, 0) for p in pads):
        padding = "VALID"
    elif pads == _tflite_same(size, kernel, stride, dilation):
        padding = "SAME"
    else:
        padding = "PAD"
    return {"stride": stride, "dilation": dilation, "pads": pads, "padding": padding,
            "out": out}


# ------------------------------------------------------------------------------ handlers

@handler("Conv")
def _conv(ctx: _Node):
    x = ctx.x(0)
    xs = ctx.b.tensors[x].shape
    _spatial(ctx, xs)
    w, bias = ctx.const(1), ctx.const(2)
    if w is None or w.data.ndim != 4:
        raise ctx.error("only 2-D convolutions with constant 4-D weights are supported")
    cout, cin_group, kh, kw = w.data.shape
    cin = xs[3]
    group = int(ctx.attrs.get("group", 1))
    win = _window(ctx, xs, (kh, kw))
    x = _explicit_pad(ctx, x, win)
    _channel_axis(ctx, w, 0, "weights")
    if group == 1:
        if cin_group != cin:
            raise ctx.error(f"weights for {cin_group} input channels, the input has {cin}")
        kind = "CONV_2D"
        data, axis = w.data.transpose(0, 2, 3, 1), 0
        options = {}
    elif group == cin and cin_group == 1 and cout % cin == 0:
        kind = "DEPTHWISE_CONV_2D"
        data, axis = w.data.transpose(1, 2, 3, 0), 3
        options = {"depth_multiplier": cout // cin}
    else:
        raise ctx.error(f"grouped convolution (group {group}, {cin} input channels) is not "
                        "supported, only group 1 and depthwise")
    weights = ctx.b.weight_tensor(ctx, f"{ctx.name}/weights", w, data, axis, cout,
                                  ctx.b.tensors[x].dtype)
    bias_name = ctx.b.bias_tensor(ctx, f"{ctx.name}/bias", bias, x, weights, cout)
    options.update({"stride": win["stride"], "dilation": win["dilation"],
                    "padding": "VALID" if win["padding"] == "PAD" else win["padding"],
                    "activation": "NONE"})
    ctx.emit(kind, (x, weights.name, bias_name), options, (1, *win["out"], cout), ("nhwc",))


def _explicit_pad(ctx: _Node, x: str, win: dict, *, value: int | None = None) -> str:
    """For padding TFLite's SAME does not make: a PAD (or PADV2 with ``value``) operator into
    a new tensor with ``x``'s parameters; returns the tensor the window operator reads."""
    if win["padding"] != "PAD":
        return x
    t = ctx.b.tensors[x]
    (top, bottom), (left, right) = win["pads"]
    padded = Tensor(f"{ctx.name}/padded", (t.shape[0], t.shape[1] + top + bottom,
                                           t.shape[2] + left + right, t.shape[3]), t.dtype,
                    t.scale, t.zero_point)
    ctx.b.add_tensor(padded, ("nhwc",))
    options = {"paddings": ((0, 0), (top, bottom), (left, right), (0, 0))}
    kind = "PAD"
    if value is not None:
        kind, options["constant_value"] = "PADV2", int(value)
    ctx.b.operators.append(Operator(kind, (x,), (padded.name,), options, f"{ctx.name}/pad"))
    return padded.name


def _channel_axis(ctx: _Node, c: _Const, expected: int, what: str) -> int | None:
    """The per-channel axis of ``c``'s parameters (``expected`` when the operator implies
    it); ``None`` per tensor."""
    if c.scale is None or np.asarray(c.scale).size <= 1:
        return None
    axis = expected if c.axis is None else c.axis % c.data.ndim
    if axis != expected:
        raise ctx.error(f"{what} are quantized per channel along axis {c.axis}; only the "
                        f"output-channel axis ({expected}) is supported")
    return axis


@handler("Gemm", "MatMul")
def _dense(ctx: _Node):
    x = ctx.x(0)
    t = ctx.b.tensors[x]
    layout = ctx.b.layout[x]
    if len(t.shape) != 2 or layout[0] == "nhwc":
        raise ctx.error(f"needs a 2-D (N, K) input, got shape {t.shape} (flatten it first)")
    b = ctx.const(1)
    if b is None or b.data.ndim != 2:
        raise ctx.error("the weights must be a constant 2-D matrix")
    trans_b = bool(ctx.attrs.get("transB", 0)) if ctx.op_type == "Gemm" else False
    if ctx.op_type == "Gemm":
        if ctx.attrs.get("transA", 0):
            raise ctx.error("transA=1 is not supported")
        if float(ctx.attrs.get("alpha", 1.0)) != 1.0 or float(ctx.attrs.get("beta", 1.0)) != 1.0:
            raise ctx.error("alpha and beta other than 1 are not supported")
    out_axis = 0 if trans_b else 1
    _channel_axis(ctx, b, out_axis, "weights")
    data = b.data if trans_b else b.data.T
    units, depth = data.shape
    if depth != t.shape[1]:
        raise ctx.error(f"weights for {depth} inputs, the input has {t.shape[1]}")
    if layout[0] == "chw":  # an NCHW flatten: columns C,H,W → the graph's H,W,C
        c, h, w = layout[1]
        data = data.reshape(units, c, h, w).transpose(0, 2, 3, 1).reshape(units, depth)
    weights = ctx.b.weight_tensor(ctx, f"{ctx.name}/weights", b, np.ascontiguousarray(data),
                                  0, units, t.dtype)
    bias = ctx.const(2) if ctx.op_type == "Gemm" else None
    bias_name = ctx.b.bias_tensor(ctx, f"{ctx.name}/bias", bias, x, weights, units)
    ctx.emit("FULLY_CONNECTED", (x, weights.name, bias_name), {"activation": "NONE"},
             (1, units), ("plain",))


@handler("Add")
def _add(ctx: _Node):
    a, b = ctx.operand(0), ctx.operand(1)
    # MatMul/Gemm → Add(constant) on the float output: the bias of the dense layer.
    for pending, other in ((a, b), (b, a)):
        if isinstance(pending, _Pending) and isinstance(other, _Const) and \
                pending.op is not None and pending.op.kind == "FULLY_CONNECTED" and \
                pending.op.inputs[2] is None and pending.clip is None:
            ctx.b.fold_bias(ctx, pending, other)
            return
    names = [ctx.x(i) if not isinstance(v, _Const) else v for i, v in enumerate((a, b))]
    activations = [n for n in names if isinstance(n, str)]
    if not activations:
        raise ctx.error("adds two constants")
    ref = ctx.b.tensors[activations[0]]
    layout = ctx.b.layout[activations[0]]
    inputs = []
    for i, n in enumerate(names):
        if isinstance(n, _Const):
            n = ctx.b.constant_operand(ctx, f"{ctx.name}/operand{i}", n, layout, ref.dtype)
        elif ctx.b.layout[n][0] != layout[0] or ctx.b.layout[n][0] == "chw":
            raise ctx.error("adds tensors of different layouts (NCHW vs flattened)")
        inputs.append(n)
    try:
        shape = np.broadcast_shapes(*(ctx.b.tensors[n].shape for n in inputs))
    except ValueError:
        raise ctx.error("the operands do not broadcast") from None
    ctx.emit("ADD", inputs, {"activation": "NONE"}, shape, layout)


def _pool_kernel(ctx: _Node) -> tuple[int, int]:
    kernel = tuple(ctx.ints("kernel_shape", None, 2) or ())
    if len(kernel) != 2:
        raise ctx.error("needs a 2-D kernel_shape")
    if ctx.attrs.get("channels_last", 0):
        raise ctx.error("channels_last=1 is not supported")
    return kernel


@handler("MaxPool")
def _max_pool(ctx: _Node):
    x = ctx.x(0)
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise ctx.error("the Indices output is not supported")
    kernel = _pool_kernel(ctx)
    win = _window(ctx, ctx.b.tensors[x].shape, kernel)
    if win["dilation"] != (1, 1):
        raise ctx.error("dilated pooling is not supported")
    # Padded taps never win a maximum: pad with the type's minimum.
    x = _explicit_pad(ctx, x, win, value=ctx.b.tensors[x].range[0])
    ctx.emit("MAX_POOL_2D", (x,), {"filter": kernel, "stride": win["stride"],
                                   "padding": "VALID" if win["padding"] == "PAD"
                                   else win["padding"], "activation": "NONE"},
             (1, *win["out"], ctx.b.tensors[x].shape[3]), ("nhwc",), same_quant_as=x)


@handler("AveragePool")
def _average_pool(ctx: _Node):
    x = ctx.x(0)
    kernel = _pool_kernel(ctx)
    win = _window(ctx, ctx.b.tensors[x].shape, kernel)
    if win["dilation"] != (1, 1):
        raise ctx.error("dilated pooling is not supported")
    if ctx.attrs.get("count_include_pad", 0) and win["padding"] != "VALID":
        win["padding"] = "PAD"  # padded taps count as real 0: explicit padding, VALID
    elif win["padding"] == "PAD":
        raise ctx.error(f"pads {win['pads']} that are not TFLite's SAME padding, with "
                        "count_include_pad=0, have no TFLite equivalent")
    x = _explicit_pad(ctx, x, win)
    ctx.emit("AVERAGE_POOL_2D", (x,), {"filter": kernel, "stride": win["stride"],
                                       "padding": "VALID" if win["padding"] == "PAD"
                                       else win["padding"], "activation": "NONE"},
             (1, *win["out"], ctx.b.tensors[x].shape[3]), ("nhwc",), same_quant_as=x)


@handler("GlobalAveragePool")
def _global_average_pool(ctx: _Node):
    if ctx.attrs.get("channels_last", 0):
        raise ctx.error("channels_last=1 is not supported")
    x = ctx.x(0)
    shape = ctx.b.tensors[x].shape
    _spatial(ctx, shape)
    ctx.emit("MEAN", (x,), {"axis": (1, 2), "keep_dims": True}, (1, 1, 1, shape[3]),
             ("nhwc",))


@handler("ReduceMean")
def _reduce_mean(ctx: _Node):
    x = ctx.x(0)
    shape, layout = ctx.b.tensors[x].shape, ctx.b.layout[x]
    axes = ctx.attrs.get("axes")
    if axes is None and len(ctx.node.input) > 1 and ctx.node.input[1]:
        axes = ctx.b.constant_value(ctx, ctx.node.input[1])
    if axes is None:
        raise ctx.error("a mean over every axis (the batch included) is not supported")
    rank = len(shape)
    axes = sorted({int(a) % rank for a in np.atleast_1d(axes)})
    if layout[0] == "chw":
        raise ctx.error("reads an NCHW flatten, whose order differs in NHWC")
    if layout[0] == "nhwc":
        axes = sorted(_NHWC_AXIS[a] for a in axes)
    keep = bool(ctx.attrs.get("keepdims", 1))
    out = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keep else \
        tuple(d for i, d in enumerate(shape) if i not in axes)
    if not keep and layout[0] == "nhwc" and len(out) == 4:
        raise ctx.error("keepdims=0 leaving a 4-D tensor is not supported")
    out_layout = layout if keep else _flat_layout(ctx, shape, axes, layout)
    ctx.emit("MEAN", (x,), {"axis": tuple(axes), "keep_dims": keep}, out, out_layout)


def _flat_layout(ctx: _Node, shape, removed, layout) -> tuple:
    """The layout of an NHWC tensor after dropping axes ``removed`` (a MEAN without
    keep_dims): plain when the remaining order is the same in NCHW and NHWC."""
    if layout[0] != "nhwc":
        return layout
    kept = [a for a in (1, 2, 3) if a not in removed and shape[a] > 1]
    if kept and kept != [3] and 3 in kept:
        raise ctx.error("a mean without keepdims that leaves both channels and pixels is "
                        "not supported (its NCHW order differs in NHWC)")
    return ("plain",)


def _flatten_layout(ctx: _Node, x: str) -> tuple:
    t, layout = ctx.b.tensors[x], ctx.b.layout[x]
    if layout[0] == "nhwc":
        _, h, w, c = t.shape
        return ("plain",) if h * w == 1 or c == 1 else ("chw", (c, h, w))
    return layout


@handler("Flatten")
def _flatten(ctx: _Node):
    x = ctx.x(0)
    shape = ctx.b.tensors[x].shape
    if int(ctx.attrs.get("axis", 1)) != 1:
        raise ctx.error("only axis=1 (keep the batch) is supported")
    ctx.emit("RESHAPE", (x,), {}, (1, int(np.prod(shape[1:]))), _flatten_layout(ctx, x),
             same_quant_as=x)


@handler("Reshape")
def _reshape(ctx: _Node):
    x = ctx.x(0)
    shape = ctx.b.tensors[x].shape
    target = [int(v) for v in ctx.b.constant_value(ctx, ctx.node.input[1]).reshape(-1)]
    size = int(np.prod(shape[1:]))
    onnx_in = _onnx_shape(shape, ctx.b.layout[x])
    target = [onnx_in[i] if v == 0 and not ctx.attrs.get("allowzero", 0) else v
              for i, v in enumerate(target)]
    if -1 in target:
        known = int(np.prod([v for v in target if v != -1]))
        target[target.index(-1)] = (size * onnx_in[0]) // max(known, 1)
    if len(target) == 2 and target[1] == size:
        ctx.emit("RESHAPE", (x,), {}, (1, size), _flatten_layout(ctx, x), same_quant_as=x)
        return
    layout = ctx.b.layout[x]
    if len(target) == 4 and layout[0] == "plain" and (target[1] == size or target[1] == 1):
        # (N, K) → (N, K, 1, 1) or (N, 1, H, W): the same order in NCHW and NHWC.
        out = (1, target[2], target[3], target[1])
        if int(np.prod(out[1:])) != size:
            raise ctx.error(f"cannot reshape {onnx_in} to {target}")
        ctx.emit("RESHAPE", (x,), {}, out, ("nhwc",), same_quant_as=x)
        return
    if len(target) == len(shape) and layout[0] == "plain":
        ctx.emit("RESHAPE", (x,), {}, (1, *target[1:]), ("plain",), same_quant_as=x)
        return
    raise ctx.error(f"reshaping {onnx_in} to {target} is only supported as a flatten to "
                    "(N, K)")


def _onnx_shape(shape, layout) -> list[int]:
    if layout[0] == "nhwc" and len(shape) == 4:
        return [shape[0], shape[3], shape[1], shape[2]]
    return list(shape)


@handler("Concat")
def _concat(ctx: _Node):
    names = [ctx.x(i) for i in range(ctx.count)]
    layouts = {ctx.b.layout[n][0] for n in names}
    if len(layouts) != 1 or "chw" in layouts:
        raise ctx.error("concatenates tensors of different layouts")
    shapes = [ctx.b.tensors[n].shape for n in names]
    rank = len(shapes[0])
    axis = int(ctx.attrs.get("axis", 1)) % rank
    if layouts == {"nhwc"}:
        axis = _NHWC_AXIS[axis]
    if axis == 0:
        raise ctx.error("concatenation along the batch is not supported")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    ctx.emit("CONCATENATION", names, {"axis": axis, "activation": "NONE"}, out,
             ctx.b.layout[names[0]])


@handler("Pad")
def _pad(ctx: _Node):
    x = ctx.x(0)
    mode = ctx.attrs.get("mode", b"constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        raise ctx.error(f"mode {mode!r} is not supported, only constant")
    pads = ctx.ints("pads") if "pads" in ctx.attrs else \
        [int(v) for v in ctx.b.constant_value(ctx, ctx.node.input[1]).reshape(-1)]
    if len(ctx.node.input) > 3 and ctx.node.input[3]:
        raise ctx.error("padding selected axes is not supported")
    if len(ctx.node.input) > 2 and ctx.node.input[2]:
        value = ctx.operand(2)
        real = value.real() if isinstance(value, _Const) else None
        if real is None or np.any(real != 0):
            raise ctx.error("only padding with 0 is supported")
    t, layout = ctx.b.tensors[x], ctx.b.layout[x]
    rank = len(t.shape)
    pairs = [(pads[i], pads[i + rank]) for i in range(rank)]
    if layout[0] == "nhwc":
        pairs = [pairs[0], pairs[2], pairs[3], pairs[1]]
    elif layout[0] == "chw":
        raise ctx.error("reads an NCHW flatten, whose order differs in NHWC")
    if pairs[0] != (0, 0) or any(a < 0 or b < 0 for a, b in pairs):
        raise ctx.error("only non-negative padding of the sample axes is supported")
    out = tuple(d + a + b for d, (a, b) in zip(t.shape, pairs))
    ctx.emit("PAD", (x,), {"paddings": tuple(pairs)}, out, layout, same_quant_as=x)


@handler("Relu", "Clip")
def _activation(ctx: _Node):
    if ctx.op_type == "Relu":
        bounds = (0.0, math.inf)
    else:
        lo = ctx.attrs.get("min")
        hi = ctx.attrs.get("max")
        if len(ctx.node.input) > 1 and ctx.node.input[1]:
            lo = float(ctx.b.constant_value(ctx, ctx.node.input[1]).reshape(-1)[0])
        if len(ctx.node.input) > 2 and ctx.node.input[2]:
            hi = float(ctx.b.constant_value(ctx, ctx.node.input[2]).reshape(-1)[0])
        bounds = (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi))
    value = ctx.operand(0)
    if isinstance(value, _Pending):  # directly on an operator's float output: fuse
        if value.clip is not None or value.fuse_into is not None:
            raise ctx.error("a second activation on the same output is not supported")
        if value.op is None or value.op.kind not in _FUSES_ACTIVATION:
            raise ctx.error(f"follows {value.label}, which cannot fuse an activation")
        value.clip, value.clip_type = bounds, ctx.op_type
        ctx.b.move_pending(ctx.node.input[0], ctx.node.output[0])
        return
    source = ctx.x(0)
    producer = ctx.b.producer(source)
    onnx_name = ctx.b.onnx_int_name(ctx.node.input[0])
    if producer is None or producer.kind not in _FUSES_ACTIVATION or \
            producer.activation != "NONE" or ctx.b.readers(onnx_name) != 1 or \
            (ctx.node.input[0] in ctx.b.dq and ctx.b.readers(ctx.node.input[0]) != 1) or \
            source in ctx.b.graph_output_tensors():
        raise ctx.error("a standalone activation (its input is also read elsewhere, or comes "
                        "from an operator that cannot fuse it) is not supported")
    t = ctx.b.tensors[source]
    pending = _Pending(None, t.shape, ctx.b.layout[source], ctx.label, clip=bounds,
                       clip_type=ctx.op_type, fuse_into=producer, source=source)
    ctx.b.settle(ctx, pending)


@handler("Identity", "Dropout")
def _identity(ctx: _Node):
    ctx.b.alias_float(ctx.node.input[0], ctx.node.output[0])


# -------------------------------------------------------------------------------- builder

class _Builder:
    """The graph under construction while walking the ONNX nodes in topological order."""

    def __init__(self, path: Path, model: onnx.ModelProto):
        self.path, self.model = path, model
        graph = model.graph
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t)
                                              for t in graph.initializer}
        self.tensors: dict[str, Tensor] = {}
        self.layout: dict[str, tuple] = {}
        self.operators: list[Operator] = []
        self.dq: dict[str, str | _Const] = {}      # DequantizeLinear output → source
        self.pending: dict[str, _Pending] = {}     # float output → operator awaiting Q
        self.alias: dict[str, str] = {}            # ONNX int tensor → graph tensor
        self.float_alias: dict[str, str] = {}      # Identity outputs
        self.readers_of: Counter = Counter()
        self.onnx_int: dict[str, str] = {}          # DQ output → the ONNX int tensor it reads
        self.weights_offset = 0
        self.graph_outputs = [o.name for o in graph.output]
        self.graph_inputs = [i for i in graph.input if i.name not in self.consts]
        self.float_inputs: dict[str, str] = {}      # float graph input → its quantized tensor
        self.input_shapes = {i.name: _value_shape(i) for i in self.graph_inputs}
        for node in graph.node:
            for name in node.input:
                if name:
                    self.readers_of[name] += 1
        for name in self.graph_outputs:
            self.readers_of[name] += 1

    # -- errors and names -------------------------------------------------------------------
    def error(self, message: str) -> QuantizerError:
        return QuantizerError(f"{self.path}: {message}")

    def readers(self, name: str) -> int:
        return self.readers_of[name]

    def resolve_name(self, name: str) -> str:
        name = self.float_alias.get(name, name)
        source = self.dq.get(name)
        if isinstance(source, str):
            return source
        return self.alias.get(name, name)

    def onnx_int_name(self, name: str) -> str:
        return self.onnx_int.get(name, name)

    def graph_output_tensors(self) -> set[str]:
        return {self.resolve_name(n) for n in self.graph_outputs}

    def producer(self, tensor: str) -> Operator | None:
        return next((op for op in reversed(self.operators) if tensor in op.outputs), None)

    def add_tensor(self, tensor: Tensor, layout: tuple) -> Tensor:
        if tensor.name in self.tensors:
            raise self.error(f"two tensors are named {tensor.name!r}")
        self.tensors[tensor.name] = tensor
        self.layout[tensor.name] = layout
        return tensor

    def alias_float(self, source: str, target: str) -> None:
        if source in self.pending:
            self.move_pending(source, target)
        elif source in self.dq:
            self.dq[target] = self.dq[source]
            self.onnx_int[target] = self.onnx_int.get(source, source)
        elif self.resolve_name(source) in self.tensors:
            self.alias[target] = self.resolve_name(source)
        else:
            self.float_alias[target] = self.float_alias.get(source, source)

    def move_pending(self, source: str, target: str) -> None:
        self.pending[target] = self.pending.pop(source)

    # -- constants --------------------------------------------------------------------------
    def constant_value(self, ctx: _Node, name: str) -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        source = self.dq.get(name)
        if isinstance(source, _Const):
            return source.real()
        raise ctx.error(f"operand {name!r} must be a constant in the model file")

    def operand(self, ctx: _Node, name: str):
        if not name:
            return None
        name = self.float_alias.get(name, name)
        if name in self.pending:
            return self.pending[name]
        if name in self.dq:
            return self.dq[name]
        if name in self.consts:
            return _Const(name, self.consts[name])
        resolved = self.alias.get(name, name)
        if resolved in self.tensors:
            return resolved
        if name in self.float_inputs or name in self.input_shapes:
            raise ctx.error(f"reads the float input {name!r} directly: the model is not "
                            "quantized there (no QuantizeLinear)")
        raise ctx.error(f"reads {name!r}, which is neither a quantized tensor nor a constant "
                        "(the model is not fully quantized there)")

    def qlinear_operand(self, ctx: _Node, data: int, scale: int | None = None,
                        zero: int | None = None):
        names = list(ctx.node.input)
        name = names[data] if data < len(names) else ""
        if not name:
            return None
        if scale is None:  # a bias: int32 with the implied scale s_in·s_w
            if name not in self.consts:
                raise ctx.error("the bias must be a constant")
            return _Const(name, self.consts[name])
        s = self.constant_value(ctx, names[scale]).astype(np.float64)
        z = self.constant_value(ctx, names[zero]) if zero < len(names) and names[zero] \
            else np.zeros(1, np.uint8)
        if name in self.consts:
            return _Const(name, self.consts[name], s, z)
        resolved = self.alias.get(name, name)
        if resolved not in self.tensors and name in self.input_shapes:
            self.int_input(ctx, name, s, z)
            resolved = name
        if resolved not in self.tensors:
            raise ctx.error(f"reads {name!r}, which no quantized operator computes")
        t = self.tensors[resolved]
        if not _same_params(t, s, z, _dtype_of(z)):
            raise ctx.error(f"reads {name} with scale {float(s.reshape(-1)[0]):.6g} and zero "
                            f"point {int(z.reshape(-1)[0])}, but it was quantized with "
                            f"{t.scalar_scale:.6g} and {t.zp}")
        return resolved

    def int_input(self, ctx: _Node, name: str, scale, zero) -> None:
        """An integer graph input: its parameters are those of its first reader."""
        shape = self.input_shapes[name]
        dtype = _dtype_of(np.asarray(zero))
        self.add_graph_input(ctx, name, shape, dtype, scale, zero)

    def add_graph_input(self, ctx, name, onnx_shape, dtype, scale, zero) -> None:
        scale = np.asarray(scale, np.float64).reshape(-1)
        if scale.size != 1:
            raise (ctx.error if ctx else self.error)(
                f"the input {name} is quantized per channel")
        shape, layout = _graph_shape(onnx_shape)
        self.add_tensor(Tensor(name, shape, dtype, scale, np.asarray(zero).reshape(-1)),
                        layout)

    def constant_operand(self, ctx: _Node, name: str, c: _Const, layout: tuple,
                         dtype: str) -> str:
        """A quantized constant activation operand (an ADD's) as a graph constant tensor."""
        if c.scale is None or c.data.dtype.kind == "f":
            raise ctx.error(f"the constant operand {c.name} is not quantized")
        if c.dtype != dtype:
            raise ctx.error(f"the constant operand {c.name} is {c.dtype}, the activations "
                            f"{dtype}")
        if np.asarray(c.scale).size != 1:
            raise ctx.error(f"the constant operand {c.name} is quantized per channel")
        data = c.data
        if layout[0] == "nhwc":
            data = data.reshape((1,) * (4 - data.ndim) + data.shape).transpose(0, 2, 3, 1)
        tensor = Tensor(name, data.shape, dtype, np.asarray(c.scale).reshape(-1),
                        np.asarray(c.zero_point).reshape(-1), None, np.ascontiguousarray(data))
        self.add_tensor(tensor, layout)
        return name

    def weight_tensor(self, ctx: _Node, name: str, c: _Const, data: np.ndarray, axis: int,
                      channels: int, activation_dtype: str) -> Tensor:
        """Integer weights of ``data`` (the graph's layout), per channel along ``axis``."""
        if c.data.dtype.kind == "f" or c.scale is None:
            raise ctx.error(f"the weights {c.name} are not quantized (float weights: quantize "
                            "the model with per-operator weights)")
        dtype = c.dtype
        if dtype not in _8BIT:
            raise ctx.error(f"the weights {c.name} are {dtype}; only 8-bit weights are "
                            "supported")
        scale = np.asarray(c.scale, np.float64).reshape(-1)
        zero = np.asarray(c.zero_point if c.zero_point is not None else 0).reshape(-1)
        if scale.size not in (1, channels):
            raise ctx.error(f"{scale.size} weight scales for {channels} output channels")
        if np.any(zero != zero[0]):
            raise ctx.error(f"the weights {c.name} have different zero points per channel; "
                            "the kernels take one weight zero point")
        zp = int(zero[0])
        data = np.asarray(data)
        if dtype != activation_dtype:
            # One 8-bit type for activations and weights: shift the weights and their zero
            # point by 128 together, so that every w − z_w (and accumulator) is unchanged.
            offset = 128 if activation_dtype == "uint8" else -128
            data, zp = data.astype(np.int64) + offset, zp + offset
            self.weights_offset = offset
            dtype = activation_dtype
        data = data.astype(NUMPY_DTYPES[dtype])
        tensor = Tensor(name, data.shape, dtype, scale, np.full(scale.size, zp),
                        axis if scale.size > 1 else None, np.ascontiguousarray(data))
        return self.add_tensor(tensor, ("const",))

    def bias_tensor(self, ctx: _Node, name: str, c: _Const | None, x: str, weights: Tensor,
                    channels: int) -> str | None:
        """The int32 bias with scale ``s_in · s_w``: as stored when it has that scale (or the
        operator implies it), else requantized (round half to even)."""
        if c is None:
            return None
        s_in = self.tensors[x].scalar_scale
        w_scale = np.broadcast_to(weights.scale, (channels,)).astype(np.float64)
        target = s_in * w_scale
        data = np.asarray(c.data).reshape(-1)
        if data.size != channels:
            raise ctx.error(f"the bias has {data.size} values for {channels} output channels")
        as_stored = c.dtype == "int32" and (c.scale is None or (
            np.all(np.asarray(c.zero_point) == 0) and np.allclose(
                np.broadcast_to(np.asarray(c.scale, np.float64).reshape(-1), (channels,)),
                target, rtol=1e-6, atol=0)))
        values = data.astype(np.int64) if as_stored else np.round(c.real().reshape(-1) / target)
        if np.any(np.abs(values) > (1 << 31) - 1):
            raise ctx.error("the bias does not fit int32 at scale s_in·s_w")
        scale = target if weights.per_channel else target[:1]
        tensor = Tensor(name, (channels,), "int32", scale, np.zeros(scale.size, np.int64),
                        0 if weights.per_channel else None, values.astype(np.int32))
        self.add_tensor(tensor, ("const",))
        return name

    def fold_bias(self, ctx: _Node, pending: _Pending, c: _Const) -> None:
        op = pending.op
        x, weights = op.inputs[0], self.tensors[op.inputs[1]]
        units = weights.shape[0]
        if c.data.size != units:
            raise ctx.error(f"adds {c.data.size} values to {units} outputs")
        flat = _Const(c.name, c.data.reshape(-1), c.scale, c.zero_point, None)
        bias = self.bias_tensor(ctx, f"{op.name}/bias", flat, x, weights, units)
        op.inputs = (x, op.inputs[1], bias)
        self.move_pending(ctx.node.input[0] if ctx.node.input[0] in self.pending
                          else ctx.node.input[1], ctx.node.output[0])

    # -- quantization nodes -----------------------------------------------------------------
    def quantize_node(self, node) -> None:
        x, out = node.input[0], node.output[0]
        scale, zero, dtype, axis = self._qdq_params(node)
        x = self.float_alias.get(x, x)
        if x in self.pending:
            pending = self.pending.pop(x)
            if np.asarray(scale).size != 1:
                raise self.error(f"QuantizeLinear '{node.name or out}': activations quantized "
                                 "per channel are not supported")
            self.finish(pending, out, dtype, scale, zero)
        elif x in self.input_shapes:
            if x in self.float_inputs:
                raise self.error(f"the input {x} is quantized twice")
            self.add_graph_input(None, out, self.input_shapes[x], dtype, scale, zero)
            self.float_inputs[x] = out
        elif x in self.consts or isinstance(self.dq.get(x), _Const):
            # A float weight quantized in the graph (QuantizeLinear → DequantizeLinear):
            # fold it as ONNX computes it (round half to even, saturate).
            real = self.consts[x].astype(np.float64) if x in self.consts \
                else self.dq[x].real()
            lo, hi = (-128, 127) if dtype == "int8" else (0, 255)
            q = np.round(real / _along(scale, real.ndim, axis)) + _along(zero, real.ndim, axis)
            self.consts[out] = np.clip(q, lo, hi).astype(NUMPY_DTYPES[dtype])
        elif isinstance(self.dq.get(x), str):  # DequantizeLinear → QuantizeLinear
            source = self.dq[x]
            t = self.tensors[source]
            if _same_params(t, scale, zero, dtype):
                self.alias[out] = source
            else:
                self.requantize(source, out, dtype, scale, zero, f"{node.name or out}")
        else:
            raise self.error(f"QuantizeLinear '{node.name or out}' quantizes {x!r}, which no "
                             "supported operator computes")

    def dequantize_node(self, node) -> None:
        q, out = node.input[0], node.output[0]
        scale, zero, dtype, axis = self._qdq_params(node)
        if q in self.consts:
            data = self.consts[q]
            if _dtype_name(data) != dtype:
                raise self.error(f"DequantizeLinear '{node.name or out}': {q} is "
                                 f"{data.dtype}, its zero point {dtype}")
            self.dq[out] = _Const(q, data, np.asarray(scale, np.float64), np.asarray(zero),
                                  axis)
            return
        resolved = self.alias.get(q, q)
        if resolved not in self.tensors and q in self.input_shapes:
            self.int_input(None, q, scale, zero)
            resolved = q
        if resolved not in self.tensors:
            raise self.error(f"DequantizeLinear '{node.name or out}' reads {q!r}, which no "
                             "supported operator computes")
        t = self.tensors[resolved]
        if not _same_params(t, scale, zero, dtype):
            raise self.error(f"DequantizeLinear '{node.name or out}' reads {q} with other "
                             "parameters than it was quantized with")
        self.dq[out] = resolved
        self.onnx_int[out] = q

    def _qdq_params(self, node):
        names = list(node.input)
        scale = self.constant_value_or_none(names[1]) if len(names) > 1 else None
        if scale is None:
            raise self.error(f"{node.op_type} '{node.name or node.output[0]}': the scale must "
                             "be a constant")
        zero = self.constant_value_or_none(names[2]) if len(names) > 2 and names[2] else None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("block_size"):
            raise self.error(f"{node.op_type} '{node.name or node.output[0]}': blocked "
                             "quantization is not supported")
        if zero is None:  # ONNX: 0 of the integer operand's type (uint8 for QuantizeLinear)
            source = self.alias.get(names[0], names[0])
            if node.op_type == "DequantizeLinear" and names[0] in self.consts:
                zero = np.zeros(np.shape(scale), self.consts[names[0]].dtype)
            elif node.op_type == "DequantizeLinear" and source in self.tensors:
                zero = np.zeros(np.shape(scale), NUMPY_DTYPES[self.tensors[source].dtype])
            else:
                zero = np.zeros(np.shape(scale), np.uint8)
                out_type = attrs.get("output_dtype")
                if out_type == onnx.TensorProto.INT8:
                    zero = zero.astype(np.int8)
        dtype = _dtype_name(zero)
        if dtype not in ("int8", "uint8", "int32"):
            raise self.error(f"{node.op_type} '{node.name or node.output[0]}': type {dtype} "
                             "is not supported (int8, uint8)")
        axis = attrs.get("axis", 1) if np.asarray(scale).size > 1 else None
        return np.asarray(scale, np.float64), np.asarray(zero), dtype, axis

    def constant_value_or_none(self, name: str):
        if name in self.consts:
            return self.consts[name]
        return None

    # -- outputs ----------------------------------------------------------------------------
    def settle(self, ctx: _Node, pending: _Pending) -> _Pending:
        """An operator's output: QLinear parameters or the input's now, else (QDQ) on the
        QuantizeLinear that reads the float output."""
        out = ctx.node.output[0]
        if ctx.mode == "qlinear":
            s, z = ctx.spec.output_slots()
            names = list(ctx.node.input)
            scale = self.constant_value(ctx, names[s]).astype(np.float64)
            zero = self.constant_value(ctx, names[z]) if z < len(names) and names[z] \
                else np.zeros(1, np.uint8)
            self.finish(pending, out, _dtype_of(zero), scale, zero)
        elif ctx.mode == "direct":
            source = pending.same_quant_as or pending.source
            if source is None:
                raise ctx.error("reads an integer tensor without DequantizeLinear")
            t = self.tensors[source]
            self.finish(pending, out, t.dtype, t.scale, t.zero_point)
        else:
            self.pending[out] = pending
        return pending

    def finish(self, p: _Pending, name: str, dtype: str, scale, zero) -> None:
        """Give the pending operator its output tensor ``name`` with these parameters,
        requantizing where the kernel keeps its input's parameters, and fuse its activation."""
        scale = np.asarray(scale, np.float64).reshape(-1)
        zero = np.asarray(zero).reshape(-1).astype(np.int64)
        if scale.size != 1:
            raise self.error(f"{p.label}: activations quantized per channel are not supported")
        if dtype not in _8BIT:
            raise self.error(f"{p.label}: output type {dtype}; only int8 and uint8 "
                             "activations are supported")
        if p.fuse_into is not None:  # a Relu/Clip wrapped in Q/DQ: into its producer
            source = self.tensors[p.source]
            p.fuse_into.options["activation"] = _activation_for(self, p, source)
            if _same_params(source, scale, zero, dtype):
                self.alias[name] = p.source
            else:
                self.add_tensor(Tensor(name, source.shape, dtype, scale, zero), p.layout)
                self.operators.append(Operator("QUANTIZE", (p.source,), (name,), {},
                                               f"{name}/requantize"))
            return
        op = p.op
        for n in op.inputs:
            if n is not None and not self.tensors[n].is_constant and \
                    self.tensors[n].dtype != dtype:
                raise self.error(f"{p.label}: reads {self.tensors[n].dtype} and writes "
                                 f"{dtype}; mixed activation types are not supported")
        out = self.add_tensor(Tensor(name, p.shape, dtype, scale, zero), p.layout)
        if op.kind == "CONCATENATION":  # int8 concatenation keeps the output's parameters
            inputs = list(op.inputs)
            for i, n in enumerate(inputs):
                if not _same_params(self.tensors[n], scale, zero, dtype):
                    rescaled = f"{name}/input{i}"
                    src = self.tensors[n]
                    self.add_tensor(Tensor(rescaled, src.shape, dtype, scale, zero),
                                    self.layout[n])
                    self.operators.insert(self.index(op), Operator(
                        "QUANTIZE", (n,), (rescaled,), {}, f"{rescaled}/requantize"))
                    inputs[i] = rescaled
            op.inputs = tuple(inputs)
        written = out
        if p.same_quant_as is not None and not _same_params(
                self.tensors[p.same_quant_as], scale, zero, dtype):
            src = self.tensors[p.same_quant_as]
            written = self.add_tensor(Tensor(f"{name}/unscaled", p.shape, dtype, src.scale,
                                             src.zero_point), p.layout)
            index = self.index(op)
            self.operators.insert(index + 1, Operator("QUANTIZE", (written.name,), (name,), {},
                                                      f"{name}/requantize"))
        op.outputs = (written.name,)
        if p.clip is not None:
            op.options["activation"] = _activation_for(self, p, written)

    def index(self, op: Operator) -> int:
        return next(i for i, o in enumerate(self.operators) if o is op)

    def requantize(self, source: str, name: str, dtype: str, scale, zero, label: str) -> None:
        t = self.tensors[source]
        if dtype != t.dtype:
            raise self.error(f"{label}: requantizes {t.dtype} to {dtype}; mixed activation "
                             "types are not supported")
        self.add_tensor(Tensor(name, t.shape, dtype, np.asarray(scale).reshape(-1),
                               np.asarray(zero).reshape(-1)), self.layout[source])
        self.operators.append(Operator("QUANTIZE", (source,), (name,), {}, label))


def _activation_for(builder: _Builder, p: _Pending, t: Tensor) -> str:
    """The TFLite fused activation whose integer clamp on ``t`` is the Relu/Clip's."""
    lo, hi = p.clip
    qmin, qmax = t.range

    def quantize(real: float) -> int:
        q = float(np.float32(real) / np.float32(t.scalar_scale))
        return t.zp + int(np.floor(abs(q) + 0.5) * np.sign(q))

    target = (qmin if lo == -math.inf else max(qmin, min(qmax, quantize(lo))),
              qmax if hi == math.inf else min(qmax, max(qmin, quantize(hi))))
    preferred = {(0.0, math.inf): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}
    first = preferred.get((lo, hi))
    for act in ([first] if first else []) + ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]:
        if activation_range(act, t) == target:
            return act
    raise builder.error(f"{p.label}: {p.clip_type}({lo:g}, {hi:g}) clamps to "
                        f"[{target[0]}, {target[1]}] on its output, which no TFLite fused "
                        "activation (RELU, RELU6, RELU_N1_TO_1) does")


def _along(values, ndim: int, axis: int | None) -> np.ndarray:
    """Per-tensor or per-channel parameters shaped to broadcast along ``axis``."""
    values = np.asarray(values, np.float64)
    if values.size == 1:
        return values.reshape(())
    shape = [1] * ndim
    shape[(1 if axis is None else axis) % ndim] = values.size
    return values.reshape(shape)


def _same_params(t: Tensor, scale, zero, dtype: str) -> bool:
    scale = np.asarray(scale, np.float64).reshape(-1)
    zero = np.asarray(zero).reshape(-1)
    return t.dtype == dtype and scale.size == 1 and zero.size == 1 and \
        np.float32(t.scalar_scale) == np.float32(scale[0]) and t.zp == int(zero[0])


def _dtype_name(array) -> str:
    return str(np.asarray(array).dtype)


def _dtype_of(zero) -> str:
    dtype = _dtype_name(zero)
    if dtype not in _8BIT:
        raise QuantizerError(f"activation type {dtype} is not supported (int8, uint8)")
    return dtype


def _value_shape(value_info) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in dims)


def _graph_shape(onnx_shape) -> tuple[tuple[int, ...], tuple]:
    """An ONNX activation shape (batch 1) in the graph's layout, and that layout."""
    shape = (1, *onnx_shape[1:])
    if len(shape) == 4:
        return (1, shape[2], shape[3], shape[1]), ("nhwc",)
    if len(shape) == 2:
        return shape, ("plain",)
    raise QuantizerError(f"inputs of rank {len(shape)} are not supported (2: (N, K), "
                         "4: (N, C, H, W))")


def _topological(nodes) -> list:
    """The nodes in an order where every node follows the producers of its inputs (ONNX
    requires it; sorting again costs little and accepts sloppy writers)."""
    produced_by = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    order, state = [], [0] * len(nodes)

    def visit(i: int) -> None:
        stack = [(i, iter(nodes[i].input))]
        state[i] = 1
        while stack:
            j, inputs = stack[-1]
            for name in inputs:
                k = produced_by.get(name)
                if k is not None and state[k] == 0:
                    state[k] = 1
                    stack.append((k, iter(nodes[k].input)))
                    break
            else:
                stack.pop()
                state[j] = 2
                order.append(nodes[j])

    for i in range(len(nodes)):
        if state[i] == 0:
            visit(i)
    return order


# ---------------------------------------------------------------------------------- loading

def load_quantized_onnx(path: Path | str) -> Graph:
    """Import the quantized ONNX model ``path`` (QDQ or QOperator format) as an int8/uint8
    operator graph with the model's own quantization parameters."""
    path = Path(path)
    model = read_model(path, check=False)
    if not is_quantized_onnx(model):
        raise QuantizerError(f"{path} is a float ONNX model (no QuantizeLinear, "
                             "DequantizeLinear or QLinear operators): import it as a float "
                             "model and quantize it")
    nodes = _topological(list(model.graph.node))
    unsupported = Counter(n.op_type for n in nodes
                          if n.op_type not in _STRUCTURAL and n.op_type not in HANDLERS
                          and n.op_type not in QLINEAR)
    if unsupported:
        listed = ", ".join(f"{kind} ×{n}" for kind, n in sorted(unsupported.items()))
        raise QuantizerError(f"{path}: unsupported operators: {listed} (mxugen imports "
                             f"{', '.join(supported_operators())} with QuantizeLinear/"
                             "DequantizeLinear)")
    try:
        return _build(path, model, nodes)
    except QuantizerError:
        raise
    except Exception as exc:  # noqa: BLE001 — a malformed graph fails anywhere in the walk
        raise QuantizerError(f"{path} is damaged or inconsistent ({type(exc).__name__}: "
                             f"{exc})") from None


def _build(path: Path, model: onnx.ModelProto, nodes) -> Graph:
    b = _Builder(path, model)
    formats = set()
    for node in nodes:
        if node.op_type == "Constant":
            value = next(a for a in node.attribute if a.name == "value")
            b.consts[node.output[0]] = numpy_helper.to_array(value.t)
        elif node.op_type == "QuantizeLinear":
            b.quantize_node(node)
        elif node.op_type == "DequantizeLinear":
            b.dequantize_node(node)
        else:
            spec = QLINEAR.get(node.op_type)
            ctx = _Node(b, node, spec)
            formats.add("QOperator" if spec or ctx.mode == "direct" else "QDQ")
            HANDLERS[ctx.op_type](ctx)
    if b.pending:
        p = next(iter(b.pending.values()))
        raise b.error(f"the output of {p.label} is never quantized (no QuantizeLinear "
                      "after it)")
    if len(b.float_inputs) + sum(1 for i in b.graph_inputs if i.name in b.tensors) \
            != len(b.graph_inputs):
        missing = [i.name for i in b.graph_inputs
                   if i.name not in b.float_inputs and i.name not in b.tensors]
        raise b.error(f"the input {missing[0]} is never quantized")
    inputs = [b.float_inputs.get(i.name, i.name) for i in b.graph_inputs]
    outputs, float_output = [], False
    for name in b.graph_outputs:
        source = b.dq.get(name)
        if isinstance(source, str):
            outputs.append(source)
            float_output = True
            continue
        resolved = b.alias.get(name, name)
        if resolved not in b.tensors or resolved in inputs and not b.operators:
            raise b.error(f"the output {name} is not computed by a quantized operator")
        outputs.append(resolved)
    used = set(inputs) | set(outputs)
    for op in b.operators:
        used.update(n for n in (*op.inputs, *op.outputs) if n is not None)
    tensors = {n: t for n, t in b.tensors.items() if n in used}
    layouts = {b.layout[n][0] for n in inputs}
    meta = {"source": str(path), "format": "+".join(sorted(formats)) or "QDQ",
            "float_input": bool(b.float_inputs), "float_output": float_output,
            "layout": "NHWC" if "nhwc" in layouts else "NC",
            "onnx_input_shape": list(next(iter(b.input_shapes.values()), ())),
            "weights_offset": b.weights_offset,
            # Flattened NCHW tensors, stored in the graph's H, W, C order: (C, H, W) each.
            "nchw_flattened": {n: list(b.layout[n][1]) for n in tensors
                               if b.layout.get(n, ("",))[0] == "chw"}}
    return Graph(tensors, b.operators, inputs, outputs, meta)
