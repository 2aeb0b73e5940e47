"""Benchmarks: commands that measure the generated hardware and print figures (never timed
tests). Cycle counts come from the accelerator's own counters, so they are exact and
repeatable whatever the machine is doing."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hw import ArrayConfig
from quantizer.cycles import layer_cycles, predicted_cycles
from quantizer.memory_plan import blocked_tensors
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
    blocked = blocked_tensors(run.partition, config, samples)
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
                "predicted_cycles": layer_cycles(config, layer, samples,
                                                 layer.input in blocked),
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


def generation_benchmark(arrays: list[tuple[int, int]], *, lint: bool = False,
                         progress=None) -> dict:
    """Time ``mxugen generate --rows R --cols C`` for each array as a user runs it, each in a
    process of its own: wall seconds, the process's peak memory, the Verilog's size and
    modules; with ``lint``, whether ``verilator --lint-only -Wall`` finds it clean and how
    long that takes (not counted in the generation's seconds)."""

    from .lint import lint as run_lint

    for rows, cols in arrays:  # each one a valid configuration before the first run
        ArrayConfig(rows=rows, cols=cols)
    results = []
    for rows, cols in arrays:
        if progress:
            progress(f"{rows}x{cols}")
        with tempfile.TemporaryDirectory(prefix="mxugen-gen-") as folder:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "mxugen", "generate", "--rows", str(rows), "--cols",
                 str(cols), "-o", folder], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            stderr = process.stderr.read()
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode:
                raise RuntimeError(f"mxugen generate {rows}x{cols} failed: "
                                   f"{stderr.decode(errors='replace').strip()}")
            verilog = Path(folder, "mxu.v")
            text = verilog.read_text()
            entry = {"rows": rows, "cols": cols, "seconds": round(seconds, 2),
                     "peak_memory_mb": round(usage.ru_maxrss / 1024),
                     "verilog_mb": round(len(text) / 1e6, 2),
                     "modules": text.count("\nmodule ") + text.startswith("module ")}
            if lint:
                started = time.perf_counter()
                entry["lint_clean"] = not run_lint(verilog, "mxu")
                entry["lint_seconds"] = round(time.perf_counter() - started, 1)
        results.append(entry)
    return {"arrays": results}


def sim_benchmark(graph: Graph, x: np.ndarray, *, rows: int, cols: int, batch: int = 256,
                  runtime: str = "litert", seed: int = 0,
                  build_args: tuple[str, ...] = ()) -> dict:
    """Run ``x`` through ``graph`` on a rows×cols accelerator twice, with the same Verilog and
    the same Verilator: (a) the cocotb flow (:func:`~verif.network_sim.run_on_rtl`, what
    ``mxugen sim`` does) and (b) the raw C++ harness (:mod:`verif.harness`); check that both
    read back the same accelerator output and counted the same cycles, and return each one's
    build and run seconds and simulated cycles per second, and their ratio. Both run
    ``batch`` samples at a time, all batches in one simulator process (``mxugen sim
    --workers 1``). ``build_args`` are more Verilator options for both builds (``--threads 2``).

    The accelerator must run the network from its input in one program; host operators may
    follow it (a final SOFTMAX): both flows read the tensor the accelerator ends with."""

    from quantizer import QuantizerError
    from quantizer.partition import partition

    from .harness import build_harness, run_harness
    from .network_sim import accelerator_simulator

    part = partition(graph, runtime, rows=rows)
    if not part.host_tail_only:
        raise QuantizerError("bench sim needs a network the accelerator runs from its input "
                             "in one program (host operators only after it); this one has "
                             "host operators in between: " +
                             ", ".join(op.kind for op in part.host_ops))
    final = part.steps[0].ops[-1].outputs[0]
    samples, batch = len(x), min(batch, len(x))
    config = accelerator_config(graph, batch, rows=rows, cols=cols)
    started = time.perf_counter()
    accelerator_simulator(config, build_args=build_args)
    cocotb_build = time.perf_counter() - started
    harness, raw_build = build_harness(config, build_args)

    run = run_on_rtl(graph, x, config, batch=batch, seed=seed, runtime=runtime, reads=[final],
                     build_args=build_args)
    with tempfile.TemporaryDirectory(prefix="mxugen-harness-") as folder:
        raw = run_harness(harness, run.plan, config, x, graph.inputs[0], Path(folder))
    cocotb_steps = [step for batch in run.batches for step in batch["steps"]]
    same_output = bool(np.array_equal(raw.tensors[final], run.tensors[final]))
    return {
        "rows": rows, "cols": cols, "samples": samples, "batch": batch,
        "hardware": config.describe(), "build_args": list(build_args),
        "accelerator_output": final, "cycles": run.cycles,
        "outputs_equal": same_output, "cycles_equal": cocotb_steps == raw.steps,
        "mismatches_with_golden": run.mismatch_count,
        "cocotb": _flow_figures(cocotb_build, run.sim_seconds, run.cycles, samples),
        "raw": _flow_figures(raw_build, raw.seconds, raw.cycles, samples),
        "ratio": round(raw.seconds / run.sim_seconds, 3),
    }


def _flow_figures(build: float, run: float, cycles: int, samples: int) -> dict:
    return {"build_seconds": round(build, 2), "run_seconds": round(run, 3),
            "cycles_per_second": round(cycles / run),
            "samples_per_second": round(samples / run, 1)}
