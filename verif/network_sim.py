"""Run a quantized network on the generated accelerator in Verilator: size the hardware to the
network, compile the images, simulate every batch in one simulator launch, and return the
outputs, the counters and every mismatch with the golden model."""

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
from quantizer.quantize import QuantizedNetwork

from .runner import SimulationError, build_simulator


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


def _pow2_at_least(n: int) -> int:
    return max(2, 1 << max(0, (n - 1).bit_length()))


def accelerator_config(qnet: QuantizedNetwork, batch: int, *, rows: int = 8, cols: int = 8,
                       keep_layers: bool = False, **options) -> ArrayConfig:
    """An accelerator sized for ``qnet`` at ``batch`` samples per run (memories rounded up to
    powers of two, so similar networks share one simulator build); ``keep_layers`` makes room
    for every layer's outputs at once."""
    words = {"weights": 0, "params": 0}
    widest = qnet.layers[0].weight.shape[1]
    for layer in qnet.layers:
        n, k = layer.weight.shape
        n_tiles, k_tiles = -(-n // cols), -(-k // rows)
        words["weights"] += n_tiles * k_tiles * rows
        words["params"] += n_tiles
        widest = max(widest, n)
    options.setdefault("weight_bits", qnet.weight_bits)
    return ArrayConfig(rows=rows, cols=cols, dtype=qnet.dtype,
                       weight_depth=_pow2_at_least(words["weights"]),
                       act_depth=_pow2_at_least((len(qnet.layers) + 1 if keep_layers else 2)
                                                * -(-widest // rows) * batch),
                       param_depth=_pow2_at_least(words["params"]),
                       psum_depth=_pow2_at_least(batch),
                       program_depth=_pow2_at_least(len(qnet.layers)), **options)


def run_on_rtl(qnet: QuantizedNetwork, x: np.ndarray, config: ArrayConfig, *,
               batch: int | None = None, check_layers: bool = False, seed: int = 0,
               verilog: str | None = None) -> RtlRun:
    """Run int8 inputs ``x`` ``(samples, in)`` through the accelerator ``config``, comparing
    the outputs (with ``check_layers``, every layer's) with the golden model.

    ``verilog`` is the accelerator's Verilog (top ``accel``) when the caller already generated
    it, so what is simulated is exactly what it wrote.
    """
    x = np.asarray(x)
    batch = min(batch or config.psum_depth, config.psum_depth, len(x))
    expected = qnet.run(x, all_layers=True)[1:]
    batches, static = [], None
    for first in range(0, len(x), batch):
        chunk = x[first:first + batch]
        compiled = compile_network(qnet, config.to_dict(), len(chunk),
                                   keep_layers=check_layers)
        reads = [{**read, "expected": golden[first:first + batch].tolist()}
                 for read, golden in zip(compiled.reads(), expected)]
        static = static or {"weights": compiled.weights, "params": compiled.params}
        vectors = sum(layer["k_tiles"] * layer["n_tiles"] for layer in compiled.layers)
        batches.append({
            "program": compiled.program, "input_base": compiled.input_base,
            "inputs": compiled.activation_words(chunk), "samples": len(chunk),
            "reads": reads if check_layers else reads[-1:], "first_sample": first,
            "timeout_cycles": 100_000 + 4 * vectors * (len(chunk) + config.rows + config.cols),
        })
    sim = build_simulator(f"accel-{config.rows}x{config.cols}-{config.digest()}",
                          verilog or to_verilog(Accelerator(config), config, "accel"), "accel")
    with tempfile.TemporaryDirectory(prefix="mxugen-run-") as tmp:
        results_file = Path(tmp) / "results.json"
        outcome = sim.run("verif.tb.accel_tb", seed=seed, name="network", config={
            "seed": seed, "hw": config.to_dict(), **static, "batches": batches,
            "rows": config.rows, "output_size": qnet.layers[-1].weight.shape[0],
            "dtype": qnet.dtype, "results_file": str(results_file)})
        if not results_file.exists():
            raise SimulationError(f"the simulation did not finish: {outcome.summary()}")
        results = json.loads(results_file.read_text())
    outputs = np.concatenate([np.array(b["outputs"]) for b in results["batches"]])
    return RtlRun(outputs=outputs.astype(expected[-1].dtype), batches=results["batches"],
                  mismatches=results["mismatches"], config=config)
