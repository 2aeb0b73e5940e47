"""cocotb test of the whole accelerator: load the network's images through the host port once,
then for every batch write its inputs, run the program, read the outputs (and, on request,
every layer's) back and compare them with the golden model's. Results (outputs, counters,
mismatches) go to a JSON file for the caller (``mxugen sim``, ``mxugen bench``)."""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from hw.contract import MEM_ACTIVATIONS, MEM_PARAMS, MEM_PROGRAM, MEM_WEIGHTS
from quantizer.compile import decode_activations

from .common import Bench


class HostPort:
    """The accelerator's host interface: word writes while idle, activation reads."""

    def __init__(self, dut):
        self.dut = dut
        dut.host_we.value = 0
        dut.start.value = 0

    async def write(self, sel: int, base: int, words) -> None:
        self.dut.host_sel.value = sel
        for offset, word in enumerate(words):
            self.dut.host_addr.value, self.dut.host_wdata.value = base + offset, word
            self.dut.host_we.value = 1
            await RisingEdge(self.dut.clk)
        self.dut.host_we.value = 0

    async def read(self, base: int, count: int) -> list[int]:
        words = []
        for offset in range(count):
            self.dut.host_raddr.value = base + offset
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            words.append(int(self.dut.host_rdata.value))
            await RisingEdge(self.dut.clk)
        return words

    async def run(self, timeout_cycles: int) -> None:
        """Pulse start and wait for done without touching the design every cycle."""
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
async def network_matches_golden_model(dut):
    bench = Bench(dut)
    s = bench.settings
    await bench.start()
    host = HostPort(dut)
    await host.write(MEM_WEIGHTS, 0, s["weights"])
    await host.write(MEM_PARAMS, 0, s["params"])
    results, problems = [], []
    for number, batch in enumerate(s["batches"]):
        await host.write(MEM_PROGRAM, 0, batch["program"])
        await host.write(MEM_ACTIVATIONS, batch["input_base"], batch["inputs"])
        await host.run(int(batch["timeout_cycles"]))
        assert int(dut.error.value) == 0, "the accelerator flagged an invalid descriptor"
        samples = batch["samples"]
        for read in batch["reads"]:
            words = await host.read(read["base"], read["words"])
            # (pixels, channels): a sample's output pixels, then the next sample's
            pixels = read.get("pixels", samples)
            got = decode_activations(words, s["rows"], pixels, read["size"], s["dtype"])
            expected = np.array(read["expected"])
            per_sample = pixels // samples
            for i, j in np.argwhere(got != expected):
                where = f"sample {batch['first_sample'] + i // per_sample}" + \
                    (f", pixel {i % per_sample}" if per_sample > 1 else "")
                problems.append(f"layer {read['name']}, {where}, output {j}: expected "
                                f"{expected[i, j]}, got {got[i, j]}")
        # The last read is the network's output.
        results.append({"outputs": got.tolist(), "cycles": int(dut.cycles.value),
                        "weight_stall_cycles": int(dut.weight_stall_cycles.value),
                        "vectors": int(dut.vectors.value)})
    Path(s["results_file"]).write_text(json.dumps({"batches": results, "mismatches": problems}))
    assert not problems, f"{len(problems)} mismatches with the golden model: " + \
        "; ".join(problems[:8])
    dut._log.info("%d batches matched the golden model", len(results))


@cocotb.test()
async def invalid_descriptor_stops_with_error(dut):
    """A descriptor with no samples and no tiles: the run ends at once with done and error."""
    bench = Bench(dut)
    await bench.start()
    host = HostPort(dut)
    await host.write(MEM_PROGRAM, 0, [0])
    await host.run(100)
    assert int(dut.done.value) == 1 and int(dut.error.value) == 1
