"""Benchmarks: commands that measure the generated hardware and print figures (never timed
tests). Cycle counts come from the accelerator's own counters, so they are exact and
repeatable whatever the machine is doing."""

from __future__ import annotations

import numpy as np

from quantizer.cycles import predicted_cycles
from quantizer.graph import DenseChainBuilder, Graph
from quantizer.sizing import accelerator_config

from .network_sim import run_on_rtl


def random_gemm_layer(rng: np.random.Generator, k: int, n: int) -> Graph:
    """A single int8 layer with random weights, bias and multipliers (no float model needed):
    input and output scales 1, so each channel's weight scale is its multiplier."""
    chain = DenseChainBuilder("x", k, 1.0, int(rng.integers(-10, 10)))
    chain.add("gemm", rng.integers(-127, 128, (n, k)).astype(np.int8),
              rng.integers(-1000, 1000, n).astype(np.int32),
              weight_scale=rng.uniform(0.5, 2.0, n) / (127 * 64 * np.sqrt(k)),
              weight_zero_point=0, output_scale=1.0, output_zero_point=0)
    return chain.graph()


def gemm_benchmark(*, rows: int, cols: int, m: int, k: int, n: int, seed: int = 0) -> dict:
    """Run an M×K×N GEMM on a rows×cols accelerator; return measured and ideal cycles,
    utilization, weight stalls, the cycle model's prediction, and mismatches."""
    rng = np.random.default_rng(seed)
    graph = random_gemm_layer(rng, k, n)
    config = accelerator_config(graph, m, rows=rows, cols=cols)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    run = run_on_rtl(graph, x, config, batch=m, seed=seed)
    ideal = m * k * n / (rows * cols)
    predicted = predicted_cycles(config, m, k, n)
    return {
        "rows": rows, "cols": cols, "m": m, "k": k, "n": n,
        "cycles": run.cycles, "ideal_cycles": round(ideal, 1),
        "utilization": round(ideal / run.cycles, 4),
        "weight_stall_cycles": run.weight_stall_cycles,
        "predicted_cycles": predicted,
        "model_error": round(abs(predicted - run.cycles) / run.cycles, 4),
        "mismatches": len(run.mismatches),
    }
