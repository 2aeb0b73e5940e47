"""The partial-sum accumulator: adds up a column tile's K tiles and sends the complete sums,
with their requantization parameters, to the requantizer."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In, Out

from .block_ram import ram_attrs, registered_read
from .component import ConfiguredComponent
from .array import accumulator_stream_layout
from .config import ArrayConfig
from .contract import LAYER_OPS, address_bits, memory_shapes
from .layouts import lane_params_layout
from .pipeline import delay_line, next_is_last
from .requant import requant_input_layout
from .sequencer import LayerSignature, layer_register, loop_end

__all__ = ["PartialSumAccumulator"]


class PartialSumAccumulator(ConfiguredComponent):
    """Accumulates the array's (or the vector unit's) results over K tiles in a partial-sum
    memory of ``psum_depth`` words (one per sample; a ``max`` layer keeps the largest instead
    of the sum) and passes each column tile's final sums on, one beat per sample, with the
    tile's parameter word and the layer's output zero point, clamp bounds and rounding select,
    :attr:`~hw.config.ArrayConfig.psum_latency` cycles after the beat that completes them.

    Results arrive in the tile loop's order (``for nt: for kt: for sample``), so the first K
    tile of a column tile starts from 0 and the last one goes to ``sums`` instead of the
    memory. Each beat is a read-modify-write in four stages, every memory port driven from a
    register and every read registered once in the fabric, so no path runs from a block
    RAM's output through logic (which would bound the clock at its slow clock-to-output):

    0. the beat's sample addresses the memory, its column tile the parameter word's address;
    1. the memory answers; the beat's sample is compared with the three beats ahead of it,
       whose totals are still on their way to the memory (the same sample comes back that
       soon when a layer has fewer than four samples), and of the two further ahead, whose
       totals are known, the newer that matches is kept;
    2. the read is registered (:func:`~hw.block_ram.registered_read`); the beat is added to
       (or, if larger, replaces) both the total just computed and the other running value
       (the kept total, or the read), and the sample's newest is chosen: the only one-cycle
       loop, total to total, holds an add and a select;
    3. the total is registered, written back (or, on the last K tile, sent on).

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
        A synchronous read port of the parameter memory (data the cycle after the address).
    sums : ``Out(stream.Signature(requant_input_layout(config), always_ready=True))``
        Complete sums with their parameters, for the :class:`~hw.requant.Requantizer`.
    """

    #: Totals still on their way to the memory when a later beat's read returns: the same
    #: sample up to this many beats later must take its running value from them.
    IN_FLIGHT = 3

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
        wr, rd = psum.write_port(), psum.read_port()
        sums_layout = data.ArrayLayout(cfg.acc_shape, cfg.cols)

        # Stage 0: the beat's place in the tile loop, from counters.
        sample, kt, nt = Signal.like(desc.m), Signal(len(desc.k_tiles)), \
            Signal(len(desc.n_tiles))
        beat = self.acc.valid
        # Whether the sample and the K tile are the last, registered beside the counters
        # (hw.pipeline.next_is_last).
        last_m, last_k = Signal(), Signal()
        m_end, k_end = (loop_end(m, self.layer, name) for name in ("m", "k_tiles"))
        with m.If(launch):
            incoming = self.layer.incoming
            m.d.sync += [sample.eq(0), kt.eq(0), nt.eq(0), last_m.eq(incoming.m == 1),
                         last_k.eq(incoming.k_tiles == 1)]
        with m.Elif(beat):
            m.d.sync += [sample.eq(Mux(last_m, 0, sample + 1)),
                         last_m.eq(next_is_last(sample, last_m, m_end)),
                         nt.eq(Mux(last_m & last_k, nt + 1, nt))]
            with m.If(last_m):
                m.d.sync += [kt.eq(Mux(last_k, 0, kt + 1)),
                             last_k.eq(next_is_last(kt, last_k, k_end))]
        m.d.comb += rd.addr.eq(sample)
        param_addr = Signal.like(self.param_addr)
        m.d.sync += param_addr.eq(desc.p_base + nt)
        m.d.comb += self.param_addr.eq(param_addr)

        # The beat's stages: valid (reset), then its sample, first/last K tile and data.
        valid = [beat]
        for stage in range(1, 2 + self.IN_FLIGHT):
            valid.append(Signal(name=f"valid{stage}"))
            m.d.sync += valid[stage].eq(valid[stage - 1])
        samples = delay_line(m, sample, 1 + self.IN_FLIGHT, name="sample")
        first = delay_line(m, kt == 0, 2, name="first")
        last = delay_line(m, last_k, 3, name="last")
        new = delay_line(m, self.acc.payload.data, 2, name="new")

        # Stage 1: which of the totals ahead of the beat is its sample's newest. The one just
        # ahead (stage 2 now, 3 next cycle) is only computed next cycle: a flag. The two
        # further ahead (stages 3 and 4) are here now: the newer of them that matches is
        # chosen now, so the next cycle has two running values to add to, not four.
        # Each compare is made a cycle ahead, one stage earlier on both sides.
        matched = []
        for stage in (2, 3, 4):
            match = Signal(name=f"sample_match{stage}")
            m.d.sync += match.eq(samples[stage - 1] == samples[0])
            matched.append(match)
        same = [valid[stage] & match for stage, match in zip((2, 3, 4), matched)]
        just_ahead, use_older = Signal(name="forward_newest"), Signal(name="forward_older")
        older = Signal(sums_layout, name="older")
        totals = [Signal(sums_layout, name=f"total{3 + ahead}") for ahead in range(2)]
        m.d.sync += [just_ahead.eq(same[0]), use_older.eq(same[1] | same[2]),
                     older.eq(Mux(same[1], totals[0], totals[1])), totals[1].eq(totals[0])]

        # Stage 2: the read registered; the total from the running value, which is the total
        # just computed (a one-cycle loop through the add alone) or the older or the read.
        read = registered_read(m, rd, "read")
        other = sums_layout(Mux(use_older, older, read))
        keep_max = layer_register(m, self.layer, self.layer.incoming.op == LAYER_OPS.index("max"),
                                  name="keep_max")

        def combined(running, new_value):
            # The compare as the sign of a difference: a carry chain beside the sum's, where
            # a compare became six LUT levels.
            larger = (running - new_value)[-1] == 0
            return Mux(keep_max, Mux(larger, running, new_value), running + new_value)
        for c in range(cfg.cols):
            with_newest, with_other = (combined(running[c], new[2][c])
                                       for running in (totals[0], other))
            m.d.sync += totals[0][c].eq(Mux(first[2], new[2][c],
                                            Mux(just_ahead, with_newest, with_other)))

        # Stage 3: written back, or sent on with the parameters read at stage 1.
        params = Signal.like(self.param_data, reset_less=True)  # as registered_read's
        m.d.sync += params.eq(self.param_data)
        m.d.comb += [wr.addr.eq(samples[3]), wr.data.eq(totals[0]),
                     wr.en.eq(valid[3] & ~last[3])]

        out = self.sums.payload
        m.d.comb += [self.sums.valid.eq(valid[3] & last[3]), out.data.eq(totals[0]),
                     out.params.zero.eq(desc.zy), out.params.min.eq(desc.act_min),
                     out.params.max.eq(desc.act_max)]
        for name, _field in lane_params_layout(cfg):
            m.d.comb += getattr(out.params, name).eq(getattr(params, name))
        if cfg.runtime_rounding_select:
            m.d.comb += out.params.double.eq(desc.double)
        return m
