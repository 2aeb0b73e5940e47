"""The requantization unit: int32 accumulators → int8, one lane per array column.

Per lane and per beat::

    sum    = acc + bias                                           (int32, wraps)
    scaled = MultiplyByQuantizedMultiplier(sum, m0, shift)        (double | single | pow2)
    out    = clamp(scaled + zero, min, max)

bit-exact with the golden model (``quantizer.golden.requantize``). Two identities let one
multiplier and one rounding shifter serve both TFLite rounding modes:

- gemmlowp's SaturatingRoundingDoublingHighMul with a non-negative ``m0`` is
  ``(a·m0 + 2^30) >> 31`` (its nudge plus C++'s truncating division round ties toward +∞; the
  saturating case needs ``m0 = INT32_MIN``, which QuantizeMultiplier never produces), i.e.
  single rounding's ``(p + 2^(t−1)) >> t`` with ``t = 31``;
- so ``double`` is "left-shift, multiply, round-shift by 31, RoundingDivideByPOT" and ``single``
  is "multiply, round-shift by 31 − shift": the same datapath with a per-layer select.

A ``pow2``-only build has no multiplier: ``(sum + 2^(n−1)) >> n`` with ``n = 1 − shift``, which
equals single rounding for the power-of-two multipliers (``m0 = 2^30``) it is meant for.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .config import ArrayConfig
from .layouts import lane_params_layout
from .pipeline import delay_line, valid_delayed

__all__ = ["Requantizer", "lane_params_layout", "requant_input_layout", "requant_output_layout",
           "requant_params_layout", "rounding_divide_by_pot", "srdhm"]


def requant_params_layout(config: ArrayConfig) -> data.StructLayout:
    """Requantization parameters: the :func:`lane_params_layout` fields; per layer the output
    ``zero`` point, clamp bounds ``min``/``max`` and, when both roundings are built, ``double``
    (1: double rounding, 0: single rounding)."""
    fields = {name: field.shape for name, field in lane_params_layout(config)}
    fields.update({"zero": config.data_shape, "min": config.data_shape, "max": config.data_shape})
    if config.runtime_rounding_select:
        fields["double"] = 1
    return data.StructLayout(fields)


def requant_input_layout(config: ArrayConfig) -> data.StructLayout:
    """One beat into the requantizer: accumulators, their parameters and the ``last`` flag."""
    return data.StructLayout({
        "data": data.ArrayLayout(config.acc_shape, config.cols),
        "params": requant_params_layout(config),
        "last": 1,
    })


def requant_output_layout(config: ArrayConfig) -> data.StructLayout:
    return data.StructLayout({
        "data": data.ArrayLayout(config.data_shape, config.cols),
        "last": 1,
    })


def _wrap32(value):
    return value[:32].as_signed()


def srdhm(product):
    """gemmlowp's SaturatingRoundingDoublingHighMul of ``a`` and a non-negative ``b`` from their
    ``product`` ``a·b``: ``(a·b + 2^30) >> 31`` (its nudge and C++'s truncating division round
    ties toward +∞; it saturates only for ``b = INT32_MIN``)."""
    return _wrap32((product + (1 << 30)) >> 31)


def rounding_divide_by_pot(value, right, *, mask=None, thresholds=None):
    """gemmlowp's RoundingDivideByPOT of a signed 32-bit ``value`` by ``2^right`` (``right``
    in 0..31): round to nearest, ties away from zero. A caller that registers what depends on
    ``right`` alone a stage earlier passes it: ``mask`` = ``2^right − 1`` and ``thresholds``
    = ``(mask >> 1, (mask >> 1) + 1)``, the remainders a non-negative and a negative value
    must exceed to round away from zero."""
    right = right.as_unsigned()[:5]
    if mask is None:
        mask = ((Const(1, 33) << right)[:33] - 1)[:32]
    remainder = value.as_unsigned() & mask
    if thresholds is None:
        threshold = (mask >> 1) + (value < 0)
    else:
        threshold = Mux(value < 0, thresholds[1], thresholds[0])
    return (value >> right) + (remainder > threshold)


class Requantizer(ConfiguredComponent):
    """``cols`` requantization lanes, fully pipelined: one beat in and out per cycle,
    ``config.requant_latency`` cycles apart. Every beat carries its own parameters, so layers
    and channel tiles can change between consecutive beats.

    Attributes
    ----------
    i : stream of :func:`requant_input_layout` (no backpressure).
    o : stream of :func:`requant_output_layout` (no backpressure).
    """

    def __init__(self, config: ArrayConfig):
        super().__init__(config, {
            "i": In(stream.Signature(requant_input_layout(config), always_ready=True)),
            "o": Out(stream.Signature(requant_output_layout(config), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        depth = cfg.requant_latency
        params = self.i.payload.params

        # Layer-wide fields travel beside the lanes, one copy for all of them.
        zero = delay_line(m, params.zero, depth - 1, name="zero")[-1]
        lo = delay_line(m, params.min, depth - 1, name="min")[-1]
        hi = delay_line(m, params.max, depth - 1, name="max")[-1]
        if cfg.runtime_rounding_select:
            double = delay_line(m, params.double, 5, name="double")
        else:
            double = [Const(int("double" in cfg.requant_modes), 1)] * 6

        for lane in range(cfg.cols):
            # Multiplier lanes read the shift in stages 2, 4 and 5; shift-only lanes in stage 2.
            shift = delay_line(m, params.shift[lane], 4 if cfg.has_multiplier else 1,
                               name=f"shift{lane}")
            total = Signal(signed(32), name=f"sum{lane}", reset_less=True)
            m.d.sync += total.eq(_wrap32(self.i.payload.data[lane] + params.bias[lane]))
            if cfg.has_multiplier:
                m0 = delay_line(m, params.m0[lane], 2, name=f"m0_{lane}")[-1]
                scaled = self._multiply_and_round(m, lane, total, m0, shift, double)
            else:
                scaled = self._shift_and_round(m, lane, total, shift[1])
            # The zero-point add and the clamp share the last stage.
            offset = Signal(signed(32), name=f"offset{lane}")
            m.d.comb += offset.eq(_wrap32(scaled + zero))
            out = Signal(cfg.data_shape, name=f"out{lane}", reset_less=True)
            m.d.sync += out.eq(Mux(offset < lo, lo, Mux(offset > hi, hi, offset)))
            m.d.comb += self.o.payload.data[lane].eq(out)

        m.d.comb += [
            self.o.valid.eq(valid_delayed(m, self.i.valid, depth, name="valid")),
            self.o.payload.last.eq(delay_line(m, self.i.payload.last, depth, name="last")[-1]),
        ]
        return m

    @staticmethod
    def _multiply_and_round(m: Module, lane: int, total, m0, shift, double):
        """Stages 2–6 of a multiplier lane; ``shift``/``double`` are delay-line taps. What
        depends on the shift alone (the rounding shifts, their half and masks) is registered
        a stage before it is used, so no stage decodes a shift on its way to an adder."""
        operand = Signal(signed(32), name=f"operand{lane}", reset_less=True)
        left = Mux(shift[1] > 0, shift[1], 0).as_unsigned()[:5]
        m.d.sync += operand.eq(Mux(double[1], _wrap32(total << left), total))

        # The 32×31-bit product as four partial products, one MULT18X18D each, registered
        # at the multipliers' outputs and summed in the next stage.
        a_lo, a_hi = operand[:16], operand[16:].as_signed()
        m_lo, m_hi = m0[:16], m0[16:]
        partial = {}
        for name, value in (("ll", a_lo * m_lo), ("lh", a_lo * m_hi), ("hl", a_hi * m_lo),
                            ("hh", a_hi * m_hi)):
            partial[name] = Signal(value.shape(), name=f"pp_{name}{lane}", reset_less=True)
            m.d.sync += partial[name].eq(value)
        product = Signal(signed(63), name=f"product{lane}", reset_less=True)
        # ll fills bits 0..31 and hh starts at bit 32: placed side by side, they need no add.
        m.d.sync += product.eq(Cat(partial["ll"][:32], partial["hh"]).as_signed() +
                               ((partial["lh"] + partial["hl"]) << 16))
        # Round-shift by t: 31 for double rounding (SRDHM), 31 − shift for single rounding
        # (t ≥ 1 as shift ≤ 30). (p + 2^(t−1)) >> t is ((p >> (t−1)) + 1) >> 1, so the
        # rounding add is 33 bits wide after the shift instead of 64 before it.
        t_less_1 = Signal(6, name=f"t_less_1_{lane}", reset_less=True)
        m.d.sync += t_less_1.eq(Mux(double[3], 30, 30 - shift[3]).as_unsigned()[:6])

        rounded = Signal(signed(32), name=f"rounded{lane}", reset_less=True)
        m.d.sync += rounded.eq((((product >> t_less_1)[:33] + 1) >> 1)[:32].as_signed())
        # RoundingDivideByPOT by max(−shift, 0) (double only), its mask a stage ahead too.
        right = Signal(5, name=f"right{lane}", reset_less=True)
        mask = Signal(32, name=f"mask{lane}", reset_less=True)
        thresholds = [Signal(32, name=f"threshold{lane}_{sign}", reset_less=True)
                      for sign in ("pos", "neg")]
        right_next = Mux(shift[4] < 0, -shift[4], 0).as_unsigned()[:5]
        mask_next = ((Const(1, 33) << right_next)[:33] - 1)[:32]
        m.d.sync += [right.eq(right_next), mask.eq(mask_next),
                     thresholds[0].eq(mask_next >> 1), thresholds[1].eq((mask_next >> 1) + 1)]

        divided = rounding_divide_by_pot(rounded, right, mask=mask, thresholds=thresholds)
        # Registered before the zero-point add and clamp: the variable shift, compare and add
        # above fill a stage (ECP5 place and route, docs/hardware.md).
        scaled = Signal(signed(32), name=f"scaled{lane}", reset_less=True)
        m.d.sync += scaled.eq(Mux(double[5], divided, rounded))
        return scaled

    @staticmethod
    def _shift_and_round(m: Module, lane: int, total, shift):
        """Stage 2 of a shift-only lane: ``(sum + 2^(n−1)) >> n``, ``n = 1 − shift``."""
        n = Signal(signed(7), name=f"n{lane}")
        m.d.comb += n.eq(1 - shift)
        right = Mux(n > 0, n, 0).as_unsigned()[:6]
        left = Mux(n < 0, -n, 0).as_unsigned()[:5]
        half = (Const(1, 34) << right)[:34] >> 1
        scaled = Signal(signed(32), name=f"scaled{lane}", reset_less=True)
        m.d.sync += scaled.eq(Mux(n > 0, ((total + half.as_signed()) >> right)[:32].as_signed(),
                                  _wrap32(total << left)))
        return scaled
