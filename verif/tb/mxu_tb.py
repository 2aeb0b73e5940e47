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
from quantizer.fixedpoint import POW2_M0

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
        # A flattened design (the mutants of mxugen.mutation) has no array to watch inside.
        self.acc = None
        if self.settings.get("watch_array", True):
            self.acc = StreamMonitor(dut.clk, dut.array, "acc", accumulator_stream_layout(cfg),
                                     lambda beat: self.acc_board.receive(beat.data))
        self.last_board = Scoreboard("output last flags")
        self.y = StreamMonitor(dut.clk, dut, "y", requant_output_layout(cfg), self._output)
        self.params = RequantParams.random(self.rng, cfg)

    def _output(self, beat) -> None:
        self.y_board.receive(beat.data)
        self.last_board.receive([beat.last])

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
            if self.acc is not None:
                self.acc_board.expect(acc[i], f"{label} vector {i}")
            self.y_board.expect(y[i], f"{label} vector {i}")
            self.last_board.expect([int(i == len(x) - 1)], f"{label} vector {i}")

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
        for board in (self.acc_board, self.y_board, self.last_board):
            board.check()
        self.dut._log.info("%d accumulator and %d output vectors matched the golden model",
                           self.acc_board.matched, self.y_board.matched)
        if "coverage_file" in self.settings:
            self.coverage.export(Path(self.settings["coverage_file"]))


async def random_tiles(dut, idle_probability: float) -> MatrixUnitBench:
    """Random weight tiles and vectors, M from 1 up, with ``idle_probability`` gaps on both
    input streams."""
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
    await random_tiles(dut, idle_probability=0.0)


@cocotb.test()
async def stalling_random_tiles(dut):
    """The same with random gaps on both input streams."""
    await random_tiles(dut, idle_probability=0.3)


@cocotb.test()
async def full_rate_without_bubbles(dut):
    await full_rate(dut)


async def full_rate(dut) -> None:
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
    watched = [(monitor, latency) for monitor, latency in (
        (bench.acc, cfg.array_latency), (bench.y, cfg.array_latency + cfg.requant_latency))
        if monitor is not None]
    cycles = [(monitor.first_transfer - bench.x.first_transfer) / period + 1
              for monitor, _ in watched]
    assert cycles == [latency for _, latency in watched], (
        f"latency {cycles}, documented {cfg.array_latency} / +{cfg.requant_latency}")


@cocotb.test()
async def every_shift(dut):
    await shifts(dut)


async def shifts(dut) -> None:
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
    await corners(dut)


async def corners(dut) -> None:
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


@cocotb.test()
async def rounding_near_zero(dut):
    await rounding_sweep(dut)


async def rounding_sweep(dut) -> None:
    """Every rounding mode built and every shift, with outputs in range where random
    parameters mostly saturate them: a weight tile that passes input k to column k mod rows,
    and vectors that sweep it, so each column's sum runs through consecutive values. Twice
    a shift: multiplier one half (power-of-two, so every mode's) and no bias, so rounding
    ties of both signs and sums of exactly zero reach the outputs; then a random multiplier
    and a bias that brings the outputs to a random target, so every bit of a large sum and of
    the product counts (mutation testing found these gaps, docs/verification.md)."""
    bench = MatrixUnitBench(dut)
    await bench.start()
    cfg, rng = bench.config, bench.rng
    lo, hi = bench.lo, bench.hi
    weights = np.array([[int(k == c % cfg.rows) for c in range(cfg.cols)]
                        for k in range(cfg.rows)])
    length = max(1, 256 // cfg.rows)
    x = lo + (np.arange(length)[:, None] * cfg.rows + np.arange(cfg.rows)) % 256
    zx, zero = (lo + hi + 1) // 2, (lo + hi + 1) // 2
    half = np.full(cfg.cols, POW2_M0)

    def random_case(rounding: str, shift: int) -> tuple[np.ndarray, np.ndarray]:
        # m0 below 2^(31 − shift): at most twice the output range per unit of the sum.
        m0 = half if rounding == "pow2" else \
            rng.integers(0, 1 << min(31, 31 - shift), size=cfg.cols)
        scale = m0 * 2.0 ** (shift - 31)
        target = rng.integers(-100, 101, size=cfg.cols)
        bias = np.where(scale > 0, np.round(target / np.maximum(scale, 1e-30)), 0)
        return m0, np.clip(bias, -(1 << 31) + 256, (1 << 31) - 256).astype(np.int64)

    for rounding in cfg.requant_modes:
        for shift in range(SHIFT_MIN, SHIFT_MAX + 1):
            # The bias moves a large sum a whole output step; the sweep only its lowest bits:
            # several random cases a shift, a few vectors each.
            cases = [("half", half, np.zeros(cfg.cols, np.int64), x)] + \
                [("random", *random_case(rounding, shift), x[:4]) for _ in range(4)]
            for label, m0, bias, vectors in cases:
                params = RequantParams.random(rng, cfg, rounding=rounding, bounds="full")
                bench.apply_params(replace(params, m0=m0.astype(np.int64), bias=bias,
                                           shift=np.full(cfg.cols, shift), zero=zero))
                bench.send_tile(weights, vectors, zw=0, zx=zx,
                                label=f"sweep, {rounding}, shift {shift}, {label} multiplier")
                await bench.drain()  # parameters are static: one tile in flight at a time
    bench.check()


#: The regression's stimuli, each a plain coroutine of the design: what the tests above run,
#: and what every mutant faces (verif/tb/mutant_tb.py).
STIMULI = {"back_to_back": lambda dut: random_tiles(dut, 0.0),
           "stalling": lambda dut: random_tiles(dut, 0.3),
           "full_rate": full_rate, "every_shift": shifts, "corners": corners,
           "rounding": rounding_sweep}
