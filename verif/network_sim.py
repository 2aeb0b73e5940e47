"""Run a network on the generated accelerator in Verilator: compile the images, simulate every
batch in one simulator launch (or shares of them in several) — accelerator programs, and the
operators the host runs between them — and return the outputs, the counters and every
difference from the golden model."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw import ArrayConfig
from hw.accelerator import Accelerator
from hw.generate import to_verilog
from quantizer.compile import compile_network
from quantizer.graph import Graph
from quantizer.partition import Partition, partition

from .bulk_load import LOADER_DIGEST, with_bulk_loader, with_own_clock
from .errors import SimulationError
from .host_program import tensors_by_batch
from .runner import build_simulator

#: Mismatch lines reported per tensor; the rest are counted.
REPORTED_PER_TENSOR = 20


@dataclass
class RtlRun:
    """Outputs ``(samples, *output shape)`` (None when the run read other tensors only),
    per-batch counters (with each accelerator step's, ``steps``), and the differences from
    the golden model: ``mismatches`` describes them (at most :data:`REPORTED_PER_TENSOR` per
    tensor), ``mismatch_count`` counts every differing value, ``first_difference`` names the
    first operator whose output differs; ``plan`` is what ran (:func:`plan_run`)."""

    outputs: np.ndarray | None
    batches: list[dict]
    mismatches: list[str]
    config: ArrayConfig
    plan: RunPlan
    mismatch_count: int = 0
    first_difference: str | None = None
    #: Every tensor read back, ``{name: values over all samples}``.
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    #: Wall seconds of the simulator processes (cocotb and the Verilated model), from the
    #: first one's launch to the last one's end.
    sim_seconds: float = 0.0
    #: Simulator processes that shared the batches.
    workers: int = 1

    @property
    def partition(self) -> Partition:
        return self.plan.partition

    @property
    def cycles(self) -> int:
        return sum(b["cycles"] for b in self.batches)

    @property
    def weight_stall_cycles(self) -> int:
        return sum(b["weight_stall_cycles"] for b in self.batches)


@dataclass
class RunPlan:
    """What a whole-network run does, for any testbench: the partition, the images every
    batch shares (``weights``, ``params``) and, per batch, its program, samples, tensor
    placements, steps (accelerator programs from ``start_pc``, or host operators) and the
    tensors read back (``reads``)."""

    partition: Partition
    weights: list[int]
    params: list[int]
    batches: list[dict]
    reads: list[str]


def plan_run(graph: Graph, x: np.ndarray, config: ArrayConfig, *, batch: int | None = None,
             check_layers: bool = False, runtime: str = "litert", layer_steps: bool = False,
             reads: list[str] | None = None) -> RunPlan:
    """Compile ``graph`` for ``config`` and split the samples ``x`` into batches
    (:func:`run_on_rtl` has the parameters)."""
    part = partition(graph, runtime, rows=config.rows, layer_steps=layer_steps)
    layers = part.layers
    # By default as many samples as fit the partial-sum memory in one pass per layer; more
    # run in passes (AcceleratorLayer.passes).
    pixels = max((layer.pixels for layer in layers), default=1)
    batch = max(1, min(batch or config.psum_depth // pixels, len(x)))
    if reads is None:
        # Free operators compute nothing, but a concatenation done in place may be the output.
        reads = [p.op.outputs[0] for p in part.placements
                 if not p.free or p.op.outputs[0] in graph.outputs] if check_layers \
            else list(graph.outputs)
    batches, by_size = [], {}
    for first in range(0, len(x), batch):
        samples = min(batch, len(x) - first)
        if samples not in by_size:  # every full batch shares one layout, the last may differ
            by_size[samples] = compile_network(graph, config, samples, runtime=runtime,
                                               keep_layers=check_layers, part=part)
        compiled = by_size[samples]
        by_name = {layer["name"]: layer for layer in compiled.layers}
        batches.append({
            "program": compiled.program, "samples": samples, "first_sample": first,
            "tensors": {name: region.to_dict() for name, region in compiled.tensors.items()},
            "steps": [{"ops": step.ops, "start_pc": step.start_pc,
                       "timeout_cycles": 100_000 + sum(
                           4 * by_name[op]["k_tiles"] * by_name[op]["n_tiles"] *
                           (by_name[op]["m"] + config.rows + config.cols)
                           for op in step.ops if op in by_name)}
                      for step in compiled.steps],
            "reads": reads,
        })
    return RunPlan(partition=part, weights=compiled.weights, params=compiled.params,
                   batches=batches, reads=reads)


def accelerator_design(config: ArrayConfig, verilog: str | None = None) -> Callable[[], str]:
    """The accelerator's Verilog (top ``accel``) as the simulator builds take it: generated
    only if no build has it cached; ``verilog`` when the caller generated it already."""
    return lambda: verilog or to_verilog(Accelerator(config), config, "accel")


def accelerator_simulator(config: ArrayConfig, verilog: str | None = None,
                          build_args: tuple[str, ...] = (), simulator: str = "verilator"):
    """The cached build of accelerator ``config`` that whole-network runs use, with a loader
    for bulk memory loads and its own clock (:mod:`verif.bulk_load`): in Verilator with the
    top module's variables public only, ``build_args`` more of its options (``--threads 2``),
    or in Icarus Verilog (``simulator="icarus"``)."""
    design = accelerator_design(config, verilog)
    if simulator != "verilator" and build_args:
        raise ValueError(f"build_args are Verilator options; {simulator} takes none")
    return build_simulator(
        f"accel-{config.rows}x{config.cols}-{config.digest()}-{LOADER_DIGEST}",
        lambda: with_own_clock(with_bulk_loader(design())), "accel", visibility="ports",
        public=("mxugen_*", "clk"), simulator=simulator,
        extra_args=("--timing", *build_args) if simulator == "verilator" else ())


def run_on_rtl(graph: Graph, x: np.ndarray, config: ArrayConfig, *,
               batch: int | None = None, check_layers: bool = False, seed: int = 0,
               verilog: str | None = None, runtime: str = "litert",
               layer_steps: bool = False, reads: list[str] | None = None,
               host_port: bool = False, workers: int = 1,
               progress: Callable[[int], None] | None = None,
               build_args: tuple[str, ...] = (), simulator: str = "verilator") -> RtlRun:
    """Run int8 inputs ``x`` ``(samples, *input shape)`` through the accelerator ``config``,
    operators it does not run on the host's golden model (:mod:`quantizer.partition`), and
    compare the outputs (with ``check_layers``, every tensor an operator computes; with
    ``reads``, those tensors) with the golden model of ``runtime``.

    ``verilog`` is the accelerator's Verilog (top ``accel``) when the caller already generated
    it, so what is simulated is exactly what it wrote. ``layer_steps`` runs every accelerator
    layer as a program of its own, so each layer's cycles are measured (the sum is the same:
    the sequencer runs one layer after the other). The testbench loads and reads memories
    in bulk, straight into their Verilog arrays, or with ``host_port`` one word a cycle
    through the host port, as a processor would.

    ``workers`` simulator processes (of the one cached build) share the batches, each a
    contiguous run of them, so P cores take about 1/P of the time when there are at least P
    batches; ``progress`` is called with the number of samples done whenever it grows.
    ``build_args`` are more Verilator options for the simulator's build; ``simulator`` is
    ``"icarus"`` to run on Icarus Verilog instead (:data:`verif.toolchain.SIMULATORS`).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    x = np.asarray(x)
    plan = plan_run(graph, x, config, batch=batch, check_layers=check_layers, runtime=runtime,
                    layer_steps=layer_steps, reads=reads)
    golden = graph.run(x, runtime=runtime, all_tensors=True)
    reads, batches = plan.reads, plan.batches
    sim = accelerator_simulator(config, verilog, build_args, simulator)
    shares = [share for share in np.array_split(np.arange(len(batches)), workers) if len(share)]
    with tempfile.TemporaryDirectory(prefix="mxugen-run-") as tmp:
        tmp = Path(tmp)
        graph.save(tmp / "graph")
        np.save(tmp / "inputs.npy", x)
        settings = {"seed": seed, "hw": config.to_dict(), "bulk": not host_port,
                    "weights": plan.weights, "params": plan.params, "graph": str(tmp / "graph"),
                    "runtime": runtime, "inputs_file": str(tmp / "inputs.npy")}
        started = time.perf_counter()
        with ThreadPoolExecutor(len(shares)) as pool:  # each thread waits on its simulator
            runs = [pool.submit(_run_share, sim, settings, [batches[i] for i in share],
                                tmp / f"worker{number}",
                                "network" if len(shares) == 1 else f"network-{number}")
                    for number, share in enumerate(shares)]
            _report_progress(runs, [tmp / f"worker{n}" / "progress" for n in range(len(shares))],
                             progress)
            results = [run.result() for run in runs]
        sim_seconds = time.perf_counter() - started
    counters = [counter for share_counters, _ in results for counter in share_counters]
    tensors = [batch for _, share_tensors in results for batch in share_tensors]
    return checked_run(graph, config, plan, golden, counters, tensors,
                       sim_seconds=sim_seconds, workers=len(shares))


