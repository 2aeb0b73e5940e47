"""Random quantized networks for the tests."""

from __future__ import annotations

import numpy as np

from quantizer.graph import Graph
from quantizer.network import DenseLayer, FloatNetwork
from quantizer.quantize import quantize_network


def random_dense_network(rng: np.random.Generator, sizes: list[int], scheme: str, dtype: str,
                         weights: str = "int8") -> Graph:
    """Fully-connected layers of ``sizes`` (inputs first), ReLU but for the last, random
    float weights quantized per channel with ``scheme`` on random calibration data."""
    layers = [DenseLayer(rng.normal(0, 1 / np.sqrt(k), (n, k)), rng.normal(0, 0.1, n),
                         "relu" if i < len(sizes) - 2 else "none", name=f"dense{i}")
              for i, (k, n) in enumerate(zip(sizes, sizes[1:]))]
    return quantize_network(FloatNetwork(layers), rng.normal(size=(64, sizes[0])),
                            per_channel=True, scheme=scheme, dtype=dtype, weights=weights,
                            progress=False)
