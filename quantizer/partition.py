"""Where each operator of a graph runs: on the accelerator or on the host, the way a TFLite
delegate partitions a graph.

An operator runs on the accelerator when :func:`~quantizer.layers.lower` maps it onto the array
or the vector unit;
a RESHAPE costs nothing there when every reader is an accelerator layer (the layer reads the
tensor it reshapes, :func:`~quantizer.layers.flattened_source`), nor does a PAD whose readers
all pad by addressing (:func:`~quantizer.layers.fusable_pad`), nor a CONCATENATION of channels
whose inputs accelerator layers write in place (:func:`concatenation_views`). A convolution
whose input the host writes (the graph's input, say) may read it as patches the host lays out
(:meth:`~quantizer.layers.AcceleratorLayer.patched`). Everything else
runs on the host's golden model (:mod:`quantizer.kernels`), reading what the accelerator wrote
and writing back what the accelerator reads next. Consecutive operators on the same side form a
:class:`Step`; an accelerator step is one program the sequencer runs from start to ``last``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .errors import QuantizerError
from .graph import Graph, Operator
from .layers import ACCELERATOR_KINDS, AcceleratorLayer, Patches, lower

__all__ = ["ACCELERATOR", "FREE_CONCATENATION", "FREE_PAD", "FREE_RESHAPE", "HOST",
           "PATCHED_INPUT", "Partition", "Placement", "Step", "concatenation_views",
           "partition"]

ACCELERATOR, HOST = "accelerator", "host"

#: The notes of a RESHAPE the accelerator's layers read through, a PAD they do by addressing
#: and a CONCATENATION whose inputs they write in place: none runs anywhere.
FREE_RESHAPE = "free re-layout"
FREE_PAD = "padding by addressing"
FREE_CONCATENATION = "concatenation by addressing"
#: The note of a layer that reads its input as patches the host writes.
PATCHED_INPUT = "reads its input as patches the host writes"
#: The operators that can be free, with their note.
_FREE = {"RESHAPE": FREE_RESHAPE, "PAD": FREE_PAD, "PADV2": FREE_PAD}


@dataclass(frozen=True)
class Placement:
    """Where one operator runs, and why: ``note`` says why an operator runs on the host (or
    that a RESHAPE is a free re-layout); ``layer`` is the accelerator's layer."""

    op: Operator
    where: str
    note: str = ""
    layer: AcceleratorLayer | None = None

    @property
    def free(self) -> bool:
        """True for a RESHAPE or PAD that the layers reading its output read through, or a
        CONCATENATION whose inputs are written in place."""
        return self.note in (FREE_RESHAPE, FREE_PAD, FREE_CONCATENATION)

    def describe(self) -> dict:
        return {"name": self.op.name, "kind": self.op.kind, "where": self.where,
                **({"note": self.note} if self.note else {})}


@dataclass(frozen=True)
class Step:
    """Consecutive operators on one side: an accelerator program, or host operators."""

    where: str
    placements: tuple[Placement, ...]

    @property
    def layers(self) -> list[AcceleratorLayer]:
        return [p.layer for p in self.placements if p.layer is not None]

    @property
    def ops(self) -> list[Operator]:
        return [p.op for p in self.placements]


@dataclass(frozen=True)
class Partition:
    """A graph split between the accelerator and the host.

    Attributes
    ----------
    graph, runtime : the graph and whose arithmetic it follows.
    placements : one per operator, in the graph's order.
    steps : the order they run in: accelerator programs and host operators, alternating
        (free RESHAPEs, PADs and CONCATENATIONs belong to no step).
    rows : the array's rows it was made for (they decide which concatenations are free), or
        None.
    views : each input of a free CONCATENATION → ``(its output, first channel)``: the
        tensor lives inside the output's region.
    patches : each tensor the host writes as the patches of the one layer reading it →
        their geometry.
    """

    graph: Graph
    runtime: str
    placements: tuple[Placement, ...]
    steps: tuple[Step, ...]
    rows: int | None = None
    views: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def patches(self) -> dict[str, Patches]:
        return {layer.input: layer.patches for layer in self.layers if layer.patches}

    @property
    def layers(self) -> list[AcceleratorLayer]:
        """Every accelerator layer, in the order they run."""
        return [layer for step in self.steps for layer in step.layers]

    @property
    def host_ops(self) -> list[Operator]:
        return [p.op for p in self.placements if p.where == HOST]

    @property
    def host_tail_only(self) -> bool:
        """True when the accelerator runs first, in one step, and the host only after it."""
        return bool(self.steps) and self.steps[0].where == ACCELERATOR and \
            all(step.where == HOST for step in self.steps[1:])

    def resident(self) -> list[str]:
        """The tensors that live in activation memory, in the order they are first written:
        what accelerator layers read and write (for a view, :attr:`views`, the tensor it is
        part of)."""
        names: list[str] = []
        for layer in self.layers:
            for name in (*layer.reads, layer.output):
                name = self.views.get(name, (name,))[0]
                if name not in names:
                    names.append(name)
        return names

    def summary(self) -> str:
        """One line: how many operators run where, by kind."""
        def counts(where: str) -> str:
            kinds = Counter(p.op.kind for p in self.placements if p.where == where)
            return ", ".join(f"{kind}×{n}" for kind, n in kinds.items()) or "nothing"
        return f"accelerator: {counts(ACCELERATOR)}; host: {counts(HOST)}"


