"""The fully-connected layers of a graph, as the compiler, the fake-quantized model and the
reports see them: weights as a ``(C, K)`` matrix with the integer parameters the golden kernel
derives for the chosen runtime.

Today's accelerator runs chains of FULLY_CONNECTED operators (the output of one is the input
of the next); :func:`dense_chain` returns them in order, or says which operator breaks the
chain.
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
            raise QuantizerError(f"{op.kind} {op.name}: the accelerator runs chains of "
                                 "FULLY_CONNECTED operators today (the golden model runs "
                                 "every operator: mxugen sim --golden)")
        if op.inputs[0] != current:
            raise QuantizerError(f"{op.name} does not read the previous layer's output: the "
                                 "accelerator runs a chain of layers, one after the other")
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
