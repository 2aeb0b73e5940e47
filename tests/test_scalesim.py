"""The cycle model against SCALE-Sim, weight-stationary (docs/performance.md, "Cross-check with
SCALE-Sim"): on the models whose cycles the RTL measured and on GEMMs in every regime,
SCALE-Sim's cycles and their difference with ours are the closed forms derived there, exactly.
SCALE-Sim is a dev dependency: the tests fail, rather than skip, without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hw import ArrayConfig
from quantizer.cycles import layer_cycles, predicted_cycles
from quantizer.importers.tflite import load_tflite
from quantizer.partition import partition
from verif.scalesim import layer_gemm, scalesim_cycles, scalesim_gemm_cycles

MODELS = Path(__file__).parent / "models"
#: (model, samples) whose cycles the RTL measured (docs/performance.md, tests/test_conv_rtl.py):
#: the conv chains, and fc in both weight-bound regimes and streaming.
RTL_RUNS = [("conv_same", 1), ("conv_same", 3), ("conv_valid_stride2", 3), ("conv_dilated", 3),
            ("conv_per_tensor", 3), ("reshape", 3), ("fc", 1), ("fc", 4), ("fc", 7)]


def _tiles(config: ArrayConfig, k: int, n: int) -> int:
    return -(-k // config.rows) * -(-n // config.cols)


def scalesim_formula(config: ArrayConfig, m: int, k: int, n: int) -> int:
    """SCALE-Sim's weight-stationary "Total Cycles": its folds run one after the other, each
    loading R weight rows, streaming M vectors and filling and draining R + C − 2; it reports
    the last cycle's index, one less than their count."""
    return _tiles(config, k, n) * (m + 2 * config.rows + config.cols - 2) - 1


def difference_formula(config: ArrayConfig, m: int, k: int, n: int) -> int:
    """ours − SCALE-Sim on the same GEMM, per regime of M (T' = tiles − 1, B = the beats a
    tile's weights take, rows / weight_load_rows): a constant P + A + Q + 17 − (R − B) (P, A
    and Q the product's, the partial-sum accumulator's and the requantizer's pipelines; our
    first load takes B cycles, SCALE-Sim's R), plus the cycles our first vector comes after
    the first tile's weights on an array that loads them in fewer than 4 beats (L = max(0,
    4 − B): the address generator's pipeline), less what our overlapped tiles save on
    SCALE-Sim's sequential folds."""
    r, c = config.rows, config.cols
    beats = r // config.weight_load_rows
    later = _tiles(config, k, n) - 1
    lag = max(0, 4 - beats)
    constant = config.product_latency + config.psum_latency + config.requant_latency + 17 - (
        r - beats)
    if m >= beats:         # streaming: our tiles back to back
        return constant + lag - later * (2 * r + c - 2)
    # weight-bound: a tile takes its load's B beats; the second tile waits for the first's
    # vectors, which came L late, or for its own weights
    return constant + (lag if not later else max(0, lag + m - beats)) - \
        later * (m + 2 * r + c - 2 - beats)


@pytest.mark.parametrize("config", [
    ArrayConfig(rows=4, cols=4),
    ArrayConfig(rows=3, cols=5, pipelined_product=False, requant_modes=("pow2",)),
    ArrayConfig(rows=8, cols=2),
    ArrayConfig(rows=8, cols=2, weight_load_rows=1),
], ids=lambda c: f"{c.rows}x{c.cols}-{c.weight_load_rows}")
def test_gemm_differences_are_the_closed_form_in_every_regime(config):
    r, c = config.rows, config.cols
    beats = r // config.weight_load_rows
    shapes = [(m, k, n) for m in sorted({1, beats - 1, beats, r, r + c, 3 * (r + c)} - {0})
              for k, n in ((r, c), (3 * r, c), (3 * r + 1, c), (2 * r, 2 * c + 1))]
    for result in scalesim_gemm_cycles(config, shapes):
        m, k, n = result["m"], result["k"], result["n"]
        assert result["stall_cycles"] == 0
        assert result["cycles"] == scalesim_formula(config, m, k, n), (m, k, n)
        assert predicted_cycles(config, m, k, n) - result["cycles"] == \
            difference_formula(config, m, k, n), (m, k, n)


def test_network_layers_differences_are_the_closed_form():
    """SCALE-Sim on the GEMM our address generator runs: each tap's channels padded to whole
    row groups."""
    config = ArrayConfig(rows=4, cols=4)
    for model, samples in RTL_RUNS:
        layers = partition(load_tflite(MODELS / f"{model}.tflite")).layers
        for layer, result in zip(layers, scalesim_cycles(config, layers, samples), strict=True):
            m, k, n = layer_gemm(config, layer, samples)
            assert (result["m"], result["k"], result["n"]) == (m, k, n)
            assert result["cycles"] == scalesim_formula(config, m, k, n), model
            assert layer_cycles(config, layer, samples) - result["cycles"] == \
                difference_formula(config, m, k, n), model


def test_conv_layers_as_scalesim_packs_them():
    """SCALE-Sim on the GEMM its own im2col runs, taps packed densely: as many fewer folds as
    the padding added, M + 2R + C − 2 cycles each."""
    config = ArrayConfig(rows=4, cols=4)
    for model in sorted({model for model, _ in RTL_RUNS}):
        layers = partition(load_tflite(MODELS / f"{model}.tflite")).layers
        dense = scalesim_cycles(config, layers, 1, dense_k=True)
        for layer, result in zip(layers, dense, strict=True):
            m, k, n = layer_gemm(config, layer, 1)
            k_dense = layer_gemm(config, layer, 1, dense_k=True)[1]
            fewer_folds = _tiles(config, k, n) - _tiles(config, k_dense, n)
            assert result["k"] == k_dense
            assert layer_cycles(config, layer, 1) - result["cycles"] == \
                difference_formula(config, m, k, n) + fewer_folds * (
                    m + 2 * config.rows + config.cols - 2), model


def test_the_conv_as_scalesim_packs_it():
    conv, dense = partition(load_tflite(MODELS / "reshape.tflite")).layers
    config = ArrayConfig(rows=4, cols=4)
    # 3x3 taps of 2 channels: 18 dense, 36 padded to a row group of 4 each.
    assert layer_gemm(config, conv, 3) == (75, 36, 4)
    assert layer_gemm(config, conv, 3, dense_k=True) == (75, 18, 4)
    assert layer_gemm(config, dense, 3) == layer_gemm(config, dense, 3, dense_k=True) == \
        (3, 100, 10)


def test_bad_shapes_and_a_missing_scalesim_are_named(monkeypatch):
    config = ArrayConfig(rows=4, cols=4)
    with pytest.raises(ValueError, match=r"^GEMM shape #1 must be three positive integers"):
        scalesim_gemm_cycles(config, [(1, 4, 4), (0, 4, 4)])
    with pytest.raises(ValueError, match="^no GEMM shape"):
        scalesim_gemm_cycles(config, [])
    monkeypatch.setitem(sys.modules, "scalesim.scale_sim", None)
    with pytest.raises(ModuleNotFoundError, match=r"SCALE-Sim is not installed.*\.\[dev\]"):
        scalesim_gemm_cycles(config, [(1, 4, 4)])
