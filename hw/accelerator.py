"""The accelerator: on-chip memories, a sequencer that walks a layer program, the systolic array
and the requantizer. The host writes memory images, pulses ``start`` and waits for ``done``.

Memory layout (one word = one address; the compiler in ``quantizer/`` writes it, see
docs/images.md):

- weights: tile ``(nt, kt)`` of a layer at ``w_base + (nt·k_tiles + kt)·rows``, one word per
  tile row k (``cols`` lanes of ``weight_bits`` bits, lane c = ``W[k, c]``; see
  :func:`~hw.unpack.unpack_weights`);
- activations: K-slice ``kt`` of sample ``m`` at ``base + kt·M + m`` (``rows`` bytes). A layer
  writes its output (N values per sample) in the same layout for the next layer, ``rows/cols``
  consecutive column tiles sharing one word, and pads the last word with its output zero point;
- parameters: column tile ``nt`` at ``p_base + nt`` (:func:`~hw.requant.lane_params_layout`);
- program: one :func:`descriptor_layout` per layer, run from address 0 until ``last``.

Per layer the sequencer runs ``for nt: for kt: stream tile (nt, kt); stream its M vectors``:
weight tiles and activation ranges are read by two independent streamers whose pace the array's
ready signals set (so the next tile loads while the current one computes). K-tiles accumulate in
the partial-sum memory; the last K-tile's sums go through the requantizer into the activation
memory.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import ArrayConfig, ConfigError
from .memstream import MemoryStreamer
from .requant import Requantizer, lane_params_layout
from .unpack import unpack_weights

#: ``host_sel`` values.
MEM_WEIGHTS, MEM_ACTIVATIONS, MEM_PARAMS, MEM_PROGRAM = 0, 1, 2, 3


def _bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def descriptor_layout(config: ArrayConfig) -> data.StructLayout:
    """One layer: ``m`` samples, ``k_tiles × n_tiles`` weight tiles, memory bases, zero points
    (input, weight, output), clamp bounds, rounding select, and ``last`` (final layer)."""
    d = config.data_shape
    return data.StructLayout({
        "m": unsigned(_bits(config.psum_depth + 1)),
        "k_tiles": unsigned(12),
        "n_tiles": unsigned(12),
        "in_base": unsigned(_bits(config.act_depth)),
        "out_base": unsigned(_bits(config.act_depth)),
        "w_base": unsigned(_bits(config.weight_depth)),
        "p_base": unsigned(_bits(config.param_depth)),
        "zx": d, "zw": d, "zy": d, "act_min": d, "act_max": d,
        "double": 1,
        "last": 1,
    })


def host_word_width(config: ArrayConfig) -> int:
    """Width of ``host_wdata``: the widest memory word."""
    return max(8 * config.cols, 8 * config.rows, lane_params_layout(config).size,
               descriptor_layout(config).size)


class Accelerator(wiring.Component):
    """Memories + sequencer + array + requantizer; ``rows`` must be a multiple of ``cols``.

    ``images`` (``weights``, ``params``, ``program`` word lists, as ``quantizer.manifest``
    reads them) bake a network into the memories' initial contents for an FPGA build; without
    them the host loads everything at run time.

    Attributes
    ----------
    host_sel, host_addr, host_wdata, host_we : write one word of memory ``host_sel`` while
        idle (:data:`MEM_WEIGHTS`, :data:`MEM_ACTIVATIONS`, :data:`MEM_PARAMS`,
        :data:`MEM_PROGRAM`).
    host_raddr, host_rdata : read an activation word while idle, one cycle latency.
    start : pulse to run the program from descriptor 0.
    busy, done, error : running; finished (held until the next ``start``); the program had an
        invalid descriptor (zero or too many samples, zero tiles) or no ``last`` layer.
    cycles : cycles of the last run. weight_stall_cycles : cycles an activation vector waited
        for its weight tile. vectors : activation vectors the array took.
    """

    def __init__(self, config: ArrayConfig, images: dict[str, list[int]] | None = None):
        if config.rows % config.cols:
            raise ConfigError(f"the accelerator needs rows to be a multiple of cols, got "
                              f"{config.rows}x{config.cols}")
        self._config = config
        self._images = images or {}
        addr = max(_bits(d) for d in (config.weight_depth, config.act_depth,
                                      config.param_depth, config.program_depth))
        super().__init__({
            "host_sel": In(2), "host_addr": In(addr), "host_wdata": In(host_word_width(config)),
            "host_we": In(1),
            "host_raddr": In(_bits(config.act_depth)), "host_rdata": Out(8 * config.rows),
            "start": In(1), "busy": Out(1), "done": Out(1), "error": Out(1),
            "cycles": Out(32), "weight_stall_cycles": Out(32), "vectors": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        rows, cols, ratio = cfg.rows, cfg.cols, cfg.rows // cfg.cols
        lanes = lane_params_layout(cfg)

        # --- memories and host access -------------------------------------------------------
        images = self._images
        m.submodules.wmem = wmem = memory.Memory(shape=cfg.weight_bits * cols,
                                                 depth=cfg.weight_depth,
                                                 init=images.get("weights", []))
        m.submodules.amem = amem = memory.Memory(shape=8 * rows, depth=cfg.act_depth, init=[])
        m.submodules.pmem = pmem = memory.Memory(shape=lanes.size, depth=cfg.param_depth,
                                                 init=images.get("params", []))
        m.submodules.prog = prog = memory.Memory(shape=descriptor_layout(cfg).size,
                                                 depth=cfg.program_depth,
                                                 init=images.get("program", []))
        m.submodules.psum = psum = memory.Memory(shape=cfg.acc_width * cols,
                                                 depth=cfg.psum_depth, init=[])
        w_wr, p_wr, g_wr = wmem.write_port(), pmem.write_port(), prog.write_port()
        a_wr = amem.write_port(granularity=8 * cols)
        w_rd, a_rd, p_rd, g_rd = (wmem.read_port(), amem.read_port(), pmem.read_port(),
                                  prog.read_port())
        s_wr = psum.write_port()
        s_rd = psum.read_port(transparent_for=(s_wr,))  # a sum written now is read back now

        host_write = self.host_we & ~self.busy
        for sel, port in ((MEM_WEIGHTS, w_wr), (MEM_PARAMS, p_wr), (MEM_PROGRAM, g_wr)):
            m.d.comb += [port.addr.eq(self.host_addr), port.data.eq(self.host_wdata),
                         port.en.eq(host_write & (self.host_sel == sel))]

        m.submodules.array = array = SystolicArray(cfg)
        m.submodules.requant = requant = Requantizer(cfg)
        m.submodules.w_stream = w_stream = MemoryStreamer(
            addr_width=len(w_rd.addr), count_width=24, word_width=cfg.weight_bits * cols)
        m.submodules.x_stream = x_stream = MemoryStreamer(
            addr_width=len(a_rd.addr), count_width=24, word_width=8 * rows)
        m.d.comb += [w_rd.addr.eq(w_stream.addr), w_rd.en.eq(w_stream.en),
                     w_stream.data.eq(w_rd.data), x_stream.data.eq(a_rd.data),
                     self.host_rdata.eq(a_rd.data)]
        with m.If(self.busy):
            m.d.comb += [a_rd.addr.eq(x_stream.addr), a_rd.en.eq(x_stream.en)]
        with m.Else():
            m.d.comb += [a_rd.addr.eq(self.host_raddr), a_rd.en.eq(1)]

        # --- sequencer ----------------------------------------------------------------------
        desc = Signal(descriptor_layout(cfg))
        fetched = descriptor_layout(cfg)(g_rd.data)
        pc = Signal(range(cfg.program_depth))
        launch = Signal()      # LOAD: counters take the fetched descriptor
        layer_done = Signal()
        m.d.comb += g_rd.addr.eq(pc)
        invalid = ((fetched.m == 0) | (fetched.m > cfg.psum_depth) | (fetched.k_tiles == 0)
                   | (fetched.n_tiles == 0))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(0), self.done.eq(0), self.error.eq(0),
                                 self.cycles.eq(0), self.weight_stall_cycles.eq(0),
                                 self.vectors.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):  # the program read port answers next cycle
                m.d.comb += self.busy.eq(1)
                m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += self.busy.eq(1)
                with m.If(invalid):
                    m.d.sync += [self.error.eq(1), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += launch.eq(1)
                    m.d.sync += desc.eq(fetched)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                with m.If(layer_done):
                    with m.If(desc.last):
                        m.d.sync += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Elif(pc == cfg.program_depth - 1):  # ran off the program's end
                        m.d.sync += [self.error.eq(1), self.done.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += pc.eq(pc + 1)
                        m.next = "FETCH"
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(array.x.valid & ~array.x.ready):
                m.d.sync += self.weight_stall_cycles.eq(self.weight_stall_cycles + 1)
            with m.If(array.x.valid & array.x.ready):
                m.d.sync += self.vectors.eq(self.vectors + 1)

        # --- issuers: the layer's weights in one range, activations one range per tile ------
        w_pending = Signal()
        m.d.comb += [w_stream.cmd.valid.eq(w_pending),
                     w_stream.cmd.payload.base.eq(desc.w_base),
                     w_stream.cmd.payload.count.eq(desc.n_tiles * desc.k_tiles * rows)]
        with m.If(launch):
            m.d.sync += w_pending.eq(1)
        with m.Elif(w_stream.cmd.ready):
            m.d.sync += w_pending.eq(0)

        a_pending = Signal()
        a_nt, a_kt = Signal(12), Signal(12)
        a_base = Signal.like(desc.in_base)
        m.d.comb += [x_stream.cmd.valid.eq(a_pending),
                     x_stream.cmd.payload.base.eq(a_base),
                     x_stream.cmd.payload.count.eq(desc.m)]
        with m.If(launch):
            m.d.sync += [a_pending.eq(1), a_nt.eq(0), a_kt.eq(0), a_base.eq(fetched.in_base)]
        with m.Elif(x_stream.cmd.valid & x_stream.cmd.ready):
            with m.If(a_kt == desc.k_tiles - 1):
                m.d.sync += [a_kt.eq(0), a_base.eq(desc.in_base), a_nt.eq(a_nt + 1)]
                with m.If(a_nt == desc.n_tiles - 1):
                    m.d.sync += a_pending.eq(0)
            with m.Else():
                m.d.sync += [a_kt.eq(a_kt + 1), a_base.eq(a_base + desc.m)]

        x_m = Signal.like(desc.m)  # sample index of the vector on the array's input
        x_last = x_m == desc.m - 1
        m.d.comb += [
            array.w.valid.eq(w_stream.words.valid), w_stream.words.ready.eq(array.w.ready),
            array.w.payload.data.eq(unpack_weights(w_stream.words.payload, cfg.weight_bits,
                                                   cols)),
            array.w.payload.zero.eq(desc.zw),
            array.x.valid.eq(x_stream.words.valid), x_stream.words.ready.eq(array.x.ready),
            array.x.payload.data.eq(x_stream.words.payload), array.x.payload.zero.eq(desc.zx),
            array.x.payload.last.eq(x_last),
        ]
        with m.If(launch):
            m.d.sync += x_m.eq(0)
        with m.Elif(array.x.valid & array.x.ready):
            m.d.sync += x_m.eq(Mux(x_last, 0, x_m + 1))

        # --- results: accumulate K-tiles, requantize the last --------------------------------
        o_m, o_kt, o_nt = Signal.like(desc.m), Signal(12), Signal(12)
        beat = array.acc.valid
        last_m, last_k = o_m == desc.m - 1, o_kt == desc.k_tiles - 1
        next_m = Mux(last_m, 0, o_m + 1)
        next_nt = Mux(last_m & last_k, o_nt + 1, o_nt)
        with m.If(launch):
            m.d.sync += [o_m.eq(0), o_kt.eq(0), o_nt.eq(0)]
        with m.Elif(beat):
            m.d.sync += [o_m.eq(next_m), o_nt.eq(next_nt)]
            with m.If(last_m):
                m.d.sync += o_kt.eq(Mux(last_k, 0, o_kt + 1))
        # Synchronous reads: address the beat that arrives next, so its data is ready then.
        m.d.comb += [s_rd.addr.eq(Mux(beat, next_m, o_m)),
                     p_rd.addr.eq(desc.p_base + Mux(beat, next_nt, o_nt))]

        acc_shape = cfg.acc_shape
        partial = data.ArrayLayout(acc_shape, cols)(s_rd.data)
        total = Signal(data.ArrayLayout(acc_shape, cols))
        for c in range(cols):
            m.d.comb += total[c].eq(Mux(o_kt == 0, 0, partial[c]) + array.acc.payload.data[c])
        m.d.comb += [s_wr.addr.eq(o_m), s_wr.data.eq(total.as_value()),
                     s_wr.en.eq(beat & ~last_k)]

        params = lanes(p_rd.data)
        rq = requant.i.payload
        m.d.comb += [
            requant.i.valid.eq(beat & last_k),
            rq.data.eq(total),
            rq.params.zero.eq(desc.zy), rq.params.min.eq(desc.act_min),
            rq.params.max.eq(desc.act_max),
        ]
        for name, _field in lanes:
            m.d.comb += getattr(rq.params, name).eq(getattr(params, name))
        if cfg.runtime_rounding_select:
            m.d.comb += rq.params.double.eq(desc.double)

        # --- writer: requantized tiles back into activation memory ---------------------------
        w_m, w_nt = Signal.like(desc.m), Signal(12)
        w_group = Signal(range(max(ratio, 2)))
        w_word = Signal.like(desc.out_base)
        with m.If(launch):
            m.d.sync += [w_m.eq(0), w_nt.eq(0), w_group.eq(0), w_word.eq(fetched.out_base)]
        with m.Elif(requant.o.valid):
            with m.If(w_m == desc.m - 1):
                m.d.sync += [w_m.eq(0), w_nt.eq(w_nt + 1)]
                with m.If(w_group == ratio - 1):
                    m.d.sync += [w_group.eq(0), w_word.eq(w_word + desc.m)]
                with m.Else():
                    m.d.sync += w_group.eq(w_group + 1)
            with m.Else():
                m.d.sync += w_m.eq(w_m + 1)
        m.d.comb += layer_done.eq(w_nt == desc.n_tiles)

        # The last column tile also fills the word's remaining groups with the output zero
        # point: the next layer reads them as padding, which must contribute exactly zero
        # whatever the weights there (1-bit weight memories cannot hold a zero weight).
        last_tile = w_nt == desc.n_tiles - 1
        padding = Cat(*[desc.zy] * cols)
        groups = [g == w_group for g in range(ratio)]
        with m.If(self.busy):
            m.d.comb += [a_wr.addr.eq(w_word + w_m),
                         a_wr.data.eq(Cat(*[Mux(here, requant.o.payload.data.as_value(),
                                                padding) for here in groups])),
                         a_wr.en.eq(Mux(requant.o.valid,
                                        Cat(groups[0], *[here | (last_tile & (w_group < g))
                                                         for g, here in enumerate(groups)
                                                         if g]), 0))]
        with m.Else():
            m.d.comb += [a_wr.addr.eq(self.host_addr), a_wr.data.eq(self.host_wdata),
                         a_wr.en.eq(Mux(host_write & (self.host_sel == MEM_ACTIVATIONS),
                                        (1 << ratio) - 1, 0))]
        return m
