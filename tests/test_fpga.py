"""`mxugen fpga`: the generated Verilog synthesizes for an ECP5 and places and routes, and the
resources follow from the architecture."""

from __future__ import annotations

import json

import pytest

from mxugen.cli import main

pytestmark = pytest.mark.rtl  # Verilator builds or place and route


def _report(capsys, *args) -> dict:
    assert main(["fpga", "--rows", "2", "--cols", "2", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_shift_only_matrix_unit_uses_one_dsp_per_pe_and_routes(tmp_path, capsys):
    report = _report(capsys, "--requant", "pow2", "-o", str(tmp_path))
    # Each PE's 9×8-bit product maps to one MULT18X18D; a pow2 requantizer multiplies nothing.
    assert report["dsps"] == 2 * 2
    assert report["luts"] > 0 and report["ffs"] > 0
    assert 10 < report["fmax_mhz"] < 1000
    assert report["utilization"]["MULT18X18D"]["used"] == 4
    assert report["critical_path"]["segments"] > 0
    assert (tmp_path / "mxu.v").exists() and (tmp_path / "ecp5" / "nextpnr.log").exists()


def test_multiplier_requantizer_adds_dsps(tmp_path, capsys):
    report = _report(capsys, "--no-pnr", "-o", str(tmp_path))
    assert report["dsps"] > 2 * 2  # the 32×31-bit requantization multipliers
    assert "fmax_mhz" not in report


def test_the_accelerators_block_rams_are_the_ones_decided_before_synthesis(tmp_path, capsys):
    from hw import ArrayConfig
    from hw.block_ram import block_ram_report
    depths = {"weight_depth": 3000, "act_depth": 1000, "psum_depth": 600, "param_depth": 40,
              "program_depth": 8}
    report = _report(capsys, "--accelerator", "--no-pnr", "-o", str(tmp_path),
                     *[f"--{k.replace('_', '-')}={v}" for k, v in depths.items()])
    expected = block_ram_report(ArrayConfig(rows=2, cols=2, **depths))
    assert report["block_rams"] == expected["block_rams"] == 8
