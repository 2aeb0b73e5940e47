"""Compiler: an operator graph (a chain of convolutions and fully-connected layers) → memory
images and a layer program for one accelerator configuration (an :class:`hw.ArrayConfig`).

Every word is packed with the hardware/software contract, :mod:`hw.contract`: the definitions
the hardware builds its layouts from (docs/images.md describes them). ``tests/test_contract.py``
checks that the hardware decodes what the contract packs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hw import contract
from hw.contract import POW2_M0, SHIFT_MIN, ContractError, WordFormat

from .accumulator import check_accumulator
from .errors import QuantizerError
from .golden import dtype_range
from .graph import Graph
from .layers import accelerator_chain

if TYPE_CHECKING:  # the compiler itself needs no Amaranth
    from hw import ArrayConfig


def _check_config(config) -> None:
    if isinstance(config, Mapping):
        raise TypeError("the compiler takes an hw.ArrayConfig, not a dict: convert one with "
                        "ArrayConfig.from_dict(...)")


def _pack(word: WordFormat, values: Mapping) -> int:
    try:
        return word.pack(values)
    except ContractError as exc:
        raise QuantizerError(str(exc)) from None


def pack_lane_params(config: ArrayConfig, bias, m0, shift) -> int:
    """One parameter word: ``bias[cols]`` (int32), ``m0[cols]`` (31 bits, multiplier builds
    only), ``shift[cols]`` (signed 6 bits, SHIFT_MIN..SHIFT_MAX)."""
    word = contract.lane_params_format(config)
    values = {"bias": bias, "m0": m0, "shift": shift}
    return _pack(word, {f.name: np.asarray(values[f.name]).tolist() for f in word})


def pack_weights(tile: np.ndarray, bits: int, dtype: str = "int8") -> list[int]:
    """Weight-memory words from a tile ``(k, cols)``: lanes of ``bits`` bits, two's
    complement, except 1-bit lanes, which encode −1 as 0 and +1 as 1
    (:func:`hw.contract.encode_weight`)."""
    tile = np.asarray(tile, dtype=np.int64)
    if tile.ndim != 2:
        raise QuantizerError(f"a weight tile must be 2-D (k, cols), got shape {tile.shape}")
    word = WordFormat("weight word", [contract.weight_field(bits, tile.shape[1], dtype)])
    try:
        return [word.pack({"w": [contract.encode_weight(v, bits, dtype) for v in row]})
                for row in tile.tolist()]
    except ContractError as exc:
        if bits == 1:
            raise QuantizerError("1-bit weight memories hold only binary weights (−1, +1)") \
                from None
        raise QuantizerError(str(exc)) from None


def decode_activations(words, rows: int, samples: int, size: int,
                       dtype: str = "int8") -> np.ndarray:
    """Activation-memory words (group-major, ``rows`` lanes: word ``g·samples + i`` holds
    channels ``g·rows …`` of pixel or sample ``i``) → values ``(samples, size)``."""
    word = WordFormat("activation word", [contract.data_field("x", dtype, rows)])
    lanes = np.array([word.unpack(w)["x"] for w in words], dtype=np.int64).reshape(-1, rows)
    values = lanes.reshape(-1, samples, rows).transpose(1, 0, 2).reshape(samples, -1)
    return values[:, :size]


def activation_layout(x: np.ndarray, rows: int, zero_point: int) -> np.ndarray:
    """An NHWC tensor ``(N, H, W, C)`` (or vectors ``(N, C)``, a 1x1 map) → its activation
    words' lanes ``(G·N·H·W, rows)`` in the group-major layout of docs/images.md: word
    ``g·(N·H·W) + (n·H + h)·W + w`` holds channels ``g·rows … g·rows + rows − 1``, lanes past
    the last channel hold ``zero_point``."""
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[:, None, None, :]
    n, h, w, c = x.shape
    groups = -(-c // rows)
    padded = np.full((n, h, w, groups * rows), zero_point, dtype=np.int64)
    padded[..., :c] = x
    return padded.reshape(n * h * w, groups, rows).transpose(1, 0, 2).reshape(-1, rows)


@dataclass
class CompiledNetwork:
    """Memory images (word lists) and where the input goes and the output comes from.

    ``input_shape``/``output_shape`` are one sample's (``(H, W, C)`` for a feature map,
    ``(K,)`` for a vector); ``input_size``/``output_size`` their channel counts (the values
    per activation word group), ``output_pixels`` the output's pixels per sample."""

    config: ArrayConfig
    samples: int
    weights: list[int] = field(default_factory=list)
    params: list[int] = field(default_factory=list)
    program: list[int] = field(default_factory=list)
    input_base: int = 0
    output_base: int = 0
    input_size: int = 0
    output_size: int = 0
    input_zero_point: int = 0
    layers: list[dict] = field(default_factory=list)
    input_shape: tuple = ()
    output_shape: tuple = ()
    output_pixels: int = 1

    @property
    def rows(self) -> int:
        return self.config.rows

    def activation_words(self, x: np.ndarray) -> list[int]:
        """int8 inputs ``(samples, *input_shape)`` → activation-memory words from
        ``input_base``, group-major (:func:`activation_layout`)."""
        x = np.asarray(x)
        if x.shape != (self.samples, *self.input_shape):
            raise QuantizerError(f"inputs must have shape {(self.samples, *self.input_shape)}, "
                                 f"got {x.shape}")
        word = contract.activation_format(self.config)
        lanes = activation_layout(x, self.rows, self.input_zero_point)
        return [_pack(word, {"x": row}) for row in lanes.tolist()]

    def reads(self) -> list[dict]:
        """Where each layer's outputs are after a run: ``name``, ``base``, ``words``, ``size``
        (channels) and ``pixels`` (output pixels of the batch: the words' ``samples``); with
        ping-pong regions only the last two layers' survive; the last is the output."""
        return [{"name": layer["name"], "base": layer["out_base"], "words": layer["words"],
                 "size": layer["size"], "pixels": layer["m"]}
                for layer in self.layers]


