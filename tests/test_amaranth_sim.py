"""The second simulator: the accelerator on Amaranth's own simulator runs networks bit-exact
with the golden model and the interpreter, in the cycles the cycle model predicts; and on the
same stimulus Verilator's model of the generated Verilog agrees with it in every tensor and
every counter (docs/verification.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw import ArrayConfig
from oracles import litert, tflm
from quantizer.cycles import network_cycles
from quantizer.importers.tflite import load_tflite
from random_networks import random_dense_network
from verif.amaranth_sim import run_on_amaranth

MODELS = Path(__file__).parent / "models"
# The partition RTL tests' build (tests/test_partition_rtl.py): two column tiles a word, a 3x3
# window unit (pair mode on the stride-2 depthwise layer), memories of no power-of-two depth.
WINDOW = ArrayConfig(rows=4, cols=2, act_depth=6000, weight_depth=3000, param_depth=100,
                     psum_depth=100, program_depth=64, window=3, window_width=40)
# No window unit (one activation word a memory row), uint8, shift-only requantizer.
SHIFT_ONLY = ArrayConfig(rows=3, cols=3, dtype="uint8", requant_modes=("pow2",),
                         act_depth=512, weight_depth=512, param_depth=32, psum_depth=64,
                         program_depth=16)
CASES = [("mobilenet_tiny", "litert", 1), ("concat", "tflm", 2), ("pad", "tflm", 2)]


@pytest.mark.parametrize("name, runtime, samples", CASES)
def test_networks_run_bit_exact_on_amaranths_simulator(name, runtime, samples, seed):
    path = MODELS / f"{name}.tflite"
    graph = load_tflite(path)
    x = np.random.default_rng(seed).integers(-128, 128, (samples, *graph.input.sample_shape)) \
        .astype(np.int8)
    run = run_on_amaranth(graph, x, WINDOW, check_layers=True, runtime=runtime)
    assert run.mismatches == [] and run.first_difference is None
    np.testing.assert_array_equal(run.outputs, (litert if runtime == "litert" else tflm)(path, x))
    assert run.cycles == network_cycles(WINDOW, graph, samples, runtime)


def test_a_dense_network_on_a_shift_only_uint8_build(seed):
    rng = np.random.default_rng(seed)
    graph = random_dense_network(rng, [7, 5, 4], "pow2", "uint8")
    x = graph.input.quantize(rng.normal(size=(5, 7)))
    run = run_on_amaranth(graph, x, SHIFT_ONLY, batch=3, check_layers=True)
    assert run.mismatches == []
    np.testing.assert_array_equal(run.outputs, graph.run(x))
    assert len(run.batches) == 2


@pytest.mark.rtl
def test_verilator_and_amaranth_agree_on_the_same_stimulus(seed):
    """Every tensor and every step's counters, the same in both simulators."""
    from verif.network_sim import run_on_rtl
    graph = load_tflite(MODELS / "mobilenet_tiny.tflite")
    x = np.random.default_rng(seed).integers(-128, 128, (3, *graph.input.sample_shape)) \
        .astype(np.int8)
    verilator = run_on_rtl(graph, x, WINDOW, batch=2, check_layers=True, seed=seed)
    amaranth = run_on_amaranth(graph, x, WINDOW, batch=2, check_layers=True)
    assert verilator.tensors.keys() == amaranth.tensors.keys()
    for name, values in verilator.tensors.items():
        np.testing.assert_array_equal(values, amaranth.tensors[name], err_msg=name)
    assert verilator.batches == amaranth.batches
    assert verilator.mismatches == amaranth.mismatches == []
