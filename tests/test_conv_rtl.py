"""Convolutions on the accelerator by implicit im2col (docs/images.md): the converter's
CONV_2D models (SAME and VALID padding, stride 2, dilation 2, per-channel and per-tensor
weights) and conv → RESHAPE → FULLY_CONNECTED run bit-exact with the golden model and with
LiteRT and TFLite Micro, in the cycles the cycle model predicts.

One accelerator build (4x4, memories large enough for every model) runs all of them; the
batches are split by output pixels, so a run of several samples spans several batches."""

from __future__ import annotations

from dataclasses import replace

from pathlib import Path

import numpy as np
import pytest

from hw import ArrayConfig
from oracles import litert, tflm
from quantizer.compile import compile_network
from quantizer.cycles import layer_cycles, network_cycles
from quantizer.importers.tflite import load_tflite
from quantizer.partition import partition

MODELS = Path(__file__).parent / "models"
CONV_MODELS = ["conv_same", "conv_valid_stride2", "conv_dilated", "conv_per_tensor", "reshape"]
#: One build for every model here: 4x4, both roundings.
CONFIG = ArrayConfig(rows=4, cols=4, act_depth=2048, weight_depth=512, param_depth=16,
                     psum_depth=256, program_depth=4)


def _inputs(graph, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(
        -128, 128, (samples, *graph.input.sample_shape)).astype(np.int8)


def test_conv_layers_are_the_gemm_of_their_patches():
    """The lowering (what the address generator walks) as numbers: geometry and tile counts."""
    same, stride2, dilated = (partition(load_tflite(MODELS / f"{name}.tflite")).layers[0]
                              for name in ("conv_same", "conv_valid_stride2", "conv_dilated"))
    assert (same.h, same.oh, same.pad, same.stride) == (9, 9, (1, 1), (1, 1))
    assert (stride2.h, stride2.oh, stride2.pad, stride2.stride) == (11, 4, (0, 0), (2, 2))
    assert (dilated.h, dilated.oh, dilated.dilation) == (10, 6, (2, 2))
    conv, dense = partition(load_tflite(MODELS / "reshape.tflite")).layers
    # The flatten is free: the dense layer is a VALID 5x5 convolution over the 5x5x4 map.
    assert (dense.h, dense.w, dense.oh, dense.ow, dense.kernel.shape) == (5, 5, 1, 1,
                                                                         (10, 5, 5, 4))
    compiled = compile_network(load_tflite(MODELS / "conv_same.tflite"), CONFIG, 3)
    assert compiled.layers[0]["m"] == 3 * 81 and compiled.layers[0]["k_tiles"] == 9


def test_operators_without_hardware_are_placed_on_the_host_with_the_reason():
    part = partition(load_tflite(MODELS / "avgpool.tflite"))
    padded = ("AVERAGE_POOL_2D", "host", "its window overlaps the padding, so it divides by a "
              "count that changes near the edges")
    assert [(p.op.kind, p.where, p.note) for p in part.placements] == [
        ("CONV_2D", "accelerator", ""), padded, ("CONV_2D", "accelerator", ""),
        ("AVERAGE_POOL_2D", "accelerator", "")]
    assert [step.where for step in part.steps] == ["accelerator", "host", "accelerator"]
    [depthwise] = partition(load_tflite(MODELS / "depthwise_mult2.tflite")).placements
    assert (depthwise.where, depthwise.note) == (
        "host", "its depth multiplier is 2; the vector unit runs depth multiplier 1")


def test_the_cycle_model_of_a_convolution_is_its_gemm():
    layer = partition(load_tflite(MODELS / "conv_same.tflite")).layers[0]
    # M = 2·81 pixels, K = 3·3·⌈3/4⌉·4, N = 8: 9·2 tiles of 162 vectors each, after the
    # descriptor fetch and its walk's products (7) and the first vector's way to the array
    # (9: the tile loop, the address generator's 3 stages, the ranges' FIFO, the streamer),
    # later than the weight
    # streamer's latency (5) and the first tile's 4 rows, loaded two a beat (2); then the
    # drain, to the output writer's two stages.
    assert CONFIG.weight_load_rows == 2
    assert layer_cycles(CONFIG, layer, 2) == 7 + 9 + 18 * 162 + (
        CONFIG.array_latency + CONFIG.psum_latency + CONFIG.requant_latency + 2)


@pytest.mark.rtl
@pytest.mark.parametrize("name", CONV_MODELS)
def test_conv_models_run_bit_exact_in_rtl(seed, name):
    from verif.network_sim import run_on_rtl
    path = MODELS / f"{name}.tflite"
    graph = load_tflite(path)
    x = _inputs(graph, 4, seed)
    run = run_on_rtl(graph, x, CONFIG, batch=3, check_layers=True, seed=seed, runtime="tflm")
    assert run.mismatches == []
    np.testing.assert_array_equal(run.outputs, graph.run(x, runtime="tflm"))
    np.testing.assert_array_equal(run.outputs, tflm(path, x))
    assert [b["cycles"] for b in run.batches] == [network_cycles(CONFIG, graph, n)
                                                  for n in (3, 1)]
    if name != "reshape":  # LiteRT rounds FULLY_CONNECTED once: checked below
        np.testing.assert_array_equal(run.outputs, litert(path, x))


@pytest.mark.rtl
def test_conv_then_dense_matches_litert_with_single_rounding(seed):
    """The FULLY_CONNECTED after the flatten rounds once for LiteRT, the convolution twice:
    one build, both roundings per layer."""
    from verif.network_sim import run_on_rtl
    path = MODELS / "reshape.tflite"
    graph = load_tflite(path)
    x = _inputs(graph, 4, seed)
    run = run_on_rtl(graph, x, CONFIG, batch=4, seed=seed, runtime="litert")
    assert run.mismatches == []
    np.testing.assert_array_equal(run.outputs, litert(path, x))
    assert run.cycles == network_cycles(CONFIG, graph, 4)


@pytest.mark.rtl
@pytest.mark.parametrize("runtime, oracle", [("litert", litert), ("tflm", tflm)])
def test_mxugen_sim_runs_a_conv_model(tmp_path, capsys, seed, runtime, oracle):
    from mxugen.cli import main
    path = MODELS / "conv_same.tflite"
    x = _inputs(load_tflite(path), 2, seed)
    np.save(tmp_path / "x.npy", x)
    assert main(["sim", str(path), "--match", runtime, "--rows", "4", "--cols", "4",
                 "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    assert "mismatches: 0" in capsys.readouterr().out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), oracle(path, x))


@pytest.mark.rtl
def test_the_cycle_model_holds_when_weights_bound_the_array(seed):
    """Fewer vectors per tile than its load takes beats (rows / weight_load_rows): the array
    waits for weight loads (docs/performance.md), with two rows a beat and with one."""
    from verif.network_sim import run_on_rtl
    graph = load_tflite(MODELS / "fc.tflite")
    x = _inputs(graph, 7, seed)
    for config in (CONFIG, replace(CONFIG, weight_load_rows=1)):
        for m in (1, 2, 3, 4, 7):
            run = run_on_rtl(graph, x[:m], config, batch=m, seed=seed)
            assert run.mismatches == []
            assert run.cycles == network_cycles(config, graph, m), (config.weight_load_rows, m)
