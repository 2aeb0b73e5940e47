"""Random quantized networks for the tests."""

from __future__ import annotations

import numpy as np

from quantizer.graph import Graph, Operator, Tensor
from quantizer.network import DenseLayer, FloatNetwork
from quantizer.quantize import quantize_network
from quantizer.quantize_graph import quantize_graph


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


def strided_depthwise_graph(rng, shape: tuple[int, int, int], paddings: tuple[str, str]):
    """A 3×3 stride-2 depthwise convolution on the input, a 1×1 convolution, and another
    3×3 stride-2 depthwise convolution: both depthwise layers' inputs can be held in blocks
    (the host writes the first, the 1×1 convolution the second)."""
    h, w, c = shape
    tensors = {"x": Tensor("x", (1, h, w, c), "float32")}
    ops = []

    def depthwise(x: str, padding: str) -> str:
        _, xh, xw, _ = tensors[x].shape
        out = [(side + 1) // 2 if padding == "SAME" else (side - 1) // 2 for side in (xh, xw)]
        name = f"dw{len(ops)}"
        tensors[name + "_w"] = Tensor(name + "_w", (1, 3, 3, c), "float32",
                                      data=rng.normal(0, 0.5, (1, 3, 3, c)))
        tensors[name + "_b"] = Tensor(name + "_b", (c,), "float32", data=rng.normal(0, 0.1, c))
        tensors[name] = Tensor(name, (1, *out, c), "float32")
        ops.append(Operator("DEPTHWISE_CONV_2D", (x, name + "_w", name + "_b"), (name,),
                            {"stride": (2, 2), "dilation": (1, 1), "padding": padding,
                             "activation": "RELU", "depth_multiplier": 1}))
        return name

    y = depthwise("x", paddings[0])
    tensors["pw_w"] = Tensor("pw_w", (c, 1, 1, c), "float32", data=rng.normal(0, 0.4, (c, 1, 1, c)))
    tensors["pw_b"] = Tensor("pw_b", (c,), "float32", data=rng.normal(0, 0.1, c))
    tensors["pw"] = Tensor("pw", (*tensors[y].shape[:3], c), "float32")
    ops.append(Operator("CONV_2D", (y, "pw_w", "pw_b"), ("pw",),
                        {"stride": (1, 1), "dilation": (1, 1), "padding": "VALID",
                         "activation": "NONE"}))
    out = depthwise("pw", paddings[1])
    return quantize_graph(Graph(tensors, ops, ["x"], [out]), rng.normal(size=(8, h, w, c)),
                          progress=False)
