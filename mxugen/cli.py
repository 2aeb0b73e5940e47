"""The ``mxugen`` command line: one tool over the generator, quantizer and verification.

Exit codes: 0 success, 1 verification failure (mismatch or lint finding), 2 usage or input error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from quantizer.files import write_atomic

from . import __version__

EXAMPLES = """\
examples:
  mxugen generate --rows 8 --cols 8 -o out/mxu8x8
  mxugen quantize model.npz --calib calib.npz --per-channel -o out/net
  mxugen generate --rows 16 --cols 4 --dtype uint8 --requant pow2 --lint -o out/pow2
"""


class UsageError(Exception):
    """A user mistake: reported as one line, exit code 2."""


def _modes(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _add_hw_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hardware parameters")
    group.add_argument("--rows", type=int, default=8, help="PE rows, the K of one tile (default 8)")
    group.add_argument("--cols", type=int, default=8, help="PE columns, the N of one tile (default 8)")
    group.add_argument("--dtype", default="int8", help="int8 (default) or uint8")
    group.add_argument("--acc-width", type=int, default=32, help="accumulator bits, 18..32 (default 32)")
    group.add_argument("--requant", type=_modes, default=("double", "single"),
                       help="rounding modes to build, comma-separated from double,single,pow2 "
                            "(default double,single; pow2 alone builds no multiplier)")
    group.add_argument("--no-pipeline", action="store_true",
                       help="single-cycle PEs (default: product registered before the add)")


def _config_from(args):
    from hw import ArrayConfig
    return ArrayConfig(rows=args.rows, cols=args.cols, dtype=args.dtype,
                       acc_width=args.acc_width, requant_modes=args.requant,
                       pipelined_product=not args.no_pipeline)


def cmd_generate(args) -> int:
    from hw.generate import port_table, to_verilog
    from hw.matrix_unit import MatrixUnit

    config = _config_from(args)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} exists and is not a directory; choose another -o")
    top = args.top
    unit = MatrixUnit(config)
    verilog_text = to_verilog(unit, config, top)
    description = {
        "generator": f"mxugen {__version__}",
        "top": top,
        "config": config.to_dict(),
        "config_digest": config.digest(),
        "latency_cycles": {"array": config.array_latency, "requant": config.requant_latency},
        "ports": port_table(unit),
    }
    verilog_path, json_path = out / f"{top}.v", out / f"{top}.json"
    write_atomic(verilog_path, verilog_text)
    write_atomic(json_path, json.dumps(description, indent=2) + "\n")
    print(f"wrote {verilog_path} ({config.describe()}) and {json_path}")
    if args.lint:
        from verif.lint import lint
        findings = lint(verilog_path, top)
        if findings:
            print("\n".join(findings))
            return 1
        print("verilator --lint-only -Wall: clean (waivers: see docs/verilog.md)")
    return 0


def _load_calibration(path: str, input_name: str):
    import numpy as np
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read calibration data {path}: {exc}") from None
    if input_name not in archive:
        raise UsageError(f"{path} has no array named '{input_name}' (the model's input); "
                         f"it has: {', '.join(archive.files) or 'nothing'}")
    data = archive[input_name]
    return data.reshape(len(data), -1) if data.ndim > 2 else data  # images → vectors


def cmd_quantize(args) -> int:
    from quantizer.network import FloatNetwork
    from quantizer.quantize import quantize_network
    from quantizer.report import layer_report

    model = Path(args.model)
    if model.suffix != ".npz":
        raise UsageError(f"{model}: only .npz dense-layer models are supported so far "
                         "(ONNX import is coming); see docs/quantization.md for the format")
    net = FloatNetwork.from_npz(model)
    data = _load_calibration(args.calib, net.input_name)
    qnet = quantize_network(net, data, per_channel=args.per_channel, scheme=args.scheme,
                            method=args.calibration, dtype=args.dtype, rounding=args.rounding)
    out = qnet.save(args.output)
    report = layer_report(net, qnet, data)
    if args.json:
        print(json.dumps({"output": str(out), "layers": report}))
    else:
        for row in report:
            print(f"{row['layer']:>10s} {str(row['shape']):>10s}  SQNR {row['sqnr_db']:6.2f} dB"
                  f"  range used {row['range_used']:.0%}")
        print(f"wrote {out}/network.json and weights.npz")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mxugen", description="Generate int8 systolic matrix units and verify them "
        "bit-exactly against TFLite integer semantics.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mxugen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    generate = commands.add_parser(
        "generate", help="write the matrix unit's Verilog and a JSON description",
        description="Write the matrix unit (systolic array + requantizer) as Verilog, with the "
                    "parameters in a header comment and a JSON file beside it.")
    _add_hw_options(generate)
    generate.add_argument("--top", default="mxu", help="top module name (default mxu)")
    generate.add_argument("--lint", action="store_true",
                          help="also run verilator --lint-only -Wall on the result")
    generate.add_argument("-o", "--output", required=True, help="output directory")
    generate.set_defaults(run=cmd_generate)

    quantize = commands.add_parser(
        "quantize", help="quantize a float model to an int8 network folder",
        description="Post-training quantization: calibrate activation ranges on sample data, "
                    "quantize weights, write the integer network (network.json + weights.npz).")
    quantize.add_argument("model", help="float model: .npz of dense layers (weight_0, bias_0, ...)")
    quantize.add_argument("--calib", required=True,
                          help=".npz with one array per model input, keyed by the input's name, "
                               "samples along axis 0")
    quantize.add_argument("--per-channel", action="store_true",
                          help="one weight scale per output channel (default: per tensor)")
    quantize.add_argument("--scheme", default="asymmetric", choices=["asymmetric", "pow2"],
                          help="activation scheme; pow2 makes every multiplier a power of two")
    quantize.add_argument("--calibration", default="minmax",
                          choices=["minmax", "moving_average", "percentile", "mse", "entropy"],
                          help="activation range method (default minmax)")
    quantize.add_argument("--dtype", default="int8", choices=["int8", "uint8"])
    quantize.add_argument("--rounding", default="single", choices=["single", "double"],
                          help="requantization rounding recorded per layer (default single, "
                               "what TFLite's fully-connected kernel does)")
    quantize.add_argument("--json", action="store_true", help="print the report as JSON")
    quantize.add_argument("-o", "--output", required=True, help="output folder")
    quantize.set_defaults(run=cmd_quantize)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from hw import ConfigError
    from quantizer import QuantizerError
    from verif.toolchain import ToolchainError
    try:
        return args.run(args)
    except (UsageError, ConfigError, QuantizerError, ToolchainError) as exc:
        print(f"mxugen: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
