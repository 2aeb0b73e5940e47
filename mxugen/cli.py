"""The ``mxugen`` command line: one tool over the generator, quantizer and verification.

Exit codes: 0 success, 1 verification failure (mismatch or lint finding), 2 usage or input error,
3 the simulator could not be built or run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from quantizer.files import save_array

from . import __version__

EXAMPLES = {
    "generate": ["mxugen generate --rows 8 --cols 8 --lint -o out/mxu8x8",
                 "mxugen generate --rows 16 --cols 4 --dtype uint8 --requant pow2 -o out/pow2",
                 "mxugen generate --accelerator --images out/images -o out/rtl"],
    "quantize": ["mxugen quantize model.onnx --calib calib.npz --per-channel -o out/net",
                 "mxugen quantize model.npz --input-range 0,1 --bits 4 --bias-correction "
                 "--eval test.npz --plot -o out/net4"],
    "compile": ["mxugen compile out/net --rows 8 --cols 8 --format coe -o out/images"],
    "sim": ["mxugen sim out/net --input x.npy --float-input --output y.npy",
            "mxugen sim out/net --input x.npy --float-input --golden --output y.npy"],
    "bench": ["mxugen bench gemm --rows 16 --cols 16 --m 256 --k 256 --n 256 --json"],
    "fpga": ["mxugen fpga --rows 4 --cols 4 --json",
             "mxugen fpga --accelerator --rows 8 --cols 8 --no-pnr"],
    "demo": ["mxugen demo", "mxugen demo --json --plot -o out/demo"],
}


def _epilog(*commands: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for c in commands for line in EXAMPLES[c])


class UsageError(Exception):
    """A user mistake: reported as one line, exit code 2."""


def _modes(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _add_shape_options(parser, default: int = 8) -> None:
    parser.add_argument("--rows", type=int, default=default,
                        help=f"PE rows, the K of one tile (default {default})")
    parser.add_argument("--cols", type=int, default=default,
                        help=f"PE columns, the N of one tile (default {default})")


#: ``mxugen generate`` option → ArrayConfig field. Options left unset take the ArrayConfig
#: default, or with ``--images`` the hardware the images were compiled for.
HW_OPTIONS = {"rows": "rows", "cols": "cols", "dtype": "dtype", "acc_width": "acc_width",
              "requant": "requant_modes", "weight_bits": "weight_bits",
              **{f"{m.split('_')[0]}_depth": m for m in
                 ("weight_depth", "act_depth", "param_depth", "psum_depth", "program_depth")}}


def _add_hw_options(parser: argparse.ArgumentParser) -> None:
    from hw import ArrayConfig
    d = ArrayConfig()
    group = parser.add_argument_group("hardware parameters (with --images: default the images')")
    group.add_argument("--rows", type=int, help=f"PE rows, the K of one tile (default {d.rows})")
    group.add_argument("--cols", type=int,
                       help=f"PE columns, the N of one tile (default {d.cols})")
    group.add_argument("--dtype", help="int8 (default) or uint8")
    group.add_argument("--acc-width", type=int,
                       help=f"accumulator bits, 18..32 (default {d.acc_width})")
    group.add_argument("--requant", type=_modes,
                       help="rounding modes to build, comma-separated from double,single,pow2 "
                            "(default double,single; pow2 alone builds no multiplier)")
    group.add_argument("--no-pipeline", action="store_true",
                       help="single-cycle PEs (default: product registered before the add)")
    group.add_argument("--weight-bits", type=int, choices=[8, 4, 2, 1],
                       help="weight-memory bits per weight: packed low-bit weights (default 8)")
    for option, field in HW_OPTIONS.items():
        if option.endswith("_depth"):
            group.add_argument(f"--{option.replace('_', '-')}", type=int,
                               help=f"accelerator {option.split('_')[0]} memory words "
                                    f"(default {getattr(d, field)})")


def _config_from(args, base: dict | None = None):
    """The ArrayConfig of the options given, over ``base`` (a hardware dict) or the defaults;
    with a base, a given option that contradicts it is an error."""
    from hw import ArrayConfig
    params = dict(base or {})
    given = {field: getattr(args, option) for option, field in HW_OPTIONS.items()
             if getattr(args, option) is not None}
    if args.no_pipeline:
        given["pipelined_product"] = False
    if base is not None:
        canonical = ArrayConfig.from_dict({**base, **given}).to_dict()
        clashes = [k for k in given if canonical[k] != base[k]]
        if clashes:
            raise UsageError(f"--{clashes[0].replace('_', '-')} contradicts the images' hardware "
                             f"({clashes[0]}={base[clashes[0]]!r}); leave it out or recompile "
                             "the images for the hardware you want")
    return ArrayConfig.from_dict({**params, **given})


def _design(config, accelerator: bool, images: dict | None = None):
    """The component to generate: the whole accelerator, or the matrix unit alone."""
    if accelerator:
        from hw.accelerator import Accelerator
        return Accelerator(config, images)
    from hw.matrix_unit import MatrixUnit
    return MatrixUnit(config)


def cmd_generate(args) -> int:
    from .outputs import write_design

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} exists and is not a directory; choose another -o")
    if args.images and not args.accelerator:
        raise UsageError("--images bakes a network into the accelerator: add --accelerator")
    from quantizer.manifest import images_hardware, read_images
    config = _config_from(args, images_hardware(args.images) if args.images else None)
    top = args.top or ("accel" if args.accelerator else "mxu")
    images = read_images(args.images, config.to_dict()) if args.images else None
    unit = _design(config, args.accelerator, images)
    verilog_path, json_path, _ = write_design(
        unit, config, out, top, baked_images=str(args.images) if args.images else None)
    print(f"wrote {verilog_path} ({config.describe()}) and {json_path}")
    if args.lint:
        from verif.lint import lint
        findings = lint(verilog_path, top)
        if findings:
            print("\n".join(findings))
            return 1
        print("verilator --lint-only -Wall: clean (waivers: see docs/verilog.md)")
    return 0


BITS = {"8": "int8", "4": "int4", "2": "int2", "ternary": "ternary", "binary": "binary"}


def _real_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers), got {text!r}") from None
    return lo, hi


def _load_samples(path: str, input_name: str, what: str):
    """The array named after the model's input in an .npz (images flattened to vectors), and
    the archive for any other arrays."""
    import numpy as np
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from None
    if input_name not in archive:
        raise UsageError(f"{path} has no array named '{input_name}' (the model's input); "
                         f"it has: {', '.join(archive.files) or 'nothing'}")
    data = archive[input_name]
    return (data.reshape(len(data), -1) if data.ndim > 2 else data), archive


def _quantize_report(net, qnet, requantize, data, labels, folder: Path, plot: bool) -> dict:
    """Sizes; with data, per-layer errors; with labels, accuracies; with ``plot``, figures
    (``requantize(format)`` quantizes again with another weight format for the sweep)."""
    from quantizer.fakequant import fake_quant_forward
    from quantizer.report import accuracy, layer_errors, model_size
    from quantizer.weights import WEIGHT_FORMATS

    summary = {"output": str(folder), "settings": qnet.settings,
               "size": model_size(net, qnet)}
    if data is None:
        return summary
    errors = layer_errors(net, qnet, data)
    summary["layers"] = [{k: v for k, v in row.items() if k != "error"} for row in errors]
    if labels is not None:
        summary["accuracy"] = {
            "float": round(accuracy(net.forward(data), labels), 2),
            "fake_quant": round(accuracy(fake_quant_forward(qnet, data), labels), 2),
            "int8": round(accuracy(qnet.run(qnet.quantize_input(data)), labels), 2)}
    if plot:
        from . import plots
        from .outputs import save_figure
        formats = list(WEIGHT_FORMATS) if qnet.dtype == "int8" else ["int8"]
        sweep = [requantize(fmt) for fmt in formats]
        if labels is not None:
            values = [accuracy(q.run(q.quantize_input(data)), labels) for q in sweep]
            ylabel, reference = "accuracy (%)", summary["accuracy"]["float"]
        else:
            values = [layer_errors(net, q, data)[-1]["sqnr_db"] for q in sweep]
            ylabel, reference = "output SQNR (dB)", None
        summary["plots"] = [
            str(save_figure(plots.layer_errors(errors, "per-layer quantization error"),
                            folder / "plots" / "layer_error.png")),
            str(save_figure(plots.bit_width_sweep(formats, values, ylabel, reference,
                                                  "quantized network vs weight format"),
                            folder / "plots" / "bit_width.png"))]
    return summary


def cmd_quantize(args) -> int:
    from quantizer.importers import load_float_model
    from quantizer.quantize import quantize_network

    net = load_float_model(args.model)
    if bool(args.calib) == bool(args.input_range):
        raise UsageError("give either --calib DATA.npz (calibration samples) or "
                         "--input-range LO,HI (data-free: ranges from the weights alone)")
    data = _load_samples(args.calib, net.input_name, "calibration data")[0] \
        if args.calib else None
    labels = None
    if args.eval:
        eval_x, archive = _load_samples(args.eval, net.input_name, "evaluation data")
        if "labels" not in archive:
            raise UsageError(f"{args.eval} has no 'labels' array (one class index per sample)")
        labels = archive["labels"]
        if len(labels) != len(eval_x):
            raise UsageError(f"{args.eval}: {len(eval_x)} samples but {len(labels)} labels")
    kwargs = dict(per_channel=args.per_channel, scheme=args.scheme, method=args.calibration,
                  dtype=args.dtype, rounding=args.rounding, weights=BITS[args.bits],
                  input_range=args.input_range, n_std=args.n_std, clamp_std=args.clamp_std,
                  equalize=args.equalize, bias_correction=args.bias_correction)
    qnet = quantize_network(net, data, **kwargs)
    out = qnet.save(args.output)
    report_data = eval_x if args.eval else data
    summary = _quantize_report(
        net, qnet, lambda fmt: quantize_network(net, data, progress=False,
                                                **{**kwargs, "weights": fmt}),
        report_data, labels, out, args.plot)
    if args.json:
        print(json.dumps(summary))
        return 0
    for row in summary.get("layers", []):
        print(f"{row['layer']:>10s} {str(row['shape']):>10s}  SQNR {row['sqnr_db']:6.2f} dB"
              f"  range used {row['range_used']:.0%}")
    if "accuracy" in summary:
        print("accuracy: " + ", ".join(f"{k} {v:.2f}%" for k, v in summary["accuracy"].items()))
    size = summary["size"]
    print(f"parameters: {size['float32_bytes']} bytes float32 → {size['quantized_bytes']} "
          f"bytes quantized ({size['compression']}× smaller; weights "
          f"{size['weight_bytes_packed']} bytes packed)")
    for path in summary.get("plots", []):
        print(f"wrote {path}")
    print(f"wrote {out}/network.json and weights.npz")
    return 0


def _load_inputs(args, qnet):
    import numpy as np
    try:
        x = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read inputs {args.input}: {exc}") from None
    x = x.reshape(len(x), -1) if x.ndim > 2 else x
    if args.float_input:
        return qnet.quantize_input(x)
    if x.dtype.kind not in "iu":
        raise UsageError(f"{args.input} holds {x.dtype} values; pass --float-input to quantize "
                         "them with the network's input parameters")
    lo, hi = (-128, 127) if qnet.dtype == "int8" else (0, 255)
    if x.size and (x.min() < lo or x.max() > hi):
        raise UsageError(f"{args.input} has values outside {qnet.dtype} [{lo}, {hi}]")
    return x


def cmd_sim(args) -> int:
    import numpy as np
    from quantizer.quantize import QuantizedNetwork

    qnet = QuantizedNetwork.load(args.network)
    x = _load_inputs(args, qnet)
    expected_in = qnet.layers[0].weight.shape[1]
    if x.ndim != 2 or x.shape[1] != expected_in or len(x) == 0:
        raise UsageError(f"inputs must have shape (samples, {expected_in}) with at least one "
                         f"sample, got {x.shape}")
    if args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    summary = {"samples": len(x), "mode": "golden" if args.golden else "rtl"}
    if args.golden:
        y, mismatches = qnet.run(x), []
    else:
        from verif.network_sim import accelerator_config, run_on_rtl
        config = accelerator_config(qnet, min(args.batch, len(x)), rows=args.rows,
                                    cols=args.cols, keep_layers=args.check_layers,
                                    requant_modes=args.requant)
        run = run_on_rtl(qnet, x, config, batch=args.batch, check_layers=args.check_layers,
                         seed=args.seed)
        y, mismatches = run.outputs, run.mismatches
        summary.update({"hardware": config.describe(), "cycles": run.cycles,
                        "cycles_per_sample": round(run.cycles / len(x), 1),
                        "weight_stall_cycles": run.weight_stall_cycles})
    save_array(args.output, y)
    summary.update({"output": str(args.output), "mismatches": len(mismatches)})
    if args.json:
        print(json.dumps({**summary, "mismatch_report": mismatches[:20]}))
    else:
        for line in mismatches[:20]:
            print(f"MISMATCH {line}")
        print(", ".join(f"{k}: {v}" for k, v in summary.items()))
    return 1 if mismatches else 0


def cmd_compile(args) -> int:
    from quantizer.manifest import write_images
    from quantizer.quantize import QuantizedNetwork
    from verif.network_sim import accelerator_config

    qnet = QuantizedNetwork.load(args.network)
    config = accelerator_config(qnet, args.samples, rows=args.rows, cols=args.cols)
    formats = tuple(dict.fromkeys(["hex", *args.format]))
    compiled = write_images(qnet, config.to_dict(), args.samples, args.output, formats=formats)
    print(f"wrote {len(compiled.weights)} weight, {len(compiled.params)} parameter and "
          f"{len(compiled.program)} program words ({', '.join(formats)}) and manifest.json to "
          f"{args.output} for {config.describe()}")
    if config.weight_bits != 8:
        packed = len(compiled.weights) * config.weight_bits * config.cols // 8
        print(f"weights packed at {config.weight_bits} bits: {packed} bytes of weight memory "
              f"and weight-stream bandwidth instead of {packed * 8 // config.weight_bits} "
              f"({8 // config.weight_bits}× less)")
    return 0


def cmd_bench_gemm(args) -> int:
    from verif.bench import gemm_benchmark
    for name in ("m", "k", "n"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    figures = gemm_benchmark(rows=args.rows, cols=args.cols, m=args.m, k=args.k, n=args.n,
                             seed=args.seed)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>22s}: {value}")
    return 1 if figures["mismatches"] else 0


def cmd_fpga(args) -> int:
    from .fpga import FpgaToolError, fpga_report
    from .outputs import write_design

    config = _config_from(args)
    top = "accel" if args.accelerator else "mxu"
    out = Path(args.output)
    write_design(_design(config, args.accelerator), config, out, top)
    try:
        report = fpga_report(out, top, device=args.device,
                             place_and_route=not args.no_pnr, seed=args.seed)
    except FpgaToolError as exc:
        raise UsageError(str(exc)) from None
    report = {"hardware": config.describe(), **report}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['hardware']} on ECP5 {report['device']} (out of context)")
        for key in ("luts", "ffs", "dsps", "carry_cells", "block_rams", "fmax_mhz"):
            if key in report:
                print(f"  {key.replace('_', ' '):>12s}: {report[key]}")
        if "critical_path" in report:
            path = report["critical_path"]
            print(f"  {'critical path':>12s}: {path['from']} → {path['to']}")
        print(f"  {'logs':>12s}: {report['logs']}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    if args.rows < 1 or args.cols < 1:
        raise UsageError(f"--rows and --cols must be at least 1, got {args.rows}×{args.cols}")
    if args.rows % args.cols:
        raise UsageError(f"the accelerator needs --rows to be a multiple of --cols, got "
                         f"{args.rows}×{args.cols}")
    if Path(args.output).exists() and not Path(args.output).is_dir():
        raise UsageError(f"output {args.output} exists and is not a directory; choose another -o")
    figures = run_demo(args.output, rows=args.rows, cols=args.cols, seed=args.seed,
                       plot=args.plot)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['network']} on {figures['hardware']}, "
              f"{figures['test_samples']} test images")
        for key in ("float_accuracy", "int8_golden_accuracy", "rtl_accuracy"):
            print(f"  {key.replace('_', ' '):>22s}: {figures[key]:.2f}%")
        for key in ("mismatches", "cycles_per_inference", "utilization", "seconds"):
            print(f"  {key.replace('_', ' '):>22s}: {figures[key]}")
        for key, path in figures["outputs"].items():
            path = ", ".join(path) if isinstance(path, list) else path
            print(f"  {key.replace('_', ' '):>22s}: {path}")
    if abs(figures["int8_golden_accuracy"] - figures["float_accuracy"]) > 1.0:
        print("mxugen: warning: int8 accuracy is more than 1 point from float", file=sys.stderr)
    return 1 if figures["mismatches"] else 0


def _command(commands, name: str, help: str, description: str | None = None):
    """A subcommand parser with its examples under the option list."""
    return commands.add_parser(name, help=help, description=description or help,
                               epilog=_epilog(name),
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mxugen", description="Generate int8 systolic matrix units and verify them "
        "bit-exactly against TFLite integer semantics.", epilog=_epilog(*EXAMPLES),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mxugen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    generate = _command(
        commands, "generate",
        help="write the matrix unit's Verilog and a JSON description",
        description="Write the matrix unit (systolic array + requantizer) as Verilog, with the "
                    "parameters in a header comment and a JSON file beside it.")
    _add_hw_options(generate)
    generate.add_argument("--accelerator", action="store_true",
                          help="the whole accelerator (memories, sequencer) instead of the "
                               "matrix unit alone")
    generate.add_argument("--images", help="bake the images of `mxugen compile` into the "
                                           "accelerator's memories (FPGA build)")
    generate.add_argument("--top", help="top module name (default mxu, or accel)")
    generate.add_argument("--lint", action="store_true",
                          help="also run verilator --lint-only -Wall on the result")
    generate.add_argument("-o", "--output", required=True, help="output directory")
    generate.set_defaults(run=cmd_generate)

    quantize = _command(
        commands, "quantize",
        help="quantize a float model to an int8 network folder",
        description="Post-training quantization: calibrate activation ranges on sample data, "
                    "quantize weights, write the integer network (network.json + weights.npz).")
    quantize.add_argument("model", help="float model: an ONNX file (Gemm/MatMul+Add, Relu, "
                                        "Clip, Flatten) or an .npz of dense layers (weight_0, "
                                        "bias_0, …)")
    data = quantize.add_argument_group("ranges (one of)")
    data.add_argument("--calib", help=".npz with one array per model input, keyed by the "
                                      "input's name, samples along axis 0")
    data.add_argument("--input-range", type=_real_range, metavar="LO,HI",
                      help="data-free: the input's real range; activation ranges come from "
                           "the weights (e.g. 0,1 for pixels scaled to [0, 1])")
    data.add_argument("--n-std", type=float, default=4.0,
                      help="data-free ranges span mean ± N standard deviations (default 4)")
    quantize.add_argument("--per-channel", action="store_true",
                          help="one weight scale per output channel (default: per tensor)")
    quantize.add_argument("--bits", default="8", choices=list(BITS),
                          help="weight format: 8, 4 or 2-bit uniform, ternary or binary "
                               "(default 8); low-bit weights are packed in the images")
    quantize.add_argument("--scheme", default="asymmetric", choices=["asymmetric", "pow2"],
                          help="activation scheme; pow2 makes every multiplier a power of two")
    quantize.add_argument("--calibration", default="minmax",
                          choices=["minmax", "moving_average", "percentile", "mse", "entropy"],
                          help="activation range method (default minmax)")
    quantize.add_argument("--dtype", default="int8", choices=["int8", "uint8"])
    quantize.add_argument("--rounding", default="single", choices=["single", "double"],
                          help="requantization rounding recorded per layer (default single, "
                               "what TFLite's fully-connected kernel does)")
    recovery = quantize.add_argument_group("accuracy recovery")
    recovery.add_argument("--clamp-std", type=float, metavar="N",
                          help="clip each channel's weight outliers at mean ± N std")
    recovery.add_argument("--equalize", action="store_true",
                          help="cross-layer equalization of ReLU-joined layers (Nagel 2019)")
    recovery.add_argument("--bias-correction", action="store_true",
                          help="subtract the weight error's expected output shift from biases")
    quantize.add_argument("--eval", metavar="DATA.npz",
                          help="labelled set (the input array and 'labels'): report float, "
                               "fake-quant and int8 accuracy")
    quantize.add_argument("--plot", action="store_true",
                          help="write OUT/plots/*.png: per-layer error, quality vs weight format")
    quantize.add_argument("--json", action="store_true", help="print the report as JSON")
    quantize.add_argument("-o", "--output", required=True, help="output folder")
    quantize.set_defaults(run=cmd_quantize)

    compile_ = _command(
        commands, "compile",
        help="lay a quantized network out as memory images for the accelerator",
        description="Write weights/params/program images ($readmemh hex; .coe/.mif on request) "
                    "and manifest.json for an accelerator sized to the network.")
    compile_.add_argument("network", help="quantized network folder")
    _add_shape_options(compile_)
    compile_.add_argument("--samples", type=int, default=256, help="batch size (default 256)")
    compile_.add_argument("--format", action="append", default=[], choices=["coe", "mif"],
                          help="also write Xilinx .coe or Intel .mif files (repeatable)")
    compile_.add_argument("-o", "--output", required=True, help="output folder")
    compile_.set_defaults(run=cmd_compile)

    sim = _command(
        commands, "sim",
        help="run a quantized network on the generated RTL (or the golden model)",
        description="Run a network folder written by `mxugen quantize` on the accelerator RTL "
                    "in Verilator, many samples per simulator launch, and compare every output "
                    "with the golden model (exit code 1 on any mismatch).")
    sim.add_argument("network", help="quantized network folder")
    sim.add_argument("--input", required=True, help=".npy of inputs, one sample per row")
    sim.add_argument("--output", required=True, help=".npy to write the int8 outputs to")
    sim.add_argument("--float-input", action="store_true",
                     help="inputs are float: quantize them with the network's input parameters")
    sim.add_argument("--golden", action="store_true", help="run the golden model only, no RTL")
    sim.add_argument("--check-layers", action="store_true",
                     help="also compare every intermediate layer's outputs with the golden model")
    _add_shape_options(sim)
    sim.add_argument("--requant", type=_modes, default=("double", "single"),
                     help="rounding modes built into the simulated hardware (default "
                          "double,single)")
    sim.add_argument("--batch", type=int, default=256, help="samples per accelerator run")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.set_defaults(run=cmd_sim)

    bench = _command(commands, "bench", help="benchmarks that print measured figures")
    bench_kinds = bench.add_subparsers(dest="kind", metavar="KIND", required=True)
    gemm = bench_kinds.add_parser(
        "gemm", help="array utilization on one M×K×N GEMM, checked against the golden model")
    _add_shape_options(gemm, default=16)
    gemm.add_argument("--m", type=int, default=256)
    gemm.add_argument("--k", type=int, default=256)
    gemm.add_argument("--n", type=int, default=256)
    gemm.add_argument("--seed", type=int, default=0)
    gemm.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    gemm.set_defaults(run=cmd_bench_gemm)

    fpga = _command(
        commands, "fpga",
        help="FPGA resources and Fmax of a generated design (Lattice ECP5, Yosys + nextpnr)",
        description="Generate the design, synthesize it for a Lattice ECP5 with Yosys and place "
                    "and route it out of context with nextpnr (both from PyPI), and report LUTs, "
                    "flip-flops, DSP multipliers, block RAMs and the highest clock frequency.")
    _add_hw_options(fpga)
    fpga.add_argument("--accelerator", action="store_true",
                      help="the whole accelerator instead of the matrix unit alone")
    fpga.add_argument("--device", default="85k", choices=["25k", "45k", "85k"],
                      help="ECP5 size (default 85k)")
    fpga.add_argument("--no-pnr", action="store_true",
                      help="synthesis only: resources without place and route or Fmax")
    fpga.add_argument("--seed", type=int, default=1, help="placement seed")
    fpga.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    fpga.add_argument("-o", "--output", default="out/fpga", help="output folder "
                                                                 "(default out/fpga)")
    fpga.set_defaults(run=cmd_fpga)

    demo = _command(
        commands, "demo",
        help="train, quantize, generate and simulate a digits classifier end to end",
        description="Train an MLP on scikit-learn's bundled digits, quantize it to int8 per "
                    "channel, generate the accelerator's Verilog, run the test split through it "
                    "in Verilator and compare every output with the golden model.")
    _add_shape_options(demo)
    demo.add_argument("--seed", type=int, default=0, help="training and data-split seed")
    demo.add_argument("--plot", action="store_true",
                      help="also write PNGs: confusion matrix, per-layer error, utilization")
    demo.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    demo.add_argument("-o", "--output", default="out/demo",
                      help="output folder (default out/demo)")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from hw import ConfigError
    from quantizer import QuantizerError
    from verif.runner import SimulationError
    from verif.toolchain import ToolchainError
    try:
        return args.run(args)
    except (UsageError, ConfigError, QuantizerError, ToolchainError) as exc:
        print(f"mxugen: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"mxugen: simulation failed: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
