"""Benchmarks: commands that measure the generated hardware and print figures (never timed
tests). Cycle counts come from the accelerator's own counters, so they are exact and
repeatable whatever the machine is doing."""

from __future__ import annotations

import numpy as np

from quantizer.cycles import layer_cycles, predicted_cycles
from quantizer.graph import DenseChainBuilder, Graph
from quantizer.partition import ACCELERATOR
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
        "mismatches": run.mismatch_count,
    }


def model_benchmark(graph: Graph, x: np.ndarray, *, rows: int, cols: int,
                    runtime: str = "litert", seed: int = 0, scalesim: bool = False) -> dict:
    """Run ``x`` (one batch) through ``graph`` on a rows×cols accelerator, each accelerator
    layer as a program of its own so the hardware counts its cycles; return per operator and
    in total the measured cycles, the ideal ``MACs / (rows·cols)``, utilization, weight
    stalls and the cycle model's prediction (with ``scalesim``, SCALE-Sim's count of the same
    GEMM too), and the mismatches with the golden model."""
    samples = len(x)
    config = accelerator_config(graph, samples, rows=rows, cols=cols)
    run = run_on_rtl(graph, x, config, batch=samples, seed=seed, runtime=runtime,
                     layer_steps=True)
    measured = iter(run.batches[0]["steps"])
    layers = {layer.name: layer for layer in run.partition.layers}
    reference = {}
    if scalesim:
        from .scalesim import scalesim_cycles
        # SCALE-Sim models the array's GEMMs; the vector unit's layers have none.
        gemms = [layer for layer in layers.values() if layer.on_array]
        reference = {layer.name: result["cycles"] for layer, result in zip(
            gemms, scalesim_cycles(config, gemms, samples))}
    operators = []
    for placement in run.partition.placements:
        entry = placement.describe()
        layer = layers.get(placement.op.name)
        if layer is not None:
            counters = next(measured)
            cout, kh, kw, cin = layer.kernel.shape
            ideal = samples * layer.macs / (rows * cols)
            entry.update({
                "unit": "array" if layer.on_array else
                        "window" if layer.on_window(config) else "vector",
                **({"gemm": [samples * layer.pixels, kh * kw * cin, cout]}
                   if layer.on_array else {}),
                "macs": samples * layer.macs, "cycles": counters["cycles"],
                "ideal_cycles": round(ideal, 1),
                "utilization": round(ideal / counters["cycles"], 4),
                "stall_cycles": counters["weight_stall_cycles"],
                "predicted_cycles": layer_cycles(config, layer, samples),
                **({"scalesim_cycles": reference[layer.name]}
                   if layer.name in reference else {})})
        operators.append(entry)
    on_array = [op for op in operators if "cycles" in op]
    cycles = sum(op["cycles"] for op in on_array)
    ideal = sum(op["macs"] for op in on_array) / (rows * cols)
    predicted = sum(op["predicted_cycles"] for op in on_array)
    return {
        "hardware": config.describe(), "rows": rows, "cols": cols, "samples": samples,
        "match": runtime, "placement": run.partition.summary(),
        "cycles": cycles, "ideal_cycles": round(ideal, 1),
        "utilization": round(ideal / cycles, 4) if cycles else 0.0,
        "stall_cycles": sum(op["stall_cycles"] for op in on_array),
        "predicted_cycles": predicted, "model_error_cycles": predicted - cycles,
        **({"scalesim_cycles": sum(op.get("scalesim_cycles", 0) for op in on_array)}
           if scalesim else {}),
        "host_operators": sum(op["where"] != ACCELERATOR for op in operators),
        "mismatches": run.mismatch_count, "operators": operators,
    }
