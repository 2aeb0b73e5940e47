"""The raw harness: the same accelerator Verilog and the same Verilator as the cocotb flow, driven
by a minimal C++ loop (``harness.cpp``) instead of cocotb, so ``mxugen bench sim`` can measure
what cocotb costs against what this simulator can do at best."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw import ArrayConfig
from hw.block_ram import READ_LATENCY
from hw.contract import MEM_ACTIVATIONS, MEM_PARAMS, MEM_PROGRAM, MEM_WEIGHTS
from quantizer.memory_plan import TensorPlacement

from .errors import SimulationError
from .network_sim import RunPlan, accelerator_design
from .runner import MAKE_VARIABLES, VERILATOR_WAIVERS, build_directory
from .toolchain import ensure_toolchain

SOURCE = Path(__file__).with_name("harness.cpp")


def build_harness(config: ArrayConfig, build_args: tuple[str, ...] = ()) -> tuple[Path, float]:
    """The harness executable for accelerator ``config``, built once and cached beside the
    cocotb builds; and the seconds this call spent building (0 when it was cached).
    Verilator's flags are the cocotb build's (with the same ``build_args``) but for what
    cocotb itself needs (VPI, its public signals) and the simulation build's own clock
    (``--timing``): the Verilog is the plain accelerator's, and the harness toggles ``clk``."""
    toolchain = ensure_toolchain()
    name = f"harness-{config.rows}x{config.cols}-{config.digest()}"
    # The host port's read latency comes from the hardware's one definition.
    define = ("-CFLAGS", f"-DMXUGEN_READ_LATENCY={READ_LATENCY}")
    args = (*VERILATOR_WAIVERS, *build_args, *define, "harness", SOURCE.read_text())
    verilog = accelerator_design(config)
    build_dir = build_directory(name, verilog, "accel", waves=False, args=args)
    executable = build_dir / "obj_dir" / "harness"
    if executable.exists():
        return executable, 0.0
    started = time.perf_counter()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / "accel.v"
    source.write_text(verilog())
    makeflags = [arg for variable in MAKE_VARIABLES for arg in ("-MAKEFLAGS", variable)]
    command = [str(toolchain.verilator), "--cc", "--exe", "--build", "-j", "2", *makeflags,
               *VERILATOR_WAIVERS, *build_args, *define, "--top-module", "accel",
               "--prefix", "Vaccel", "-Mdir", str(build_dir / "obj_dir"), "-o", "harness",
               str(source), str(SOURCE)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode or not executable.exists():
        log = build_dir / "build.log"
        log.write_text(done.stdout + done.stderr)
        raise SimulationError(f"Verilator build of the raw harness failed; full log: {log}")
    return executable, time.perf_counter() - started


@dataclass
class HarnessRun:
    """What the harness measured: the counters of each accelerator step, each read tensor
    ``{name: values}`` over all batches, and the run's wall seconds."""

    steps: list[dict]
    tensors: dict[str, np.ndarray]
    seconds: float

    @property
    def cycles(self) -> int:
        return sum(step["cycles"] for step in self.steps)


def run_harness(executable: Path, plan: RunPlan, config: ArrayConfig, x: np.ndarray,
                input_name: str, folder: Path) -> HarnessRun:
    """Run ``plan`` (:func:`~verif.network_sim.plan_run`) on ``x`` with the harness: the same
    loads, programs and reads as the cocotb testbench (``verif/tb/accel_tb.py``), but for
    host operators: they may only follow the accelerator's steps, and the harness leaves them
    out (it reads what the accelerator wrote, which must be what the plan reads)."""
    lines = [_write(MEM_WEIGHTS, plan.weights), _write(MEM_PARAMS, plan.params)]
    runs = [_accelerator_steps(batch) for batch in plan.batches]
    for batch, steps in zip(plan.batches, runs):
        tensors = {name: TensorPlacement.from_dict(region)
                   for name, region in batch["tensors"].items()}
        first = batch["first_sample"]
        region = tensors[input_name]
        lines += [_write(MEM_PROGRAM, batch["program"]),
                  _write(MEM_ACTIVATIONS, region.pack(x[first:first + batch["samples"]],
                                                      config), region.base)]
        lines += [f"run {step['start_pc']} {step['timeout_cycles']}" for step in steps]
        lines += [f"read {tensors[name].base} {tensors[name].words}" for name in batch["reads"]]
    commands, results = folder / "commands.txt", folder / "results.txt"
    commands.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    done = subprocess.run([str(executable), str(commands), str(results)], capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SimulationError(f"the raw harness failed: {done.stderr.strip()}")
    replies = iter(results.read_text().splitlines())
    steps, parts = [], {name: [] for name in plan.reads}
    for batch, batch_steps in zip(plan.batches, runs):
        for _ in batch_steps:
            _, cycles, stalls, vectors, error = next(replies).split()
            if int(error):
                raise SimulationError("the accelerator flagged an invalid descriptor")
            steps.append({"cycles": int(cycles), "weight_stall_cycles": int(stalls),
                          "vectors": int(vectors)})
        for name in batch["reads"]:
            words = [int(word, 16) for word in next(replies).split()[1:]]
            region = TensorPlacement.from_dict(batch["tensors"][name])
            parts[name].append(region.unpack(words, config))
    return HarnessRun(steps=steps, seconds=seconds,
                      tensors={name: np.concatenate(values) for name, values in parts.items()})


def _accelerator_steps(batch: dict) -> list[dict]:
    """A batch's accelerator steps; host operators may only follow them."""
    on_accelerator = [step["start_pc"] is not None for step in batch["steps"]]
    if on_accelerator != sorted(on_accelerator, reverse=True):
        raise ValueError("the raw harness runs no host operator before an accelerator step")
    return [step for step, runs in zip(batch["steps"], on_accelerator) if runs]


def _write(sel: int, words, base: int = 0) -> str:
    return f"write {sel} {base} " + " ".join(f"{int(word):x}" for word in words)
