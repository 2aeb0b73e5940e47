"""Post-training quantization of dense networks, checked on a real dataset (scikit-learn's
bundled digits) against the float model."""

from __future__ import annotations

import numpy as np
import pytest
from mxugen.demo import digits_classifier
from quantizer import QuantizerError
from quantizer.network import DenseLayer, FloatNetwork
from quantizer.graph import Graph
from quantizer.layers import dense_chain
from quantizer.quantize import quantize_network
from quantizer.report import accuracy


@pytest.fixture(scope="module")
def digits_mlp():
    task = digits_classifier(seed=0)
    return task.net, task.x_train, task.x_test, task.y_test


@pytest.mark.parametrize("per_channel, scheme, dtype", [
    (True, "asymmetric", "int8"), (False, "asymmetric", "int8"), (True, "pow2", "int8"),
    (True, "asymmetric", "uint8"),
])
def test_int8_accuracy_within_one_point_of_float(digits_mlp, per_channel, scheme, dtype):
    net, x_train, x_test, y_test = digits_mlp
    float_acc = accuracy(net.forward(x_test), y_test)
    q = quantize_network(net, x_train, per_channel=per_channel, scheme=scheme, dtype=dtype,
                         progress=False)
    int_acc = accuracy(q.run(q.input.quantize(x_test)), y_test)
    print(f"float {float_acc:.2f}%  quantized {int_acc:.2f}%")
    assert float_acc > 90
    assert abs(int_acc - float_acc) <= 1.0


def test_every_layer_tracks_the_float_network(digits_mlp):
    """Per-layer SQNR of the dequantized integer activations against float: > 25 dB."""
    net, x_train, x_test, _ = digits_mlp
    q = quantize_network(net, x_train, progress=False)
    ints = q.run(q.input.quantize(x_test), all_tensors=True)
    floats = net.forward(x_test, all_layers=True)[1:]
    for layer, fl in zip(dense_chain(q), floats):
        deq = layer.output.scalar_scale * (ints[layer.name].astype(np.float64)
                                           - layer.output.zp)
        sqnr = 10 * np.log10(np.sum(fl ** 2) / np.sum((fl - deq) ** 2))
        assert sqnr > 25, f"{layer.name}: SQNR {sqnr:.1f} dB"


def test_pow2_scheme_needs_no_multiplier(digits_mlp):
    net, x_train, _, _ = digits_mlp
    q = quantize_network(net, x_train, scheme="pow2", progress=False)
    for layer in dense_chain(q):
        assert layer.params.rounding == "pow2" and np.all(layer.params.m0 == 1 << 30)


def test_relu_bounds_and_zero_points(digits_mlp):
    net, x_train, _, _ = digits_mlp
    q = quantize_network(net, x_train, progress=False)
    hidden = dense_chain(q)[0]
    assert hidden.op.activation == "RELU" and hidden.params.act_min == hidden.output.zp
    assert hidden.weight.dtype == np.int8 and hidden.weight.min() >= -127
    assert hidden.params.weight_zero_point == 0
    assert q.tensors[hidden.op.inputs[2]].data.dtype == np.int32


def test_saved_folder_round_trips_bit_exactly(digits_mlp, tmp_path):
    net, x_train, x_test, _ = digits_mlp
    q = quantize_network(net, x_train, progress=False)
    loaded = Graph.load(q.save(tmp_path / "net"))
    np.testing.assert_array_equal(loaded.run(loaded.input.quantize(x_test)),
                                  q.run(q.input.quantize(x_test)))
    assert sorted(p.name for p in (tmp_path / "net").iterdir()) == ["graph.json", "tensors.npz"]


def test_tiny_weights_with_large_bias_keep_the_accumulator_in_range():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 8))
    w[1] = 1e-9  # a channel that almost died in training
    net = FloatNetwork([DenseLayer(w, np.array([0.1, 5.0, -0.2]), "none")])
    q = quantize_network(net, rng.normal(size=(64, 8)), progress=False)
    assert abs(int(dense_chain(q)[0].bias[1])) <= 1 << 30
    zero = FloatNetwork([DenseLayer(np.zeros((2, 4)), np.zeros(2), "none")])
    with pytest.raises(QuantizerError, match="single point at 0"):
        quantize_network(zero, rng.normal(size=(8, 4)), progress=False)  # its output is all 0


