"""Memory images on disk: one file per memory (``$readmemh`` hex, plus ``.coe``/``.mif`` on
request) and ``manifest.json`` with every scale, zero point, m0/shift and the hardware
configuration the images were laid out for. Images are refused by hardware they do not fit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hw import contract

from .compile import CompiledNetwork, compile_network
from .errors import QuantizerError
from .files import output_folder, write_atomic
from .image_formats import parse_readmemh, write_image
from .graph import Graph
from .partition import HOST, partition

if TYPE_CHECKING:
    from hw import ArrayConfig

#: 2: the manifest carries a digest of itself and its images. 3: descriptors carry ``quad``
#: and ``out_blocks``, and a window build's activation memory keeps four words a row.
MANIFEST_VERSION = 3
MEMORIES = ("weights", "params", "program")


def _depths(config: ArrayConfig) -> dict[str, int]:
    return {"weights": config.weight_depth, "params": config.param_depth,
            "program": config.program_depth}


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
    widths, depths = _word_widths(config), _depths(config)
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
    with output_folder(folder) as staging:  # every file, or none
        for name in MEMORIES:
            for fmt in formats:
                write_image(staging / f"{name}.{fmt}", getattr(compiled, name), widths[name],
                            fmt, depth=depths[name],
                            comment=f"mxugen {name} image, {widths[name]}-bit words")
        manifest["digest"] = _digest(manifest, staging)
        write_atomic(staging / "manifest.json", json.dumps(manifest, indent=1) + "\n")
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


def _digest(manifest: dict, folder: Path) -> str:
    """SHA-256 of the manifest (without its digest) and of every image file it lists."""
    h = hashlib.sha256(json.dumps({k: v for k, v in manifest.items() if k != "digest"},
                                  sort_keys=True).encode())
    for name in MEMORIES:
        for file in manifest["files"][name]:
            h.update(file.encode() + b"\0" + (folder / file).read_bytes())
    return h.hexdigest()


def _manifest(folder: Path) -> dict:
    """``folder``'s manifest, once it and the images it lists are what mxugen wrote: a
    manifest or an image edited by hand (hardware, version, word counts) is refused."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise QuantizerError(f"{folder} has no readable manifest.json ({reason}): give a "
                             "folder written by mxugen compile") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "mxugen-images":
        raise QuantizerError(f"{folder / 'manifest.json'} is not an mxugen images manifest: "
                             "give a folder written by mxugen compile")
    if manifest.get("version") != MANIFEST_VERSION:
        raise QuantizerError(f"images in {folder} are of manifest version "
                             f"{manifest.get('version')!r}, this mxugen reads version "
                             f"{MANIFEST_VERSION}: compile them again with mxugen compile")
    files = manifest.get("files")
    if not (isinstance(files, dict) and all(
            isinstance(files.get(name), list) and files[name] and all(
                isinstance(f, str) and f == Path(f).name for f in files[name])
            for name in MEMORIES)):
        raise QuantizerError(f"{folder / 'manifest.json'} lists no image files of its own: "
                             "compile the images again with mxugen compile")
    odd = [f for name in MEMORIES for f in files[name]
           if (folder / f).exists() and not (folder / f).is_file()]
    if odd:  # a FIFO would block the read
        raise QuantizerError(f"{folder / odd[0]} is not a regular file: compile the images "
                             "again with mxugen compile")
    try:
        intact = manifest.get("digest") == _digest(manifest, folder)
    except OSError as exc:
        raise QuantizerError(f"cannot read the images in {folder}: "
                             f"{exc.strerror or exc} ({exc.filename})") from None
    if not intact:
        raise QuantizerError(f"images in {folder} were changed after mxugen wrote them (the "
                             "manifest and its image files no longer match their digest): "
                             "compile them again with mxugen compile")
    return manifest


def images_hardware(folder: Path | str) -> dict:
    """The hardware parameters the images in ``folder`` were laid out for."""
    return _manifest(Path(folder))["hardware"]


def read_images(folder: Path | str, hw: dict) -> dict[str, list[int]]:
    """The hex images in ``folder``, after checking they were laid out for ``hw``."""
    folder = Path(folder)
    built_for = _manifest(folder)["hardware"]
    if built_for != hw:
        differing = sorted(k for k in set(built_for) | set(hw) if built_for.get(k) != hw.get(k))
        raise QuantizerError(
            f"images in {folder} were laid out for different hardware ({', '.join(differing)} "
            f"differ: e.g. {differing[0]}={built_for.get(differing[0])!r} vs "
            f"{hw.get(differing[0])!r}); recompile them with mxugen compile for this hardware")
    from hw import ArrayConfig
    config = ArrayConfig.from_dict(hw)
    widths, depths = _word_widths(config), _depths(config)
    images = {name: parse_readmemh((folder / f"{name}.hex").read_text()) for name in MEMORIES}
    for name, words in images.items():  # what the digest cannot vouch for: its own maker
        if len(words) > depths[name] or any(not 0 <= w < 1 << widths[name] for w in words):
            raise QuantizerError(
                f"{folder / (name + '.hex')} does not fit the {name} memory ({len(words)} "
                f"words for {depths[name]} of {widths[name]} bits): compile the images again "
                "with mxugen compile")
    return images
