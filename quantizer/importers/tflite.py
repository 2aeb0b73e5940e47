"""TFLite import: an int8 ``.tflite`` flatbuffer (read with the ``tflite`` package) → a
:class:`~quantizer.graph.Graph` with the file's own scales, zero points and tensor names.

One handler per TFLite operator turns its builtin options (and constant operands such as PAD's
paddings) into the graph operator's options; the handlers are the list of supported operators,
and a model using anything else is refused in one line that names every unsupported operator
with its count. Float models with QUANTIZE at the input and DEQUANTIZE at the output import as
their int8 interior (``meta["float_input"]``/``meta["float_output"]`` say so).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tflite

from ..errors import QuantizerError
from ..graph import Graph, Operator, Tensor

_TYPES = {tflite.TensorType.INT8: "int8", tflite.TensorType.UINT8: "uint8",
          tflite.TensorType.INT16: "int16", tflite.TensorType.INT32: "int32",
          tflite.TensorType.FLOAT32: "float32", tflite.TensorType.INT64: "int64"}
_NUMPY = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
          "float32": np.float32, "int64": np.int64}
_ACTIVATIONS = {tflite.ActivationFunctionType.NONE: "NONE",
                tflite.ActivationFunctionType.RELU: "RELU",
                tflite.ActivationFunctionType.RELU6: "RELU6",
                tflite.ActivationFunctionType.RELU_N1_TO_1: "RELU_N1_TO_1"}
_PADDING = {tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}


class _Context:
    """What a handler sees of one TFLite operator: its options table and its operands."""

    def __init__(self, model, subgraph, op, kind: str):
        self.model, self.subgraph, self.op, self.kind = model, subgraph, op, kind
        self.inputs = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []

    def options(self, cls):
        table = self.op.BuiltinOptions()
        options = cls()
        if table is not None:
            options.Init(table.Bytes, table.Pos)
        return options

    def activation(self, options) -> str:
        code = options.FusedActivationFunction()
        if code not in _ACTIVATIONS:
            raise QuantizerError(f"{self.kind} with fused activation "
                                 f"{_enum_name(tflite.ActivationFunctionType, code)} is not "
                                 "supported (NONE, RELU, RELU6, RELU_N1_TO_1 are)")
        return _ACTIVATIONS[code]

    def constant(self, position: int) -> np.ndarray:
        """The data of operand ``position``, which must be a constant."""
        data = _tensor_data(self.model, self.subgraph.Tensors(self.inputs[position]))
        if data is None:
            raise QuantizerError(f"{self.kind}: operand {position} must be a constant in the "
                                 "model file (computed shapes are not supported)")
        return data

    def operands(self, count: int) -> tuple[int, ...]:
        """The first ``count`` operands (the rest are constants folded into options)."""
        return tuple(self.inputs[:count])


Handler = Callable[[_Context], tuple[tuple[int, ...], dict]]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the importer of TFLite operator ``kind``: it returns the operands the graph
    operator reads and its options."""
    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function
    return register


def supported_operators() -> list[str]:
    return sorted(HANDLERS)


def _window(ctx: _Context, options) -> dict:
    return {"stride": (options.StrideH(), options.StrideW()),
            "padding": _PADDING[options.Padding()], "activation": ctx.activation(options)}


@handler("FULLY_CONNECTED")
def _fully_connected(ctx):
    options = ctx.options(tflite.FullyConnectedOptions)
    return tuple(ctx.inputs), {"activation": ctx.activation(options),
                               "keep_num_dims": bool(options.KeepNumDims())}


@handler("CONV_2D")
def _conv(ctx):
    options = ctx.options(tflite.Conv2DOptions)
    return tuple(ctx.inputs), {**_window(ctx, options), "dilation": (
        options.DilationHFactor(), options.DilationWFactor())}


@handler("DEPTHWISE_CONV_2D")
def _depthwise(ctx):
    options = ctx.options(tflite.DepthwiseConv2DOptions)
    return tuple(ctx.inputs), {**_window(ctx, options), "dilation": (
        options.DilationHFactor(), options.DilationWFactor()),
        "depth_multiplier": options.DepthMultiplier()}


