"""Quantization reports: how far the integer network is from the float one, layer by layer."""

from __future__ import annotations

import numpy as np

from .network import FloatNetwork
from .quantize import QuantizedNetwork


def sqnr_db(reference: np.ndarray, approximation: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when identical)."""
    noise = float(np.sum((reference - approximation) ** 2))
    signal = float(np.sum(reference ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(max(signal, 1e-300) / noise)


def layer_report(net: FloatNetwork, qnet: QuantizedNetwork, x) -> list[dict]:
    """Per layer: SQNR of the dequantized integer output against float, and how much of the
    integer range the outputs use."""
    floats = net.forward(x, all_layers=True)[1:]
    ints = qnet.run(qnet.quantize_input(x), all_layers=True)[1:]
    rows = []
    for layer, fl, qi in zip(qnet.layers, floats, ints):
        deq = layer.output_scale * (qi.astype(np.float64) - layer.output_zero_point)
        rows.append({"layer": layer.name, "shape": list(layer.weight.shape),
                     "sqnr_db": round(sqnr_db(fl, deq), 2),
                     "range_used": round((int(qi.max()) - int(qi.min())) /
                                         (layer.act_max - layer.act_min), 3)})
    return rows
