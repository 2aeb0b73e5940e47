"""The partial-sum accumulator: adds up a column tile's K tiles and sends the complete sums,
with their requantization parameters, to the requantizer."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In, Out

from .block_ram import ram_attrs
from .component import ConfiguredComponent
from .array import accumulator_stream_layout
from .config import ArrayConfig
from .contract import LAYER_OPS, address_bits, memory_shapes
from .layouts import lane_params_layout
from .requant import requant_input_layout
from .sequencer import LayerSignature

__all__ = ["PartialSumAccumulator"]


class PartialSumAccumulator(ConfiguredComponent):
    """Accumulates the array's (or the vector unit's) results over K tiles in a partial-sum
    memory of ``psum_depth`` words (one per sample; a ``max`` layer keeps the largest instead
    of the sum) and passes each column tile's final sums on, one beat per sample, with the
    tile's parameter word and the layer's output zero point, clamp bounds and rounding select.

    Results arrive in the tile loop's order (``for nt: for kt: for sample``), so the first K
    tile of a column tile starts from 0 and the last one goes to ``sums`` instead of the
    memory. The memory's read port is transparent: with one sample, a K tile's sum is read back
    in the cycle it is written. A layer's first result may come two cycles after its launch at
    the earliest (its parameter word is addressed from ``desc``); the array's latency is
    longer.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``m``, ``k_tiles``, ``p_base``, ``zy``, clamp bounds, ``double``).
    acc : ``In(stream.Signature(accumulator_stream_layout(config), always_ready=True))``
        The array's results; every beat is taken.
    param_addr, param_data : ``Out(address)``, ``In(lane_params_layout(config))``
        A synchronous read port of the parameter memory, addressed a cycle ahead of the beat
        that needs the word.
    sums : ``Out(stream.Signature(requant_input_layout(config), always_ready=True))``
        Complete sums with their parameters, for the :class:`~hw.requant.Requantizer`.
    """

    def __init__(self, config: ArrayConfig):
        super().__init__(config, {
            "layer": In(LayerSignature(config)),
            "acc": In(stream.Signature(accumulator_stream_layout(config), always_ready=True)),
            "param_addr": Out(address_bits(config.param_depth)),
            "param_data": In(lane_params_layout(config)),
            "sums": Out(stream.Signature(requant_input_layout(config), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        desc, launch = self.layer.desc, self.layer.launch
        width, depth = memory_shapes(cfg)["psums"]
        m.submodules.sums = psum = memory.Memory(shape=width, depth=depth, init=[],
                                                 attrs=ram_attrs(cfg)["psums"])
        wr = psum.write_port()
        rd = psum.read_port(transparent_for=(wr,))  # a sum written now is read back now

        sample, kt, nt = Signal.like(desc.m), Signal(len(desc.k_tiles)), \
            Signal(len(desc.n_tiles))
        beat = self.acc.valid
        last_m, last_k = sample == desc.m - 1, kt == desc.k_tiles - 1
        next_m = Mux(last_m, 0, sample + 1)
        next_nt = Mux(last_m & last_k, nt + 1, nt)
        with m.If(launch):
            m.d.sync += [sample.eq(0), kt.eq(0), nt.eq(0)]
        with m.Elif(beat):
            m.d.sync += [sample.eq(next_m), nt.eq(next_nt)]
            with m.If(last_m):
                m.d.sync += kt.eq(Mux(last_k, 0, kt + 1))
        # Synchronous reads: address the beat that arrives next, so its data is ready then.
        m.d.comb += [rd.addr.eq(Mux(beat, next_m, sample)),
                     self.param_addr.eq(desc.p_base + Mux(beat, next_nt, nt))]

        partial = data.ArrayLayout(cfg.acc_shape, cfg.cols)(rd.data)
        total = Signal(data.ArrayLayout(cfg.acc_shape, cfg.cols))
        keep_max = desc.op == LAYER_OPS.index("max")
        for c in range(cfg.cols):
            new = self.acc.payload.data[c]
            kept = Mux(keep_max, Mux(partial[c] > new, partial[c], new), partial[c] + new)
            m.d.comb += total[c].eq(Mux(kt == 0, new, kept))
        m.d.comb += [wr.addr.eq(sample), wr.data.eq(total.as_value()),
                     wr.en.eq(beat & ~last_k)]

        out = self.sums.payload
        m.d.comb += [self.sums.valid.eq(beat & last_k), out.data.eq(total),
                     out.params.zero.eq(desc.zy), out.params.min.eq(desc.act_min),
                     out.params.max.eq(desc.act_max)]
        for name, _field in lane_params_layout(cfg):
            m.d.comb += getattr(out.params, name).eq(getattr(self.param_data, name))
        if cfg.runtime_rounding_select:
            m.d.comb += out.params.double.eq(desc.double)
        return m