def _pool(ctx):
    options = ctx.options(tflite.Pool2DOptions)
    return ctx.operands(1), {**_window(ctx, options),
                             "filter": (options.FilterHeight(), options.FilterWidth())}


handler("AVERAGE_POOL_2D")(_pool)
handler("MAX_POOL_2D")(_pool)


@handler("ADD")
def _add(ctx):
    return ctx.operands(2), {"activation": ctx.activation(ctx.options(tflite.AddOptions))}


@handler("RESHAPE")
def _reshape(ctx):
    return ctx.operands(1), {}


@handler("PAD")
def _pad(ctx):
    paddings = ctx.constant(1).reshape(-1, 2)
    return ctx.operands(1), {"paddings": tuple((int(a), int(b)) for a, b in paddings)}


@handler("CONCATENATION")
def _concatenation(ctx):
    options = ctx.options(tflite.ConcatenationOptions)
    return tuple(ctx.inputs), {"axis": options.Axis(), "activation": ctx.activation(options)}


@handler("SOFTMAX")
def _softmax(ctx):
    return ctx.operands(1), {"beta": float(ctx.options(tflite.SoftmaxOptions).Beta())}


@handler("MEAN")
def _mean(ctx):
    axes = tuple(int(a) for a in ctx.constant(1).reshape(-1))
    return ctx.operands(1), {"axis": axes,
                             "keep_dims": bool(ctx.options(tflite.ReducerOptions).KeepDims())}


@handler("QUANTIZE")
def _quantize(ctx):
    return ctx.operands(1), {}


def _enum_name(enum, code: int) -> str:
    return next((k for k, v in vars(enum).items() if v == code and not k.startswith("_")),
                str(code))


def _tensor_data(model, tensor) -> np.ndarray | None:
    buffer = model.Buffers(tensor.Buffer())
    if buffer is None or buffer.DataLength() == 0:
        return None
    dtype = _TYPES.get(tensor.Type())
    if dtype is None:
        raise QuantizerError(f"constant {tensor.Name().decode()} has unsupported type "
                             f"{_enum_name(tflite.TensorType, tensor.Type())}")
    shape = tuple(tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    return np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=_NUMPY[dtype]).reshape(shape)


def _tensor(model, tensor) -> Tensor:
    name = tensor.Name().decode()
    dtype = _TYPES.get(tensor.Type())
    if dtype not in ("int8", "uint8", "int16", "int32", "float32"):
        raise QuantizerError(f"tensor {name} has type "
                             f"{_enum_name(tflite.TensorType, tensor.Type())}, which mxugen "
                             "does not run")
    quant = tensor.Quantization()
    scale = zero_point = None
    axis = None
    if quant is not None and quant.ScaleLength():
        scale = quant.ScaleAsNumpy().astype(np.float64)
        zero_point = quant.ZeroPointAsNumpy().astype(np.int64) if quant.ZeroPointLength() \
            else np.zeros(scale.size, np.int64)
        axis = int(quant.QuantizedDimension()) if scale.size > 1 else None
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    data = _tensor_data(model, tensor)
    return Tensor(name, shape, dtype, np.ones(1) if scale is None else scale,
                  np.zeros(1, np.int64) if zero_point is None else zero_point, axis, data)


