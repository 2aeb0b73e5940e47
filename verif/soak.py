"""The soak: random hardware configurations and random networks through the RTL and the golden
model until a time budget is spent (``mxugen bench soak``; docs/verification.md).

Case ``i`` of a soak with seed ``S`` has the seed ``S + i``, and everything about it — the
hardware drawn from :data:`HARDWARE`, the network (:func:`~verif.random_network.random_graph`),
its runtime, samples and batch, the inputs and the simulator's seed — follows from that seed
(and the pool of hardware the soak draws from), so ``soak(seed=CASE_SEED, cases=1)`` replays
one case alone. A case fails when any tensor an operator computes differs from the golden
model's (``run_on_rtl(..., check_layers=True)``), when the output differs from
:meth:`~quantizer.graph.Graph.run`, or when a batch's cycles differ from the cycle model
(:func:`~quantizer.cycles.network_cycles`); a case that raises is an error, recorded with its
seed and kept apart from the mismatches. Neither stops the soak.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from hw import ArrayConfig
from hw.config import MEMORY_FIELDS
from quantizer.cycles import network_cycles
from quantizer.graph import Graph
from quantizer.partition import partition
from quantizer.sizing import accelerator_config

from . import network_sim
from .random_network import random_graph, random_inputs

#: The hardware the soak draws from: few shapes, since each is a Verilator build (30–120 s on
#: two cores), each with its ArrayConfig options, memories of a fixed size (a partial-sum
#: memory smaller than most layers' outputs makes them run in passes of samples or of bands
#: of rows), and the activation type, weight format and runtimes of the networks it runs
#: (TFLite Micro has no uint8 pooling; a double-rounding-only requantizer cannot run
#: LiteRT's single-rounding FULLY_CONNECTED).
HARDWARE: dict[str, dict] = {
    "2x2": {"options": {"rows": 2, "cols": 2}},
    "4x2-window3-psum64": {"options": {"rows": 4, "cols": 2, "window": 3, "window_width": 16},
                           "memories": {"psum_depth": 64, "program_depth": 64}},
    "4x4-load1-uint8": {"options": {"rows": 4, "cols": 4, "weight_load_rows": 1},
                        "dtype": "uint8", "runtimes": ("litert",)},
    "8x4-window3-int4": {"options": {"rows": 8, "cols": 4, "window": 3, "window_width": 16,
                                     "weight_bits": 4}, "weight_format": "int4"},
    "4x4-double-single-cycle": {"options": {"rows": 4, "cols": 4, "requant_modes": ("double",),
                                            "pipelined_product": False},
                                "runtimes": ("tflm",)},
}
#: The smallest memories of every soak build (words): what almost every random network
#: needs (:func:`~quantizer.sizing.accelerator_config`, powers of two), so that one build of
#: each hardware serves nearly every case; a larger network gets the next power of two.
MEMORY_FLOOR = {"weight_depth": 4096, "act_depth": 4096, "param_depth": 64,
                "psum_depth": 512, "program_depth": 16}
RUNTIMES = ("litert", "tflm")
#: The most samples a case runs.
MAX_SAMPLES = 3


def soak_config(graph: Graph, hardware: str, batch: int) -> ArrayConfig:
    """The accelerator of pool entry ``hardware`` sized for ``graph`` at ``batch`` samples per
    run with every layer's output kept (``check_layers``), its memories at least
    :data:`MEMORY_FLOOR`, or the entry's own ``memories``."""
    entry = HARDWARE[hardware]
    options = {"window": 0, **entry["options"]}
    sized = accelerator_config(graph, batch, keep_layers=True, **options)
    memories = {name: max(getattr(sized, name), MEMORY_FLOOR[name]) for name in MEMORY_FIELDS}
    config = replace(sized, **{**memories, **entry.get("memories", {})})
    # A smaller partial-sum memory than sized for means more passes: a descriptor each.
    passes = sum(len(layer.passes(batch, config.psum_depth))
                 for layer in partition(graph, rows=config.rows).layers)
    if passes > config.program_depth:
        config = replace(config, program_depth=1 << (passes - 1).bit_length())
    return config


