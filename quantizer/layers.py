"""The fully-connected layers of a graph, as the compiler, the fake-quantized model and the
reports see them: weights as a ``(C, K)`` matrix with the integer parameters the golden kernel
derives for the chosen runtime.

:func:`dense_chain` returns a chain of FULLY_CONNECTED operators (the output of one is the
input of the next) in order, or says which operator breaks the chain (the quantizer's
fake-quantized model and reports work on these). The accelerator runs chains of CONV_2D,
FULLY_CONNECTED and RESHAPE operators: :func:`accelerator_chain` lowers them to
:class:`AcceleratorLayer` convolutions (docs/images.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    """One layer as the accelerator runs it: a convolution by implicit im2col
    (docs/images.md) over an NHWC input of ``h × w × channels`` per sample, weights
    ``(Cout, KH, KW, Cin)``; a fully-connected layer is the convolution with ``h = w = 1``,
    a FULLY_CONNECTED after a flattening RESHAPE the VALID convolution whose kernel covers
    the whole map (``oh = ow = 1``)."""

    name: str
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


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def accelerator_chain(graph: Graph, runtime: str = "litert") -> list[AcceleratorLayer]:
    """The graph as the layers the accelerator runs, first to last: a chain of CONV_2D and
    FULLY_CONNECTED operators, a RESHAPE between them being a free re-layout (it only flattens
    or reshapes what the next layer reads). Refuses anything else in one line naming it."""
    from .golden import conv_output_size
    from .kernels.conv import params as conv_params

    layers: list[AcceleratorLayer] = []
    current = graph.inputs[0]
    shape = graph.tensor(current).sample_shape  # what the next layer reads, NHWC (or (K,))
    # (h, w, c) of the tensor in memory (a vector is a 1x1 map)
    if len(shape) == 3:
        spatial = tuple(int(v) for v in shape)
    elif len(shape) == 1:
        spatial = (1, 1, int(shape[0]))
    else:
        raise QuantizerError(f"the accelerator takes NHWC maps or vectors, got input shape "
                             f"{graph.tensor(current).shape}")
    for op in graph.operators:
        if op.kind not in ("CONV_2D", "FULLY_CONNECTED", "RESHAPE"):
            raise QuantizerError(f"{op.kind} {op.name}: the accelerator runs chains of "
                                 "CONV_2D, FULLY_CONNECTED and RESHAPE operators today (the "
                                 "golden model runs every operator: mxugen sim --golden)")
        if op.inputs[0] != current:
            raise QuantizerError(f"{op.name} does not read the previous layer's output: the "
                                 "accelerator runs a chain of layers, one after the other")
        out = graph.op_output(op)
        if op.kind == "RESHAPE":
            x = graph.tensor(op.inputs[0])
            if x.zp != out.zp:
                raise QuantizerError(f"RESHAPE {op.name}: changes the zero point")
            new = out.sample_shape
            if len(new) == 3 and tuple(new) != spatial:
                raise QuantizerError(f"RESHAPE {op.name}: only flattening runs on the "
                                     f"accelerator, not {x.shape} → {out.shape}")
            if len(new) not in (1, 3):
                raise QuantizerError(f"RESHAPE {op.name}: the accelerator takes NHWC maps or "
                                     f"vectors, got {out.shape}")
            current = op.outputs[0]
            continue
        x, wt = graph.op_inputs(op)[:2]
        bias_t = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
        fmt = op.options.get("weight_format", "int8")
        if op.kind == "CONV_2D":
            if len(x.sample_shape) != 3:
                raise QuantizerError(f"CONV_2D {op.name}: input {x.name} of shape {x.shape} "
                                     "is not an NHWC map")
            h, w, c = spatial
            kernel = np.asarray(wt.data, np.int64)
            if kernel.shape[3] != c:
                raise QuantizerError(f"CONV_2D {op.name}: grouped convolution is not "
                                     "supported")
            (sh, sw), (dh, dw) = _pair(op.options.get("stride", 1)), \
                _pair(op.options.get("dilation", 1))
            padding = op.options.get("padding", "SAME")
            oh, top = conv_output_size(h, kernel.shape[1], sh, dh, padding)
            ow, left = conv_output_size(w, kernel.shape[2], sw, dw, padding)
            p = conv_params(op, graph, runtime)
            layer = AcceleratorLayer(op.name, kernel, _bias(bias_t, kernel.shape[0]), p, fmt,
                                     h, w, oh, ow, (sh, sw), (dh, dw), (top, left))
            spatial = (oh, ow, kernel.shape[0])
        else:
            matrix = np.asarray(wt.data, np.int64)
            k = matrix.shape[1]
            p = fully_connected_params(op, graph, runtime)
            h, w, c = spatial
            if len(x.sample_shape) != 1 or h * w * c != k:
                raise QuantizerError(f"{op.name}: input {x.name} of shape {x.shape} is not "
                                     f"a vector of {k} values")
            kernel = matrix.reshape(matrix.shape[0], h, w, c)
            layer = AcceleratorLayer(op.name, kernel, _bias(bias_t, matrix.shape[0]), p, fmt,
                                     h, w, 1, 1)
            spatial = (1, 1, matrix.shape[0])
        layers.append(layer)
        current = op.outputs[0]
    if current != graph.outputs[0]:
        raise QuantizerError("the graph's output is not its last layer's")
    if not layers:
        raise QuantizerError("the graph has no CONV_2D or FULLY_CONNECTED layer")
    return layers


def _bias(tensor, channels: int) -> np.ndarray:
    return np.zeros(channels, np.int64) if tensor is None else \
        np.asarray(tensor.data, np.int64).reshape(-1)
