"""Verilator lint of generated Verilog, with the project's documented waivers only.

Each waiver names a rule that Amaranth's Verilog style trips by design (see docs/verilog.md):

- ``WIDTHEXPAND``/``WIDTHTRUNC``: Amaranth's arithmetic is width-exact by its own rules and its
  Verilog relies on implicit extension/truncation in assignments.
- ``PROCASSINIT``: registers are declared with their reset value as an initializer (the
  power-on value on FPGAs) and then assigned in ``always`` blocks.
- ``UNUSEDSIGNAL``: Amaranth emits a named wire for every field of a structured port
  (``x__payload.zero`` …) for waveform debugging, used or not.
- ``CASEINCOMPLETE``: an FSM's combinational process assigns the signal's default first, then
  a ``case`` over only the states that change it.
- ``DECLFILENAME``: one file holds the whole design, submodules named hierarchically
  (``mxu.array``), so module names cannot match the file name.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .toolchain import ensure_toolchain

LINT_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-PROCASSINIT", "-Wno-UNUSEDSIGNAL",
                "-Wno-CASEINCOMPLETE", "-Wno-DECLFILENAME")


def lint(source: Path, top: str) -> list[str]:
    """Run ``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS`; return its diagnostics
    (empty when clean)."""
    toolchain = ensure_toolchain()
    result = subprocess.run(
        [str(toolchain.verilator), "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", top,
         str(source)], capture_output=True, text=True)
    return [line for line in result.stderr.splitlines() if line.startswith("%")]
