"""Data-free calibration: activation ranges and means from the weights alone.

Nothing but the input's range is needed. Each input feature is taken as uniform on that range
and independent of the others; mean and variance then propagate exactly through each dense
layer (``μ' = Wμ + b``, ``σ'² = W²σ²``) — or, where a BatchNorm was folded into the layer, are
its ``β`` and ``|γ|`` (DFQ's folded statistics) — and, taking pre-activations as Gaussian,
through ReLU with the rectified-Gaussian moments used for DFQ's bias correction (Nagel et al. 2019).
A layer's range is ``μ ± n·σ`` over its channels, never wider than interval arithmetic's hard
bound; the means feed bias correction.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from .errors import QuantizerError
from .network import FloatNetwork
from .schemes import MAX_SPAN, MIN_SPAN


def rectified_gaussian_moments(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Mean and variance of ``max(0, X)`` for ``X ~ N(mean, std²)``."""
    std = np.maximum(std, 1e-12)
    z = mean / std
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    cdf = ndtr(z)
    m1 = mean * cdf + std * pdf
    m2 = (mean ** 2 + std ** 2) * cdf + mean * std * pdf
    return m1, np.maximum(m2 - m1 ** 2, 0.0)


def data_free_statistics(net: FloatNetwork, input_range: tuple[float, float], *,
                         n_std: float = 4.0) -> tuple[list[tuple[float, float]],
                                                      list[np.ndarray]]:
    """Ranges of the input and of every layer's output (as :func:`calibrate_ranges` returns
    them), and the mean of every layer's input."""
    lo, hi = (float(v) for v in input_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise QuantizerError(f"the input range must be two finite numbers LO < HI, got "
                             f"{input_range}")
    if max(abs(lo), abs(hi)) > MAX_SPAN / 2 or hi - lo < MIN_SPAN:
        raise QuantizerError(f"the input range {lo:g},{hi:g} is outside what an int8 scale "
                             f"can hold (a span of {MIN_SPAN:g} … {MAX_SPAN:g}): rescale the "
                             "model's input")
    size = net.input_size
    mean, var = np.full(size, (lo + hi) / 2), np.full(size, (hi - lo) ** 2 / 12)
    box_lo, box_hi = np.full(size, lo), np.full(size, hi)
    ranges, means = [(lo, hi)], []
    for layer in net.layers:
        means.append(mean)
        w, b = layer.weight, layer.bias
        if layer.preact_stats is not None:  # a folded BatchNorm knows its output's statistics
            mean, var = layer.preact_stats[0], layer.preact_stats[1] ** 2
        else:
            mean, var = w @ mean + b, (w ** 2) @ var
        pos, neg = np.maximum(w, 0), np.minimum(w, 0)
        box_lo, box_hi = pos @ box_lo + neg @ box_hi + b, pos @ box_hi + neg @ box_lo + b
        std = np.sqrt(var)
        r_lo = np.maximum(mean - n_std * std, box_lo).min()
        r_hi = np.minimum(mean + n_std * std, box_hi).max()
        if layer.activation in ("relu", "relu6"):
            mean, var = rectified_gaussian_moments(mean, std)
            box_lo, box_hi = np.maximum(box_lo, 0), np.maximum(box_hi, 0)
            r_lo, r_hi = max(r_lo, 0.0), max(r_hi, 0.0)
        if layer.activation == "relu6":
            box_hi = np.minimum(box_hi, 6.0)
            r_hi = min(r_hi, 6.0)
        ranges.append((float(r_lo), float(r_hi)))
    return ranges, means
