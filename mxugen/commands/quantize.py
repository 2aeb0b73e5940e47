"""``mxugen quantize``: a float model → an int8 network folder, with a report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from quantizer.files import output_folder

from ..options import UsageError, check_not_an_input, check_output_folder, command

EXAMPLES = ["mxugen quantize model.onnx --calib calib.npz --per-channel -o out/net",
            "mxugen quantize cnn.onnx --calib calib.npz --per-channel --eval test.npz -o out/cnn",
            "mxugen quantize model.npz --input-range 0,1 --bits 4 --bias-correction "
            "--eval test.npz --plot -o out/net4"]


def register(commands) -> None:
    parser = command(
        commands, "quantize", "quantize a float model to an int8 network folder", EXAMPLES,
        "Post-training quantization: calibrate activation ranges on sample data, quantize "
        "weights, write the integer network (graph.json + tensors.npz).")
    parser.add_argument("model", help="float model: an ONNX file — a dense chain "
                                        "(Gemm/MatMul+Add, Relu, Clip, Flatten) or a CNN graph "
                                        "(Conv, pools, Add, Concat, Softmax, …; image arrays "
                                        "NHWC) — or an .npz of dense layers (weight_0, bias_0, "
                                        "…)")
    data = parser.add_argument_group("ranges (one of)")
    data.add_argument("--calib", help=".npz with one array per model input, keyed by the "
                                      "input's name, samples along axis 0 (images of a CNN: "
                                      "NHWC, or NCHW when the shape cannot be NHWC)")
    data.add_argument("--input-range", type=_real_range, metavar="LO,HI",
                      help="data-free: the input's real range; activation ranges come from "
                           "the weights (e.g. 0,1 for pixels scaled to [0, 1])")
    data.add_argument("--n-std", type=float,
                      help="with --input-range: data-free ranges span mean ± N standard "
                           "deviations (default 4)")
    parser.add_argument("--per-channel", action="store_true",
                          help="one weight scale per output channel (default: per tensor)")
    parser.add_argument("--bits", default="8", choices=[*BITS, "auto"],
                          help="weight format: 8, 4 or 2-bit uniform, ternary, asymmetric "
                               "ternary (two levels under one scale, 4 bits a weight) or "
                               "binary (default 8); low-bit weights are packed in the images; "
                               "auto: a format for each layer, the narrowest that stay within "
                               "--max-drop of int8")
    parser.add_argument("--max-drop", type=float, default=0.5, metavar="D",
                          help="with --bits auto: the accuracy (points, with --eval) or output "
                               "SQNR (dB, without) the network may lose against int8 weights "
                               "(default 0.5)")
    parser.add_argument("--layer-bits", action="append", default=[], metavar="LAYER=FORMAT",
                          type=_layer_bits,
                          help="this layer's weight format, whatever --bits says "
                               "(repeatable; formats as --bits)")
    parser.add_argument("--scheme", default="asymmetric", choices=["asymmetric", "pow2"],
                          help="activation scheme; pow2 makes every multiplier a power of two")
    parser.add_argument("--calibration", default="minmax",
                          choices=["minmax", "moving_average", "percentile", "mse", "entropy"],
                          help="activation range method (default minmax)")
    parser.add_argument("--dtype", default="int8", choices=["int8", "uint8"])
    parser.add_argument("--rounding", choices=["single", "double"],
                          help="dense chains: requantization rounding recorded per layer "
                               "(default single, what TFLite's fully-connected kernel does); "
                               "CNN graphs follow each kernel's runtime")
    recovery = parser.add_argument_group("accuracy recovery")
    recovery.add_argument("--clamp-std", type=float, metavar="N",
                          help="clip each channel's weight outliers at mean ± N std")
    recovery.add_argument("--equalize", action="store_true",
                          help="cross-layer equalization of ReLU-joined layers (Nagel 2019)")
    recovery.add_argument("--bias-correction", action="store_true",
                          help="subtract the weight error's expected output shift from biases")
    parser.add_argument("--eval", metavar="DATA.npz",
                          help="labelled set (the input array and 'labels'): report float, "
                               "fake-quant and int8 accuracy")
    parser.add_argument("--plot", action="store_true",
                          help="write OUT/plots/*.png: per-layer error, quality vs weight format")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.set_defaults(run=run)


BITS = {"8": "int8", "4": "int4", "2": "int2", "ternary": "ternary",
        "ternary_asym": "ternary_asym", "binary": "binary"}


def _layer_bits(text: str) -> tuple[str, str]:
    name, _, bits = text.rpartition("=")
    formats = {**BITS, **{fmt: fmt for fmt in BITS.values()}}  # "4" or "int4"
    if not name or bits not in formats:
        raise argparse.ArgumentTypeError(f"expected LAYER=FORMAT with a format of "
                                         f"{', '.join(formats)}, got {text!r}")
    return name, formats[bits]


def _weight_formats(args, quantize, score, weights: dict[str, int], summary: dict):
    """The ``weights`` argument of the quantizer that ``--bits`` and ``--layer-bits`` ask for:
    with ``--bits auto``, chosen by :func:`quantizer.allocation.allocate_formats` (its outcome
    into ``summary``)."""
    from quantizer.allocation import allocate_formats

    fixed = dict(args.layer_bits)
    if args.bits != "auto":
        return {**dict.fromkeys(weights, BITS[args.bits]), **fixed} if fixed else BITS[args.bits]
    if not args.calib:
        raise UsageError("--bits auto measures the network at each width: give --calib")
    if args.max_drop < 0:
        raise UsageError(f"--max-drop must be 0 or more, got {args.max_drop}")
    chosen = allocate_formats(quantize, score, weights, args.max_drop, fixed=fixed)
    summary["allocation"] = {"metric": "accuracy (%)" if args.eval else "output SQNR (dB)",
                             "max_drop": args.max_drop, **chosen.report(weights, fixed)}
    return chosen.formats


def _print_allocation(allocation: dict) -> None:
    for row in allocation["layers"]:
        alone = row["drop_alone"].get(row["format"])
        print(f"{row['layer']:>24s} {row['weights']:>8d} weights  {row['format']:<12s}"
              + (" (fixed)" if row["fixed"] else "") +
              (f"  drop alone {alone:.2f}" if alone is not None else ""))
    a = allocation
    if a["int8_score"] - a["score"] > a["max_drop"]:
        print("the layers fixed by --layer-bits alone lose more than the budget: every other "
              "layer kept int8")
    print(f"weights {a['weight_bytes']} bytes against {a['weight_bytes_int8']} at int8 "
          f"({a['weight_bytes_int8'] / max(a['weight_bytes'], 1):.2f}× smaller); "
          f"{a['metric']} {a['score']:.2f} against {a['int8_score']:.2f} at int8 "
          f"(budget {a['max_drop']})")


def _real_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI (two numbers), got {text!r}") from None
    return lo, hi


def _load_samples(path: str, input_name: str, what: str, flatten: bool = True):
    """The array named after the model's input in an .npz (images flattened to vectors unless
    ``flatten`` is false), and the archive for any other arrays."""
    from quantizer.files import load_arrays, numbers
    archive = load_arrays(path, what)
    if input_name not in archive:
        raise UsageError(f"{path} has no array named '{input_name}' (the model's input); "
                         f"it has: {', '.join(archive) or 'nothing'}")
    data = numbers(archive[input_name], f"{what} {path}: '{input_name}'")
    return (data.reshape(len(data), -1) if data.ndim > 2 and flatten else data), archive


def _load_labelled(path: str, input_name: str, classes: int, flatten: bool = True):
    """``(samples, labels)`` of a labelled evaluation set of ``classes`` classes."""
    import numpy as np

    from quantizer.files import numbers
    x, archive = _load_samples(path, input_name, "evaluation data", flatten)
    if "labels" not in archive:
        raise UsageError(f"{path} has no 'labels' array (one class index per sample)")
    labels = numbers(archive["labels"], f"evaluation data {path}: 'labels'")
    if len(labels) != len(x):
        raise UsageError(f"{path}: {len(x)} samples but {len(labels)} labels")
    if labels.ndim != 1 or not np.all(np.isin(labels, np.arange(classes))):
        raise UsageError(f"{path}: 'labels' must be one class index a sample, whole numbers "
                         f"0 … {classes - 1} (the model has {classes} outputs)")
    return x, labels


def _quantize_report(net, graph, requantize, data, labels, folder: Path, plot: bool,
                     write_to: Path, allocation: dict) -> dict:
    """Sizes; with data, per-layer errors; with labels, accuracies; with ``plot``, figures
    (``requantize(format)`` quantizes again with another weight format for the sweep; with
    an ``allocation``, the sizes and scores of its path beside the uniform formats'), written
    into ``write_to``, which becomes ``folder``."""
    from quantizer.fakequant import fake_quant_forward
    from quantizer.report import accuracy, layer_errors, model_size
    from quantizer.weights import WEIGHT_FORMATS

    summary = {"output": str(folder), "settings": graph.meta["settings"],
               "size": model_size(net, graph), **allocation}
    if data is None:
        return summary
    errors = layer_errors(net, graph, data)
    summary["layers"] = [{k: v for k, v in row.items() if k != "error"} for row in errors]
    if labels is not None:
        summary["accuracy"] = {
            "float": round(accuracy(net.forward(data), labels), 2),
            "fake_quant": round(accuracy(fake_quant_forward(graph, data), labels), 2),
            "int8": round(accuracy(graph.run(graph.input.quantize(data)), labels), 2)}
    if plot:
        from .. import plots
        from ..outputs import save_figure
        formats = list(WEIGHT_FORMATS) if graph.dtype == "int8" else ["int8"]
        sweep = [requantize(fmt) for fmt in formats]
        if labels is not None:
            values = [accuracy(q.run(q.input.quantize(data)), labels) for q in sweep]
            ylabel, reference = "accuracy (%)", summary["accuracy"]["float"]
        else:
            values = [layer_errors(net, q, data)[-1]["sqnr_db"] for q in sweep]
            ylabel, reference = "output SQNR (dB)", None
        save_figure(plots.layer_errors(errors, "per-layer quantization error"),
                    write_to / "plots" / "layer_error.png")
        save_figure(plots.bit_width_sweep(formats, values, ylabel, reference,
                                          "quantized network vs weight format"),
                    write_to / "plots" / "bit_width.png")
        names = ["layer_error.png", "bit_width.png"]
        if allocation:
            chosen = allocation["allocation"]
            uniform = [(f, -(-chosen["weight_bytes_int8"] * WEIGHT_FORMATS[f] // 8), v)
                       for f, v in zip(formats, values)]
            path = [(step["weight_bytes"], step["score"]) for step in chosen["path"]]
            save_figure(plots.allocation([(chosen["weight_bytes_int8"], chosen["int8_score"]),
                                          *path], uniform, ylabel,
                                         "per-layer widths: weight bytes vs quality"),
                        write_to / "plots" / "allocation.png")
            names.append("allocation.png")
        summary["plots"] = [str(folder / "plots" / name) for name in names]
    return summary


#: Options of the dense-chain quantizer that the CNN graph path does not have (yet).
DENSE_ONLY = {"--equalize": "equalize", "--bias-correction": "bias_correction",
              "--clamp-std": "clamp_std", "--input-range": "input_range", "--plot": "plot",
              "--rounding": "rounding", "--n-std": "n_std"}


def _run_graph(args, float_graph) -> int:
    """A CNN graph: calibrate, quantize like TFLite's converter, report per-tensor SQNR."""
    from quantizer.float_graph import conform_input, run_float
    from quantizer.quantize_graph import (WEIGHT_AXIS, parameter_bytes, quantize_graph,
                                          run_quantized, tensor_errors)
    from quantizer.report import accuracy, sqnr_db

    refused = [option for option, field in DENSE_ONLY.items()
               if getattr(args, field) not in (None, False)]
    if refused:
        raise UsageError(f"{', '.join(refused)}: only for dense-chain models (MLPs) so far, "
                         f"and {args.model} is a CNN graph ({float_graph.summary()}); leave "
                         f"{'it' if len(refused) == 1 else 'them'} out")
    if not args.calib:
        raise UsageError("give --calib DATA.npz: CNN graphs are calibrated on sample data")
    name = float_graph.inputs[0]
    data = conform_input(float_graph, _load_samples(args.calib, name, "calibration data",
                                                    flatten=False)[0])
    labels = None
    if args.eval:
        eval_x, labels = _load_labelled(args.eval, name,
                                        float_graph.tensor(float_graph.outputs[0]).shape[-1],
                                        flatten=False)
        eval_x = conform_input(float_graph, eval_x)
    options = dict(per_channel=args.per_channel, scheme=args.scheme, method=args.calibration,
                   dtype=args.dtype)
    report_x = eval_x if args.eval else data
    float_output = run_float(float_graph, report_x)

    def score(graph) -> float:
        values = run_quantized(graph, report_x)
        if labels is not None:
            return accuracy(values, labels)
        return sqnr_db(float_output, graph.tensor(graph.outputs[0]).dequantize(values))
    allocation = {}
    weights = _weight_formats(
        args, lambda formats: quantize_graph(float_graph, data, weights=formats,
                                             progress=False, **options),
        score, {op.name: int(float_graph.tensor(op.inputs[1]).data.size)
                for op in float_graph.operators if op.kind in WEIGHT_AXIS}, allocation)
    graph = quantize_graph(float_graph, data, weights=weights, **options)
    out = graph.save(args.output)
    summary = {"output": str(out), "settings": graph.meta["settings"],
               "operators": graph.summary(), "size": parameter_bytes(float_graph, graph),
               **allocation, "tensors": tensor_errors(float_graph, graph, report_x)}
    if labels is not None:
        summary["accuracy"] = {
            "float": round(accuracy(run_float(float_graph, eval_x), labels), 2),
            "int8": round(accuracy(run_quantized(graph, eval_x), labels), 2)}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"operators: {summary['operators']}")
    for row in summary["tensors"]:
        print(f"{row['tensor']:>28s} {row['kind']:<18s} {row['shape']!s:>12s}  SQNR "
              f"{row['sqnr_db']:6.2f} dB  range used {row['range_used']:.0%}")
    if "accuracy" in summary:
        print("accuracy: " + ", ".join(f"{k} {v:.2f}%" for k, v in summary["accuracy"].items()))
    if "allocation" in summary:
        _print_allocation(summary["allocation"])
    size = summary["size"]
    print(f"parameters: {size['float32_bytes']} bytes float32 → {size['quantized_bytes']} "
          f"bytes quantized ({size['compression']}× smaller)")
    print(f"wrote {out}/graph.json and tensors.npz (input {name}: NHWC "
          f"{tuple(graph.input.sample_shape)})")
    return 0


