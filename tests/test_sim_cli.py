"""`mxugen sim` and `mxugen bench gemm` as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mxugen.cli import main
from quantizer.network import DenseLayer, FloatNetwork
from quantizer.quantize import quantize_network


@pytest.fixture
def network_folder(tmp_path, seed):
    rng = np.random.default_rng(seed)
    net = FloatNetwork([DenseLayer(rng.normal(size=(12, 10)), rng.normal(size=12), "relu"),
                        DenseLayer(rng.normal(size=(4, 12)), rng.normal(size=4), "none")])
    graph = quantize_network(net, rng.normal(size=(100, 10)), per_channel=True, progress=False)
    graph.save(tmp_path / "net")
    np.save(tmp_path / "x.npy", rng.normal(size=(20, 10)))
    return tmp_path, graph


@pytest.mark.rtl
def test_sim_on_rtl_matches_golden_and_writes_outputs(network_folder, capsys):
    tmp, graph = network_folder
    args = ["sim", str(tmp / "net"), "--input", str(tmp / "x.npy"), "--float-input",
            "--rows", "4", "--cols", "4", "--batch", "8", "--check-layers", "--json"]
    assert main(args + ["--output", str(tmp / "y.npy")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mismatches"] == 0 and summary["samples"] == 20 and summary["cycles"] > 0
    expected = graph.run(graph.input.quantize(np.load(tmp / "x.npy")))
    np.testing.assert_array_equal(np.load(tmp / "y.npy"), expected)
    assert main(args[:-1] + ["--golden", "--output", str(tmp / "g.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp / "g.npy"), expected)


@pytest.mark.rtl
def test_sim_shares_batches_among_workers_with_a_progress_bar(network_folder, capsys):
    """20 samples in batches of 8, 8 and 4 on three simulator processes: the outputs are the
    golden model's, each batch's cycles the cycle model's, in sample order."""
    from quantizer.cycles import network_cycles
    from quantizer.sizing import accelerator_config

    tmp, graph = network_folder
    assert main(["sim", str(tmp / "net"), "--input", str(tmp / "x.npy"), "--float-input",
                 "--rows", "4", "--cols", "4", "--batch", "8", "--workers", "5",
                 "--progress", "--json", "--output", str(tmp / "y.npy")]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["workers"] == 3 and summary["mismatches"] == 0
    config = accelerator_config(graph, 8, rows=4, cols=4, requant_modes=("double", "single"))
    assert summary["cycles"] == 2 * network_cycles(config, graph, 8) + \
        network_cycles(config, graph, 4)
    np.testing.assert_array_equal(np.load(tmp / "y.npy"),
                                  graph.run(graph.input.quantize(np.load(tmp / "x.npy"))))
    assert "mxugen sim: 100%" in captured.err and "20/20" in captured.err


@pytest.mark.parametrize("make_input, extra, message", [
    (lambda rng: rng.normal(size=(3, 10)), [], "holds float64 values; pass --float-input"),
    (lambda rng: np.full((3, 10), 300), [], "outside int8 [-128, 127]"),
    (lambda rng: np.zeros((3, 9), np.int8), [], r"inputs must have shape (samples, 10)"),
    (lambda rng: np.zeros((0, 10), np.int8), [], "at least one sample"),
    (lambda rng: np.zeros((3, 10), np.int8), ["--workers", "0"], "--workers must be at least 1"),
    (lambda rng: np.zeros((3, 10), np.int8), ["--simulator", "icarus"],
     "--simulator picks the RTL simulator; --golden runs none"),
])
def test_sim_bad_inputs(network_folder, capsys, make_input, extra, message):
    tmp, _ = network_folder
    np.save(tmp / "bad.npy", make_input(np.random.default_rng(0)))
    assert main(["sim", str(tmp / "net"), "--input", str(tmp / "bad.npy"), "--golden",
                 "--output", str(tmp / "y.npy"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp / "y.npy").exists()


def test_sim_refuses_a_folder_that_is_not_a_network(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.int8))
    assert main(["sim", str(tmp_path), "--input", str(tmp_path / "x.npy"), "--golden",
                 "--output", str(tmp_path / "y.npy")]) == 2
    assert "has no graph.json: give a folder written by mxugen quantize" in \
        capsys.readouterr().err


def test_a_simulator_that_is_not_installed_is_said_before_any_work(network_folder, capsys,
                                                                   monkeypatch):
    from verif import toolchain
    monkeypatch.setattr(toolchain.shutil, "which", lambda tool: None)
    tmp, graph = network_folder
    np.save(tmp / "x8.npy", np.zeros((3, 10), np.int8))
    assert main(["sim", str(tmp / "net"), "--input", str(tmp / "x8.npy"), "--simulator",
                 "icarus", "--output", str(tmp / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Icarus Verilog is not installed ('iverilog' is not on " \
        "PATH); install it (Debian/Ubuntu: apt-get install iverilog)" in err
    assert not (tmp / "y.npy").exists()


@pytest.mark.rtl
def test_bench_gemm_reports_utilization_and_checks_results(capsys):
    assert main(["bench", "gemm", "--rows", "4", "--cols", "4", "--m", "24", "--k", "12",
                 "--n", "8", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["mismatches"] == 0
    assert figures["ideal_cycles"] == 24 * 12 * 8 / 16
    assert figures["utilization"] == pytest.approx(figures["ideal_cycles"] / figures["cycles"],
                                                   abs=1e-4)
    assert figures["model_error"] <= 0.02


def test_compile_writes_images_that_only_their_hardware_accepts(network_folder, capsys):
    from hw import ArrayConfig
    from quantizer import QuantizerError
    from quantizer.manifest import read_images
    from quantizer.sizing import accelerator_config
    tmp, graph = network_folder
    assert main(["compile", str(tmp / "net"), "--rows", "4", "--cols", "2", "--samples", "16",
                 "--format", "coe", "--format", "mif", "-o", str(tmp / "img")]) == 0
    names = sorted(p.name for p in (tmp / "img").iterdir())
    assert names == sorted(["manifest.json"] + [f"{m}.{f}" for m in ("weights", "params", "program")
                                                for f in ("hex", "coe", "mif")])
    config = accelerator_config(graph, 16, rows=4, cols=2)
    hw = config.to_dict()
    images = read_images(tmp / "img", hw)
    from quantizer.compile import compile_network
    assert images["weights"] == compile_network(graph, config, 16).weights
    other = ArrayConfig.from_dict({**hw, "rows": 8}).to_dict()
    with pytest.raises(QuantizerError, match=r"laid out for different hardware \(rows differ"):
        read_images(tmp / "img", other)


def test_generate_accelerator_bakes_images_of_its_own_hardware_only(network_folder, capsys):
    tmp, graph = network_folder
    assert main(["compile", str(tmp / "net"), "--rows", "4", "--cols", "2", "--samples", "16",
                 "-o", str(tmp / "img")]) == 0
    hw = json.loads((tmp / "img" / "manifest.json").read_text())["hardware"]
    # Unset hardware options come from the images' manifest; given ones must agree with it.
    base = ["generate", "--accelerator", "--images", str(tmp / "img"), "--cols", "2"]
    assert main(base + ["-o", str(tmp / "fpga")]) == 0
    description = json.loads((tmp / "fpga" / "accel.json").read_text())
    assert description["config"] == hw
    verilog = (tmp / "fpga" / "accel.v").read_text()
    # The image is in the memory's initial contents: the weight memory's first row holds
    # the first weight_load_rows (2) words, the first in the low bits.
    first, second = (int(word, 16) for word in
                     open(tmp / "img" / "weights.hex").read().split("\n")[1:3])
    assert hw["weight_load_rows"] == 2
    assert f"wmem[0] = 32'd{second << 16 | first};" in verilog
    capsys.readouterr()
    assert main(base + ["--rows", "8", "-o", str(tmp / "other")]) == 2
    err = capsys.readouterr().err
    assert "--rows contradicts the images' hardware (rows=4)" in err and err.count("\n") == 1
    assert not (tmp / "other").exists()


def test_bench_gemm_rejects_empty_shapes(capsys):
    assert main(["bench", "gemm", "--m", "0"]) == 2
    assert capsys.readouterr().err.strip() == "mxugen: error: --m must be at least 1, got 0"


def test_help_lists_every_command_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ("generate", "quantize", "compile", "sim", "bench", "demo"):
        assert f"\n  mxugen {command}" in text.split("examples:")[1], command
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("mxugen ")


def test_compile_needs_no_simulator(tmp_path):
    """Sizing, compiling and writing images import neither cocotb nor the testbenches (the
    toolchain module, which names the simulators ``sim`` offers, runs nothing on import)."""
    import subprocess
    import sys
    model = Path(__file__).parent / "models" / "fc.tflite"
    code = ("import sys\nfrom mxugen.cli import main\n"
            f"assert main(['compile', {str(model)!r}, '--rows', '4', '--cols', '4', "
            f"'--samples', '8', '-o', {str(tmp_path / 'img')!r}]) == 0\n"
            "print(sorted(m for m in sys.modules if m.startswith(('cocotb', 'verif'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip().splitlines()[-1] == \
        "['verif', 'verif.errors', 'verif.toolchain']"


@pytest.mark.parametrize("command", [
    ["compile", "MODEL", "-o", "OUT"],
    ["sim", "MODEL", "--input", "X", "--output", "OUT"],
    ["bench", "gemm", "--m", "4", "--k", "4", "--n", "4"],
])
@pytest.mark.parametrize("shape, message", [
    (["--cols", "0"], "cols must be an integer in 1..256, got 0"),
    (["--rows", "0"], "rows must be an integer in 1..256, got 0"),
    (["--rows", "-3"], "rows must be an integer in 1..256, got -3"),
])
def test_array_shapes_are_checked_before_any_sizing(tmp_path, capsys, command, shape, message):
    """A zero or negative array dimension is one line and exit 2 (it once divided by zero)."""
    np.save(tmp_path / "x.npy", np.zeros((2, 20), np.int8))
    paths = {"MODEL": str(Path(__file__).parent / "models" / "fc.tflite"),
             "X": str(tmp_path / "x.npy"), "OUT": str(tmp_path / "out")}
    assert main([paths.get(word, word) for word in command] + shape) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mxugen: error: {message}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [
    ["compile", "fc.tflite"],
    ["generate"],
    ["fpga"],
    ["demo"],
    ["demo", "--model", "cnn"],
])
def test_unwritable_outputs_are_one_line(tmp_path, capsys, command):
    """An output that is a file, or lies below one, is exit 2 and one line, before any work."""
    model = str(Path(__file__).parent / "models" / "fc.tflite")
    words = [model if w == "fc.tflite" else w for w in command]
    (tmp_path / "file").write_text("not a folder")
    for output, message in ((tmp_path / "file", "exists and is not a directory"),
                            (tmp_path / "file" / "below", "which is a file")):
        assert main(words + ["-o", str(output)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_compile_lists_a_host_tail_and_refuses_host_operators_before_the_accelerator(
        tmp_path, capsys):
    from tests_paths import DIGITS_CNN, MODELS
    assert main(["compile", str(MODELS / "softmax.tflite"), "--rows", "4", "--cols", "4",
                 "--samples", "2", "-o", str(tmp_path / "img")]) == 0
    manifest = json.loads((tmp_path / "img" / "manifest.json").read_text())
    assert [(op["kind"], op["where"]) for op in manifest["host_tail"]] == [("SOFTMAX", "host")]
    assert manifest["output"]["size"] == 10 and manifest["input"]["base"] == 0
    capsys.readouterr()
    assert main(["compile", str(MODELS / "avgpool.tflite"), "-o", str(tmp_path / "pool")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mxugen: error: images run a graph whose operators all run on the "
                          "accelerator") and "AVERAGE_POOL_2D" in err and "mxugen sim" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "pool").exists()
    # A PAD is done by addressing: nothing runs on the host.
    assert main(["compile", str(MODELS / "pad.tflite"), "-o", str(tmp_path / "pad")]) == 0
    manifest = json.loads((tmp_path / "pad" / "manifest.json").read_text())
    assert manifest["host_tail"] == [] and [layer["kind"] for layer in manifest["layers"]] == [
        "CONV_2D"]
    # The digits CNN (depthwise, pooling) runs wholly on the accelerator.
    assert main(["compile", str(DIGITS_CNN), "-o", str(tmp_path / "cnn")]) == 0
    manifest = json.loads((tmp_path / "cnn" / "manifest.json").read_text())
    assert manifest["host_tail"] == [] and "DEPTHWISE_CONV_2D" in \
        [layer["kind"] for layer in manifest["layers"]]


@pytest.mark.rtl
def test_bench_model_reports_each_operator_and_a_cycle_model_that_is_exact(capsys):
    from tests_paths import MODELS
    assert main(["bench", "model", str(MODELS / "residual.tflite"), "--rows", "4", "--cols",
                 "4", "--samples", "2", "--match", "tflm", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    ops = figures["operators"]
    assert [op["kind"] for op in ops] == ["CONV_2D"] * 3 + ["ADD"] + ["CONV_2D"] * 2 + \
        ["ADD", "MEAN", "FULLY_CONNECTED"]
    assert {op["where"] for op in ops} == {"accelerator"}
    on_array = [op for op in ops if op["where"] == "accelerator"]
    assert all(op["cycles"] == op["predicted_cycles"] for op in on_array)
    assert figures["cycles"] == sum(op["cycles"] for op in on_array)
    assert figures["model_error_cycles"] == 0 and figures["mismatches"] == 0
    # 9x9x3 → 9x9x8, 3x3: M = 2·81, K = 27, N = 8 on 16 PEs.
    stem = on_array[0]
    assert stem["gemm"] == [162, 27, 8] and stem["ideal_cycles"] == 162 * 27 * 8 / 16
    assert stem["utilization"] == pytest.approx(stem["ideal_cycles"] / stem["cycles"],
                                                abs=1e-4)
    add = ops[3]
    assert figures["host_operators"] == 0 and add["unit"] == "vector" and "gemm" not in add
    assert add["macs"] == 2 * 81 * 8 * 2  # two inputs of 9×9×8 per sample, two samples


@pytest.mark.rtl
def test_bench_sim_runs_cocotb_and_the_raw_harness_to_the_same_bytes(capsys):
    """Two batches (the last one short) through both flows: the same output bytes, equal to
    the golden model's, and the same counters; the SOFTMAX after the accelerator is left to
    the host, and both read what the accelerator wrote before it."""
    from tests_paths import MODELS
    assert main(["bench", "sim", "--model", str(MODELS / "softmax.tflite"), "--rows", "4",
                 "--cols", "4", "--samples", "3", "--batch", "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["outputs_equal"] and figures["cycles_equal"]
    assert figures["mismatches_with_golden"] == 0 and figures["cycles"] > 0
    assert figures["accelerator_output"].endswith("logits_1/BiasAdd")  # before the softmax
    for flow in ("cocotb", "raw"):
        assert figures[flow]["run_seconds"] > 0
    # the ratio of the unrounded seconds; each figure is printed to 3 decimals
    raw, cocotb, half = figures["raw"]["run_seconds"], figures["cocotb"]["run_seconds"], 5e-4
    assert (raw - half) / (cocotb + half) - half <= figures["ratio"] \
        <= (raw + half) / (cocotb - half) + half


def test_bench_sim_refuses_host_operators_between_accelerator_programs(capsys):
    from tests_paths import MODELS
    assert main(["bench", "sim", "--model", str(MODELS / "avgpool.tflite"), "--rows", "4",
                 "--cols", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "host operators in between: AVERAGE_POOL_2D" in err


def test_demo_refuses_plots_for_the_cnn(tmp_path, capsys):
    assert main(["demo", "--model", "cnn", "--plot", "-o", str(tmp_path / "d")]) == 2
    assert "--plot" in capsys.readouterr().err


def test_compile_for_a_device_sizes_memories_exactly_and_refuses_what_does_not_fit(
        tmp_path, capsys):
    from tests_paths import MODELS
    model = str(MODELS / "kws_dscnn.tflite")
    assert main(["compile", model, "--samples", "2", "--device", "25k",
                 "-o", str(tmp_path / "small")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the ECP5 25k has 56" in err and "DP16KD" in err, err
    assert not (tmp_path / "small").exists()
    assert main(["compile", model, "--samples", "2", "--device", "45k",
                 "-o", str(tmp_path / "big")]) == 0
    out = capsys.readouterr().out
    assert "of the 45k's 108" in out, out
    manifest = json.loads((tmp_path / "big" / "manifest.json").read_text())
    words = int(re.search(r"wrote (\d+) weight", out).group(1))
    assert manifest["hardware"]["weight_depth"] == words  # no power of two
    # The Verilog of those images fits as well; the matrix unit has no memories to check.
    assert main(["generate", "--accelerator", "--images", str(tmp_path / "big"), "--device",
                 "45k", "-o", str(tmp_path / "rtl")]) == 0
    assert "of the 45k's 108" in capsys.readouterr().out
    assert main(["generate", "--device", "45k", "-o", str(tmp_path / "mxu")]) == 2
    assert "add --accelerator" in capsys.readouterr().err
