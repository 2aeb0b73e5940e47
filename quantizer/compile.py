"""Compiler: an operator graph (a chain of fully-connected layers today) → memory images and a
layer program for one accelerator configuration.

The word layouts are the accelerator's (documented in docs/images.md); they are restated here
from the configuration alone, because ``quantizer/`` and ``hw/`` share a documented format, not
code. ``tests/test_accelerator.py`` checks both sides agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .accumulator import check_accumulator
from .errors import QuantizerError
from .fixedpoint import POW2_M0, SHIFT_MIN
from .golden import dtype_range
from .image_formats import pack_lanes, unpack_lanes
from .graph import Graph
from .layers import dense_chain


def _bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def descriptor_fields(hw: dict) -> list[tuple[str, int]]:
    """``(name, width)`` of a layer descriptor, least significant field first."""
    return [("m", _bits(hw["psum_depth"] + 1)), ("k_tiles", 12), ("n_tiles", 12),
            ("in_base", _bits(hw["act_depth"])), ("out_base", _bits(hw["act_depth"])),
            ("w_base", _bits(hw["weight_depth"])), ("p_base", _bits(hw["param_depth"])),
            ("zx", 8), ("zw", 8), ("zy", 8), ("act_min", 8), ("act_max", 8), ("double", 1),
            ("last", 1)]


def has_multiplier(hw: dict) -> bool:
    return bool({"single", "double"} & set(hw["requant_modes"]))


def pack_fields(fields: list[tuple[str, int]], values: dict) -> int:
    word, offset = 0, 0
    for name, width in fields:
        value = int(values[name])
        if not -(1 << (width - 1)) <= value < (1 << width):
            raise QuantizerError(f"{name}={value} does not fit its {width}-bit field")
        word |= (value & ((1 << width) - 1)) << offset
        offset += width
    return word


def pack_lane_params(hw: dict, bias, m0, shift) -> int:
    """One parameter word: ``bias[cols]`` (32 bits each), ``m0[cols]`` (31 bits, multiplier
    builds only), ``shift[cols]`` (6 bits)."""
    parts = [(bias, 32)] + ([(m0, 31)] if has_multiplier(hw) else []) + [(shift, 6)]
    word, offset = 0, 0
    for values, width in parts:
        packed = pack_lanes(np.asarray(values)[None, :], width)[0]
        word |= packed << offset
        offset += width * len(values)
    return word


def pack_weights(tile: np.ndarray, bits: int) -> list[int]:
    """Weight-memory words from a tile ``(k, cols)``: lanes of ``bits`` bits, two's
    complement, except 1-bit lanes, which encode −1 as 0 and +1 as 1."""
    tile = np.asarray(tile, dtype=np.int64)
    if bits == 1:
        if np.any(np.abs(tile) != 1):
            raise QuantizerError("1-bit weight memories hold only binary weights (−1, +1)")
        tile = (tile + 1) // 2
    return pack_lanes(tile, bits)


def decode_activations(words, rows: int, samples: int, size: int,
                       dtype: str = "int8") -> np.ndarray:
    """Activation-memory words (K-slice major, ``rows`` lanes) → values ``(samples, size)``."""
    lanes = unpack_lanes(words, rows, 8, signed=dtype == "int8")
    values = lanes.reshape(-1, samples, rows).transpose(1, 0, 2).reshape(samples, -1)
    return values[:, :size]


@dataclass
class CompiledNetwork:
    """Memory images (word lists) and where the input goes and the output comes from."""

    hw: dict
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

    @property
    def rows(self) -> int:
        return self.hw["rows"]

    def activation_words(self, x: np.ndarray) -> list[int]:
        """int8 inputs ``(samples, K)`` → activation-memory words from ``input_base``."""
        x = np.asarray(x)
        if x.shape != (self.samples, self.input_size):
            raise QuantizerError(f"inputs must have shape ({self.samples}, {self.input_size}), "
                                 f"got {x.shape}")
        k_tiles = -(-self.input_size // self.rows)
        padded = np.full((self.samples, k_tiles * self.rows), self.input_zero_point)
        padded[:, :self.input_size] = x
        slices = padded.reshape(self.samples, k_tiles, self.rows).transpose(1, 0, 2)
        return pack_lanes(slices.reshape(-1, self.rows), 8)

    def reads(self) -> list[dict]:
        """Where each layer's outputs are after a run: ``name``, ``base``, ``words``, ``size``
        (with ping-pong regions only the last two layers' survive; the last is the output)."""
        return [{"name": layer["name"], "base": layer["out_base"], "words": layer["words"],
                 "size": layer["size"]} for layer in self.layers]


def compile_network(graph: Graph, hw: dict, samples: int, *, runtime: str = "litert",
                    keep_layers: bool = False) -> CompiledNetwork:
    """Lay out ``graph`` for the accelerator described by ``hw`` (an ``ArrayConfig`` as a dict,
    e.g. from ``mxu.json``), for batches of ``samples`` inputs, with the rounding ``runtime``
    uses for each operator.

    Activations ping-pong between two regions; with ``keep_layers`` every layer writes its own
    region instead, so all intermediate outputs can be read back after a run."""
    rows, cols = hw["rows"], hw["cols"]
    if rows % cols:
        raise QuantizerError(f"the accelerator needs rows to be a multiple of cols, got "
                             f"{rows}x{cols}")
    if hw["dtype"] != graph.dtype:
        raise QuantizerError(f"network is {graph.dtype} but the hardware is {hw['dtype']}")
    if not 1 <= samples <= hw["psum_depth"]:
        raise QuantizerError(f"samples per run must be in 1..{hw['psum_depth']} (psum_depth)")
    layers = dense_chain(graph, runtime)
    lo, hi = dtype_range(graph.dtype)
    first = layers[0]
    out = CompiledNetwork(hw=hw, samples=samples, input_size=first.weight.shape[1],
                          output_size=layers[-1].weight.shape[0],
                          input_zero_point=first.params.input_zero_point)
    # Ping-pong activation regions, each as large as the widest layer boundary needs.
    widths = [first.weight.shape[1]] + [layer.weight.shape[0] for layer in layers]
    region = max(-(-w // rows) for w in widths) * samples
    regions = len(widths) if keep_layers else 2
    if regions * region > hw["act_depth"]:
        raise QuantizerError(f"activations need {regions * region} words but act_depth is "
                             f"{hw['act_depth']}: use fewer samples per run")
    fields = descriptor_fields(hw)
    bits = hw.get("weight_bits", 8)
    for i, layer in enumerate(layers):
        p = layer.params
        n, k = layer.weight.shape
        _check_weight_bits(layer, bits)
        k_tiles, n_tiles = -(-k // rows), -(-n // cols)
        mode = _hardware_rounding(hw, p.rounding, p.m0, layer.name)
        check_accumulator(layer.weight, input_zero_point=p.input_zero_point,
                          weight_zero_point=p.weight_zero_point, bias=layer.bias,
                          input_min=lo, input_max=hi, acc_bits=hw["acc_width"],
                          layer=layer.name)
        # Padding multiplies zero-point activations or feeds discarded columns, so its value is
        # free: the zero point, or +1 where a 1-bit memory cannot hold 0.
        w = np.full((n_tiles * cols, k_tiles * rows), 1 if bits == 1 else p.weight_zero_point)
        w[:n, :k] = layer.weight
        w_base, p_base = len(out.weights), len(out.params)
        for nt in range(n_tiles):
            for kt in range(k_tiles):
                tile = w[nt * cols:(nt + 1) * cols, kt * rows:(kt + 1) * rows].T  # (k, c)
                out.weights += pack_weights(tile, bits)
            channels = slice(nt * cols, (nt + 1) * cols)
            # Padded columns requantize to exactly the output zero point (multiplier 0, or the
            # largest right shift), which is what the next layer's padded inputs must be.
            bias, m0 = np.zeros(n_tiles * cols, np.int64), np.zeros(n_tiles * cols, np.int64)
            shift = np.full(n_tiles * cols, SHIFT_MIN, np.int64)
            bias[:n], m0[:n], shift[:n] = layer.bias, p.m0, p.shift
            out.params.append(pack_lane_params(hw, bias[channels], m0[channels],
                                               shift[channels]))
        in_base = (i if keep_layers else i % 2) * region
        out_base = (i + 1 if keep_layers else (i + 1) % 2) * region
        out.program.append(pack_fields(fields, {
            "m": samples, "k_tiles": k_tiles, "n_tiles": n_tiles, "in_base": in_base,
            "out_base": out_base, "w_base": w_base, "p_base": p_base,
            "zx": p.input_zero_point, "zw": p.weight_zero_point, "zy": p.output_zero_point,
            "act_min": p.act_min, "act_max": p.act_max, "double": int(mode == "double"),
            "last": int(i == len(layers) - 1)}))
        out.layers.append({"name": layer.name, "k_tiles": k_tiles, "n_tiles": n_tiles,
                           "rounding": mode, "out_base": out_base, "size": n,
                           "words": -(-n // rows) * samples})
        if i == 0:
            out.input_base = in_base
        out.output_base = out_base
    for name, words, depth in (("weights", out.weights, hw["weight_depth"]),
                               ("params", out.params, hw["param_depth"]),
                               ("program", out.program, hw["program_depth"])):
        if len(words) > depth:
            raise QuantizerError(f"the network needs {len(words)} {name} words but the "
                                 f"hardware has {depth}; generate it with a larger memory")
    return out


def _check_weight_bits(layer, bits: int) -> None:
    values = np.asarray(layer.weight, dtype=np.int64) - layer.params.weight_zero_point
    fits = np.all(np.abs(values) == 1) if bits == 1 else \
        values.size == 0 or (values.min() >= -(1 << (bits - 1)) and
                             values.max() < (1 << (bits - 1)))
    if bits != 8 and not fits:
        raise QuantizerError(f"{layer.name}: {layer.weight_format} weights do not fit the "
                             f"hardware's {bits}-bit weight memory; quantize with a matching "
                             "--bits or build the hardware with wider weights")


def _hardware_rounding(hw: dict, rounding: str, m0, name: str) -> str:
    modes = set(hw["requant_modes"])
    if rounding == "pow2":
        if np.any(np.asarray(m0) != POW2_M0):
            raise QuantizerError(f"{name}: pow2 rounding needs power-of-two multipliers")
        if "single" in modes:
            return "single"  # identical for power-of-two multipliers
        if "pow2" in modes:
            return "pow2"
    if rounding not in modes or rounding == "pow2":
        raise QuantizerError(f"{name} needs {rounding} rounding but the hardware was built "
                             f"with {', '.join(sorted(modes))}")
    return rounding
