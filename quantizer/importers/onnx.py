"""Float ONNX import with the ``onnx`` package: the graphs PyTorch and scikit-learn converters
export for MLPs — a chain of ``Gemm`` (or ``MatMul`` + ``Add``) layers, each optionally followed
by a ``BatchNormalization`` (folded into the layer), with ``Relu`` or ``Clip`` (ReLU6)
activations, and ``Flatten``/``Reshape`` on the input. Any other operator is refused by name.

The graph is walked node by node in its (topological) order, following the one tensor that
flows through the chain. Weights and biases are initializers, ``Constant`` nodes, or anything
computed from them alone (a ``Transpose`` of a weight, a ``Cast``): such nodes are folded with
onnx's reference implementation, whatever their operator.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from ..errors import QuantizerError
from ..network import DenseLayer, FloatNetwork

SUPPORTED = ("Gemm", "MatMul", "Add", "BatchNormalization", "Relu", "Clip", "Flatten",
             "Reshape", "Identity")
_HINTS = {"Softmax": " (the array outputs logits, and argmax is unchanged: export the model "
                     "without its final Softmax)",
          "Conv": " (convolutions are planned; only dense layers import today)"}


class _Chain:
    """The network being assembled: finished layers, and the one whose activation and bias
    the following nodes may still fold in."""

    def __init__(self, path: Path):
        self.path = path
        self.layers: list[DenseLayer] = []
        self.pending: DenseLayer | None = None
        self.bias_folded = False

    def error(self, node, message: str) -> QuantizerError:
        label = f"{node.op_type} node '{node.name}'" if node.name else f"{node.op_type} node"
        return QuantizerError(f"{self.path}: {label}: {message}")

    def add_dense(self, weight: np.ndarray, bias: np.ndarray, name: str) -> None:
        self.finish()
        self.pending = DenseLayer(weight, bias, "none", name=name)
        self.bias_folded = False

    def finish(self) -> None:
        if self.pending is not None:
            self.layers.append(self.pending)
            self.pending = None


def is_dense_chain(model) -> bool:
    """Whether :func:`load_onnx` is the importer for ``model``: its nodes (those not computed
    from constants alone) are a chain of :data:`SUPPORTED` operators over the one input, and
    every ``Clip`` is a ReLU or ReLU6 with constant bounds. Anything else — convolutions,
    branches, a final Softmax — is a graph for :mod:`quantizer.importers.onnx_graph`."""
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in values]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        return False
    current, folded = inputs[0], set(values)
    for node in model.graph.node:
        data = [name for name in node.input if name and name not in folded]
        if not data:
            folded.update(node.output)
            if node.op_type == "Constant" and "value" in _attributes(node):
                values[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
            continue
        if node.op_type not in SUPPORTED or data != [current]:
            return False
        if node.op_type == "Clip":
            attrs = _attributes(node)
            bounds = [attrs.get("min", -np.inf), attrs.get("max", np.inf)]
            for i, name in enumerate(node.input[1:3]):
                if name in values:
                    bounds[i] = float(np.asarray(values[name]).reshape(-1)[0])
            if bounds not in ([0.0, 6.0], [0.0, np.inf]):
                return False
        current = node.output[0]
    return current == model.graph.output[0].name


def _attributes(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def read_model(path: Path, *, check: bool = True) -> onnx.ModelProto:
    """The ONNX model in ``path``, checked with ``onnx.checker`` unless ``check`` is false (the
    quantized importer validates what it reads itself: ONNX Runtime accepts graphs without
    value shapes, which the checker refuses); an unreadable or invalid file is one line."""
    try:
        model = onnx.load(str(path))
        if check:
            onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises several unrelated types for unreadable files
        raise QuantizerError(f"{path} is not a valid ONNX model: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
    return model


def load_onnx(path: Path | str) -> FloatNetwork:
    """Import the float MLP in the ONNX file ``path``."""
    path = Path(path)
    model = read_model(path)
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise QuantizerError(f"{path}: the graph must have one input and one output, it has "
                             f"{len(inputs)} and {len(graph.output)}")
    chain, current = _Chain(path), inputs[0].name
    for node in graph.node:
        data = [name for name in node.input if name and name not in constants]
        if not data:  # Constant, or e.g. a Transpose of a weight: fold it
            _fold(chain, node, constants)
            continue
        if node.op_type not in SUPPORTED:
            op = node.op_type
            raise QuantizerError(f"{path}: unsupported ONNX operator {op}{_HINTS.get(op, '')}; "
                                 f"supported: {', '.join(SUPPORTED)}")
        if data != [current]:
            raise chain.error(node, f"reads {data or 'only constants'}, but only a chain of "
                                    f"layers over the input '{current}' is supported")
        _apply(chain, node, constants)
        current = node.output[0]
    if current != graph.output[0].name:
        raise QuantizerError(f"{path}: the graph output '{graph.output[0].name}' is not the "
                             "end of the layer chain")
    chain.finish()
    if not chain.layers:
        raise QuantizerError(f"{path}: the graph has no Gemm or MatMul layer")
    return FloatNetwork(chain.layers, input_name=inputs[0].name,
                        meta={"source": str(path), "format": "onnx"})


def _fold(chain: _Chain, node, constants: dict) -> None:
    """Evaluate a node whose inputs are all constants with onnx's reference implementation."""
    try:
        values = ReferenceEvaluator(node).run(None, {name: constants[name]
                                                     for name in node.input if name})
    except Exception as exc:  # the reference ops raise many types
        raise chain.error(node, f"cannot fold this constant expression: {exc}") from None
    constants.update(zip(node.output, values))


