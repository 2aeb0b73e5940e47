"""``mxugen sim``: a network through the accelerator RTL in Verilator (or Icarus Verilog), or
the golden model."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from pathlib import Path

from quantizer.files import check_writable, output_folder, save_array, write_atomic
from verif.toolchain import SIMULATORS

from ..options import (UsageError, add_shape_options, check_not_an_input, check_output_folder,
                       command, modes, seed)

EXAMPLES = ["mxugen sim model.tflite --golden --input x.npy --output y.npy --dump out/tensors",
            "mxugen sim model.tflite --golden --match tflm --input x.npy --output y.npy",
            "mxugen sim out/net --input x.npy --float-input --output y.npy"]


def register(commands) -> None:
    parser = command(
        commands, "sim", "run a network on the generated RTL (or the golden model)", EXAMPLES,
        "Run an int8 .tflite model or a network folder written by `mxugen quantize` on the "
        "golden model (--golden) or on the accelerator RTL in Verilator, many samples per "
        "simulator launch, comparing every output with the golden model (exit code 1 on any "
        "mismatch). Operators the accelerator does not run run on the host's golden model "
        "between its programs, as a TFLite delegate partitions a graph; the command lists "
        "where each operator ran.")
    parser.add_argument("network", metavar="MODEL",
                        help="an int8 .tflite file or a folder written by mxugen quantize")
    parser.add_argument("--input", required=True,
                        help=".npy of inputs, one sample per row (in the model's input shape, "
                             "NHWC for images, or flattened)")
    parser.add_argument("--output", required=True, help=".npy to write the int8 outputs to")
    parser.add_argument("--float-input", action="store_true",
                        help="inputs are float: quantize them with the model's input parameters")
    parser.add_argument("--golden", action="store_true", help="run the golden model only, no RTL")
    parser.add_argument("--simulator", choices=SIMULATORS,
                        help="the RTL simulator: Verilator (default; installed with mxugen) or "
                             "Icarus Verilog (where installed: apt-get install iverilog), the "
                             "second simulator that a Verilator bug cannot hide behind")
    parser.add_argument("--match", default="litert", choices=["litert", "tflm"],
                        help="whose arithmetic to reproduce where the runtimes differ: LiteRT's "
                             "reference kernels (default) or TFLite Micro")
    parser.add_argument("--dump", metavar="DIR",
                        help="write every tensor an operator computes to DIR/<name>.npy, one "
                             "row per sample (name: the model's, non-alphanumerics as _, names "
                             "over 200 characters cut and hashed; DIR/tensors.json maps files "
                             "to names)")
    parser.add_argument("--check-layers", action="store_true",
                        help="also compare every tensor an operator computes with the golden "
                             "model and name the first operator that differs")
    add_shape_options(parser)
    parser.add_argument("--requant", type=modes, default=("double", "single"),
                        help="rounding modes built into the simulated hardware (default "
                             "double,single)")
    parser.add_argument("--batch", type=int, default=256, help="samples per accelerator run")
    parser.add_argument("--workers", type=int,
                        help="simulator processes sharing the batches (default: one per core "
                             "this process may use, at most one per batch)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar of samples done (default: on a terminal)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run)


#: File names longer than this are cut and given a hash of the whole tensor name (converters
#: name fused tensors by joining every op's name, hundreds of characters; file systems allow 255).
DUMP_NAME_MAX = 200


def dump_name(tensor: str) -> str:
    """The file name (without ``.npy``) of a dumped tensor: every character but ASCII letters
    and digits becomes ``_``; a name longer than :data:`DUMP_NAME_MAX` keeps its first
    characters and ends in ``_`` and 12 hex digits of its SHA-1."""
    name = re.sub(r"[^A-Za-z0-9]", "_", tensor)
    if len(name) <= DUMP_NAME_MAX:
        return name
    digest = hashlib.sha1(tensor.encode()).hexdigest()[:12]
    return f"{name[:DUMP_NAME_MAX - 13]}_{digest}"


def _load_inputs(args, graph):
    from quantizer.files import load_array
    x = load_array(args.input, "inputs")
    if x.ndim == 0 or len(x) == 0:
        raise UsageError(f"{args.input} has shape {x.shape}: inputs need at least one sample")
    if args.float_input:
        x = graph.input.quantize(x)
    elif x.dtype.kind not in "iu":
        raise UsageError(f"{args.input} holds {x.dtype} values; pass --float-input to quantize "
                         "them with the model's input parameters")
    return graph.check_input(x)


def _write_dump(folder: Path, tensors: dict) -> None:
    """One ``.npy`` per tensor, and ``tensors.json`` mapping each file to its tensor's name."""
    names = {}
    for name in tensors:
        file = dump_name(name)
        if file in names:
            raise UsageError(f"tensors {names[file]!r} and {name!r} both dump to {file}.npy")
        names[file] = name
    with output_folder(folder) as staging:
        for file, name in names.items():
            save_array(staging / f"{file}.npy", tensors[name])
        write_atomic(staging / "tensors.json", json.dumps(
            {f"{file}.npy": name for file, name in names.items()}, indent=1) + "\n")


