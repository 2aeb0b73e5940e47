"""The vector unit turns each activation vector of a tap into one partial-sum beat: the column
tile's channels less the zero point times the tile's weight word (depthwise, pooling, mean), or
an add's input rescaled as TFLite's ADD does (checked against quantizer.fixedpoint)."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim import feed_unit, launch, simulate

from hw import ArrayConfig
from hw.contract import LAYER_OPS, SHIFT_MIN, descriptor_format, one_input_fields
from hw.vector import ADD_LEFT_SHIFT, VectorUnit
from quantizer.fixedpoint import multiply_by_quantized_multiplier

CONFIGS = [ArrayConfig(rows=4, cols=2), ArrayConfig(rows=4, cols=4),
           ArrayConfig(rows=2, cols=2, requant_modes=("pow2",))]


def _layer(rng, config, op: str, m: int, n_tiles: int) -> dict:
    word = descriptor_format(config)
    values = {f.name: int(rng.integers(f.min, f.max + 1)) for f in word}
    values.update(one_input_fields(), op=LAYER_OPS.index(op), m=m, n_tiles=n_tiles,
                  k_tiles=2 if op == "add" else int(rng.integers(1, 4)))
    if op == "add":
        for tap in "ab":
            values[f"m0_{tap}"] = int(rng.integers(0, 1 << 31))
            values[f"shift_{tap}"] = int(rng.integers(SHIFT_MIN, 1))
        values["zx2"] = int(rng.integers(-128, 128))
    return values


def _expected(config, layer: dict, x: np.ndarray, w: np.ndarray, op: str) -> np.ndarray:
    """``x[nt, kt, pixel, rows]``, ``w[nt, kt, cols]`` → beats ``[nt, kt, pixel, cols]``."""
    cols, ratio = config.cols, config.rows // config.cols
    out = np.zeros((*x.shape[:3], cols), np.int64)
    for nt in range(x.shape[0]):
        lanes = x[nt, :, :, (nt % ratio) * cols:(nt % ratio + 1) * cols]
        for kt in range(x.shape[1]):
            if op == "add":
                tap = "ab"[kt]
                zero = layer["zx"] if kt == 0 else layer["zx2"]
                out[nt, kt] = multiply_by_quantized_multiplier(
                    (lanes[kt] - zero) << ADD_LEFT_SHIFT, layer[f"m0_{tap}"],
                    layer[f"shift_{tap}"], "double")
            else:
                out[nt, kt] = (lanes[kt] - layer["zx"]) * (w[nt, kt] - layer["zw"])
    return out


def _run(config, layer: dict, x: np.ndarray, w: np.ndarray, rng, busy: float) -> list:
    desc = descriptor_format(config)
    dut = VectorUnit(config)
    weights = [row for tile in w.tolist() for row in tile]
    vectors = [(row, pixel == x.shape[2] - 1) for tile in x.tolist() for k_tile in tile
               for pixel, row in enumerate(k_tile)]
    beats = []

    async def testbench(ctx):
        await launch(ctx, dut.layer, desc, layer)
        beats.extend(data for data, _last in await feed_unit(
            ctx, dut, rng, busy, weights, vectors, zw=layer["zw"], zx=layer["zx"],
            latency=config.vector_latency))

    simulate(dut, testbench)
    return beats


# ADD's rescaling is built only with a multiplier requantizer.
@pytest.mark.parametrize("config, op", [(c, op) for c in CONFIGS for op in ("mac", "max", "add")
                                        if op != "add" or c.has_multiplier],
                         ids=lambda v: v.describe() if isinstance(v, ArrayConfig) else v)
@pytest.mark.parametrize("m, busy", [(3, 0.7), (1, 1.0), (5, 1.0)])
def test_beats_are_the_tiles_channels_weighted_or_rescaled(seed, config, op, m, busy):
    rng = np.random.default_rng(seed)
    layer = _layer(rng, config, op, m, n_tiles=int(rng.integers(1, 5)))
    n_tiles, k_tiles = layer["n_tiles"], layer["k_tiles"]
    x = rng.integers(-128, 128, (n_tiles, k_tiles, m, config.rows))
    w = rng.integers(-128, 128, (n_tiles, k_tiles, config.cols))
    beats = _run(config, layer, x, w, rng, busy)
    expected = _expected(config, layer, x, w, op).reshape(-1, config.cols)
    np.testing.assert_array_equal(np.array(beats), expected)