def test_npz_round_trip_and_errors(tmp_path):
    net = FloatNetwork([DenseLayer(np.ones((3, 4)), np.zeros(3), "relu6"),
                        DenseLayer(np.ones((2, 3)), np.zeros(2))])
    net.save_npz(tmp_path / "m.npz")
    back = FloatNetwork.from_npz(tmp_path / "m.npz")
    assert [layer.activation for layer in back.layers] == ["relu6", "none"]
    np.testing.assert_array_equal(back.forward(np.ones((1, 4))), net.forward(np.ones((1, 4))))
    np.savez(tmp_path / "bad.npz", weight_0=np.ones((3, 4)))
    with pytest.raises(QuantizerError, match="'weight_0' has no matching 'bias_0'"):
        FloatNetwork.from_npz(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(QuantizerError, match="cannot read .* as .npz"):
        FloatNetwork.from_npz(tmp_path / "junk.npz")


@pytest.mark.parametrize("call, message", [
    (lambda: DenseLayer(np.full((2, 2), np.nan), np.zeros(2)), r"contain NaN or inf"),
    (lambda: DenseLayer(np.ones((2, 2)), np.zeros(3)), r"bias has shape \(3,\), expected \(2,\)"),
    (lambda: DenseLayer(np.ones((2, 2)), np.zeros(2), "gelu"), r"unknown activation 'gelu'"),
    (lambda: FloatNetwork([DenseLayer(np.ones((2, 3)), np.zeros(2)),
                           DenseLayer(np.ones((2, 5)), np.zeros(2))]),
     r"layer 0 outputs 2 values but layer 1 expects 5"),
    (lambda: quantize_network(FloatNetwork([DenseLayer(np.ones((2, 3)), np.zeros(2))]),
                              np.ones((4, 7)), progress=False),
     r"input must have shape \(samples, 3\), got \(4, 7\)"),
    (lambda: quantize_network(FloatNetwork([DenseLayer(np.ones((2, 3)), np.zeros(2))]),
                              np.ones((4, 3)), scheme="symmetric", progress=False),
     r"activation scheme must be 'asymmetric' or 'pow2'"),
])
def test_bad_networks_and_data_are_refused(call, message):
    with pytest.raises(QuantizerError, match=message):
        call()


def test_quantize_command_writes_a_network_folder(digits_mlp, tmp_path, capsys):
    from mxugen.cli import main
    net, x_train, _, _ = digits_mlp
    net.save_npz(tmp_path / "mlp.npz")
    np.savez(tmp_path / "calib.npz", pixels=x_train.reshape(-1, 8, 8))  # images are flattened
    assert main(["quantize", str(tmp_path / "mlp.npz"), "--calib", str(tmp_path / "calib.npz"),
                 "--per-channel", "--json", "-o", str(tmp_path / "net")]) == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert [row["layer"] for row in report["layers"]] == ["dense0", "dense1", "dense2"]
    assert all(row["sqnr_db"] > 25 and 0.2 < row["range_used"] <= 1 for row in report["layers"])
    assert Graph.load(tmp_path / "net").meta["settings"]["per_channel"] is True


@pytest.mark.parametrize("calib, message", [
    ({"input": np.ones((4, 64))}, "has no array named 'pixels' (the model's input); it has: input"),
    ({"pixels": np.ones((4, 63))}, r"input must have shape (samples, 64), got (4, 63)"),
])
def test_quantize_command_bad_calibration_data(digits_mlp, tmp_path, capsys, calib, message):
    from mxugen.cli import main
    digits_mlp[0].save_npz(tmp_path / "mlp.npz")
    np.savez(tmp_path / "calib.npz", **calib)
    assert main(["quantize", str(tmp_path / "mlp.npz"), "--calib", str(tmp_path / "calib.npz"),
                 "-o", str(tmp_path / "net")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "net").exists()


def test_quantize_command_data_free_low_bit_with_eval_and_plots(digits_mlp, tmp_path, capsys):
    from mxugen.cli import main
    import json
    net, _, x_test, y_test = digits_mlp
    net.save_npz(tmp_path / "mlp.npz")
    np.savez(tmp_path / "eval.npz", pixels=x_test, labels=y_test)
    assert main(["quantize", str(tmp_path / "mlp.npz"), "--input-range", "0,1", "--bits", "4",
                 "--per-channel", "--eval", str(tmp_path / "eval.npz"), "--plot", "--json",
                 "-o", str(tmp_path / "net")]) == 0
    summary = json.loads(capsys.readouterr().out)
    acc = summary["accuracy"]
    assert summary["settings"]["method"] == "data-free"
    assert abs(acc["int8"] - acc["float"]) <= 1.0
    q = Graph.load(tmp_path / "net")
    assert all(layer.weight_format == "int4" and np.abs(layer.weight).max() <= 7
               for layer in dense_chain(q))
    assert acc["int8"] == round(accuracy(q.run(q.input.quantize(x_test)), y_test), 2)
    weights = sum(layer.weight.size for layer in net.layers)
    assert summary["size"]["weight_bytes_packed"] == weights // 2
    assert summary["size"]["float32_bytes"] == 4 * (weights + sum(l.bias.size for l in net.layers))
    for path in summary["plots"]:
        assert open(path, "rb").read(4) == b"\x89PNG"


@pytest.mark.parametrize("extra, message", [
    (["--calib", "CALIB", "--input-range", "0,1"], "give either --calib"),
    ([], "give either --calib"),
    (["--input-range", "0,1", "--eval", "CALIB"], "has no 'labels' array"),
    (["--input-range", "0,1", "--bits", "4", "--dtype", "uint8"], "need an int8 network"),
])
def test_quantize_command_option_errors(digits_mlp, tmp_path, capsys, extra, message):
    from mxugen.cli import main
    digits_mlp[0].save_npz(tmp_path / "mlp.npz")
    np.savez(tmp_path / "calib.npz", pixels=digits_mlp[1])
    extra = [str(tmp_path / "calib.npz") if a == "CALIB" else a for a in extra]
    assert main(["quantize", str(tmp_path / "mlp.npz"), *extra, "-o", str(tmp_path / "net")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "net").exists()
