"""One column of the array on Amaranth's simulator: weights loaded into both banks through the
load pipeline, a stream of skewed activation vectors, each multiplied with the bank it names;
the bottom partial sum is their dot product, the documented latency after the vector."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim import simulate

from hw import ArrayConfig
from hw.column import ArrayColumn


@pytest.mark.parametrize("rows, pipelined", [(3, True), (4, False), (1, True)])
def test_column_sums_each_vector_with_its_bank(seed, rows, pipelined):
    rng = np.random.default_rng(seed)
    config = ArrayConfig(rows=rows, cols=1, pipelined_product=pipelined)
    dut = ArrayColumn(config)
    weights = rng.integers(-255, 256, (2, rows))       # zero-point-corrected operands
    count = 12
    xs = rng.integers(-255, 256, (count, rows))
    banks = rng.integers(0, 2, count)
    # A PE's psum follows its activation by 1 cycle plus the product's registers; the
    # bottom row sees a vector rows − 1 cycles after the top one.
    latency = rows - 1 + 1 + config.product_latency
    got = {}

    async def testbench(ctx):
        per_beat = config.weight_load_rows           # rows a load beat carries
        for bank in range(2):
            for beat in range(rows // per_beat):
                values = weights[bank, beat * per_beat:(beat + 1) * per_beat]
                ctx.set(dut.load_in, {"values": [int(v) for v in values], "bank": bank,
                                      "beat": beat, "valid": 1})
                await ctx.tick()
        ctx.set(dut.load_in.valid, 0)
        for _ in range(rows):                       # the last load reaches the bottom row
            await ctx.tick()
        for t in range(count + rows + latency + 1):
            for r in range(rows):                   # vector i enters row r at cycle i + r
                i = t - r
                if 0 <= i < count:
                    ctx.set(dut.x_in[r], {"value": int(xs[i, r]), "bank": int(banks[i])})
            await ctx.tick()
            got[t] = ctx.get(dut.psum_out)
            for r in range(rows):                   # and leaves to the right a cycle later
                i = t - r
                if 0 <= i < count:
                    assert ctx.get(dut.x_out[r].value) == xs[i, r]

    simulate(dut, testbench)
    for i in range(count):
        expected = int(xs[i] @ weights[banks[i]])
        assert got[i + latency - 1] == expected, f"vector {i} (bank {banks[i]})"
