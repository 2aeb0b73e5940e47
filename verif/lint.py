"""Verilator lint of generated Verilog, with the project's documented waivers only, written as a
Verilator configuration file beside the Verilog (``X.vlt``) so any user's lint run is clean.

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
  (``mxu.array``) and the repeated cells after the top (``mxu_pe``, ``mxu_column``), so module
  names cannot match the file name.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .toolchain import ensure_toolchain

#: The rules :func:`waiver_config` turns off, each for the reason above.
LINT_RULES = ("WIDTHEXPAND", "WIDTHTRUNC", "PROCASSINIT", "UNUSEDSIGNAL", "CASEINCOMPLETE",
              "DECLFILENAME")


def waiver_config(verilog_name: str) -> str:
    """A Verilator configuration file that turns :data:`LINT_RULES` off in the file named
    ``verilog_name`` (a generated design) and nowhere else, so ``verilator --lint-only -Wall
    X.vlt X.v`` is clean and a user's own files are still checked in full."""
    return "".join(["`verilator_config\n",
                    f"// mxugen: waivers for the generated {verilog_name} (docs/verilog.md)\n",
                    *(f'lint_off -rule {rule} -file "*{verilog_name}"\n' for rule in LINT_RULES)])


def lint(source: Path, top: str, models: list[Path] = ()) -> list[str]:
    """Run ``verilator --lint-only -Wall`` on ``source`` with the configuration file beside
    it (``X.vlt`` for ``X.v``, as ``mxugen generate`` writes it) when there is one, and the
    simulation ``models`` of the primitives it instantiates; return the diagnostics (empty
    when clean)."""
    toolchain = ensure_toolchain()
    waivers = source.with_suffix(".vlt")
    files = [str(waivers)] if waivers.exists() else []
    result = subprocess.run(
        [str(toolchain.verilator), "--lint-only", "-Wall", "--top-module", top, *files,
         str(source), *map(str, models)], capture_output=True, text=True)
    return [line for line in result.stderr.splitlines() if line.startswith("%")]
