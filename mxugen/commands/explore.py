"""``mxugen explore``: the accelerator configurations worth building for a network on an FPGA,
from the cycle model and synthesis, place and route on a Dask cluster."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..options import UsageError, check_not_an_input, check_output_folder, command, seed

EXAMPLES = ["mxugen explore model.tflite --rows 4,8 --cols 4,8 --json",
            "mxugen explore model.tflite --match tflm --requant double,double+single "
            "--plot pareto.png",
            "mxugen explore model.tflite --rows 8,16 --cols 8,16 --address tcp://sched:8786"]
NETWORK = "an int8 .tflite file, a quantized .onnx or a folder written by mxugen quantize"
#: The file that marks a folder as explore's own output (beside its cache and designs).
RESULTS = "explore.json"


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v < 1 or v > 64 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list of distinct "
                                         "sizes from 1 to 64")
    return values


def _weight_bits(text: str) -> tuple[int, ...]:
    values = _sizes(text)
    if any(v not in (1, 2, 4, 8) for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: weight widths are 8, 4, 2 or 1")
    return values


def _requant(text: str) -> tuple[tuple[str, ...], ...]:
    from hw.contract import REQUANT_MODES
    sets = tuple(tuple(m.strip() for m in part.split("+")) for part in text.split(","))
    for modes in sets:
        if not all(m in REQUANT_MODES for m in modes) or len(set(modes)) != len(modes):
            raise argparse.ArgumentTypeError(
                f"{text!r}: give comma-separated sets of roundings joined by +, each of "
                f"{', '.join(REQUANT_MODES)} (e.g. single,double+single)")
    return sets


def register(commands) -> None:
    from ..explore import TARGETS
    parser = command(
        commands, "explore",
        "the best accelerator for a network on an FPGA: a sweep of configurations, its "
        "Pareto front (Dask)", EXAMPLES,
        "For every combination of --rows, --cols, --weight-bits and --requant: size the "
        "accelerator for the network, take its cycles per inference from the exact cycle "
        "model, synthesize, place and route it (Yosys, nextpnr) for LUTs, DSPs, block RAMs and "
        "Fmax, and report inferences per second (Fmax / cycles), whether it fits the target, "
        "and the Pareto front of inferences per second against LUTs, DSPs and block RAMs; the "
        "fastest point that fits is then run once in RTL against the golden model. The points "
        "run on a local Dask cluster of --jobs workers, or on the cluster at --address (or "
        "DASK_SCHEDULER_ADDRESS). Finished points are cached in the output folder: a repeated, "
        "extended or interrupted sweep computes only what is new (docs/explore.md).")
    parser.add_argument("network", metavar="MODEL", help=NETWORK)
    parser.add_argument("--target", default="ecp5-85k", choices=list(TARGETS),
                        help="the FPGA (default ecp5-85k)")
    parser.add_argument("--rows", type=_sizes, default=(4, 8), help="array rows (default 4,8)")
    parser.add_argument("--cols", type=_sizes, default=(4, 8),
                        help="array columns (default 4,8; rows must be a multiple of them)")
    parser.add_argument("--weight-bits", type=_weight_bits, default=(8,),
                        help="weight memory widths, e.g. 8,4 (default 8)")
    parser.add_argument("--requant", type=_requant, default=(("double", "single"),),
                        help="requantizer roundings, sets joined by + (default double+single; "
                             "a set the network cannot run on is reported as such)")
    parser.add_argument("--match", default="litert", choices=["litert", "tflm"],
                        help="whose arithmetic the network follows (default litert)")
    parser.add_argument("--no-pnr", action="store_true",
                        help="synthesis only: resources, no Fmax or inferences per second")
    parser.add_argument("--jobs", type=int, default=2,
                        help="workers of the local cluster (default 2)")
    parser.add_argument("--address", help="a Dask scheduler to run the points on instead")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds a point's synthesis or place and route may take "
                             "(default 3600); a point that takes longer is reported and skipped")
    parser.add_argument("--no-confirm", action="store_true",
                        help="skip the RTL run of the best point")
    parser.add_argument("--seed", type=seed, default=1,
                        help="placement seed and the confirming run's inputs (default 1)")
    parser.add_argument("--plot", help="PNG of the Pareto front")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar over the points (default: on a terminal)")
    parser.add_argument("-o", "--output", default="out/explore",
                        help="output folder: cache, designs and results (default out/explore)")
    parser.set_defaults(run=run)


def _reproduce(point: dict, args) -> dict[str, str]:
    """The commands that measure ``point`` by hand: its accelerator's resources and Fmax, and
    its cycles in RTL."""
    import shlex

    from hw import ArrayConfig

    from ..explore import TARGETS
    from ..options import hardware_options
    options = hardware_options(ArrayConfig.from_dict(point["config"]))
    fpga = ["mxugen", "fpga", "--accelerator", *options, "--device", TARGETS[args.target],
            "--seed", str(args.seed), *(["--no-pnr"] if args.no_pnr else [])]
    bench = ["mxugen", "bench", "model", args.network, "--rows", str(point["rows"]), "--cols",
             str(point["cols"]), "--match", args.match]
    generate = ["mxugen", "generate", "--accelerator", *options, "-o",
                f"out/{point['candidate'].replace(' ', '-')}"]
    return {"fpga": shlex.join(fpga), "bench_model": shlex.join(bench),
            "generate": shlex.join(generate)}


def run(args) -> int:
    from quantizer.files import check_writable, write_atomic
    from quantizer.importers import load_network

    from ..explore import candidates, confirm, explore, pareto_front
    if not 1 <= args.jobs <= 64:
        raise UsageError(f"--jobs must be from 1 to 64, got {args.jobs}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.no_pnr and args.plot:
        raise UsageError("--plot needs place and route (inferences per second): drop --no-pnr")
    check_output_folder(args.output, own=RESULTS)
    if args.plot:
        check_not_an_input(args.plot, [args.network], "--plot")
        check_writable(args.plot)  # before the sweep, not after it
    graph = load_network(args.network)
    points = candidates(args.rows, args.cols, args.weight_bits, args.requant)
    if not points:
        raise UsageError("no --rows is a multiple of a --cols: the accelerator needs rows to "
                         "be a multiple of cols")
    folder = Path(args.output)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = None
    if show:
        from tqdm import tqdm
        bar = tqdm(total=len(points), desc="mxugen explore", unit="point", file=sys.stderr)

    def progress(point: dict, cached: bool) -> None:
        if bar is not None:
            bar.set_postfix_str(f"{point['candidate']}{' (cached)' if cached else ''}")
            bar.update()
        if "error" in point:
            print(f"explore: {point['candidate']}: {point['error']}", file=sys.stderr)

    try:
        results = explore(graph, points, folder, target=args.target, runtime=args.match,
                          seed=args.seed, place_and_route=not args.no_pnr, jobs=args.jobs,
                          address=args.address, timeout=args.timeout, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for point in results:
        if "config" in point:
            point["reproduce"] = _reproduce(point, args)
    front = pareto_front(results)
    figures = {"target": args.target, "match": args.match, "points": results, "front": front}
    if front and not args.no_confirm:
        figures["confirmed"] = confirm(graph, front[0], runtime=args.match, seed=args.seed)
    if args.plot:
        from ..outputs import save_figure
        from ..plots import pareto
        save_figure(pareto(results, front, f"{Path(args.network).name} on {args.target}"),
                    args.plot)
    write_atomic(folder / RESULTS, json.dumps(figures, indent=1) + "\n")
    mismatches = figures.get("confirmed", {}).get("mismatches", 0)
    if args.json:
        print(json.dumps(figures))
        return 1 if mismatches else 0
    columns = ("cycles", "fmax_mhz", "inferences_per_s", "luts", "dsps", "block_rams", "fits")
    print(f"{'candidate':<24} " + " ".join(f"{c:>16}" for c in columns))
    for point in results:
        values = " ".join(f"{point.get(c, '')!s:>16}" for c in columns)
        note = point.get("error", "cached" if point["cached"] else "")
        print(f"{point['candidate']:<24} {values}  {note}")
    print("Pareto front: " + (", ".join(p["candidate"] for p in front) or
                              "none (no point fits, or no Fmax without place and route)"))
    if "confirmed" in figures:
        c = figures["confirmed"]
        print(f"confirmed in RTL: {c['candidate']}, {c['cycles']} cycles (model "
              f"{c['predicted_cycles']}), {c['mismatches']} mismatches")
        print(f"its Verilog: {front[0]['reproduce']['generate']}")
    print(f"results: {folder / RESULTS}")
    return 1 if mismatches else 0
