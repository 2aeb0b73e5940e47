"""The simulation-only additions to the accelerator's Verilog (verif/bulk_load.py); the RTL
tests run every whole-network simulation through them."""

from __future__ import annotations

import re

import pytest

from verif.bulk_load import HALF_PERIOD_NS, dumped_words, with_own_clock

DESIGN = """// header
module accel(start, clk, rst, done);
  input clk;
  wire clk;
  input start;
  output done;
endmodule

module accel_column(clk, x);
  input clk;
  wire clk;
endmodule
"""


def test_the_top_module_drives_its_own_clock():
    text = with_own_clock(DESIGN)
    assert text.startswith("`timescale 1ns/1ps\n")
    top, column = text.split("endmodule")[:2]
    assert "module accel(start, rst, done);" in top
    assert "input clk;" not in top and "reg clk = 1'b0;" in top
    assert re.search(rf"always #{HALF_PERIOD_NS} clk = ~clk;", top)
    assert "module accel_column(clk, x);\n  input clk;" in column  # other modules keep theirs


def test_a_top_without_a_clock_is_refused():
    with pytest.raises(ValueError, match="no clk port"):
        with_own_clock(DESIGN.replace("clk, ", "", 1))
    with pytest.raises(ValueError, match="does not declare clk"):
        with_own_clock(DESIGN.replace("  wire clk;\n", "", 1))


@pytest.mark.parametrize("text", [
    "00000006\n00000009\n0000000c\n",                 # Verilator: the words alone
    "// 0x00000000\n00000006\n00000009\n// 0x00000010\n0000000c\n",  # Icarus: comments
    "@2\n00000006 00000009\n0000000c // last\n",       # an address, two words a line
], ids=["verilator", "icarus", "address"])
def test_dumps_are_read_as_either_simulator_writes_them(text):
    """Icarus puts ``// 0x…`` every 16 words of a ``$writememh`` dump; read as words, they
    shifted every tensor by one (the second simulator found it)."""
    assert dumped_words(text) == [6, 9, 12]
