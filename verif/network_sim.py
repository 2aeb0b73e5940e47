"""Run a network on the generated accelerator in Verilator: compile the images, simulate every
batch in one simulator launch, and return the outputs, the counters and every mismatch with the
golden model."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw import ArrayConfig
from hw.accelerator import Accelerator
from hw.generate import to_verilog
from quantizer.compile import compile_network
from quantizer.graph import Graph
from quantizer.layers import accelerator_chain

from .errors import SimulationError
from .runner import build_simulator


@dataclass
class RtlRun:
    """Outputs ``(samples, out)``, per-batch counters, and mismatches with the golden model."""

    outputs: np.ndarray
    batches: list[dict]
    mismatches: list[str]
    config: ArrayConfig

    @property
    def cycles(self) -> int:
        return sum(b["cycles"] for b in self.batches)

    @property
    def weight_stall_cycles(self) -> int:
        return sum(b["weight_stall_cycles"] for b in self.batches)


def run_on_rtl(graph: Graph, x: np.ndarray, config: ArrayConfig, *,
               batch: int | None = None, check_layers: bool = False, seed: int = 0,
               verilog: str | None = None, runtime: str = "litert") -> RtlRun:
    """Run int8 inputs ``x`` ``(samples, in)`` through the accelerator ``config``, comparing
    the outputs (with ``check_layers``, every layer's) with the golden model of ``runtime``.

    ``verilog`` is the accelerator's Verilog (top ``accel``) when the caller already generated
    it, so what is simulated is exactly what it wrote.
    """
    x = np.asarray(x)
    layers = accelerator_chain(graph, runtime)
    # A batch's output pixels (samples × OH × OW) must fit the partial-sum memory.
    pixels = max(layer.pixels for layer in layers)
    batch = max(1, min(batch or config.psum_depth, config.psum_depth // pixels, len(x)))
    values = graph.run(x, runtime=runtime, all_tensors=True)
    expected = [values[op.outputs[0]] for op in graph.operators if op.kind != "RESHAPE"]
    batches, static = [], None
    for first in range(0, len(x), batch):
        chunk = x[first:first + batch]
        compiled = compile_network(graph, config, len(chunk), runtime=runtime,
                                   keep_layers=check_layers)
        reads = [{**read, "expected": golden[first:first + batch]
                  .reshape(read["pixels"], read["size"]).tolist()}
                 for read, golden in zip(compiled.reads(), expected)]
        static = static or {"weights": compiled.weights, "params": compiled.params}
        vectors = sum(layer["k_tiles"] * layer["n_tiles"] for layer in compiled.layers)
        batches.append({
            "program": compiled.program, "input_base": compiled.input_base,
            "inputs": compiled.activation_words(chunk), "samples": len(chunk),
            "reads": reads if check_layers else reads[-1:], "first_sample": first,
            "timeout_cycles": 100_000 + 4 * vectors * (len(chunk) * pixels + config.rows
                                                        + config.cols),
        })
    sim = build_simulator(f"accel-{config.rows}x{config.cols}-{config.digest()}",
                          verilog or to_verilog(Accelerator(config), config, "accel"), "accel")
    with tempfile.TemporaryDirectory(prefix="mxugen-run-") as tmp:
        results_file = Path(tmp) / "results.json"
        outcome = sim.run("verif.tb.accel_tb", seed=seed, name="network", config={
            "seed": seed, "hw": config.to_dict(), **static, "batches": batches,
            "rows": config.rows, "output_size": compiled.output_size,
            "dtype": graph.dtype, "results_file": str(results_file)})
        if not results_file.exists():
            raise SimulationError(f"the simulation did not finish: {outcome.summary()}")
        results = json.loads(results_file.read_text())
    outputs = np.concatenate([np.array(b["outputs"]).reshape(-1, *expected[-1].shape[1:])
                              for b in results["batches"]])
    return RtlRun(outputs=outputs.astype(expected[-1].dtype), batches=results["batches"],
                  mismatches=results["mismatches"], config=config)
