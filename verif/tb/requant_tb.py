"""cocotb regression of the requantizer alone, at full rate with new parameters every beat:
random beats plus a sweep of every shift in [-31, 30] against INT32 corner accumulators.
Every beat is sampled for functional coverage (:mod:`verif.coverage`); with a
``coverage_file`` setting, each test writes the report there."""

from __future__ import annotations

from pathlib import Path

import cocotb
import numpy as np

from hw.requant import requant_input_layout, requant_output_layout
from quantizer.fixedpoint import SHIFT_MAX, SHIFT_MIN

from ..coverage import RequantizerCoverage
from .common import Bench
from .requant_params import RequantParams
from .scoreboard import Scoreboard
from .stream import StreamDriver, StreamMonitor


class RequantBench(Bench):
    def __init__(self, dut):
        super().__init__(dut)
        cfg = self.config
        self.acc_lo, self.acc_hi = -(1 << (cfg.acc_width - 1)), (1 << (cfg.acc_width - 1)) - 1
        self.driver = StreamDriver(dut.clk, dut, "i", requant_input_layout(cfg))
        self.board = Scoreboard("requantized outputs")
        StreamMonitor(dut.clk, dut, "o", requant_output_layout(cfg),
                      lambda beat: self.board.receive(beat.data))
        self.coverage = RequantizerCoverage.shared(cfg)

    def corner_accumulators(self) -> np.ndarray:
        corners = [self.acc_lo, self.acc_hi, 0, 1, -1, self.acc_lo + 1, self.acc_hi - 1]
        corners += [sign * (1 << k) for k in range(self.config.acc_width - 1) for sign in (1, -1)]
        return np.array(corners, dtype=np.int64)

    def random_accumulators(self) -> np.ndarray:
        acc = self.rng.integers(self.acc_lo, self.acc_hi + 1, size=self.config.cols)
        pick = self.rng.random(self.config.cols) < 0.3
        acc[pick] = self.rng.choice(self.corner_accumulators(), size=pick.sum())
        return acc

    def send(self, acc: np.ndarray, params: RequantParams, label: str) -> None:
        self.driver.send({"data": acc.tolist(), "params": params.port_value(), "last": 0})
        self.board.expect(params.golden(acc[None, :], self.config.dtype)[0], label)
        self.coverage.sample(acc[None, :], params)

    async def finish(self) -> None:
        while not self.driver.idle:
            await self.cycles(1)
        await self.cycles(self.config.requant_latency + 2)
        self.board.check()
        self.dut._log.info("%d beats matched the golden model", self.board.matched)
        if "coverage_file" in self.settings:
            self.coverage.export(Path(self.settings["coverage_file"]))


@cocotb.test()
async def random_beats_with_per_beat_parameters(dut):
    bench = RequantBench(dut)
    await bench.start()
    for beat in range(int(bench.settings.get("beats", 400))):
        params = RequantParams.random(bench.rng, bench.config, acc_bits=bench.config.acc_width)
        bench.send(bench.random_accumulators(), params, f"beat {beat} ({params.rounding})")
    await bench.finish()


@cocotb.test()
async def every_shift_with_corner_accumulators(dut):
    """All shifts, both ends of m0 and multipliers above one, on INT32_MIN/MAX and powers of
    two, for every rounding mode built in."""
    bench = RequantBench(dut)
    await bench.start()
    cfg = bench.config
    corners = bench.corner_accumulators()
    for mode in cfg.requant_modes:
        for shift in range(SHIFT_MIN, SHIFT_MAX + 1):
            for start in range(0, len(corners), cfg.cols):
                acc = np.resize(np.roll(corners, -start), cfg.cols)
                params = RequantParams.random(bench.rng, cfg, rounding=mode, bounds="full")
                params.shift[:] = shift
                bench.send(acc, params, f"{mode} shift {shift} acc {acc.tolist()}")
    await bench.finish()