def checked_run(graph: Graph, config: ArrayConfig, plan: RunPlan, golden: dict,
                counters: list[dict], tensors: list[list[np.ndarray]], **fields) -> RtlRun:
    """The :class:`RtlRun` of ``plan``'s batches, their ``counters`` and per batch the tensors
    read back (in the order of ``plan.reads``), compared with the ``golden`` model's tensors;
    ``fields`` are more of its attributes."""
    got = {name: np.concatenate([batch[index] for batch in tensors])
           for index, name in enumerate(plan.reads)}
    output = graph.outputs[0]
    run = RtlRun(outputs=got[output].astype(golden[output].dtype) if output in got else None,
                 batches=counters, mismatches=[], config=config, plan=plan, tensors=got,
                 **fields)
    _compare(run, graph, got, golden, plan.reads)
    return run


def _run_share(sim, settings: dict, batches: list[dict], folder: Path,
               name: str) -> tuple[list[dict], list[list[np.ndarray]]]:
    """One simulator process running ``batches``: their counters, and per batch the tensors
    read back (in the order of ``reads``)."""
    folder.mkdir()
    results_file, arrays_file = folder / "results.json", folder / "tensors.npz"
    outcome = sim.run("verif.tb.accel_tb", seed=settings["seed"], name=name,
                      config={**settings, "batches": batches,
                              "results_file": str(results_file),
                              "arrays_file": str(arrays_file),
                              "progress_file": str(folder / "progress")})
    if not (outcome.passed and results_file.exists() and arrays_file.exists()):
        raise SimulationError(f"the simulation did not finish: {outcome.summary()}")
    with np.load(arrays_file) as arrays:
        tensors = tensors_by_batch(arrays, batches)
    return json.loads(results_file.read_text())["batches"], tensors


