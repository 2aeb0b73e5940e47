"""``mxugen demo``: a digits classifier trained, quantized, generated and simulated."""

from __future__ import annotations

import json
import sys

from ..options import UsageError, add_shape_options, check_output_folder, command, seed

EXAMPLES = ["mxugen demo", "mxugen demo --json --plot -o out/demo",
            "mxugen demo --model cnn --match tflm"]


def register(commands) -> None:
    parser = command(
        commands, "demo",
        "train, quantize, generate and simulate a digits classifier end to end", EXAMPLES,
        "Train an MLP on scikit-learn's bundled digits, quantize it to int8 per channel, "
        "generate the accelerator's Verilog, run the test split through it in Verilator and "
        "compare every output with the golden model. With --model cnn: the int8 digits CNN "
        "shipped with mxugen (a .tflite made with TensorFlow) instead, its convolutions on the "
        "accelerator and its other operators on the host.")
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp",
                        help="mlp: train and quantize a digits MLP (default); cnn: run the "
                             "shipped int8 digits CNN")
    parser.add_argument("--match", default="litert", choices=["litert", "tflm"],
                        help="--model cnn: whose arithmetic to match (default litert)")
    add_shape_options(parser)
    parser.add_argument("--seed", type=seed, default=0, help="training and data-split seed")
    parser.add_argument("--plot", action="store_true",
                        help="also write PNGs: confusion matrix, per-layer error, utilization")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("-o", "--output", default="out/demo",
                        help="output folder (default out/demo)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..demo import run_demo
    if args.rows < 1 or args.cols < 1:
        raise UsageError(f"--rows and --cols must be at least 1, got {args.rows}×{args.cols}")
    from hw import ArrayConfig
    ArrayConfig(rows=args.rows, cols=args.cols)  # the shape's limits, before any training
    if args.rows % args.cols:
        raise UsageError(f"the accelerator needs --rows to be a multiple of --cols, got "
                         f"{args.rows}×{args.cols}")
    check_output_folder(args.output)
    if args.model == "cnn":
        if args.plot:
            raise UsageError("--plot draws the MLP demo's figures; drop it with --model cnn")
        from ..demo_cnn import run_cnn_demo
        figures = run_cnn_demo(args.output, rows=args.rows, cols=args.cols, seed=args.seed,
                               runtime=args.match)
    else:
        figures = run_demo(args.output, rows=args.rows, cols=args.cols, seed=args.seed,
                           plot=args.plot)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['network']} on {figures['hardware']}, "
              f"{figures['test_samples']} test images")
        for key in ("float_accuracy", "int8_golden_accuracy", "rtl_accuracy"):
            if key in figures:
                print(f"  {key.replace('_', ' '):>22s}: {figures[key]:.2f}%")
        for key in ("placement", "mismatches", "cycles_per_inference", "utilization",
                    "seconds"):
            if key in figures:
                print(f"  {key.replace('_', ' '):>22s}: {figures[key]}")
        for key, path in figures["outputs"].items():
            path = ", ".join(path) if isinstance(path, list) else path
            print(f"  {key.replace('_', ' '):>22s}: {path}")
    if "float_accuracy" in figures and \
            abs(figures["int8_golden_accuracy"] - figures["float_accuracy"]) > 1.0:
        print("mxugen: warning: int8 accuracy is more than 1 point from float", file=sys.stderr)
    return 1 if figures["mismatches"] else 0
