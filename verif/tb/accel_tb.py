"""cocotb test of the whole accelerator: load the network's images through the host port once,
then for every batch write its inputs, run its steps — accelerator programs, and the operators
the host runs between them with the golden model — and read the outputs (on request every
tensor) back (:func:`verif.host_program.run_batches`, through :class:`HostPort`). Tensors go to
an ``.npz`` file and counters to a JSON file for the caller
(:func:`verif.network_sim.run_on_rtl`), which compares them with the golden model."""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from hw import ArrayConfig
from hw.block_ram import READ_LATENCY
from hw.contract import (MEM_ACTIVATIONS, MEM_PROGRAM, memory_array_words, memory_row_words,
                         words_per_row)
from quantizer.graph import Graph

from ..bulk_load import FILE, dumped_words, image_file
from ..host_program import COUNTERS, run_batches
from .common import Bench


class HostPort:
    """The accelerator's host interface: word writes while idle, activation reads.

    With ``bulk`` (the simulator has the loader of :mod:`verif.bulk_load`, as every
    whole-network build does) each image goes in on one clock edge from a file and activation
    words come back the same way, so Python wakes once per image, not once per word; without
    it, words go through the host port one a cycle, as a processor writes them."""

    def __init__(self, dut, config: ArrayConfig, bulk: bool = True):
        self.dut, self.config = dut, config
        dut.host_we.value = 0
        dut.start.value = 0
        self.bulk = bulk
        dut._log.info("memories loaded %s", "in bulk from files" if self.bulk
                      else "through the host port")

    async def write(self, sel: int, base: int, words) -> None:
        words = list(words)
        if self.bulk:  # straight into the memory array's whole rows; any part row's words
            # (a tensor that does not start or end on a row) through the host port
            per_row = words_per_row(self.config, sel)
            head = min(-base % per_row, len(words))
            whole = (len(words) - head) // per_row * per_row
            if whole:
                Path(FILE).write_text(image_file(*memory_array_words(
                    self.config, sel, base + head, words[head:head + whole])))
                self.dut.mxugen_sel.value = sel
                await self._pulse(self.dut.mxugen_load)
            await self._write_words(sel, base, words[:head])
            await self._write_words(sel, base + head + whole, words[head + whole:])
            return
        await self._write_words(sel, base, words)

    async def _write_words(self, sel: int, base: int, words: list[int]) -> None:
        """Write ``words`` through the host port, one a cycle."""
        if not words:
            return
        self.dut.host_sel.value = sel
        for offset, word in enumerate(words):
            self.dut.host_addr.value, self.dut.host_wdata.value = base + offset, word
            self.dut.host_we.value = 1
            await RisingEdge(self.dut.clk)
        self.dut.host_we.value = 0

    async def read(self, base: int, count: int) -> list[int]:
        if self.bulk:
            # The memory array's rows that hold the words, and the words of those rows.
            per_row = words_per_row(self.config, MEM_ACTIVATIONS)
            first = base // per_row
            self.dut.mxugen_first.value = first
            self.dut.mxugen_last.value = (base + count - 1) // per_row
            await self._pulse(self.dut.mxugen_dump)
            words = memory_row_words(self.config, MEM_ACTIVATIONS,
                                     dumped_words(Path(FILE).read_text()))
            return words[base - first * per_row:][:count]
        words = []
        for offset in range(count):
            self.dut.host_raddr.value = base + offset
            for _ in range(READ_LATENCY):
                await RisingEdge(self.dut.clk)
            await ReadOnly()
            words.append(int(self.dut.host_rdata.value))
            await RisingEdge(self.dut.clk)
        return words

    async def counters(self) -> dict[str, int]:
        """The last run's counters and ``error``."""
        return {name: int(getattr(self.dut, name).value) for name in (*COUNTERS, "error")}

    async def _pulse(self, flag) -> None:
        """Raise ``flag`` for one clock edge; the loader has acted when this returns."""
        flag.value = 1
        await RisingEdge(self.dut.clk)
        flag.value = 0
        await RisingEdge(self.dut.clk)

    async def run(self, timeout_cycles: int, start_pc: int = 0) -> None:
        """Run the program at ``start_pc``: pulse start and wait for done without touching the
        design every cycle."""
        self.dut.start_pc.value = start_pc
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.start.value = 0
        await RisingEdge(self.dut.clk)
        if not int(self.dut.done.value):
            finished = await First(RisingEdge(self.dut.done),
                                   Timer(timeout_cycles * Bench.CLOCK_NS, unit="ns"))
            if not int(self.dut.done.value):
                raise AssertionError(f"no done after {timeout_cycles} cycles ({finished})")
        await RisingEdge(self.dut.clk)


@cocotb.test()
async def run_network(dut):
    """Every batch: write its program and inputs, run the steps (accelerator programs and host
    operators), read the requested tensors back; the caller compares them with the golden
    model."""
    bench = Bench(dut)
    s = bench.settings
    await bench.start(clock=False)  # the simulation build drives its clock
    host = HostPort(dut, bench.config, bulk=s.get("bulk", True))

    def done(samples: int) -> None:
        if "progress_file" in s:  # the caller shows how many samples are done
            with open(s["progress_file"], "a") as progress:
                progress.write(f"{samples}\n")

    results, arrays = await run_batches(host, bench.config, Graph.load(s["graph"]),
                                        s["runtime"], np.load(s["inputs_file"]), s["weights"],
                                        s["params"], s["batches"], done)
    np.savez(s["arrays_file"], **arrays)
    Path(s["results_file"]).write_text(json.dumps({"batches": results}))
    dut._log.info("%d batches ran", len(results))


@cocotb.test()
async def invalid_descriptor_stops_with_error(dut):
    """A descriptor with no samples and no tiles: the run ends at once with done and error."""
    bench = Bench(dut)
    await bench.start(clock=False)  # the simulation build drives its clock
    host = HostPort(dut, bench.config)
    await host.write(MEM_PROGRAM, 0, [0])
    await host.run(100)
    assert int(dut.done.value) == 1 and int(dut.error.value) == 1
