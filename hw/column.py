"""One column of the systolic array: the unit a generated array repeats."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from .cells import place
from .component import ConfiguredComponent
from .config import ArrayConfig
from .pe import ProcessingElement, activation_layout, weight_load_layout

__all__ = ["ArrayColumn"]


class ArrayColumn(ConfiguredComponent):
    """``rows`` :class:`~hw.pe.ProcessingElement` stacked: the weight-load pipeline and the
    partial sums run down the column, activations cross it from left to right.

    Every column of an array is the same design and every PE of a column differs only in its
    row, so a generated array is one column module instantiated ``cols`` times and one PE
    module instantiated ``rows`` times in it (:mod:`hw.cells`): its Verilog and the work to
    generate it grow with ``rows + cols`` modules' worth of logic, not ``rows × cols``.

    Parameters
    ----------
    config : the array's :class:`~hw.config.ArrayConfig`.

    Attributes
    ----------
    x_in, x_out : one activation a row (:func:`~hw.pe.activation_layout`), from the left / to
        the right, each one cycle later than it came in.
    load_in : the weight-load pipeline into the top PE (:func:`~hw.pe.weight_load_layout`).
    psum_out : the bottom PE's partial sum.
    """

    def __init__(self, config: ArrayConfig):
        acts = data.ArrayLayout(activation_layout(config), config.rows)
        super().__init__(config, {
            "x_in": In(acts), "x_out": Out(acts),
            "load_in": In(weight_load_layout(config)),
            "psum_out": Out(config.acc_shape),
        })

    def elaborate(self, platform):
        m = Module()
        above = None
        for r in range(self.config.rows):
            pe = ProcessingElement(self.config)
            place(m, f"pe{r}", pe, platform, key="pe")
            m.d.comb += [
                pe.row.eq(r),  # beat r // weight_load_rows, value r % weight_load_rows
                pe.x_in.eq(self.x_in[r]),
                self.x_out[r].eq(pe.x_out),
                pe.load_in.eq(self.load_in if above is None else above.load_out),
                pe.psum_in.eq(0 if above is None else above.psum_out),
            ]
            above = pe
        m.d.comb += self.psum_out.eq(above.psum_out)
        return m
