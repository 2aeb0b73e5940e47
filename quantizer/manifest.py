"""Memory images on disk: one file per memory (``$readmemh`` hex, plus ``.coe``/``.mif`` on
request) and ``manifest.json`` with every scale, zero point, m0/shift and the hardware
configuration the images were laid out for. Images are refused by hardware they do not fit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hw import contract

from .compile import CompiledNetwork, compile_network
from .errors import QuantizerError
from .files import write_atomic
from .image_formats import parse_readmemh, write_image
from .graph import Graph
from .partition import HOST, partition

if TYPE_CHECKING:
    from hw import ArrayConfig

MANIFEST_VERSION = 1
MEMORIES = ("weights", "params", "program")


def _word_widths(config: ArrayConfig) -> dict[str, int]:
    return {"weights": contract.weight_format(config).size,
            "params": contract.lane_params_format(config).size,
            "program": contract.descriptor_format(config).size}


def write_images(graph: Graph, config: ArrayConfig, samples: int, folder: Path | str, *,
                 formats: tuple[str, ...] = ("hex",), runtime: str = "litert") -> CompiledNetwork:
    """Compile ``graph`` for the accelerator ``config`` and write its images and manifest into
    ``folder``. The accelerator must run the graph in one program from its input; operators
    after it (SOFTMAX, say) are listed in the manifest as the host's ``host_tail``."""
    part = partition(graph, runtime, rows=config.rows)
    if not part.host_tail_only or graph.inputs[0] not in part.resident():
        first = next((p for p in part.placements if p.where == HOST), None)
        raise QuantizerError(
            "images run a graph whose operators all run on the accelerator, from its input, "
            "with the host only after it; "
            + (f"{first.op.kind} {first.op.name} runs on the host ({first.note})" if first
               else "nothing runs on the accelerator") + ": use mxugen sim to run it")
    compiled = compile_network(graph, config, samples, runtime=runtime, part=part)
    layers = part.layers
    folder = Path(folder)
    widths = _word_widths(config)
    depths = {"weights": config.weight_depth, "params": config.param_depth,
              "program": config.program_depth}
    for name in MEMORIES:
        for fmt in formats:
            write_image(folder / f"{name}.{fmt}", getattr(compiled, name), widths[name], fmt,
                        depth=depths[name],
                        comment=f"mxugen {name} image, {widths[name]}-bit words")
    output = compiled.tensors[layers[-1].output]
    manifest = {
        "format": "mxugen-images", "version": MANIFEST_VERSION, "hardware": config.to_dict(),
        "samples": samples, "runtime": runtime, "word_bits": widths,
        "files": {name: [f"{name}.{fmt}" for fmt in formats] for name in MEMORIES},
        "input": _region(compiled.tensors[graph.inputs[0]], graph),
        "output": _region(output, graph),
        "host_tail": [p.describe() for p in part.placements if p.where == HOST],
        "layers": [_layer_entry(info, layer, graph) for info, layer in zip(compiled.layers,
                                                                            layers)],
    }
    write_atomic(folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return compiled


def _region(placement, graph: Graph) -> dict:
    """Where a tensor is in activation memory, with its shape and quantization."""
    tensor = graph.tensor(placement.name)
    return {"tensor": placement.name, "base": placement.base, "words": placement.words,
            "size": placement.map_shape[2], "shape": list(placement.sample_shape),
            "scale": tensor.scalar_scale, "zero_point": tensor.zp,
            **({"patches": placement.patches.to_dict()} if placement.patches else {})}


def _layer_entry(info: dict, layer, graph: Graph) -> dict:
    """One layer of the manifest: what the compiler laid out, its geometry and quantization."""
    op = graph.producer(layer.output)
    inputs = graph.op_inputs(op)
    return {
        **info, "kind": layer.kind, "shape": list(layer.weight.shape),
        **({"kernel": list(layer.kernel.shape), "input_map": [layer.h, layer.w],
            "output_map": [layer.oh, layer.ow], "stride": list(layer.stride),
            "dilation": list(layer.dilation), "pad_top_left": list(layer.pad)}
           if layer.kind != "FULLY_CONNECTED" else {}),
        **({"patches": layer.patches.to_dict()} if layer.patches else {}),
        "input_scale": graph.tensor(layer.input).scalar_scale,
        "input_zero_point": layer.params.input_zero_point,
        **({"input2": layer.input2, "input2_scale": graph.tensor(layer.input2).scalar_scale,
            "rescale": layer.add_fields} if layer.input2 is not None else {}),
        "weight_zero_point": layer.params.weight_zero_point,
        # Pooling, MEAN and ADD have no weight tensor: the compiler's weights are ones.
        **({"weight_scale": _weight_scale(inputs[1], layer.channels_out)}
           if op.kind in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D") else {}),
        "output_scale": graph.tensor(layer.output).scalar_scale,
        "output_zero_point": layer.params.output_zero_point,
        "m0": layer.params.m0.tolist(), "shift": layer.params.shift.tolist(),
        "act_min": layer.params.act_min, "act_max": layer.params.act_max}


def _weight_scale(weights, channels: int) -> list[float]:
    """One scale per output channel."""
    scale = np.asarray(weights.scale, np.float64).reshape(-1)
    return (scale if weights.per_channel else np.full(channels, scale[0])).tolist()


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise QuantizerError(f"{folder} has no readable manifest.json: {exc}") from None


def images_hardware(folder: Path | str) -> dict:
    """The hardware parameters the images in ``folder`` were laid out for."""
    return _manifest(Path(folder)).get("hardware", {})


def read_images(folder: Path | str, hw: dict) -> dict[str, list[int]]:
    """The hex images in ``folder``, after checking they were laid out for ``hw``."""
    folder = Path(folder)
    built_for = _manifest(folder).get("hardware", {})
    if built_for != hw:
        differing = sorted(k for k in set(built_for) | set(hw) if built_for.get(k) != hw.get(k))
        raise QuantizerError(
            f"images in {folder} were laid out for different hardware ({', '.join(differing)} "
            f"differ: e.g. {differing[0]}={built_for.get(differing[0])!r} vs "
            f"{hw.get(differing[0])!r}); recompile them with mxugen compile for this hardware")
    return {name: parse_readmemh((folder / f"{name}.hex").read_text()) for name in MEMORIES}
