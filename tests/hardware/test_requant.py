"""The requantizer's RoundingDivideByPOT divisor: its masks for every exponent (the whole
requantizer is checked against the golden model in tests/test_hw_regression.py)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from hwsim import simulate

from hw.requant import rounding_divisor


def test_the_divisor_masks_are_half_and_half_less_one_two_cycles_on():
    """For each exponent r, two cycles later: r, 2^(r−1) and 2^(r−1) − 1 (0 and 0 for r = 0),
    a new exponent every cycle."""
    m = Module()
    exponent = Signal(5)
    right, half, below_half = rounding_divisor(m, exponent, name="d")
    seen = []

    async def testbench(ctx):
        for r in [*range(32), 0, 31, 1]:
            ctx.set(exponent, r)
            await ctx.tick()
            seen.append((ctx.get(right), ctx.get(half), ctx.get(below_half)))
        for _ in range(2):
            await ctx.tick()
            seen.append((ctx.get(right), ctx.get(half), ctx.get(below_half)))

    simulate(m, testbench)
    # seen[j] is read after tick j + 1; the exponent set before tick i + 1 is in two
    # registers' outputs after tick i + 2, so in seen[i + 1].
    exponents = [*range(32), 0, 31, 1]
    for i, r in enumerate(exponents):
        expected_half = (1 << (r - 1)) if r else 0
        assert seen[i + 1] == (r, expected_half, max(expected_half - 1, 0)), r
