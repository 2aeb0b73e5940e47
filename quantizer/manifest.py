"""Memory images on disk: one file per memory (``$readmemh`` hex, plus ``.coe``/``.mif`` on
request) and ``manifest.json`` with every scale, zero point, m0/shift and the hardware
configuration the images were laid out for. Images are refused by hardware they do not fit."""

from __future__ import annotations

import json
from pathlib import Path

from .compile import CompiledNetwork, has_multiplier, compile_network, descriptor_fields
from .errors import QuantizerError
from .files import write_atomic
from .image_formats import parse_readmemh, write_image
from .quantize import QuantizedNetwork

MANIFEST_VERSION = 1
MEMORIES = ("weights", "params", "program")


def _word_widths(hw: dict) -> dict[str, int]:
    return {"weights": hw.get("weight_bits", 8) * hw["cols"],
            "params": hw["cols"] * (32 + (31 if has_multiplier(hw) else 0) + 6),
            "program": sum(width for _name, width in descriptor_fields(hw))}


def write_images(qnet: QuantizedNetwork, hw: dict, samples: int, folder: Path | str, *,
                 formats: tuple[str, ...] = ("hex",)) -> CompiledNetwork:
    """Compile ``qnet`` for ``hw`` and write its images and manifest into ``folder``."""
    compiled = compile_network(qnet, hw, samples)
    folder = Path(folder)
    widths = _word_widths(hw)
    depths = {"weights": hw["weight_depth"], "params": hw["param_depth"],
              "program": hw["program_depth"]}
    for name in MEMORIES:
        for fmt in formats:
            write_image(folder / f"{name}.{fmt}", getattr(compiled, name), widths[name], fmt,
                        depth=depths[name], comment=f"mxugen {name} image, {widths[name]}-bit words")
    manifest = {
        "format": "mxugen-images", "version": MANIFEST_VERSION, "hardware": hw,
        "samples": samples, "word_bits": widths,
        "files": {name: [f"{name}.{fmt}" for fmt in formats] for name in MEMORIES},
        "input": {"base": compiled.input_base, "size": compiled.input_size,
                  "scale": qnet.layers[0].input_scale,
                  "zero_point": qnet.layers[0].input_zero_point},
        "output": {"base": compiled.output_base, "size": compiled.output_size,
                   "scale": qnet.layers[-1].output_scale,
                   "zero_point": qnet.layers[-1].output_zero_point},
        "layers": [{**info, "shape": list(layer.weight.shape),
                    "input_scale": layer.input_scale, "input_zero_point": layer.input_zero_point,
                    "weight_zero_point": layer.weight_zero_point,
                    "weight_scale": layer.weight_scale.tolist(),
                    "output_scale": layer.output_scale,
                    "output_zero_point": layer.output_zero_point,
                    "m0": layer.m0.tolist(), "shift": layer.shift.tolist(),
                    "act_min": layer.act_min, "act_max": layer.act_max}
                   for info, layer in zip(compiled.layers, qnet.layers)],
    }
    write_atomic(folder / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return compiled


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
