"""``mxugen generate``: the matrix unit's or the accelerator's Verilog and JSON description."""

from __future__ import annotations

from pathlib import Path

from hw.multiplier import TARGETS

from ..options import (BUSES, UsageError, add_bus_option, add_device_option, add_hw_options,
                       check_accelerator_options, check_not_an_input, module_name,
                       block_ram_line, check_output_folder, command, config_from, design)

EXAMPLES = ["mxugen generate --rows 8 --cols 8 --lint -o out/mxu8x8",
            "mxugen generate --accelerator --target ecp5 -o out/ecp5",
            "mxugen generate --rows 16 --cols 4 --dtype uint8 --requant pow2 -o out/pow2",
            "mxugen generate --accelerator --images out/images -o out/rtl",
            "mxugen generate --accelerator --bus axi-lite --images out/images -o out/soc"]


def register(commands) -> None:
    parser = command(
        commands, "generate", "write the matrix unit's Verilog and a JSON description", EXAMPLES,
        "Write the matrix unit (systolic array + requantizer) as Verilog, with the parameters "
        "in a header comment and a JSON file beside it.")
    add_hw_options(parser, images=True)
    parser.add_argument("--accelerator", action="store_true",
                        help="the whole accelerator (memories, sequencer) instead of the "
                             "matrix unit alone")
    parser.add_argument("--images", help="bake the images of `mxugen compile` into the "
                                         "accelerator's memories (FPGA build)")
    parser.add_argument("--top", type=module_name,
                        help="top module name (default mxu, or accel)")
    add_bus_option(parser)
    add_device_option(parser, "with --accelerator: refuse memories that need more block RAM "
                              "than this ECP5 has")
    parser.add_argument("--target", choices=TARGETS, default="generic",
                        help="generic Verilog (default), or Verilog for a Lattice ECP5 that "
                             "instantiates its MULT18X18D DSP blocks with their registers, "
                             "with a simulation model of them beside it (docs/hardware.md)")
    parser.add_argument("--lint", action="store_true",
                        help="also run verilator --lint-only -Wall on the result")
    parser.add_argument("-o", "--output", required=True, help="output directory")
    parser.set_defaults(run=run)


def run(args) -> int:
    from quantizer.manifest import images_hardware, read_images

    from verif.primitives import primitive_model_files

    from ..outputs import write_design
    from ..package import package_files

    check_output_folder(args.output)
    if args.images and not args.accelerator:
        raise UsageError("--images bakes a network into the accelerator: add --accelerator")
    if args.device and not args.accelerator:
        raise UsageError("--device checks the accelerator's block RAM: add --accelerator")
    check_accelerator_options(args)
    check_not_an_input(args.output, [args.images], "-o")
    config = config_from(args, images_hardware(args.images) if args.images else None)
    block_ram = block_ram_line(config, args.device, "the accelerator") if args.accelerator \
        else None
    top = args.top or (BUSES[args.bus] if args.accelerator else "mxu")
    images = read_images(args.images, config.to_dict()) if args.images else None
    verilog_path, json_path, _ = write_design(
        design(config, args.accelerator, images, args.bus), config, Path(args.output), top,
        target=args.target,
        companions=lambda description: package_files(description, config, top,
                                                     accelerator=args.accelerator,
                                                     bus=args.bus),
        baked_images=str(args.images) if args.images else None)
    models = list(primitive_model_files(args.target))
    beside = [json_path.name, f"{top}.vlt (lint waivers)", f"{top}.core (FuseSoC)",
              *([f"{top}_tb.v (testbench)"] if args.accelerator else []),
              *[f"{name} (simulation model)" for name in models]]
    print(f"wrote {verilog_path} ({config.describe()}), {', '.join(beside)} and README.md")
    if block_ram:
        print(block_ram)
    if args.lint:
        from verif.lint import lint
        findings = lint(verilog_path, top, [verilog_path.parent / name for name in models])
        if findings:
            print("\n".join(findings))
            return 1
        print(f"verilator --lint-only -Wall {top}.vlt {top}.v{''.join(' ' + n for n in models)}: "
              "clean (waivers: docs/verilog.md)")
    return 0
