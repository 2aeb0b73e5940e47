"""The array ``mxugen bench fpga`` measures the generator against: the weight-stationary int8
MAC array anyone would write in an afternoon, built from the same configuration's rows,
columns and widths, with no requantizer and no pipelining inside a PE."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .config import ArrayConfig

__all__ = ["NaiveMacArray"]


class NaiveMacArray(ConfiguredComponent):
    """``rows × cols`` PEs, each ``psum_out = psum_in + x · w`` in one cycle: the int8 product
    is added into the int32 partial sum in the cycle it is formed.

    Weights shift down the columns while ``load`` is high (row ``rows − 1`` first);
    activations enter row ``r`` at the left and move one PE right a cycle; partial sums move
    one PE down a cycle and leave the bottom row as ``sums``. Only ``rows``, ``cols`` and the
    operand and accumulator shapes of ``config`` are used.

    Attributes
    ----------
    x : one activation per row, entering at the left.
    w, load : one weight per column entering at the top, shifted in while ``load``.
    sums : one partial sum per column leaving the bottom.
    """

    def __init__(self, config: ArrayConfig):
        super().__init__(config, {
            "x": In(config.data_shape).array(config.rows),
            "w": In(config.data_shape).array(config.cols),
            "load": In(1),
            "sums": Out(config.acc_shape).array(config.cols),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        weights = [[Signal(cfg.data_shape, name=f"w_{r}_{c}") for c in range(cfg.cols)]
                   for r in range(cfg.rows)]
        xs = [[Signal(cfg.data_shape, name=f"x_{r}_{c}") for c in range(cfg.cols)]
              for r in range(cfg.rows)]
        psums = [[Signal(cfg.acc_shape, name=f"psum_{r}_{c}") for c in range(cfg.cols)]
                 for r in range(cfg.rows)]
        for r in range(cfg.rows):
            for c in range(cfg.cols):
                with m.If(self.load):
                    m.d.sync += weights[r][c].eq(self.w[c] if r == 0 else weights[r - 1][c])
                x_in = self.x[r] if c == 0 else xs[r][c - 1]
                psum_in = 0 if r == 0 else psums[r - 1][c]
                m.d.sync += [xs[r][c].eq(x_in), psums[r][c].eq(psum_in + x_in * weights[r][c])]
        m.d.comb += [self.sums[c].eq(psums[-1][c]) for c in range(cfg.cols)]
        return m