def draw_case(seed: int, hardware: tuple[str, ...] | None = None) -> dict:
    """Everything case ``seed`` runs: ``hardware`` (a name of :data:`HARDWARE`, drawn from
    ``hardware`` or all of them), ``runtime``, ``graph``, inputs ``x``, ``batch``."""
    pool = tuple(hardware or HARDWARE)
    choice = np.random.default_rng([seed, 0])
    name = pool[int(choice.integers(len(pool)))]
    entry = HARDWARE[name]
    runtimes = entry.get("runtimes", RUNTIMES)
    runtime = runtimes[int(choice.integers(len(runtimes)))]
    rng = np.random.default_rng([seed, 1])
    graph = random_graph(rng, dtype=entry.get("dtype", "int8"),
                         weight_format=entry.get("weight_format", "int8"))
    samples = int(rng.integers(1, MAX_SAMPLES + 1))
    return {"seed": seed, "hardware": name, "runtime": runtime, "graph": graph,
            "x": random_inputs(rng, graph, samples),
            "batch": int(rng.integers(1, samples + 1))}


def run_case(seed: int, hardware: tuple[str, ...] | None = None) -> dict:
    """Run case ``seed`` (:func:`draw_case`) through the RTL and the golden model: a record
    with ``status`` ``ok``, ``mismatch`` (with ``first_difference`` and the differing values)
    or ``error`` (what was raised), and what ran."""
    record: dict = {"seed": seed}
    try:
        case = draw_case(seed, hardware)
        graph, x, runtime = case["graph"], case["x"], case["runtime"]
        record.update({"hardware": case["hardware"], "runtime": runtime, "samples": len(x),
                       "batch": case["batch"], "operators": [op.kind for op in graph.operators]})
        config = soak_config(graph, case["hardware"], case["batch"])
        record["config"] = config.describe()
        run = network_sim.run_on_rtl(graph, x, config, batch=case["batch"], check_layers=True,
                                     seed=seed, runtime=runtime)
        record["on_host"] = [p.op.kind for p in run.partition.placements if p.where == "host"]
        record.update(_compare(run, graph, x, config, runtime))
    except Exception as exc:  # a case that raises is recorded, not the end of the soak
        record.update(status="error", error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=-3))
    return record


def _compare(run, graph: Graph, x: np.ndarray, config: ArrayConfig, runtime: str) -> dict:
    """The run's tensors, output and cycles against the golden model and the cycle model."""
    golden = graph.run(x, runtime=runtime)
    output_differs = run.outputs is None or run.outputs.shape != golden.shape or \
        int(np.count_nonzero(run.outputs != golden))
    measured = [batch["cycles"] for batch in run.batches]
    model = [network_cycles(config, graph, batch["samples"], runtime)
             for batch in run.plan.batches]
    result = {"cycles": sum(measured)}
    if run.mismatch_count or output_differs or measured != model:
        first = run.first_difference or (
            f"the output {graph.outputs[0]}" if output_differs else
            f"cycles: measured {measured}, the cycle model {model}")
        result.update(status="mismatch", first_difference=first,
                      mismatched_values=run.mismatch_count, output_differs=bool(output_differs),
                      cycles_measured=measured, cycles_model=model,
                      details=run.mismatches[:10])
    else:
        result["status"] = "ok"
    return result


def new_seed() -> int:
    """A fresh soak seed, when none is given."""
    return int(np.random.SeedSequence().entropy % (1 << 31))


