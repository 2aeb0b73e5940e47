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
from .sequencer import LayerSignature, layer_register

__all__ = ["WindowUnit"]


class WindowUnit(ConfiguredComponent):
    """``cols`` lanes of ``K·K`` multipliers (``K`` = ``config.window``) that slide a K×K
    window over a ``window`` layer's padded input (``rh × rw`` words a sample, raster order,
    :class:`~hw.addrgen.ActivationAddressGenerator`) and give one partial-sum beat per kept
    position, ``Σ (x − zx)·(w − zw)`` over the window, for the
    :class:`~hw.psum.PartialSumAccumulator`.

    The last ``K − 1`` input rows of the column tile's ``cols`` channels wait in a line
    buffer, one word a column (``window_width`` columns, two to an entry): as word ``(r, c)``
    arrives, the buffer's column ``c`` gives rows ``r − K + 1 … r − 1`` and takes back rows
    ``r − K + 2 … r``, and the window shifts one column. What lies above the first row a
    sample streams and left of the first column a row streams is the zero point: the
    padding rows and columns the raster leaves out, or positions no kept window reaches
    (:func:`~hw.addrgen.raster_flags_layout` says where each word sits).

    In pair mode (the descriptor's ``pair``, stride-2 layers) each vector brings two columns
    of a row, the ``2j``-th the row streams on ``x`` and the ``2j + 1``-th on ``x_rest``: the
    window shifts two columns, and a kept vector's sums are those of the window ending on the
    first of them, or on the second with the raster's ``second``. In quad mode (``quad``) each
    vector brings a 2×2 block, rows ``2i`` and ``2i + 1`` of columns ``2j`` and ``2j + 1``
    (``x`` and ``x_rest``): the line buffer's entry gives the ``K − 1`` rows above the block
    and takes back the last ``K − 1`` of those and the block's two, the window (``K + 1``
    rows) shifts two columns, and the sums are those of the window ending on the block's
    upper row, or its lower with the raster's ``lower``: one output pixel a beat.

    A column tile's ``K·K`` weight words (tap order ``(kh, kw)``) go into one of two banks:
    the first tile's before its first vector, the next one's while this one's raster streams,
    so tiles follow one another without a gap when a raster takes at least ``K·K`` vectors
    (a raster is at least ``K·K`` words, less the padding it leaves out; in pair mode it takes
    about half as many vectors).

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig` with a ``window``; ``rows`` a multiple of ``cols``.

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``zx``, ``pair``, ``quad``).
    x, raster : ``In(stream.Signature(activation_stream_layout(config)))``,
        ``In(raster_flags_layout(config))``
        The raster, the last kept vector of each column tile marked; its flags with each.
    x_rest : ``In(8 * config.rows * (config.act_words_per_row - 1))``
        With each vector on ``x``: in pair mode the raster word right of it (the zero point
        past the raster's last column), in quad mode the block's words right, below and
        below right of it.
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
                                  "x_rest": In(8 * config.rows
                                               * (config.act_words_per_row - 1)),
                                  **unit_members(config)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        k, ratio, lanes_n = cfg.window, cfg.rows // cfg.cols, cfg.cols
        taps = k * k
        launch = self.layer.launch
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

        # The column tile's channels in the words, and the line buffer column (pair and quad
        # mode: entry, two columns) of the next vector.
        incoming = self.layer.incoming
        pair, quad, zx = (layer_register(m, self.layer, value, name=name) for value, name in
                          ((incoming.pair, "pair"), (incoming.quad, "quad"), (incoming.zx, "zx")))
        wide = pair | quad
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
        # The beat's words (quad mode: a block, upper left, upper right, lower left, lower
        # right); a word a beat repeats its one.
        rest = [self.x_rest.word_select(i, 8 * cfg.rows) for i in range(3)]
        new = [Signal(word, name=f"new{i}") for i in range(4)]
        m.d.comb += [new[0].eq(self.x.payload.data.as_value().word_select(lanes, 8 * lanes_n)),
                     new[1].eq(Mux(wide, rest[0].word_select(lanes, 8 * lanes_n),
                                   new[0].as_value())),
                     *[new[i + 2].eq(rest[i + 1].word_select(lanes, 8 * lanes_n))
                       for i in range(2)]]

        # Line buffer: column c holds rows r − K + 1 … r − 1 (oldest first) before word
        # (r, c) arrives, in half c mod 2 of entry c div 2. It is read at the next vector's
        # column so the data is there as the vector is taken, and written back shifted by one
        # row as it is (quad mode: by the block's two): the column's half, or in pair and
        # quad mode both.
        older = data.ArrayLayout(word, k - 1)
        width, depth = memory_shapes(cfg)["lines"]
        m.submodules.lines = lines = memory.Memory(shape=width, depth=depth, init=[],
                                                   attrs=ram_attrs(cfg)["lines"])
        # Transparent for a row of one vector, which reads back the entry it writes.
        wr = lines.write_port(granularity=width // 2)
        rd = lines.read_port(transparent_for=(wr,))
        ahead = Mux(fire, next_column, column)
        m.d.comb += [rd.addr.eq(Mux(wide, ahead, ahead >> 1)),
                     wr.addr.eq(Mux(wide, column, column >> 1)),
                     wr.en.eq(Mux(fire, Cat(wide | ~column[0], wide | column[0]), 0))]
        # The rows above the vector's two words; in narrow mode both its one column's.
        halves = [rd.data.word_select(i, width // 2) for i in range(2)]
        own = Mux(column[0], halves[1], halves[0])
        above = [older(Mux(wide, halves[i], own)) for i in range(2)]
        # Column i's rows from the oldest: the K − 1 above, the beat's (quad mode: two).
        rows_in = [[above[i][j].as_value() for j in range(k - 1)] + [new[i].as_value(),
                                                                     new[i + 2].as_value()]
                   for i in range(2)]
        m.d.comb += wr.data.eq(Cat(*[Mux(quad, Cat(*rows_in[i][2:]), Cat(*rows_in[i][1:k]))
                                     for i in range(2)]))
        zero = Cat(*[zx] * lanes_n)
        # Row r − K + 1 + j, above the sample's first streamed row when top < K − 1 − j.
        column_in = [[Mux(flags.top >= k - 1 - j, rows_in[i][j], zero) for j in range(k - 1)]
                     + rows_in[i][k - 1:] for i in range(2)]

        # The window: K + 1 rows (the last for quad mode's lower row) of K + 1 columns, the
        # newest column last; it shifts as a vector is taken (stage 1), by one column or in
        # pair and quad mode two, from the zero point at a row's first vector. The sums take
        # K columns from column `shift`: 1, or in pair and quad mode 0 for a window ending on
        # the first word; and K rows from row `low`: 1 in quad mode for a window ending on the
        # lower row. The bank of the tile's weights goes along.
        window = [[Signal(word, name=f"win{r}_{c}", reset_less=True) for c in range(k + 1)]
                  for r in range(k + 1)]
        bank, shift, low = Signal(), Signal(), Signal()
        with m.If(fire):
            m.d.sync += [bank.eq(x_bank), shift.eq(~wide | flags.second),
                         low.eq(quad & flags.lower)]
            for r in range(k + 1):
                m.d.sync += [window[r][c].eq(Mux(flags.row_start, zero,
                                                 Mux(wide, window[r][c + 2], window[r][c + 1])))
                             for c in range(k - 1)]
                m.d.sync += [window[r][k - 1].eq(Mux(wide, column_in[0][r],
                                                     Mux(flags.row_start, zero,
                                                         window[r][k]))),
                             window[r][k].eq(column_in[1][r])]

        # Stage 2: the products; stage 3: their sum.
        for c in range(lanes_n):
            products = []
            for tap in range(taps):
                product = Signal(signed(2 * cfg.operand_shape.width), name=f"p{c}_{tap}",
                                 reset_less=True)
                kh, kw = divmod(tap, k)
                x = Mux(low, Mux(shift, window[kh + 1][kw + 1][c], window[kh + 1][kw][c]),
                        Mux(shift, window[kh][kw + 1][c], window[kh][kw][c])) - zx
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
