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
from .pipeline import delay_line, delayed, shift_in_two_stages, valid_delayed

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
#: operand (2 and 3), then the multipliers' registers (:func:`hw.multiplier.registered_product`).
_MULTIPLIED = 3 + PRODUCT_REGISTERS


def _wrap32(value):
    return value[:32].as_signed()


def srdhm(product):
    """gemmlowp's SaturatingRoundingDoublingHighMul of ``a`` and a non-negative ``b`` from their
    ``product`` ``a·b``: ``(a·b + 2^30) >> 31`` (its nudge and C++'s truncating division round
    ties toward +∞; it saturates only for ``b = INT32_MIN``)."""
    return _wrap32((product + (1 << 30)) >> 31)


def rounds_away(value, half, below_half):
    """Whether RoundingDivideByPOT rounds ``value / 2^right`` away from zero, given ``half`` =
    ``2^(right−1)`` (0 for ``right`` = 0) and ``below_half`` = ``half − 1`` (0 for 0).

    gemmlowp rounds away when the remainder ``value mod 2^right`` exceeds ``half − 1``, or
    ``half`` for a negative value. The remainder is below ``2·half``, so that is its bit
    ``right − 1``, and for a negative value a bit below it too: bit tests and ORs, no carry
    chain."""
    value = value.as_unsigned()
    return (value & half).any() & (~value[-1] | (value & below_half).any())


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

        # Layer-wide fields travel beside the lanes, one copy for all of them.
        zero = delay_line(m, params.zero, depth - 3, name="zero")[-1]
        lo = delay_line(m, params.min, depth - 1, name="min")[-2:]
        hi = delay_line(m, params.max, depth - 1, name="max")[-2:]
        if cfg.runtime_rounding_select:
            double = delay_line(m, params.double, _MULTIPLIED + 7, name="double")
        else:
            double = [Const(int("double" in cfg.requant_modes), 1)] * (_MULTIPLIED + 8)

        for lane in range(cfg.cols):
            # Multiplier lanes read the shift in stages 1, 9 and 10; shift-only lanes in stage 2.
            shift = delay_line(m, params.shift[lane], _MULTIPLIED + 2 if cfg.has_multiplier
                               else 1, name=f"shift{lane}")
            total = Signal(signed(32), name=f"sum{lane}", reset_less=True)
            m.d.sync += total.eq(_wrap32(self.i.payload.data[lane] + params.bias[lane]))
            if cfg.has_multiplier:
                m0 = delay_line(m, params.m0[lane], 3, name=f"m0_{lane}")[-1]
                scaled = self._multiply_and_round(m, platform, lane, total, m0, shift, double)
            else:
                scaled = self._shift_and_round(m, lane, total, shift[1])
            # The zero-point add, the clamp's compares, then its select: a stage each. A value
            # in the data type's range is its own low byte, and only then do the bounds need
            # comparing (8-bit compares); out of range, its sign says which bound it passed.
            offset = Signal(signed(32), name=f"offset{lane}", reset_less=True)
            m.d.sync += offset.eq(_wrap32(scaled + zero))
            signed_data = cfg.data_shape.signed
            high = offset[7:] if signed_data else offset[8:]
            in_range = ~high.any() | (high.all() if signed_data else 0)
            low_now = offset[:8].as_signed() if signed_data else offset[:8]
            low = Signal(cfg.data_shape, name=f"low{lane}", reset_less=True)
            below = Signal(name=f"below{lane}", reset_less=True)
            above = Signal(name=f"above{lane}", reset_less=True)
            m.d.sync += [low.eq(low_now),
                         below.eq(Mux(in_range, low_now < lo[0], offset[-1])),
                         above.eq(Mux(in_range, low_now > hi[0], ~offset[-1]))]
            out = Signal(cfg.data_shape, name=f"out{lane}", reset_less=True)
            m.d.sync += out.eq(Mux(below, lo[1], Mux(above, hi[1], low)))
            m.d.comb += self.o.payload.data[lane].eq(out)

        m.d.comb += [
            self.o.valid.eq(valid_delayed(m, self.i.valid, depth, name="valid")),
            self.o.payload.last.eq(delay_line(m, self.i.payload.last, depth, name="last")[-1]),
        ]
        return m

    @staticmethod
    def _multiply_and_round(m: Module, platform, lane: int, total, m0, shift, double):
        """Stages 2 to ``_MULTIPLIED + 8`` of a multiplier lane; ``shift``/``double`` are
        delay-line taps. What depends on the shift alone (the rounding shifts, their half and
        masks) is registered a stage before it is used, so no stage decodes a shift on its
        way to an adder."""
        # Double rounding's left shift (single rounding's is 0), in stages 2 and 3.
        left = Signal(5, name=f"left{lane}", reset_less=True)
        m.d.sync += left.eq(Mux(double[0] & (shift[0] > 0), shift[0], 0).as_unsigned()[:5])
        operand = shift_in_two_stages(m, total, left, signed(32), left=True,
                                      name=f"operand{lane}")

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
        # and the add take a stage each.
        t_less_1 = Signal(6, name=f"t_less_1_{lane}", reset_less=True)
        m.d.sync += t_less_1.eq(Mux(double[t + 1], 30, 30 - shift[t + 1]).as_unsigned()[:6])
        shifted = shift_in_two_stages(m, product, t_less_1, signed(33), left=False,
                                      name=f"shifted{lane}")
        rounded = Signal(signed(32), name=f"rounded{lane}", reset_less=True)
        m.d.sync += rounded.eq(((shifted + 1) >> 1)[:32].as_signed())

        # RoundingDivideByPOT by max(−shift, 0) (double only): three stages ahead its
        # divisor's exponent, then the divisor's masks (rounding_divisor). Then the quotient
        # in two stages beside the rounding bit, and their sum.
        right_early = Signal(5, name=f"right_early{lane}", reset_less=True)
        m.d.sync += right_early.eq(Mux(shift[t + 2] < 0, -shift[t + 2], 0).as_unsigned()[:5])
        right, half, below_half = rounding_divisor(m, right_early, name=f"divisor{lane}")
        quotient = shift_in_two_stages(m, rounded, right, signed(32), left=False,
                                       name=f"quotient{lane}")
        round_up = delay_line(m, rounds_away(rounded, half, below_half), 2,
                              name=f"round_up{lane}")[-1]
        undivided = delay_line(m, rounded, 2, name=f"undivided{lane}")[-1]
        scaled = Signal(signed(32), name=f"scaled{lane}", reset_less=True)
        m.d.sync += scaled.eq(Mux(double[t + 7], quotient + round_up, undivided))
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
