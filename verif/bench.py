"""Benchmarks: commands that measure the generated hardware and print figures (never timed
tests). Cycle counts come from the accelerator's own counters, so they are exact and
repeatable whatever the machine is doing."""

from __future__ import annotations

import numpy as np

from hw import ArrayConfig
from quantizer.fixedpoint import quantize_multipliers
from quantizer.quantize import QuantizedLayer, QuantizedNetwork

from .network_sim import accelerator_config, run_on_rtl


def predicted_cycles(config: ArrayConfig, m: int, k: int, n: int) -> int:
    """The cycle model of one fully-connected layer (docs/performance.md).

    Tiles stream back to back, one vector per cycle, when each tile is used for at least
    ``rows + cols`` vectors; before that the array waits for a tile's weight loads. Around
    them: descriptor fetch, the first tile's load, and the pipeline's fill and drain.
    """
    tiles = -(-k // config.rows) * -(-n // config.cols)
    per_tile = max(m, config.rows + config.cols)
    fetch, first_load, stream_latency = 3, config.rows, 3
    drain = config.array_latency + config.requant_latency + 1
    return fetch + stream_latency + first_load + tiles * per_tile + drain


def random_gemm_layer(rng: np.random.Generator, k: int, n: int) -> QuantizedNetwork:
    """A single int8 layer with random weights, bias and multipliers (no float model needed)."""
    m0, shift = quantize_multipliers(rng.uniform(0.5, 2.0, n) / (127 * 64 * np.sqrt(k)))
    layer = QuantizedLayer(
        name="gemm", weight=rng.integers(-127, 128, (n, k)).astype(np.int8), weight_zero_point=0,
        bias=rng.integers(-1000, 1000, n).astype(np.int32), weight_scale=np.ones(n),
        input_scale=1.0, input_zero_point=int(rng.integers(-10, 10)), output_scale=1.0,
        output_zero_point=0, m0=m0, shift=shift, act_min=-128, act_max=127, activation="none")
    return QuantizedNetwork([layer])


def gemm_benchmark(*, rows: int, cols: int, m: int, k: int, n: int, seed: int = 0) -> dict:
    """Run an M×K×N GEMM on a rows×cols accelerator; return measured and ideal cycles,
    utilization, weight stalls, the cycle model's prediction, and mismatches."""
    rng = np.random.default_rng(seed)
    qnet = random_gemm_layer(rng, k, n)
    config = accelerator_config(qnet, m, rows=rows, cols=cols)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    run = run_on_rtl(qnet, x, config, batch=m, seed=seed)
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
