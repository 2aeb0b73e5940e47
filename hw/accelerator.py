"""The accelerator: on-chip memories and the components that run a layer program through the
systolic array and the requantizer. The host writes memory images, pulses ``start`` and waits
for ``done``.

Memory layout (one word = one address; the compiler in ``quantizer/`` writes it with the word
formats of :mod:`hw.contract`, see docs/images.md):

- weights: tile ``(nt, kt)`` of a layer at ``w_base + (nt·k_tiles + kt)·rows``, one word per
  tile row k (``cols`` lanes of ``weight_bits`` bits, lane c = ``W[k, c]``; see
  :func:`~hw.unpack.unpack_weights`), ``weight_load_rows`` words a row of the memory array
  (:func:`~hw.contract.memory_array_words`), which the array takes in one beat;
- activations: group-major, channel group ``g`` of pixel ``(n, h, w)`` of an ``N×H×W×C`` map at
  ``base + g·N·H·W + (n·H + h)·W + w`` (``rows`` bytes; a vector is a 1×1 map: K-slice ``g`` of
  sample ``n`` at ``base + g·N + n``). A layer writes its output in the same layout for the
  next layer, ``rows/cols`` consecutive column tiles sharing one word, and pads the last word
  with its output zero point. With a window unit the memory array keeps four words a row
  (:attr:`~hw.config.ArrayConfig.act_words_per_row`), of which pair mode reads two a beat and
  quad mode all four (a 2×2 block of a map held in blocks, docs/images.md).
  Convolutions read their input by implicit im2col (the address generator computes each
  tap's word, padding taps become the input zero point);
- parameters: column tile ``nt`` at ``p_base + nt`` (:func:`~hw.layouts.lane_params_layout`);
- program: one :func:`~hw.layouts.descriptor_layout` per layer, run from ``start_pc`` until
  ``last`` (several programs may share the memory).

Per layer the :class:`~hw.sequencer.Sequencer` issues the layer's weights and its tile loop
``for nt: for kt:``; two memory streamers (:class:`~hw.memstream.MemoryStreamer`) read the
weight range and the activation ranges the :class:`~hw.addrgen.ActivationAddressGenerator`
makes of the tiles, at the pace the array's ready signals set (so the next tile loads while the
current one computes). Per-channel layers (depthwise convolution, pooling, mean, residual add)
run on the :class:`~hw.vector.VectorUnit` instead of the array, with the same tile loop. The
:class:`~hw.psum.PartialSumAccumulator` adds up K tiles (or keeps their maximum); the last K
tile's sums go through the requantizer, and the :class:`~hw.writer.OutputWriter` puts them into
activation memory for the next layer.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from .block_ram import READ_LATENCY, ram_attrs, registered_read
from .component import ConfiguredComponent
from .addrgen import RANGE_COUNT_BITS, ActivationAddressGenerator
from .array import SystolicArray
from .config import ArrayConfig
from .contract import (LAYER_OPS, MEM_ACTIVATIONS, MEM_PARAMS, MEM_PROGRAM, MEM_WEIGHTS,
                       MEMORY_ARRAYS, MEMORY_NAMES, address_bits, memory_array_words,
                       memory_shapes, words_per_row)
from .memstream import MemoryStreamer
from .pipeline import delayed
from .psum import PartialSumAccumulator
from .requant import Requantizer
from .sequencer import Sequencer, decoded, layer_register, weight_count_bits
from .unpack import unpack_weights
from .vector import VectorUnit
from .window import WindowUnit
from .writer import OutputWriter


def _route(m: Module, source, sinks: list) -> None:
    """Hand the stream ``source``'s handshake to the one of ``sinks`` (``(selected, sink)``
    pairs, exactly one selected) that is selected (their payloads are connected by the
    caller)."""
    ready = 0
    for selected, sink in sinks:
        m.d.comb += sink.valid.eq(source.valid & selected)
        ready = Mux(selected, sink.ready, ready)
    m.d.comb += source.ready.eq(ready)


def _buffered(m: Module, source, sink, name: str) -> None:
    """Stream ``source`` into ``sink`` through a two-entry FIFO, whose ready comes from its
    own level: a memory streamer's ready (a sum and compares on its FIFO's level) would
    otherwise enable, in the same cycle, every register of the pipeline that feeds it (the
    sequencer's weight ranges, the address generator's stages and the tile loop behind
    them). A cycle of latency, no loss of rate."""
    m.submodules[name] = buffer = fifo.SyncFIFO(width=len(source.payload.as_value()), depth=2)
    m.d.comb += [buffer.w_stream.valid.eq(source.valid),
                 buffer.w_stream.payload.eq(source.payload),
                 source.ready.eq(buffer.w_stream.ready),
                 sink.valid.eq(buffer.r_stream.valid),
                 sink.payload.eq(buffer.r_stream.payload),
                 buffer.r_stream.ready.eq(sink.ready)]


__all__ = ["Accelerator", "MEM_ACTIVATIONS", "MEM_PARAMS", "MEM_PROGRAM", "MEM_WEIGHTS",
           "host_word_width"]


def host_word_width(config: ArrayConfig) -> int:
    """Width of ``host_wdata``: the widest word of a memory the host loads."""
    shapes = memory_shapes(config)
    return max(shapes[name][0] // words_per_row(config, sel)
               for sel, name in MEMORY_NAMES.items())


class Accelerator(ConfiguredComponent):
    """Memories, sequencer, address generator, array, vector unit, partial-sum accumulator,
    requantizer and output writer; ``rows`` must be a multiple of ``cols``.

    ``images`` (``weights``, ``params``, ``program`` word lists, as ``quantizer.manifest``
    reads them) bake a network into the memories' initial contents for an FPGA build; without
    them the host loads everything at run time.

    Attributes
    ----------
    host_sel, host_addr, host_wdata, host_we : write one word of memory ``host_sel`` while
        idle (:data:`MEM_WEIGHTS`, :data:`MEM_ACTIVATIONS`, :data:`MEM_PARAMS`,
        :data:`MEM_PROGRAM`); the word is in the memory the cycle after the next.
    host_raddr, host_rdata : read an activation word while idle, :data:`~hw.block_ram.READ_LATENCY`
        (2) cycles from address to data.
    start : pulse to run the program from descriptor ``start_pc``.
    busy, done, error : running; finished (held until the next ``start``); the program had an
        invalid descriptor (zero or too many samples, zero tiles) or no ``last`` layer.
    cycles : cycles of the last run. weight_stall_cycles : cycles an activation vector waited
        for its weight tile. vectors : activation vectors the array and the vector unit took.
    """

    def __init__(self, config: ArrayConfig, images: dict[str, list[int]] | None = None):
        config.require_whole_column_tiles("the accelerator")
        self._images = images or {}
        addr = max(address_bits(d) for d in (config.weight_depth, config.act_depth,
                                              config.param_depth, config.program_depth))
        super().__init__(config, {
            "host_sel": In(2), "host_addr": In(addr), "host_wdata": In(host_word_width(config)),
            "host_we": In(1),
            "host_raddr": In(address_bits(config.act_depth)), "host_rdata": Out(8 * config.rows),
            "start": In(1), "start_pc": In(address_bits(config.program_depth)),
            "busy": Out(1), "done": Out(1), "error": Out(1),
            "cycles": Out(32), "weight_stall_cycles": Out(32), "vectors": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        images = self._images

        # --- memories and host access -------------------------------------------------------
        shapes, attrs = memory_shapes(cfg), ram_attrs(cfg)

        def ram(sel: int) -> memory.Memory:
            name = MEMORY_NAMES[sel]
            width, depth = shapes[name]
            image = images.get(name, [])
            return memory.Memory(shape=width, depth=depth, attrs=attrs[name],
                                 init=memory_array_words(cfg, sel, 0, image)[1] if image else [])

        wmem, amem, pmem, prog = (ram(sel) for sel in (MEM_WEIGHTS, MEM_ACTIVATIONS,
                                                       MEM_PARAMS, MEM_PROGRAM))
        for sel, mem in ((MEM_WEIGHTS, wmem), (MEM_ACTIVATIONS, amem), (MEM_PARAMS, pmem),
                         (MEM_PROGRAM, prog)):
            m.submodules[MEMORY_ARRAYS[sel]] = mem
        # The weight and activation memories keep words_per_row words a row; the host and
        # the output writer write one word at a time (the activations a column tile's lanes
        # at a time), the first of a row in the low bits.
        per_row, act_per_row = (words_per_row(cfg, sel) for sel in (MEM_WEIGHTS,
                                                                    MEM_ACTIVATIONS))
        word_bits = shapes["weights"][0] // per_row  # one weight word: cols lanes
        w_wr, p_wr, g_wr = (wmem.write_port(granularity=word_bits), pmem.write_port(),
                            prog.write_port())
        a_wr = amem.write_port(granularity=8 * cfg.cols)
        w_rd, a_rd, p_rd, g_rd = (wmem.read_port(), amem.read_port(), pmem.read_port(),
                                  prog.read_port())
        # Every read is registered once more before any logic sees it (the parameters in the
        # partial-sum accumulator): READ_LATENCY cycles from address to data.
        w_data, a_data, g_data = (registered_read(m, port, name) for port, name in (
            (w_rd, "weights_read"), (a_rd, "activations_read"), (g_rd, "program_read")))

        def word_write(port, per_row: int, addr, data, en):
            """Word ``addr`` of a memory of ``per_row`` words a row: its row, and the enables
            ``en`` (one per granule of a word) of its place in the row."""
            if per_row == 1:
                return [port.addr.eq(addr), port.data.eq(data), port.en.eq(en)]
            select = (per_row - 1).bit_length()
            return [port.addr.eq(addr[select:]), port.data.eq(data.replicate(per_row)),
                    port.en.eq(Cat(*[Mux(addr[:select] == i, en, 0) for i in range(per_row)]))]

        # A host write reaches its memory a cycle later, from registers: the memories' blocks
        # lie all over the chip, and `busy` and the port's select reached their write
        # enables through logic and three routes in one cycle.
        host_addr = Signal.like(self.host_addr, name="host_addr_r", reset_less=True)
        host_wdata = Signal.like(self.host_wdata, name="host_wdata_r", reset_less=True)
        host_write = {sel: Signal(name=f"host_write_{name}") for sel, name in MEMORY_NAMES.items()}
        m.d.sync += [host_addr.eq(self.host_addr), host_wdata.eq(self.host_wdata),
                     *[we.eq(self.host_we & ~self.busy & (self.host_sel == sel))
                       for sel, we in host_write.items()]]
        for sel, port in ((MEM_PARAMS, p_wr), (MEM_PROGRAM, g_wr)):
            m.d.comb += [port.addr.eq(host_addr), port.data.eq(host_wdata),
                         port.en.eq(host_write[sel])]
        m.d.comb += word_write(w_wr, per_row, host_addr, host_wdata[:word_bits],
                               host_write[MEM_WEIGHTS])

        # --- components ---------------------------------------------------------------------
        m.submodules.sequencer = seq = Sequencer(cfg)
        m.submodules.w_stream = w_stream = MemoryStreamer(
            addr_width=address_bits(cfg.weight_depth), count_width=weight_count_bits(cfg),
            word_width=word_bits, words_per_read=per_row, read_latency=READ_LATENCY)
        m.submodules.addrgen = addrgen = ActivationAddressGenerator(cfg)
        m.submodules.x_stream = x_stream = MemoryStreamer(
            addr_width=address_bits(cfg.act_depth), count_width=RANGE_COUNT_BITS,
            word_width=8 * cfg.rows, tag_width=addrgen.tag_width, words_per_read=act_per_row,
            read_latency=READ_LATENCY)
        m.submodules.array = array = SystolicArray(cfg)
        m.submodules.vector = vector = VectorUnit(cfg)
        units = [array, vector]
        if cfg.window:
            m.submodules.window = window = WindowUnit(cfg)
            units.append(window)
        m.submodules.psum = psum = PartialSumAccumulator(cfg)
        m.submodules.requant = requant = Requantizer(cfg)
        m.submodules.writer = writer = OutputWriter(cfg)

        m.d.comb += [seq.start.eq(self.start), seq.start_pc.eq(self.start_pc),
                     self.busy.eq(seq.busy), self.done.eq(seq.done), self.error.eq(seq.error),
                     g_rd.addr.eq(seq.program_addr), seq.program_data.eq(g_data),
                     seq.layer_done.eq(writer.done)]
        wiring.connect(m, seq.layer, addrgen.layer, *[u.layer for u in units[1:]], psum.layer,
                       writer.layer)

        # A layer runs on the array, the vector unit or the window unit: its weights and
        # activation vectors go to one of them, and its results come from that one. Which,
        # one-hot, is registered as the layer launches, so every handshake it steers starts
        # at a register.
        op = seq.layer.incoming.op
        on_array = op == LAYER_OPS.index("matmul")
        choice = [on_array, ~on_array]
        if cfg.window:
            on_window = op == LAYER_OPS.index("window")
            choice = [on_array, ~on_array & ~on_window, on_window]
        running_on = Signal(len(units), init=1)
        with m.If(seq.layer.launch):
            m.d.sync += running_on.eq(decoded(m, Cat(*choice), name="running_on"))
        selects = list(running_on)

        # Weights: the layer's range (a memory row a beat for the array), widened from
        # weight_bits to int8 lanes.
        _buffered(m, seq.weights, w_stream.cmd, "weight_ranges")
        m.d.comb += [w_rd.addr.eq(w_stream.addr), w_rd.en.eq(w_stream.en),
                     w_stream.data.eq(w_data)]
        words = w_stream.words
        for unit in units:
            lanes = len(unit.w.payload.data)
            m.d.comb += [unit.w.payload.data.eq(unpack_weights(
                             words.payload[:lanes * cfg.weight_bits], cfg.weight_bits, lanes)),
                         unit.w.payload.zero.eq(seq.layer.desc.zw)]
        _route(m, words, [(s, u.w) for s, u in zip(selects, units)])

        # Activations: tiles → ranges → words → vectors.
        wiring.connect(m, seq.tiles, addrgen.tiles)
        wiring.connect(m, addrgen.ranges, x_stream.cmd)
        wiring.connect(m, x_stream.words, addrgen.words)
        # Each unit's input zero point is a copy of its own, not the address generator's one
        # register routed to the array's edge and every lane of the other units.
        for unit, name in zip(units, ("array", "vector", "window")):
            m.d.comb += [unit.x.payload.data.eq(addrgen.x.payload.data),
                         unit.x.payload.last.eq(addrgen.x.payload.last),
                         unit.x.payload.zero.eq(layer_register(
                             m, seq.layer, seq.layer.incoming.zx, name=f"{name}_zx"))]
        if cfg.window:
            m.d.comb += [window.raster.eq(addrgen.x_raster), window.x_rest.eq(addrgen.x_rest)]
        _route(m, addrgen.x, [(s, u.x) for s, u in zip(selects, units)])
        m.d.comb += x_stream.data.eq(a_data)
        act_select = (act_per_row - 1).bit_length()
        host_row = self.host_raddr[act_select:]
        if act_per_row > 1:  # the host reads a word: the one of the row its address selected
            host_word = delayed(m, self.host_raddr[:act_select], READ_LATENCY, name="host_word")
            m.d.comb += self.host_rdata.eq(a_data.word_select(host_word, 8 * cfg.rows))
        else:
            m.d.comb += self.host_rdata.eq(a_data)
        with m.If(self.busy):
            m.d.comb += [a_rd.addr.eq(x_stream.addr), a_rd.en.eq(x_stream.en)]
        with m.Else():
            m.d.comb += [a_rd.addr.eq(host_row), a_rd.en.eq(1)]

        # Results: K tiles summed, requantized, written back as the next layer's input.
        payload = vector.acc.payload.as_value()
        for selected, unit in zip(selects, units):
            if unit is not vector:
                payload = Mux(selected, unit.acc.payload.as_value(), payload)
        m.d.comb += [psum.acc.valid.eq(Cat(*[u.acc.valid for u in units]).any()),
                     psum.acc.payload.eq(payload)]
        m.d.comb += [p_rd.addr.eq(psum.param_addr), psum.param_data.eq(p_rd.data)]
        wiring.connect(m, psum.sums, requant.i)
        wiring.connect(m, requant.o, writer.results)
        # The output writer writes only while busy, the host only while idle.
        with m.If(host_write[MEM_ACTIVATIONS]):
            m.d.comb += word_write(a_wr, act_per_row, host_addr[:len(writer.addr)],
                                   host_wdata[:len(writer.data)], (1 << len(writer.en)) - 1)
        with m.Else():
            m.d.comb += word_write(a_wr, act_per_row, writer.addr, writer.data, writer.en)

        # --- run counters: cleared as a run starts (start while idle), counted while busy ----
        # A vector's wait and handshake are counted a cycle later, from registers: the
        # handshake's logic and a 32-bit carry chain are not one path. No vector is left to
        # count when a run ends, and the host reads the counters after `done`.
        stalled, took = Signal(name="vector_stalled"), Signal(name="vector_taken")
        m.d.sync += [stalled.eq(self.busy & addrgen.x.valid & ~addrgen.x.ready),
                     took.eq(self.busy & addrgen.x.valid & addrgen.x.ready)]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(stalled):
            m.d.sync += self.weight_stall_cycles.eq(self.weight_stall_cycles + 1)
        with m.If(took):
            m.d.sync += self.vectors.eq(self.vectors + 1)
        with m.If(self.start & ~self.busy):
            m.d.sync += [self.cycles.eq(0), self.weight_stall_cycles.eq(0),
                         self.vectors.eq(0)]
        return m
