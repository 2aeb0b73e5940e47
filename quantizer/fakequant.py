"""Fake quantization: the integer network simulated in float (quantize → dequantize at every
tensor), with the integer path's own rounding.

Weights and biases are dequantized from the quantized network; each layer's output is divided
by its scale, rounded as the hardware's requantizer rounds (``single`` and ``pow2``: ties toward
+∞; ``double``: twice, ties away from zero), offset, clamped and dequantized. It differs from the
golden model only where float products hit a rounding tie that the integer multiplier's 31-bit
``m0`` resolves the other way — a rare 1-LSB difference. Being float and differentiable almost
everywhere, it is what quantization-aware training and quick what-if studies (another bit width,
another calibration) run on; the golden model stays the reference for the hardware.
"""

from __future__ import annotations

import numpy as np

from .golden import dtype_range
from .graph import Graph
from .layers import dense_chain
from .schemes import round_half_away


def _round(values: np.ndarray, rounding: str, shift: np.ndarray) -> np.ndarray:
    if rounding != "double":
        return np.floor(values + 0.5)
    # Double rounding rounds twice: to an integer at 2^-right of the result (SRDHM), then by
    # the right shift (RDBPOT), both ties away from zero.
    step = np.exp2(np.maximum(-shift, 0))
    return round_half_away(round_half_away(values * step) / step)


def fake_quant_forward(graph: Graph, x, *, all_layers: bool = False):
    """Float inputs ``(samples, in)`` → dequantized outputs (every layer's with
    ``all_layers``, input first), computed in float64."""
    lo, hi = dtype_range(graph.dtype)
    layers = dense_chain(graph)
    # The input is quantized exactly as the integer network's (TFLite's QUANTIZE).
    outputs = [graph.input.dequantize(graph.input.quantize(x))]
    for layer in layers:
        p = layer.params
        w = layer.weight_scale[:, None] * (layer.weight.astype(np.float64)
                                           - p.weight_zero_point)
        b = layer.bias * layer.input.scalar_scale * layer.weight_scale
        y = outputs[-1] @ w.T + b
        out_scale = layer.output.scalar_scale
        q = np.clip(_round(y / out_scale, p.rounding, p.shift) + p.output_zero_point,
                    p.act_min, p.act_max)
        outputs.append(out_scale * (q - p.output_zero_point))
    return outputs if all_layers else outputs[-1]
