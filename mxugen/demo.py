"""``mxugen demo``: the whole product on real data in one command.

Train a small MLP on scikit-learn's bundled digits (8×8 images, 10 classes; nothing to
download), quantize it to int8 per channel, lay it out for an accelerator, generate the Verilog,
run every test image through that Verilog in Verilator, and compare the RTL's outputs with the
golden model's, value by value.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hw.accelerator import Accelerator
from quantizer.files import save_array, save_arrays, write_atomic
from quantizer.cycles import predicted_cycles
from quantizer.graph import Graph
from quantizer.layers import dense_chain
from quantizer.manifest import write_images
from quantizer.network import DenseLayer, FloatNetwork
from quantizer.quantize import quantize_network
from quantizer.report import accuracy, layer_errors
from quantizer.sizing import accelerator_config
from verif.network_sim import run_on_rtl

from .outputs import save_figure, write_design

HIDDEN = (64, 32)


@dataclass
class DigitsTask:
    """A float classifier for scikit-learn's digits and the data it was trained and tested on
    (pixels scaled to [0, 1], a stratified 75/25 split)."""

    net: FloatNetwork
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, x_test, y_train, y_test`` of scikit-learn's digits: pixels scaled to
    [0, 1], flattened to 64 values, a stratified 75/25 split (the one
    scripts/make_digits_cnn.py trained the shipped CNN on, with ``seed`` 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.25, random_state=seed, stratify=y)


def digits_classifier(seed: int = 0, hidden: tuple[int, ...] = HIDDEN) -> DigitsTask:
    """Train an MLP (ReLU hidden layers) on digits; the same ``seed`` gives the same network."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x_train, x_test, y_train, y_test = digits_split(seed)
    mlp = MLPClassifier(hidden_layer_sizes=hidden, max_iter=300, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(x_train, y_train)
    last = len(mlp.coefs_) - 1
    layers = [DenseLayer(w.T, b, "relu" if i < last else "none", name=f"dense{i}")
              for i, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_))]
    return DigitsTask(FloatNetwork(layers, input_name="pixels"), x_train, y_train, x_test, y_test)


class DemoProgress:
    """A demo's progress bar, one tick per step, and its ``results.json``."""

    def __init__(self, steps: tuple[str, ...], progress: bool | None):
        self._started = time.monotonic()
        self._bar = tqdm(total=len(steps), desc="mxugen demo", unit="step",
                         disable=None if progress is None else not progress,
                         bar_format="{desc}: {n}/{total} steps |{bar:20}| {elapsed}")

    def step(self, name: str) -> None:
        self._bar.set_description(f"mxugen demo: {name}")

    def done(self) -> None:
        self._bar.update()

    def finish(self, output: Path, figures: dict, mismatches: list[str]) -> dict:
        """Time the run, write ``results.json`` (with the first mismatches), close the bar."""
        figures["seconds"] = round(time.monotonic() - self._started, 1)
        write_atomic(output / "results.json", json.dumps(
            {**figures, "mismatch_report": mismatches[:100]}, indent=2) + "\n")
        self.done()
        self._bar.close()
        return figures


STEPS = ("train", "quantize", "compile", "generate Verilog", "build simulator + run RTL",
         "report")


def run_demo(output: Path | str, *, rows: int = 8, cols: int = 8, seed: int = 0,
             plot: bool = False, progress: bool | None = None) -> dict:
    """Run the demo, write everything under ``output``, return the figures."""
    output = Path(output)
    progress_bar = DemoProgress(STEPS, progress)
    step = progress_bar.step

    step(STEPS[0])
    task = digits_classifier(seed)
    net = task.net
    net.save_npz(output / "model.npz")
    save_arrays(output / "calib.npz", **{net.input_name: task.x_train})
    save_array(output / "test_inputs.npy", task.x_test)
    save_array(output / "test_labels.npy", task.y_test)
    progress_bar.done()

    step(STEPS[1])
    graph = quantize_network(net, task.x_train, per_channel=True, progress=False)
    graph.save(output / "net")
    layers = dense_chain(graph)
    x_q = graph.input.quantize(task.x_test)
    golden = graph.run(x_q)
    progress_bar.done()

    step(STEPS[2])
    samples = len(task.x_test)
    config = accelerator_config(graph, samples, rows=rows, cols=cols)
    write_images(graph, config, samples, output / "images")
    progress_bar.done()

    step(STEPS[3])
    verilog_path, _, verilog = write_design(Accelerator(config), config, output / "rtl", "accel")
    progress_bar.done()

    step(STEPS[4])
    run = run_on_rtl(graph, x_q, config, batch=samples, seed=seed, verilog=verilog)
    progress_bar.done()

    step(STEPS[5])
    macs = samples * sum(layer.weight.size for layer in layers)
    predicted = sum(predicted_cycles(config, samples, layer.weight.shape[1],
                                     layer.weight.shape[0]) for layer in layers)
    figures = {
        "hardware": config.describe(),
        "network": "digits MLP " + "-".join(str(n) for n in
                                           [net.input_size, *(l.weight.shape[0]
                                                              for l in net.layers)]),
        "test_samples": samples,
        "float_accuracy": round(accuracy(net.forward(task.x_test), task.y_test), 2),
        "int8_golden_accuracy": round(accuracy(golden, task.y_test), 2),
        "rtl_accuracy": round(accuracy(run.outputs, task.y_test), 2),
        "mismatches": run.mismatch_count,
        "cycles": run.cycles,
        "predicted_cycles": predicted,
        "cycles_per_inference": round(run.cycles / samples, 2),
        "utilization": round(macs / (rows * cols * run.cycles), 4),
        "weight_stall_cycles": run.weight_stall_cycles,
        "outputs": {"float_model": str(output / "model.npz"),
                    "quantized_network": str(output / "net"),
                    "images": str(output / "images"), "verilog": str(verilog_path),
                    "results": str(output / "results.json")},
    }
    if plot:
        figures["outputs"]["plots"] = [str(p) for p in write_plots(
            output / "plots", task, graph, run.outputs, config, macs, run.cycles)]
    return progress_bar.finish(output, figures, run.mismatches)


def write_plots(folder: Path, task: DigitsTask, graph: Graph, rtl_outputs, config,
                macs: int, cycles: int) -> list[Path]:
    """Confusion matrix of the RTL's answers, per-layer quantization error, utilization."""
    from . import plots

    samples = len(task.x_test)
    layers = dense_chain(graph)
    figures = {
        "confusion_matrix": plots.confusion_matrix(
            task.y_test, np.argmax(rtl_outputs, axis=1),
            f"digits on the {config.rows}×{config.cols} RTL: "
            f"{accuracy(rtl_outputs, task.y_test):.2f}%"),
        "layer_error": plots.layer_errors(layer_errors(task.net, graph, task.x_test),
                                          "per-layer quantization error on the test split"),
        "utilization": plots.utilization(
            [f"{layer.name}\n{layer.weight.shape[1]}→{layer.weight.shape[0]}"
             for layer in layers],
            [samples * layer.weight.size / (config.rows * config.cols) for layer in layers],
            [predicted_cycles(config, samples, layer.weight.shape[1], layer.weight.shape[0])
             for layer in layers],
            f"measured {cycles} cycles, utilization "
            f"{macs / (config.rows * config.cols * cycles):.1%}"),
    }
    return [save_figure(fig, folder / f"{name}.png") for name, fig in figures.items()]
