"""Sizing the accelerator for a network: the smallest memories that hold its weights,
parameters, program and activations, rounded up to powers of two so that similar networks
share one simulator build."""

from __future__ import annotations

from hw import ArrayConfig

from .graph import Graph
from .layers import accelerator_chain


def _pow2_at_least(n: int) -> int:
    return max(2, 1 << max(0, (n - 1).bit_length()))


def accelerator_config(graph: Graph, batch: int, *, rows: int = 8, cols: int = 8,
                       keep_layers: bool = False, **options) -> ArrayConfig:
    """An accelerator sized for ``graph`` at ``batch`` samples per run; ``keep_layers`` makes
    room for every layer's outputs at once. ``options`` are further ArrayConfig fields.

    A convolution's GEMM has one row per output pixel, so the partial-sum memory holds
    ``batch`` × the largest output map, and activation regions whole feature maps."""
    layers = accelerator_chain(graph)
    words = {"weights": 0, "params": 0}
    first = layers[0]
    widest = -(-first.channels_in // rows) * first.input_pixels
    for layer in layers:
        cout, kh, kw, cin = layer.kernel.shape
        n_tiles, k_tiles = -(-cout // cols), kh * kw * -(-cin // rows)
        words["weights"] += n_tiles * k_tiles * rows
        words["params"] += n_tiles
        widest = max(widest, -(-cout // rows) * layer.pixels)
    pixels = max(layer.pixels for layer in layers)
    options.setdefault("weight_bits", max(layer.weight_bits for layer in layers))
    return ArrayConfig(rows=rows, cols=cols, dtype=graph.dtype,
                       weight_depth=_pow2_at_least(words["weights"]),
                       act_depth=_pow2_at_least((len(layers) + 1 if keep_layers else 2)
                                                * widest * batch),
                       param_depth=_pow2_at_least(words["params"]),
                       psum_depth=_pow2_at_least(batch * pixels),
                       program_depth=_pow2_at_least(len(layers)), **options)
