"""Post-training quantization of a :class:`~quantizer.network.FloatNetwork` into an integer
network that the golden model (and the array) runs exactly.

Per layer: weights symmetric (int8 [-127, 127] or a low-bit format, zero point 0), per output
channel or per tensor; bias int32 at scale ``s_in · s_w[c]``; activations asymmetric (or
power-of-two) from calibrated or data-free ranges; the requantization multiplier
``s_in · s_w[c] / s_out`` as TFLite's ``(m0, shift)``; fused ReLU/ReLU6 as clamp bounds. The
result is saved as a folder (``network.json`` + ``weights.npz``) that ``mxugen sim`` and the
compiler read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .accumulator import check_accumulator
from .calibrate import make_observer
from .datafree import data_free_statistics
from .errors import QuantizerError
from .files import save_arrays, write_atomic
from .fixedpoint import quantize_multipliers
from .golden import dtype_range, fully_connected
from .network import FloatNetwork
from .recovery import clamp_outliers, corrected_bias
from .recovery import equalize as equalize_layers
from .schemes import QuantParams, choose_qparams, round_half_away
from .weights import WEIGHT_FORMATS, quantize_weights

FORMAT_VERSION = 1


@dataclass
class QuantizedLayer:
    """One int8 fully-connected layer, everything the golden model and the array need."""

    name: str
    weight: np.ndarray           # (out, in) int8 (uint8 networks: uint8)
    weight_zero_point: int       # 0 for int8's symmetric weights, 128 for uint8
    bias: np.ndarray             # (out,) int32
    weight_scale: np.ndarray     # (out,) float, per channel (all equal when per tensor)
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    m0: np.ndarray               # (out,)
    shift: np.ndarray            # (out,)
    act_min: int
    act_max: int
    activation: str
    rounding: str = "single"
    weight_format: str = "int8"

    @property
    def weight_bits(self) -> int:
        return WEIGHT_FORMATS[self.weight_format]

    def run(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return fully_connected(x, self.weight, self.bias, input_zero_point=self.input_zero_point,
                               weight_zero_point=self.weight_zero_point, m0=self.m0, shift=self.shift,
                               output_zero_point=self.output_zero_point, act_min=self.act_min,
                               act_max=self.act_max, rounding=self.rounding, dtype=dtype)


@dataclass
class QuantizedNetwork:
    layers: list[QuantizedLayer]
    dtype: str = "int8"
    input_name: str = "input"
    settings: dict | None = None

    @property
    def weight_bits(self) -> int:
        """Bits per weight a memory needs to hold every layer's weights."""
        return max(layer.weight_bits for layer in self.layers)

    @property
    def input_params(self) -> QuantParams:
        first = self.layers[0]
        lo, hi = dtype_range(self.dtype)
        return QuantParams(np.float64(first.input_scale), np.int64(first.input_zero_point),
                           self.dtype, lo, hi)

    @property
    def output_params(self) -> QuantParams:
        last = self.layers[-1]
        lo, hi = dtype_range(self.dtype)
        return QuantParams(np.float64(last.output_scale), np.int64(last.output_zero_point),
                           self.dtype, lo, hi)

    def quantize_input(self, x) -> np.ndarray:
        return self.input_params.quantize(x)

    def run(self, q, *, all_layers: bool = False):
        """Integer inference (the golden model): int8 inputs ``(samples, in)`` → int8 outputs."""
        outputs = [np.asarray(q)]
        expected = self.layers[0].weight.shape[1]
        if outputs[0].ndim != 2 or outputs[0].shape[1] != expected:
            raise QuantizerError(f"input must have shape (samples, {expected}), "
                                 f"got {outputs[0].shape}")
        for layer in self.layers:
            outputs.append(layer.run(outputs[-1], self.dtype))
        return outputs if all_layers else outputs[-1]

    def run_float(self, x) -> np.ndarray:
        """Quantize float inputs, run in integers, dequantize the outputs."""
        return self.output_params.dequantize(self.run(self.quantize_input(x)))

    # -- the folder format ----------------------------------------------------------------
    def save(self, folder: Path | str) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays, layers = {}, []
        for i, layer in enumerate(self.layers):
            arrays.update({f"weight_{i}": layer.weight, f"bias_{i}": layer.bias,
                           f"weight_scale_{i}": layer.weight_scale, f"m0_{i}": layer.m0,
                           f"shift_{i}": layer.shift})
            layers.append({k: getattr(layer, k) for k in (
                "name", "weight_zero_point", "input_scale", "input_zero_point", "output_scale",
                "output_zero_point",
                "act_min", "act_max", "activation", "rounding", "weight_format")})
        save_arrays(folder / "weights.npz", **arrays)
        write_atomic(folder / "network.json", json.dumps({
            "format": "mxugen-quantized-network", "version": FORMAT_VERSION,
            "dtype": self.dtype, "input_name": self.input_name, "settings": self.settings,
            "layers": layers}, indent=2, default=_json_scalar) + "\n")
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> "QuantizedNetwork":
        folder = Path(folder)
        try:
            meta = json.loads((folder / "network.json").read_text())
            arrays = np.load(folder / "weights.npz")
        except (OSError, ValueError) as exc:
            raise QuantizerError(f"{folder} is not a quantized network folder (written by "
                                 f"mxugen quantize): {exc}") from None
        if meta.get("format") != "mxugen-quantized-network" or meta.get("version") != FORMAT_VERSION:
            raise QuantizerError(f"{folder}/network.json is not a version {FORMAT_VERSION} "
                                 "mxugen quantized network")
        layers = [QuantizedLayer(weight=arrays[f"weight_{i}"], bias=arrays[f"bias_{i}"],
                                 weight_scale=arrays[f"weight_scale_{i}"], m0=arrays[f"m0_{i}"],
                                 shift=arrays[f"shift_{i}"], **entry)
                  for i, entry in enumerate(meta["layers"])]
        return cls(layers, dtype=meta["dtype"], input_name=meta["input_name"],
                   settings=meta.get("settings"))


