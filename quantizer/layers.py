"""The fully-connected layers of a graph, as the compiler, the fake-quantized model and the
reports see them: weights as a ``(C, K)`` matrix with the integer parameters the golden kernel
derives for the chosen runtime.

:func:`dense_chain` returns a chain of FULLY_CONNECTED operators (the output of one is the
input of the next) in order, or says which operator breaks the chain (the quantizer's
fake-quantized model and reports work on these). :func:`lower` maps one operator onto the
array as an :class:`AcceleratorLayer` convolution (docs/images.md), or says why it cannot;
:mod:`quantizer.partition` decides with it where each operator of a graph runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.contract import PAD_BITS, SPATIAL_BITS, STEP_BITS

from .errors import QuantizerError
from .graph import Graph, Operator, Tensor
from .kernels.common import MacParams
from .kernels.fully_connected import params as fully_connected_params
from .weights import WEIGHT_FORMATS


@dataclass(frozen=True)
class FullyConnectedLayer:
    """One FULLY_CONNECTED operator with its tensors and integer parameters."""

    op: Operator
    input: Tensor
    weights: Tensor
    output: Tensor
    bias: np.ndarray
    params: MacParams

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def weight(self) -> np.ndarray:
        """``(C, K)``."""
        return self.weights.data

    @property
    def weight_format(self) -> str:
        return self.op.options.get("weight_format", "int8")

    @property
    def weight_bits(self) -> int:
        return WEIGHT_FORMATS[self.weight_format]

    @property
    def weight_scale(self) -> np.ndarray:
        """One scale per output channel."""
        channels = self.weight.shape[0]
        return self.weights.scale if self.weights.per_channel else \
            np.full(channels, self.weights.scale[0])


def dense_chain(graph: Graph, runtime: str = "litert") -> list[FullyConnectedLayer]:
    """The graph's operators as a chain of fully-connected layers, first to last."""
    layers, current = [], graph.inputs[0]
    for op in graph.operators:
        if op.kind != "FULLY_CONNECTED":
            raise QuantizerError(f"{op.kind} {op.name}: fake quantization and the dense "
                                 "reports work on chains of FULLY_CONNECTED operators")
        if op.inputs[0] != current:
            raise QuantizerError(f"{op.name} does not read the previous layer's output: "
                                 "fake quantization and the dense reports work on a chain of "
                                 "layers, one after the other")
        x, w = graph.op_inputs(op)[:2]
        if len(x.sample_shape) != 1 or w.shape[1] != x.sample_shape[0]:
            raise QuantizerError(f"{op.name}: input {x.name} of shape {x.shape} is not a "
                                 f"vector of {w.shape[1]} values")
        bias = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 else None
        layers.append(FullyConnectedLayer(
            op, x, w, graph.op_output(op),
            np.zeros(w.shape[0], np.int64) if bias is None else bias.data.astype(np.int64),
            fully_connected_params(op, graph, runtime)))
        current = op.outputs[0]
    if current != graph.outputs[0]:
        raise QuantizerError("the graph's output is not its last layer's")
    return layers


