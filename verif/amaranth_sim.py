"""A second simulator for whole-network runs: the same accelerator, from the same Amaranth
description, on Amaranth's own simulator instead of Verilator's model of the generated
Verilog, with the same stimulus (:func:`verif.network_sim.plan_run`) through the same host code
(:func:`verif.host_program.run_batches`). A bug in the Verilog conversion or in Verilator
cannot make both agree with the golden model; the comparison runs in CI as it needs nothing
installed. It runs some thousands of cycles a second: small configurations and networks."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from hw import ArrayConfig
from hw.accelerator import Accelerator
from hw.block_ram import READ_LATENCY
from quantizer.graph import Graph

from .host_program import COUNTERS, run_batches, tensors_by_batch
from .network_sim import RtlRun, checked_run, plan_run


class AmaranthHostPort:
    """The accelerator's host port on Amaranth's simulator (``ctx`` a testbench context), a
    word a cycle, as a processor drives it."""

    def __init__(self, ctx, dut: Accelerator):
        self.ctx, self.dut = ctx, dut

    async def write(self, sel: int, base: int, words) -> None:
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.host_sel, sel)
        for offset, word in enumerate(words):
            ctx.set(dut.host_addr, base + offset)
            ctx.set(dut.host_wdata, int(word))
            ctx.set(dut.host_we, 1)
            await ctx.tick()
        ctx.set(dut.host_we, 0)

    async def read(self, base: int, count: int) -> list[int]:
        words = []
        for offset in range(count):  # the read answers READ_LATENCY cycles after its address
            self.ctx.set(self.dut.host_raddr, base + offset)
            await self.ctx.tick().repeat(READ_LATENCY)
            words.append(self.ctx.get(self.dut.host_rdata))
        return words

    async def run(self, timeout_cycles: int, start_pc: int = 0) -> None:
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.start_pc, start_pc)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(timeout_cycles):
            await ctx.tick()
            if ctx.get(dut.done):
                return
        raise AssertionError(f"no done after {timeout_cycles} cycles")

    async def counters(self) -> dict[str, int]:
        return {name: self.ctx.get(getattr(self.dut, name)) for name in (*COUNTERS, "error")}


def run_on_amaranth(graph: Graph, x: np.ndarray, config: ArrayConfig, *,
                    batch: int | None = None, check_layers: bool = False,
                    runtime: str = "litert") -> RtlRun:
    """:func:`verif.network_sim.run_on_rtl` (its parameters and result) on Amaranth's
    simulator: memories loaded and read through the host port."""
    x = np.asarray(x)
    plan = plan_run(graph, x, config, batch=batch, check_layers=check_layers, runtime=runtime)
    golden = graph.run(x, runtime=runtime, all_tensors=True)
    dut = Accelerator(config)
    outcome = {}

    async def testbench(ctx):
        outcome["results"] = await run_batches(AmaranthHostPort(ctx, dut), config, graph,
                                               runtime, x, plan.weights, plan.params,
                                               plan.batches)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    counters, arrays = outcome["results"]
    return checked_run(graph, config, plan, golden, counters,
                       tensors_by_batch(arrays, plan.batches))
