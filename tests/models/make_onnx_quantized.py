"""Build the small quantized ONNX models ``onnx_*.onnx`` in this folder.

Runs in the project's own Python (``onnx`` and ``onnxruntime``; no TensorFlow)::

    python tests/models/make_onnx_quantized.py            # all models
    python tests/models/make_onnx_quantized.py residual   # only the models whose name has this

Each model is a small float CNN written with ``onnx.helper`` (NCHW, batch dimension ``N``,
opset 17) with weights and biases from a fixed-seed generator, quantized by ONNX Runtime's
``quantize_static`` (MinMax calibration on 32 fixed-seed random inputs) in the QDQ format
(``QuantizeLinear``/``DequantizeLinear`` around float operators) and the QOperator format
(``QLinearConv``, ``QGemm``, ``QLinearAdd``, …), with per-channel and per-tensor weights.
Activations are ONNX Runtime's default int8 unless the file name says ``u8``: uint8
activations with int8 weights reduced to 7 bits (``reduce_range``), because ONNX Runtime's U8S8
kernels on x86 without VNNI saturate int16 pair sums with full 8-bit weights (measured: up to
66 steps off the exact result) and the comparison would measure that. ``keeprelu`` keeps the
``Relu`` nodes the QDQ quantizer otherwise folds into the preceding operator's output range
(``QDQKeepRemovableActivations``).

The script rewrites the "Quantized ONNX models" section at the end of ``README.md`` (and only
that section). Same onnx/onnxruntime versions, same bytes.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
SECTION = "## Quantized ONNX models"
CALIBRATION_SAMPLES = 32
OPSET = 17


class _Net:
    """A float ONNX graph under construction: nodes, initializers, the current tensor."""

    def __init__(self, name: str, shape: tuple[int, ...], seed: int):
        self.name, self.shape = name, shape
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count = Counter()

    def _new(self, kind: str) -> str:
        self.count[kind] += 1
        return f"{kind}{self.count[kind]}"

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        out = self._new(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, *, group: int = 1, **attrs) -> str:
        fan_in = cin // group * k * k
        # Per-output-channel magnitudes vary, so per-channel scales differ from per-tensor.
        gain = self.rng.uniform(0.3, 1.5, (cout, 1, 1, 1))
        w = self.rng.standard_normal((cout, cin // group, k, k)) * gain / np.sqrt(fan_in)
        b = self.rng.standard_normal(cout) * 0.1
        name = self._new("conv")
        return self.node("Conv", [x, self.const(f"{name}.weight", w),
                                  self.const(f"{name}.bias", b)], group=group, **attrs)

    def gemm(self, x: str, k: int, n: int) -> str:
        """A PyTorch-style Linear: Gemm with weights (n, k) and transB=1."""
        gain = self.rng.uniform(0.3, 1.5, (n, 1))
        w = self.rng.standard_normal((n, k)) * gain / np.sqrt(k)
        name = self._new("fc")
        return self.node("Gemm", [x, self.const(f"{name}.weight", w),
                                  self.const(f"{name}.bias", self.rng.standard_normal(n) * 0.1)],
                         transB=1)

    def matmul_add(self, x: str, k: int, n: int) -> str:
        """A TensorFlow-style dense layer: MatMul with weights (k, n), then Add of the bias."""
        w = self.rng.standard_normal((k, n)) / np.sqrt(k)
        name = self._new("dense")
        y = self.node("MatMul", [x, self.const(f"{name}.weight", w)])
        return self.node("Add", [y, self.const(f"{name}.bias", self.rng.standard_normal(n) * 0.1)])

    def relu(self, x: str) -> str:
        return self.node("Relu", [x])

    def relu6(self, x: str) -> str:
        name = self._new("clip")
        return self.node("Clip", [x, self.const(f"{name}.min", 0.0),
                                  self.const(f"{name}.max", 6.0)])

    def model(self, output: str, out_shape: list) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *self.shape])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, ["N", *out_shape])],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="mxugen tests/models/make_onnx_quantized.py")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


# ------------------------------------------------------------------------------ the networks

def conv_relu() -> tuple[onnx.ModelProto, str]:
    n = _Net("conv_relu", (3, 10, 10), 1)
    x = n.relu(n.conv("input", 3, 8, 3, pads=[1, 1, 1, 1]))                     # SAME
    x = n.relu(n.conv(x, 8, 8, 3, strides=[2, 2], pads=[0, 0, 1, 1]))          # SAME, stride 2
    x = n.conv(x, 8, 6, 3, pads=[2, 1, 0, 1])                                   # → PAD + VALID
    return n.model(x, [6, 5, 5]), "conv 3x3 SAME relu, stride-2 SAME relu, asymmetric pads"


def depthwise() -> tuple[onnx.ModelProto, str]:
    n = _Net("depthwise", (3, 10, 10), 2)
    x = n.relu(n.conv("input", 3, 8, 1))
    x = n.relu6(n.conv(x, 8, 8, 3, group=8, pads=[1, 1, 1, 1]))                  # depthwise
    x = n.relu(n.conv(x, 8, 16, 3, group=8, strides=[2, 2]))                     # multiplier 2
    x = n.conv(x, 16, 8, 1)
    return n.model(x, [8, 4, 4]), "1x1, depthwise 3x3 SAME relu6, depthwise x2 VALID/2, 1x1"


def pools() -> tuple[onnx.ModelProto, str]:
    n = _Net("pools", (3, 12, 12), 3)
    x = n.relu(n.conv("input", 3, 8, 3, pads=[1, 1, 1, 1]))
    x = n.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = n.node("AveragePool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1])       # SAME
    x = n.conv(x, 8, 8, 1)
    x = n.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])         # VALID
    x = n.node("MaxPool", [x], kernel_shape=[2, 2], strides=[1, 1])
    return n.model(x, [8, 2, 2]), "maxpool 3x3/2 pads 1, avgpool 3x3 SAME, avgpool 2x2/2, maxpool"


def residual() -> tuple[onnx.ModelProto, str]:
    n = _Net("residual", (3, 8, 8), 4)
    x = n.relu(n.conv("input", 3, 8, 3, pads=[1, 1, 1, 1]))
    y = n.relu(n.conv(x, 8, 8, 3, pads=[1, 1, 1, 1]))
    y = n.conv(y, 8, 8, 3, pads=[1, 1, 1, 1])
    x = n.relu(n.node("Add", [y, x]))
    x = n.node("GlobalAveragePool", [x])
    x = n.node("Flatten", [x])
    return n.model(n.gemm(x, 8, 10), [10]), "residual block, Add+relu, global avg pool, Gemm"


def flatten_gemm() -> tuple[onnx.ModelProto, str]:
    n = _Net("flatten_gemm", (3, 9, 9), 5)
    x = n.relu(n.conv("input", 3, 4, 3, strides=[2, 2], pads=[1, 1, 1, 1]))    # 4x5x5
    x = n.node("Flatten", [x])                                                  # C,H,W order
    x = n.relu(n.gemm(x, 100, 16))
    return n.model(n.matmul_add(x, 16, 10), [10]), \
        "conv, NCHW Flatten → Gemm relu, MatMul + Add"


def concat() -> tuple[onnx.ModelProto, str]:
    n = _Net("concat", (3, 8, 8), 6)
    a = n.relu(n.conv("input", 3, 4, 3, pads=[1, 1, 1, 1]))
    b = n.conv("input", 3, 4, 1)
    x = n.node("Concat", [a, b], axis=1)
    return n.model(n.conv(x, 8, 6, 3, pads=[1, 1, 1, 1]), [6, 8, 8]), \
        "two conv branches, channel Concat, conv"


def swish() -> tuple[onnx.ModelProto, str]:
    n = _Net("swish", (3, 6, 6), 7)
    x = n.conv("input", 3, 4, 3, pads=[1, 1, 1, 1])
    x = n.node("Mul", [x, n.node("Sigmoid", [x])])
    return n.model(x, [4, 6, 6]), "conv, x·sigmoid(x): refused by name"


NETWORKS = {"conv_relu": conv_relu, "depthwise": depthwise, "pools": pools,
            "residual": residual, "flatten_gemm": flatten_gemm, "concat": concat,
            "swish": swish}

#: suffix → quantize_static options.
VARIANTS = {
    "qdq_pc": {"quant_format": QuantFormat.QDQ, "per_channel": True},
    "qdq_pt": {"quant_format": QuantFormat.QDQ, "per_channel": False},
    "qop_pc": {"quant_format": QuantFormat.QOperator, "per_channel": True},
    "qop_pt": {"quant_format": QuantFormat.QOperator, "per_channel": False},
    # uint8 activations × int8 weights: 7-bit weights (reduce_range), as ONNX Runtime advises
    # for x86 without VNNI, whose U8S8 kernels otherwise saturate int16 pair sums.
    "qdq_u8": {"quant_format": QuantFormat.QDQ, "per_channel": True,
               "activation_type": QuantType.QUInt8, "reduce_range": True},
    "qop_u8": {"quant_format": QuantFormat.QOperator, "per_channel": False,
               "activation_type": QuantType.QUInt8, "reduce_range": True},
    "qdq_keeprelu": {"quant_format": QuantFormat.QDQ, "per_channel": True,
                     "extra_options": {"QDQKeepRemovableActivations": True}},
}

#: Which variants of which network to write.
BUILDS = [*((net, v) for net in ("conv_relu", "depthwise", "pools", "residual", "flatten_gemm",
                                 "concat") for v in ("qdq_pc", "qdq_pt", "qop_pc", "qop_pt")),
          ("residual", "qdq_u8"), ("residual", "qop_u8"), ("flatten_gemm", "qdq_u8"),
          ("conv_relu", "qdq_keeprelu"), ("swish", "qdq_pc"), ("swish", "qop_pt")]


class _Calibration(CalibrationDataReader):
    """Fixed-seed uniform inputs in [-1, 1)."""

    def __init__(self, shape: tuple[int, ...], seed: int = 2024):
        rng = np.random.default_rng(seed)
        self.samples = iter([{"input": rng.uniform(-1, 1, (1, *shape)).astype(np.float32)}
                             for _ in range(CALIBRATION_SAMPLES)])

    def get_next(self):
        return next(self.samples, None)


def build(net: str, variant: str, folder: Path = HERE) -> tuple[Path, str]:
    model, description = NETWORKS[net]()
    shape = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:])
    target = folder / f"onnx_{net}_{variant}.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "float.onnx"
        onnx.save(model, source)
        quantize_static(str(source), str(target), _Calibration(shape), **VARIANTS[variant])
    return target, description


def _describe(path: Path) -> dict:
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    ops = Counter(n.op_type for n in model.graph.node
                  if n.op_type not in ("QuantizeLinear", "DequantizeLinear"))
    q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear")
    act = str(inits[q.input[2]].dtype) if len(q.input) > 2 else "uint8"
    row = {"ops": ", ".join(f"{k}" + (f" x{v}" if v > 1 else "") for k, v in ops.items()),
           "activations": act}
    try:
        from quantizer.importers.onnx_quantized import load_quantized_onnx
        row["graph"] = load_quantized_onnx(path).summary().replace("×", " x")
    except Exception as exc:  # noqa: BLE001 — the refused models, or an importer that fails
        row["graph"] = f"refused: {str(exc).split(': ', 2)[-1].split(' (')[0]}"
    return row


INTRO = (
    "Quantized by ONNX Runtime {ort} (onnx {onnx}) from small float CNNs written with "
    "`onnx.helper` by `make_onnx_quantized.py`, which runs in the project's Python "
    "(`python tests/models/make_onnx_quantized.py`) and rewrites this section.  Inputs are NCHW "
    "float `(N, C, H, W)`, quantized by the model's first `QuantizeLinear`; the output is the "
    "last `DequantizeLinear`'s.  `quantize_static` with MinMax calibration on 32 fixed-seed "
    "uniform [-1, 1) inputs; weights int8 symmetric.  Variants: `qdq` QuantizeLinear/"
    "DequantizeLinear around float operators, `qop` QOperator format (`QLinearConv`, `QGemm`, "
    "`QLinearAdd`, ...); `pc` per-channel weights, `pt` per-tensor; `u8` uint8 activations with "
    "int8 weights reduced to 7 bits (`reduce_range`: ONNX Runtime's U8S8 kernels saturate int16 "
    "sums on x86 without VNNI); `keeprelu` keeps the `Relu` nodes the QDQ quantizer otherwise "
    "folds into the previous output's range.  The graph column is what "
    "`quantizer.importers.onnx_quantized` makes of the file.")

NOTES = """
`tests/test_onnx_quantized.py` runs each model through the golden model and ONNX Runtime
(CPU, default optimizations except `QDQS8ToU8Transformer`, which on x86 without VNNI turns int8
QDQ groups into U8S8 kernels that saturate: up to 42 steps off on these models).  Operator by
operator (each fed ONNX Runtime's own integer inputs) every output is within one step; at least
99 % are identical for convolutions, depthwise, fully connected, ADD, max pooling,
concatenation and reshape.  Average pooling (ties: TFLite rounds them away from zero on the raw
integers, ONNX Runtime to even), MEAN (TFLite's double-rounding multiplier) and the QUANTIZE
the importer adds after a rescaling pool agree less often (85 %, 89 %, 69 % at worst), still
within one step.  End to end the differences spread through the layers: at most two steps.
"""


def _write_readme(rows: list[tuple[Path, str, str, str]]) -> None:
    lines = [
        SECTION, "", INTRO.format(ort=onnxruntime.__version__, onnx=onnx.__version__), "",
        ("| file | bytes | format | weights | activations | ONNX operators | graph operators "
         "| exercises |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for path, variant, description, _ in rows:
        info = _describe(path)
        fmt = "QOperator" if variant.startswith("qop") else "QDQ"
        weights = "per-tensor" if variant.endswith("_pt") or variant == "qop_u8" \
            else "per-channel"
        lines.append(f"| `{path.name}` | {path.stat().st_size} | {fmt} | {weights} | "
                     f"{info['activations']} | {info['ops']} | {info['graph']} | "
                     f"{description} |")
    text = README.read_text() if README.exists() else ""
    head = text.split(f"\n{SECTION}\n")[0].rstrip("\n") if f"\n{SECTION}\n" in text \
        else text.rstrip("\n")
    README.write_text(head + "\n\n" + "\n".join(lines) + "\n" + NOTES)


def main(argv: list[str]) -> None:
    logging.getLogger().setLevel(logging.ERROR)  # quantize_static's pre-processing advice
    onnxruntime.set_default_logger_severity(3)
    chosen = [(net, v) for net, v in BUILDS if not argv or any(a in net for a in argv)]
    rows = []
    for net, variant in chosen:
        path, description = build(net, variant)
        rows.append((path, variant, description, net))
        print(f"{path.name}: {path.stat().st_size} bytes")
    if not argv:
        _write_readme(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
