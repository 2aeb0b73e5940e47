"""TFLite import and ``mxugen sim MODEL.tflite --golden`` as a user runs them: supported and
unsupported operators, float-interface models, damaged files, ``--match`` and ``--dump``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mxugen.cli import main
from oracles import litert, tflm
from quantizer import QuantizerError
from quantizer.importers.tflite import load_tflite, supported_operators

MODELS = Path(__file__).parent / "models"


def test_unsupported_operators_are_all_named_with_their_counts():
    with pytest.raises(QuantizerError) as info:
        load_tflite(MODELS / "unsupported.tflite")
    message = str(info.value)
    assert "unsupported operators: LOGISTIC ×1, MUL ×2, TANH ×1" in message
    assert "\n" not in message and "FULLY_CONNECTED" in message.split("runs", 1)[1]


def test_the_registry_is_the_supported_list():
    assert {"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D",
            "ADD", "RESHAPE", "PAD", "CONCATENATION", "SOFTMAX", "MEAN"} <= set(
                supported_operators())


def test_float_interface_model_imports_its_int8_interior(seed):
    """QUANTIZE at the input and DEQUANTIZE at the output are the model's float edges: the
    golden model quantizes the floats as QUANTIZE does and returns the int8 LiteRT
    dequantizes."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    path = MODELS / "fc_float_io.tflite"
    graph = load_tflite(path)
    assert graph.meta["float_input"] and graph.meta["float_output"]
    assert [op.kind for op in graph.operators] == ["FULLY_CONNECTED"] * 2
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, (32, 20)).astype(np.float32)
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    reference = []
    for sample in x:
        interpreter.set_tensor(inp["index"], sample[None])
        interpreter.invoke()
        reference.append(interpreter.get_tensor(out["index"])[0])
    golden = graph.run(graph.input.quantize(x))
    expected = np.asarray(reference, np.float32)
    np.testing.assert_array_equal(graph.output.dequantize(golden).astype(np.float32), expected)


@pytest.mark.parametrize("runtime, oracle", [("litert", litert), ("tflm", tflm)])
def test_sim_golden_on_a_tflite_cnn_matches_the_interpreter(tmp_path, capsys, seed, runtime,
                                                            oracle):
    path = MODELS / "resnet_tiny.tflite"
    x = np.random.default_rng(seed).integers(-128, 128, (12, 16, 16, 3)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(path), "--golden", "--match", runtime, "--input",
                 str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    assert "mismatches: 0" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), oracle(path, x))


def test_dump_writes_every_tensor_under_its_sanitized_name(tmp_path, capsys, seed):
    path = MODELS / "mobilenet_tiny.tflite"
    x = np.random.default_rng(seed).integers(-128, 128, (5, 24, 24, 3)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(path), "--golden", "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--dump", str(tmp_path / "dump")]) == 0
    _, tensors = litert(path, x, all_tensors=True)
    graph = load_tflite(path)
    computed = [op.outputs[0] for op in graph.operators]
    def file(name: str) -> str:
        return "".join(c if c.isascii() and c.isalnum() else "_" for c in name) + ".npy"

    assert sorted(p.name for p in (tmp_path / "dump").glob("*.npy")) == sorted(map(file, computed))
    for name in computed:
        dumped = np.load(tmp_path / "dump" / file(name))
        np.testing.assert_array_equal(dumped, tensors[name].reshape(dumped.shape))


@pytest.mark.parametrize("content, message", [
    (b"", "is not a readable .tflite model"),
    (b"TFL3" * 10, "is not a readable .tflite model"),
    ((MODELS / "fc.tflite").read_bytes()[:900], "not a readable .tflite model"),
])
def test_damaged_files_get_one_line_and_exit_2(tmp_path, capsys, content, message):
    (tmp_path / "bad.tflite").write_bytes(content)
    np.save(tmp_path / "x.npy", np.zeros((1, 20), np.int8))
    assert main(["sim", str(tmp_path / "bad.tflite"), "--golden", "--input",
                 str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("mxugen: error:")
    assert not (tmp_path / "y.npy").exists()


def test_unsupported_model_through_the_command_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 10), np.int8))
    assert main(["sim", str(MODELS / "unsupported.tflite"), "--golden", "--input",
                 str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert "LOGISTIC ×1, MUL ×2, TANH ×1" in err and "\n" not in err


@pytest.mark.rtl
@pytest.mark.parametrize("runtime, oracle", [("litert", litert), ("tflm", tflm)])
def test_a_tflite_mlp_runs_in_rtl_bit_exact_with_its_interpreter(tmp_path, capsys, seed,
                                                                 runtime, oracle):
    """The converter's FULLY_CONNECTED chain on the accelerator: single rounding per layer to
    match LiteRT, double to match TFLite Micro, switched at run time in one build."""
    path = MODELS / "fc.tflite"
    x = np.random.default_rng(seed).integers(-128, 128, (40, 20)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(path), "--match", runtime, "--rows", "4", "--cols", "4",
                 "--check-layers", "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    assert "mismatches: 0" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), oracle(path, x))


def test_dump_names_fit_the_file_system_and_are_indexed(tmp_path, capsys, seed):
    """resnet8's fused conv+batch-norm+ReLU tensors have names of up to 500 characters."""
    import json

    from mxugen.commands.sim import dump_name
    path = MODELS / "resnet8.tflite"
    graph = load_tflite(path)
    assert max(len(op.outputs[0]) for op in graph.operators) > 255
    x = np.random.default_rng(seed).integers(-128, 128, (3, 32, 32, 3)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(path), "--golden", "--match", "tflm", "--input",
                 str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                 "--dump", str(tmp_path / "dump")]) == 0
    index = json.loads((tmp_path / "dump" / "tensors.json").read_text())
    _, tensors = tflm(path, x, all_tensors=True)
    assert sorted(index.values()) == sorted(op.outputs[0] for op in graph.operators)
    for file, name in index.items():
        assert len(file) <= 204 and file == dump_name(name) + ".npy"
        dumped = np.load(tmp_path / "dump" / file)
        np.testing.assert_array_equal(dumped, tensors[name].reshape(dumped.shape))


def test_float_inputs_quantize_as_tflite_quantize_does():
    """QUANTIZE divides in float32: inputs whose exact quotient lies just below k + 0.5 but
    whose float32 quotient is k + 0.5 round away from zero (the interpreter's answer)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    path = MODELS / "fc_float_io.tflite"
    graph = load_tflite(path)
    scale = np.float32(graph.input.scalar_scale)
    k = np.arange(-40, 40, dtype=np.float32)
    ties = (k + np.float32(0.5)) * scale
    near = np.nextafter(ties, np.float32(0))   # a hair toward zero of each tie
    x = np.concatenate([ties, near])[:20 * 8].reshape(-1, 20)
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    quantized = next(d["index"] for d in interpreter.get_tensor_details()
                     if d["name"] == graph.inputs[0])
    reference = []
    for sample in x:
        interpreter.set_tensor(inp["index"], sample[None])
        interpreter.invoke()
        reference.append(interpreter.get_tensor(quantized)[0])
    np.testing.assert_array_equal(graph.input.quantize(x), np.asarray(reference))
