"""The second simulator for the Verilog itself: Icarus Verilog, where it is installed
(Debian/Ubuntu: ``apt-get install iverilog``; it has no wheel on PyPI), runs the matrix unit's
and the requantizer's regressions and a whole CNN on the accelerator, bit-exact with the golden
model and the interpreter, and in every tensor and counter the same as Verilator
(docs/verification.md). Without Icarus these tests are skipped, saying so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hw import ArrayConfig
from hw.generate import to_verilog
from hw.matrix_unit import MatrixUnit
from hw.requant import Requantizer
from mxugen.cli import main
from oracles import litert
from quantizer.importers.tflite import load_tflite
from verif.coverage import TARGET_PERCENT
from verif.runner import build_simulator

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(shutil.which("iverilog") is None,
                       reason="Icarus Verilog is not installed (apt-get install iverilog): "
                              "the second simulator's tests do not run"),
]

MODELS = Path(__file__).parent / "models"
# The partition RTL tests' build (tests/test_partition_rtl.py), with a window unit.
WINDOW = ArrayConfig(rows=4, cols=2, act_depth=6000, weight_depth=3000, param_depth=100,
                     psum_depth=100, program_depth=64, window=3, window_width=40)


@pytest.mark.parametrize("kind, component, config, tb", [
    ("mxu", MatrixUnit, ArrayConfig(rows=2, cols=3), "verif.tb.mxu_tb"),
    ("mxu", MatrixUnit, ArrayConfig(rows=4, cols=4, dtype="uint8", requant_modes=("pow2",),
                                    pipelined_product=False), "verif.tb.mxu_tb"),
    ("requant", Requantizer, ArrayConfig(rows=1, cols=4), "verif.tb.requant_tb"),
], ids=["mxu-2x3", "mxu-4x4-uint8-pow2", "requant-double+single"])
def test_the_regression_passes_on_icarus(kind, component, config, tb, seed, tmp_path):
    sim = build_simulator(f"{kind}-{config.rows}x{config.cols}-{config.digest()}",
                          lambda: to_verilog(component(config), config, kind), kind,
                          simulator="icarus")
    report = tmp_path / "coverage.json"
    settings = {"coverage_file": str(report)} if kind == "mxu" else {}
    outcome = sim.run(tb, config={"hw": config.to_dict(), "seed": seed, **settings},
                      seed=seed, name=f"seed{seed}")
    assert outcome.passed, outcome.summary()
    if kind == "mxu":
        assert json.loads(report.read_text())["percent"] >= TARGET_PERCENT


def test_icarus_and_verilator_agree_on_a_cnn(seed):
    """Every tensor and every step's counters the same in both simulators, and the output the
    interpreter's."""
    from verif.network_sim import run_on_rtl
    path = MODELS / "mobilenet_tiny.tflite"
    graph = load_tflite(path)
    x = np.random.default_rng(seed).integers(-128, 128, (3, *graph.input.sample_shape)) \
        .astype(np.int8)
    icarus = run_on_rtl(graph, x, WINDOW, batch=2, check_layers=True, seed=seed,
                        simulator="icarus")
    assert icarus.mismatches == [] and icarus.first_difference is None
    np.testing.assert_array_equal(icarus.outputs, litert(path, x))
    verilator = run_on_rtl(graph, x, WINDOW, batch=2, check_layers=True, seed=seed)
    assert icarus.tensors.keys() == verilator.tensors.keys()
    for name, values in verilator.tensors.items():
        np.testing.assert_array_equal(values, icarus.tensors[name], err_msg=name)
    assert icarus.batches == verilator.batches


def test_mxugen_sim_runs_on_icarus(tmp_path, capsys, seed):
    path = MODELS / "fc.tflite"
    graph = load_tflite(path)
    x = np.random.default_rng(seed).integers(-128, 128, (5, *graph.input.sample_shape)) \
        .astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(path), "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--simulator", "icarus", "--rows", "4", "--cols", "4",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["simulator"] == "icarus" and summary["mismatches"] == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), litert(path, x))
