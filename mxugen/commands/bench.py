"""``mxugen bench``: benchmarks that print measured figures."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys

from ..options import (UsageError, add_device_option, add_hw_options, add_shape_options,
                       block_ram_line, check_output_folder, command, config_from, modes,
                       seed)

EXAMPLES = ["mxugen bench gemm --rows 16 --cols 16 --m 256 --k 256 --n 256 --json",
            "mxugen bench model model.tflite --rows 16 --cols 16 --json",
            "mxugen bench fpga --rows 8 --cols 8 --json",
            "mxugen bench fpga --arrays 4x4,8x8,16x16   # docs/verilog.md's table",
            "mxugen bench generate --arrays 64x64,128x128 --json",
            "mxugen bench sim --rows 16 --cols 16 --json",
            "mxugen bench soak --seconds 600 --json",
            "mxugen bench soak --seed 1234 --cases 1 --hardware 2x2   # replay one case"]

NETWORK = "an int8 .tflite file, a quantized .onnx or a folder written by mxugen quantize"


def register(commands) -> None:
    parser = command(commands, "bench", "benchmarks that print measured figures", EXAMPLES)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    gemm = kinds.add_parser(
        "gemm", help="array utilization on one M×K×N GEMM, checked against the golden model")
    add_shape_options(gemm, default=16)
    gemm.add_argument("--m", type=int, default=256)
    gemm.add_argument("--k", type=int, default=256)
    gemm.add_argument("--n", type=int, default=256)
    gemm.add_argument("--seed", type=seed, default=0)
    gemm.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    gemm.set_defaults(run=run_gemm)
    model = kinds.add_parser(
        "model", help="per-operator cycles and utilization of a network, run in RTL")
    model.add_argument("network", metavar="MODEL", help=NETWORK)
    add_shape_options(model, default=16)
    model.add_argument("--samples", type=int, default=1,
                       help="samples per run (default 1: batch-1 inference)")
    model.add_argument("--input", help=".npy of int8 inputs (default: random, from --seed)")
    model.add_argument("--match", default="litert", choices=["litert", "tflm"],
                       help="whose arithmetic the golden model follows (default litert)")
    model.add_argument("--scalesim", action="store_true",
                       help="also count every accelerator layer with SCALE-Sim "
                            "(weight-stationary; docs/performance.md)")
    model.add_argument("--seed", type=seed, default=0)
    model.add_argument("--json", action="store_true",
                       help="print the figures as one JSON object")
    model.set_defaults(run=run_model)
    fpga = kinds.add_parser(
        "fpga", help="Fmax of the matrix unit and the accelerator against a naive MAC array "
                     "placed and routed in the same run (ECP5, Yosys + nextpnr)")
    add_hw_options(fpga)
    add_device_option(fpga, "ECP5 size (default 85k)", default="85k")
    fpga.add_argument("--arrays", type=array_list,
                      help="comma-separated RxC arrays, each in turn, for one table of all "
                           "three designs (e.g. 4x4,8x8,16x16; instead of --rows/--cols); a "
                           "design the device cannot hold is listed with its synthesized "
                           "resources")
    fpga.add_argument("--seed", type=seed, default=1, help="placement seed (default 1)")
    fpga.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    fpga.add_argument("-o", "--output", default="out/bench-fpga",
                      help="folder for the three designs, netlists and logs, with --arrays "
                           "one subfolder RxC per array (default out/bench-fpga)")
    fpga.set_defaults(run=run_fpga)
    sim = kinds.add_parser(
        "sim", help="simulated cycles/s of the cocotb flow against a raw C++ harness of the "
                    "same Verilog, outputs compared")
    sim.add_argument("--model", metavar="MODEL",
                     help=f"{NETWORK} (default: the digits CNN of mxugen demo)")
    add_shape_options(sim, default=16)
    sim.add_argument("--samples", type=int, default=2000,
                     help="random samples, all in one simulator run (default 2000)")
    sim.add_argument("--batch", type=int, default=256,
                     help="samples per accelerator program (default 256, as mxugen sim)")
    sim.add_argument("--seed", type=seed, default=0, help="seed of the random inputs")
    sim.add_argument("--verilator-args", type=shlex.split, default=(), metavar="ARGS",
                     help="more Verilator options for both builds, one string "
                          "(--verilator-args='--threads 2')")
    sim.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    sim.set_defaults(run=run_sim)
    generate = kinds.add_parser(
        "generate", help="seconds and peak memory of mxugen generate for large arrays")
    generate.add_argument("--arrays", type=array_list, default="64x64,128x128",
                          help="comma-separated RxC arrays (default 64x64,128x128)")
    generate.add_argument("--lint", action="store_true",
                          help="also check each result with verilator --lint-only -Wall")
    generate.add_argument("--json", action="store_true",
                          help="print the figures as one JSON object")
    generate.set_defaults(run=run_generate)
    soak = kinds.add_parser(
        "soak", help="random hardware and random networks through the RTL, the golden model "
                     "and the cycle model until the time is up; every failure with its seed")
    soak.add_argument("--seconds", type=float,
                      help="time budget; a case started runs to its end (default 600, or none "
                           "with --cases)")
    soak.add_argument("--cases", type=int, help="stop after this many cases")
    soak.add_argument("--seed", type=seed,
                      help="seed of the first case, case i has seed+i (default: a fresh one, "
                           "printed); --seed S --cases 1 replays case S alone")
    soak.add_argument("--hardware", type=lambda text: tuple(modes(text)), metavar="NAMES",
                      help="comma-separated hardware to draw from (default all: "
                           "see docs/verification.md)")
    soak.add_argument("--jobs", type=int, default=1,
                      help="cases at once, on a local Dask cluster of this many workers "
                           "(default 1: one after the other, no cluster)")
    soak.add_argument("--address", help="a Dask scheduler to run the cases on instead "
                                        "(also DASK_SCHEDULER_ADDRESS; docs/explore.md)")
    soak.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    soak.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                      help="show a progress bar of the time budget (default: on a terminal)")
    soak.set_defaults(run=run_soak)


def array_list(text: str) -> list[tuple[int, int]]:
    """``"64x64,128x128"`` → ``[(64, 64), (128, 128)]``, for argparse."""
    import argparse
    arrays = []
    for item in text.split(","):
        rows, _, cols = item.strip().lower().partition("x")
        if not (rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is not an array: write rows x cols, e.g. 64x64")
        arrays.append((int(rows), int(cols)))
    return arrays


def run_gemm(args) -> int:
    from verif.bench import gemm_benchmark
    _at_least_one(args, "m", "k", "n")
    figures = gemm_benchmark(rows=args.rows, cols=args.cols, m=args.m, k=args.k, n=args.n,
                             seed=args.seed)
    _print(figures, args.json)
    return 1 if figures["mismatches"] else 0


def _at_least_one(args, *names: str) -> None:
    for name in names:
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")


def _random_inputs(graph, samples: int, seed: int):
    import numpy as np
    lo, hi = graph.input.range
    return np.random.default_rng(seed).integers(
        lo, hi + 1, (samples, *graph.input.sample_shape)).astype(graph.input.dtype)


def _print(figures: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>22s}: {value}")


def run_model(args) -> int:
    from quantizer.files import load_array
    from quantizer.importers import load_network
    from verif.bench import model_benchmark
    _at_least_one(args, "samples")
    graph = load_network(args.network)
    x = graph.check_input(load_array(args.input, "inputs"))[:args.samples] if args.input \
        else _random_inputs(graph, args.samples, args.seed)
    figures = model_benchmark(graph, x, rows=args.rows, cols=args.cols, runtime=args.match,
                              seed=args.seed, scalesim=args.scalesim)
    if args.json:
        print(json.dumps(figures))
        return 1 if figures["mismatches"] else 0
    columns = ("cycles", "ideal_cycles", "utilization", "stall_cycles", "predicted_cycles",
               *(("scalesim_cycles",) if args.scalesim else ()))
    print(f"{'where':>11}  {'operator':<18} " + " ".join(f"{c:>16}" for c in columns))
    for op in figures["operators"]:
        values = " ".join(f"{op[c]!s:>16}" for c in columns) if "cycles" in op else ""
        print(f"{op['where']:>11}  {op['kind']:<18} {values}  {op['name'][:60]}")
    for key, value in figures.items():
        if key != "operators":
            print(f"{key:>22s}: {value}")
    return 1 if figures["mismatches"] else 0


def run_fpga(args) -> int:
    import sys
    from pathlib import Path

    from ..fpga import FpgaToolError, fpga_benchmark
    if args.arrays and (args.rows or args.cols):
        raise UsageError("--arrays gives the arrays' shapes: leave out --rows and --cols")
    check_output_folder(args.output)
    # Every array's hardware and block RAM is checked before the first is built.
    configs = [config_from(argparse.Namespace(**{**vars(args), "rows": rows, "cols": cols}))
               for rows, cols in args.arrays or [(args.rows, args.cols)]]
    for each in configs:
        block_ram_line(each, args.device, f"the {each.rows}x{each.cols} accelerator")
    runs = []
    try:
        for number, each in enumerate(configs, 1):
            shape = f"{each.rows}x{each.cols}"
            where = f" {shape} ({number}/{len(configs)})" if args.arrays else ""
            runs.append(fpga_benchmark(
                each, Path(args.output, shape) if args.arrays else Path(args.output),
                device=args.device, seed=args.seed, misfits=bool(args.arrays),
                progress=lambda text: print(f"bench fpga{where} {text}", file=sys.stderr,
                                            flush=True)))
    except FpgaToolError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"device": runs[0]["device"], "seed": args.seed, "arrays": runs}
                         if args.arrays else runs[0]))
        return 0
    if args.arrays:
        _print_fpga_table(runs)
        return 0
    figures = runs[0]
    print(f"{figures['hardware']} on ECP5 {figures['device']}, seed {figures['seed']}")
    print(f"{'design':>12}  {'Fmax MHz':>9} {'ratio':>6} {'LUTs':>7} {'FFs':>7} {'DSPs':>5} "
          f"{'BRAMs':>5}  critical path")
    for name, d in figures["designs"].items():
        path = d.get("critical_path", {})
        print(f"{name.replace('_', ' '):>12}  {d['fmax_mhz']:>9} "
              f"{figures['fmax_ratio'].get(name, 1.0):>6} {d['luts']:>7} {d['ffs']:>7} "
              f"{d['dsps']:>5} {d['block_rams']:>5}  "
              f"{path.get('from', '')} → {path.get('to', '')} ({path.get('segments', 0)})")
    print(f"requantizer DSPs per lane: {figures['requant_dsps_per_lane']}")
    return 0


def _print_fpga_table(runs: list[dict]) -> None:
    """The arrays' figures as one Markdown table (docs/verilog.md)."""
    first = runs[0]
    hardware = first["hardware"].removeprefix(f"{first['rows']}x{first['cols']} ")
    print(f"ECP5 {first['device']}, nextpnr seed {first['seed']}; {hardware}")
    print()
    print("| array | design | LUTs | carry cells | flip-flops | MULT18X18D | DP16KD | Fmax | "
          "to the naive array |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        for name, d in run["designs"].items():
            fmax = f"{d['fmax_mhz']} MHz" if "fmax_mhz" in d else \
                f"does not fit: {d['does_not_fit']}"
            ratio = run["fmax_ratio"].get(name, "")
            print(f"| {run['rows']}×{run['cols']} | {name.replace('_', ' ')} | {d['luts']:,} | "
                  f"{d['carry_cells']:,} | {d['ffs']:,} | {d['dsps']} | {d['block_rams']} | "
                  f"{fmax} | {ratio} |")


def run_generate(args) -> int:
    import sys

    from verif.bench import generation_benchmark
    figures = generation_benchmark(
        args.arrays, lint=args.lint,
        progress=lambda text: print(f"bench generate {text}", file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(figures))
        return 0
    for entry in figures["arrays"]:
        lint = (f", lint {'clean' if entry['lint_clean'] else 'NOT clean'} in "
                f"{entry['lint_seconds']} s") if "lint_clean" in entry else ""
        print(f"{entry['rows']}x{entry['cols']}: {entry['seconds']} s, peak "
              f"{entry['peak_memory_mb']} MB, {entry['verilog_mb']} MB of Verilog in "
              f"{entry['modules']} modules{lint}")
    return 0


def run_sim(args) -> int:
    from quantizer.importers import load_network
    from verif.bench import sim_benchmark

    from hw import ArrayConfig

    from ..demo_cnn import MODEL
    _at_least_one(args, "samples", "batch")
    ArrayConfig(rows=args.rows, cols=args.cols)  # the shape's limits, before any work
    graph = load_network(args.model or MODEL)
    figures = sim_benchmark(graph, _random_inputs(graph, args.samples, args.seed),
                            rows=args.rows, cols=args.cols, batch=args.batch, seed=args.seed,
                            build_args=tuple(args.verilator_args))
    _print(figures, args.json)
    return 0 if figures["outputs_equal"] and figures["cycles_equal"] else 1


def run_soak(args) -> int:
    from tqdm import tqdm

    from verif.soak import HARDWARE, new_seed, soak
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    if args.cases is not None:
        _at_least_one(args, "cases")
    unknown = [name for name in args.hardware or () if name not in HARDWARE]
    if unknown:
        raise UsageError(f"--hardware {unknown[0]!r} is not soak hardware: choose from "
                         f"{', '.join(HARDWARE)}")
    if not 1 <= args.jobs <= 64:
        raise UsageError(f"--jobs must be from 1 to 64, got {args.jobs}")
    seconds = 600.0 if args.seconds is None and args.cases is None else args.seconds
    seed = new_seed() if args.seed is None else args.seed
    print(f"bench soak: seed {seed}", file=sys.stderr, flush=True)
    with tqdm(total=args.cases if seconds is None else round(seconds),
              unit="case" if seconds is None else "s", desc="bench soak", file=sys.stderr,
              disable=None if args.progress is None else not args.progress) as bar:
        def on_case(record: dict, summary: dict) -> None:
            if record.get("status") != "ok":
                bar.write(f"bench soak: case {record['seed']} {record.get('status')}: "
                          f"{record.get('first_difference') or record.get('error')}",
                          file=sys.stderr)
            bar.n = summary["cases"] if seconds is None else min(summary["seconds"], bar.total)
            bar.set_postfix(cases=summary["cases"], mismatches=summary["mismatches"],
                            errors=summary["errors"])

        figures = soak(seconds, seed, cases=args.cases, hardware=args.hardware,
                       on_case=on_case, jobs=args.jobs, address=args.address)
    # Exit 1 is a verification mismatch; cases that crashed are a failed simulation (3).
    failed = 1 if figures["mismatches"] else 3 if figures["errors"] else 0
    if args.json:
        print(json.dumps(figures))
        return failed
    print(f"seed {figures['seed']}: {figures['cases']} cases in {figures['seconds']} s, "
          f"{figures['mismatches']} mismatches, {figures['errors']} errors"
          + (" (interrupted)" if figures.get("interrupted") else ""))
    for key, label in (("configs", "hardware"), ("runtimes", "runtimes"),
                       ("operators", "operators"), ("on_host", "on the host")):
        print(f"{label:>12}: " + (", ".join(f"{k} ×{n}" for k, n in figures[key].items())
                                  or "nothing"))
    for failure in figures["failures"]:
        what = failure.get("first_difference") or failure.get("error")
        print(f"FAILED case {failure['seed']} ({failure['status']}) on "
              f"{failure.get('hardware', '?')}, {failure.get('runtime', '?')}: {what}")
        print(f"  replay: {failure['replay']}")
    return failed
