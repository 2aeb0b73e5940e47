"""cocotb regression of the matrix unit (systolic array + requantizer).

Every accumulator vector leaving the array and every int8 vector leaving the requantizer is
compared with the golden model (``quantizer.accumulate`` / ``quantizer.requantize``).
The stimulus is drawn from the seed the runner passes in, so any failure replays exactly.
Every tile is sampled for functional coverage (:mod:`verif.coverage`); with a
``coverage_file`` setting, each test writes the report there.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cocotb
import numpy as np
from cocotb.simtime import convert

from hw.array import accumulator_stream_layout, activation_stream_layout, weight_stream_layout
from hw.contract import SHIFT_MAX, SHIFT_MIN
from hw.requant import requant_output_layout
from quantizer import accumulate, dtype_range

from ..coverage import MatrixUnitCoverage
from .bits import pack
from .common import Bench
from .requant_params import RequantParams
from .scoreboard import Scoreboard
from .stream import StreamDriver, StreamMonitor


class MatrixUnitBench(Bench):
    """Drivers for x/w, monitors on the array's accumulators and the unit's output, and one
    scoreboard for each."""

    def __init__(self, dut, idle_probability: float = 0.0):
        super().__init__(dut)
        cfg = self.config
        self.idle_probability = idle_probability
        self.coverage = MatrixUnitCoverage.shared(cfg)
        self.lo, self.hi = dtype_range(cfg.dtype)
        self.x = StreamDriver(dut.clk, dut, "x", activation_stream_layout(cfg), rng=self.rng,
                              idle_probability=idle_probability)
        self.w = StreamDriver(dut.clk, dut, "w",
                              weight_stream_layout(cfg, cfg.weight_load_rows), rng=self.rng,
                              idle_probability=idle_probability)
        self.acc_board = Scoreboard("array accumulators")
        self.y_board = Scoreboard("requantized outputs")
        self.acc = StreamMonitor(dut.clk, dut.array, "acc", accumulator_stream_layout(cfg),
                                 lambda beat: self.acc_board.receive(beat.data))
        self.y = StreamMonitor(dut.clk, dut, "y", requant_output_layout(cfg),
                               lambda beat: self.y_board.receive(beat.data))
        self.params = RequantParams.random(self.rng, cfg)

    def apply_params(self, params: RequantParams) -> None:
        self.params = params
        self.dut.params.value = pack(params.layout, params.port_value())

    def random_values(self, shape) -> np.ndarray:
        return self.rng.integers(self.lo, self.hi + 1, size=shape)

    def send_tile(self, weights: np.ndarray, x: np.ndarray, *, zw: int, zx: int,
                  label: str) -> None:
        """Queue one weight tile (``rows × cols``) and the vectors (``M × rows``) using it, and
        their golden results."""
        per_beat = self.config.weight_load_rows
        for k in range(0, self.config.rows, per_beat):
            self.w.send({"data": [int(v) for v in weights[k:k + per_beat].reshape(-1)],
                         "zero": zw})
        for i, vector in enumerate(x):
            self.x.send({"data": [int(v) for v in vector], "zero": zx, "last": i == len(x) - 1})
        acc = accumulate(x, weights.T, input_zero_point=zx, weight_zero_point=zw,
                         dtype=self.config.dtype)
        y = self.params.golden(acc, self.config.dtype)
        self.coverage.sample_tile(weights, x, zx=zx, zw=zw, params=self.params, acc=acc,
                                  gaps=self.idle_probability > 0)
        for i in range(len(x)):
            self.acc_board.expect(acc[i], f"{label} vector {i}")
            self.y_board.expect(y[i], f"{label} vector {i}")

    def random_tile(self, m: int, label: str) -> None:
        cfg = self.config
        zw = 0 if self.rng.random() < 0.5 else int(self.rng.integers(self.lo, self.hi + 1))
        zx = int(self.rng.integers(self.lo, self.hi + 1))
        self.send_tile(self.random_values((cfg.rows, cfg.cols)), self.random_values((m, cfg.rows)),
                       zw=zw, zx=zx, label=label)

    async def drain(self) -> None:
        """Wait until everything queued has been sent and every expected output arrived."""
        timeout = 2000 + 4 * (self.config.array_latency + self.config.requant_latency)
        while not (self.x.idle and self.w.idle):
            await self.cycles(1)
        for _ in range(timeout):
            if not (self.acc_board.pending or self.y_board.pending):
                break
            await self.cycles(1)
        await self.cycles(self.config.array_latency + self.config.requant_latency + 2)

    def check(self) -> None:
        self.acc_board.check()
        self.y_board.check()
        self.dut._log.info("%d accumulator and %d output vectors matched the golden model",
                           self.acc_board.matched, self.y_board.matched)
        if "coverage_file" in self.settings:
            self.coverage.export(Path(self.settings["coverage_file"]))


async def _run_random_tiles(dut, idle_probability: float) -> MatrixUnitBench:
    bench = MatrixUnitBench(dut, idle_probability)
    bench.apply_params(bench.params)
    await bench.start()
    cfg = bench.config
    for t in range(int(bench.settings.get("tiles", 12))):
        # Short tiles stress the weight double-buffering; long ones the steady state.
        m = int(bench.rng.choice([1, 2, cfg.rows, cfg.rows + cfg.cols, 2 * (cfg.rows + cfg.cols)]))
        bench.random_tile(m, f"tile {t} (M={m})")
    await bench.drain()
    bench.check()
    return bench


@cocotb.test()
async def back_to_back_random_tiles(dut):
    """Random weight tiles and vectors, both streams always offering: tile switches as fast
    as the array allows, M from 1 up."""
    await _run_random_tiles(dut, idle_probability=0.0)


@cocotb.test()
async def stalling_random_tiles(dut):
    """The same with random gaps on both input streams."""
    await _run_random_tiles(dut, idle_probability=0.3)


@cocotb.test()
async def full_rate_without_bubbles(dut):
    """Tiles used for as many vectors as a tile takes beats to load (rows /
    weight_load_rows): once the first tile is in, the array takes one vector every cycle,
    weight loads fully hidden behind compute; results appear exactly array_latency
    (+ requant_latency) cycles after their vector."""
    bench = MatrixUnitBench(dut)
    bench.apply_params(bench.params)
    await bench.start()
    cfg = bench.config
    for t in range(6):
        bench.random_tile(cfg.rows // cfg.weight_load_rows, f"tile {t}")
    await bench.drain()
    bench.check()
    assert bench.x.stalls == 0, f"{bench.x.stalls} cycles the array refused a vector"
    # The driver stamps the edge that ends handshake cycle h; the monitor stamps the edge that
    # starts the cycle its beat is valid in, h + latency: latency − 1 periods apart.
    # In simulator steps, which are integers: nanoseconds are floats that drift over a run.
    period = int(convert(Bench.CLOCK_NS, "ns", to="step"))
    cycles = [(mon.first_transfer - bench.x.first_transfer) / period + 1
              for mon in (bench.acc, bench.y)]
    assert cycles == [cfg.array_latency, cfg.array_latency + cfg.requant_latency], (
        f"latency {cycles}, documented {cfg.array_latency} / +{cfg.requant_latency}")


@cocotb.test()
async def every_shift(dut):
    """Each shift of the contract's range on every lane, with each rounding mode built in
    turn: a tile of one or two random vectors per shift."""
    bench = MatrixUnitBench(dut)
    await bench.start()
    cfg = bench.config
    for shift in range(SHIFT_MIN, SHIFT_MAX + 1):
        rounding = cfg.requant_modes[shift % len(cfg.requant_modes)]
        params = RequantParams.random(bench.rng, cfg, rounding=rounding,
                                      acc_bits=cfg.acc_width)
        bench.apply_params(replace(params, shift=np.full(cfg.cols, shift)))
        bench.random_tile(1 + shift % 2, f"shift {shift}, {rounding}")
        await bench.drain()  # parameters are static: one tile in flight at a time
    bench.check()


@cocotb.test()
async def directed_corners(dut):
    """Extreme operands, zero points at both ends, all-max accumulations, every requant mode
    built in, ReLU / ReLU6-style bounds; each case with its own parameters."""
    bench = MatrixUnitBench(dut)
    await bench.start()
    cfg = bench.config
    lo, hi = bench.lo, bench.hi
    rows, cols = cfg.rows, cfg.cols
    cases = [
        ("min x min", np.full((rows, cols), lo), np.full((3, rows), lo), 0, 0),
        ("max x max", np.full((rows, cols), hi), np.full((3, rows), hi), 0, 0),
        ("operands +255 x -255", np.full((rows, cols), lo), np.full((2, rows), hi), hi, lo),
        ("operands -255 x -255", np.full((rows, cols), lo), np.full((2, rows), lo), hi, hi),
        ("operands -255 x +255", np.full((rows, cols), hi), np.full((2, rows), lo), lo, hi),
        ("operands +255 x +255", np.full((rows, cols), hi), np.full((2, rows), hi), lo, lo),
        ("zero points at both ends", bench.random_values((rows, cols)),
         bench.random_values((4, rows)), lo, hi),
        ("alternating extremes", np.where(np.indices((rows, cols)).sum(0) % 2, lo, hi),
         np.where(np.indices((3, rows)).sum(0) % 2, hi, lo), 0, 0),
    ]
    for mode in cfg.requant_modes:
        for bounds in ("full", "relu", "relu6"):
            for name, weights, x, zw, zx in cases:
                bench.apply_params(RequantParams.random(bench.rng, cfg, rounding=mode,
                                                        bounds=bounds, acc_bits=cfg.acc_width))
                bench.send_tile(weights, x, zw=zw, zx=zx, label=f"{name}, {mode}, {bounds}")
                await bench.drain()  # parameters are static: one case in flight at a time
    bench.check()