def _constant(node, constants: dict, index: int) -> np.ndarray | None:
    name = node.input[index] if index < len(node.input) else ""
    value = constants.get(name) if name else None
    return None if value is None else np.asarray(value, dtype=np.float64)


def _apply(chain: _Chain, node, constants: dict) -> None:
    op, attrs = node.op_type, _attributes(node)
    name = node.name or f"dense{len(chain.layers) + (chain.pending is not None)}"
    if op == "Gemm":
        if attrs.get("transA", 0):
            raise chain.error(node, "transA=1 is not supported (samples must be rows)")
        b = _constant(node, constants, 1)
        if b.ndim != 2:
            raise chain.error(node, f"the weight must be 2-D, got shape {b.shape}")
        weight = (b if attrs.get("transB", 0) else b.T) * attrs.get("alpha", 1.0)
        c = _constant(node, constants, 2)
        if c is not None and c.size not in (1, weight.shape[0]):
            raise chain.error(node, f"the bias has {c.size} values for {weight.shape[0]} "
                                    "outputs (the file is damaged)")
        bias = np.zeros(weight.shape[0]) if c is None else \
            np.broadcast_to(c * attrs.get("beta", 1.0), (1, weight.shape[0])).reshape(-1)
        chain.add_dense(weight, bias, name)
        chain.bias_folded = c is not None
    elif op == "MatMul":
        w = _constant(node, constants, 1)
        if w is None:
            raise chain.error(node, "the weight must be the second operand (x @ W)")
        if w.ndim != 2:
            raise chain.error(node, f"the weight must be 2-D, got shape {w.shape}")
        chain.add_dense(w.T, np.zeros(w.shape[1]), name)
    elif op == "Add":
        bias = next(np.asarray(constants[i], np.float64) for i in node.input if i in constants)
        layer = chain.pending
        if layer is None or chain.bias_folded or layer.activation != "none":
            raise chain.error(node, "an Add is supported only as the bias right after MatMul")
        try:
            layer.bias = layer.bias + np.broadcast_to(bias, (1, len(layer.bias))).reshape(-1)
        except ValueError:
            raise chain.error(node, f"bias of shape {bias.shape} does not match "
                                    f"{len(layer.bias)} outputs") from None
        chain.bias_folded = True
    elif op == "BatchNormalization":
        _fold_batchnorm(chain, node, constants, attrs)
    elif op in ("Relu", "Clip"):
        if chain.pending is None:
            raise chain.error(node, "an activation on the network input is not supported")
        activation = "relu" if op == "Relu" else _clip_activation(chain, node, constants, attrs)
        if chain.pending.activation == "none" or activation == "relu6":
            chain.pending.activation = activation
    elif op in ("Flatten", "Reshape"):
        if chain.pending is not None or chain.layers:
            raise chain.error(node, f"{op} is supported only on the network input")
        if op == "Flatten" and attrs.get("axis", 1) != 1:
            raise chain.error(node, "only Flatten with axis=1 (samples × features) is supported")
        if op == "Reshape":
            shape = _constant(node, constants, 1)
            if shape is None or len(shape) != 2 or shape[1] == 0:
                raise chain.error(node, "only a Reshape to (samples, features) is supported")


def _fold_batchnorm(chain: _Chain, node, constants: dict, attrs: dict) -> None:
    """``γ·(y − μ)/√(σ² + ε) + β`` folded into the layer before it; ``β`` and ``|γ|`` are kept
    as the pre-activation's statistics for data-free calibration."""
    layer = chain.pending
    if layer is None or layer.activation != "none":
        raise chain.error(node, "a BatchNormalization is supported only right after a Gemm or "
                                "MatMul (+ Add)")
    gamma, beta, mean, var = (_constant(node, constants, i) for i in range(1, 5))
    n = len(layer.bias)
    if any(v is None or v.shape != (n,) for v in (gamma, beta, mean, var)):
        raise chain.error(node, f"scale, bias, mean and variance must be constants of shape "
                                f"({n},)")
    factor = gamma / np.sqrt(var + attrs.get("epsilon", 1e-5))
    chain.pending = DenseLayer(layer.weight * factor[:, None], (layer.bias - mean) * factor + beta,
                               "none", name=layer.name, preact_stats=(beta, np.abs(gamma)))
    chain.bias_folded = True


def _clip_activation(chain: _Chain, node, constants: dict, attrs: dict) -> str:
    lo = _constant(node, constants, 1)
    hi = _constant(node, constants, 2)
    lo = float(attrs.get("min", -np.inf) if lo is None else lo)
    hi = float(attrs.get("max", np.inf) if hi is None else hi)
    if lo == 0.0 and hi == 6.0:
        return "relu6"
    if lo == 0.0 and np.isinf(hi):
        return "relu"
    raise chain.error(node, f"Clip({lo:g}, {hi:g}) is not supported: only Clip(0, 6) (ReLU6) "
                            "and Clip(0, inf) (ReLU)")
