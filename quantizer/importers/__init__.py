"""Model importers. Float models become what the quantizer takes: a
:class:`~quantizer.network.FloatNetwork` for dense chains (``.npz``, ONNX MLPs), a float
:class:`~quantizer.graph.Graph` for ONNX CNNs. Quantized models (``.tflite``, QDQ or QOperator
ONNX, and the folders ``mxugen quantize`` writes) become the int8 operator graph that the golden
model runs and the compiler lowers.

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


def _is_quantized_onnx(path: Path) -> bool:
    from .onnx import read_model
    from .onnx_quantized import is_quantized_onnx
    return is_quantized_onnx(read_model(path, check=False))


def _load_quantized_onnx(path: Path) -> Graph:
    if not _is_quantized_onnx(path):
        raise QuantizerError(f"{path} is a float ONNX model: quantize it first with mxugen "
                             "quantize (QDQ and QOperator models run as they are)")
    from .onnx_quantized import load_quantized_onnx
    return load_quantized_onnx(path)


IMPORTERS: dict[str, Callable[[Path], FloatNetwork]] = {".npz": _load_npz, ".onnx": _load_onnx}
NETWORK_IMPORTERS: dict[str, Callable[[Path], Graph]] = {".tflite": _load_tflite,
                                                         ".onnx": _load_quantized_onnx}


def _model_file(path: Path) -> Path:
    """``path``, if it is a file to read a model from."""
    if not path.exists():
        raise QuantizerError(f"model file {path} does not exist")
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file"
        raise QuantizerError(f"model {path} is {what}: give a model file")
    return path


def load_float_model(path: Path | str) -> FloatNetwork:
    """Import a float model, choosing the importer by the file's suffix."""
    path = _model_file(Path(path))
    importer = IMPORTERS.get(path.suffix.lower())
    if importer is None:
        hint = " (a .tflite model is quantized already: run it with mxugen sim)" \
            if path.suffix.lower() == ".tflite" else ""
        raise QuantizerError(f"{path}: unsupported model format '{path.suffix}'{hint}; "
                             f"use one of {', '.join(IMPORTERS)}")
    return importer(path)


def load_float_graph(path: Path | str) -> Graph:
    """A float model as a float operator :class:`Graph` (NHWC, TFLite operator kinds; run it
    with :func:`quantizer.float_graph.run_float`, quantize it with
    :func:`quantizer.quantize_graph.quantize_graph`). ONNX only, any graph the importer
    supports: CNNs, residual branches, a final Softmax."""
    path = _model_file(Path(path))
    if path.suffix.lower() != ".onnx":
        raise QuantizerError(f"{path}: float operator graphs are imported from .onnx files")
    from .onnx_graph import load_onnx_graph
    return load_onnx_graph(path)


def load_float(path: Path | str) -> FloatNetwork | Graph:
    """The importer the quantizer should use: a :class:`FloatNetwork` for dense chains
    (``.npz``, and ONNX MLPs :func:`~quantizer.importers.onnx.is_dense_chain` accepts — the path
    with equalization, bias correction, data-free ranges and low-bit weights), a float
    :class:`Graph` for any other ONNX model (:func:`load_float_graph`)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx" and path.is_file():
        from .onnx import is_dense_chain, read_model
        if _is_quantized_onnx(path):
            raise QuantizerError(f"{path} is quantized already (QuantizeLinear/QLinear "
                                 "operators): run it with mxugen sim")
        if not is_dense_chain(read_model(path)):
            return load_float_graph(path)
    return load_float_model(path)


def load_network(path: Path | str) -> Graph:
    """An int8 network: a ``.tflite`` file, a quantized (QDQ or QOperator) ONNX file, or a
    folder written by ``mxugen quantize``."""
    path = Path(path)
    if path.is_dir():
        if not (path / GRAPH_FILE).is_file():
            raise QuantizerError(f"{path} has no {GRAPH_FILE}: give a folder written by "
                                 "mxugen quantize, or a .tflite file")
        graph = Graph.load(path)
    else:
        _model_file(path)
        importer = NETWORK_IMPORTERS.get(path.suffix.lower())
        if importer is None:
            hint = " (a float model: quantize it first with mxugen quantize)" \
                if path.suffix.lower() in IMPORTERS else ""
            raise QuantizerError(f"{path}: not an int8 network{hint}; give a .tflite or "
                                 "quantized .onnx file, or a folder written by mxugen quantize")
        graph = importer(path)
    try:  # every command, compile as much as sim, refuses what the golden model cannot run
        graph.check_runs()
    except QuantizerError as exc:
        raise QuantizerError(f"{path}: {exc}") from None
    return graph