def run(args) -> int:
    from quantizer.graph import Graph
    from quantizer.importers import load_float
    from quantizer.quantize import quantize_network
    from quantizer.report import accuracy, layer_errors

    check_output_folder(args.output, own="graph.json")
    check_not_an_input(args.output, [args.model, args.calib, args.eval], "-o")
    net = load_float(args.model)
    if isinstance(net, Graph):
        return _run_graph(args, net)
    if bool(args.calib) == bool(args.input_range):
        raise UsageError("give either --calib DATA.npz (calibration samples) or "
                         "--input-range LO,HI (data-free: ranges from the weights alone)")
    if args.n_std is not None and (args.calib or not 0 < args.n_std < 1e3):
        raise UsageError("--n-std sets data-free ranges (with --input-range), a number of "
                         f"standard deviations between 0 and 1000, got {args.n_std}"
                         + (" with --calib" if args.calib else ""))
    data = _load_samples(args.calib, net.input_name, "calibration data")[0] \
        if args.calib else None
    labels = None
    if args.eval:
        eval_x, labels = _load_labelled(args.eval, net.input_name,
                                        net.layers[-1].weight.shape[0])
    kwargs = dict(per_channel=args.per_channel, scheme=args.scheme, method=args.calibration,
                  dtype=args.dtype, rounding=args.rounding or "single",
                  input_range=args.input_range, n_std=args.n_std or 4.0,
                  clamp_std=args.clamp_std,
                  equalize=args.equalize, bias_correction=args.bias_correction)
    report_data = eval_x if args.eval else data

    def score(graph) -> float:
        if labels is not None:
            return accuracy(graph.run(graph.input.quantize(eval_x)), labels)
        return layer_errors(net, graph, report_data)[-1]["sqnr_db"]
    allocation = {}
    kwargs["weights"] = _weight_formats(
        args, lambda formats: quantize_network(net, data, progress=False,
                                               **{**kwargs, "weights": formats}),
        score, {layer.name or f"dense{i}": int(layer.weight.size)
                for i, layer in enumerate(net.layers)}, allocation)
    graph = quantize_network(net, data, **kwargs)
    out = Path(args.output)
    with output_folder(out) as staging:  # the network and its figures, or nothing
        graph.save(staging)
        summary = _quantize_report(
            net, graph, lambda fmt: quantize_network(net, data, progress=False,
                                                    **{**kwargs, "weights": fmt}),
            report_data, labels, out, args.plot, staging, allocation)
    if args.json:
        print(json.dumps(summary))
        return 0
    for row in summary.get("layers", []):
        print(f"{row['layer']:>10s} {str(row['shape']):>10s}  SQNR {row['sqnr_db']:6.2f} dB"
              f"  range used {row['range_used']:.0%}")
    if "accuracy" in summary:
        print("accuracy: " + ", ".join(f"{k} {v:.2f}%" for k, v in summary["accuracy"].items()))
    if "allocation" in summary:
        _print_allocation(summary["allocation"])
    size = summary["size"]
    print(f"parameters: {size['float32_bytes']} bytes float32 → {size['quantized_bytes']} "
          f"bytes quantized ({size['compression']}× smaller; weights "
          f"{size['weight_bytes_packed']} bytes packed)")
    for path in summary.get("plots", []):
        print(f"wrote {path}")
    print(f"wrote {out}/graph.json and tensors.npz")
    return 0