def soak(seconds: float | None, seed: int, *, cases: int | None = None,
         hardware: tuple[str, ...] | None = None,
         on_case: Callable[[dict, dict], None] | None = None, jobs: int = 1,
         address: str | None = None) -> dict:
    """Run cases ``seed``, ``seed + 1``, … (:func:`run_case`) until ``seconds`` have passed
    (a case started runs to its end) or ``cases`` have run, at least one; ``hardware`` limits
    the pool. ``on_case(record, summary)`` is called after each case. With ``jobs`` above 1
    or an ``address``, the cases run on a Dask cluster (:func:`verif.cluster.dask_client`),
    one a worker at a time, and finish in any order. Returns the summary: cases run,
    mismatches and errors (cases), each failure with its seed, and what was exercised
    (hardware, runtimes, operator kinds, those run on the host)."""
    if seconds is None and cases is None:
        raise ValueError("give a time budget, a number of cases, or both")
    unknown = [name for name in hardware or () if name not in HARDWARE]
    if unknown:
        raise ValueError(f"unknown soak hardware {unknown[0]!r}: choose from "
                         f"{', '.join(HARDWARE)}")
    started = time.monotonic()
    summary = {"seed": seed, "seconds": 0.0, "cases": 0, "mismatches": 0, "errors": 0,
               "failures": [], "configs": Counter(), "runtimes": Counter(),
               "operators": Counter(), "on_host": Counter(), "cycles": 0}

    def more(begun: int) -> bool:
        return begun == 0 or ((cases is None or begun < cases) and
                              (seconds is None or time.monotonic() - started < seconds))

    def done(record: dict) -> None:
        _tally(summary, record, hardware)
        summary["seconds"] = round(time.monotonic() - started, 1)
        if on_case is not None:
            on_case(record, summary)

    interrupted = False
    try:
        if jobs == 1 and address is None:
            while more(summary["cases"]):
                done(run_case(seed + summary["cases"], hardware))
        else:
            _soak_on_cluster(seed, hardware, more, done, jobs, address)
    except KeyboardInterrupt:
        interrupted = True
    summary["seconds"] = round(time.monotonic() - started, 1)
    if interrupted:
        summary["interrupted"] = True
    for key in ("configs", "runtimes", "operators", "on_host"):
        summary[key] = dict(sorted(summary[key].items()))
    return summary


def _soak_on_cluster(seed: int, hardware, more: Callable[[int], bool],
                     done: Callable[[dict], None], jobs: int, address: str | None) -> None:
    """Cases from ``seed`` on a Dask cluster, one in flight a worker, a new one started as
    one finishes while ``more(cases begun)``; ``done(record)`` as each finishes."""
    from distributed import as_completed

    from .cluster import dask_client, worker_count
    with dask_client(jobs, address) as client:
        begun = 0
        running = as_completed()
        for _ in range(worker_count(client)):
            if not more(begun):
                break
            running.add(client.submit(run_case, seed + begun, hardware, pure=False))
            begun += 1
        for future in running:
            done(future.result())
            if more(begun):
                running.add(client.submit(run_case, seed + begun, hardware, pure=False))
                begun += 1


def replay_command(seed: int, hardware: tuple[str, ...] | None = None) -> str:
    """The command line that runs case ``seed`` alone."""
    pool = f" --hardware {','.join(hardware)}" if hardware else ""
    return f"mxugen bench soak --seed {seed} --cases 1{pool}"


def _tally(summary: dict, record: dict, hardware: tuple[str, ...] | None) -> None:
    summary["cases"] += 1
    if "hardware" in record:
        summary["configs"][record["hardware"]] += 1
        summary["runtimes"][record["runtime"]] += 1
        summary["operators"].update(record["operators"])
    summary["on_host"].update(record.get("on_host", ()))
    summary["cycles"] += record.get("cycles", 0)
    if record.get("status") == "ok":
        return
    summary["mismatches" if record["status"] == "mismatch" else "errors"] += 1
    failure = {key: record[key] for key in (
        "seed", "status", "hardware", "config", "runtime", "samples", "batch", "operators",
        "first_difference", "mismatched_values", "output_differs", "cycles_measured",
        "cycles_model", "details", "error", "traceback") if key in record}
    failure["replay"] = replay_command(record["seed"], hardware)
    summary["failures"].append(failure)
