"""The sequencer: walks the layer program and issues each layer's work to the datapath."""

from __future__ import annotations

import itertools

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .block_ram import READ_LATENCY
from .component import ConfiguredComponent
from .config import PRODUCT_REGISTERS, ArrayConfig
from .contract import LAYER_OPS, TILE_COUNT_BITS, address_bits
from .geometry import WALK_STEPS, walk_steps, walk_steps_layout
from .layouts import LOOP_BOUNDS, descriptor_layout, loop_ends_layout
from .memstream import range_command_layout
from .pipeline import LoopEnd, next_is_last

__all__ = ["LayerSignature", "Sequencer", "TILE_LAYOUT", "decoded", "layer_register",
           "loaded_at_launch", "loop_end", "weight_count_bits"]

MATMUL, WINDOW = LAYER_OPS.index("matmul"), LAYER_OPS.index("window")


def weight_count_bits(config: ArrayConfig) -> int:
    """Width of a weight range's word count: a tile's words, at most ``rows`` (the array),
    ``window²`` (the window unit) or 1 (the vector unit)."""
    return max(config.rows, config.window ** 2, 1).bit_length()

#: One step of a layer's tile loop ``for nt: for kt:``: column tile ``nt``, K tile ``kt``, and
#: ``last_k`` on the column tile's final K tile (its sums are complete after it).
TILE_LAYOUT = data.StructLayout({
    "nt": unsigned(TILE_COUNT_BITS),
    "kt": unsigned(TILE_COUNT_BITS),
    "last_k": 1,
})


class LayerSignature(wiring.Signature):
    """The running layer, as the sequencer presents it (its members are ``Out`` there) to the
    datapath components that follow the program.

    Members
    -------
    launch : ``Out(1)``
        High for one cycle as a layer starts: per-layer counters restart.
    incoming : ``Out(descriptor_layout(config))``
        The descriptor being launched, from three cycles before ``launch`` (so a register of
        a value decoded from it, :func:`decoded`, holds it at the launch) until the next
        fetch: registers that start from a base address load it from here.
    desc : ``Out(descriptor_layout(config))``
        The running layer's descriptor, from the cycle after ``launch`` until the next launch.
    ends : ``Out(loop_ends_layout(config))``
        With ``desc``, its loop bounds less one (:data:`~hw.layouts.LOOP_BOUNDS`): a counter
        is compared with a register, not with a subtraction from one.
    steps : ``Out(walk_steps_layout(config))``
        The products the layer's walk over its input map steps by
        (:data:`~hw.geometry.WALK_STEPS`), so the address generator only adds: from the
        launch cycle (with ``incoming``) until the layer's outputs are written.
    """

    def __init__(self, config: ArrayConfig):
        layout = descriptor_layout(config)
        super().__init__({"launch": Out(1), "incoming": Out(layout), "desc": Out(layout),
                          "ends": Out(loop_ends_layout(config)),
                          "steps": Out(walk_steps_layout(config))})


def decoded(m: Module, value, *, name: str) -> Value:
    """``value``, made of the launching descriptor (``layer.incoming``), registered every
    cycle: what a launch loads or restarts from. The descriptor holds from its product stages
    to its launch (:class:`Sequencer`), so the register holds ``value`` at the launch, and no
    path holds both the decode (a compare, a subtract) and the launch's enable. Identical
    ones merge in synthesis. The register loads every cycle wherever it is made, even inside
    a ``with m.If(...)`` (it is a submodule's)."""
    value = Value.cast(value)
    if isinstance(value, Const):  # a constant of this build stays one
        return value
    register = Signal(value.shape(), name=f"{name}_decoded", reset_less=True)
    stage = Module()
    stage.d.sync += register.eq(value)
    for index in itertools.count():  # a name of its own: one field may be decoded twice
        label = f"{name}_decoder" + (f"{index}" if index else "")
        try:
            m.submodules[label]
        except AttributeError:
            m.submodules[label] = stage
            return register


