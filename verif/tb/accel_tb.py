"""cocotb test of the whole accelerator: load images through the host port, run the program,
read the outputs back and compare them with the golden model's."""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from quantizer.image_formats import unpack_lanes

from .common import Bench


class HostPort:
    """The accelerator's host interface: word writes while idle, activation reads."""

    def __init__(self, dut):
        self.dut = dut
        dut.host_we.value = 0
        dut.start.value = 0

    async def write(self, sel: int, addr: int, word: int) -> None:
        self.dut.host_sel.value, self.dut.host_addr.value = sel, addr
        self.dut.host_wdata.value, self.dut.host_we.value = word, 1
        await RisingEdge(self.dut.clk)
        self.dut.host_we.value = 0

    async def read(self, addr: int) -> int:
        self.dut.host_raddr.value = addr
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        value = int(self.dut.host_rdata.value)
        await RisingEdge(self.dut.clk)
        return value

    async def run(self, timeout_cycles: int) -> None:
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.start.value = 0
        for _ in range(timeout_cycles):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if int(self.dut.done.value):
                await RisingEdge(self.dut.clk)  # leave the read-only phase before returning
                return
        raise AssertionError(f"no done after {timeout_cycles} cycles")


@cocotb.test()
async def network_matches_golden_model(dut):
    bench = Bench(dut)
    s = bench.settings
    await bench.start()
    host = HostPort(dut)
    for sel, base, words in ((0, 0, s["weights"]), (2, 0, s["params"]), (3, 0, s["program"]),
                             (1, s["input_base"], s["inputs"])):
        for offset, word in enumerate(words):
            await host.write(sel, base + offset, word)
    await host.run(int(s["timeout_cycles"]))
    assert int(dut.error.value) == 0, "the accelerator flagged an invalid descriptor"
    words = [await host.read(s["output_base"] + i) for i in range(s["output_words"])]
    rows, samples, size = s["rows"], s["samples"], s["output_size"]
    lanes = unpack_lanes(words, rows, 8, signed=s["dtype"] == "int8")
    got = lanes.reshape(-1, samples, rows).transpose(1, 0, 2).reshape(samples, -1)[:, :size]
    expected = np.array(s["expected"])
    figures = {"cycles": int(dut.cycles.value), "weight_stall_cycles":
               int(dut.weight_stall_cycles.value), "vectors": int(dut.vectors.value)}
    Path(s["figures_file"]).write_text(json.dumps(figures))
    mismatches = np.argwhere(got != expected)
    report = "; ".join(f"sample {i} output {j}: expected {expected[i, j]}, got {got[i, j]}"
                       for i, j in mismatches[:8])
    assert not len(mismatches), f"{len(mismatches)} mismatches: {report}"
    dut._log.info("%d outputs matched the golden model in %d cycles", got.size,
                  figures["cycles"])
