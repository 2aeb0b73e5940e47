"""Processing element of the weight-stationary array."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .config import ArrayConfig


def activation_layout(config: ArrayConfig) -> data.StructLayout:
    """An activation moving right: the zero-point-corrected value and the weight bank the
    vector it belongs to uses, so bank switches ride the wavefront with the data."""
    return data.StructLayout({"value": config.operand_shape, "bank": 1})


def weight_load_layout(config: ArrayConfig) -> data.StructLayout:
    """A weight moving down its column's load pipeline, captured by the PE of row ``row``."""
    return data.StructLayout({
        "value": config.operand_shape,
        "bank": 1,
        "row": unsigned(max(1, (config.rows - 1).bit_length())),
        "valid": 1,
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
    row : this PE's row (constant); it captures the weight loads addressed to it.
    x_in, x_out : activation from the left / to the right (one cycle later).
    load_in, load_out : weight-load pipeline from above / below (one cycle later).
    psum_in, psum_out : partial sum from above / to below. ``psum_out`` follows ``x_in`` by
        one cycle, or two with ``config.pipelined_product`` (the product is registered).
    """

    def __init__(self, config: ArrayConfig):
        act, load, acc = activation_layout(config), weight_load_layout(config), config.acc_shape
        super().__init__(config, {
            "row": In(load["row"].shape),
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
        with m.If(self.load_in.valid & (self.load_in.row == self.row)):
            with m.If(self.load_in.bank):
                m.d.sync += banks[1].eq(self.load_in.value)
            with m.Else():
                m.d.sync += banks[0].eq(self.load_in.value)

        product = self.x_in.value * Mux(self.x_in.bank, banks[1], banks[0])
        if config.pipelined_product:
            registered = Signal(product.shape(), reset_less=True)
            m.d.sync += registered.eq(product)
            product = registered
        m.d.sync += psum.eq(self.psum_in + product)
        return m