def _json_scalar(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialize {type(value).__name__}")


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
                     rounding: str = "single", weights: str = "int8",
                     input_range: tuple[float, float] | None = None, n_std: float = 4.0,
                     clamp_std: float | None = None, equalize: bool = False,
                     bias_correction: bool = False, acc_bits: int = 32,
                     progress: bool | None = None) -> QuantizedNetwork:
    """Quantize ``net`` with activation ranges calibrated on ``calibration_data`` — or, with
    no data, derived from the weights and ``input_range`` (``quantizer.datafree``, ``n_std``
    standard deviations wide).

    ``scheme`` applies to activations (``asymmetric`` or ``pow2``); weights are always symmetric,
    power-of-two too under ``pow2`` so every multiplier is a power of two. ``weights`` is the
    weight format (``quantizer.weights``). ``rounding`` is the requantization mode recorded per
    layer (TFLite's fully-connected kernels use ``single``). Recovery (``quantizer.recovery``):
    ``clamp_std`` clips weight outliers, ``equalize`` runs cross-layer equalization,
    ``bias_correction`` removes the expected output shift of the weight error.
    """
    if scheme not in ("asymmetric", "pow2"):
        raise QuantizerError(f"activation scheme must be 'asymmetric' or 'pow2', got {scheme!r}")
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
    act = [choose_qparams(lo, hi, scheme=scheme, dtype=dtype) for lo, hi in ranges]
    qlo, qhi = dtype_range(dtype)
    layers = []
    for i, (layer, q_in, q_out) in enumerate(zip(net.layers, act, act[1:])):
        wq = quantize_weights(layer.weight, fmt=weights, per_channel=per_channel,
                              pow2=scheme == "pow2", dtype=dtype,
                              min_scale=_bias_limited_scale(layer.bias, float(q_in.scale),
                                                            per_channel))
        weight = wq.values.astype(np.int8 if dtype == "int8" else np.uint8)
        w_scale = wq.scale
        weight_zero_point = wq.zero_point
        bias_scale = float(q_in.scale) * w_scale
        bias = corrected_bias(layer.bias, layer.weight, wq.dequantize(), means[i]) \
            if bias_correction else layer.bias
        bias = round_half_away(bias / bias_scale)
        m0, shift = quantize_multipliers(bias_scale / float(q_out.scale))
        zp_out = int(q_out.zero_point)
        act_min, act_max = qlo, qhi
        if layer.activation in ("relu", "relu6"):
            act_min = max(qlo, zp_out)
        if layer.activation == "relu6":
            act_max = min(qhi, zp_out + int(np.round(6.0 / float(q_out.scale))))
        check_accumulator(weight, input_zero_point=int(q_in.zero_point),
                          weight_zero_point=weight_zero_point, bias=bias,
                          input_min=qlo, input_max=qhi, acc_bits=acc_bits,
                          layer=layer.name or f"layer {i}")
        layers.append(QuantizedLayer(
            name=layer.name or f"dense{i}", weight=weight, weight_zero_point=weight_zero_point,
            bias=bias.astype(np.int32), weight_scale=w_scale,
            input_scale=float(q_in.scale), input_zero_point=int(q_in.zero_point),
            output_scale=float(q_out.scale), output_zero_point=zp_out, m0=m0, shift=shift,
            act_min=act_min, act_max=act_max, activation=layer.activation,
            rounding="pow2" if scheme == "pow2" else rounding, weight_format=weights))
    settings = {"per_channel": per_channel, "scheme": scheme, "method": method,
                "rounding": rounding, "weights": weights, "clamp_std": clamp_std,
                "equalize": equalize, "bias_correction": bias_correction}
    return QuantizedNetwork(layers, dtype=dtype, input_name=net.input_name, settings=settings)
