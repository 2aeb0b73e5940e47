"""Model importers: every supported file format becomes a :class:`~quantizer.network.FloatNetwork`.

One module per format, chosen by file suffix; a new format (TFLite, int8 QDQ graphs) is a new
module and one entry in :data:`IMPORTERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import QuantizerError
from ..network import FloatNetwork


def _load_npz(path: Path) -> FloatNetwork:
    return FloatNetwork.from_npz(path)


def _load_onnx(path: Path) -> FloatNetwork:
    from .onnx import load_onnx  # imports the onnx package only when needed
    return load_onnx(path)


IMPORTERS: dict[str, Callable[[Path], FloatNetwork]] = {".npz": _load_npz, ".onnx": _load_onnx}


def load_float_model(path: Path | str) -> FloatNetwork:
    """Import a float model, choosing the importer by the file's suffix."""
    path = Path(path)
    if not path.is_file():
        raise QuantizerError(f"model file {path} does not exist")
    importer = IMPORTERS.get(path.suffix.lower())
    if importer is None:
        hint = " (TFLite import is planned; export to ONNX meanwhile)" \
            if path.suffix.lower() == ".tflite" else ""
        raise QuantizerError(f"{path}: unsupported model format '{path.suffix}'{hint}; "
                             f"use one of {', '.join(IMPORTERS)}")
    return importer(path)
