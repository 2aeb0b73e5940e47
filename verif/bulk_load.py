"""Bulk memory loads for whole-network simulations: the testbench writes a memory image to a
file and the simulator reads it with ``$readmemh`` in one clock edge (and dumps activation
words with ``$writememh``), so Python wakes once per image, not once per word.

:func:`with_bulk_loader` adds the loader to the accelerator's top module for simulation builds
only; the Verilog users get has none. The testbench drives it through four variables of the
top module (public in a ``visibility="ports"`` build): ``mxugen_load`` (load memory
``mxugen_sel`` from :data:`FILE` on the next edge), ``mxugen_dump`` (write activation words
``mxugen_first … mxugen_last`` to :data:`FILE` on the next edge), in the simulator's working
directory.
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


#: Names a build whose Verilog has this loader, so a changed loader is rebuilt.
LOADER_DIGEST = hashlib.sha256(_loader().encode()).hexdigest()[:8]


def with_bulk_loader(verilog: str, top: str = "accel") -> str:
    """``verilog`` (the accelerator, top module ``top`` first, as :func:`hw.generate.convert`
    writes it) with the loader at the end of the top module."""
    start = verilog.index(f"\nmodule {top}(")
    end = verilog.index("\nendmodule", start)
    return verilog[:end] + "\n" + _loader() + verilog[end:]


def image_file(base: int, words) -> str:
    """``$readmemh`` text putting ``words`` at address ``base`` and on."""
    return f"@{base:x}\n" + "".join(f"{int(word):x}\n" for word in words)


def dumped_words(text: str) -> list[int]:
    """The words of a ``$writememh`` file, in address order."""
    return [int(line, 16) for line in text.split()
            if line and not line.startswith(("//", "@"))]
