"""The network as a graph of int8 operators — what every importer builds, the golden model runs
and the compiler lowers.

It mirrors a TFLite subgraph: named :class:`Tensor` objects (shape, dtype, scale and zero point,
per channel where it applies, and data for constants) and :class:`Operator` objects in
topological order, each naming its input and output tensors. Operator kinds are TFLite's builtin
names (``FULLY_CONNECTED``, ``CONV_2D``, …); the golden model is one kernel per kind
(:mod:`quantizer.kernels`). A tensor may be read by several operators (residual networks).

Activation shapes are the model file's, batch first (usually 1); at run time the batch
dimension holds the samples. Constant tensors (weights, biases) carry ``data`` of their exact
shape.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import QuantizerError
from .files import load_arrays, output_folder, save_arrays, write_atomic

#: Integer ranges of the tensor types the graph holds.
DTYPE_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
    "int32": (-(1 << 31), (1 << 31) - 1)}
NUMPY_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
                "float32": np.float32}

#: ``Graph.meta`` key: the NCHW sample shape of a graph imported from a channels-first model,
#: whose inputs may come in that layout too.
CHANNELS_FIRST_INPUT = "channels_first_input"

#: TFLite's fused activation functions.
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


@dataclass
class Tensor:
    """One tensor of the graph.

    Parameters
    ----------
    name:
        Unique name (the model file's).
    shape:
        Dimensions as in the model file, batch first for activations.
    dtype:
        ``int8``, ``uint8``, ``int16``, ``int32`` (biases) or ``float32`` (float model edges).
    scale, zero_point:
        Quantization parameters: one value per tensor, or one per channel along ``axis``.
    axis:
        The quantized dimension of per-channel parameters (``None`` for per tensor).
    data:
        The values of a constant tensor, of exactly ``shape``; ``None`` for activations.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "int8"
    scale: np.ndarray = field(default_factory=lambda: np.ones(1))
    zero_point: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    axis: int | None = None
    data: np.ndarray | None = None

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if any(d < 0 for d in self.shape):
            raise QuantizerError(f"tensor {self.name}: shape {self.shape} has a dynamic (negative) "
                                 "dimension; mxugen runs models of fixed shapes: convert it with "
                                 "a fixed input shape")
        if self.dtype not in NUMPY_DTYPES:
            raise QuantizerError(f"tensor {self.name}: unsupported type {self.dtype}")
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float64))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))
        if self.zero_point.size != self.scale.size and self.zero_point.size == 1:
            self.zero_point = np.full(self.scale.size, self.zero_point[0])
        if self.dtype in ("int8", "uint8", "int16") and not np.all(
                np.isfinite(self.scale) & (self.scale > 0)):
            bad = self.scale[~(np.isfinite(self.scale) & (self.scale > 0))][0]
            raise QuantizerError(f"tensor {self.name}: scale {bad:g} is not a positive finite "
                                 "number, so its values mean nothing; the model's "
                                 "quantization is damaged: convert it again")
        if self.data is not None:
            self.data = np.asarray(self.data)
            if self.data.shape != self.shape:
                raise QuantizerError(f"tensor {self.name}: data has shape {self.data.shape}, "
                                     f"the tensor {self.shape}")

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def zp(self) -> int:
        """The zero point of a per-tensor quantized tensor."""
        if self.zero_point.size != 1 and np.any(self.zero_point != self.zero_point[0]):
            raise QuantizerError(f"tensor {self.name} has per-channel zero points where one "
                                 "is needed")
        return int(self.zero_point[0])

    @property
    def scalar_scale(self) -> float:
        """The scale of a per-tensor quantized tensor."""
        if self.scale.size != 1:
            raise QuantizerError(f"tensor {self.name} is quantized per channel where one scale "
                                 "is needed")
        return float(self.scale[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: ``shape`` without the batch dimension."""
        return self.shape[1:]

    @property
    def range(self) -> tuple[int, int]:
        return DTYPE_RANGES[self.dtype]

    def quantize(self, x) -> np.ndarray:
        """Real values → this tensor's integers exactly as TFLite's QUANTIZE: the quotient in
        float32, rounded half away from zero, plus the zero point, clamped to the type."""
        lo, hi = self.range
        x = np.asarray(x, np.float32)
        if not np.isfinite(x).all():  # TFLite's QUANTIZE has no integer for them
            raise QuantizerError(f"{self.name}: the real values to quantize include NaN or "
                                 "infinity; give finite numbers")
        q = (x / np.float32(self.scalar_scale)).astype(np.float64)
        q = np.floor(np.abs(q) + 0.5) * np.sign(q) + self.zp
        return np.clip(q, lo, hi).astype(NUMPY_DTYPES[self.dtype])

    def dequantize(self, q) -> np.ndarray:
        return (np.asarray(q, np.float64) - self.zp) * self.scalar_scale


@dataclass
class Operator:
    """One operator: its TFLite builtin ``kind``, the tensors it reads and writes (an omitted
    optional input, such as a missing bias, is ``None``) and its options."""

    kind: str
    inputs: tuple[str | None, ...]
    outputs: tuple[str, ...]
    options: dict = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        self.inputs, self.outputs = tuple(self.inputs), tuple(self.outputs)
        self.name = self.name or self.outputs[0]

    @property
    def activation(self) -> str:
        return self.options.get("activation", "NONE")


@dataclass
class Graph:
    """Tensors and operators in topological order, with the graph's inputs and outputs."""

    tensors: dict[str, Tensor]
    operators: list[Operator]
    inputs: list[str]
    outputs: list[str]
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        available = set(self.inputs) | {n for n, t in self.tensors.items() if t.is_constant}
        for name in [*self.inputs, *self.outputs]:
            if name not in self.tensors:
                raise QuantizerError(f"graph input or output {name!r} is not a tensor")
        for op in self.operators:
            for name in op.inputs:
                if name is None:
                    continue
                if name not in self.tensors:
                    raise QuantizerError(f"{op.kind} {op.name} reads unknown tensor {name!r}")
                if name not in available:
                    raise QuantizerError(f"{op.kind} {op.name} reads {name!r} before any "
                                         "operator writes it (operators must be in "
                                         "topological order)")
            for name in op.outputs:
                if name not in self.tensors:
                    raise QuantizerError(f"{op.kind} {op.name} writes unknown tensor {name!r}")
                available.add(name)
        missing = [n for n in self.outputs if n not in available]
        if missing:
            raise QuantizerError(f"no operator computes the graph output {missing[0]!r}")
        if not self.operators:
            raise QuantizerError("the graph has no operators")

    # -- structure ------------------------------------------------------------------------
    def tensor(self, name: str | None) -> Tensor | None:
        return None if name is None else self.tensors[name]

    def op_inputs(self, op: Operator) -> list[Tensor | None]:
        return [self.tensor(name) for name in op.inputs]

    def op_output(self, op: Operator) -> Tensor:
        return self.tensors[op.outputs[0]]

    @property
    def input(self) -> Tensor:
        """The graph's single input."""
        if len(self.inputs) != 1:
            raise QuantizerError(f"the graph has {len(self.inputs)} inputs; mxugen runs "
                                 "single-input graphs")
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> Tensor:
        """The graph's single output."""
        if len(self.outputs) != 1:
            raise QuantizerError(f"the graph has {len(self.outputs)} outputs; mxugen runs "
                                 "single-output graphs")
        return self.tensors[self.outputs[0]]

    @property
    def dtype(self) -> str:
        return self.input.dtype

    def consumers(self, name: str) -> list[Operator]:
        return [op for op in self.operators if name in op.inputs]

    def producer(self, name: str) -> Operator | None:
        return next((op for op in self.operators if name in op.outputs), None)

    def operator_counts(self) -> Counter:
        return Counter(op.kind for op in self.operators)

    def summary(self) -> str:
        """One line: operator kinds with their counts."""
        return ", ".join(f"{kind}×{n}" for kind, n in self.operator_counts().items())

    # -- the golden model -----------------------------------------------------------------
    def run(self, x, *, runtime: str = "litert", all_tensors: bool = False):
        """Integer inference: ``x`` ``(samples, *input sample shape)`` in the input's type →
        the output tensor's values, or with ``all_tensors`` a dict of every tensor computed
        (graph input included), by name.

        ``runtime`` chooses whose arithmetic each operator follows where LiteRT and TFLite
        Micro differ (:mod:`quantizer.kernels`)."""
        values = self._evaluate(self.check_input(x), runtime)
        if all_tensors:
            return values
        return values[self.outputs[0]]

    def check_runs(self) -> None:
        """Run one sample of zeros through every operator, so that a graph whose operators do
        not fit their tensors (operands, options, declared shapes: a damaged or hand-made
        file) is one :class:`QuantizerError` naming the first that fails, before anything is
        compiled, written or simulated."""
        x = np.zeros((1, *self.input.sample_shape), NUMPY_DTYPES[self.input.dtype])
        with np.errstate(all="ignore"):  # what a warning would say, the refusal says
            self._evaluate(x, "litert", name_failures=True)

    def _evaluate(self, x: np.ndarray, runtime: str, *, name_failures: bool = False) -> dict:
        from .kernels import evaluate
        values = {self.inputs[0]: x}
        for op in self.operators:
            try:
                args = [None if n is None else values[n] if n in values
                        else self.tensors[n].data for n in op.inputs]
                values[op.outputs[0]] = evaluate(op, self, args, runtime)
                declared = self.tensors[op.outputs[0]].sample_shape
                if name_failures and values[op.outputs[0]].shape[1:] != declared:
                    raise ValueError(f"it computes {values[op.outputs[0]].shape[1:]} a sample, "
                                     f"the file declares {declared}")
            except QuantizerError as exc:
                if not name_failures or str(exc).startswith(op.kind):
                    raise
                raise QuantizerError(f"{op.kind} {op.name}: {exc}") from None
            except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
                if not name_failures:  # in a checked graph, a kernel's own bug
                    raise
                raise QuantizerError(
                    f"{op.kind} {op.name} does not fit its operands, options or declared "
                    f"output shape ({exc}); the model file is damaged: convert it again") \
                    from None
        return values

    def conform_layout(self, x) -> np.ndarray:
        """``x`` as ``(samples, *input sample shape)``: the graph's own (NHWC) layout; for a
        graph imported from a channels-first model also NCHW samples, transposed, when the
        shape is NCHW and not NHWC; flat rows when flattening cannot mix channels up (one
        channel, or a non-image input); images for a vector input, flattened. Anything else
        is refused naming the expected shape."""
        x = np.asarray(x)
        sample = self.input.sample_shape
        nchw = tuple(self.meta.get(CHANNELS_FIRST_INPUT) or ())
        if x.ndim >= 1 and x.shape[1:] == sample:
            pass
        elif nchw and x.shape[1:] == nchw:
            x = x.transpose(0, 2, 3, 1)
        elif x.ndim == 2 and x.shape[1] == int(np.prod(sample)) and (
                not nchw or nchw[0] == 1 or int(np.prod(nchw[1:])) == 1):
            x = x.reshape(len(x), *sample)
        elif len(sample) == 1 and x.ndim > 2 and int(np.prod(x.shape[1:])) == sample[0]:
            x = x.reshape(len(x), -1)  # images into a vector input: flattened in C order
        else:
            also = f" or NCHW (samples, {', '.join(map(str, nchw))})" if nchw else ""
            raise QuantizerError(f"inputs must have shape (samples, "
                                 f"{', '.join(map(str, sample))}){also} for the input "
                                 f"{self.inputs[0]!r}, got {x.shape}")
        if len(x) == 0:
            raise QuantizerError("inputs have no samples: give at least one sample")
        return x

    def check_input(self, x) -> np.ndarray:
        """``x`` as the input tensor's integers ``(samples, *sample shape)``
        (:meth:`conform_layout`), refusing floats and values outside the input's type."""
        tensor = self.input
        x = self.conform_layout(x)
        lo, hi = tensor.range
        if x.dtype.kind not in "iu":
            raise QuantizerError(f"inputs are {x.dtype}, the model's input {tensor.name} is "
                                 f"{tensor.dtype}: quantize them first (--float-input)")
        if x.size and (x.min() < lo or x.max() > hi):
            raise QuantizerError(f"inputs have values in [{x.min()}, {x.max()}], outside "
                                 f"{tensor.dtype} [{lo}, {hi}]")
        return x.astype(NUMPY_DTYPES[tensor.dtype])

    def run_float(self, x, *, runtime: str = "litert") -> np.ndarray:
        """Quantize float inputs with the input tensor's parameters, run, dequantize."""
        return self.output.dequantize(self.run(self.input.quantize(x), runtime=runtime))

    # -- the folder format ----------------------------------------------------------------
    def save(self, folder: Path | str) -> Path:
        """Write ``graph.json`` (structure, quantization) and ``tensors.npz`` (constants), both
        or neither (:func:`~quantizer.files.output_folder`)."""
        folder = Path(folder)
        doc, arrays = self._document()
        doc["digest"] = _digest(doc, arrays)
        with output_folder(folder) as staging:
            save_arrays(staging / TENSORS_FILE, **arrays)
            write_atomic(staging / GRAPH_FILE, json.dumps(doc, indent=1) + "\n")
        return folder

    def digest(self) -> str:
        """SHA-256 of the network: what ``graph.json``'s digest would be."""
        return _digest(*self._document())

    def _document(self) -> tuple[dict, dict]:
        """``graph.json``'s content (without its digest) and the constants' arrays."""
        arrays = {f"t{i}": t.data for i, t in enumerate(self.tensors.values()) if t.is_constant}
        tensors = []
        for i, t in enumerate(self.tensors.values()):
            tensors.append({"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                            "scale": t.scale.tolist(), "zero_point": t.zero_point.tolist(),
                            "axis": t.axis, "data": f"t{i}" if t.is_constant else None})
        doc = json.loads(json.dumps({
            "format": GRAPH_FORMAT, "version": GRAPH_VERSION, "inputs": self.inputs,
            "outputs": self.outputs, "meta": self.meta, "tensors": tensors,
            "operators": [{"kind": op.kind, "name": op.name, "inputs": list(op.inputs),
                           "outputs": list(op.outputs), "options": op.options}
                          for op in self.operators]}, default=_json_value))
        return doc, arrays

    @classmethod
    def load(cls, folder: Path | str) -> "Graph":
        folder = Path(folder)
        try:
            doc = json.loads((folder / GRAPH_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise QuantizerError(f"{folder} is not a network folder written by mxugen "
                                 f"quantize: {exc}") from None
        arrays = load_arrays(folder / TENSORS_FILE, "the network's constants")
        if not isinstance(doc, dict) or doc.get("format") != GRAPH_FORMAT \
                or doc.get("version") != GRAPH_VERSION:
            raise QuantizerError(f"{folder}/{GRAPH_FILE} is not a version {GRAPH_VERSION} "
                                 "mxugen network; quantize the model again")
        if doc.get("digest") != _digest(doc, arrays):
            raise QuantizerError(f"{folder} was changed after mxugen wrote it ({GRAPH_FILE} and "
                                 f"{TENSORS_FILE} no longer match their digest); write it again "
                                 "with mxugen quantize")
        try:
            tensors = {}
            for entry in doc["tensors"]:
                data = arrays[entry["data"]] if entry["data"] else None
                tensors[entry["name"]] = Tensor(entry["name"], tuple(entry["shape"]),
                                                entry["dtype"], np.array(entry["scale"]),
                                                np.array(entry["zero_point"]), entry["axis"],
                                                data)
            operators = [Operator(e["kind"], tuple(e["inputs"]), tuple(e["outputs"]),
                                  _options_from_json(e["options"]), e["name"])
                         for e in doc["operators"]]
            written = {name for op in operators for name in op.outputs}
            if not (doc["inputs"] and doc["outputs"] and set(doc["outputs"]) <= written
                    and isinstance(doc.get("meta") or {}, dict)):
                raise ValueError("its inputs, outputs or meta are not a network's")
            from .weights import WEIGHT_FORMATS
            formats = {op.options.get("weight_format", "int8") for op in operators}
            if not formats <= set(WEIGHT_FORMATS):
                raise ValueError(f"weight formats {sorted(formats - set(WEIGHT_FORMATS))} are "
                                 "not mxugen's")
            return cls(tensors, operators, list(doc["inputs"]), list(doc["outputs"]),
                       doc.get("meta") or {})
        except (KeyError, TypeError, ValueError, AttributeError, IndexError,
                OverflowError) as exc:
            raise QuantizerError(f"{folder}/{GRAPH_FILE} is damaged ({type(exc).__name__}: "
                                 f"{exc}); quantize the model again") from None


GRAPH_FORMAT, GRAPH_VERSION = "mxugen-graph", 1
GRAPH_FILE, TENSORS_FILE = "graph.json", "tensors.npz"


def _digest(doc: dict, arrays: dict) -> str:
    """SHA-256 of the document (without its digest) and of every constant's type, shape and
    bytes: what makes a folder match itself."""
    h = hashlib.sha256(json.dumps({k: v for k, v in doc.items() if k != "digest"},
                                  sort_keys=True).encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def _json_value(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _options_from_json(options: dict) -> dict:
    """JSON lists back to the tuples operator options use (strides, padding amounts)."""
    return {k: tuple(tuple(x) if isinstance(x, list) else x for x in v)
            if isinstance(v, list) else v for k, v in options.items()}


def activation_range(activation: str, tensor: Tensor) -> tuple[int, int]:
    """``(act_min, act_max)`` of a fused activation on the output ``tensor``: TFLite's
    ``CalculateActivationRangeQuantized`` (bounds quantized with round half away from zero,
    intersected with the type's range)."""
    lo, hi = tensor.range
    if activation == "NONE":
        return lo, hi
    scale, zp = tensor.scalar_scale, tensor.zp

    def quantize(real: float) -> int:
        # TfLiteRound(f / scale): std::round on a float32 quotient, as the C++ computes it.
        q = float(np.float32(real) / np.float32(scale))
        return zp + int(np.floor(abs(q) + 0.5) * np.sign(q))

    if activation == "RELU":
        return max(lo, quantize(0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    raise QuantizerError(f"unknown fused activation {activation!r}: choose one of "
                         f"{', '.join(ACTIVATIONS)}")


class DenseChainBuilder:
    """Builds a graph of FULLY_CONNECTED operators, each reading the previous one's output:
    what the quantizer makes of a float MLP, and what benchmarks and tests make by hand."""

    def __init__(self, input_name: str, size: int, scale: float, zero_point: int,
                 dtype: str = "int8"):
        self.dtype = dtype
        self.tensors = {input_name: Tensor(input_name, (1, size), dtype, [scale], [zero_point])}
        self.operators: list[Operator] = []
        self.inputs, self.last = [input_name], input_name

    def add(self, name: str, weight: np.ndarray, bias: np.ndarray, *, weight_scale,
            weight_zero_point: int, output_scale: float, output_zero_point: int,
            **options) -> None:
        """A layer ``name`` with weights ``(C, K)`` (``weight_scale`` one value, or one per
        output channel), int32 ``bias`` ``(C,)``; ``options`` are the operator's."""
        weight_scale = np.atleast_1d(np.asarray(weight_scale, np.float64))
        input_scale = self.tensors[self.last].scalar_scale
        per_channel = weight_scale.size > 1
        self.tensors[f"{name}/weights"] = Tensor(
            f"{name}/weights", weight.shape, self.dtype, weight_scale, [weight_zero_point],
            0 if per_channel else None, weight)
        self.tensors[f"{name}/bias"] = Tensor(f"{name}/bias", bias.shape, "int32",
                                              input_scale * weight_scale, [0],
                                              0 if per_channel else None,
                                              np.asarray(bias, np.int32))
        self.tensors[name] = Tensor(name, (1, weight.shape[0]), self.dtype, [output_scale],
                                    [output_zero_point])
        self.operators.append(Operator("FULLY_CONNECTED",
                                       (self.last, f"{name}/weights", f"{name}/bias"), (name,),
                                       {"activation": "NONE", **options}))
        self.last = name

    def graph(self, meta: dict | None = None) -> Graph:
        return Graph(dict(self.tensors), list(self.operators), list(self.inputs), [self.last],
                     meta or {})
