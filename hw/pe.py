"""Processing element of the weight-stationary array."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .config import ArrayConfig
from .multiplier import registered_product


def activation_layout(config: ArrayConfig) -> data.StructLayout:
    """An activation moving right: the zero-point-corrected value and the weight bank the
    vector it belongs to uses, so bank switches ride the wavefront with the data."""
    return data.StructLayout({"value": config.operand_shape, "bank": 1})


def weight_load_layout(config: ArrayConfig) -> data.StructLayout:
    """``weight_load_rows`` weights moving down their column's load pipeline, rows
    ``beat·weight_load_rows + i`` of a tile, each captured by the PE of its row."""
    return data.StructLayout({
        "values": data.ArrayLayout(config.operand_shape, config.weight_load_rows),
        "bank": 1,
        "beat": unsigned(max(1, (config.rows // config.weight_load_rows - 1).bit_length())),
        "valid": 1,
    })


def row_layout(config: ArrayConfig) -> data.StructLayout:
    """A PE's row, as the beat of a tile's load that carries its weight and which of the
    beat's values it is."""
    per_beat = config.weight_load_rows
    return data.StructLayout({
        **({"value": unsigned((per_beat - 1).bit_length())} if per_beat > 1 else {}),
        "beat": weight_load_layout(config)["beat"].shape,
    })


class ProcessingElement(ConfiguredComponent):
    """One multiply-accumulate cell: ``psum_out = psum_in + x · w[x.bank]``.

    Two weight registers (banks) make weights double-buffered: the load pipeline writes the
    bank that in-flight activations are not using, and every activation carries the bank it
    multiplies with. Activations and loads are forwarded through registers, so every wire in
    the array is local.

    Every PE of an array is the same design, so a generated array instantiates one module
    (:mod:`hw.cells`); its row is an input, tied to a constant.

    Parameters
    ----------
    config : the array's :class:`~hw.config.ArrayConfig`.

    Attributes
    ----------
    row : this PE's row (constant, :func:`row_layout`); it captures the weight loads
        addressed to it.
    x_in, x_out : activation from the left / to the right (one cycle later).
    load_in, load_out : weight-load pipeline from above / below (one cycle later).
    psum_in, psum_out : partial sum from above / to below. ``psum_out`` follows ``x_in`` by
        one cycle, or by ``1 + config.product_latency`` with ``config.pipelined_product``
        (the operands registered, then the product registered as a DSP block registers it,
        :mod:`hw.multiplier`).
    """

    def __init__(self, config: ArrayConfig):
        act, load, acc = activation_layout(config), weight_load_layout(config), config.acc_shape
        super().__init__(config, {
            "row": In(row_layout(config)),
            "x_in": In(act), "x_out": Out(act),
            "load_in": In(load), "load_out": Out(load),
            "psum_in": In(acc), "psum_out": Out(acc),
        })

    def elaborate(self, platform):
        m = Module()
        config = self.config
        # Datapath registers carry no reset: only the load pipeline's valid bit needs one.
        banks = [Signal(config.operand_shape, name=f"w{b}", reset_less=True) for b in range(2)]
        x_reg = Signal.like(self.x_in, reset_less=True)
        psum = Signal.like(self.psum_out, reset_less=True)
        m.d.comb += [self.x_out.eq(x_reg), self.psum_out.eq(psum)]
        m.d.sync += [x_reg.eq(self.x_in), self.load_out.eq(self.load_in)]
        value = self.load_in.values[self.row.value] if config.weight_load_rows > 1 \
            else self.load_in.values[0]
        with m.If(self.load_in.valid & (self.load_in.beat == self.row.beat)):
            with m.If(self.load_in.bank):
                m.d.sync += banks[1].eq(value)
            with m.Else():
                m.d.sync += banks[0].eq(value)

        weight = Mux(self.x_in.bank, banks[1], banks[0])
        if config.pipelined_product:
            # The operands are registered in the fabric first, the weight as its bank is
            # chosen, so what reaches the DSP block's input registers is a register that can
            # sit beside the block, not a multiplexer between the weight banks and the block's
            # row (measured: a 5.3 ns route from that multiplexer set the clock).
            operands = [Signal.like(value, name=f"{name}_operand", reset_less=True)
                        for value, name in ((self.x_in.value, "x"), (weight, "w"))]
            m.d.sync += [operands[0].eq(self.x_in.value), operands[1].eq(weight)]
            product = registered_product(m, *operands, platform=platform, name="product")
        else:
            product = self.x_in.value * weight
        m.d.sync += psum.eq(self.psum_in + product)
        return m
