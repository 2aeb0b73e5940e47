"""Bulk memory loads for whole-network simulations: the testbench writes a memory image to a
file and the simulator reads it with ``$readmemh`` in one clock edge (and dumps activation
words with ``$writememh``), so Python wakes once per image, not once per word.

:func:`with_bulk_loader` adds the loader to the accelerator's top module for simulation builds
only; the Verilog users get has none. The testbench drives it through four variables of the
top module (public in a ``visibility="ports"`` build): ``mxugen_load`` (load memory
``mxugen_sel`` from :data:`FILE` on the next edge), ``mxugen_dump`` (write activation words
``mxugen_first … mxugen_last`` to :data:`FILE` on the next edge), in the simulator's working
directory.

:func:`with_own_clock` makes the simulation build drive its own clock (``always #5 clk =
~clk``, built with ``--timing``) instead of cocotb toggling the ``clk`` port through VPI
every half period: a whole-network run touches the design only at loads, starts and ``done``,
and cocotb's per-toggle callbacks cost about a microsecond a cycle (docs/performance.md).
"""

from __future__ import annotations

import hashlib

from hw.contract import MEM_ACTIVATIONS, MEMORY_ARRAYS

#: The file both sides exchange, in the simulator's working directory.
FILE = "mxugen_bulk.hex"


def _loader() -> str:
    cases = "".join(f"      2'd{sel}: $readmemh(\"{FILE}\", {name});\n"
                    for sel, name in sorted(MEMORY_ARRAYS.items()))
    return (
        "  // mxugen simulation loader (verif/bulk_load.py): memories from and to a file.\n"
        "  reg mxugen_load = 1'b0;\n"
        "  reg mxugen_dump = 1'b0;\n"
        "  reg [1:0] mxugen_sel = 2'd0;\n"
        "  reg [31:0] mxugen_first = 32'd0;\n"
        "  reg [31:0] mxugen_last = 32'd0;\n"
        "  always @(posedge clk) begin\n"
        "    if (mxugen_load) case (mxugen_sel)\n"
        f"{cases}"
        "    endcase\n"
        f"    if (mxugen_dump) $writememh(\"{FILE}\", {MEMORY_ARRAYS[MEM_ACTIVATIONS]}, "
        "mxugen_first, mxugen_last);\n"
        "  end\n")


#: Half the clock period of :func:`with_own_clock`, in ns (``verif.tb.common.Bench`` clocks
#: the other builds at the same period).
HALF_PERIOD_NS = 5


def _clock() -> str:
    return ("  // mxugen simulation clock (verif/bulk_load.py)\n"
            "  reg clk = 1'b0;\n"
            f"  always #{HALF_PERIOD_NS} clk = ~clk;\n")


#: Names a build whose Verilog has this loader and clock, so a changed one is rebuilt.
LOADER_DIGEST = hashlib.sha256((_loader() + _clock()).encode()).hexdigest()[:8]


def with_bulk_loader(verilog: str, top: str = "accel") -> str:
    """``verilog`` (the accelerator, top module ``top`` first, as :func:`hw.generate.convert`
    writes it) with the loader at the end of the top module."""
    start = verilog.index(f"\nmodule {top}(")
    end = verilog.index("\nendmodule", start)
    return verilog[:end] + "\n" + _loader() + verilog[end:]


def with_own_clock(verilog: str, top: str = "accel") -> str:
    """``verilog`` with its top module's ``clk`` input replaced by a clock it drives itself
    (a 1 ns time unit for the whole file); the build needs Verilator's ``--timing``."""
    start = verilog.index(f"\nmodule {top}(")
    header_end = verilog.index(");", start)
    ports = [port.strip() for port in verilog[start + len(f"\nmodule {top}("):header_end]
             .split(",")]
    if "clk" not in ports:
        raise ValueError(f"module {top} has no clk port")
    header = f"\nmodule {top}(" + ", ".join(port for port in ports if port != "clk")
    declaration = "  input clk;\n  wire clk;\n"  # as Amaranth writes it
    if declaration not in verilog[header_end:verilog.index("\nendmodule", start)]:
        raise ValueError(f"module {top} does not declare clk as Amaranth does")
    body = verilog[header_end:].replace(declaration, _clock(), 1)
    return "`timescale 1ns/1ps\n" + verilog[:start] + header + body


def image_file(base: int, words) -> str:
    """``$readmemh`` text putting ``words`` at address ``base`` and on."""
    return f"@{base:x}\n" + "".join(f"{int(word):x}\n" for word in words)


def dumped_words(text: str) -> list[int]:
    """The words of a ``$writememh`` file, in address order: comments (Icarus writes
    ``// 0x00000010`` every 16 words) and address lines skipped."""
    words = (token for line in text.splitlines() for token in line.split("//")[0].split())
    return [int(token, 16) for token in words if not token.startswith("@")]
