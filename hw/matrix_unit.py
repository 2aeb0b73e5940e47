"""The matrix unit: systolic array followed by the requantizer, int8 in, int8 out."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .component import ConfiguredComponent
from .array import SystolicArray, activation_stream_layout, weight_stream_layout
from .config import ArrayConfig
from .requant import Requantizer, requant_output_layout, requant_params_layout


class MatrixUnit(ConfiguredComponent):
    """``y = requantize(x · W)`` for one weight tile at a time, at one vector per cycle.

    The requantization parameters are a plain input (like a layer's configuration registers):
    hold them stable while a tile's results are in flight, i.e. from its first activation until
    its last output. For K > ``rows`` the accelerator's sequencer accumulates partial sums
    between array and requantizer instead.

    Attributes
    ----------
    x, w : the :class:`~hw.array.SystolicArray` input streams.
    params : :func:`~hw.requant.requant_params_layout`, sampled as each result leaves the array.
    y : stream of :func:`~hw.requant.requant_output_layout`, no backpressure,
        ``config.array_latency + config.requant_latency`` cycles after the activation.
    """

    def __init__(self, config: ArrayConfig):
        super().__init__(config, {
            "x": In(stream.Signature(activation_stream_layout(config))),
            "w": In(stream.Signature(weight_stream_layout(config, config.weight_load_rows))),
            "params": In(requant_params_layout(config)),
            "y": Out(stream.Signature(requant_output_layout(config), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = SystolicArray(self.config)
        m.submodules.requant = requant = Requantizer(self.config)
        wiring.connect(m, wiring.flipped(self.x), array.x)
        wiring.connect(m, wiring.flipped(self.w), array.w)
        m.d.comb += [
            requant.i.valid.eq(array.acc.valid),
            requant.i.payload.data.eq(array.acc.payload.data),
            requant.i.payload.last.eq(array.acc.payload.last),
            requant.i.payload.params.eq(self.params),
        ]
        wiring.connect(m, requant.o, wiring.flipped(self.y))
        return m
