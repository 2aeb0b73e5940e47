"""Float ONNX import: graphs built with onnx.helper the way exporters write them, checked
against onnx's own reference evaluator (float32, hence the tolerance), and refused clearly when
they hold anything the array cannot run."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from mxugen.cli import main
from mxugen.demo import digits_classifier
from quantizer import QuantizerError
from quantizer.importers import load_float_model
from quantizer.report import accuracy


def _mlp_graph(weights, biases, *, style="gemm", activation="Relu", flatten=True,
               opset=17, extra_nodes=(), final=None):
    """An MLP as an exporter writes it: ``gemm`` (PyTorch's Gemm with transB=1), ``matmul``
    (MatMul + Add, weights stored (in, out)) or ``gemm_plain`` (transB=0 with alpha/beta)."""
    nodes, inits, cur = [], [], "x"
    if flatten:
        nodes.append(helper.make_node("Flatten", [cur], ["flat"], axis=1))
        cur = "flat"
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases)):
        w, b = np.asarray(w, np.float32), np.asarray(b, np.float32)
        if style == "gemm":
            inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
            nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"B{i}"], [f"y{i}"], transB=1))
        elif style == "gemm_plain":  # y = 0.5·x·(2W)ᵀ + 2·(b/2)
            inits += [numpy_helper.from_array(2 * w.T, f"W{i}"),
                      numpy_helper.from_array((b / 2)[None, :], f"B{i}")]
            nodes.append(helper.make_node("Gemm", [cur, f"W{i}", f"B{i}"], [f"y{i}"],
                                          alpha=0.5, beta=2.0))
        else:
            inits += [numpy_helper.from_array(w.T.copy(), f"W{i}"),
                      numpy_helper.from_array(b, f"B{i}")]
            nodes += [helper.make_node("MatMul", [cur, f"W{i}"], [f"m{i}"]),
                      helper.make_node("Add", [f"m{i}", f"B{i}"], [f"y{i}"])]
        cur = f"y{i}"
        if i < last:
            if activation == "Relu":
                nodes.append(helper.make_node("Relu", [cur], [f"a{i}"]))
            else:  # ReLU6 as Clip with min/max inputs (opset ≥ 11)
                inits += [numpy_helper.from_array(np.array(0, np.float32), f"lo{i}"),
                          numpy_helper.from_array(np.array(6, np.float32), f"hi{i}")]
                nodes.append(helper.make_node("Clip", [cur, f"lo{i}", f"hi{i}"], [f"a{i}"]))
            cur = f"a{i}"
    for op, attrs in extra_nodes:
        nodes.append(helper.make_node(op, [cur], [f"{op}_out"], **attrs))
        cur = f"{op}_out"
    in_shape = ["N", 1, 8, 8] if flatten else ["N", weights[0].shape[1]]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(final or cur, TensorProto.FLOAT, ["N", "out"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.fixture(scope="module")
def task():
    return digits_classifier(seed=0)


def _weights(task):
    return [l.weight for l in task.net.layers], [l.bias for l in task.net.layers]


@pytest.mark.parametrize("style, activation", [
    ("gemm", "Relu"), ("matmul", "Relu"), ("gemm_plain", "Relu"), ("matmul", "Clip"),
])
def test_import_matches_onnx_reference_evaluator(task, tmp_path, style, activation):
    model = _mlp_graph(*_weights(task), style=style, activation=activation)
    onnx.save(model, tmp_path / "mlp.onnx")
    net = load_float_model(tmp_path / "mlp.onnx")
    assert net.input_name == "x"
    assert [l.activation for l in net.layers] == \
        ["relu" if activation == "Relu" else "relu6"] * 2 + ["none"]
    x = task.x_test.reshape(-1, 1, 8, 8).astype(np.float32)
    reference = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(net.forward(task.x_test), reference, rtol=1e-4, atol=1e-4)


def _refusal(tmp_path, model) -> str:
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(QuantizerError) as info:
        load_float_model(tmp_path / "bad.onnx")
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("extra, message", [
    ([("Sigmoid", {})], "unsupported ONNX operator Sigmoid"),
    ([("Softmax", {"axis": 1})], "export the model without its final Softmax"),
    ([("Relu", {}), ("Clip", {})], None),  # a Clip with no bounds: not ReLU or ReLU6
])
def test_unsupported_operators_are_refused_by_name(task, tmp_path, extra, message):
    model = _mlp_graph(*_weights(task), extra_nodes=extra)
    text = _refusal(tmp_path, model)
    assert (message or "Clip(-inf, inf) is not supported") in text


def test_graphs_that_are_not_a_layer_chain_are_refused(task, tmp_path):
    model = _mlp_graph(*_weights(task))
    # A residual connection: the last layer also reads the flattened input.
    model.graph.node.append(helper.make_node("Add", ["y2", "flat"], ["sum"]))
    model.graph.output[0].name = "sum"
    assert "only a chain of layers" in _refusal(tmp_path, model)


def test_an_activation_on_the_input_is_refused(task, tmp_path):
    model = _mlp_graph(*_weights(task), flatten=False)
    model.graph.node.insert(0, helper.make_node("Relu", ["x"], ["x_relu"]))
    model.graph.node[1].input[0] = "x_relu"
    assert "activation on the network input" in _refusal(tmp_path, model)


def test_bad_model_files_are_refused(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(QuantizerError, match="not a valid ONNX model"):
        load_float_model(tmp_path / "junk.onnx")
    (tmp_path / "m.tflite").write_bytes(b"")
    with pytest.raises(QuantizerError, match="unsupported model format '.tflite'"):
        load_float_model(tmp_path / "m.tflite")
    with pytest.raises(QuantizerError, match="does not exist"):
        load_float_model(tmp_path / "missing.onnx")
    nan = _mlp_graph([np.full((4, 64), np.nan)], [np.zeros(4)])
    assert "NaN or inf" in _refusal(tmp_path, nan)


def test_onnx_mlp_through_quantize_and_sim_golden(tmp_path, capsys):
    """The acceptance path: an ONNX MLP the rest of the suite has not seen (its own seed and
    hidden sizes, MatMul + Add as dynamo exports write it) → `mxugen quantize --per-channel`
    → `mxugen sim --golden --float-input`: int8 within 1 point of float."""
    task = digits_classifier(seed=7, hidden=(40, 24))
    model = _mlp_graph([l.weight for l in task.net.layers], [l.bias for l in task.net.layers],
                       style="matmul")
    onnx.save(model, tmp_path / "mlp.onnx")
    np.savez(tmp_path / "calib.npz", x=task.x_train.reshape(-1, 1, 8, 8))
    np.save(tmp_path / "test.npy", task.x_test.reshape(-1, 1, 8, 8))
    assert main(["quantize", str(tmp_path / "mlp.onnx"), "--calib", str(tmp_path / "calib.npz"),
                 "--per-channel", "-o", str(tmp_path / "net")]) == 0
    assert main(["sim", str(tmp_path / "net"), "--golden", "--float-input",
                 "--input", str(tmp_path / "test.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    x = task.x_test.reshape(-1, 1, 8, 8).astype(np.float32)
    float_acc = accuracy(ReferenceEvaluator(model).run(None, {"x": x})[0], task.y_test)
    int8_acc = accuracy(np.load(tmp_path / "y.npy"), task.y_test)
    print(f"float {float_acc:.2f}%  int8 {int8_acc:.2f}%")
    assert float_acc > 90 and abs(int8_acc - float_acc) <= 1.0


def test_constant_expressions_on_weights_are_folded(task, tmp_path):
    """Some exporters store W as (out, in) and transpose it in the graph, or cast it: nodes
    computed from constants alone are folded, whatever their operator."""
    weights, biases = _weights(task)
    model = _mlp_graph(weights, biases, style="matmul", flatten=False)
    for i, w in enumerate(weights):
        init = next(t for t in model.graph.initializer if t.name == f"W{i}")
        init.CopyFrom(numpy_helper.from_array(w.astype(np.float16), f"W{i}_raw"))
        model.graph.node.insert(0, helper.make_node("Transpose", [f"W{i}_raw"], [f"W{i}_t"],
                                                    perm=[1, 0]))
        model.graph.node.insert(1, helper.make_node("Cast", [f"W{i}_t"], [f"W{i}"],
                                                    to=TensorProto.FLOAT))
    onnx.save(model, tmp_path / "folded.onnx")
    net = load_float_model(tmp_path / "folded.onnx")
    reference = ReferenceEvaluator(model).run(None, {"x": task.x_test.astype(np.float32)})[0]
    np.testing.assert_allclose(net.forward(task.x_test), reference, rtol=1e-3, atol=1e-3)


def test_batchnorm_is_folded_and_its_statistics_seed_data_free_ranges(task, tmp_path):
    """Gemm → BatchNormalization → Relu, as PyTorch exports Linear + BatchNorm1d in eval mode:
    folded into the Gemm, and β ± n·|γ| become the data-free range of the pre-activation."""
    from quantizer.datafree import data_free_statistics
    weights, biases = _weights(task)
    model = _mlp_graph(weights, biases, flatten=False)
    pre = task.x_train @ weights[0].T + biases[0]
    stats = {name: value.astype(np.float32).astype(np.float64) for name, value in (
        ("gamma", pre.std(axis=0) + 0.01), ("beta", pre.mean(axis=0)),
        ("mean", pre.mean(axis=0)), ("var", pre.var(axis=0)))}
    for name, value in stats.items():
        model.graph.initializer.append(numpy_helper.from_array(value.astype(np.float32),
                                                               f"bn_{name}"))
    relu = next(n for n in model.graph.node if n.op_type == "Relu")
    relu.input[0] = "bn_out"
    index = list(model.graph.node).index(relu)
    model.graph.node.insert(index, helper.make_node(
        "BatchNormalization", ["y0", "bn_gamma", "bn_beta", "bn_mean", "bn_var"], ["bn_out"],
        epsilon=1e-5))
    onnx.save(model, tmp_path / "bn.onnx")
    net = load_float_model(tmp_path / "bn.onnx")
    assert len(net.layers) == 3
    reference = ReferenceEvaluator(model).run(None, {"x": task.x_test.astype(np.float32)})[0]
    np.testing.assert_allclose(net.forward(task.x_test), reference, rtol=1e-3, atol=1e-3)
    ranges, _ = data_free_statistics(net, (0.0, 1.0), n_std=3.0)
    np.testing.assert_allclose(net.layers[0].preact_stats[1], np.abs(stats["gamma"]))
    assert ranges[1][1] <= float(np.max(stats["beta"] + 3 * stats["gamma"])) + 1e-9