def load_tflite(path: Path | str) -> Graph:
    """Import the first subgraph of a ``.tflite`` file as an int8 operator graph."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        model = tflite.Model.GetRootAs(raw, 0)
        if not tflite.Model.ModelBufferHasIdentifier(raw, 0) or model.SubgraphsLength() < 1:
            raise ValueError("no TFL3 identifier or no subgraph")
        subgraph = model.Subgraphs(0)
        codes = [max(model.OperatorCodes(i).BuiltinCode(),
                     model.OperatorCodes(i).DeprecatedBuiltinCode())
                 for i in range(model.OperatorCodesLength())]
        raw_ops = [subgraph.Operators(i) for i in range(subgraph.OperatorsLength())]
        kinds = [tflite.BUILTIN_OPCODE2NAME.get(codes[op.OpcodeIndex()], "CUSTOM")
                 for op in raw_ops]
    except QuantizerError:
        raise
    except Exception as exc:  # the flatbuffer reader raises anything on a damaged file
        raise QuantizerError(f"{path} is not a readable .tflite model ({type(exc).__name__}: "
                             f"{exc})") from None
    try:
        return _build_graph(path, model, subgraph, raw_ops, kinds)
    except QuantizerError:
        raise
    except Exception as exc:
        raise QuantizerError(f"{path} is damaged or inconsistent ({type(exc).__name__}: "
                             f"{exc})") from None


def _build_graph(path: Path, model, subgraph, raw_ops, kinds) -> Graph:
    raw_tensors = [subgraph.Tensors(i) for i in range(subgraph.TensorsLength())]
    graph_inputs = [int(i) for i in subgraph.InputsAsNumpy()]
    graph_outputs = [int(i) for i in subgraph.OutputsAsNumpy()]
    meta = {"source": str(path), "float_input": False, "float_output": False}
    # QUANTIZE from a float graph input and DEQUANTIZE to a float graph output are the
    # edges of a float-interface model: the int8 tensors inside become the graph's edges.
    keep = []
    for op, kind in zip(raw_ops, kinds):
        ins, outs = list(op.InputsAsNumpy()), list(op.OutputsAsNumpy())
        if kind == "QUANTIZE" and ins[0] in graph_inputs and \
                raw_tensors[ins[0]].Type() == tflite.TensorType.FLOAT32:
            graph_inputs[graph_inputs.index(ins[0])] = int(outs[0])
            meta["float_input"] = True
        elif kind == "DEQUANTIZE" and outs[0] in graph_outputs:
            graph_outputs[graph_outputs.index(outs[0])] = int(ins[0])
            meta["float_output"] = True
        else:
            keep.append((op, kind))
    unsupported = Counter(kind for _, kind in keep if kind not in HANDLERS)
    if unsupported:
        listed = ", ".join(f"{kind} ×{n}" for kind, n in sorted(unsupported.items()))
        raise QuantizerError(f"{path}: unsupported operators: {listed} (mxugen runs "
                             f"{', '.join(supported_operators())})")
    operators, used = [], set(graph_inputs) | set(graph_outputs)
    for op, kind in keep:
        ctx = _Context(model, subgraph, op, kind)
        operands, options = HANDLERS[kind](ctx)
        outputs = [int(i) for i in op.OutputsAsNumpy()]
        used.update(i for i in operands if i >= 0)
        used.update(outputs)
        operators.append((kind, operands, outputs, options))
    tensors = {}
    for index in sorted(used):
        tensor = _tensor(model, raw_tensors[index])
        if tensor.name in tensors:
            raise QuantizerError(f"{path}: two tensors are named {tensor.name!r}")
        tensors[tensor.name] = tensor
    name = {i: raw_tensors[i].Name().decode() for i in used}
    for index in graph_inputs:
        if tensors[name[index]].dtype not in ("int8", "uint8"):
            raise QuantizerError(f"{path}: input {name[index]} is "
                                 f"{tensors[name[index]].dtype}; mxugen runs fully integer "
                                 "models (convert with full integer quantization)")
    graph_ops = [Operator(kind, tuple(name[i] if i >= 0 else None for i in operands),
                          tuple(name[i] for i in outputs), options)
                 for kind, operands, outputs, options in operators]
    for op in graph_ops:
        for tensor_name in op.outputs:
            if tensors[tensor_name].dtype not in ("int8", "uint8"):
                raise QuantizerError(f"{path}: {op.kind} {op.name} computes a "
                                     f"{tensors[tensor_name].dtype} tensor; mxugen runs "
                                     "fully integer models (int8 activations)")
    return Graph(tensors, graph_ops, [name[i] for i in graph_inputs],
                 [name[i] for i in graph_outputs], meta)
