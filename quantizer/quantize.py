"""Post-training quantization of a :class:`~quantizer.network.FloatNetwork` into an integer
operator graph (:class:`~quantizer.graph.Graph`) that the golden model and the array run exactly.

Per layer: weights symmetric (int8 [-127, 127] or a low-bit format, zero point 0), per output
channel or per tensor; bias int32 at scale ``s_in · s_w[c]``; activations asymmetric (or
power-of-two) from calibrated or data-free ranges; the requantization multiplier
``s_in · s_w[c] / s_out`` as TFLite's ``(m0, shift)``; fused ReLU/ReLU6 as clamp bounds. The
result is a graph of FULLY_CONNECTED operators, saved as a folder (``graph.json`` +
``tensors.npz``) that ``mxugen sim`` and the compiler read.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tqdm import tqdm

from .accumulator import check_accumulator
from .calibrate import make_observer
from .datafree import data_free_statistics
from .errors import QuantizerError
from .golden import dtype_range
from .graph import DenseChainBuilder, Graph
from .network import FloatNetwork
from .recovery import clamp_outliers, corrected_bias
from .recovery import equalize as equalize_layers
from .schemes import choose_qparams, round_half_away
from .weights import layer_formats, quantize_weights


def _bias_limited_scale(bias: np.ndarray, input_scale: float, per_channel: bool) -> np.ndarray:
    """The smallest weight scales that keep the bias within ±2^30 at scale ``s_in · s_w`` —
    half of int32, leaving the other half to the accumulation. Like TFLite's converter, the
    scale is raised where the bias would not fit (channels with near-zero weights)."""
    needed = np.abs(bias) / (input_scale * (1 << 30))
    return needed if per_channel else np.full_like(needed, needed.max())


def calibrate_ranges(net: FloatNetwork, data, *, method: str = "minmax", batch_size: int = 256,
                     progress: bool | None = None) -> list[tuple[float, float]]:
    """Real ranges of the network input and of every layer's output over ``data``, with a
    progress bar on a terminal (``progress``: None = auto, True/False = force)."""
    data = net.check_input(data)
    if len(data) == 0:
        raise QuantizerError("calibration data has no samples")
    observers = [make_observer(method) for _ in range(len(net.layers) + 1)]
    batches = range(0, len(data), batch_size)
    for start in tqdm(batches, desc=f"calibrating ({method})", unit="batch",
                      disable=None if progress is None else not progress):
        for observer, values in zip(observers, net.forward(data[start:start + batch_size],
                                                           all_layers=True)):
            observer.update(values)
    return [observer.range() for observer in observers]


def input_means(net: FloatNetwork, data, batch_size: int = 1024) -> list[np.ndarray]:
    """The mean of every layer's float input over ``data`` (for bias correction)."""
    data = net.check_input(data)
    sums = None
    for start in range(0, len(data), batch_size):
        outputs = net.forward(data[start:start + batch_size], all_layers=True)[:-1]
        batch = [o.sum(axis=0) for o in outputs]
        sums = batch if sums is None else [a + b for a, b in zip(sums, batch)]
    return [s / len(data) for s in sums]


def quantize_network(net: FloatNetwork, calibration_data=None, *, per_channel: bool = True,
                     scheme: str = "asymmetric", method: str = "minmax", dtype: str = "int8",
                     rounding: str = "single", weights: str | Mapping[str, str] = "int8",
                     input_range: tuple[float, float] | None = None, n_std: float = 4.0,
                     clamp_std: float | None = None, equalize: bool = False,
                     bias_correction: bool = False, acc_bits: int = 32,
                     progress: bool | None = None) -> Graph:
    """Quantize ``net`` with activation ranges calibrated on ``calibration_data`` — or, with
    no data, derived from the weights and ``input_range`` (``quantizer.datafree``, ``n_std``
    standard deviations wide).

    ``scheme`` applies to activations (``asymmetric`` or ``pow2``); weights are always symmetric,
    power-of-two too under ``pow2`` so every multiplier is a power of two. ``weights`` is the
    weight format (``quantizer.weights``), or a format for some layers by name (the others
    int8, :func:`~quantizer.weights.layer_formats`). ``rounding`` is the requantization mode
    recorded per layer (TFLite's fully-connected kernels use ``single``). Recovery
    (``quantizer.recovery``): ``clamp_std`` clips weight outliers, ``equalize`` runs
    cross-layer equalization, ``bias_correction`` removes the expected output shift of the
    weight error.
    """
    if scheme not in ("asymmetric", "pow2"):
        raise QuantizerError(f"activation scheme must be 'asymmetric' or 'pow2', got {scheme!r}")
    layer_names = [layer.name or f"dense{i}" for i, layer in enumerate(net.layers)]
    formats = layer_formats(weights, layer_names)
    if clamp_std is not None:
        net = clamp_outliers(net, clamp_std)
    if equalize:
        net = equalize_layers(net)
    if calibration_data is None:
        if input_range is None:
            raise QuantizerError("without calibration data, give the input's range for "
                                 "data-free quantization")
        ranges, means = data_free_statistics(net, input_range, n_std=n_std)
        method = "data-free"
    else:
        ranges = calibrate_ranges(net, calibration_data, method=method, progress=progress)
        means = input_means(net, calibration_data) if bias_correction else []
    # The input's range, then each layer's output's.
    names = [net.input_name, *(f"{layer.name}'s output" for layer in net.layers)]
    act = [choose_qparams(lo, hi, scheme=scheme, dtype=dtype, name=name)
           for name, (lo, hi) in zip(names, ranges, strict=True)]
    qlo, qhi = dtype_range(dtype)
    np_dtype = np.int8 if dtype == "int8" else np.uint8
    chain = DenseChainBuilder(net.input_name, net.input_size, float(act[0].scale),
                              int(act[0].zero_point), dtype)
    for i, (layer, name, q_in, q_out) in enumerate(zip(net.layers, layer_names, act,
                                                                act[1:])):
        wq = quantize_weights(layer.weight, fmt=formats[name], per_channel=per_channel,
                              pow2=scheme == "pow2", dtype=dtype,
                              min_scale=_bias_limited_scale(layer.bias, float(q_in.scale),
                                                            per_channel))
        weight = wq.values.astype(np_dtype)
        bias = corrected_bias(layer.bias, layer.weight, wq.dequantize(), means[i]) \
            if bias_correction else layer.bias
        bias = round_half_away(bias / (float(q_in.scale) * wq.scale))
        check_accumulator(weight, input_zero_point=int(q_in.zero_point),
                          weight_zero_point=wq.zero_point, bias=bias,
                          input_min=qlo, input_max=qhi, acc_bits=acc_bits, layer=name)
        chain.add(name, weight, bias, weight_scale=wq.scale if per_channel else wq.scale[:1],
                  weight_zero_point=wq.zero_point, output_scale=float(q_out.scale),
                  output_zero_point=int(q_out.zero_point),
                  activation=layer.activation.upper(),
                  rounding="pow2" if scheme == "pow2" else rounding,
                  weight_format=formats[name])
    settings = {"per_channel": per_channel, "scheme": scheme, "method": method,
                "rounding": rounding,
                "weights": weights if isinstance(weights, str) else formats,
                "clamp_std": clamp_std,
                "equalize": equalize, "bias_correction": bias_correction}
    return chain.graph({"settings": settings})
