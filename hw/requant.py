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
from .config import PRODUCT_REGISTERS, ArrayConfig
from .layouts import lane_params_layout
from .multiplier import registered_product
from .pipeline import delay_line, delayed, lane_copies, shift_in_stages, valid_delayed

__all__ = ["Requantizer", "lane_params_layout", "requant_input_layout", "requant_output_layout",
           "requant_params_layout", "rounding_divisor", "rounds_away", "srdhm"]


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


#: The stage whose registers hold a multiplier lane's partial products: the sum (1), the
#: operand (2 to 4), then the multipliers' registers (:func:`hw.multiplier.registered_product`).
_MULTIPLIED = 4 + PRODUCT_REGISTERS


def _wrap32(value):
    return value[:32].as_signed()


def srdhm(product):
    """gemmlowp's SaturatingRoundingDoublingHighMul of ``a`` and a non-negative ``b`` from their
    ``product`` ``a·b``: ``(a·b + 2^30) >> 31`` (its nudge and C++'s truncating division round
    ties toward +∞; it saturates only for ``b = INT32_MIN``)."""
    return _wrap32((product + (1 << 30)) >> 31)


def rounds_away(m: Module, value, half, below_half, *, name: str) -> Signal:
    """Whether RoundingDivideByPOT rounds ``value / 2^right`` away from zero, given ``half`` =
    ``2^(right−1)`` (0 for ``right`` = 0) and ``below_half`` = ``half − 1`` (0 for 0), all
    three registered: two cycles later.

    gemmlowp rounds away when the remainder ``value mod 2^right`` exceeds ``half − 1``, or
    ``half`` for a negative value. The remainder is below ``2·half``, so that is its bit
    ``right − 1``, and for a negative value a bit below it too: bit tests and ORs, no carry
    chain, over two stages (bytes, then the whole word), two LUT levels each."""
    value = value.as_unsigned()
    tests = {}
    for kind, mask in (("half", half), ("below", below_half)):
        hit = value[:len(mask)] & mask
        starts = range(0, len(hit), 8)
        tests[kind] = Signal(len(starts), name=f"{name}_{kind}_bytes", reset_less=True)
        m.d.sync += tests[kind].eq(Cat(hit[i:i + 8].any() for i in starts))
    negative = Signal(name=f"{name}_negative", reset_less=True)
    m.d.sync += negative.eq(value[-1])
    away = Signal(name=name, reset_less=True)
    m.d.sync += away.eq(tests["half"].any() & (~negative | tests["below"].any()))
    return away


