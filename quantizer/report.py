"""Quantization reports: how far the integer network is from the float one, layer by layer,
and what it costs to store."""

from __future__ import annotations

import numpy as np

from .graph import Graph
from .layers import dense_chain
from .network import FloatNetwork


def sqnr_db(reference: np.ndarray, approximation: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    noise = float(np.sum((reference - approximation) ** 2))
    signal = float(np.sum(reference ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(max(signal, 1e-300) / noise)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent of class scores ``(samples, classes)`` against labels."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} score rows for {len(labels)} labels")
    return 100.0 * float(np.mean(np.argmax(scores, axis=1) == labels))


def layer_errors(net: FloatNetwork, graph: Graph, x) -> list[dict]:
    """Per layer: the dequantized integer output minus the float one (``error``), its SQNR,
    and how much of the integer range the outputs use."""
    floats = net.forward(x, all_layers=True)[1:]
    values = graph.run(graph.input.quantize(net.check_input(x)), all_tensors=True)
    rows = []
    for layer, fl in zip(dense_chain(graph), floats):
        qi = values[layer.name]
        deq = layer.output.dequantize(qi)
        rows.append({"layer": layer.name, "shape": list(layer.weight.shape),
                     "sqnr_db": round(sqnr_db(fl, deq), 2), "error": deq - fl,
                     "range_used": round((int(qi.max()) - int(qi.min())) /
                                         (layer.params.act_max - layer.params.act_min), 3)})
    return rows


def layer_report(net: FloatNetwork, graph: Graph, x) -> list[dict]:
    """:func:`layer_errors` without the error arrays: what a JSON report prints."""
    return [{k: v for k, v in row.items() if k != "error"}
            for row in layer_errors(net, graph, x)]


def model_size(net: FloatNetwork, graph: Graph) -> dict:
    """Bytes of parameters: float32, and quantized with weights packed at their format's bits
    (int32 bias plus a 4-byte multiplier and 1-byte shift per output channel)."""
    layers = dense_chain(graph)
    float_bytes = 4 * sum(layer.weight.size + layer.bias.size for layer in net.layers)
    weight_bits = sum(layer.weight.size * layer.weight_bits for layer in layers)
    per_channel = sum(layer.weight.shape[0] * (4 + 4 + 1) for layer in layers)
    quantized = -(-weight_bits // 8) + per_channel
    return {"float32_bytes": float_bytes, "quantized_bytes": quantized,
            "weight_bytes_int8": sum(layer.weight.size for layer in layers),
            "weight_bytes_packed": -(-weight_bits // 8),
            "compression": round(float_bytes / quantized, 2)}
