"""The naive MAC array `mxugen bench fpga` measures against computes a weight-stationary GEMM:
after loading W, activation row vectors entering skewed leave as x·W at the bottom."""

from __future__ import annotations

import numpy as np

from hw import ArrayConfig
from hw.baseline import NaiveMacArray

from hwsim import simulate


def test_naive_array_multiplies_activations_by_its_weights(seed):
    config = ArrayConfig(rows=3, cols=4)
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, (3, 4))
    x = rng.integers(-128, 128, (5, 3))
    dut = NaiveMacArray(config)
    got = np.zeros((5, 4), np.int64)

    async def bench(ctx):
        ctx.set(dut.load, 1)
        for r in reversed(range(3)):  # the bottom row's weights go in first
            for c in range(4):
                ctx.set(dut.w[c], int(w[r, c]))
            await ctx.tick()
        ctx.set(dut.load, 0)
        # Row r of vector i enters at cycle i + r; its column-c sum leaves r + c cycles later.
        for t in range(5 + 3 + 4 + 1):
            for r in range(3):
                i = t - r
                ctx.set(dut.x[r], int(x[i, r]) if 0 <= i < 5 else 0)
            await ctx.tick()
            for c in range(4):
                i = t - 2 - c
                if 0 <= i < 5:
                    got[i, c] = ctx.get(dut.sums[c])

    simulate(dut, bench)
    np.testing.assert_array_equal(got, x @ w)
