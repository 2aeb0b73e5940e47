"""The partial-sum accumulator: adds up a column tile's K tiles and sends the complete sums,
with their requantization parameters, to the requantizer."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In, Out

from .block_ram import ram_attrs, registered_read
from .component import ConfiguredComponent
from .array import accumulator_stream_layout
from .config import ArrayConfig
from .contract import LAYER_OPS, address_bits, memory_shapes
from .layouts import lane_params_layout
from .pipeline import delay_line, lane_copies, next_is_last
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
    memory. Each beat is a read-modify-write in five stages, every memory port driven from a
    register and every read registered once in the fabric, so no path runs from a block
    RAM's output through logic (which would bound the clock at its slow clock-to-output):

    0. the beat's sample addresses the memory; which of the four beats ahead of it, whose
       totals are still on their way to the memory, are the same sample (one comes back that
       soon when a layer has fewer than five samples) follows from the beats between;
    1. the memory answers; of the two furthest ahead, whose totals are known, the newer that
       matches is kept;
    2. the read is registered (:func:`~hw.block_ram.registered_read`); the beat's running
       value is chosen: 0 on its column tile's first K tile (the least value for ``max``),
       else the total of the beat two ahead, the kept one or the read;
    3. the beat is added to (or, if larger, replaces) both that value and the total just
       computed, and the result is chosen by whether the beat just ahead is the same sample:
       the only one-cycle loops, total to total, hold a carry chain and a LUT each, a sum's
       and a maximum's registers apart;
    4. the total is written back (or, on the last K tile, sent on).

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

    #: Totals still on their way to the memory when a later beat's read is made: the same
    #: sample up to this many beats later must take its running value from them.
    IN_FLIGHT = 4

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
            m.d.sync += [sample.eq(0), kt.eq(0), nt.eq(0),
                         last_m.eq(m_end.first_single), last_k.eq(k_end.first_single)]
        with m.Elif(beat):
            m.d.sync += [sample.eq(Mux(last_m, 0, sample + 1)),
                         last_m.eq(next_is_last(sample, last_m, m_end)),
                         nt.eq(Mux(last_m & last_k, nt + 1, nt))]
            with m.If(last_m):
                m.d.sync += [kt.eq(Mux(last_k, 0, kt + 1)),
                             last_k.eq(next_is_last(kt, last_k, k_end))]
        m.d.comb += rd.addr.eq(sample)
        # The parameter word's address from the column tile a cycle later, so the word comes
        # out at stage 4 with the totals.
        param_addr, nt_before = Signal.like(self.param_addr), Signal.like(nt)
        m.d.sync += [nt_before.eq(nt), param_addr.eq(desc.p_base + nt_before)]
        m.d.comb += self.param_addr.eq(param_addr)

        # The beat's stages: valid (reset), then its sample, first/last K tile and data.
        valid = [beat]
        for stage in range(1, 2 + self.IN_FLIGHT):
            valid.append(Signal(name=f"valid{stage}"))
            m.d.sync += valid[stage].eq(valid[stage - 1])
        samples = delay_line(m, sample, self.IN_FLIGHT, name="sample")
        first = delay_line(m, kt == 0, 2, name="first")
        last = delay_line(m, last_k, 4, name="last")
        new = delay_line(m, self.acc.payload.data, 3, name="new")
        cols = range(cfg.cols)
        keep_max = layer_register(m, self.layer, self.layer.incoming.op == LAYER_OPS.index("max"),
                                  name="keep_max")
        max_lane = lane_copies(m, keep_max, cfg.cols, name="keep_max")

        # The totals: the sum's and the maximum's (stage 4), the layer's one of them written
        # back and sent on, and that one a cycle later (stage 5).
        summed, largest = (Signal(sums_layout, name=name) for name in ("summed", "largest"))
        total = Signal(sums_layout, name="total")
        settled = Signal(sums_layout, name="settled")
        for c in cols:
            m.d.comb += total[c].eq(Mux(max_lane[c], largest[c], summed[c]))
        m.d.sync += settled.eq(total)

        # Stage 0: whether each beat ahead (stages 1 to 4, a cycle later 2 to 5) is the same
        # sample, a copy for each lane where the lanes read it. Samples come round in order,
        # so the beat j beats ahead is this one's sample when m divides j: a LUT of the valid
        # bits between and four flags of the layer's, not a compare of sample numbers.
        divides = [layer_register(m, self.layer,
                                  Cat(*[self.layer.incoming.m == d
                                        for d in range(1, j + 1) if j % d == 0]).any(),
                                  name=f"m_divides{j}")
                   for j in range(1, 1 + self.IN_FLIGHT)]

        def is_same(stage):
            ahead = sum(valid[1:stage + 1], start=Const(0, 3))  # beats ahead, itself included
            return valid[stage] & Cat(Const(0), *divides).bit_select(ahead, 1)
        same = {stage: Signal(name=f"same{stage}") for stage in (2, 3)}
        for stage in same:
            m.d.sync += same[stage].eq(is_same(stage - 1))
        same4 = lane_copies(m, is_same(3), cfg.cols, name="same4_")
        same5 = Signal(name="same5")
        m.d.sync += same5.eq(is_same(4))

        # Stage 1: the newer matching of the totals at stages 4 and 5; which running value
        # stage 2 takes, one-hot, a copy for each lane.
        older = Signal(sums_layout, name="older")
        for c in cols:
            m.d.sync += older[c].eq(Mux(same4[c], total[c], settled[c]))
        start = ~first[1]
        use_older = same4[0] | same5
        choose = {"sum": start & same[3] & ~keep_max, "max": start & same[3] & keep_max,
                  "older": start & ~same[3] & use_older, "read": start & ~same[3] & ~use_older,
                  "least": first[1] & keep_max}
        lanes = {name: lane_copies(m, value, cfg.cols, name=f"take_{name}")
                 for name, value in choose.items()}
        just_ahead = Signal(name="just_ahead")
        m.d.sync += just_ahead.eq(same[2])

        # Stage 2: the running value; whether the beat just ahead (stage 4 a cycle later) is
        # the same sample, a copy for each lane.
        read = sums_layout(registered_read(m, rd, "read"))
        running = Signal(sums_layout, name="running")
        least = Const(-1 << (cfg.acc_width - 1), cfg.acc_shape)
        for c in cols:
            taken = [Mux(lanes[name][c], value, 0)
                     for name, value in (("sum", summed[c]), ("max", largest[c]),
                                         ("older", older[c]), ("read", read[c]),
                                         ("least", least))]
            m.d.sync += running[c].eq(taken[0] | taken[1] | taken[2] | taken[3] | taken[4])
        loop = lane_copies(m, just_ahead & ~first[2], cfg.cols, name="loop")

        # Stage 3: the beat added to, or compared with, the running value and the total just
        # computed, from registers, and one of each chosen: each loop a carry chain and a LUT.
        for c in cols:
            beat_value = new[3][c]

            def larger(value):
                # The compare as the sign of a difference: a carry chain, not six LUT levels.
                return Mux((value - beat_value)[-1], beat_value, value)
            m.d.sync += [
                summed[c].eq(Mux(loop[c], summed[c] + beat_value, running[c] + beat_value)),
                largest[c].eq(Mux(loop[c], larger(largest[c]), larger(running[c])))]

        # Stage 4: written back, or sent on with the parameters read at stage 2.
        params = Signal.like(self.param_data, reset_less=True)  # as registered_read's
        m.d.sync += params.eq(self.param_data)
        m.d.comb += [wr.addr.eq(samples[4]), wr.data.eq(total),
                     wr.en.eq(valid[4] & ~last[4])]

        out = self.sums.payload
        m.d.comb += [self.sums.valid.eq(valid[4] & last[4]), out.data.eq(total),
                     out.params.zero.eq(desc.zy), out.params.min.eq(desc.act_min),
                     out.params.max.eq(desc.act_max)]
        for name, _field in lane_params_layout(cfg):
            m.d.comb += getattr(out.params, name).eq(getattr(params, name))
        if cfg.runtime_rounding_select:
            m.d.comb += out.params.double.eq(desc.double)
        return m
