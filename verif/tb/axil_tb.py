"""cocotb tests of the accelerator behind its AXI4-Lite slave (:mod:`hw.axi_lite`), driven by
cocotbext-axi's ``AxiLiteMaster``: the registers, back-to-back and concurrent transactions, the
errors, and a whole network loaded, run and read back through the bus alone."""

from __future__ import annotations

import json

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster
from cocotbext.axi.constants import AxiResp

from hw.axi_lite import ID_VALUE, REGISTERS
from hw.contract import MEM_ACTIVATIONS, MEM_PARAMS, MEM_PROGRAM, MEM_WEIGHTS

from .common import Bench


class AcceleratorDriver:
    """The host's side of the register map: load memories, run a program, read activations."""

    def __init__(self, dut):
        self.axi = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)

    async def write(self, register: str, value: int, index: int = 0) -> None:
        response = await self.axi.write(REGISTERS[register] + 4 * index,
                                        value.to_bytes(4, "little"))
        assert response.resp == AxiResp.OKAY, f"{register}[{index}] ← {value}: {response.resp}"

    async def read(self, register: str, index: int = 0) -> int:
        response = await self.axi.read(REGISTERS[register] + 4 * index, 4)
        assert response.resp == AxiResp.OKAY, f"{register}[{index}]: {response.resp}"
        return int.from_bytes(response.data, "little")

    async def shape(self) -> tuple[int, int, int, int]:
        """rows, cols, WDATA and RDATA registers."""
        value = await self.read("SHAPE")
        return tuple((value >> shift) & 0xFF for shift in (0, 8, 16, 24))

    async def load(self, memory: int, base: int, words: list[int]) -> None:
        """Words into ``memory`` from ``base``: MEM_ADDR counts up by itself."""
        chunks = (await self.shape())[2]
        await self.write("MEM_SELECT", memory)
        await self.write("MEM_ADDR", base)
        for word in words:
            for i in range(chunks):
                await self.write("WDATA", (word >> (32 * i)) & 0xFFFFFFFF, i)

    async def activations(self, base: int, count: int) -> list[int]:
        chunks = (await self.shape())[3]
        words = []
        for address in range(base, base + count):
            await self.write("ACT_READ", address)
            pieces = [await self.read("RDATA", i) for i in range(chunks)]
            words.append(sum(piece << (32 * i) for i, piece in enumerate(pieces)))
        return words

    async def wait(self, timeout_cycles: int, clk) -> int:
        """Poll STATUS until done; the STATUS read last."""
        for _ in range(timeout_cycles // 64 + 1):
            status = await self.read("STATUS")
            if status & 0b010:
                return status
            for _ in range(64):
                await RisingEdge(clk)
        raise AssertionError(f"no done after {timeout_cycles} cycles")


@cocotb.test()
async def registers_and_errors(dut):
    """Constant registers, read-back, concurrent transactions in flight on both channels, and
    SLVERR for what the map refuses."""
    bench = Bench(dut)
    await bench.start()
    driver = AcceleratorDriver(dut)
    axi = driver.axi
    assert await driver.read("ID") == ID_VALUE
    rows, cols, wchunks, rchunks = await driver.shape()
    config = bench.config
    assert (rows, cols) == (config.rows, config.cols)
    assert rchunks == -(-8 * rows // 32)
    assert await driver.read("STATUS") == 0  # idle, nothing run yet

    # Back to back and at once: writes of different registers and reads of a constant, all
    # in flight together; each lands, and the reads see only the constant.
    values = {"START_PC": int(bench.rng.integers(0, config.program_depth)),
              "MEM_SELECT": int(bench.rng.integers(0, 4)),
              "MEM_ADDR": int(bench.rng.integers(0, config.weight_depth))}
    writes = [cocotb.start_soon(axi.write(REGISTERS[name], value.to_bytes(4, "little")))
              for name, value in values.items()]
    reads = [cocotb.start_soon(axi.read(REGISTERS["ID"], 4)) for _ in range(6)]
    for task in writes:
        assert (await task).resp == AxiResp.OKAY
    for task in reads:
        response = await task
        assert response.resp == AxiResp.OKAY and \
            int.from_bytes(response.data, "little") == ID_VALUE
    for name, value in values.items():
        assert await driver.read(name) == value, name

    # A word's last WDATA register writes it and counts MEM_ADDR up.
    await driver.load(MEM_ACTIVATIONS, 5, [0x1234, 0x5678])
    assert await driver.read("MEM_ADDR") == 7
    assert await driver.activations(5, 2) == [0x1234, 0x5678]

    refused = [axi.write(0x02C, b"\x00\x00\x00\x00"),            # no register there
               axi.write(REGISTERS["START_PC"] + 2, b"\x01\x00"),  # not a whole register
               axi.write(REGISTERS["WDATA"] + 4 * wchunks, b"\x00\x00\x00\x00")]
    for write in refused:
        assert (await write).resp == AxiResp.SLVERR
    for address in (0x02C, REGISTERS["RDATA"] + 4 * rchunks, REGISTERS["CONTROL"] + 1):
        assert (await axi.read(address, 4)).resp == AxiResp.SLVERR, hex(address)


@cocotb.test()
async def network_through_the_bus(dut):
    """Load a compiled network's images and input through AXI4-Lite, run its program and
    read its output region back (the caller compares it with the golden model)."""
    bench = Bench(dut)
    s = bench.settings
    await bench.start()
    driver = AcceleratorDriver(dut)
    await driver.load(MEM_WEIGHTS, 0, s["weights"])
    await driver.load(MEM_PARAMS, 0, s["params"])
    await driver.load(MEM_PROGRAM, 0, s["program"])
    await driver.load(MEM_ACTIVATIONS, s["input_base"], s["input_words"])
    await driver.write("START_PC", 0)
    await driver.write("CONTROL", 1)
    # While it runs, its memories and its start are not the host's.
    wchunks = (await driver.shape())[2]
    for register, index in (("WDATA", wchunks - 1), ("CONTROL", 0)):
        response = await driver.axi.write(REGISTERS[register] + 4 * index, b"\x01\0\0\0")
        assert response.resp == AxiResp.SLVERR, f"{register} taken while running"
    status = await driver.wait(int(s["timeout_cycles"]), dut.clk)
    assert not status & 0b100, "the accelerator flagged an invalid program"
    results = {"cycles": await driver.read("CYCLES"),
               "output_words": await driver.activations(s["output_base"], s["output_words"])}
    with open(s["results_file"], "w") as out:
        json.dump(results, out)