def compile_network(graph: Graph, config: ArrayConfig, samples: int, *,
                    runtime: str = "litert", keep_layers: bool = False) -> CompiledNetwork:
    """Lay out ``graph`` (a chain of CONV_2D / FULLY_CONNECTED / RESHAPE operators,
    :func:`~quantizer.layers.accelerator_chain`) for the accelerator ``config`` (an
    :class:`hw.ArrayConfig`), for batches of ``samples`` inputs, with the rounding
    ``runtime`` uses for each operator.

    Activations ping-pong between two regions; with ``keep_layers`` every layer writes its own
    region instead, so all intermediate outputs can be read back after a run."""
    _check_config(config)
    rows, cols = config.rows, config.cols
    if rows % cols:
        raise QuantizerError(f"the accelerator needs rows to be a multiple of cols, got "
                             f"{rows}x{cols}")
    if config.dtype != graph.dtype:
        raise QuantizerError(f"network is {graph.dtype} but the hardware is {config.dtype}")
    layers = accelerator_chain(graph, runtime)
    pixels = max(layer.pixels for layer in layers)
    if not 1 <= samples * pixels <= config.psum_depth:
        raise QuantizerError(f"samples per run times output pixels ({pixels}) must be in "
                             f"1..{config.psum_depth} (psum_depth)")
    lo, hi = dtype_range(graph.dtype)
    first, final = layers[0], layers[-1]
    out = CompiledNetwork(config=config, samples=samples, input_size=first.channels_in,
                          output_size=final.channels_out,
                          input_zero_point=first.params.input_zero_point,
                          input_shape=tuple(graph.input.sample_shape),
                          output_shape=tuple(graph.output.sample_shape),
                          output_pixels=final.pixels)
    # Ping-pong activation regions, each as large as the widest layer boundary needs.
    widths = [-(-first.channels_in // rows) * first.input_pixels] + \
        [-(-layer.channels_out // rows) * layer.pixels for layer in layers]
    region = max(widths) * samples
    regions = len(widths) if keep_layers else 2
    if regions * region > config.act_depth:
        raise QuantizerError(f"activations need {regions * region} words but act_depth is "
                             f"{config.act_depth}: use fewer samples per run")
    descriptor = contract.descriptor_format(config)
    bits = config.weight_bits
    for i, layer in enumerate(layers):
        p = layer.params
        cout, kh, kw, cin = layer.kernel.shape
        _check_weight_bits(layer, bits)
        groups, n_tiles = -(-cin // rows), -(-cout // cols)
        k_tiles = kh * kw * groups
        path = _hardware_rounding(config, p.rounding, p.m0, layer.name)
        check_accumulator(layer.weight, input_zero_point=p.input_zero_point,
                          weight_zero_point=p.weight_zero_point, bias=layer.bias,
                          input_min=lo, input_max=hi, acc_bits=config.acc_width,
                          layer=layer.name)
        # Padding multiplies zero-point activations or feeds discarded columns, so its value is
        # free: the zero point, or +1 where a 1-bit memory cannot hold 0. K tiles are ordered
        # (kh, kw, g): tile row r of tile (kh, kw, g) is input channel g·rows + r.
        w = np.full((n_tiles * cols, kh, kw, groups * rows),
                    1 if bits == 1 else p.weight_zero_point, dtype=np.int64)
        w[:cout, :, :, :cin] = layer.kernel
        w = w.reshape(n_tiles * cols, k_tiles * rows)
        w_base, p_base = len(out.weights), len(out.params)
        for nt in range(n_tiles):
            for kt in range(k_tiles):
                tile = w[nt * cols:(nt + 1) * cols, kt * rows:(kt + 1) * rows].T  # (k, c)
                out.weights += pack_weights(tile, bits, config.dtype)
            channels = slice(nt * cols, (nt + 1) * cols)
            # Padded columns requantize to exactly the output zero point (multiplier 0, or the
            # largest right shift), which is what the next layer's padded inputs must be.
            bias, m0 = np.zeros(n_tiles * cols, np.int64), np.zeros(n_tiles * cols, np.int64)
            shift = np.full(n_tiles * cols, SHIFT_MIN, np.int64)
            bias[:cout], m0[:cout], shift[:cout] = layer.bias, p.m0, p.shift
            out.params.append(pack_lane_params(config, bias[channels], m0[channels],
                                               shift[channels]))
        in_base = (i if keep_layers else i % 2) * region
        out_base = (i + 1 if keep_layers else (i + 1) % 2) * region
        m = samples * layer.pixels
        out.program.append(_pack(descriptor, {
            "m": m, "k_tiles": k_tiles, "n_tiles": n_tiles, "in_base": in_base,
            "out_base": out_base, "w_base": w_base, "p_base": p_base,
            "zx": p.input_zero_point, "zw": p.weight_zero_point, "zy": p.output_zero_point,
            "act_min": p.act_min, "act_max": p.act_max, "double": contract.double_bit(path),
            "last": int(i == len(layers) - 1),
            "h": layer.h, "w": layer.w, "oh": layer.oh, "ow": layer.ow, "kw": kw,
            "groups": groups, "plane": samples * layer.input_pixels,
            "stride_h": layer.stride[0], "stride_w": layer.stride[1],
            "dil_h": layer.dilation[0], "dil_w": layer.dilation[1],
            "pad_top": layer.pad[0], "pad_left": layer.pad[1]}))
        out.layers.append({"name": layer.name, "k_tiles": k_tiles, "n_tiles": n_tiles,
                           "rounding": path, "out_base": out_base, "size": cout, "m": m,
                           "words": -(-cout // rows) * m})
        if i == 0:
            out.input_base = in_base
        out.output_base = out_base
    for name, words, depth in (("weights", out.weights, config.weight_depth),
                               ("params", out.params, config.param_depth),
                               ("program", out.program, config.program_depth)):
        if len(words) > depth:
            raise QuantizerError(f"the network needs {len(words)} {name} words but the "
                                 f"hardware has {depth}; generate it with a larger memory")
    return out


def _check_weight_bits(layer, bits: int) -> None:
    if bits == 8:
        return
    values = np.asarray(layer.weight, dtype=np.int64) - layer.params.weight_zero_point
    if not np.isin(values, list(contract.weight_range(bits))).all():
        raise QuantizerError(f"{layer.name}: {layer.weight_format} weights do not fit the "
                             f"hardware's {bits}-bit weight memory; quantize with a matching "
                             "--bits or build the hardware with wider weights")


def _hardware_rounding(config: ArrayConfig, rounding: str, m0, name: str) -> str:
    """The requantizer path (:func:`hw.contract.rounding_path`) a layer runs on."""
    if rounding == "pow2" and np.any(np.asarray(m0) != POW2_M0):
        raise QuantizerError(f"{name}: pow2 rounding needs power-of-two multipliers")
    path = contract.rounding_path(config.requant_modes, rounding)
    if path is None:
        raise QuantizerError(f"{name} needs {rounding} rounding but the hardware was built "
                             f"with {', '.join(sorted(config.requant_modes))}")
    return path