def _report_progress(runs: list[Future], files: list[Path],
                     progress: Callable[[int], None] | None) -> None:
    """Until every run is done, call ``progress`` with the samples the testbenches have
    finished (each appends a line with a batch's samples to its ``progress`` file)."""
    reported = 0
    while True:
        finished = all(run.done() for run in runs)
        if progress is not None:
            done = sum(int(line) for file in files if file.exists()  # whole lines only
                       for line in file.read_text().split("\n")[:-1])
            if done != reported:
                reported = done
                progress(done)
        if finished:
            return
        wait(runs, timeout=0.25)


def _compare(run: RtlRun, graph: Graph, got: dict, golden: dict, reads: list[str]) -> None:
    """Every read tensor against the golden model's, in the order the operators ran."""
    where = {p.op.outputs[0]: p for p in run.partition.placements}
    for name in reads:
        expected = golden[name]
        actual = got[name].reshape(expected.shape)
        wrong = np.argwhere(actual != expected)
        if not len(wrong):
            continue
        placement = where[name]
        op = placement.op
        if run.first_difference is None:
            run.first_difference = f"{op.kind} {op.name} (on the {placement.where})"
        run.mismatch_count += len(wrong)
        per_sample = int(np.prod(expected.shape[1:-1])) if expected.ndim > 2 else 1
        flat_a = actual.reshape(len(actual), per_sample, -1)
        flat_e = expected.reshape(len(expected), per_sample, -1)
        for sample, pixel, channel in np.argwhere(flat_a != flat_e)[:REPORTED_PER_TENSOR]:
            run.mismatches.append(
                f"{op.kind} {op.name}, sample {sample}" +
                (f", pixel {pixel}" if per_sample > 1 else "") +
                f", output {channel}: expected {flat_e[sample, pixel, channel]}, "
                f"got {flat_a[sample, pixel, channel]}")
        if len(wrong) > REPORTED_PER_TENSOR:
            run.mismatches.append(f"… and {len(wrong) - REPORTED_PER_TENSOR} more in "
                                  f"{op.kind} {op.name}")
