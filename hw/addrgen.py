"""The activation address generator: a layer's tiles → the activation-memory ranges they read,
and the words those ranges return → the array's activation stream."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .array import activation_stream_layout
from .config import ArrayConfig
from .contract import address_bits
from .memstream import range_command_layout
from .sequencer import RANGE_COUNT_BITS, TILE_LAYOUT, LayerSignature

__all__ = ["ActivationAddressGenerator"]


class ActivationAddressGenerator(wiring.Component):
    """Addresses a dense layer's activations: every tile ``(nt, kt)`` reads K-slice ``kt`` of
    all ``m`` samples, words ``in_base + kt·m`` to ``in_base + kt·m + m − 1``
    (docs/images.md), and the tile's vectors go to the array with the input zero point, the
    ``m``-th marked ``last``.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``in_base``, ``m``, ``zx``).
    tiles : ``In(stream.Signature(TILE_LAYOUT))``
        The tile loop; one range per tile, accepted as the range is.
    ranges : ``Out(stream.Signature(range_command_layout(...)))``
        Activation-memory ranges, for a :class:`~hw.memstream.MemoryStreamer`.
    words : ``In(stream.Signature(unsigned(8 * rows)))``
        The words those ranges return, in order.
    x : ``Out(stream.Signature(activation_stream_layout(config)))``
        Activation vectors for the :class:`~hw.array.SystolicArray`.
    """

    def __init__(self, config: ArrayConfig):
        self._config = config
        super().__init__({
            "layer": In(LayerSignature(config)),
            "tiles": In(stream.Signature(TILE_LAYOUT)),
            "ranges": Out(stream.Signature(range_command_layout(
                address_bits(config.act_depth), RANGE_COUNT_BITS))),
            "words": In(stream.Signature(unsigned(8 * config.rows))),
            "x": Out(stream.Signature(activation_stream_layout(config))),
        })

    @property
    def config(self) -> ArrayConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        desc, launch = self.layer.desc, self.layer.launch

        # Ranges: a running base, so no multiplier (kt·m) is needed.
        base = Signal.like(desc.in_base)
        m.d.comb += [self.ranges.valid.eq(self.tiles.valid),
                     self.tiles.ready.eq(self.ranges.ready),
                     self.ranges.payload.base.eq(base),
                     self.ranges.payload.count.eq(desc.m)]
        with m.If(launch):
            m.d.sync += base.eq(self.layer.incoming.in_base)
        with m.Elif(self.tiles.valid & self.tiles.ready):
            with m.If(self.tiles.payload.last_k):  # the next column tile reads from K-slice 0
                m.d.sync += base.eq(desc.in_base)
            with m.Else():
                m.d.sync += base.eq(base + desc.m)

        # Vectors: the sample index of the one on the array's input marks each tile's last.
        sample = Signal.like(desc.m)
        last = sample == desc.m - 1
        m.d.comb += [self.x.valid.eq(self.words.valid), self.words.ready.eq(self.x.ready),
                     self.x.payload.data.eq(self.words.payload),
                     self.x.payload.zero.eq(desc.zx), self.x.payload.last.eq(last)]
        with m.If(launch):
            m.d.sync += sample.eq(0)
        with m.Elif(self.x.valid & self.x.ready):
            m.d.sync += sample.eq(Mux(last, 0, sample + 1))
        return m
