"""The output writer: requantized column tiles → activation-memory words, in the layout the next
layer reads."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .config import ArrayConfig
from .contract import address_bits
from .pipeline import next_is_last
from .requant import requant_output_layout
from .sequencer import LayerSignature, loop_end

__all__ = ["OutputWriter"]


class OutputWriter(ConfiguredComponent):
    """Writes a layer's outputs into activation memory as the next layer's input.

    An activation word holds ``rows`` values, a column tile ``cols``: ``rows/cols``
    consecutive column tiles share a word, each in its own group of lanes (group ``g`` =
    column tile ``nt`` with ``nt mod (rows/cols) = g``), at ``out_base + (nt div
    (rows/cols))·out_plane + sample`` (docs/images.md; ``out_plane`` is ``m`` unless the
    layer's output is written in several passes). The layer's last column tile also fills the
    word's remaining groups with the output tensor's zero point (``zpad``): the next layer
    reads them as padding, which must contribute exactly zero whatever the weights there
    (1-bit weight memories cannot hold a zero weight).

    With the descriptor's ``out_blocks`` the output map (``oh × ow`` pixels a sample) is
    written in blocks of 2×2 pixels instead, for a layer in quad mode to read a block a beat
    (:class:`~hw.window.WindowUnit`): pixel ``(n, y, x)`` at ``((n·⌈oh/2⌉ + y div 2)·⌈ow/2⌉ +
    x div 2)·4 + 2·(y mod 2) + x mod 2`` words into its group (docs/images.md).

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`; ``rows`` a multiple of ``cols``.

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``out_base``, ``out_plane``, ``m``, ``n_tiles``, ``zpad``; with
        ``out_blocks``, ``oh`` and ``ow``).
    results : ``In(stream.Signature(requant_output_layout(config), always_ready=True))``
        Requantized vectors, sample by sample, column tile by column tile.
    addr, data, en : ``Out(address)``, ``Out(8 * rows)``, ``Out(rows // cols)``
        A write port of the activation memory with a granularity of ``8 * cols`` bits (one
        enable per group).
    done : ``Out(1)``
        The layer's outputs are all written: high from the cycle the last is written,
        ``config.write_latency`` cycles after the last result.
    """

    def __init__(self, config: ArrayConfig):
        config.require_whole_column_tiles("the output writer")
        super().__init__(config, {
            "layer": In(LayerSignature(config)),
            "results": In(stream.Signature(requant_output_layout(config), always_ready=True)),
            "addr": Out(address_bits(config.act_depth)),
            "data": Out(8 * config.rows),
            "en": Out(config.rows // config.cols),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        ratio = cfg.rows // cfg.cols
        desc, launch, valid = self.layer.desc, self.layer.launch, self.results.valid

        sample, nt = Signal.like(desc.m), Signal(len(desc.n_tiles))
        group = Signal(range(max(ratio, 2)))
        word = Signal.like(desc.out_base)  # the first word of the current group's tiles
        # Whether each counter is at its last value, registered beside it
        # (hw.pipeline.next_is_last), so no compare of a counter enables the others.
        last_sample, last_x, last_y = Signal(), Signal(), Signal()
        # So whether nt is the last column tile, and whether it went past it (the layer is
        # written; set out of reset, when nt and the descriptor's n_tiles are both 0).
        last_tile, finished = Signal(name="last_tile"), Signal(name="finished", init=1)
        incoming = self.layer.incoming
        m_end, ow_end, oh_end, n_end = (loop_end(m, self.layer, name)
                                        for name in ("m", "ow", "oh", "n_tiles"))
        with m.If(launch):
            m.d.sync += [sample.eq(0), nt.eq(0), group.eq(0), word.eq(incoming.out_base),
                         last_sample.eq(m_end.first_single), last_tile.eq(n_end.first_single),
                         finished.eq(0)]
        with m.Elif(valid):
            m.d.sync += last_sample.eq(next_is_last(sample, last_sample, m_end))
            with m.If(last_sample):
                m.d.sync += [sample.eq(0), nt.eq(nt + 1), finished.eq(last_tile),
                             last_tile.eq(next_is_last(nt, last_tile, n_end))]
                with m.If(group == ratio - 1):
                    m.d.sync += [group.eq(0), word.eq(word + desc.out_plane)]
                with m.Else():
                    m.d.sync += group.eq(group + 1)
            with m.Else():
                m.d.sync += sample.eq(sample + 1)
        # Done once the last word is written, two cycles after the last result (below); not
        # at a launch, when the count is still the last layer's.
        m.d.sync += self.done.eq(finished & ~launch)

        # In blocks: the pixel (y, x) of a sample, and its block row's first word; a block
        # row is 4·⌈ow/2⌉ words (a multiple of 4), and the last of a sample ends one (odd oh
        # included).
        x, y = Signal.like(desc.ow), Signal.like(desc.oh)
        block_row = Signal.like(desc.out_plane)
        row_words = Signal.like(desc.out_plane)
        m.d.sync += row_words.eq((desc.ow + desc.ow[0]) << 1)  # the layer's, a cycle after
        with m.If(launch):
            m.d.sync += [x.eq(0), y.eq(0), block_row.eq(0),
                         last_x.eq(ow_end.first_single), last_y.eq(oh_end.first_single)]
        with m.Elif(valid & last_sample):
            m.d.sync += [x.eq(0), y.eq(0), block_row.eq(0), last_x.eq(ow_end.single),
                         last_y.eq(oh_end.single)]
        with m.Elif(valid):
            m.d.sync += [x.eq(x + 1), last_x.eq(next_is_last(x, last_x, ow_end))]
            with m.If(last_x):
                m.d.sync += [x.eq(0), y.eq(Mux(last_y, 0, y + 1)),
                             last_y.eq(next_is_last(y, last_y, oh_end))]
                with m.If(y[0] | last_y):
                    m.d.sync += block_row.eq(block_row + row_words)
        # Pixel (y, x) is 2·(y mod 2) + 4·(x div 2) + x mod 2 words into its block row: bits
        # placed side by side, as the row is a multiple of 4.
        in_block = block_row + Cat(x[0], y[0], x[1:])

        # The write takes two registered stages, so that no add or select reaches the
        # memory's ports: the offset into the group's tiles, then the address.
        padding = Cat(*[desc.zpad] * cfg.cols)
        groups = [g == group for g in range(ratio)]
        offset = Signal(len(self.addr), name="offset")
        base, data, en = Signal.like(word, name="base"), Signal.like(self.data), \
            Signal.like(self.en)
        m.d.sync += [
            offset.eq(Mux(desc.out_blocks, in_block, sample)),
            base.eq(word),
            data.eq(Cat(*[Mux(here, self.results.payload.data.as_value(), padding)
                          for here in groups])),
            en.eq(Mux(valid, Cat(groups[0], *[here | (last_tile & (group < g))
                                              for g, here in enumerate(groups) if g]), 0)),
            self.addr.eq(base + offset),
            self.data.eq(data),
            self.en.eq(en),
        ]
        return m
