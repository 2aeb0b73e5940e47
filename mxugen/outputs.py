"""Files the command line writes: designs (Verilog + JSON) and figures, each written whole or
not at all (a temporary name, then a rename)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hw import ArrayConfig
from hw.generate import design_description, to_verilog
from quantizer.files import output_folder, replace_via_temporary, write_atomic


def write_design(component, config: ArrayConfig, folder: Path | str, top: str, *,
                 target: str = "generic",
                 companions: Callable[[dict], dict[str, str]] | None = None,
                 **extra) -> tuple[Path, Path, str]:
    """Write ``<top>.v`` for ``target`` (:data:`hw.multiplier.TARGETS`) and ``<top>.json``
    into ``folder``, and the files ``companions`` makes from the JSON's content (``{name:
    text}``: :func:`mxugen.package.package_files`); every text is made before the first file
    is written. Return the Verilog's and the JSON's paths and the Verilog text (so a caller
    can simulate exactly what it wrote)."""
    folder = Path(folder)
    text = to_verilog(component, config, top, target)
    description = design_description(component, config, top, target, **extra)
    files = {f"{top}.v": text, f"{top}.json": json.dumps(description, indent=2) + "\n",
             **(companions(description) if companions else {})}
    with output_folder(folder) as staging:
        for name, content in files.items():
            write_atomic(staging / name, content)
    return folder / f"{top}.v", folder / f"{top}.json", text


def save_figure(figure, path: Path | str) -> Path:
    """Save a matplotlib figure as PNG through a temporary file, then close it."""
    from .plots import plt
    try:
        replace_via_temporary(path, ".png",
                              lambda tmp: figure.savefig(tmp, dpi=110, bbox_inches="tight"))
    finally:
        plt.close(figure)
    return Path(path)
