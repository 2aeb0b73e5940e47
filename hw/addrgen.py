"""The activation address generator: a layer's tiles → the activation-memory words they read
(implicit im2col), and the words read → the array's activation stream."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .array import activation_stream_layout
from .config import ArrayConfig
from .contract import LAYER_OPS, SPATIAL_BITS, STEP_BITS, TILE_COUNT_BITS, address_bits
from .memstream import range_command_layout
from .sequencer import RANGE_COUNT_BITS, TILE_LAYOUT, LayerSignature

__all__ = ["ActivationAddressGenerator"]

OP_MATMUL, OP_MAX, OP_ADD = (LAYER_OPS.index(name) for name in ("matmul", "max", "add"))


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

    One one-word range per vector, one per cycle: the memory streamer reads one word per
    cycle, as it would a tile's range, and carries the padding flag as its tag.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``in_base``, ``m``, ``zx`` and the convolution geometry).
    tiles : ``In(stream.Signature(TILE_LAYOUT))``
        The tile loop; a tile is accepted with its last pixel's range.
    ranges : ``Out(stream.Signature(range_command_layout(..., tag_width=1)))``
        One-word activation-memory ranges, tagged 1 for a padding tap, for a
        :class:`~hw.memstream.MemoryStreamer` with ``tag_width=1``.
    words : ``In(stream.Signature(unsigned(8 * rows + 1)))``
        The words those ranges return, in order, with their tags on top.
    x : ``Out(stream.Signature(activation_stream_layout(config)))``
        Activation vectors for the :class:`~hw.array.SystolicArray`.
    """

    def __init__(self, config: ArrayConfig):
        super().__init__(config, {
            "layer": In(LayerSignature(config)),
            "tiles": In(stream.Signature(TILE_LAYOUT)),
            "ranges": Out(stream.Signature(range_command_layout(
                address_bits(config.act_depth), RANGE_COUNT_BITS, 1))),
            "words": In(stream.Signature(unsigned(8 * config.rows + 1))),
            "x": Out(stream.Signature(activation_stream_layout(config))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        desc, launch = self.layer.desc, self.layer.launch

        # Where the tile loop is: K tile (kh, kw, g), output pixel (n, oh, ow) with the
        # running first input row of sample n (n·h) and the pixel's index.
        g, kw, kh = Signal.like(desc.groups), Signal.like(desc.kw), Signal(TILE_COUNT_BITS)
        ow, oh = Signal.like(desc.ow), Signal.like(desc.oh)
        row0 = Signal(len(desc.plane) + SPATIAL_BITS)
        pixel = Signal.like(desc.m)
        last_ow, last_oh = ow == desc.ow - 1, oh == desc.oh - 1
        last_pixel = pixel == desc.m - 1

        ih = Signal(signed(2 * SPATIAL_BITS + STEP_BITS + 2))
        iw = Signal(signed(2 * SPATIAL_BITS + STEP_BITS + 2))
        m.d.comb += [ih.eq(oh * desc.stride_h + kh * desc.dil_h - desc.pad_top),
                     iw.eq(ow * desc.stride_w + kw * desc.dil_w - desc.pad_left)]
        inside = (ih >= 0) & (ih < desc.h) & (iw >= 0) & (iw < desc.w)
        # A vector-unit layer reads the channel group of its column tile (rows/cols column
        # tiles to a group); an add's second tap reads its second input.
        ratio = cfg.rows // cfg.cols
        lanes = Signal(range(max(ratio, 2)))
        group_base = Signal(len(desc.plane) + 1)
        base = Mux((desc.op == OP_ADD) & (kh == 1), desc.in2_base, desc.in_base) + group_base
        address = base + g * desc.plane + (row0 + ih) * desc.w + iw

        m.d.comb += [self.ranges.valid.eq(self.tiles.valid),
                     self.tiles.ready.eq(self.ranges.ready & last_pixel),
                     self.ranges.payload.base.eq(Mux(inside, address, 0)),
                     self.ranges.payload.count.eq(1),
                     self.ranges.payload.tag.eq(~inside)]
        with m.If(launch):
            m.d.sync += [g.eq(0), kw.eq(0), kh.eq(0), ow.eq(0), oh.eq(0), row0.eq(0),
                         pixel.eq(0), lanes.eq(0), group_base.eq(0)]
        with m.Elif(self.ranges.valid & self.ranges.ready):
            m.d.sync += ow.eq(ow + 1)
            m.d.sync += pixel.eq(pixel + 1)
            with m.If(last_ow):
                m.d.sync += [ow.eq(0), oh.eq(oh + 1)]
                with m.If(last_oh):
                    m.d.sync += [oh.eq(0), row0.eq(row0 + desc.h)]
            with m.If(last_pixel):  # the tile is done: next K tile, pixels from the start
                m.d.sync += [ow.eq(0), oh.eq(0), row0.eq(0), pixel.eq(0)]
                with m.If(self.tiles.payload.last_k):  # the next column tile starts at K 0
                    m.d.sync += [g.eq(0), kw.eq(0), kh.eq(0)]
                    with m.If(desc.op != OP_MATMUL):
                        with m.If(lanes == ratio - 1):
                            m.d.sync += [lanes.eq(0), group_base.eq(group_base + desc.plane)]
                        with m.Else():
                            m.d.sync += lanes.eq(lanes + 1)
                with m.Elif(g == desc.groups - 1):
                    m.d.sync += g.eq(0)
                    with m.If(kw == desc.kw - 1):
                        m.d.sync += [kw.eq(0), kh.eq(kh + 1)]
                    with m.Else():
                        m.d.sync += kw.eq(kw + 1)
                with m.Else():
                    m.d.sync += g.eq(g + 1)

        # Vectors: padding taps become the input zero point; the sample index of the one on
        # the array's input marks each tile's last.
        sample = Signal.like(desc.m)
        last = sample == desc.m - 1
        pad = self.words.payload[8 * cfg.rows]
        # Max pooling's padded taps are the type's lowest value, which never wins.
        lowest = Const(-128 if cfg.dtype == "int8" else 0, cfg.data_shape)
        padding = Mux(desc.op == OP_MAX, lowest, desc.zx)
        m.d.comb += [self.x.valid.eq(self.words.valid), self.words.ready.eq(self.x.ready),
                     self.x.payload.data.eq(Mux(pad, Cat(*[padding] * cfg.rows),
                                                self.words.payload[:8 * cfg.rows])),
                     self.x.payload.zero.eq(desc.zx), self.x.payload.last.eq(last)]
        with m.If(launch):
            m.d.sync += sample.eq(0)
        with m.Elif(self.x.valid & self.x.ready):
            m.d.sync += sample.eq(Mux(last, 0, sample + 1))
        return m
