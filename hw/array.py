"""The weight-stationary systolic array (TPU v1 style; Gemmini's weight-stationary mode)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from .cells import place
from .column import ArrayColumn
from .component import ConfiguredComponent
from .config import ArrayConfig
from .pe import activation_layout, weight_load_layout
from .pipeline import delayed, valid_delayed


def activation_stream_layout(config: ArrayConfig) -> data.StructLayout:
    """One activation vector: ``data[r]`` feeds row ``r`` (reduction index k within the tile);
    ``zero`` is the input zero point; ``last`` marks the tile's final vector, after which the
    array switches to the next weight tile."""
    return data.StructLayout({
        "data": data.ArrayLayout(config.data_shape, config.rows),
        "zero": config.data_shape,
        "last": 1,
    })


def weight_stream_layout(config: ArrayConfig, rows: int = 1) -> data.StructLayout:
    """``rows`` consecutive rows of a weight tile: ``data[i·cols + c]`` is ``w[k + i, c]``; a
    tile is ``config.rows / rows`` beats, row 0 first. ``zero`` is the weight zero point (0
    for TFLite int8's symmetric weights)."""
    return data.StructLayout({
        "data": data.ArrayLayout(config.data_shape, config.cols * rows),
        "zero": config.data_shape,
    })


def accumulator_stream_layout(config: ArrayConfig) -> data.StructLayout:
    """One result vector: ``data[c] = Σ_k (x[k] − zx)·(w[k, c] − zw)``; ``last`` as sent."""
    return data.StructLayout({
        "data": data.ArrayLayout(config.acc_shape, config.cols),
        "last": 1,
    })


def unit_members(config: ArrayConfig, weight_rows: int = 1) -> dict:
    """The streams of a unit a layer runs on (the array, the vector unit, the window unit):
    activation vectors and weights (``weight_rows`` words a beat) in, result beats out with
    no backpressure."""
    return {"x": In(stream.Signature(activation_stream_layout(config))),
            "w": In(stream.Signature(weight_stream_layout(config, weight_rows))),
            "acc": Out(stream.Signature(accumulator_stream_layout(config), always_ready=True))}


class SystolicArray(ConfiguredComponent):
    """A ``rows × cols`` weight-stationary array of :class:`~hw.pe.ProcessingElement`.

    Activation vectors enter from the left, skewed one cycle per row; partial sums flow down;
    results leave the bottom de-skewed, one ``cols``-wide int32 vector per cycle at full rate.
    Zero points are subtracted once at the edges (inputs as they enter, weights as they load).

    Weights are double-buffered. While vectors use one bank, the next tile loads into the
    other, ``config.weight_load_rows`` rows a beat, through a per-column pipeline skewed like
    the activations (column ``c`` a cycle behind column ``c − 1``), so a load follows the
    last vector that used its bank down and across the array and may start the cycle after
    that vector. The bank a vector uses travels with it, so a tile switch needs no bubble;
    vectors of a tile are accepted from the cycle after its final weight beat. So loading is
    hidden whenever a tile is used for at least ``rows / weight_load_rows`` vectors.

    Parameters
    ----------
    config : :class:`~hw.config.ArrayConfig`.

    Attributes
    ----------
    x : stream of :func:`activation_stream_layout`; not ready while the tile it needs is
        still loading.
    w : stream of :func:`weight_stream_layout` (``weight_load_rows`` rows a beat); not ready
        while both banks hold tiles in use.
    acc : stream of :func:`accumulator_stream_layout`, ``config.array_latency`` cycles after the
        activation handshake. No backpressure: the consumer must take every beat.
    """

    def __init__(self, config: ArrayConfig):
        super().__init__(config, unit_members(config, config.weight_load_rows))

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        rows, cols = cfg.rows, cfg.cols

        # --- bank bookkeeping --------------------------------------------------------------
        per_beat = cfg.weight_load_rows
        x_bank = Signal()                  # bank the next activation vector multiplies with
        load_bank = Signal()               # bank the next weight beat is written to
        load_beat = Signal(range(max(rows // per_beat, 2)))
        loaded = Signal(2)                 # bank holds a complete tile not yet released
        m.d.comb += [
            self.w.ready.eq(~loaded.bit_select(load_bank, 1)),
            self.x.ready.eq(loaded.bit_select(x_bank, 1)),
        ]
        w_fire = self.w.valid & self.w.ready
        x_fire = self.x.valid & self.x.ready
        with m.If(w_fire):
            with m.If(load_beat == rows // per_beat - 1):
                m.d.sync += [load_beat.eq(0), load_bank.eq(~load_bank),
                             loaded.bit_select(load_bank, 1).eq(1)]
            with m.Else():
                m.d.sync += load_beat.eq(load_beat + 1)
        with m.If(x_fire & self.x.payload.last):
            m.d.sync += [x_bank.eq(~x_bank), loaded.bit_select(x_bank, 1).eq(0)]

        # --- edges: zero points subtracted once, then registered into the grid ---------------
        # A load reaches PE (r, c) r + c cycles after its edge, as the vectors do: skewed by
        # column, it overwrites a bank only after the bank's last vector has used it.
        load_edge = []
        for c in range(cols):
            packet = Signal(weight_load_layout(cfg), name=f"load_edge{c}")
            m.d.sync += [
                *[packet.values[i].eq(self.w.payload.data[i * cols + c] - self.w.payload.zero)
                  for i in range(per_beat)],
                packet.bank.eq(load_bank),
                packet.beat.eq(load_beat),
                packet.valid.eq(w_fire),
            ]
            skewed = Signal.like(packet, name=f"load_skewed{c}")
            # Only the valid bit is reset: no phantom load after reset.
            m.d.comb += [skewed.eq(delayed(m, packet, c, name=f"load_skew{c}")),
                         skewed.valid.eq(valid_delayed(m, packet.valid, c,
                                                       name=f"load_skew_valid{c}"))]
            load_edge.append(skewed)
        x_edge = []
        for r in range(rows):
            act = Signal(activation_layout(cfg), name=f"x_edge{r}", reset_less=True)
            m.d.sync += [act.value.eq(self.x.payload.data[r] - self.x.payload.zero),
                         act.bank.eq(x_bank)]
            x_edge.append(delayed(m, act, r, name=f"x_skew{r}"))

        # --- the grid: columns of PEs, activations crossing them left to right -------------
        columns = [ArrayColumn(cfg) for _ in range(cols)]
        for c, column in enumerate(columns):
            place(m, f"column{c}", column, platform, key="column")
            m.d.comb += column.load_in.eq(load_edge[c])
            if c:
                m.d.comb += column.x_in.eq(columns[c - 1].x_out)
            else:
                m.d.comb += [column.x_in[r].eq(x_edge[r]) for r in range(rows)]

        # --- bottom: de-skew so a whole vector leaves in one beat ---------------------------
        for c in range(cols):
            m.d.comb += self.acc.payload.data[c].eq(
                delayed(m, columns[c].psum_out, cols - 1 - c, name=f"deskew{c}"))
        latency = cfg.array_latency
        m.d.comb += [
            self.acc.valid.eq(valid_delayed(m, x_fire, latency, name="acc_valid")),
            self.acc.payload.last.eq(delayed(m, self.x.payload.last, latency, name="acc_last")),
        ]
        return m
