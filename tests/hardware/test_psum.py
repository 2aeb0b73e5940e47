"""The partial-sum accumulator adds each column tile's K tiles per sample and hands the complete
sums to the requantizer with the parameter word the contract packed for that tile."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim import launch, simulate, with_rom

from hw import ArrayConfig
from hw.contract import LAYER_OPS, descriptor_format, lane_params_format
from hw.psum import PartialSumAccumulator

SMALL = dict(rows=2, cols=3, psum_depth=8, param_depth=16)
CONFIGS = [ArrayConfig(**SMALL), ArrayConfig(**SMALL, requant_modes=("pow2",), acc_width=20)]


def _random(rng, word, **fields) -> dict:
    values = {}
    for f in word:
        draw = rng.integers(f.min, f.max + 1, f.lanes or 1).tolist()
        values[f.name] = draw[0] if f.lanes is None else draw
    values.update(fields)
    return values


def _run(config, layer: dict, params: list[dict], acc: np.ndarray, rng, busy: float):
    """Launch ``layer`` and, from the second cycle after, feed the array results
    ``acc[nt, kt, sample, col]`` in the tile loop's order, a beat in a cycle with probability
    ``busy``; return the sums beats."""
    desc, lanes = descriptor_format(config), lane_params_format(config)
    dut = PartialSumAccumulator(config)
    top = with_rom(dut, [lanes.pack(p) for p in params], lanes.size, config.param_depth,
                   dut.param_addr, dut.param_data.as_value(), registered=False)
    beats = [row for tile in acc for k_tile in tile for row in k_tile]
    sums = []

    async def testbench(ctx):
        await launch(ctx, dut.layer, desc, layer, _random(rng, desc))
        await ctx.tick()  # no result right after a launch: the array's latency is longer
        drain = config.psum_latency + 2  # cycles after the last beat
        while drain:
            drain -= not beats
            valid = bool(beats) and rng.random() < busy
            ctx.set(dut.acc.valid, valid)
            if valid:
                ctx.set(dut.acc.payload.data, beats.pop(0))
            if ctx.get(dut.sums.valid):
                out = ctx.get(dut.sums.payload)
                p = out.params
                sums.append({"data": list(out.data), "zero": p.zero, "min": p.min, "max": p.max,
                             **{f.name: list(getattr(p, f.name)) for f in lanes},
                             **({"double": p.double} if config.runtime_rounding_select else {})})
            await ctx.tick()

    simulate(top, testbench)
    return sums


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.describe())
@pytest.mark.parametrize("m, k_tiles, n_tiles, busy", [(3, 3, 2, 0.7), (1, 3, 2, 1.0),
                                                         (8, 1, 3, 1.0), (2, 2, 2, 0.3),
                                                         (2, 3, 2, 1.0), (3, 3, 2, 1.0),
                                                         (4, 3, 2, 1.0), (5, 2, 2, 1.0)])
@pytest.mark.parametrize("op", ["matmul", "max"])
def test_sums_k_tiles_and_attaches_each_tiles_parameters(seed, config, m, k_tiles, n_tiles,
                                                         busy, op):
    """K tiles add up (``max`` layers keep the largest); at full rate, a layer of 1 to 4
    samples comes back to a sample 1 to 4 beats on, before its total is in the memory (each
    from another register), and one of 5 just after."""
    rng = np.random.default_rng(seed)
    cols = config.cols
    layer = _random(rng, descriptor_format(config), m=m, k_tiles=k_tiles, n_tiles=n_tiles,
                    p_base=int(rng.integers(0, config.param_depth - n_tiles + 1)),
                    op=LAYER_OPS.index(op))
    combine = np.max if op == "max" else np.sum
    params = [_random(rng, lane_params_format(config)) for _ in range(config.param_depth)]
    bound = 1 << (config.acc_width - 3)  # sums of up to 3 K tiles stay in range
    acc = rng.integers(-bound, bound, (n_tiles, k_tiles, m, cols))
    sums = _run(config, layer, params, acc.tolist(), rng, busy)
    expected = []
    for nt in range(n_tiles):
        word = params[layer["p_base"] + nt]
        for sample in range(m):
            expected.append({
                "data": combine(acc[nt, :, sample], axis=0).tolist(), "zero": layer["zy"],
                "min": layer["act_min"], "max": layer["act_max"], **word,
                **({"double": layer["double"]} if config.runtime_rounding_select else {})})
    assert sums == expected
