"""``mxugen compile``: a network → memory images and a manifest for the accelerator."""

from __future__ import annotations

from ..options import (UsageError, add_device_option, add_shape_options, block_ram_line,
                       check_not_an_input, check_output_folder, command)

EXAMPLES = ["mxugen compile out/net --rows 8 --cols 8 --format coe -o out/images",
            "mxugen compile model.tflite --samples 1 --device 25k -o out/images"]


def register(commands) -> None:
    parser = command(
        commands, "compile", "lay a network out as memory images for the accelerator",
        EXAMPLES,
        "Write weights/params/program images ($readmemh hex; .coe/.mif on request) and "
        "manifest.json for an accelerator sized to the network.")
    parser.add_argument("network", metavar="MODEL",
                        help="an int8 .tflite or quantized .onnx file, or a folder written by "
                             "mxugen quantize")
    add_shape_options(parser)
    parser.add_argument("--samples", type=int, default=256, help="batch size (default 256)")
    parser.add_argument("--match", default="litert", choices=["litert", "tflm"],
                        help="whose rounding the images reproduce (default litert)")
    parser.add_argument("--format", action="append", default=[], choices=["coe", "mif"],
                        help="also write Xilinx .coe or Intel .mif files (repeatable)")
    add_device_option(parser, "size the memories to the words the network needs (not the "
                              "next power of two) and refuse a network whose accelerator "
                              "needs more block RAM than this ECP5 has")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.set_defaults(run=run)


def run(args) -> int:
    from quantizer.importers import load_network
    from quantizer.cycles import weight_traffic
    from quantizer.manifest import write_images
    from quantizer.sizing import accelerator_config

    check_output_folder(args.output, own="manifest.json")
    check_not_an_input(args.output, [args.network], "-o")
    if args.samples < 1:
        raise UsageError(f"--samples must be at least 1, got {args.samples}")
    graph = load_network(args.network)
    # For a device, memories of exactly the words needed: powers of two waste block RAM.
    config = accelerator_config(graph, args.samples, rows=args.rows, cols=args.cols,
                                exact=args.device is not None)
    block_ram = block_ram_line(config, args.device,
                               f"at {args.samples} samples per run, the accelerator")
    formats = tuple(dict.fromkeys(["hex", *args.format]))
    compiled = write_images(graph, config, args.samples, args.output, formats=formats,
                            runtime=args.match)
    print(f"wrote {len(compiled.weights)} weight, {len(compiled.params)} parameter and "
          f"{len(compiled.program)} program words ({', '.join(formats)}) and manifest.json to "
          f"{args.output} for {config.describe()}")
    print(block_ram)
    if config.weight_bits != 8:
        packed = len(compiled.weights) * config.weight_bits * config.cols // 8
        print(f"weights packed at {config.weight_bits} bits: {packed} bytes of weight memory "
              f"and weight-stream bandwidth instead of {packed * 8 // config.weight_bits} "
              f"({8 // config.weight_bits}× less)")
    print(f"weights per layer, one run of {args.samples} samples (bytes at the build's "
          f"{config.weight_bits} bits; at the layer's own width; streamed):")
    for row in weight_traffic(config, graph, args.samples, args.match):
        print(f"  {row['layer']:>28s} {row['format'] or 'unit taps':<12s} "
              f"{row['weight_bytes']:>8d} {row['weight_bytes_own_width']:>8d} "
              f"{row['streamed_bytes']:>9d} B in {row['cycles']:>8d} cycles: "
              f"{row['bytes_per_cycle']:.2f} B/cycle")
    return 0
