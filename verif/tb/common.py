"""Pieces every testbench needs: clock and reset, the replayable random source."""

from __future__ import annotations

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from hw import ArrayConfig

from ..bulk_load import HALF_PERIOD_NS
from ..runner import load_tb_config


class Bench:
    """Per-test context: the runner's settings, hardware configuration, replayable RNG,
    clock and reset."""

    CLOCK_NS = 2 * HALF_PERIOD_NS  # the whole-network build's own clock has the same period

    def __init__(self, dut):
        self.dut = dut
        self.settings = load_tb_config()
        self.config = ArrayConfig.from_dict(self.settings["hw"]) if "hw" in self.settings else None
        self.seed = int(self.settings.get("seed", 0))
        self.rng = np.random.default_rng(self.seed)
        dut._log.info("random seed %d (replay with --seed %d)", self.seed, self.seed)

    async def start(self, reset_cycles: int = 2, clock: bool = True) -> None:
        """Start the clock (unless the design drives its own: ``clock=False``) and reset."""
        if clock:
            Clock(self.dut.clk, self.CLOCK_NS, unit="ns", impl="gpi").start()
        self.dut.rst.value = 1
        await self.cycles(reset_cycles)
        self.dut.rst.value = 0

    async def cycles(self, n: int) -> None:
        for _ in range(n):
            await RisingEdge(self.dut.clk)