def layer_register(m: Module, layer, value, *, name: str) -> Signal:
    """``value``, made of the launching descriptor (``layer.incoming``), in a register of the
    calling component's own, loaded as the layer launches: it holds while the layer runs, as
    ``desc`` does.

    A field every component reads from the sequencer's one register is routed across the chip
    to all of them, and a flag decoded from fields (``op == window``) costs a LUT on every path
    that reads it; a component's own copy sits beside its readers, a flag costs nothing.
    Marked ``keep``, as synthesis would merge the copies (:func:`~hw.pipeline.lane_copies`).
    The launch loads it from :func:`decoded`."""
    return loaded_at_launch(m, layer, decoded(m, value, name=name), name=name)


def loaded_at_launch(m: Module, layer, value, *, name: str) -> Value:
    """:func:`layer_register` of a value already :func:`decoded`."""
    if isinstance(value, Const):
        return value
    register = Signal(value.shape(), name=name, attrs={"keep": 1})
    with m.If(layer.launch):
        m.d.sync += register.eq(value)
    return register


def loop_end(m: Module, layer, name: str, *, shorter: bool = False) -> LoopEnd:
    """Loop ``name``'s end (a field of the descriptor, :data:`~hw.layouts.LOOP_BOUNDS`) as
    :func:`~hw.pipeline.next_is_last` takes it, in registers of the calling component's own
    loaded as the layer launches (:func:`layer_register`): whether the bound is 1, and the
    bound less two, the loop's last value less one (negative for a bound of 1: no counter
    reaches it); and, for the loop's flag to restart from at the launch, whether the bound of
    the layer being launched is 1 (:func:`decoded`). ``shorter``: the same of the loop a step
    shorter, whose last value is the loop's last but one
    (:func:`~hw.pipeline.next_is_last_but_one`)."""
    bound = getattr(layer.incoming, name)
    label = f"{name}_shorter" if shorter else name
    first_single = decoded(m, bound == 1 + shorter, name=f"{label}_single")
    return LoopEnd(loaded_at_launch(m, layer, first_single, name=f"{label}_single"),
                   layer_register(m, layer, bound - (2 + shorter), name=f"{label}_before_last"),
                   first_single)


