"""The vector unit: per-channel layers (depthwise convolution, pooling, mean, residual add) beside
the systolic array, one lane per output channel of a column tile."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data
from amaranth.lib.wiring import In

from .component import ConfiguredComponent
from .array import unit_members
from .config import PRODUCT_REGISTERS, ArrayConfig
from .contract import LAYER_OPS
from .multiplier import registered_product
from .pipeline import delay_line, next_is_last, shift_in_stages, valid_delayed
from .requant import rounding_divisor, rounds_away, srdhm
from .sequencer import LayerSignature, layer_register, loop_end

__all__ = ["ADD_LEFT_SHIFT", "VectorUnit"]

#: TFLite's headroom shift for 8-bit ADD inputs (``left_shift = 20`` in add.cc).
ADD_LEFT_SHIFT = 20

OP_ADD = LAYER_OPS.index("add")
#: The stage whose registers hold a lane's whole product: the operands (1), the DSP blocks'
#: registers (hw.multiplier), the halves summed.
_SUMMED = 2 + PRODUCT_REGISTERS


class VectorUnit(ConfiguredComponent):
    """``cols`` lanes that turn each activation vector of a tap into one partial-sum beat for
    the :class:`~hw.psum.PartialSumAccumulator`, in the array's place, for the layers whose
    ``op`` is not ``matmul`` (:data:`hw.contract.LAYER_OPS`).

    The tile loop is the array's (``for nt: for kt: for pixel``), with one K tile per kernel
    tap; column tile ``nt`` is channels ``nt·cols …`` of the input too, lanes
    ``(nt mod rows/cols)·cols …`` of the word the address generator reads. Lane ``c`` of a beat
    is, for the vector's channel ``x`` and the tile's weight ``w``:

    - ``mac`` and ``max``: ``(x − zx)·(w − zw)`` (max pooling has weights of 1);
    - ``add``: ``RoundingDivideByPOT(SRDHM((x − z)·2^20, m0), −shift)`` with the K tile's
      ``(z, m0, shift)``: ``(zx, m0_a, shift_a)`` for tap 0, ``(zx2, m0_b, shift_b)`` for tap 1
      (built only with a multiplier requantizer; the compiler refuses an ADD for other
      builds).

    A tile takes one weight word (``cols`` lanes) before its first vector; the next tile's
    word is taken with the last vector of this one, so tiles follow each other without a gap.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`; ``rows`` a multiple of ``cols``.

    Attributes
    ----------
    layer : ``In(LayerSignature(config))``
        The running layer (``op``, ``k_tiles``, ``zw``, the ``add`` fields).
    x : ``In(stream.Signature(activation_stream_layout(config)))``
        Activation vectors, each tile's last marked, as the array takes them.
    w : ``In(stream.Signature(weight_stream_layout(config)))``
        One weight word per tile.
    acc : ``Out(stream.Signature(accumulator_stream_layout(config), always_ready=True))``
        One beat per vector, ``config.vector_latency`` cycles after its handshake.
    """

    def __init__(self, config: ArrayConfig):
        config.require_whole_column_tiles("the vector unit")
        super().__init__(config, {"layer": In(LayerSignature(config)), **unit_members(config)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        ratio = cfg.rows // cfg.cols
        desc, launch = self.layer.desc, self.layer.launch
        x_fire = self.x.valid & self.x.ready
        tile_end = x_fire & self.x.payload.last

        # The tile's weight word: taken before its first vector, the next with its last.
        weights = Signal(data.ArrayLayout(cfg.data_shape, cfg.cols), reset_less=True)
        w_zero = Signal(cfg.data_shape, reset_less=True)
        have = Signal()
        m.d.comb += [self.x.ready.eq(have), self.w.ready.eq(~have | tile_end)]
        with m.If(self.w.valid & self.w.ready):
            m.d.sync += [weights.eq(self.w.payload.data), w_zero.eq(self.w.payload.zero),
                         have.eq(1)]
        with m.Elif(tile_end):
            m.d.sync += have.eq(0)

        incoming = self.layer.incoming
        # Where the tile loop is: K tile (tap) and the column tile's lanes in the word.
        # Whether kt is the last and whether it is 1 (an add's second tap), registered beside
        # it (hw.pipeline.next_is_last).
        kt = Signal.like(desc.k_tiles)
        last_kt, kt_one = Signal(), Signal()
        k_end = loop_end(m, self.layer, "k_tiles")
        lanes = Signal(range(max(ratio, 2)))
        with m.If(launch):
            m.d.sync += [kt.eq(0), last_kt.eq(k_end.first_single), kt_one.eq(0),
                         lanes.eq(0)]
        with m.Elif(tile_end):
            m.d.sync += [last_kt.eq(next_is_last(kt, last_kt, k_end)),
                         kt_one.eq(~last_kt & (kt == 0))]
            with m.If(last_kt):
                m.d.sync += [kt.eq(0), lanes.eq(Mux(lanes == ratio - 1, 0, lanes + 1))]
            with m.Else():
                m.d.sync += kt.eq(kt + 1)

        adds = cfg.has_multiplier
        is_add = layer_register(m, self.layer, (incoming.op == OP_ADD) if adds else Const(0),
                                name="is_add")
        second = is_add & kt_one
        zero = Mux(second, layer_register(m, self.layer, incoming.zx2, name="zx2"),
                   self.x.payload.zero)
        latency = cfg.vector_latency
        if adds:
            add = delay_line(m, is_add, latency, name="add")  # add[k]: beside stage k
            shift = delay_line(m, Mux(second, desc.shift_b, desc.shift_a), _SUMMED - 2,
                               name="shift")[-1]
            # RoundingDivideByPOT's exponent, then its divisor's masks, ready beside the
            # rescaled value (stage 7).
            right_early = Signal(5, name="right_early", reset_less=True)
            m.d.sync += right_early.eq((-shift).as_unsigned()[:5])
            right, half, below_half = rounding_divisor(m, right_early, name="divisor")

        for c in range(cfg.cols):
            # Stage 1: the lane's channel less its zero point, and what it multiplies.
            value = Signal(cfg.operand_shape, name=f"value{c}", reset_less=True)
            factor = Signal(signed(32) if adds else cfg.operand_shape, name=f"factor{c}",
                            reset_less=True)
            m.d.sync += [value.eq(self.x.payload.data[lanes * cfg.cols + c] - zero),
                         factor.eq(weights[c] - w_zero)]
            if adds:
                with m.If(is_add):
                    m.d.sync += factor.eq(Mux(second, desc.m0_b, desc.m0_a))
            # Stages 2–5: the product, in DSP blocks with their registers (hw.multiplier); a
            # 32-bit factor as two 16-bit halves. Stage 6: the halves summed.
            if adds:
                low = registered_product(m, value, factor[:16], platform=platform,
                                         name=f"product_lo{c}")
                high_half = registered_product(m, value, factor[16:].as_signed(),
                                               platform=platform, name=f"product_hi{c}")
                whole = low + (high_half << 16)
            else:
                whole = registered_product(m, value, factor, platform=platform,
                                           name=f"product{c}")
            product = Signal(signed(cfg.operand_shape.width + 32) if adds else whole.shape(),
                             name=f"product{c}", reset_less=True)
            m.d.sync += product.eq(whole)
            result = Signal(cfg.acc_shape, name=f"result{c}", reset_less=True)
            if adds:
                # Stage 7: an add's SRDHM of the product shifted left by 20; other products
                # pass through. Stages 8–10: RoundingDivideByPOT, the quotient in two steps
                # beside the rounding bit, then their sum (as the requantizer's).
                rescaled = Signal(signed(32), name=f"rescaled{c}", reset_less=True)
                m.d.sync += rescaled.eq(Mux(add[_SUMMED], srdhm(product << ADD_LEFT_SHIFT),
                                            product))
                quotient = shift_in_stages(m, rescaled, right, signed(32), left=False,
                                           name=f"quotient{c}")
                round_up = rounds_away(m, rescaled, half, below_half, name=f"round_up{c}")
                undivided = delay_line(m, rescaled, 2, name=f"undivided{c}")[-1]
                m.d.sync += result.eq(Mux(add[latency - 1], quotient + round_up, undivided))
            else:
                m.d.comb += result.eq(product)
            m.d.comb += self.acc.payload.data[c].eq(result)

        m.d.comb += [
            self.acc.valid.eq(valid_delayed(m, x_fire, cfg.vector_latency, name="acc_valid")),
            self.acc.payload.last.eq(delay_line(m, self.x.payload.last, cfg.vector_latency,
                                                name="acc_last")[-1]),
        ]
        return m
