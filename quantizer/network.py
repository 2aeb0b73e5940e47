"""Float networks the quantizer accepts: a chain of dense layers with ReLU, ReLU6 or no
activation — what the array runs today. Importers (``.npz`` here, ONNX and TFLite next) all
produce a :class:`FloatNetwork`.

The ``.npz`` format: arrays ``weight_0``, ``bias_0``, ``weight_1``, … with ``weight_i`` of shape
``(out, in)`` (the ONNX Gemm / TFLite layout; a PyTorch ``Linear.weight`` as is), optional
``activation_i`` strings (``none``, ``relu``, ``relu6``; default ``relu`` for every layer but the
last), and an optional ``input_name`` string (default ``input``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import QuantizerError
from .files import load_arrays, numbers, save_arrays

ACTIVATIONS = ("none", "relu", "relu6")


@dataclass
class DenseLayer:
    """``y = act(x · weightᵀ + bias)``; ``weight`` is ``(out, in)``.

    ``preact_stats`` is ``(mean, std)`` per output channel of the pre-activation when a
    BatchNorm was folded into the layer (its ``β`` and ``|γ|``): the statistics data-free
    calibration uses instead of propagating its own.
    """

    weight: np.ndarray
    bias: np.ndarray
    activation: str = "none"
    name: str = ""
    preact_stats: tuple[np.ndarray, np.ndarray] | None = None

    def __post_init__(self):
        self.weight = np.asarray(self.weight, dtype=np.float64)
        self.bias = np.asarray(self.bias, dtype=np.float64)
        label = self.name or "layer"
        if self.weight.ndim != 2:
            raise QuantizerError(f"{label}: weight must be 2-D (out, in), got {self.weight.shape}")
        if 0 in self.weight.shape:
            raise QuantizerError(f"{label}: weight has shape {self.weight.shape}: a layer needs "
                                 "at least one input and one output")
        if self.bias.shape != (self.weight.shape[0],):
            raise QuantizerError(f"{label}: bias has shape {self.bias.shape}, expected "
                                 f"({self.weight.shape[0]},)")
        if not (np.all(np.isfinite(self.weight)) and np.all(np.isfinite(self.bias))):
            raise QuantizerError(f"{label}: weights or bias contain NaN or inf")
        if self.activation not in ACTIVATIONS:
            raise QuantizerError(f"{label}: unknown activation {self.activation!r}: choose one "
                                 f"of {', '.join(ACTIVATIONS)}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.weight.T + self.bias
        if self.activation == "relu":
            return np.maximum(y, 0.0)
        if self.activation == "relu6":
            return np.clip(y, 0.0, 6.0)
        return y


@dataclass
class FloatNetwork:
    layers: list[DenseLayer]
    input_name: str = "input"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.layers:
            raise QuantizerError("the network has no layers")
        for i, (a, b) in enumerate(zip(self.layers, self.layers[1:])):
            if a.weight.shape[0] != b.weight.shape[1]:
                raise QuantizerError(
                    f"layer {i} outputs {a.weight.shape[0]} values but layer {i + 1} expects "
                    f"{b.weight.shape[1]}")

    @property
    def input_size(self) -> int:
        return self.layers[0].weight.shape[1]

    def check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise QuantizerError(f"input must have shape (samples, {self.input_size}), "
                                 f"got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise QuantizerError("input contains NaN or inf")
        return x

    def forward(self, x, *, all_layers: bool = False):
        """Output for ``x`` ``(samples, in)``; with ``all_layers`` the list of every layer's
        output (input first)."""
        outputs = [self.check_input(x)]
        for layer in self.layers:
            outputs.append(layer.forward(outputs[-1]))
        return outputs if all_layers else outputs[-1]

    @classmethod
    def from_npz(cls, path: Path | str) -> "FloatNetwork":
        path = Path(path)
        archive = load_arrays(path, "float model")
        count = 0
        while f"weight_{count}" in archive:
            count += 1
        if count == 0:
            raise QuantizerError(f"{path} has no 'weight_0' array: see the .npz format in "
                                 "docs/quantization.md")
        layers = []
        for i in range(count):
            if f"bias_{i}" not in archive:
                raise QuantizerError(f"{path}: 'weight_{i}' has no matching 'bias_{i}'")
            default = "relu" if i < count - 1 else "none"
            activation = str(archive[f"activation_{i}"]) if f"activation_{i}" in archive \
                else default
            weight, bias = (numbers(archive[f"{key}_{i}"], f"float model {path}: '{key}_{i}'")
                            for key in ("weight", "bias"))
            layers.append(DenseLayer(weight, bias, activation, name=f"dense{i}"))
        name = str(archive["input_name"]) if "input_name" in archive else "input"
        return cls(layers, input_name=name)

    def save_npz(self, path: Path | str) -> None:
        arrays = {"input_name": np.array(self.input_name)}
        for i, layer in enumerate(self.layers):
            arrays.update({f"weight_{i}": layer.weight, f"bias_{i}": layer.bias,
                           f"activation_{i}": np.array(layer.activation)})
        save_arrays(path, **arrays)
