"""The accelerator behind its AXI4-Lite slave (hw/axi_lite.py), in Verilator with cocotbext-axi's
master as the processor: the register map and its errors, and a residual CNN loaded, run and
read back through the bus alone, its output equal to the golden model's and LiteRT's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hw import ArrayConfig
from oracles import litert
from quantizer.compile import compile_network
from quantizer.cycles import network_cycles
from quantizer.importers.tflite import load_tflite

pytestmark = pytest.mark.rtl

MODEL = Path(__file__).parent.parent / "models" / "residual.tflite"
CONFIG = ArrayConfig(rows=4, cols=4, act_depth=1024, weight_depth=1024, param_depth=32,
                     psum_depth=128, program_depth=16)


@pytest.fixture(scope="module")
def simulator():
    from hw.axi_lite import AxiLiteAccelerator
    from hw.generate import to_verilog
    from verif.runner import build_simulator
    return build_simulator(f"axil-4x4-{CONFIG.digest()}",
                           lambda: to_verilog(AxiLiteAccelerator(CONFIG), CONFIG, "axil"),
                           "axil", visibility="ports")


def test_register_map_and_its_errors(simulator, seed):
    outcome = simulator.run("verif.tb.axil_tb", config={"hw": CONFIG.to_dict(), "seed": seed},
                            seed=seed, testcase="registers_and_errors", name=f"regs{seed}")
    assert outcome.passed, outcome.summary()


def test_a_network_runs_through_the_bus(simulator, seed, tmp_path):
    graph = load_tflite(MODEL)
    compiled = compile_network(graph, CONFIG, 1)
    x = np.random.default_rng(seed).integers(-128, 128, (1, *graph.input.sample_shape)) \
        .astype(np.int8)
    source, output = compiled.input, compiled.tensors[graph.outputs[0]]
    results = tmp_path / "results.json"
    outcome = simulator.run("verif.tb.axil_tb", seed=seed, testcase="network_through_the_bus",
                            name=f"net{seed}", config={
                                "hw": CONFIG.to_dict(), "seed": seed,
                                "weights": compiled.weights, "params": compiled.params,
                                "program": compiled.program, "input_base": source.base,
                                "input_words": source.pack(x, CONFIG),
                                "output_base": output.base, "output_words": output.words,
                                "timeout_cycles": 100_000, "results_file": str(results)})
    assert outcome.passed, outcome.summary()
    measured = json.loads(results.read_text())
    y = output.unpack(measured["output_words"], CONFIG)
    np.testing.assert_array_equal(y, graph.run(x))
    np.testing.assert_array_equal(y.reshape(1, -1), litert(MODEL, x).reshape(1, -1))
    assert measured["cycles"] == network_cycles(CONFIG, graph, 1)
