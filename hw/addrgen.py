"""The activation address generator: a layer's tiles → the activation-memory words they read
(implicit im2col), and the words read → the array's activation stream."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .array import activation_stream_layout
from .config import ArrayConfig
from .contract import (LAYER_OPS, PAD_BITS, SPATIAL_BITS, STEP_BITS, TILE_COUNT_BITS,
                       address_bits)
from .geometry import skipped_padding
from .memstream import range_command_layout
from .pipeline import next_is_last, next_is_last_but_one
from .sequencer import TILE_LAYOUT, LayerSignature, decoded, loaded_at_launch, loop_end

__all__ = ["ActivationAddressGenerator", "RANGE_COUNT_BITS", "raster_flags_layout"]

#: Width of an activation range's word count: a range is one beat, of 1, 2 or 4 words (so the
#: streamer's compares on it are a LUT each).
RANGE_COUNT_BITS = 3

OP_MATMUL, OP_MAX, OP_ADD, OP_WINDOW = (LAYER_OPS.index(name)
                                        for name in ("matmul", "max", "add", "window"))


def raster_flags_layout(config: ArrayConfig) -> data.StructLayout:
    """Where a ``window`` layer's vector (in pair mode a pair of words, in quad mode a 2×2
    block) sits in its raster: ``keep`` (a K×K window ending there is an output pixel's; in
    pair and quad mode, ending on the first column, or the second with ``second``; in quad
    mode on the upper row, or the lower with ``lower``), ``row_start`` and ``row_end`` (the
    first and last the raster streams of a row), ``top`` (the rows streamed above it in its
    sample, at most ``K − 1``: the window unit's line buffer holds nothing of this sample
    above those)."""
    return data.StructLayout({"keep": 1, "second": 1, "lower": 1, "row_start": 1,
                              "row_end": 1,
                              "top": unsigned(max(1, (config.window - 1).bit_length()))})


class ActivationAddressGenerator(ConfiguredComponent):
    """Addresses a layer's activations by implicit im2col (docs/images.md): the tile loop's K
    tiles are ordered ``(kh, kw, g)`` (kernel row, kernel column, channel group); every tile
    reads, for each of the ``m`` output pixels ``(n, oh, ow)`` in order, the word of input
    pixel ``ih = oh·stride_h + kh·dil_h − pad_top``, ``iw = ow·stride_w + kw·dil_w −
    pad_left`` of channel group ``g``, at ``in_base + g·plane + (n·h + ih)·w + iw``; a tap
    outside the input map reads nothing useful and becomes a vector of the input zero point
    (of the type's lowest value for a ``max`` layer).
    A fully-connected layer (``h = w = oh = ow = kw = 1``) reads words ``in_base + kt·m`` to
    ``in_base + kt·m + m − 1``. The vectors go to the array with the input zero point, the
    ``m``-th of each tile marked ``last``.

    A vector-unit layer (``op`` other than ``matmul``, :class:`~hw.vector.VectorUnit`) has one
    channel group (``groups = 1``) per column tile: column tiles ``nt`` read group
    ``nt div (rows/cols)``, ``plane`` words further for each group. An ``add`` has two taps
    (``k_tiles = 2``, ``dil_h = 0``): the second reads ``in2_base`` instead of ``in_base``.

    A ``window`` layer (:class:`~hw.window.WindowUnit`, one K tile) reads its padded input
    once, in raster order: the ``rh × rw`` positions a sample from input pixel ``(−pad_top,
    −pad_left)``, stride 1, each marked ``keep`` when the K×K window ending there (``K`` the
    configuration's ``window``) is an output pixel's, that is its row and column are at least
    ``K − 1`` and a whole number of strides past it. ``m`` counts the kept ones. The first
    ``min(pad_top, K − 1)`` rows and ``min(pad_left, K − 1)`` columns are padding the window
    unit fills in itself (the zero point), so they are not streamed: a sample streams
    ``(rh − min(pad_top, K − 1))·(rw − min(pad_left, K − 1))`` words
    (:func:`raster_flags_layout` says where each sits).

    In pair mode (the descriptor's ``pair``, a ``window`` layer of column stride 2 whose
    input rows start on two-word boundaries of the activation memory's rows,
    :attr:`~hw.config.ArrayConfig.act_words_per_row` = 4, with ``pad_left ≤ K − 1`` and an
    even ``w``) the raster goes two words a beat: ``x`` carries raster columns ``2j`` and
    ``x_rest`` ``2j + 1`` (counted from the first streamed column), half a memory row, both
    inside the input or both padding; a sample streams ``⌈rw'/2⌉`` beats a row. At most one
    of the two ends a kept window (``second`` says which, the same one all layer long).

    In quad mode (the descriptor's ``quad``, a ``window`` layer of strides 2 whose input is
    held in blocks of 2×2 pixels, :class:`~hw.writer.OutputWriter`, with ``pad_top`` and
    ``pad_left`` at most ``K − 1``) the raster goes a block a beat, a whole memory row: raster
    rows ``2i``, ``2i + 1`` and columns ``2j``, ``2j + 1`` (from the first streamed), in the
    row's words 0 to 3 (``x`` and ``x_rest``), each padding where it lies outside the map; a
    sample streams ``⌈rh'/2⌉`` block rows of ``⌈rw'/2⌉`` blocks. Exactly one window ends in a
    block past the first block row and column (``second`` and ``lower`` say where).

    One range per vector, one per cycle (a word, two, or a row in quad mode): the streamer
    reads one a cycle, as it would a tile's range, and carries the padding and raster flags
    and whether the vector is its tile's last as its tag (so ``last`` on ``x`` is a bit the
    words bring, not a count of them). The address takes three registered stages into a FIFO
    (:attr:`RANGE_BUFFER` ranges): a tile's first range comes four cycles after the tile
    (:data:`quantizer.cycles.ACTIVATION_LATENCY` counts them).

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``in_base``, ``m``, ``zx`` and the convolution geometry).
    tiles : ``In(stream.Signature(TILE_LAYOUT))``
        The tile loop; a tile is accepted with its last pixel's range.
    ranges : ``Out(stream.Signature(range_command_layout(..., tag_width=tag_width)))``
        One-word activation-memory ranges, tagged with a padding bit for each word, the
        raster flags and the tile's last vector, for a :class:`~hw.memstream.MemoryStreamer`
        with ``tag_width=self.tag_width``.
    words : ``In(stream.Signature(unsigned(8 * rows * act_words_per_row + tag_width)))``
        The words (a row's words from the first) those ranges return, in order, with their
        tags on top.
    x : ``Out(stream.Signature(activation_stream_layout(config)))``
        Activation vectors for the :class:`~hw.array.SystolicArray`.
    x_rest : ``Out(8 * rows * (act_words_per_row - 1))``
        With each vector on ``x``, the rest of its beat: in pair mode the raster word right of
        it, in quad mode the block's words 1 to 3 (right, below, below right).
    x_raster : ``Out(raster_flags_layout(config))``
        With each vector on ``x``: where it sits in a ``window`` layer's raster (``keep`` is
        always set for other layers).
    """

    #: Ranges the FIFO after the address's stages holds: enough for the three stages and the
    #: cycle a credit takes to come back, so the ranges flow at one a cycle.
    RANGE_BUFFER = 6

    def __init__(self, config: ArrayConfig):
        per_row = config.act_words_per_row
        # A padding bit for each word of a row, the raster flags, the tile's last vector.
        self.tag_width = per_row + raster_flags_layout(config).size + 1
        super().__init__(config, {
            "layer": In(LayerSignature(config)),
            "tiles": In(stream.Signature(TILE_LAYOUT)),
            "ranges": Out(stream.Signature(range_command_layout(
                address_bits(config.act_depth), RANGE_COUNT_BITS, self.tag_width,
                words_per_read=per_row))),
            "words": In(stream.Signature(unsigned(8 * config.rows * per_row + self.tag_width))),
            "x": Out(stream.Signature(activation_stream_layout(config))),
            "x_rest": Out(8 * config.rows * (per_row - 1)),
            "x_raster": Out(raster_flags_layout(config)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        desc, ends, launch = self.layer.desc, self.layer.ends, self.layer.launch

        # Where the tile loop is: K tile (kh, kw, g), output pixel (n, oh, ow) and the pixel's
        # index. Each product the address is made of is a register stepped with its counter
        # by a layer constant (the sequencer's walk steps, hw.geometry), so the address only
        # adds: `ih_part` = oh·stride_h − pad_top and `ih_words` = that times a row's words,
        # `kh_part` = kh·dil_h and `kh_words`, `iw_part` = ow·stride_w − pad_left, `kw_part`
        # = kw·dil_w, `sample_words` = n·h·(a row's words), `group_words` = g·plane past the
        # column tile's channel group (`group_base`, a vector-unit layer's).
        g, kw = Signal.like(desc.groups, name="g"), Signal.like(desc.kw, name="kw")
        kh = Signal(TILE_COUNT_BITS, name="kh")
        ow, oh = Signal.like(desc.ow, name="ow"), Signal.like(desc.oh, name="oh")
        pixel = Signal.like(desc.m)
        span = SPATIAL_BITS + STEP_BITS + 1
        ih_part, iw_part = (Signal(signed(span + 1), name=n) for n in ("ih_part", "iw_part"))
        kh_part = Signal(TILE_COUNT_BITS + STEP_BITS, name="kh_part")
        kw_part = Signal(span, name="kw_part")
        ih_first, iw_first = (Signal(signed(PAD_BITS + 1), name=n)
                              for n in ("ih_first", "iw_first"))
        address = unsigned(address_bits(cfg.act_depth))
        ih_words, kh_words, sample_words, group_words = (
            Signal(address, name=name)
            for name in ("ih_words", "kh_words", "sample_words", "group_words"))
        steps = self.layer.steps
        incoming = self.layer.incoming

        # The layer's constants, decoded once as it launches: every path that reads one starts
        # at a register beside this component. A row's last column (a sample's last row) is a
        # step from the bound: `one_column` (`one_row`) says whether the first is.
        lowest = Const(-128 if cfg.dtype == "int8" else 0, cfg.data_shape)
        first = max(cfg.window - 1, 0)

        def constants(d) -> dict:
            window = (d.op == OP_WINDOW) if cfg.window else Const(0)
            pair = (window & d.pair) if cfg.window else Const(0)
            quad = (window & d.quad) if cfg.window else Const(0)
            # The raster starts past the padding rows and columns the window unit fills in
            # (at most K − 1 of each): a row at column start_col, a sample at row start_row.
            start_row = skipped_padding(cfg, d, d.pad_top)
            start_col = skipped_padding(cfg, d, d.pad_left)
            ow_bound, oh_bound = Mux(window, d.rw, d.ow), Mux(window, d.rh, d.oh)
            step, row_step = Mux(pair | quad, 2, 1), Mux(quad, 2, 1)
            kept = {}
            if cfg.window:
                # In pair and quad mode the kept column of a pair is the one a whole number
                # of strides (2) past K − 1: the same one all layer long, as pairs start at
                # start_col; in quad mode so is the kept row of a block. Whether the first
                # column (row) is kept, and the bounds a column (row) lies in when the one a
                # step on is, in pair (quad) mode.
                second = (pair | quad) & (start_col ^ first)[0]
                lower = quad & (start_row ^ first)[0]
                kept = {"second": second, "lower": lower,
                        "first_column_kept": Mux(pair | quad,
                                                 (start_col + second >= first) &
                                                 (start_col + second < d.rw),
                                                 start_col >= first),
                        "first_row_kept": Mux(quad, (start_row + lower >= first) &
                                              (start_row + lower < d.rh), start_row >= first),
                        "column_kept_from": first - step - second,
                        "column_kept_below": d.rw - step - second,
                        "row_kept_from": first - row_step - lower,
                        "row_kept_below": d.rh - row_step - lower}
            return {"window": window, "pair": pair, "quad": quad, **kept,
                    "start_row": start_row, "start_col": start_col,
                    "one_column": start_col + step >= ow_bound,
                    "one_row": start_row + row_step >= oh_bound,
                    # A column (row) is its row's (sample's) last from here: the one after
                    # the next is past the bound.
                    "column_before_last": ow_bound - (step << 1),
                    "row_before_last": oh_bound - (row_step << 1),
                    # Max pooling's padded taps are the type's lowest value, which never wins.
                    "pad_value": Mux(d.op == OP_MAX, lowest, d.zx), "zx": d.zx,
                    "vector_layer": d.op != OP_MATMUL, "add": d.op == OP_ADD}

        incoming_constants = constants(incoming)
        # What the launch restarts the loops from (hw.sequencer.decoded), and loads.
        launching = {name: decoded(m, value, name=name)
                     for name, value in incoming_constants.items()}
        layer = {name: loaded_at_launch(m, self.layer, value, name=name)
                 for name, value in launching.items()}
        window, pair, quad = layer["window"], layer["pair"], layer["quad"]
        m_end, kw_end, g_end = (loop_end(m, self.layer, name) for name in ("m", "kw", "groups"))
        kw_ahead, g_ahead = (loop_end(m, self.layer, name, shorter=True)
                             for name in ("kw", "groups"))
        start_row, start_col = layer["start_row"], layer["start_col"]
        step = Mux(pair | quad, 2, 1)  # raster columns a beat
        row_step = Mux(quad, 2, 1)
        # Whether the counter's column (row) is its row's (sample's) last, registered beside
        # it: as it steps, whether the one after is; as it restarts, whether the first is.
        last_ow, last_oh = Signal(name="last_ow"), Signal(name="last_oh")
        # So for the K tile's loops: whether the channel group and kernel column are the last,
        # and both (the tile's end steps the kernel row); and, for a vector-unit layer,
        # whether the column tile is its channel group's last (the next reads the next group).
        last_g, last_kw = Signal(name="last_g"), Signal(name="last_kw")
        kernel_wrap, lane_wrap = Signal(name="kernel_wrap"), Signal(name="lane_wrap")
        # And whether they are the last but one (hw.pipeline.next_is_last_but_one): the next
        # values of the last flags and of `kernel_wrap` are then registers.
        g_ahead_flag, kw_ahead_flag = Signal(name="g_last_but_one"), Signal(name="kw_last_but_one")

        # A window layer's raster position is kept where a K×K window ending there is an
        # output pixel's: row and column at least K − 1 and a whole number of strides on
        # (the phases count rows and columns past K − 1 modulo the strides). Whether its
        # column and its row are, registered as they step (the loop's ends and all the
        # counters wait on `keep`).
        keep = Signal()
        flags = Signal(raster_flags_layout(cfg))
        row_phase = Signal.like(desc.stride_h, name="row_phase")
        col_phase = Signal.like(desc.stride_w, name="col_phase")
        column_kept, row_kept = Signal(name="column_kept"), Signal(name="row_kept")
        if cfg.window:
            streamed = oh - start_row
            m.d.comb += [keep.eq(~window | (row_kept & column_kept)),
                         flags.second.eq(layer["second"]), flags.lower.eq(layer["lower"]),
                         flags.row_start.eq(window & (ow == start_col)),
                         flags.row_end.eq(window & last_ow),
                         flags.top.eq(Mux(window, Mux(streamed > first, first, streamed), 0))]
        else:
            m.d.comb += keep.eq(1)
        m.d.comb += flags.keep.eq(keep)
        at_last_pixel = Signal()  # registered beside `pixel` (hw.pipeline.next_is_last)
        last_pixel = keep & at_last_pixel

        # The address takes three registered stages into a FIFO the ranges leave from. The
        # pipeline never waits: the loop counters issue a read only with a credit, one for
        # each place in the FIFO not taken by a range in it or on its way, given back a cycle
        # after the range leaves. So what enables the counters is two registers, not a ready
        # that comes from the activation streamer through every stage.
        depth = self.RANGE_BUFFER
        m.submodules.buffer = buffer = fifo.SyncFIFO(
            width=len(self.ranges.payload.as_value()), depth=depth)
        credits = Signal(range(depth + 1), init=depth)
        has_credit, returned = Signal(init=1, name="has_credit"), Signal(name="returned")
        issue = self.tiles.valid & has_credit
        # Whether a credit is left, a LUT from registers: one came back, or none went and
        # there was one, or one went and it was not the last. The pixel loops and the kernel
        # loops issue on copies of their own (kept apart in synthesis, hw.pipeline.lane_copies),
        # so that neither's restart at a tile's end is one net across both.
        left = returned | Mux(issue, credits != 1, has_credit)
        m.d.sync += [returned.eq(self.ranges.valid & self.ranges.ready),
                     credits.eq(credits - issue + returned), has_credit.eq(left)]

        def credit_copy(name: str) -> Signal:
            copy = Signal(init=1, name=name, attrs={"keep": 1})
            m.d.sync += copy.eq(left)
            return copy
        issue_pixels = self.tiles.valid & credit_copy("has_credit_pixels")
        issue_kernel = self.tiles.valid & credit_copy("has_credit_kernel")
        m.d.comb += [self.ranges.valid.eq(buffer.r_rdy),
                     self.ranges.payload.eq(buffer.r_data), buffer.r_en.eq(self.ranges.ready)]
        valid = [Signal(name=f"stage{i}_valid") for i in (1, 2, 3)]
        last_range = Signal.like(self.ranges.payload)

        def stage(value, name: str) -> Signal:
            """``value`` a stage later."""
            register = Signal(value.shape(), name=name)
            m.d.sync += register.eq(value)
            return register

        # Stage 1: input row and column of the tap, the words of its row, the base of its
        # channel group.
        ratio = cfg.rows // cfg.cols
        lanes = Signal(range(max(ratio, 2)), name="lanes")
        # A channel group of one column tile: every column tile of a vector-unit layer wraps.
        one_lane = layer["vector_layer"] if ratio == 1 else Const(0)
        group_base = Signal(address)
        ih = stage(ih_part + kh_part, "ih")
        iw = stage(iw_part + kw_part, "iw")
        row_words = stage((sample_words + ih_words + kh_words)[:address.width], "row_words")
        # A vector-unit layer reads the channel group of its column tile (rows/cols column
        # tiles to a group); an add's second tap (kh 1 of 0 and 1) reads its second input.
        base = stage((Mux(layer["add"] & kh[0], desc.in2_base, desc.in_base) +
                      group_words)[:address.width], "tap_base")
        flags_1, step_1, quad_1, last_1 = (stage(flags, "flags_1"), stage(step, "step_1"),
                                           stage(quad, "quad_1"), stage(last_pixel, "last_1"))
        # Stage 2: inside the map (each word of a block), the row's first word, the column
        # (a map held in blocks has ⌈w/2⌉ blocks of 4 words a row pair).
        inside_rows = [(ih + i >= 0) & (ih + i < desc.h) for i in range(2)]
        inside_cols = [(iw + i >= 0) & (iw + i < desc.w) for i in range(2)]
        per_row = cfg.act_words_per_row
        inside = stage(Cat(*[Mux(quad_1, inside_rows[i >> 1] & inside_cols[i & 1],
                                 inside_rows[0] & inside_cols[0]) for i in range(per_row)]),
                       "inside")
        row_base = stage((base + row_words)[:address.width], "row_base")
        column = stage(Mux(quad_1, iw << 1, iw)[:address.width], "column")
        flags_2, step_2, quad_2, last_2 = (stage(flags_1, "flags_2"), stage(step_1, "step_2"),
                                           stage(quad_1, "quad_2"), stage(last_1, "last_2"))
        # Stage 3: the range, into the FIFO.
        m.d.sync += [valid[0].eq(issue), valid[1].eq(valid[0]), valid[2].eq(valid[1]),
                     last_range.base.eq(Mux(inside[0], row_base + column, 0)),
                     last_range.count.eq(Mux(quad_2, 4, step_2)),
                     last_range.tag.eq(Cat(~inside, flags_2, last_2))]
        if per_row > 1:
            m.d.sync += last_range.span.eq(Mux(quad_2, 2, step_2 == 2))
        m.d.comb += [buffer.w_en.eq(valid[2]), buffer.w_data.eq(last_range),
                     self.tiles.ready.eq(has_credit & last_pixel)]

        def restart_rows(first_part, first_words, constants=layer):
            """The output row back at the sample's first (the window layer's raster at its
            first streamed row)."""
            return [ih_part.eq(first_part), ih_words.eq(first_words), row_phase.eq(0),
                    *([row_kept.eq(constants["first_row_kept"])] if cfg.window else [])]

        def restart_columns(first_part, constants=layer):
            return [iw_part.eq(first_part), col_phase.eq(0),
                    *([column_kept.eq(constants["first_column_kept"])] if cfg.window else [])]

        def stepped_kept(counter, phase, stride_end, bounds, by_phase):
            """Whether the column (row) a step on is kept: in pair (quad) mode, whether this
            one lies in the bounds; else whether this one is K − 2, or past K − 1 at the
            stride's last phase."""
            low, high = (layer[name] for name in bounds)
            return Mux(by_phase, (counter + 1 == first) | ((counter >= first) &
                                                          (phase == stride_end)),
                       (counter >= low) & (counter < high))

        def restart_pixels():
            return [oh.eq(start_row), last_oh.eq(layer["one_row"]),
                    ow.eq(start_col), last_ow.eq(layer["one_column"]),
                    pixel.eq(0), sample_words.eq(0),
                    *restart_rows(ih_first, steps.first_row_words), *restart_columns(iw_first)]

        def restart_groups(single=lambda end: end.single):
            return [g.eq(0), last_g.eq(single(g_end)), g_ahead_flag.eq(single(g_ahead)),
                    group_words.eq(group_base)]

        def restart_columns_of_kernel(single=lambda end: end.single):
            return [kw.eq(0), last_kw.eq(single(kw_end)), kw_ahead_flag.eq(single(kw_ahead)),
                    kw_part.eq(0)]

        def restart_kernel(at_launch: bool):
            """The K tile's loops back at the first channel group and kernel tap."""
            def single(end):
                return end.first_single if at_launch else end.single
            return [*restart_groups(single), *restart_columns_of_kernel(single),
                    kernel_wrap.eq(single(g_end) & single(kw_end)),
                    kh.eq(0), kh_part.eq(0), kh_words.eq(0)]

        top = decoded(m, incoming_constants["start_row"] - incoming.pad_top, name="top")
        left = decoded(m, incoming_constants["start_col"] - incoming.pad_left, name="left")
        with m.If(launch):
            m.d.sync += [pixel.eq(0), at_last_pixel.eq(m_end.first_single), sample_words.eq(0),
                         ih_first.eq(top), iw_first.eq(left),
                         *restart_rows(top, steps.first_row_words, launching),
                         *restart_columns(left, launching),
                         ow.eq(launching["start_col"]), last_ow.eq(launching["one_column"]),
                         oh.eq(launching["start_row"]), last_oh.eq(launching["one_row"])]
        with m.Elif(issue_pixels):
            m.d.sync += [ow.eq(ow + step), last_ow.eq(ow >= layer["column_before_last"]),
                         iw_part.eq(iw_part + Mux(window, step, desc.stride_w))]
            with m.If(keep):
                m.d.sync += [pixel.eq(pixel + 1),
                             at_last_pixel.eq(next_is_last(pixel, at_last_pixel, m_end))]
            if cfg.window:
                m.d.sync += column_kept.eq(stepped_kept(
                    ow, col_phase, ends.stride_w, ("column_kept_from", "column_kept_below"),
                    ~(pair | quad)))
                with m.If(ow + 1 == first):
                    m.d.sync += col_phase.eq(0)
                with m.Elif(ow >= first):
                    m.d.sync += col_phase.eq(Mux(col_phase == ends.stride_w, 0,
                                                 col_phase + 1))
            with m.If(last_ow):
                m.d.sync += [ow.eq(start_col), last_ow.eq(layer["one_column"]),
                             *restart_columns(iw_first), oh.eq(oh + row_step),
                             last_oh.eq(oh >= layer["row_before_last"]),
                             ih_part.eq(ih_part + Mux(window, row_step, desc.stride_h)),
                             ih_words.eq(ih_words + steps.row_words)]
                if cfg.window:
                    m.d.sync += row_kept.eq(stepped_kept(
                        oh, row_phase, ends.stride_h, ("row_kept_from", "row_kept_below"),
                        ~quad))
                    with m.If(oh + 1 == first):
                        m.d.sync += row_phase.eq(0)
                    with m.Elif(oh >= first):
                        m.d.sync += row_phase.eq(Mux(row_phase == ends.stride_h, 0,
                                                     row_phase + 1))
                with m.If(last_oh):
                    m.d.sync += [oh.eq(start_row), last_oh.eq(layer["one_row"]),
                                 *restart_rows(ih_first, steps.first_row_words),
                                 sample_words.eq(sample_words + steps.sample_words)]
            with m.If(last_pixel):  # the tile is done: pixels from the start
                m.d.sync += restart_pixels()
        # The tile's end steps the K tile's loops.
        with m.If(launch):
            m.d.sync += [lanes.eq(0), lane_wrap.eq(launching["vector_layer"] if ratio == 1 else 0),
                         *restart_kernel(at_launch=True), group_base.eq(0), group_words.eq(0)]
        with m.Elif(issue_kernel & last_pixel):
            with m.If(self.tiles.payload.last_k):  # the next column tile starts at K 0
                m.d.sync += restart_kernel(at_launch=False)
                with m.If(lane_wrap):
                    m.d.sync += [lanes.eq(0), lane_wrap.eq(one_lane),
                                 group_base.eq(group_base + desc.plane),
                                 group_words.eq(group_base + desc.plane)]
                with m.Elif(layer["vector_layer"]):
                    m.d.sync += [lanes.eq(lanes + 1), lane_wrap.eq(lanes == ratio - 2)]
            with m.Elif(kernel_wrap):  # the next kernel row, from its first tap
                m.d.sync += [*restart_groups(), *restart_columns_of_kernel(),
                             kernel_wrap.eq(g_end.single & kw_end.single),
                             kh.eq(kh + 1), kh_part.eq(kh_part + desc.dil_h),
                             kh_words.eq(kh_words + steps.dilation_words)]
            with m.Elif(last_g):  # the next kernel column
                m.d.sync += [*restart_groups(),
                             kw.eq(kw + 1), last_kw.eq(kw_ahead_flag),
                             kw_ahead_flag.eq(next_is_last_but_one(kw, kw_ahead_flag,
                                                                   kw_ahead)),
                             kernel_wrap.eq(g_end.single & kw_ahead_flag),
                             kw_part.eq(kw_part + desc.dil_w)]
            with m.Else():  # the next channel group
                m.d.sync += [g.eq(g + 1), last_g.eq(g_ahead_flag),
                             g_ahead_flag.eq(next_is_last_but_one(g, g_ahead_flag,
                                                                  g_ahead)),
                             kernel_wrap.eq(g_ahead_flag & last_kw),
                             group_words.eq(group_words + desc.plane)]

        # Vectors: padding taps become the input zero point; the tag marks each tile's last.
        width = 8 * cfg.rows
        tag = self.words.payload[width * per_row:]
        pad = tag[:per_row]
        word_flags = raster_flags_layout(cfg)(tag[per_row:-1])
        padding = Cat(*[layer["pad_value"]] * cfg.rows)
        beat = [Mux(pad[i], padding, self.words.payload.word_select(i, width))
                for i in range(per_row)]
        m.d.comb += [self.x.valid.eq(self.words.valid), self.words.ready.eq(self.x.ready),
                     self.x.payload.data.eq(beat[0]),
                     self.x.payload.zero.eq(layer["zx"]), self.x.payload.last.eq(tag[-1]),
                     self.x_raster.eq(word_flags)]
        if per_row > 1:
            m.d.comb += self.x_rest.eq(Cat(*beat[1:]))
        return m
