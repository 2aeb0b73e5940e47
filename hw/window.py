"""The depthwise window unit: K×K depthwise convolutions from one pass over their input, each
activation word read once, one output pixel a cycle."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, memory
from amaranth.lib.wiring import In

from .addrgen import raster_flags_layout
from .array import unit_members
from .block_ram import ram_attrs
from .component import ConfiguredComponent
from .config import ArrayConfig
from .contract import memory_shapes
from .pipeline import delay_line, valid_delayed
from .sequencer import LayerSignature

__all__ = ["WindowUnit"]


class WindowUnit(ConfiguredComponent):
    """``cols`` lanes of ``K·K`` multipliers (``K`` = ``config.window``) that slide a K×K
    window over a ``window`` layer's padded input (``rh × rw`` words a sample, raster order,
    :class:`~hw.addrgen.ActivationAddressGenerator`) and give one partial-sum beat per kept
    position, ``Σ (x − zx)·(w − zw)`` over the window, for the
    :class:`~hw.psum.PartialSumAccumulator`.

    The last ``K − 1`` input rows of the column tile's ``cols`` channels wait in a line
    buffer, one word a column (``window_width`` columns): as word ``(r, c)`` arrives, the
    buffer's column ``c`` gives rows ``r − K + 1 … r − 1`` and takes back rows
    ``r − K + 2 … r``, and the window shifts one column. What lies above the first row a
    sample streams and left of the first column a row streams is the zero point: the
    padding rows and columns the raster leaves out, or positions no kept window reaches
    (:func:`~hw.addrgen.raster_flags_layout` says where each word sits).

    A column tile's ``K·K`` weight words (tap order ``(kh, kw)``) go into one of two banks:
    the first tile's before its first vector, the next one's while this one's raster streams
    (a raster is at least ``K·K`` words), so tiles follow one another without a gap.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig` with a ``window``; ``rows`` a multiple of ``cols``.

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``zx``).
    x, raster : ``In(stream.Signature(activation_stream_layout(config)))``,
        ``In(raster_flags_layout(config))``
        The raster, the last kept vector of each column tile marked; its flags with each.
    w : ``In(stream.Signature(weight_stream_layout(config)))``
        ``K·K`` weight words per column tile.
    acc : ``Out(stream.Signature(accumulator_stream_layout(config), always_ready=True))``
        One beat per kept vector, ``config.window_latency`` cycles after its handshake.
    """

    def __init__(self, config: ArrayConfig):
        config.require_whole_column_tiles("the window unit")
        if not config.window:
            raise ValueError("the window unit needs a configuration with a window")
        super().__init__(config, {"layer": In(LayerSignature(config)),
                                  "raster": In(raster_flags_layout(config)),
                                  **unit_members(config)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        k, ratio, lanes_n = cfg.window, cfg.rows // cfg.cols, cfg.cols
        taps = k * k
        desc, launch = self.layer.desc, self.layer.launch
        fire = self.x.valid & self.x.ready
        tile_end = fire & self.x.payload.last

        # Two banks of a column tile's K·K weight words, tap (kh, kw) at index kh·K + kw:
        # the next tile's load into one while the raster multiplies with the other.
        banks = [Signal(data.ArrayLayout(data.ArrayLayout(cfg.data_shape, lanes_n), taps),
                        name=f"weights{b}", reset_less=True) for b in range(2)]
        w_zero = Signal(cfg.data_shape, reset_less=True)
        loaded = [Signal(range(taps + 1), name=f"loaded{b}") for b in range(2)]
        load_bank, x_bank = Signal(), Signal()
        m.d.comb += [self.w.ready.eq(Mux(load_bank, loaded[1], loaded[0]) != taps),
                     self.x.ready.eq(Mux(x_bank, loaded[1], loaded[0]) == taps)]
        for b in range(2):
            with m.If(self.w.valid & self.w.ready & (load_bank == b)):
                m.d.sync += [banks[b][loaded[b]].eq(self.w.payload.data),
                             w_zero.eq(self.w.payload.zero), loaded[b].eq(loaded[b] + 1)]
                with m.If(loaded[b] == taps - 1):
                    m.d.sync += load_bank.eq(~load_bank)
            with m.If(tile_end & (x_bank == b)):
                m.d.sync += [loaded[b].eq(0), x_bank.eq(~x_bank)]

        # The column tile's channels in the word, and the raster column of the next vector.
        lanes = Signal(range(max(ratio, 2)))
        column = Signal(range(cfg.window_width))
        flags = self.raster
        next_column = Mux(flags.row_end | self.x.payload.last, 0, column + 1)
        with m.If(launch):
            m.d.sync += [lanes.eq(0), column.eq(0)]
        with m.Elif(fire):
            m.d.sync += column.eq(next_column)
            with m.If(self.x.payload.last):
                m.d.sync += lanes.eq(Mux(lanes == ratio - 1, 0, lanes + 1))
        word = data.ArrayLayout(cfg.data_shape, lanes_n)
        new = Signal(word)
        m.d.comb += new.eq(self.x.payload.data.as_value().word_select(lanes, 8 * lanes_n))

        # Line buffer: column c holds rows r − K + 1 … r − 1 (oldest first) before word
        # (r, c) arrives. It is read at the next vector's column so the data is there as the
        # vector is taken, and written back shifted by one row as it is.
        older = data.ArrayLayout(word, k - 1)
        width, depth = memory_shapes(cfg)["lines"]
        m.submodules.lines = lines = memory.Memory(shape=width, depth=depth, init=[],
                                                   attrs=ram_attrs(cfg)["lines"])
        rd, wr = lines.read_port(), lines.write_port()
        m.d.comb += [rd.addr.eq(Mux(fire, next_column, column)), wr.addr.eq(column),
                     wr.en.eq(fire)]
        above = older(rd.data)
        m.d.comb += wr.data.eq(Cat(*[above[i].as_value() for i in range(1, k - 1)],
                                   new.as_value()))
        zero = Cat(*[desc.zx] * lanes_n)
        # Row r − K + 1 + i, above the sample's first streamed row when top < K − 1 − i.
        column_in = [Mux(flags.top >= k - 1 - i, above[i].as_value(), zero)
                     for i in range(k - 1)] + [new.as_value()]

        # The window: K rows of K columns, the newest column last; it shifts as a vector is
        # taken (stage 1), from the zero point at a row's first word, and the bank of its
        # tile's weights goes with it.
        window = [[Signal(word, name=f"win{r}_{c}", reset_less=True) for c in range(k)]
                  for r in range(k)]
        bank = Signal()
        with m.If(fire):
            m.d.sync += bank.eq(x_bank)
            for r in range(k):
                m.d.sync += [window[r][c].eq(Mux(flags.row_start, zero, window[r][c + 1]))
                             for c in range(k - 1)]
                m.d.sync += window[r][k - 1].eq(column_in[r])

        # Stage 2: the products; stage 3: their sum.
        for c in range(lanes_n):
            products = []
            for tap in range(taps):
                product = Signal(signed(2 * cfg.operand_shape.width), name=f"p{c}_{tap}",
                                 reset_less=True)
                x = window[tap // k][tap % k][c] - desc.zx
                weight = Mux(bank, banks[1][tap][c], banks[0][tap][c])
                m.d.sync += product.eq(x * (weight - w_zero))
                products.append(product)
            total = Signal(cfg.acc_shape, name=f"sum{c}", reset_less=True)
            m.d.sync += total.eq(sum(products))
            m.d.comb += self.acc.payload.data[c].eq(total)

        kept = fire & flags.keep
        m.d.comb += [
            self.acc.valid.eq(valid_delayed(m, kept, cfg.window_latency, name="acc_valid")),
            self.acc.payload.last.eq(delay_line(m, self.x.payload.last, cfg.window_latency,
                                                name="acc_last")[-1]),
        ]
        return m
