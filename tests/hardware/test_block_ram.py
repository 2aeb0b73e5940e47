"""hw.block_ram: where each memory goes on an ECP5 and how many DP16KD it takes (the count
Yosys reaches is checked in tests/test_fpga.py)."""

from __future__ import annotations

import pytest

from hw import ArrayConfig
from hw.block_ram import block_ram_report, memory_costs, ram_attrs


def test_each_memory_takes_the_fewest_blocks_of_any_aspect_ratio():
    costs = {c.name: c for c in memory_costs(ArrayConfig(rows=4, cols=4))}
    # 4096 words of 32 bits: 8 blocks as 4096×4, 2048×9, 1024×18 or 512×36.
    assert costs["weights"].blocks == costs["activations"].blocks == 8
    # 512 sums of 4 × 32 bits: 512×36, four blocks side by side.
    assert costs["psums"].blocks == 4
    # 16 descriptors: one LUT RAM deep, ⌈bits/4⌉ wide, far cheaper than ⌈bits/36⌉ blocks.
    program = costs["program"]
    assert program.blocks == 0 and program.lut_rams == -(-program.bits // 4)
    assert ram_attrs(ArrayConfig(rows=4, cols=4))["program"] == {"ram_style": "distributed",
                                                                 "no_rw_check": 1}
    # The window unit's line buffer reads the word written in the same cycle: Yosys must keep
    # that behaviour there.
    lines = ram_attrs(ArrayConfig(rows=4, cols=4, window=3, window_width=8))["lines"]
    assert "no_rw_check" not in lines


def test_a_deep_narrow_memory_uses_a_deep_aspect_ratio():
    config = ArrayConfig(rows=2, cols=2, weight_depth=16384, weight_bits=1, weight_load_rows=1)
    [weights] = [c for c in memory_costs(config) if c.name == "weights"]
    # 16384 words of 2 bits = 32 Kbit: two 16384×1 blocks (as 512×36 it would take 32).
    assert (weights.bits, weights.blocks) == (2, 2)


def test_a_device_with_too_few_blocks_is_reported():
    # 64-bit words: 128 blocks
    config = ArrayConfig(rows=8, cols=8, weight_depth=32768, weight_load_rows=1)
    report = block_ram_report(config, "45k")
    assert report["block_rams_by_memory"]["weights"] == 128
    assert (report["device_block_rams"], report["fits"]) == (108, False)
    assert block_ram_report(config, "85k")["fits"]
    with pytest.raises(ValueError, match="device must be one of 25k, 45k, 85k"):
        block_ram_report(config, "12k")
