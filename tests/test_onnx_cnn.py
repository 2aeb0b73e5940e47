"""Float ONNX CNNs → the float operator graph (NHWC, TFLite kinds) → the int8 graph.

Every operator mapping is checked on a graph built with onnx.helper against onnx's own
reference evaluator (float32, hence ~1e-5), then quantized and run on the golden kernels (which
raise where TFLite's constraints — shared pooling/concatenation parameters, softmax output
scale — are broken). The PyTorch-trained digits CNN (scripts/make_digits_cnn_onnx.py) goes
through `mxugen quantize` and `mxugen sim --golden`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from mxugen.cli import main
from quantizer import QuantizerError
from quantizer.float_graph import conform_input, run_float
from quantizer.graph import Graph
from quantizer.importers import load_float, load_float_graph, load_float_model
from quantizer.network import FloatNetwork
from quantizer.quantize_graph import quantize_graph, run_quantized, tensor_errors
from quantizer.report import accuracy, sqnr_db

DIGITS_CNN = Path(__file__).parent / "models" / "digits_cnn.onnx"


class Net:
    """An ONNX graph under construction: random constants, nodes in order."""

    def __init__(self, rng, shape=(1, 3, 8, 8)):
        self.rng, self.shape = rng, shape
        self.nodes, self.inits, self.count = [], [], 0

    def const(self, value, name=None) -> str:
        self.count += 1
        name = name or f"c{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op, inputs, **attrs) -> str:
        self.count += 1
        out = f"{op.lower()}{self.count}"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=f"n{self.count}",
                                           **attrs))
        return out

    def conv(self, x, cin, cout, k=3, group=1, bias=True, **attrs) -> str:
        w = self.const(self.rng.normal(0, 0.4, (cout, cin // group, k, k)))
        inputs = [x, w] + ([self.const(self.rng.normal(0, 0.2, cout))] if bias else [])
        return self.node("Conv", inputs, group=group, **attrs)

    def bn(self, x, c, *, shift=None) -> str:
        """BatchNormalization with random statistics; ``shift``, its beta, when given."""
        beta = self.rng.normal(0, 0.3, c) if shift is None else shift
        stats = [self.rng.uniform(0.5, 1.5, c), beta,
                 self.rng.normal(0, 0.3, c), self.rng.uniform(0.5, 2.0, c)]
        return self.node("BatchNormalization", [x, *map(self.const, stats)], epsilon=1e-5)

    def gemm(self, x, cin, cout) -> str:
        return self.node("Gemm", [x, self.const(self.rng.normal(0, 0.3, (cout, cin))),
                                  self.const(self.rng.normal(0, 0.1, cout))], transB=1)

    def model(self, out, opset=17):
        graph = helper.make_graph(
            self.nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                              ["N", *self.shape[1:]])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return onnx.shape_inference.infer_shapes(model)   # gives the output its shape


def conv_same(n):
    return n.conv("x", 3, 4, pads=[1, 1, 1, 1]), ["CONV_2D"], {"padding": "SAME"}


def conv_valid_stride2(n):
    return n.conv("x", 3, 4, strides=[2, 2]), ["CONV_2D"], {"padding": "VALID"}


def conv_stride2_same_upper(n):   # TFLite's SAME at stride 2 pads (0, 1)
    return n.conv("x", 3, 4, strides=[2, 2], pads=[0, 0, 1, 1]), ["CONV_2D"], \
        {"padding": "SAME"}


def conv_auto_pad(n):
    y = n.conv("x", 3, 4, auto_pad="SAME_UPPER", strides=[2, 2])
    return n.conv(y, 4, 4, auto_pad="SAME_LOWER", strides=[2, 2]), \
        ["CONV_2D", "PAD", "CONV_2D"], {}


def conv_asymmetric_pads(n):
    return n.conv("x", 3, 4, pads=[0, 1, 2, 1]), ["PAD", "CONV_2D"], {"padding": "VALID"}


def conv_dilated(n):
    return n.conv("x", 3, 4, dilations=[2, 2], pads=[2, 2, 2, 2], bias=False), ["CONV_2D"], \
        {"padding": "SAME", "dilation": (2, 2)}


def depthwise(n):
    y = n.conv("x", 3, 3, group=3, pads=[1, 1, 1, 1])
    return n.node("Relu", [y]), ["DEPTHWISE_CONV_2D"], {"activation": "RELU"}


def depthwise_multiplier2_stride2(n):
    return n.conv("x", 3, 6, group=3, strides=[2, 2], pads=[0, 0, 1, 1]), \
        ["DEPTHWISE_CONV_2D"], {"depth_multiplier": 2, "padding": "SAME"}


def batchnorm_folded(n):
    y = n.bn(n.conv("x", 3, 4, pads=[1, 1, 1, 1], bias=False), 4)
    y = n.node("Clip", [y, n.const(0.0), n.const(6.0)])
    return y, ["CONV_2D"], {"activation": "RELU6"}


def batchnorm_standalone(n):   # after an Add: a 1x1 depthwise convolution
    y = n.conv("x", 3, 3, pads=[1, 1, 1, 1])
    return n.bn(n.node("Add", ["x", y]), 3), ["CONV_2D", "ADD", "DEPTHWISE_CONV_2D"], {}


def pools(n):
    y = n.node("Relu", [n.conv("x", 3, 4, pads=[1, 1, 1, 1])])
    y = n.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    y = n.node("AveragePool", [y], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return n.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2]), \
        ["CONV_2D", "PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D"], {}


def maxpool_same_on_signed_input(n):   # padded taps never win, even over negative values
    return n.node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 1, 1]), \
        ["MAX_POOL_2D"], {"padding": "SAME"}


def avgpool_counting_padding(n):
    y = n.node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
               count_include_pad=1)
    return y, ["PAD", "AVERAGE_POOL_2D"], {"padding": "VALID"}


def global_pools(n):
    y = n.conv("x", 3, 4, pads=[1, 1, 1, 1])
    a = n.node("GlobalAveragePool", [y])
    m = n.node("GlobalMaxPool", [y])
    return n.node("Add", [a, m]), ["CONV_2D", "MEAN", "MAX_POOL_2D", "ADD"], {}


def residual(n):   # `a` is read by the second conv and by the Add
    a = n.node("Relu", [n.conv("x", 3, 4, pads=[1, 1, 1, 1])])
    s = n.node("Relu", [n.node("Add", [a, n.conv(a, 4, 4, pads=[1, 1, 1, 1])])])
    y = n.node("Flatten", [n.node("GlobalAveragePool", [s])])
    return n.node("Softmax", [n.gemm(y, 4, 5)]), \
        ["CONV_2D", "CONV_2D", "ADD", "MEAN", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"], {}


def concat(n):
    a = n.node("Relu", [n.conv("x", 3, 2, pads=[1, 1, 1, 1])])
    b = n.conv("x", 3, 3, k=1)
    y = n.node("Concat", [a, "x", b], axis=1)
    return n.conv(y, 8, 4, k=1), ["CONV_2D", "CONV_2D", "CONCATENATION", "CONV_2D"], \
        {"axis": 3}


def flatten_gemm(n):   # NCHW flatten order → the FC's columns are permuted
    y = n.node("Flatten", [n.conv("x", 3, 4, strides=[2, 2])])
    return n.gemm(y, 4 * 3 * 3, 5), ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"], {}


def reshape_matmul_add_softmax(n):
    y = n.node("Reshape", [n.conv("x", 3, 2, strides=[2, 2]), _shape(n, [0, -1])])
    y = n.node("MatMul", [y, n.const(n.rng.normal(0, 0.3, (18, 6)))])
    y = n.node("Add", [y, n.const(n.rng.normal(0, 0.1, 6))])
    return n.node("Softmax", [y], axis=-1), \
        ["CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"], {}


def _shape(n, values) -> str:
    n.count += 1
    n.inits.append(numpy_helper.from_array(np.array(values, np.int64), f"shape{n.count}"))
    return f"shape{n.count}"


def clip_n1_to_1_and_pad_mean(n):
    y = n.node("Clip", [n.conv("x", 3, 4), n.const(-1.0), n.const(1.0)])
    y = n.node("Pad", [y, _shape(n, [0, 0, 1, 0, 0, 0, 2, 1])])
    return n.node("ReduceMean", [y], axes=[2, 3], keepdims=1), \
        ["CONV_2D", "PAD", "MEAN"], {"keep_dims": True}


def bn_after_gemm_and_constant_add(n):
    y = n.node("Flatten", [n.node("GlobalAveragePool", ["x"])])
    # A positive shift: a global average of noise barely varies, so with a random one every
    # channel could sit below 0, the ReLU's output be 0 throughout, and the quantizer rightly
    # refuse its zero range (1 seed in 60 or so).
    y = n.node("Relu", [n.bn(n.gemm(y, 3, 6), 6, shift=n.rng.uniform(0.5, 1.5, 6))])
    return n.node("Add", [y, n.const(n.rng.normal(0, 0.5, 6))]), \
        ["MEAN", "RESHAPE", "FULLY_CONNECTED", "ADD"], {}


CASES = [conv_same, conv_valid_stride2, conv_stride2_same_upper, conv_auto_pad,
         conv_asymmetric_pads, conv_dilated, depthwise, depthwise_multiplier2_stride2,
         batchnorm_folded, batchnorm_standalone, pools, maxpool_same_on_signed_input,
         avgpool_counting_padding, global_pools, residual, concat, flatten_gemm,
         reshape_matmul_add_softmax, clip_n1_to_1_and_pad_mean, bn_after_gemm_and_constant_add]


def _build(case, seed, tmp_path):
    n = Net(np.random.default_rng(seed))
    out, kinds, options = case(n)
    model = n.model(out)
    onnx.save(model, tmp_path / "net.onnx")
    return model, load_float_graph(tmp_path / "net.onnx"), kinds, options


def _reference(model, x_nchw: np.ndarray) -> np.ndarray:
    y = ReferenceEvaluator(model).run(None, {"x": x_nchw.astype(np.float32)})[0]
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y   # the graph's outputs are NHWC


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_float_graph_matches_onnx_reference(case, seed, tmp_path):
    model, graph, kinds, options = _build(case, seed, tmp_path)
    assert [op.kind for op in graph.operators] == kinds
    last = next(op for op in reversed(graph.operators) if op.kind == kinds[-1])
    for key, value in options.items():
        assert any(op.options.get(key) == value for op in graph.operators), (key, value)
    assert last.outputs[0] in graph.outputs
    x = np.random.default_rng(seed + 1).normal(0, 1, (5, 3, 8, 8))
    reference = _reference(model, x)
    y = run_float(graph, x)                              # NCHW samples, transposed
    np.testing.assert_array_equal(y, run_float(graph, x.transpose(0, 2, 3, 1)))   # NHWC
    assert y.shape == reference.shape
    assert np.abs(y - reference).max() <= 1e-5 * max(1.0, np.abs(reference).max())


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_every_mapping_quantizes_and_runs_on_the_golden_kernels(case, seed, tmp_path):
    """The golden kernels refuse what TFLite refuses (pooling, reshape, pad and concatenation
    that rescale, a softmax output other than 1/256), so running them checks the constraints;
    the int8 outputs must follow the float ones."""
    _, graph, _, _ = _build(case, seed, tmp_path)
    rng = np.random.default_rng(seed + 2)
    calib = rng.normal(0, 1, (64, 8, 8, 3))
    x = calib[:32]   # inside the calibrated ranges: the SQNR measures rounding, not clipping
    for per_channel in (True, False):
        q = quantize_graph(graph, calib, per_channel=per_channel, progress=False)
        assert q.input.dtype == "int8" and q.tensors[q.outputs[0]].dtype == "int8"
        values = run_quantized(q, x, all_tensors=True)
        for runtime in ("litert", "tflm"):
            run_quantized(q, x, runtime=runtime)
        for op in q.operators:
            ins = [q.tensors[n] for n in op.inputs if n and not q.tensors[n].is_constant]
            out = q.tensors[op.outputs[0]]
            if op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD", "CONCATENATION"):
                assert all((t.scalar_scale, t.zp) == (out.scalar_scale, out.zp) for t in ins)
            if op.kind == "SOFTMAX":
                assert (out.scalar_scale, out.zp) == (1 / 256, -128)
            if op.kind in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D"):
                w = q.tensors[op.inputs[1]]
                assert w.per_channel == (per_channel and w.shape[w.axis or 0] > 1)
                assert w.zp == 0 and np.abs(w.data).max() <= 127
        saved = Graph.load(q.save(tmp_path / f"int8_{per_channel}"))   # the folder format
        np.testing.assert_array_equal(run_quantized(saved, x), values[q.outputs[0]])
        output = q.tensors[q.outputs[0]]
        ratio = sqnr_db(run_float(graph, x), output.dequantize(values[q.outputs[0]]))
        assert ratio > 25, f"output SQNR {ratio:.1f} dB"


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]     # NHWC
    return train_test_split(images, digits.target, test_size=0.25, random_state=0,
                            stratify=digits.target)


@pytest.fixture(scope="module")
def digits():
    return _digits()


def test_digits_cnn_imports_as_the_expected_graph():
    graph = load_float(DIGITS_CNN)
    assert isinstance(graph, Graph)
    assert [op.kind for op in graph.operators] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "ADD", "RESHAPE",
        "FULLY_CONNECTED"]
    assert [op.activation for op in graph.operators] == [
        "RELU", "RELU6", "RELU", "NONE", "RELU", "NONE", "NONE", "NONE"]   # BN folded
    assert graph.inputs == ["image"] and graph.outputs == ["logits"]
    onnx_values = {o for node in onnx.load(DIGITS_CNN).graph.node for o in node.output}
    assert all(op.outputs[0] in onnx_values for op in graph.operators)   # the file's names
    assert graph.input.shape == (1, 8, 8, 1)
    assert DIGITS_CNN.stat().st_size < 60_000


def test_digits_cnn_int8_accuracy_within_1_5_points_of_float(digits):
    x_train, x_test, _, y_test = digits
    float_graph = load_float_graph(DIGITS_CNN)
    import onnxruntime
    session = onnxruntime.InferenceSession(str(DIGITS_CNN), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"image": x_test.transpose(0, 3, 1, 2)})[0]
    float_scores = run_float(float_graph, x_test)
    np.testing.assert_allclose(float_scores, reference, rtol=1e-4, atol=1e-4)
    graph = quantize_graph(float_graph, x_train, per_channel=True, progress=False)
    float_acc = accuracy(float_scores, y_test)
    int8_acc = accuracy(run_quantized(graph, x_test), y_test)
    print(f"digits CNN: float {float_acc:.2f}%  int8 per-channel {int8_acc:.2f}%")
    assert float_acc > 95 and abs(int8_acc - float_acc) <= 1.5
    rows = tensor_errors(float_graph, graph, x_test)
    assert [r["tensor"] for r in rows] == [op.outputs[0] for op in graph.operators]
    assert min(r["sqnr_db"] for r in rows) > 30


def test_low_bit_weights_on_the_digits_cnn(digits, tmp_path, capsys):
    """`--bits` on a CNN graph: every layer with weights holds them in its format, recorded on
    the operator, and the size report counts them packed; per channel, asymmetric ternary
    weights keep accuracy that symmetric ternary ones lose on this model."""
    x_train, x_test, _, y_test = digits
    np.savez(tmp_path / "calib.npz", image=x_train)
    np.savez(tmp_path / "test.npz", image=x_test.transpose(0, 3, 1, 2), labels=y_test)
    reports = {}
    for bits in ("8", "ternary", "ternary_asym"):
        assert main(["quantize", str(DIGITS_CNN), "--calib", str(tmp_path / "calib.npz"),
                     "--per-channel", "--bits", bits, "--eval", str(tmp_path / "test.npz"),
                     "--json", "-o", str(tmp_path / bits)]) == 0
        reports[bits] = json.loads(capsys.readouterr().out)
        graph = Graph.load(tmp_path / bits)
        weighted = [op for op in graph.operators
                    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
        assert len(weighted) == 5
        for op in weighted:
            assert op.options["weight_format"] == {"8": "int8"}.get(bits, bits)
            tensor = graph.tensor(op.inputs[1])
            channels = np.moveaxis(tensor.data.astype(int), tensor.axis, 0)
            for levels in (np.unique(c) for c in channels.reshape(len(channels), -1)):
                if bits == "ternary":
                    assert set(levels) <= {-1, 0, 1}
                elif bits == "ternary_asym":   # at most one negative and one positive level
                    assert np.sum(levels < 0) <= 1 and np.sum(levels > 0) <= 1
                    assert np.abs(levels).max() <= 7
    sizes = {bits: r["size"]["quantized_bytes"] for bits, r in reports.items()}
    assert sizes["ternary"] < sizes["ternary_asym"] < sizes["8"]
    acc = {bits: r["accuracy"]["int8"] for bits, r in reports.items()}
    print(f"digits CNN per channel: {acc}")
    assert acc["ternary_asym"] > acc["ternary"] + 5


def test_quantize_and_sim_cli_on_the_digits_cnn(digits, tmp_path, capsys):
    """`mxugen quantize` writes the graph folder; `mxugen sim --golden --float-input` gives
    exactly Graph.run's outputs, and the accuracy the quantize report printed."""
    x_train, x_test, _, y_test = digits
    np.savez(tmp_path / "calib.npz", image=x_train)
    np.savez(tmp_path / "test.npz", image=x_test.transpose(0, 3, 1, 2), labels=y_test)  # NCHW
    np.save(tmp_path / "x.npy", x_test)
    assert main(["quantize", str(DIGITS_CNN), "--calib", str(tmp_path / "calib.npz"),
                 "--per-channel", "--eval", str(tmp_path / "test.npz"), "--json",
                 "-o", str(tmp_path / "net")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in report["tensors"]][-1] == "FULLY_CONNECTED"
    assert all(r["sqnr_db"] > 30 for r in report["tensors"])
    assert main(["sim", str(tmp_path / "net"), "--golden", "--float-input", "--input",
                 str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    graph = Graph.load(tmp_path / "net")
    np.testing.assert_array_equal(y, graph.run(graph.input.quantize(x_test)))
    assert round(accuracy(y, y_test), 2) == report["accuracy"]["int8"]
    assert abs(report["accuracy"]["int8"] - report["accuracy"]["float"]) <= 1.5
    assert report["settings"]["per_channel"] is True


def test_dense_only_options_are_refused_for_cnn_graphs(digits, tmp_path, capsys):
    np.savez(tmp_path / "calib.npz", image=digits[0][:50])
    for extra in (["--equalize"], ["--bias-correction"], ["--plot"],
                  ["--clamp-std", "3"], ["--rounding", "double"]):
        assert main(["quantize", str(DIGITS_CNN), "--calib", str(tmp_path / "calib.npz"),
                     *extra, "-o", str(tmp_path / "net")]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and extra[0] in err and "dense-chain" in err, err
    assert main(["quantize", str(DIGITS_CNN), "--input-range", "0,1", "-o",
                 str(tmp_path / "net")]) == 2
    assert "--input-range" in capsys.readouterr().err
    assert not (tmp_path / "net").exists()


def test_unsupported_operators_listed_with_counts(seed, tmp_path, capsys):
    n = Net(np.random.default_rng(seed))
    y = n.node("Sigmoid", [n.conv("x", 3, 4)])
    y = n.node("Sigmoid", [n.node("Tanh", [y])])
    model = n.model(n.node("Relu", [y]))
    onnx.save(model, tmp_path / "bad.onnx")
    np.savez(tmp_path / "calib.npz", x=np.zeros((2, 8, 8, 3)))
    assert main(["quantize", str(tmp_path / "bad.onnx"), "--calib", str(tmp_path / "calib.npz"),
                 "-o", str(tmp_path / "net")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "unsupported ONNX operators: Sigmoid ×2, Tanh ×1" in err
    assert "Conv" in err.split("supported:")[1]   # the registry's list


@pytest.mark.parametrize("build, message", [
    (lambda n: n.node("Relu", [n.node("Concat", ["x", "x"], axis=1)]),
     "standalone Relu after CONCATENATION"),
    (lambda n: n.node("Relu", ["x"]), "standalone Relu on the graph input"),
    (lambda n: n.conv(n.conv("x", 3, 6, k=1), 6, 4, group=2), "grouped convolution"),
    (lambda n: n.node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                      pads=[1, 1, 1, 1]), "counts only real taps"),
    (lambda n: n.node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                      pads=[1, 1, 1, 1]), "only a ReLU'd input"),
    (lambda n: n.node("Clip", [n.conv("x", 3, 4), n.const(0.0), n.const(2.0)]), "Clip(0, 2)"),
    (lambda n: n.node("Transpose", [n.conv("x", 3, 4)], perm=[0, 2, 3, 1]),
     "unsupported ONNX operators: Transpose ×1"),
])
def test_unmappable_graphs_are_refused_in_one_line(seed, tmp_path, build, message):
    n = Net(np.random.default_rng(seed))
    onnx.save(n.model(build(n)), tmp_path / "bad.onnx")
    with pytest.raises(QuantizerError) as info:
        load_float_graph(tmp_path / "bad.onnx")
    assert "\n" not in str(info.value) and message in str(info.value), str(info.value)


def test_input_layouts(seed, tmp_path):
    """NHWC is the graph's layout; NCHW samples are transposed when the shape says so; flat
    rows only where the two orders agree (one channel)."""
    _, graph, _, _ = _build(conv_same, seed, tmp_path)
    x = np.random.default_rng(seed).normal(size=(4, 3, 8, 8))
    np.testing.assert_array_equal(conform_input(graph, x), x.transpose(0, 2, 3, 1))
    with pytest.raises(QuantizerError, match=r"\(samples, 8, 8, 3\) or NCHW \(samples, 3, 8, 8"):
        conform_input(graph, x.reshape(4, -1))
    gray = load_float_graph(DIGITS_CNN)
    flat = np.random.default_rng(seed).uniform(size=(3, 64))
    np.testing.assert_array_equal(conform_input(gray, flat), flat.reshape(3, 8, 8, 1))
    # The int8 graph keeps the rule: integer NCHW samples run as their NHWC transpose.
    int8 = quantize_graph(graph, x.transpose(0, 2, 3, 1), progress=False)
    q = int8.input.quantize(x)
    np.testing.assert_array_equal(int8.run(q), int8.run(q.transpose(0, 2, 3, 1)))
    with pytest.raises(QuantizerError, match=r"or NCHW \(samples, 3, 8, 8\)"):
        int8.run(q.reshape(4, -1))


def test_dense_chains_keep_the_dense_path(tmp_path):
    """An MLP of Gemm + Relu stays a FloatNetwork (equalization, bias correction, data-free,
    low-bit weights); the same MLP ending in a Softmax is a graph."""
    rng = np.random.default_rng(0)
    n = Net(rng, shape=(1, 12))
    y = n.node("Relu", [n.gemm("x", 12, 8)])
    y = n.gemm(y, 8, 4)
    onnx.save(n.model(y), tmp_path / "mlp.onnx")
    assert isinstance(load_float(tmp_path / "mlp.onnx"), FloatNetwork)
    assert isinstance(load_float_model(tmp_path / "mlp.onnx"), FloatNetwork)
    model = n.model(n.node("Softmax", [y], axis=-1))
    onnx.save(model, tmp_path / "softmax.onnx")
    graph = load_float(tmp_path / "softmax.onnx")
    assert isinstance(graph, Graph)
    assert [op.kind for op in graph.operators] == ["FULLY_CONNECTED", "FULLY_CONNECTED",
                                                   "SOFTMAX"]
    x = rng.normal(size=(6, 12))
    np.testing.assert_allclose(run_float(graph, x), _reference(model, x), rtol=1e-5, atol=1e-6)
    with pytest.raises(QuantizerError, match="without its final Softmax"):
        load_float_model(tmp_path / "softmax.onnx")
