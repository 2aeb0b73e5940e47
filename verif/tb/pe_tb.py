"""Smoke test of the whole toolchain on one processing element (one MAC)."""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly

from hw.pe import activation_layout, weight_load_layout
from quantizer import accumulate, dtype_range

from .bits import pack
from .common import Bench


@cocotb.test()
async def mac_matches_golden_model(dut):
    """psum_out = psum_in + (x − zx)(w − zw) for random operands, both weight banks."""
    bench = Bench(dut)
    config = bench.config
    act, load = activation_layout(config), weight_load_layout(config)
    lo, hi = dtype_range(config.dtype)
    dut.row.value = 0
    await bench.start()
    for trial in range(int(bench.settings.get("trials", 50))):
        x, zx, w, zw = (int(v) for v in bench.rng.integers(lo, hi + 1, size=4))
        psum = int(bench.rng.integers(-(1 << 30), 1 << 30))
        bank = trial % 2
        per_beat = config.weight_load_rows  # row 0 takes value 0 of beat 0
        dut.load_in.value = pack(load, {"values": [w - zw] * per_beat, "bank": bank, "beat": 0,
                                        "valid": 1})
        await bench.cycles(1)
        dut.load_in.value = 0
        dut.x_in.value = pack(act, {"value": x - zx, "bank": bank})
        dut.psum_in.value = psum
        await bench.cycles(1 + config.product_latency + 1)
        await ReadOnly()
        got = dut.psum_out.value.to_signed()
        expected = int(accumulate(np.array([[x]]), np.array([[w]]), input_zero_point=zx,
                                  weight_zero_point=zw, bias=np.array([psum]),
                                  dtype=config.dtype)[0, 0])
        assert got == expected, (f"trial {trial}: x={x} zx={zx} w={w} zw={zw} psum={psum}: "
                                 f"expected {expected}, got {got}")
        await bench.cycles(1)
