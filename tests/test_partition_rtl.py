"""Graphs split between the accelerator and the host run bit-exact in RTL: the array runs the
convolutions and dense layers, the vector unit the depthwise convolutions, pools, MEANs and
residual ADDs, and the testbench's host the other operators with the golden model on what the
accelerator wrote (SOFTMAX, an average pool whose window overlaps the padding); explicit PADs
are done by addressing, and a channel concatenation by its inputs written in place. Every
tensor equals the golden model's and the output the interpreter's.

One accelerator build (4x2: two column tiles share an activation word, so the vector unit picks
its channels out of the word; memories of no power-of-two depth) runs every model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hw import ArrayConfig
from oracles import litert, tflm
from quantizer.cycles import network_cycles
from quantizer.importers import load_float_graph
from quantizer.importers.tflite import load_tflite
from quantizer.quantize_graph import quantize_graph
from random_networks import strided_depthwise_graph
from tests_paths import DIGITS_CNN

MODELS = Path(__file__).parent / "models"
# Memories of no power-of-two depth, as `mxugen compile --device` sizes them for an FPGA,
# partial sums for 100 output pixels (layers with more run in passes of whole samples or of
# bands of output rows, AcceleratorLayer.passes), and a 3x3 window unit that runs the 3x3
# depthwise convolutions (other vector-unit layers run tap by tap).
CONFIG = ArrayConfig(rows=4, cols=2, act_depth=6000, weight_depth=3000, param_depth=100,
                     psum_depth=100, program_depth=64, window=3, window_width=40)
CASES = [(DIGITS_CNN, "litert"), (MODELS / "residual.tflite", "tflm"),
         (MODELS / "mobilenet_tiny.tflite", "litert"), (MODELS / "softmax.tflite", "tflm"),
         (MODELS / "avgpool.tflite", "litert"), (MODELS / "maxpool.tflite", "tflm"),
         (MODELS / "pad.tflite", "tflm"), (MODELS / "pad_vector.tflite", "litert"),
         (MODELS / "concat.tflite", "tflm"), (MODELS / "conv_dilated.tflite", "litert")]


@pytest.mark.rtl
@pytest.mark.parametrize("path, runtime", CASES, ids=lambda v: getattr(v, "stem", v))
def test_partitioned_graph_runs_bit_exact(path, runtime, seed):
    from verif.network_sim import run_on_rtl
    graph = load_tflite(path)
    x = np.random.default_rng(seed).integers(-128, 128, (3, *graph.input.sample_shape)) \
        .astype(np.int8)
    run = run_on_rtl(graph, x, CONFIG, batch=2, check_layers=True, seed=seed, runtime=runtime)
    assert run.mismatches == [] and run.first_difference is None
    np.testing.assert_array_equal(run.outputs, (litert if runtime == "litert" else tflm)(path, x))
    assert [b["cycles"] for b in run.batches] == [network_cycles(CONFIG, graph, n, runtime)
                                                  for n in (2, 1)]


def _strided_graph():
    """Stride-2 depthwise layers on inputs held in blocks (quad mode): an odd 11×9 map SAME
    (padding on top and left), then VALID."""
    return strided_depthwise_graph(np.random.default_rng(7), (11, 9, 6), ("SAME", "VALID"))


@pytest.mark.rtl
def test_stride_2_depthwise_layers_on_inputs_in_blocks_run_bit_exact(seed):
    from verif.network_sim import run_on_rtl
    graph = _strided_graph()
    x = graph.input.quantize(np.random.default_rng(seed).normal(size=(3, 11, 9, 6)))
    run = run_on_rtl(graph, x, CONFIG, batch=2, check_layers=True, seed=seed)
    assert run.mismatches == [] and run.first_difference is None
    np.testing.assert_array_equal(run.outputs, graph.run(x))
    assert [b["cycles"] for b in run.batches] == [network_cycles(CONFIG, graph, n)
                                                  for n in (2, 1)]


@pytest.mark.rtl
def test_the_host_port_writes_and_reads_words_of_four_word_rows(seed):
    """The window unit's build keeps four activation words a memory row: inputs written and
    tensors read through the host port a word a cycle (as a processor does, not in bulk)
    land in and come from their place in a row, tensors of an odd word count included."""
    from verif.network_sim import run_on_rtl
    path = MODELS / "mobilenet_tiny.tflite"
    graph = load_tflite(path)
    x = np.random.default_rng(seed).integers(-128, 128, (1, *graph.input.sample_shape)) \
        .astype(np.int8)
    run = run_on_rtl(graph, x, CONFIG, batch=1, check_layers=True, seed=seed,
                     host_port=True)
    assert run.mismatches == [] and run.first_difference is None
    np.testing.assert_array_equal(run.outputs, litert(path, x))


@pytest.mark.rtl
def test_a_cnn_with_packed_low_bit_weights_runs_bit_exact(seed):
    """The digits CNN with asymmetric ternary weights (two levels up to 7 a channel) in a
    4-bit weight memory: unpacked on their way into the array and the window unit, every
    tensor equal to the golden model's."""
    from verif.network_sim import run_on_rtl
    rng = np.random.default_rng(seed)
    float_graph = load_float_graph(MODELS / "digits_cnn.onnx")
    graph = quantize_graph(float_graph, rng.uniform(0, 1, (64, 8, 8, 1)),
                           weights="ternary_asym", progress=False)
    x = graph.input.quantize(rng.uniform(0, 1, (3, 8, 8, 1)))
    run = run_on_rtl(graph, x, replace(CONFIG, weight_bits=4), batch=2, check_layers=True,
                     seed=seed)
    assert run.mismatches == [] and run.first_difference is None
    np.testing.assert_array_equal(run.outputs, graph.run(x))


def test_its_runs_cover_every_option_the_sequencer_runs(seed, tmp_path):
    """The descriptors the RTL tests above run (verif.coverage.AcceleratorCoverage): every
    operation, every convolution option, pair and quad mode and padding on the window unit,
    layers in passes, programs with host operators between them."""
    from verif.coverage import AcceleratorCoverage
    from verif.network_sim import plan_run
    coverage = AcceleratorCoverage(CONFIG, prefix=f"accel_{seed}")
    rng = np.random.default_rng(seed)
    for graph, runtime in [(load_tflite(path), runtime) for path, runtime in CASES] + \
            [(_strided_graph(), "litert")]:
        x = rng.integers(-128, 128, (3, *graph.input.sample_shape)).astype(np.int8)
        coverage.sample_plan(plan_run(graph, x, CONFIG, batch=2, check_layers=True,
                                      runtime=runtime))
    report_file = tmp_path / "accelerator_coverage.json"
    coverage.export(report_file)
    report = json.loads(report_file.read_text())
    missed = {point: figures["missed"] for point, figures in report["points"].items()
              if figures["missed"]}
    assert report["percent"] >= report["target"], f"coverage {report['percent']}%: {missed}"