@dataclass(frozen=True)
class AcceleratorLayer:
    """One operator as the accelerator runs it: a convolution by implicit im2col
    (docs/images.md) over an NHWC input of ``h × w × channels`` per sample, weights
    ``(Cout, KH, KW, Cin)``; a fully-connected layer is the convolution with ``h = w = 1``,
    a FULLY_CONNECTED after a flattening RESHAPE the VALID convolution whose kernel covers
    the whole map (``oh = ow = 1``). ``input`` is the tensor it reads from activation memory
    (for a FULLY_CONNECTED behind flattening RESHAPEs, the tensor they flatten), ``output``
    the one it writes."""

    name: str
    kind: str
    input: str
    output: str
    kernel: np.ndarray  # (Cout, KH, KW, Cin)
    bias: np.ndarray
    params: MacParams
    weight_format: str
    h: int
    w: int
    oh: int
    ow: int
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)  # top, left

    @property
    def weight(self) -> np.ndarray:
        """``(Cout, KH·KW·Cin)``: the GEMM's weight matrix, K ordered (kh, kw, c)."""
        return self.kernel.reshape(self.kernel.shape[0], -1)

    @property
    def weight_bits(self) -> int:
        return WEIGHT_FORMATS[self.weight_format]

    @property
    def channels_in(self) -> int:
        return self.kernel.shape[3]

    @property
    def channels_out(self) -> int:
        return self.kernel.shape[0]

    @property
    def pixels(self) -> int:
        """Output pixels per sample: the GEMM's M per sample."""
        return self.oh * self.ow

    @property
    def input_pixels(self) -> int:
        return self.h * self.w

    def tiles(self, rows: int, cols: int) -> tuple[int, int, int]:
        """``(groups, k_tiles, n_tiles)`` on a rows×cols array: input channels in groups of
        ``rows``, one K tile per kernel tap and group, one column tile per ``cols`` output
        channels (docs/images.md)."""
        cout, kh, kw, cin = self.kernel.shape
        groups = -(-cin // rows)
        return groups, kh * kw * groups, -(-cout // cols)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample (real channels and taps, padding taps included)."""
        return self.pixels * int(np.prod(self.kernel.shape))


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def map_shape(tensor: Tensor) -> tuple[int, int, int] | None:
    """``(h, w, c)`` of a tensor as activation memory holds it (a vector is a 1×1 map), or
    None for a shape that is neither an NHWC map nor a vector."""
    shape = tensor.sample_shape
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    if len(shape) == 1:
        return 1, 1, int(shape[0])
    return None


def flattened_source(graph: Graph, name: str) -> str:
    """The tensor that RESHAPEs producing ``name`` reshape, followed back to one that is not
    a RESHAPE's output (``name`` itself if none)."""
    producer = graph.producer(name)
    while producer is not None and producer.kind == "RESHAPE":
        name = producer.inputs[0]
        producer = graph.producer(name)
    return name


#: What the descriptor's convolution fields hold (hw.contract).
_GEOMETRY_LIMITS = {"map size": (1 << SPATIAL_BITS) - 1,
                    "stride or dilation": (1 << STEP_BITS) - 1, "padding": (1 << PAD_BITS) - 1}


def _check_geometry(*, sizes, steps, pads) -> None:
    for what, values in (("map size", sizes), ("stride or dilation", steps), ("padding", pads)):
        limit = _GEOMETRY_LIMITS[what]
        if max(values) > limit:
            raise QuantizerError(f"its {what} {max(values)} exceeds the descriptor's limit "
                                 f"{limit}")


#: Operators :func:`lower` maps onto the array.
ACCELERATOR_KINDS = ("CONV_2D", "FULLY_CONNECTED")


def lower(graph: Graph, op: Operator, runtime: str = "litert") -> AcceleratorLayer:
    """``op`` as the layer the accelerator runs; a :class:`QuantizerError` says why it cannot
    (the operator then runs on the host, :mod:`quantizer.partition`)."""
    from .golden import conv_output_size
    from .kernels.conv import params as conv_params

    if op.kind not in ACCELERATOR_KINDS:
        raise QuantizerError(f"the accelerator has no {op.kind} yet")
    x, wt = graph.op_inputs(op)[:2]
    out = graph.op_output(op)
    if x.dtype != out.dtype or x.dtype not in ("int8", "uint8"):
        raise QuantizerError(f"it computes {x.dtype} → {out.dtype}; the accelerator computes "
                             "int8 or uint8 layers")
    bias_t = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    fmt = op.options.get("weight_format", "int8")
    if op.kind == "CONV_2D":
        spatial = map_shape(x)
        if spatial is None or len(x.sample_shape) != 3:
            raise QuantizerError(f"its input {x.name} of shape {x.shape} is not an NHWC map")
        h, w, c = spatial
        kernel = np.asarray(wt.data, np.int64)
        if kernel.shape[3] != c:
            raise QuantizerError("grouped convolutions do not run on the accelerator")
        (sh, sw), (dh, dw) = _pair(op.options.get("stride", 1)), \
            _pair(op.options.get("dilation", 1))
        padding = op.options.get("padding", "SAME")
        oh, top = conv_output_size(h, kernel.shape[1], sh, dh, padding)
        ow, left = conv_output_size(w, kernel.shape[2], sw, dw, padding)
        _check_geometry(sizes=(h, w, oh, ow, kernel.shape[2]), steps=(sh, sw, dh, dw),
                        pads=(top, left))
        return AcceleratorLayer(op.name, op.kind, x.name, out.name, kernel,
                                _bias(bias_t, kernel.shape[0]), conv_params(op, graph, runtime),
                                fmt, h, w, oh, ow, (sh, sw), (dh, dw), (top, left))
    matrix = np.asarray(wt.data, np.int64)
    k = matrix.shape[1]
    source = graph.tensor(flattened_source(graph, x.name))
    spatial = map_shape(source)
    # FULLY_CONNECTED flattens each sample of its input (TFLite's batch = size / K).
    if int(np.prod(x.sample_shape)) != k or spatial is None or int(np.prod(spatial)) != k:
        raise QuantizerError(f"its input {x.name} of shape {x.shape} does not hold {k} values "
                             "per sample in an NHWC map or a vector")
    if source.zp != x.zp or source.scalar_scale != x.scalar_scale:
        raise QuantizerError(f"the RESHAPE before it changes the quantization of "
                             f"{source.name}")
    h, w, c = spatial
    _check_geometry(sizes=(h, w), steps=(1,), pads=(0,))
    return AcceleratorLayer(op.name, op.kind, source.name, out.name,
                            matrix.reshape(matrix.shape[0], h, w, c),
                            _bias(bias_t, matrix.shape[0]),
                            fully_connected_params(op, graph, runtime), fmt, h, w, 1, 1)


def _bias(tensor, channels: int) -> np.ndarray:
    return np.zeros(channels, np.int64) if tensor is None else \
        np.asarray(tensor.data, np.int64).reshape(-1)