def rounding_divisor(m: Module, exponent, *, name: str) -> tuple[Signal, Signal, Signal]:
    """RoundingDivideByPOT's divisor from a registered 5-bit ``exponent`` (``right``), two
    stages later: ``(right, half, below_half)`` for :func:`rounds_away`. The exponent is
    decoded in two halves first (its high two bits and low three, one-hot and as thresholds),
    so every bit of a mask is then a function of three decoded bits, one LUT level: decoded
    in one go, ABC shares the decoders' terms into chains of ten LUTs."""
    high, low = exponent[3:], exponent[:3]
    decoded = {}
    for part, value, count in (("high", high, 4), ("low", low, 8)):
        # "above" the largest value is never true: a constant, not a compare.
        for kind, tests in (("is", [value == k for k in range(count)]),
                            ("above", [value > k for k in range(count - 1)] + [Const(0)])):
            register = Signal(count, name=f"{name}_{part}_{kind}", reset_less=True)
            m.d.sync += register.eq(Cat(*tests))
            decoded[part, kind] = register
    right = delayed(m, exponent, 2, name=f"{name}_right")
    half = Signal(32, name=f"{name}_half", reset_less=True)
    below_half = Signal(32, name=f"{name}_below_half", reset_less=True)

    def equal(k):  # exponent == k
        return decoded["high", "is"][k >> 3] & decoded["low", "is"][k & 7]

    def above(k):  # exponent > k
        return decoded["high", "above"][k >> 3] | \
            (decoded["high", "is"][k >> 3] & decoded["low", "above"][k & 7])
    m.d.sync += [half.eq(Cat(equal(k) for k in range(1, 32))),
                 below_half.eq(Cat(above(k) for k in range(1, 31)))]
    return right, half, below_half


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

        # Layer-wide fields travel beside the lanes in one register chain, then in a copy
        # per lane (lane_copies) for their last stages: one register feeding every lane's
        # compares and selects was the matrix unit's critical path, a route across the chip.
        def per_lane(value, stage: int, name: str) -> list:
            """``value`` at ``stage``, a copy per lane."""
            return lane_copies(m, delayed(m, value, stage - 1, name=name), cfg.cols,
                               name=f"{name}_lane")
        zero = per_lane(params.zero, depth - 4, "zero")
        lo = per_lane(params.min, depth - 3, "min")
        hi = per_lane(params.max, depth - 3, "max")
        if cfg.runtime_rounding_select:  # read in stage 0 (an input), t + 1 and t + 8
            double = [[params.double, *delay_line(m, copy, _MULTIPLIED + 7,
                                                  name=f"double{lane}")]
                      for lane, copy in enumerate(per_lane(params.double, 1, "double"))]
        else:
            double = [[Const(int("double" in cfg.requant_modes), 1)] * (_MULTIPLIED + 9)] \
                * cfg.cols

        for lane in range(cfg.cols):
            # Multiplier lanes read the shift as it comes and t + 1 and t + 3 stages later
            # (t = _MULTIPLIED); shift-only lanes a stage later.
            shift = delay_line(m, params.shift[lane], _MULTIPLIED + 3 if cfg.has_multiplier
                               else 1, name=f"shift{lane}")
            total = Signal(signed(32), name=f"sum{lane}", reset_less=True)
            m.d.sync += total.eq(_wrap32(self.i.payload.data[lane] + params.bias[lane]))
            if cfg.has_multiplier:
                m0 = delay_line(m, params.m0[lane], 4, name=f"m0_{lane}")[-1]
                scaled = self._multiply_and_round(m, platform, lane, total, m0, shift,
                                                  double[lane])
            else:
                scaled = self._shift_and_round(m, lane, total, shift[1])
            m.d.comb += self.o.payload.data[lane].eq(
                self._clamp(m, lane, scaled, zero[lane], lo[lane], hi[lane]))

        m.d.comb += [
            self.o.valid.eq(valid_delayed(m, self.i.valid, depth, name="valid")),
            self.o.payload.last.eq(delay_line(m, self.i.payload.last, depth, name="last")[-1]),
        ]
        return m

    def _clamp(self, m: Module, lane: int, scaled, zero, lo, hi):
        """The last four stages of a lane: the zero-point add, the clamp's tests, which bound
        (if any) the value passed, and the select. A value in the data type's range is its
        own low byte, and only then do the bounds need comparing (8-bit compares); out of
        range, its sign says which bound it passed. Whether it is in range is tested a byte
        at a time, then over the bytes. ``zero`` is beside ``scaled``; ``lo`` and ``hi`` a
        stage later."""
        cfg = self.config
        offset = Signal(signed(32), name=f"offset{lane}", reset_less=True)
        m.d.sync += offset.eq(_wrap32(scaled + zero))
        signed_data = cfg.data_shape.signed
        high = offset[7:] if signed_data else offset[8:]
        low_now = offset[:8].as_signed() if signed_data else offset[:8]
        low = Signal(cfg.data_shape, name=f"low{lane}", reset_less=True)
        under, over, negative = (Signal(name=f"{what}{lane}", reset_less=True)
                                 for what in ("under", "over", "negative"))
        starts = range(0, len(high), 8)
        ones, zeros = (Signal(len(starts), name=f"high_{what}{lane}", reset_less=True)
                       for what in ("ones", "zeros"))
        # A compare as a difference's sign: the carry chain's last sum bit, straight into
        # the register (a compare had ABC put LUTs after the chain).
        m.d.sync += [low.eq(low_now), under.eq((low_now - lo)[8]), over.eq((hi - low_now)[8]),
                     negative.eq(offset[-1]),
                     ones.eq(Cat(high[i:i + 8].all() for i in starts)),
                     zeros.eq(Cat(~high[i:i + 8].any() for i in starts))]
        in_range = zeros.all() | (ones.all() if signed_data else 0)
        below = Signal(name=f"below{lane}", reset_less=True)
        above = Signal(name=f"above{lane}", reset_less=True)
        m.d.sync += [below.eq(Mux(in_range, under, negative)),
                     above.eq(Mux(in_range, over, ~negative))]
        low_2 = delayed(m, low, 1, name=f"low{lane}")
        lo_2, hi_2 = (delayed(m, bound, 2, name=bound.name) for bound in (lo, hi))
        out = Signal(cfg.data_shape, name=f"out{lane}", reset_less=True)
        m.d.sync += out.eq(Mux(below, lo_2, Mux(above, hi_2, low_2)))
        return out

    @staticmethod
    def _multiply_and_round(m: Module, platform, lane: int, total, m0, shift, double):
        """Stages 2 to ``_MULTIPLIED + 9`` of a multiplier lane; ``shift``/``double`` are
        delay-line taps. What depends on the shift alone (the rounding shifts, their half and
        masks) is registered a stage before it is used, so no stage decodes a shift on its
        way to an adder."""
        # Double rounding's left shift (single rounding's is 0), in stages 2 to 4: the last
        # feeds the DSP blocks' inputs, so it is the one a bit of the amount (a 2:1 select
        # routed to the blocks' row, where 3 LUT levels and that route set the clock).
        left = Signal(5, name=f"left{lane}", reset_less=True)
        m.d.sync += left.eq(Mux(double[0] & (shift[0] > 0), shift[0], 0).as_unsigned()[:5])
        operand = shift_in_stages(m, total, left, signed(32), left=True,
                                  name=f"operand{lane}", splits=(2, 4))

        # The 32×31-bit product as four 16×16-bit partial products, one DSP block each with
        # its own registers (hw.multiplier), summed in the two stages after them.
        a_lo, a_hi = operand[:16], operand[16:].as_signed()
        m_lo, m_hi = m0[:16], m0[16:]
        partial = {}
        for name, a, b in (("ll", a_lo, m_lo), ("lh", a_lo, m_hi), ("hl", a_hi, m_lo),
                           ("hh", a_hi, m_hi)):
            partial[name] = registered_product(m, a, b, platform=platform,
                                               name=f"pp_{name}{lane}")
        t = _MULTIPLIED
        # ll fills bits 0..31 and hh starts at bit 32: placed side by side, they need no add,
        # so the product is two adds, a stage each.
        middle = Signal(signed(34), name=f"middle{lane}", reset_less=True)
        outer = Signal(signed(64), name=f"outer{lane}", reset_less=True)
        m.d.sync += [middle.eq(partial["lh"] + partial["hl"]),
                     outer.eq(Cat(partial["ll"][:32], partial["hh"]))]
        product = Signal(signed(63), name=f"product{lane}", reset_less=True)
        m.d.sync += product.eq(outer + (middle << 16))
        # Round-shift by t: 31 for double rounding (SRDHM), 31 − shift for single rounding
        # (t ≥ 1 as shift ≤ 30). (p + 2^(t−1)) >> t is ((p >> (t−1)) + 1) >> 1, so the
        # rounding add is 33 bits wide after the shift instead of 64 before it; the shift
        # takes three stages (two bits of t − 1 each), the add one.
        t_less_1 = Signal(6, name=f"t_less_1_{lane}", reset_less=True)
        m.d.sync += t_less_1.eq(Mux(double[t + 1], 30, 30 - shift[t + 1]).as_unsigned()[:6])
        shifted = shift_in_stages(m, product, t_less_1, signed(33), left=False,
                                  name=f"shifted{lane}", splits=(2, 4))
        rounded = Signal(signed(32), name=f"rounded{lane}", reset_less=True)
        m.d.sync += rounded.eq(((shifted + 1) >> 1)[:32].as_signed())

        # RoundingDivideByPOT by max(−shift, 0) (double only): three stages ahead its
        # divisor's exponent, then the divisor's masks (rounding_divisor). Then the quotient
        # in two stages beside the rounding bit, and their sum.
        right_early = Signal(5, name=f"right_early{lane}", reset_less=True)
        m.d.sync += right_early.eq(Mux(shift[t + 3] < 0, -shift[t + 3], 0).as_unsigned()[:5])
        right, half, below_half = rounding_divisor(m, right_early, name=f"divisor{lane}")
        quotient = shift_in_stages(m, rounded, right, signed(32), left=False,
                                   name=f"quotient{lane}")
        round_up = rounds_away(m, rounded, half, below_half, name=f"round_up{lane}")
        undivided = delay_line(m, rounded, 2, name=f"undivided{lane}")[-1]
        scaled = Signal(signed(32), name=f"scaled{lane}", reset_less=True)
        m.d.sync += scaled.eq(Mux(double[t + 8], quotient + round_up, undivided))
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
