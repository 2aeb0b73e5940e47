"""Compiler: an operator graph → memory images and layer programs for one accelerator
configuration (an :class:`hw.ArrayConfig`), with the host's share of the graph left to the
host (:mod:`quantizer.partition`) and every resident tensor placed (:mod:`quantizer.memory_plan`).

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
from hw.contract import POW2_M0, SHIFT_MIN, ContractError, WordFormat, one_input_fields

from .accumulator import check_accumulator
from .errors import QuantizerError
from .golden import dtype_range
from .graph import Graph
from .memory_plan import TensorPlacement, blocked_tensors, plan_memory
from .partition import ACCELERATOR, Partition, partition

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


@dataclass
class CompiledStep:
    """One step of a run (:class:`~quantizer.partition.Step`): an accelerator program starting
    at descriptor ``start_pc``, or operators the host runs."""

    where: str
    ops: list[str]
    start_pc: int | None = None

    @property
    def on_accelerator(self) -> bool:
        return self.where == ACCELERATOR


@dataclass
class CompiledNetwork:
    """Memory images (word lists), the steps of a run and where every resident tensor lives.

    ``program`` holds every accelerator step's descriptors, each step's ending in ``last``;
    ``tensors`` maps each tensor in activation memory to its region; ``layers`` describes each
    accelerator layer (``name``, ``k_tiles``, ``n_tiles``, ``rounding``, ``m`` = output pixels
    of the batch, ``out_base``, ``size`` = output channels, ``words``)."""

    config: ArrayConfig
    samples: int
    partition: Partition
    weights: list[int] = field(default_factory=list)
    params: list[int] = field(default_factory=list)
    program: list[int] = field(default_factory=list)
    steps: list[CompiledStep] = field(default_factory=list)
    tensors: dict[str, TensorPlacement] = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)

    @property
    def graph(self) -> Graph:
        return self.partition.graph

    @property
    def rows(self) -> int:
        return self.config.rows

    @property
    def input(self) -> TensorPlacement | None:
        """The graph input's region, if an accelerator layer reads it."""
        return self.tensors.get(self.graph.inputs[0])


def compile_network(graph: Graph, config: ArrayConfig, samples: int, *,
                    runtime: str = "litert", keep_layers: bool = False,
                    part: Partition | None = None) -> CompiledNetwork:
    """Lay ``graph`` out for the accelerator ``config`` (an :class:`hw.ArrayConfig`), for
    batches of ``samples`` inputs, with the rounding ``runtime`` uses for each operator: the
    operators :func:`~quantizer.partition.partition` places on the accelerator become layer
    programs, one per accelerator step; the others are left to the host.

    Dead tensors' regions are reused; with ``keep_layers`` none is, so every tensor can be read
    back after a run."""
    _check_config(config)
    rows, cols = config.rows, config.cols
    if rows % cols:
        raise QuantizerError(f"the accelerator needs rows to be a multiple of cols, got "
                             f"{rows}x{cols}")
    if config.dtype != graph.dtype:
        raise QuantizerError(f"network is {graph.dtype} but the hardware is {config.dtype}")
    part = part or partition(graph, runtime, rows=rows)
    if part.rows not in (None, rows):
        raise QuantizerError(f"the partition was made for {part.rows} rows, the hardware has "
                             f"{rows}")
    layers = part.layers
    if not layers:
        raise QuantizerError("no operator of the graph runs on the accelerator: "
                             + "; ".join(f"{p.op.kind} {p.op.name}: {p.note}"
                                         for p in part.placements[:3]))
    if samples < 1:
        raise QuantizerError(f"samples per run must be at least 1, got {samples}")
    # Inputs that only stride-2 window layers read are held in blocks of 2×2 pixels, which
    # those layers read a block a beat (quad mode).
    blocked = blocked_tensors(part, config, samples)
    plan = plan_memory(part, rows, samples, keep_all=keep_layers,
                       align=config.act_words_per_row, blocked=blocked)
    if plan.words > config.act_depth:
        raise QuantizerError(f"activations need {plan.words} words but act_depth is "
                             f"{config.act_depth}: use fewer samples per run")
    # Before any descriptor points past the end of a memory its field cannot address.
    _check_memory("weights", sum(layer.weight_words(rows, cols, config.weight_load_rows)
                                 for layer in layers), config.weight_depth)
    _check_memory("params", sum(layer.tiles(rows, cols)[2] for layer in layers),
                  config.param_depth)
    lo, hi = dtype_range(graph.dtype)
    out = CompiledNetwork(config=config, samples=samples, partition=part, tensors=plan.tensors)
    descriptor = contract.descriptor_format(config)
    bits = config.weight_bits
    for step in part.steps:
        out.steps.append(CompiledStep(step.where, [op.name for op in step.ops],
                                      len(out.program) if step.where == ACCELERATOR else None))
        for i, layer in enumerate(step.layers):
            p = layer.params
            cout, _, kw, _ = layer.kernel.shape
            _check_weight_bits(layer, bits)
            groups, k_tiles, n_tiles = layer.tiles(rows, cols)
            path = _hardware_rounding(config, p.rounding, p.m0, layer.name)
            check_accumulator(layer.weight, input_zero_point=p.input_zero_point,
                              weight_zero_point=p.weight_zero_point, bias=layer.bias,
                              input_min=lo, input_max=hi, acc_bits=config.acc_width,
                              layer=layer.name)
            w_base, p_base = len(out.weights), len(out.params)
            words = _weight_words(layer, config)
            # Whole rows of the weight memory, so the next layer starts on one.
            out.weights += words + [0] * (layer.weight_words(rows, cols, config.weight_load_rows)
                                          - len(words))
            out.params += _param_words(layer, config)
            source, dest = plan.tensors[layer.input], plan.tensors[layer.output]
            if layer.operation == "add":
                _check_add(config, layer)
            passes = layer.passes(samples, config.psum_depth)
            # The window unit reads each pass's padded input once: one K tile.
            window = layer.on_window(config)
            operation, k_tiles = ("window", 1) if window else (layer.operation, k_tiles)
            quad = layer.input in blocked
            for j, band in enumerate(passes):
                # Each pass is a descriptor of its own over a band of the input and output
                # (over whole samples of a map held in blocks).
                g = layer.pass_geometry(band)
                if source.blocks:
                    g["in_offset"] = band.sample * source.pixels // samples
                if dest.blocks:
                    g["out_offset"] = band.sample * dest.pixels // samples
                raster = (*layer.raster(config.window, band.rows),
                          layer.pairs(config, band) and not quad, quad) if window else ()
                out.program.append(_pack(descriptor, {
                    "op": contract.LAYER_OPS.index(operation), "zpad": dest.zero_point,
                    **contract.raster_fields(*raster),
                    **(one_input_fields() if layer.input2 is None else
                       {"in2_base": plan.tensors[layer.input2].base + g["in_offset"],
                        **layer.add_fields}),
                    "m": g["m"], "k_tiles": k_tiles, "n_tiles": n_tiles,
                    "in_base": source.base + g["in_offset"],
                    "out_base": dest.base + g["out_offset"], "w_base": w_base,
                    "p_base": p_base, "zx": p.input_zero_point, "zw": p.weight_zero_point,
                    "zy": p.output_zero_point, "act_min": p.act_min, "act_max": p.act_max,
                    "double": contract.double_bit(path),
                    "last": int(i == len(step.layers) - 1 and j == len(passes) - 1),
                    "h": g["h"], "w": layer.w, "oh": g["oh"], "ow": layer.ow, "kw": kw,
                    "groups": groups, "plane": source.pixels, "out_plane": dest.pixels,
                    "stride_h": layer.stride[0], "stride_w": layer.stride[1],
                    "dil_h": layer.dilation[0], "dil_w": layer.dilation[1],
                    "pad_top": g["pad_top"], "pad_left": layer.pad[1],
                    "out_blocks": int(dest.blocks)}))
            out.layers.append({"name": layer.name, "operation": operation,
                               "k_tiles": k_tiles, "n_tiles": n_tiles,
                               "rounding": path, "out_base": dest.base, "size": cout,
                               "m": samples * layer.pixels, "passes": len(passes),
                               "words": dest.words, "quad": quad})
    _check_memory("program", len(out.program), config.program_depth)
    return out


