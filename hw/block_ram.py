"""The block RAM an accelerator needs on a Lattice ECP5, decided before synthesis.

Each memory (:func:`hw.contract.memory_shapes`) goes into DP16KD blocks of 18 Kbit, in the
aspect ratio that needs the fewest, or into distributed 16×4 LUT RAMs, whichever costs less at
the costs of Yosys's ECP5 library (``share/lattice/brams_16kd.txt``: 128 a block;
``lutrams_trellis.txt``: 4 a LUT RAM). The decision is written into the Verilog as each
memory's ``ram_style`` attribute, which synthesis follows, so the count here is the DP16KD
count of ``mxugen fpga --accelerator`` (``tests/test_fpga.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .contract import memory_shapes

if TYPE_CHECKING:
    from .config import ArrayConfig

__all__ = ["ECP5_BLOCK_RAMS", "MemoryCost", "block_ram_report", "memory_costs", "ram_attrs"]

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


def ram_attrs(config: ArrayConfig) -> dict[str, dict[str, str]]:
    """Each memory's Verilog attributes: where synthesis is to put it."""
    return {cost.name: {"ram_style": cost.ram_style} for cost in memory_costs(config)}


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
