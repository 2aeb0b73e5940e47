"""Post-training quantization of a float :class:`~quantizer.graph.Graph` (a CNN imported from
ONNX, :mod:`quantizer.importers.onnx_graph`) into the int8 graph a ``.tflite`` imports as, the
way TFLite's converter quantizes:

- every activation tensor (the input and each operator's output) gets a range calibrated over
  the data (:func:`~quantizer.calibrate.make_observer`), quantized with
  :func:`~quantizer.schemes.choose_qparams` (which extends ranges to hold 0);
- operators whose TFLite kernels do not rescale — MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, PAD, and
  CONCATENATION across all its inputs and its output — share one set of parameters, from the
  union of their tensors' ranges; a SOFTMAX output is fixed at scale 1/256, zero point −128;
- weights symmetric int8, per output channel (CONV_2D and FULLY_CONNECTED axis 0,
  DEPTHWISE_CONV_2D axis 3) or per tensor; bias int32 at scale ``s_in · s_w``; a constant
  ADD operand per tensor like an activation.

No ``rounding`` option is recorded: each kernel follows its runtime's arithmetic (``Graph.run``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tqdm import tqdm

from .calibrate import make_observer
from .errors import QuantizerError
from .float_graph import conform_input, run_float
from .graph import DTYPE_RANGES, Graph, Operator, Tensor
from .report import sqnr_db
from .schemes import choose_qparams, round_half_away
from .weights import WEIGHT_FORMATS, layer_formats, quantize_weights

#: Operators whose int8 kernels need the input's quantization on the output.
SHARED_QUANTIZATION = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD", "CONCATENATION")
#: Operators with weights, and the axis of their output channels.
WEIGHT_AXIS = {"FULLY_CONNECTED": 0, "CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}


def activation_tensors(graph: Graph) -> list[str]:
    """The graph input and every operator output, in computation order."""
    return [graph.inputs[0], *(op.outputs[0] for op in graph.operators)]


def calibrate_graph(graph: Graph, data, *, method: str = "minmax", batch_size: int = 256,
                    progress: bool | None = None) -> dict[str, tuple[float, float]]:
    """The real range of every activation tensor of the float ``graph`` over ``data``, with a
    progress bar on a terminal (``progress``: None = auto, True/False = force)."""
    data = conform_input(graph, data)
    names = activation_tensors(graph)
    observers = {name: make_observer(method) for name in names}
    for start in tqdm(range(0, len(data), batch_size), desc=f"calibrating ({method})",
                      unit="batch", disable=None if progress is None else not progress):
        values = run_float(graph, data[start:start + batch_size], all_tensors=True)
        for name in names:
            observers[name].update(values[name])
    return {name: observer.range() for name, observer in observers.items()}


def _shared_groups(graph: Graph) -> dict[str, str]:
    """Each activation tensor → the representative of the tensors that must share its
    quantization (union-find over the operators that do not rescale)."""
    parent = {name: name for name in activation_tensors(graph)}

    def find(name):
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for op in graph.operators:
        if op.kind in SHARED_QUANTIZATION:
            tensors = [op.outputs[0]] + [n for n in op.inputs[:len(op.inputs) if op.kind ==
                                                             "CONCATENATION" else 1] if n]
            for name in tensors:
                if name not in parent:
                    raise QuantizerError(f"{op.kind} {op.name}: constant input {name} is not "
                                         "supported")
                parent[find(name)] = find(op.outputs[0])
    return {name: find(name) for name in parent}


def _activation_params(graph: Graph, ranges: dict, scheme: str, dtype: str) -> dict:
    """``(scale, zero_point)`` of every activation tensor."""
    group = _shared_groups(graph)
    softmax = {group[op.outputs[0]] for op in graph.operators if op.kind == "SOFTMAX"}
    lo, hi = {}, {}
    for name, root in group.items():
        lo[root] = min(lo.get(root, np.inf), ranges[name][0])
        hi[root] = max(hi.get(root, -np.inf), ranges[name][1])
    params = {}
    for root, low in lo.items():
        if root in softmax:   # TFLite's int8 softmax output: [0, 1) in 256 steps
            params[root] = (1 / 256, DTYPE_RANGES[dtype][0])
        else:
            q = choose_qparams(low, hi[root], scheme=scheme, dtype=dtype, name=root)
            params[root] = (float(q.scale), int(q.zero_point))
    return {name: params[root] for name, root in group.items()}


def _bias_limited_scale(bias: np.ndarray, input_scale: float, per_channel: bool) -> np.ndarray:
    """Weight scales that keep the bias within ±2^30 at ``s_in · s_w`` (as the dense-chain
    quantizer and TFLite's converter raise the scale of near-zero channels)."""
    needed = np.abs(bias) / (input_scale * (1 << 30))
    return needed if per_channel else np.full_like(needed, needed.max())


def _quantize_layer(op: Operator, graph: Graph, tensors: dict, per_channel: bool, scheme: str,
                    dtype: str, weights: str) -> None:
    """Int weights (of format ``weights``) and int32 bias of a FULLY_CONNECTED or convolution
    into ``tensors``."""
    axis = WEIGHT_AXIS[op.kind]
    w_tensor, b_tensor = graph.tensor(op.inputs[1]), graph.tensor(op.inputs[2]) \
        if len(op.inputs) > 2 else None
    w = np.asarray(w_tensor.data, np.float64)
    rows = np.moveaxis(w, axis, 0)
    channels = rows.shape[0]
    bias = np.zeros(channels) if b_tensor is None else \
        np.asarray(b_tensor.data, np.float64).reshape(-1)
    s_in = tensors[op.inputs[0]].scalar_scale
    wq = quantize_weights(rows.reshape(channels, -1), fmt=weights, per_channel=per_channel,
                          pow2=scheme == "pow2", dtype=dtype,
                          min_scale=_bias_limited_scale(bias, s_in, per_channel))
    values = np.moveaxis(wq.values.reshape(rows.shape), 0, axis)
    scale = wq.scale if per_channel else wq.scale[:1]
    tensors[w_tensor.name] = Tensor(w_tensor.name, w.shape, dtype, scale, [wq.zero_point],
                                    axis if per_channel else None,
                                    values.astype(np.int8 if dtype == "int8" else np.uint8))
    if b_tensor is not None:
        q = round_half_away(bias / (s_in * wq.scale))
        if np.any(np.abs(q) > DTYPE_RANGES["int32"][1]):
            raise QuantizerError(f"{op.kind} {op.name}: the bias does not fit int32")
        tensors[b_tensor.name] = Tensor(b_tensor.name, b_tensor.shape, "int32", s_in * scale,
                                        [0], 0 if per_channel else None,
                                        q.astype(np.int32).reshape(b_tensor.shape))


def quantize_graph(float_graph: Graph, calibration_data, *, per_channel: bool = True,
                   scheme: str = "asymmetric", method: str = "minmax", dtype: str = "int8",
                   weights: str | Mapping[str, str] = "int8",
                   progress: bool | None = None) -> Graph:
    """The integer graph of ``float_graph``, activation ranges calibrated on
    ``calibration_data`` (NHWC samples; see :func:`~quantizer.float_graph.conform_input`)
    with ``method``; ``scheme`` (``asymmetric`` or ``pow2``) applies to activations, weights
    are symmetric (power-of-two scales too under ``pow2``), of format ``weights``
    (:data:`~quantizer.weights.WEIGHT_FORMATS`) in every operator that has them, or a format
    for some of them by name (the others int8, :func:`~quantizer.weights.layer_formats`)."""
    if scheme not in ("asymmetric", "pow2"):
        raise QuantizerError(f"activation scheme must be 'asymmetric' or 'pow2', got {scheme!r}")
    if dtype not in ("int8", "uint8"):
        raise QuantizerError(f"activations must be int8 or uint8, got {dtype!r}")
    formats = layer_formats(weights, [op.name for op in float_graph.operators
                                      if op.kind in WEIGHT_AXIS])
    ranges = calibrate_graph(float_graph, calibration_data, method=method, progress=progress)
    tensors: dict[str, Tensor] = {}
    for name, (scale, zp) in _activation_params(float_graph, ranges, scheme, dtype).items():
        tensors[name] = Tensor(name, float_graph.tensors[name].shape, dtype, [scale], [zp])
    for op in float_graph.operators:
        if op.kind in WEIGHT_AXIS:
            _quantize_layer(op, float_graph, tensors, per_channel, scheme, dtype,
                            formats[op.name])
    for name, t in float_graph.tensors.items():   # constant ADD operands: like an activation
        if name not in tensors and t.is_constant:
            data = np.asarray(t.data, np.float64)
            q = choose_qparams(float(data.min()), float(data.max()), scheme=scheme, dtype=dtype,
                               name=name)
            tensors[name] = Tensor(name, t.shape, dtype, [float(q.scale)], [int(q.zero_point)],
                                   data=q.quantize(data))
    operators = [Operator(op.kind, op.inputs, op.outputs,
                          {**op.options, **({"weight_format": formats[op.name]}
                                            if op.kind in WEIGHT_AXIS else {})}, op.name)
                 for op in float_graph.operators]
    settings = {"per_channel": per_channel, "scheme": scheme, "method": method, "dtype": dtype,
                "weights": weights if isinstance(weights, str) else formats}
    return Graph({name: tensors[name] for name in float_graph.tensors}, operators,
                 list(float_graph.inputs), list(float_graph.outputs),
                 {**float_graph.meta, "settings": settings})


def run_quantized(graph: Graph, x, runtime: str = "litert", all_tensors: bool = False):
    """The int graph on float inputs ``x`` (NHWC, or NCHW where :func:`conform_input` takes
    it): quantized with the input's parameters, run with the golden kernels."""
    return graph.run(graph.input.quantize(conform_input(graph, x)), runtime=runtime,
                     all_tensors=all_tensors)


def tensor_errors(float_graph: Graph, graph: Graph, x) -> list[dict]:
    """Per operator output: the SQNR of the dequantized integer tensor against the float one,
    and how much of the integer range it uses."""
    floats = run_float(float_graph, x, all_tensors=True)
    ints = run_quantized(graph, x, all_tensors=True)
    rows = []
    for op in graph.operators:
        name = op.outputs[0]
        tensor, q = graph.tensors[name], ints[name]
        lo, hi = tensor.range
        rows.append({"tensor": name, "kind": op.kind, "shape": list(tensor.sample_shape),
                     "sqnr_db": round(float(sqnr_db(floats[name], tensor.dequantize(q))), 2),
                     "range_used": round((int(q.max()) - int(q.min())) / (hi - lo), 3)})
    return rows


def parameter_bytes(float_graph: Graph, graph: Graph) -> dict:
    """Bytes of constants: float32, and quantized (weights packed at their format's bits,
    int32 biases)."""
    bits = {op.inputs[1]: WEIGHT_FORMATS[op.options.get("weight_format", "int8")]
            for op in graph.operators if op.kind in WEIGHT_AXIS}

    def total(g, packed: bool):
        return sum(-(-t.data.size * bits[name] // 8) if packed and name in bits
                   else int(t.data.nbytes) for name, t in g.tensors.items() if t.is_constant)
    float_bytes, quantized = total(float_graph, False), total(graph, True)
    return {"float32_bytes": float_bytes, "quantized_bytes": quantized,
            "compression": round(float_bytes / max(quantized, 1), 2)}
