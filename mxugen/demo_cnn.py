"""``mxugen demo --model cnn``: the int8 digits CNN shipped with the package
(``mxugen/data/digits_cnn.tflite``, made by scripts/make_digits_cnn.py with TensorFlow) run over
the whole digits test split through the generated Verilog: its convolutions and dense layer on
the array, its depthwise convolution, pooling and residual ADD on the vector unit, every output
compared with the golden model."""

from __future__ import annotations

from pathlib import Path

from hw.accelerator import Accelerator
from quantizer.cycles import network_cycles
from quantizer.files import save_array
from quantizer.importers.tflite import load_tflite
from quantizer.report import accuracy
from quantizer.sizing import accelerator_config
from verif.network_sim import run_on_rtl

from .demo import DemoProgress, digits_split
from .outputs import write_design

#: The shipped model: 98.0% on the test split with LiteRT's reference kernels.
MODEL = Path(__file__).parent / "data" / "digits_cnn.tflite"
#: Samples per accelerator run: 16 images × 64 output pixels fill a 1024-word partial-sum
#: memory.
BATCH = 16
STEPS = ("load model", "generate Verilog", "build simulator + run RTL", "report")


def run_cnn_demo(output: Path | str, *, rows: int = 8, cols: int = 8, seed: int = 0,
                 runtime: str = "litert", progress: bool | None = None) -> dict:
    """Run the CNN demo, write its outputs under ``output``, return the figures."""
    output = Path(output)
    progress_bar = DemoProgress(STEPS, progress)

    progress_bar.step(STEPS[0])
    graph = load_tflite(MODEL)
    _, x_test, _, y_test = digits_split(0)
    x_q = graph.input.quantize(x_test.reshape(len(x_test), *graph.input.sample_shape))
    golden = graph.run(x_q, runtime=runtime)
    save_array(output / "test_inputs.npy", x_q)
    save_array(output / "test_labels.npy", y_test)
    progress_bar.done()

    progress_bar.step(STEPS[1])
    config = accelerator_config(graph, BATCH, rows=rows, cols=cols)
    verilog_path, _, verilog = write_design(Accelerator(config), config, output / "rtl",
                                            "accel")
    progress_bar.done()

    progress_bar.step(STEPS[2])
    run = run_on_rtl(graph, x_q, config, batch=BATCH, seed=seed, verilog=verilog,
                     runtime=runtime)
    save_array(output / "rtl_outputs.npy", run.outputs)
    progress_bar.done()

    progress_bar.step(STEPS[3])
    samples = len(x_q)
    batches = [min(BATCH, samples - first) for first in range(0, samples, BATCH)]
    macs = samples * sum(layer.macs for layer in run.partition.layers)
    figures = {
        "hardware": config.describe(),
        "network": f"digits CNN {MODEL.name} ({graph.summary()})",
        "placement": run.partition.summary(),
        "match": runtime,
        "test_samples": samples,
        "int8_golden_accuracy": round(accuracy(golden, y_test), 2),
        "rtl_accuracy": round(accuracy(run.outputs, y_test), 2),
        "mismatches": run.mismatch_count,
        "cycles": run.cycles,
        "predicted_cycles": sum(network_cycles(config, graph, n, runtime) for n in batches),
        "cycles_per_inference": round(run.cycles / samples, 2),
        "utilization": round(macs / (rows * cols * run.cycles), 4),
        "weight_stall_cycles": run.weight_stall_cycles,
        "outputs": {"verilog": str(verilog_path), "rtl_outputs": str(output / "rtl_outputs.npy"),
                    "results": str(output / "results.json")},
    }
    return progress_bar.finish(output, figures, run.mismatches)
