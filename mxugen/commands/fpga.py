"""``mxugen fpga``: ECP5 and iCE40 UP5K resources and Fmax of a generated design (Yosys +
nextpnr), or Xilinx 7-series resources (Yosys)."""

from __future__ import annotations

import json
from pathlib import Path

from ..options import (BUSES, UsageError, add_bus_option, add_device_option, add_hw_options,
                       block_ram_line, check_accelerator_options, check_output_folder, command,
                       config_from, design, seed)

EXAMPLES = ["mxugen fpga --rows 4 --cols 4 --json",
            "mxugen fpga --accelerator --rows 8 --cols 8 --no-pnr",
            "mxugen fpga --rows 2 --cols 2 --requant pow2 --family ice40",
            "mxugen fpga --rows 8 --cols 8 --family xc7"]


def register(commands) -> None:
    parser = command(
        commands, "fpga",
        "FPGA resources and Fmax of a generated design (Lattice ECP5 or iCE40, Yosys + "
        "nextpnr)", EXAMPLES,
        "Generate the design, synthesize it for a Lattice ECP5 with Yosys and place and route "
        "it out of context with nextpnr (both from PyPI), and report LUTs, flip-flops, DSP "
        "multipliers, block RAMs and the highest clock frequency; with --family ice40, the same "
        "on an iCE40 UP5K for a design that fits one (inside an I/O ring: the UP5K has 39 "
        "pins); with --family xc7, synthesize it for a Xilinx 7-series part and report the "
        "resources alone.")
    add_hw_options(parser)
    parser.add_argument("--accelerator", action="store_true",
                        help="the whole accelerator instead of the matrix unit alone")
    add_bus_option(parser)
    add_device_option(parser, "ECP5 size (default 85k); an accelerator whose memories need "
                              "more block RAM than it has is refused before synthesis",
                      default="85k")
    parser.add_argument("--family", choices=["ecp5", "ice40", "xc7"], default="ecp5",
                        help="FPGA family: Lattice ECP5 (default) or iCE40 UP5K (placed and "
                             "routed), or Xilinx 7-series (Yosys synthesis only: resources, "
                             "no Fmax)")
    parser.add_argument("--no-pnr", action="store_true",
                        help="synthesis only: resources without place and route or Fmax")
    parser.add_argument("--seed", type=seed, default=1, help="placement seed")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("-o", "--output", default="out/fpga",
                        help="output folder (default out/fpga)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..fpga import FpgaToolError, fpga_report
    from ..outputs import write_design

    check_output_folder(args.output)
    check_accelerator_options(args)
    if args.accelerator and args.family == "ice40":
        raise UsageError("the accelerator's memories are laid out for ECP5 block and LUT RAM; "
                         "--family ice40 takes the matrix unit alone (drop --accelerator)")
    config = config_from(args)
    top = BUSES[args.bus] if args.accelerator else "mxu"
    if args.accelerator and args.family == "ecp5":
        block_ram_line(config, args.device, "the accelerator")
    out = Path(args.output)
    # ECP5 Verilog instantiates the DSP blocks with their registers (hw.multiplier).
    write_design(design(config, args.accelerator, bus=args.bus), config, out, top,
                 target="ecp5" if args.family == "ecp5" else "generic")
    try:
        report = fpga_report(out, top, device=args.device, family=args.family,
                             place_and_route=not args.no_pnr, seed=args.seed)
    except FpgaToolError as exc:
        raise UsageError(str(exc)) from None
    report = {"hardware": config.describe(), **report}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['hardware']} on "
          + (f"ECP5 {report['device']} (out of context)" if args.family == "ecp5"
             else report["device"]))
    for key in ("luts", "ffs", "dsps", "carry_cells", "block_rams", "distributed_rams",
                "fmax_mhz"):
        if key in report:
            print(f"  {key.replace('_', ' '):>16s}: {report[key]}")
    if "does_not_fit" in report:
        print(f"  {'not placed':>16s}: {report['does_not_fit']}")
    if "critical_path" in report:
        path = report["critical_path"]
        print(f"  {'critical path':>16s}: {path['from']} → {path['to']}")
    print(f"  {'logs':>16s}: {report['logs']}")
    return 0