class Sequencer(ConfiguredComponent):
    """Runs the layer program from descriptor ``start_pc``: fetches a descriptor, checks it,
    launches the layer, issues its work, and fetches the next once the layer's outputs are
    written, until a descriptor marked ``last``.

    A layer's work is issued as two streams that run ahead of the datapath, at the pace its
    ready signals set: its tile loop, ``for nt: for kt:``, and its weights, a memory range per
    tile (``rows`` words on the array, ``window²`` on the window unit, one on the vector unit;
    the tiles are stored in the order they are used, docs/images.md), which the weight
    streamer reads back to back as one range.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`

    Attributes
    ----------
    start : ``In(1)``
        Pulse while idle to run the program from descriptor ``start_pc``.
    start_pc : ``In(address)``
        Where the program starts: a program memory holds several programs (a graph split
        between the accelerator and the host runs one per accelerator step).
    busy, done, error : ``Out(1)``
        Running; finished (held until the next ``start``); the run stopped at an invalid
        descriptor (``m`` of 0 or above ``psum_depth``, no tiles, an ``op`` the build does not
        have, array weights not at a multiple of ``weight_load_rows``) or at the end of the
        program memory without a ``last`` layer (``error`` comes with ``done``).
    program_addr, program_data : ``Out(address)``, ``In(descriptor_layout(config))``
        A read of the program memory, data :data:`~hw.block_ram.READ_LATENCY` cycles after
        the address.
    layer : ``Out(LayerSignature(config))``
        The running layer.
    layer_done : ``In(1)``
        The running layer's outputs are all written.
    weights : ``Out(stream.Signature(range_command_layout(...)))``
        Weight-memory ranges, one per tile, the first as the layer launches; an array
        layer's ``span`` is 1 (a memory row of ``weight_load_rows`` words a beat).
    tiles : ``Out(stream.Signature(TILE_LAYOUT))``
        The layer's tiles, column tile by column tile.
    """

    def __init__(self, config: ArrayConfig):
        super().__init__(config, {
            "start": In(1), "start_pc": In(address_bits(config.program_depth)),
            "busy": Out(1), "done": Out(1), "error": Out(1),
            "program_addr": Out(address_bits(config.program_depth)),
            "program_data": In(descriptor_layout(config)),
            "layer": Out(LayerSignature(config)),
            "layer_done": In(1),
            "weights": Out(stream.Signature(range_command_layout(
                address_bits(config.weight_depth), weight_count_bits(config),
                words_per_read=config.weight_load_rows))),
            "tiles": Out(stream.Signature(TILE_LAYOUT)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        fetched, desc, launch = self.program_data, self.layer.desc, self.layer.launch

        pc = Signal(range(cfg.program_depth))
        # What the datapath decodes and loads at the launch is a register of the fetched
        # descriptor, not the program memory's read port routed to every component: the
        # descriptor is there from the first product stage on, so this copy holds from the
        # second, and what components decode of it (decoded) from the third, ahead of the
        # launch.
        m.d.comb += self.program_addr.eq(pc)
        m.d.sync += self.layer.incoming.eq(fetched)
        # The checks read that copy. The array's weights are read a memory row a beat: they
        # start on one.
        checked = self.layer.incoming
        misaligned = (checked.op == MATMUL) & (
            checked.w_base[:cfg.weight_load_rows - 1] != 0) if cfg.weight_load_rows > 1 else 0
        checks = [checked.m == 0, checked.m > cfg.psum_depth, checked.k_tiles == 0,
                  checked.n_tiles == 0, checked.op >= len(LAYER_OPS),
                  (checked.op == WINDOW) if not cfg.window else 0, misaligned]
        # The program memory's read port is the sequencer's alone and no host writes it while
        # a program runs, so what it returned, and the steps made of it, hold until the next
        # fetch.
        steps = walk_steps(m, cfg, fetched, platform=platform)
        m.d.comb += [getattr(self.layer.steps, name).eq(steps[name]) for name in WALK_STEPS]
        # The checks, in two registered stages (each, then whether any failed): the descriptor
        # is there from the first product stage on, its copy from the second, so they hold at
        # the check (the fourth), where the weights' first range is offered.
        failed = Signal(len(checks), name="failed_checks")
        invalid, checking = Signal(name="invalid"), Signal(name="checking")
        m.d.sync += [failed.eq(Cat(*checks)), invalid.eq(failed.any())]
        # busy is a register, set as a run starts and cleared as it ends, not decoded from the
        # state: it steers the host's access to every memory.
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(self.start_pc), self.done.eq(0), self.error.eq(0),
                                 self.busy.eq(1)]
                    m.next = "FETCH"
            # The program memory answers READ_LATENCY cycles after the address; the walk's
            # steps are products of what it returned, registered as a DSP block registers
            # them; the checks take the last cycle of those.
            waits = ["FETCH", *[f"READ{i + 1}" for i in range(READ_LATENCY - 1)],
                     *[f"STEPS{i + 1}" for i in range(PRODUCT_REGISTERS - 1)], "CHECK"]
            for state, following in zip(waits, [*waits[1:], "LOAD"]):
                with m.State(state):
                    m.d.comb += checking.eq(state == "CHECK")
                    m.next = following
            with m.State("LOAD"):
                with m.If(invalid):
                    m.d.sync += [self.error.eq(1), self.done.eq(1), self.busy.eq(0)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += launch.eq(1)
                    m.d.sync += [desc.eq(fetched),
                                 *[getattr(self.layer.ends, name).eq(getattr(fetched, name) - 1)
                                   for name in LOOP_BOUNDS]]
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(self.layer_done):
                    with m.If(desc.last):
                        m.d.sync += [self.done.eq(1), self.busy.eq(0)]
                        m.next = "IDLE"
                    with m.Elif(pc == cfg.program_depth - 1):  # ran off the program's end
                        m.d.sync += [self.error.eq(1), self.done.eq(1), self.busy.eq(0)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += pc.eq(pc + 1)
                        m.next = "FETCH"

        # The layer's weights, a range per tile: the first offered as the layer launches, so
        # the weight streamer's latency overlaps the launch, and each next one as the streamer
        # takes this one. What they need of the descriptor is registered as it is checked, so
        # no range comes from the program memory or the launch through logic. (One range of
        # n_tiles·k_tiles·words from the fetched descriptor was once the accelerator's
        # critical path: a product from the program memory to the streamer's count.)
        w_pending = Signal()
        w_base = Signal.like(fetched.w_base)
        w_nt, w_kt = Signal(TILE_COUNT_BITS), Signal(TILE_COUNT_BITS)

        # The tile loop's ends (the launch loads them), and the weight loop's, the same ends
        # loaded as the descriptor is checked: the weights run ahead of the launch.
        k_end, n_end = loop_end(m, self.layer, "k_tiles"), loop_end(m, self.layer, "n_tiles")

        def checked_end(end: LoopEnd, name: str) -> LoopEnd:
            bound = getattr(fetched, name)
            single = Signal(name=f"w_{name}_single")
            before_last = Signal(signed(len(bound) + 1), name=f"w_{name}_before_last")
            with m.If(checking):
                m.d.sync += [single.eq(end.first_single),
                             before_last.eq(decoded(m, bound - 2, name=f"{name}_before_last"))]
            return LoopEnd(single, before_last, end.first_single)

        w_k_end, w_n_end = checked_end(k_end, "k_tiles"), checked_end(n_end, "n_tiles")
        words = Signal(self.weights.payload.count.shape())
        on_array = Signal()
        m.d.comb += [self.weights.valid.eq(w_pending),
                     self.weights.payload.base.eq(w_base),
                     self.weights.payload.count.eq(words),
                     *([self.weights.payload.span.eq(on_array)]
                       if cfg.weight_load_rows > 1 else [])]
        # Whether the range is its column tile's last K tile, and that the last column tile's:
        # registered beside the counters (hw.pipeline.next_is_last).
        w_last_k, w_last_n = Signal(), Signal()
        with m.If(checking):
            m.d.sync += [w_base.eq(fetched.w_base), w_pending.eq(~invalid), w_nt.eq(0),
                         w_kt.eq(0), w_last_k.eq(k_end.first_single),
                         w_last_n.eq(n_end.first_single),
                         on_array.eq(decoded(m, fetched.op == MATMUL, name="on_array")),
                         words.eq(decoded(m, Mux(fetched.op == MATMUL, cfg.rows,
                                                 Mux(fetched.op == WINDOW, cfg.window ** 2, 1)),
                                          name="words"))]
        with m.Elif(self.weights.valid & self.weights.ready):
            m.d.sync += [w_base.eq(w_base + words),
                         w_pending.eq(~(w_last_k & w_last_n)),
                         w_kt.eq(Mux(w_last_k, 0, w_kt + 1)),
                         w_last_k.eq(next_is_last(w_kt, w_last_k, w_k_end)),
                         w_nt.eq(w_nt + w_last_k)]
            with m.If(w_last_k):
                m.d.sync += w_last_n.eq(next_is_last(w_nt, w_last_n, w_n_end))

        # The tile loop.
        t_pending = Signal()
        nt, kt = Signal(TILE_COUNT_BITS), Signal(TILE_COUNT_BITS)
        # Whether kt and nt are the last, registered beside them (hw.pipeline.next_is_last).
        last_k, last_n = Signal(name="last_k"), Signal(name="last_n")
        m.d.comb += [self.tiles.valid.eq(t_pending), self.tiles.payload.nt.eq(nt),
                     self.tiles.payload.kt.eq(kt), self.tiles.payload.last_k.eq(last_k)]
        with m.If(launch):
            m.d.sync += [t_pending.eq(1), nt.eq(0), kt.eq(0), last_k.eq(k_end.first_single),
                         last_n.eq(n_end.first_single)]
        with m.Elif(self.tiles.valid & self.tiles.ready):
            m.d.sync += last_k.eq(next_is_last(kt, last_k, k_end))
            with m.If(last_k):
                m.d.sync += [kt.eq(0), nt.eq(nt + 1),
                             last_n.eq(next_is_last(nt, last_n, n_end))]
                with m.If(last_n):
                    m.d.sync += t_pending.eq(0)
            with m.Else():
                m.d.sync += kt.eq(kt + 1)
        return m