def run(args) -> int:
    from quantizer.importers import load_network

    from hw import ArrayConfig
    ArrayConfig(rows=args.rows, cols=args.cols, requant_modes=args.requant)  # even if --golden
    if args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    check_not_an_input(args.output, [args.network, args.input], "--output")
    check_not_an_input(args.dump, [args.network, args.input], "--dump")
    if args.dump:
        check_output_folder(args.dump, own="tensors.json", option="--dump")
    if args.dump and os.path.realpath(args.output).startswith(
            os.path.realpath(args.dump).rstrip(os.sep) + os.sep):
        raise UsageError(f"--output {args.output} is inside --dump {args.dump}, where a tensor "
                         "may take its name; give another name")
    check_writable(args.output)  # before the work, not after it
    if args.simulator and args.golden:
        raise UsageError("--simulator picks the RTL simulator; --golden runs none: drop one")
    if args.simulator:
        from verif.toolchain import simulator_version
        simulator_version(args.simulator)  # a missing simulator is said before any work
    graph = load_network(args.network)
    x = _load_inputs(args, graph)
    summary = {"samples": len(x), "mode": "golden" if args.golden else "rtl",
               "match": args.match, "operators": graph.summary()}
    if args.golden:
        tensors = graph.run(x, runtime=args.match, all_tensors=True)
        y, mismatches, placements = tensors[graph.outputs[0]], [], None
        if args.dump:
            _write_dump(Path(args.dump), {n: v for n, v in tensors.items()
                                          if n not in graph.inputs})
    else:
        if args.dump:
            raise UsageError("--dump writes the golden model's tensors: add --golden")
        from tqdm import tqdm

        from quantizer.sizing import accelerator_config
        from verif.network_sim import run_on_rtl
        config = accelerator_config(graph, min(args.batch, len(x)), rows=args.rows,
                                    cols=args.cols, keep_layers=args.check_layers,
                                    requant_modes=args.requant)
        workers = args.workers or len(os.sched_getaffinity(0))
        with tqdm(total=len(x), desc="mxugen sim", unit="sample", file=sys.stderr,
                  disable=None if args.progress is None else not args.progress) as bar:
            run = run_on_rtl(graph, x, config, batch=args.batch, check_layers=args.check_layers,
                             seed=args.seed, runtime=args.match, workers=workers,
                             simulator=args.simulator or "verilator",
                             progress=lambda done: bar.update(done - bar.n))
        y, mismatches = run.outputs, run.mismatches
        placements = [p.describe() for p in run.partition.placements]
        summary.update({"hardware": config.describe(), "simulator": args.simulator or "verilator",
                        "placement": run.partition.summary(),
                        "workers": run.workers, "sim_seconds": round(run.sim_seconds, 2),
                        "cycles": run.cycles,
                        "cycles_per_sample": round(run.cycles / len(x), 1),
                        "weight_stall_cycles": run.weight_stall_cycles})
        if run.first_difference:
            summary["first_difference"] = run.first_difference
        mismatch_count = run.mismatch_count
    try:
        save_array(args.output, y)
    except OSError as exc:
        raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    summary.update({"output": str(args.output),
                    "mismatches": 0 if args.golden else mismatch_count})
    if args.dump:
        summary["dump"] = str(args.dump)
    if args.json:
        print(json.dumps({**summary, "mismatch_report": mismatches[:20],
                          **({"placements": placements} if placements else {})}))
    else:
        for placement in placements or []:
            print(f"{placement['where']:>11}  {placement['kind']:<18} {placement['name']}"
                  + (f"  ({placement['note']})" if "note" in placement else ""))
        for line in mismatches[:20]:
            print(f"MISMATCH {line}")
        print(", ".join(f"{k}: {v}" for k, v in summary.items()))
    return 1 if mismatches else 0
