"""Model importers. Float models (``.npz`` dense layers, ONNX) become a
:class:`~quantizer.network.FloatNetwork` for the quantizer; quantized models (``.tflite``, and
the folders ``mxugen quantize`` writes) become the int8 operator graph
(:class:`~quantizer.graph.Graph`) that the golden model runs and the compiler lowers.

One module per format, chosen by file suffix; a new format is a new module and one table entry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import QuantizerError
from ..graph import GRAPH_FILE, Graph
from ..network import FloatNetwork


def _load_npz(path: Path) -> FloatNetwork:
    return FloatNetwork.from_npz(path)


def _load_onnx(path: Path) -> FloatNetwork:
    from .onnx import load_onnx  # imports the onnx package only when needed
    return load_onnx(path)


def _load_tflite(path: Path) -> Graph:
    from .tflite import load_tflite
    return load_tflite(path)


IMPORTERS: dict[str, Callable[[Path], FloatNetwork]] = {".npz": _load_npz, ".onnx": _load_onnx}
NETWORK_IMPORTERS: dict[str, Callable[[Path], Graph]] = {".tflite": _load_tflite}


def load_float_model(path: Path | str) -> FloatNetwork:
    """Import a float model, choosing the importer by the file's suffix."""
    path = Path(path)
    if not path.is_file():
        raise QuantizerError(f"model file {path} does not exist")
    importer = IMPORTERS.get(path.suffix.lower())
    if importer is None:
        hint = " (a .tflite model is quantized already: run it with mxugen sim)" \
            if path.suffix.lower() in NETWORK_IMPORTERS else ""
        raise QuantizerError(f"{path}: unsupported model format '{path.suffix}'{hint}; "
                             f"use one of {', '.join(IMPORTERS)}")
    return importer(path)


def load_network(path: Path | str) -> Graph:
    """An int8 network: a ``.tflite`` file or a folder written by ``mxugen quantize``."""
    path = Path(path)
    if path.is_dir():
        if not (path / GRAPH_FILE).is_file():
            raise QuantizerError(f"{path} has no {GRAPH_FILE}: give a folder written by "
                                 "mxugen quantize, or a .tflite file")
        return Graph.load(path)
    if not path.is_file():
        raise QuantizerError(f"model {path} does not exist")
    importer = NETWORK_IMPORTERS.get(path.suffix.lower())
    if importer is None:
        hint = " (a float model: quantize it first with mxugen quantize)" \
            if path.suffix.lower() in IMPORTERS else ""
        raise QuantizerError(f"{path}: not an int8 network{hint}; give a .tflite file or a "
                             "folder written by mxugen quantize")
    return importer(path)
