"""Helpers for the component tests: run a testbench on Amaranth's simulator, and a read-only
memory for a component's read port."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import memory
from amaranth.sim import Simulator


def simulate(top, testbench) -> None:
    """Run the async ``testbench(ctx)`` against ``top`` with a clock on the sync domain."""
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def with_rom(component, words: list[int], width: int, depth: int, addr, data) -> Module:
    """``component`` with a memory of ``words`` on its read port ``addr`` → ``data``
    (synchronous, as the accelerator's memories are)."""
    m = Module()
    m.submodules.dut = component
    m.submodules.rom = rom = memory.Memory(shape=width, depth=depth, init=words)
    port = rom.read_port()
    m.d.comb += [port.addr.eq(addr), data.eq(port.data)]
    return m