def concatenation_views(graph: Graph, op: Operator, rows: int | None,
                        on_accelerator) -> dict[str, int]:
    """The inputs of CONCATENATION ``op`` → their first output channel, when the accelerator
    layers writing them can write in place: a region holds ``rows`` channels a word group,
    so every input but the last must fill whole groups (``on_accelerator(name)``: an
    accelerator layer writes tensor ``name``). Empty when they cannot."""
    out = graph.op_output(op)
    inputs = [graph.tensor(name) for name in op.inputs]
    axis = int(op.options.get("axis", -1))
    if rows is None or op.activation != "NONE" or axis not in (-1, len(out.shape) - 1) or \
            len(out.shape) not in (2, 4) or len(set(op.inputs)) != len(op.inputs):
        return {}
    offsets, first = {}, 0
    for i, t in enumerate(inputs):
        if t.is_constant or t.dtype != out.dtype or t.zp != out.zp or \
                t.scalar_scale != out.scalar_scale or not on_accelerator(t.name) or \
                t.name in graph.outputs or (i < len(inputs) - 1 and t.shape[-1] % rows):
            return {}
        offsets[t.name] = first
        first += t.shape[-1]
    return offsets


def _patch_host_inputs(graph: Graph, placements: dict[str, Placement], rows: int) -> None:
    """Make each layer that alone reads a tensor the host writes (the graph's input or a host
    operator's output) read it as patches, where that pays."""
    layers = [p.layer for p in placements.values() if p.layer is not None]
    readers = Counter(name for layer in layers for name in layer.reads)
    by_host = set(graph.inputs) | {p.op.outputs[0] for p in placements.values()
                                   if p.where == HOST}
    for name, placement in placements.items():
        layer = placement.layer
        if layer is None or layer.input not in by_host or readers[layer.input] != 1 or \
                layer.input in graph.outputs:
            continue
        patched = layer.patched(rows)
        if patched is not None:
            placements[name] = Placement(placement.op, ACCELERATOR, PATCHED_INPUT, patched)


def partition(graph: Graph, runtime: str = "litert", *, rows: int | None = None,
              layer_steps: bool = False) -> Partition:
    """Place every operator of ``graph``: on the accelerator where :func:`lower` maps it,
    else on the host, with the reason; with the array's ``rows``, CONCATENATIONs whose
    inputs can be written in place are free (:func:`concatenation_views`). ``layer_steps``
    makes every accelerator layer a step (a program) of its own, so that each layer's cycles
    can be measured; with ``rows``, a layer that alone reads a tensor the host writes
    reads it as patches where :meth:`~quantizer.layers.AcceleratorLayer.patched` says that
    pays."""
    placements: dict[str, Placement] = {}
    for op in graph.operators:
        if op.kind in _FREE:
            continue
        try:
            placements[op.name] = Placement(op, ACCELERATOR, layer=lower(graph, op, runtime))
        except QuantizerError as exc:
            if op.kind in ACCELERATOR_KINDS:
                note = str(exc)
            else:
                note = f"the accelerator has no {op.kind}"
            placements[op.name] = Placement(op, HOST, note)
    # A RESHAPE or PAD is free when only accelerator layers read its output, through it.
    for op in reversed(graph.operators):
        if op.kind not in _FREE:
            continue
        readers = graph.consumers(op.outputs[0])
        free = bool(readers) and op.outputs[0] not in graph.outputs and all(
            placements[r.name].where == ACCELERATOR and
            (r.kind == op.kind == "RESHAPE" or (
                placements[r.name].layer is not None and
                op.outputs[0] not in placements[r.name].layer.reads))
            for r in readers)
        by_host = op.outputs[0] in graph.outputs or any(
            placements[r.name].where == HOST for r in readers) or op.kind == "RESHAPE"
        placements[op.name] = Placement(op, ACCELERATOR, _FREE[op.kind]) if free else \
            Placement(op, HOST, "its output is read by the host" if by_host else
                      "a reader does not pad by addressing")
    views: dict[str, tuple[str, int]] = {}
    writers = {p.layer.output for p in placements.values() if p.layer is not None}
    for op in graph.operators:
        if op.kind == "CONCATENATION" and placements[op.name].where == HOST:
            offsets = concatenation_views(graph, op, rows, writers.__contains__)
            if offsets:
                placements[op.name] = Placement(op, ACCELERATOR, FREE_CONCATENATION)
                views.update({name: (op.outputs[0], c) for name, c in offsets.items()})
    if rows is not None:
        _patch_host_inputs(graph, placements, rows)
    ordered = tuple(placements[op.name] for op in graph.operators)
    steps: list[Step] = []
    for placement in ordered:
        if placement.free:
            continue
        if steps and steps[-1].where == placement.where and not (
                layer_steps and placement.where == ACCELERATOR):
            steps[-1] = Step(placement.where, (*steps[-1].placements, placement))
        else:
            steps.append(Step(placement.where, (placement,)))
    return Partition(graph, runtime, ordered, tuple(steps), rows, views)
