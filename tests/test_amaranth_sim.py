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
from quantizer.cycles import network_cycles, window_cycles
from quantizer.graph import Graph, Operator, Tensor
from quantizer.importers.tflite import load_tflite
from quantizer.partition import partition
from quantizer.quantize_graph import quantize_graph
from random_networks import random_dense_network, strided_depthwise_graph
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


def test_a_raster_shorter_than_its_weight_words_waits_for_them(seed):
    """A 3×3 SAME depthwise convolution on a 1×3 map streams 8 words a column tile, fewer
    than the 9 weight words each next tile loads: the tiles wait for their weights, as the
    cycle model says (``mxugen bench soak`` found the case, seed 1189927129)."""
    rng = np.random.default_rng(seed)
    tensors = {"x": Tensor("x", (1, 1, 3, 12), "float32"),
               "w": Tensor("w", (1, 3, 3, 12), "float32", data=rng.normal(0, 0.5, (1, 3, 3, 12))),
               "b": Tensor("b", (12,), "float32", data=rng.normal(0, 0.1, 12)),
               "y": Tensor("y", (1, 1, 3, 12), "float32")}
    depthwise = Operator("DEPTHWISE_CONV_2D", ("x", "w", "b"), ("y",),
                         {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME",
                          "activation": "NONE", "depth_multiplier": 1})
    graph = quantize_graph(Graph(tensors, [depthwise], ["x"], ["y"]),
                           rng.normal(size=(8, 1, 3, 12)), progress=False)
    config = ArrayConfig(rows=4, cols=4, window=3, window_width=8, act_depth=64,
                         weight_depth=64, param_depth=8, psum_depth=8, program_depth=4)
    [layer] = partition(graph).layers
    assert layer.on_window(config) and layer.tiles(4, 4)[2] == 3
    assert layer.streamed_raster(config, layer.passes(1, 8)[0]) == 8
    x = graph.input.quantize(rng.normal(size=(1, 1, 3, 12)))
    run = run_on_amaranth(graph, x, config, check_layers=True)
    assert run.mismatches == []
    assert run.cycles == network_cycles(config, graph, 1) == window_cycles(config, 8, 3)


@pytest.mark.parametrize("shape, paddings", [((11, 9, 6), ("SAME", "VALID")),
                                             ((10, 12, 4), ("VALID", "SAME")),
                                             ((12, 9, 3), ("SAME", "SAME"))])
def test_stride_2_depthwise_layers_read_inputs_held_in_blocks(seed, shape, paddings):
    """Quad mode, a 2×2 block a beat, on even and odd maps, SAME (padding on top and left
    for odd ones) and VALID: bit-exact with the golden model in every tensor, in the cycles
    the cycle model predicts."""
    rng = np.random.default_rng(seed)
    graph = strided_depthwise_graph(rng, shape, paddings)
    config = ArrayConfig(rows=4, cols=2, window=3, window_width=14, act_depth=2048,
                         weight_depth=256, param_depth=16, psum_depth=128, program_depth=8)
    from quantizer.compile import compile_network
    compiled = compile_network(graph, config, 2, keep_layers=True)
    assert [layer["quad"] for layer in compiled.layers] == [True, False, True]
    assert {name for name, region in compiled.tensors.items() if region.blocks} == \
        {"x", "pw"}
    x = graph.input.quantize(rng.normal(size=(3, *shape)))
    run = run_on_amaranth(graph, x, config, batch=2, check_layers=True)
    assert run.mismatches == [] and run.first_difference is None
    np.testing.assert_array_equal(run.outputs, graph.run(x))
    assert run.cycles == network_cycles(config, graph, 2) + network_cycles(config, graph, 1)


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
