"""Accuracy recovery before and during quantization.

- :func:`clamp_outliers` clips each output channel's weights at ``mean ± n·std``: a few
  outliers no longer stretch the scale for all the other weights.
- :func:`equalize` is cross-layer equalization (Nagel et al., "Data-Free Quantization Through
  Weight Equalization and Bias Correction", ICCV 2019): for two layers joined by a ReLU,
  ``ReLU(x/s) = ReLU(x)/s`` for ``s > 0``, so output channel ``j`` of the first layer can be
  divided by ``s_j`` and input column ``j`` of the second multiplied by it without changing the
  function. ``s_j = sqrt(r1_j / r2_j)`` (``r`` the channel's largest ``|w|``) makes both
  ranges ``sqrt(r1_j · r2_j)``, the choice that maximises the layers' summed per-channel
  precision.
- :func:`corrected_bias` is bias correction: quantizing ``W`` to ``Ŵ = W + ε`` shifts the
  expected output by ``ε·E[x]``; subtracting it from the bias removes that systematic error.

All three work on the float network, so they compose with any scheme and weight format.
"""

from __future__ import annotations

import numpy as np

from .errors import QuantizerError
from .network import DenseLayer, FloatNetwork


def _replace(layer: DenseLayer, weight: np.ndarray, bias: np.ndarray,
             output_scale: np.ndarray | float = 1.0) -> DenseLayer:
    """``layer`` with new parameters; ``output_scale`` is how its outputs were scaled (folded
    BatchNorm statistics follow them)."""
    stats = None if layer.preact_stats is None else \
        (layer.preact_stats[0] * output_scale, layer.preact_stats[1] * output_scale)
    return DenseLayer(weight, bias, layer.activation, name=layer.name, preact_stats=stats)


def clamp_outliers(net: FloatNetwork, n_std: float) -> FloatNetwork:
    """Clip every output channel's weights to ``mean ± n_std · std`` of that channel."""
    if not 0 < n_std < float("inf"):
        raise QuantizerError(f"outlier clamping needs a positive number of standard deviations, "
                             f"got {n_std}")
    layers = []
    for layer in net.layers:
        mean = layer.weight.mean(axis=1, keepdims=True)
        std = layer.weight.std(axis=1, keepdims=True)
        clipped = np.clip(layer.weight, mean - n_std * std, mean + n_std * std)
        layers.append(_replace(layer, clipped, layer.bias))
    return FloatNetwork(layers, input_name=net.input_name, meta=net.meta)


def equalization_scales(w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """``s_j = sqrt(r1_j / r2_j)`` for the channels between ``w1`` ``(o, i)`` and ``w2``
    ``(p, o)``; 1 where either side is all zero."""
    r1, r2 = np.abs(w1).max(axis=1), np.abs(w2).max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(r1 / r2)
    return np.where((r1 > 0) & (r2 > 0), s, 1.0)


def equalize(net: FloatNetwork, iterations: int = 20) -> FloatNetwork:
    """Cross-layer equalization of every pair of layers joined by a ReLU, repeated until the
    scales settle (at most ``iterations`` sweeps). The float function is unchanged."""
    layers = list(net.layers)
    for _ in range(iterations):
        largest_step = 0.0
        for i, (first, second) in enumerate(zip(layers, layers[1:])):
            if first.activation != "relu":  # ReLU6's clip at 6 is not scale-equivariant
                continue
            s = equalization_scales(first.weight, second.weight)
            largest_step = max(largest_step, float(np.max(np.abs(np.log(s)))))
            layers[i] = _replace(first, first.weight / s[:, None], first.bias / s, 1 / s)
            layers[i + 1] = _replace(second, second.weight * s[None, :], second.bias)
        if largest_step < 1e-6:
            break
    return FloatNetwork(layers, input_name=net.input_name, meta=net.meta)


def corrected_bias(bias: np.ndarray, weight: np.ndarray, dequantized: np.ndarray,
                   input_mean: np.ndarray) -> np.ndarray:
    """``b − ε·E[x]`` with ``ε = Ŵ − W`` the weight quantization error."""
    return bias - (dequantized - weight) @ input_mean