def _check_memory(name: str, words: int, depth: int) -> None:
    if words > depth:
        raise QuantizerError(f"the network needs {words} {name} words but the hardware has "
                             f"{depth}; generate it with a larger memory")


def _weight_words(layer, config: ArrayConfig) -> list[int]:
    """A layer's weight tiles in the order the sequencer streams them (``for nt: for kt:``).
    K tiles are ordered (kh, kw, g): tile row r of tile (kh, kw, g) is input channel
    g·rows + r. A vector-unit layer's tile is one word: lane c of tile (nt, kt) weighs channel
    nt·cols + c at tap kt. Padding multiplies zero-point activations or feeds discarded
    columns, so its value is free: the zero point, or +1 where a 1-bit memory cannot hold 0."""
    rows, cols, bits = config.rows, config.cols, config.weight_bits
    cout, kh, kw, cin = layer.kernel.shape
    groups, k_tiles, n_tiles = layer.tiles(rows, cols)
    per_tile = rows if layer.on_array else 1  # weight words a K tile
    w = np.full((n_tiles * cols, kh, kw, groups * per_tile),
                1 if bits == 1 else layer.params.weight_zero_point, dtype=np.int64)
    w[:cout, :, :, :cin] = layer.kernel
    w = w.reshape(n_tiles * cols, -1)
    return [word for nt in range(n_tiles) for kt in range(k_tiles)
            for word in pack_weights(w[nt * cols:(nt + 1) * cols,
                                       kt * per_tile:(kt + 1) * per_tile].T, bits,
                                     config.dtype)]


def _param_words(layer, config: ArrayConfig) -> list[int]:
    """One parameter word per column tile. Padded columns requantize to exactly the output
    zero point (multiplier 0, or the largest right shift), which is what the next layer's
    padded inputs must be."""
    cols, p, cout = config.cols, layer.params, layer.channels_out
    n_tiles = layer.tiles(config.rows, cols)[2]
    bias, m0 = np.zeros(n_tiles * cols, np.int64), np.zeros(n_tiles * cols, np.int64)
    shift = np.full(n_tiles * cols, SHIFT_MIN, np.int64)
    bias[:cout], m0[:cout], shift[:cout] = layer.bias, p.m0, p.shift
    return [pack_lane_params(config, bias[nt * cols:(nt + 1) * cols],
                             m0[nt * cols:(nt + 1) * cols], shift[nt * cols:(nt + 1) * cols])
            for nt in range(n_tiles)]


def _check_add(config: ArrayConfig, layer) -> None:
    """An add's rescaled inputs (below 2^28 each) need the vector unit's multiplier and a
    30-bit partial sum."""
    if not config.has_multiplier or config.acc_width < 30:
        raise QuantizerError(f"{layer.name}: ADD needs a requantizer with a multiplier and "
                             f"acc_width of at least 30 (the hardware has "
                             f"{', '.join(config.requant_modes)}, {config.acc_width} bits)")


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
