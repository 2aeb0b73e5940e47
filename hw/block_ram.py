"""The block RAM an accelerator needs on a Lattice ECP5, decided before synthesis.

Each memory (:func:`hw.contract.memory_shapes`) goes into DP16KD blocks of 18 Kbit, in the
aspect ratio that needs the fewest, or into distributed 16×4 LUT RAMs, whichever costs less at
the costs of Yosys's ECP5 library (``share/lattice/brams_16kd.txt``: 128 a block;
``lutrams_trellis.txt``: 4 a LUT RAM). The decision is written into the Verilog as each
memory's ``ram_style`` attribute, which synthesis follows, so the count here is the DP16KD
count of ``mxugen fpga --accelerator`` (``tests/test_fpga.py``).

Every read of those memories is registered once more in the fabric (:func:`registered_read`,
:data:`READ_LATENCY`), the register a DP16KD keeps in itself and ``mxugen fpga`` moves there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from amaranth.hdl import Module, Signal

from .contract import memory_shapes

if TYPE_CHECKING:
    from .config import ArrayConfig

__all__ = ["ECP5_BLOCK_RAMS", "READ_LATENCY", "MemoryCost", "block_ram_report", "memory_costs",
           "ram_attrs", "registered_read"]

#: Cycles from a memory read's address to its data: the read port's own register, then one in
#: the fabric (:func:`registered_read`).
READ_LATENCY = 2

#: DP16KD blocks of each ECP5 size (``mxugen fpga --device``).
ECP5_BLOCK_RAMS = {"25k": 56, "45k": 108, "85k": 208}
#: A DP16KD's ``(words, bits)`` aspect ratios (512 × 36 as a simple dual-port PDPW16KD).
_ASPECTS = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
_BLOCK_COST, _LUTRAM_COST, _LUTRAM_WORDS, _LUTRAM_BITS = 128, 4, 16, 4


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class MemoryCost:
    """One memory: ``blocks`` DP16KD, or ``lut_rams`` TRELLIS_DPR16X4 when those cost less."""

    name: str
    bits: int
    words: int
    blocks: int
    lut_rams: int

    @property
    def ram_style(self) -> str:
        return "block" if self.blocks else "distributed"


def memory_costs(config: ArrayConfig) -> list[MemoryCost]:
    """Where each of the accelerator's memories goes on an ECP5."""
    costs = []
    for name, (bits, words) in memory_shapes(config).items():
        blocks = min(_ceil(words, depth) * _ceil(bits, width) for depth, width in _ASPECTS)
        luts = _ceil(words, _LUTRAM_WORDS) * _ceil(bits, _LUTRAM_BITS)
        in_blocks = blocks * _BLOCK_COST <= luts * _LUTRAM_COST
        costs.append(MemoryCost(name, bits, words, blocks if in_blocks else 0,
                                0 if in_blocks else luts))
    return costs


def ram_attrs(config: ArrayConfig) -> dict[str, dict[str, str | int]]:
    """Each memory's Verilog attributes: where synthesis is to put it, and Yosys's
    ``no_rw_check``, that a read of a word written in the same cycle may return either value.

    Without it Yosys keeps the written word and compares addresses in the fabric, to return
    the old value as the Verilog does, which puts logic between the block's output and the
    register after it (:func:`registered_read`). No read here depends on it: a layer's input
    and output never share words (:mod:`quantizer.memory_plan`), the host accesses the memories
    while the accelerator is idle, and the partial-sum accumulator takes a sample's running
    value from its own pipeline when the word is that recent
    (:class:`~hw.psum.PartialSumAccumulator`). The window unit's line buffer does read the
    word written in the same cycle (a transparent port), so it keeps the check."""
    return {cost.name: {"ram_style": cost.ram_style,
                        **({} if cost.name == "lines" else {"no_rw_check": 1})}
            for cost in memory_costs(config)}


def block_ram_report(config: ArrayConfig, device: str | None = None) -> dict:
    """The DP16KD blocks in all and per memory, and with ``device`` the ones it has and
    whether they suffice."""
    costs = memory_costs(config)
    report = {"block_rams": sum(c.blocks for c in costs),
              "block_rams_by_memory": {c.name: c.blocks for c in costs if c.blocks},
              "distributed_rams": sum(c.lut_rams for c in costs)}
    if device is not None:
        if device not in ECP5_BLOCK_RAMS:
            raise ValueError(f"device must be one of {', '.join(ECP5_BLOCK_RAMS)}, got "
                             f"{device!r}")
        report |= {"device": device, "device_block_rams": ECP5_BLOCK_RAMS[device],
                   "fits": report["block_rams"] <= ECP5_BLOCK_RAMS[device]}
    return report


def registered_read(m: Module, port, name: str) -> Signal:
    """``port``'s data registered once more, with no enable and no reset, and nothing but the
    register on the port's output: the register a block RAM keeps in itself (a DP16KD's
    ``OUTREG``, which ``mxugen fpga`` moves it into), where a read that goes on into logic in
    the cycle it arrives would take the block's slow clock-to-output and a route into the
    fabric in one cycle."""
    data = Signal.like(port.data, name=name, reset_less=True)
    m.d.sync += data.eq(port.data)
    return data
