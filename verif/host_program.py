"""What the host does in a whole-network run, whatever simulates the accelerator: load the
images, and for every batch write its inputs, run its steps (accelerator programs, and the
operators placed on the host with the golden model) and read the requested tensors back.

The simulator is behind a *host port*, an object with four coroutines — ``write(sel, base,
words)`` (memory words while idle), ``read(base, count)`` (activation words), ``run(
timeout_cycles, start_pc)`` (start a program and wait for done) and ``counters()`` (the
accelerator's ``cycles``, ``weight_stall_cycles``, ``vectors`` and ``error`` after a run) —
so the cocotb testbench (:mod:`verif.tb.accel_tb`, Verilator) and Amaranth's simulator
(:mod:`verif.amaranth_sim`) run the same stimulus through the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from hw import ArrayConfig
from hw.contract import MEM_ACTIVATIONS, MEM_PARAMS, MEM_PROGRAM, MEM_WEIGHTS
from quantizer.graph import Graph
from quantizer.kernels import evaluate
from quantizer.memory_plan import TensorPlacement

#: The run counters a host port reports after each program.
COUNTERS = ("cycles", "weight_stall_cycles", "vectors")


class HostPortLike(Protocol):
    async def write(self, sel: int, base: int, words) -> None: ...
    async def read(self, base: int, count: int) -> list[int]: ...
    async def run(self, timeout_cycles: int, start_pc: int = 0) -> None: ...
    async def counters(self) -> dict[str, int]: ...


class HostSide:
    """The host's share of a partitioned graph (:mod:`quantizer.partition`): it runs the
    operators placed on the host with the golden model, reading the tensors they need from
    activation memory and writing back the ones the accelerator reads next."""

    def __init__(self, host: HostPortLike, config: ArrayConfig, graph: Graph, runtime: str,
                 tensors: dict[str, TensorPlacement]):
        self.host, self.config, self.graph, self.runtime = host, config, graph, runtime
        self.tensors = tensors
        self.values: dict[str, np.ndarray] = {}

    async def write(self, name: str, values: np.ndarray) -> None:
        self.values[name] = values
        if name in self.tensors:
            region = self.tensors[name]
            await self.host.write(MEM_ACTIVATIONS, region.base, region.pack(values, self.config))

    async def read(self, name: str) -> np.ndarray:
        """A tensor's values: the host's own (it computed, wrote or read them already; tensors
        are written once), else what activation memory holds."""
        if name in self.values:
            return self.values[name]
        region = self.tensors[name]
        values = region.unpack(await self.host.read(region.base, region.words), self.config)
        self.values[name] = values
        return values

    async def run(self, op_name: str) -> None:
        op = next(op for op in self.graph.operators if op.name == op_name)
        args = [None if name is None else self.graph.tensors[name].data
                if self.graph.tensors[name].is_constant else await self.read(name)
                for name in op.inputs]
        await self.write(op.outputs[0], evaluate(op, self.graph, args, self.runtime))


async def run_batches(host: HostPortLike, config: ArrayConfig, graph: Graph, runtime: str,
                      x: np.ndarray, weights: list[int], params: list[int], batches: list[dict],
                      done: Callable[[int], None] | None = None
                      ) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Load ``weights`` and ``params``, then run ``batches`` (:func:`verif.network_sim.plan_run`'s)
    on inputs ``x``: each batch's counters (summed, and per accelerator step in ``steps``), and
    the tensors read back, ``b<batch>_t<index in reads>``. ``done`` is called with a batch's
    samples when it finishes."""
    await host.write(MEM_WEIGHTS, 0, weights)
    await host.write(MEM_PARAMS, 0, params)
    results, arrays = [], {}
    for number, batch in enumerate(batches):
        await host.write(MEM_PROGRAM, 0, batch["program"])
        tensors = {name: TensorPlacement.from_dict(region)
                   for name, region in batch["tensors"].items()}
        side = HostSide(host, config, graph, runtime, tensors)
        first = batch["first_sample"]
        await side.write(graph.inputs[0], x[first:first + batch["samples"]])
        counters = {**{name: 0 for name in COUNTERS}, "steps": []}
        for step in batch["steps"]:
            if step["start_pc"] is None:
                for op in step["ops"]:
                    await side.run(op)
                continue
            await host.run(int(step["timeout_cycles"]), step["start_pc"])
            measured = await host.counters()
            if measured.pop("error"):
                raise AssertionError("the accelerator flagged an invalid descriptor")
            counters["steps"].append(measured)
            for name, value in measured.items():
                counters[name] += value
        for index, name in enumerate(batch["reads"]):
            arrays[f"b{number}_t{index}"] = await side.read(name)
        results.append(counters)
        if done is not None:
            done(batch["samples"])
    return results, arrays


def tensors_by_batch(arrays, batches: list[dict]) -> list[list[np.ndarray]]:
    """:func:`run_batches`'s tensors (or the ``.npz`` they were saved to), per batch in the
    order of its ``reads``."""
    return [[arrays[f"b{b}_t{i}"] for i in range(len(batch["reads"]))]
            for b, batch in enumerate(batches)]
