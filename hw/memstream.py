"""Memory → stream: read ranges of a memory out as a valid/ready stream at one word per cycle."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out


def range_command_layout(addr_width: int, count_width: int) -> data.StructLayout:
    """Read ``count`` words starting at ``base``."""
    return data.StructLayout({"base": unsigned(addr_width), "count": unsigned(count_width)})


class MemoryStreamer(wiring.Component):
    """Turns range commands into a stream of the words a synchronous read port returns.

    A small FIFO absorbs the port's one-cycle read latency, so the output runs at full rate
    and still honours backpressure. Drive a :class:`amaranth.lib.memory.ReadPort` with
    ``addr``/``en`` and feed its ``data`` back.

    Attributes
    ----------
    cmd : stream of :func:`range_command_layout`; accepted as the previous range's last word
        is issued, so back-to-back ranges stream without a gap.
    words : stream of memory words, in address order.
    """

    FIFO_DEPTH = 8  # credit must cover the read + FIFO round trip (~4 cycles)

    def __init__(self, *, addr_width: int, count_width: int, word_width: int):
        self._word_width = word_width
        super().__init__({
            "cmd": In(stream.Signature(range_command_layout(addr_width, count_width))),
            "words": Out(stream.Signature(unsigned(word_width))),
            "addr": Out(addr_width),
            "en": Out(1),
            "data": In(word_width),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(width=self._word_width,
                                                       depth=self.FIFO_DEPTH)
        addr = Signal.like(self.addr)
        remaining = Signal.like(self.cmd.payload.count)
        in_flight = Signal()  # a read issued last cycle lands in the FIFO this cycle
        issue = (remaining != 0) & (buf.level + in_flight < self.FIFO_DEPTH - 1)
        m.d.comb += [
            # The next range may start in the cycle the last word of this one is issued.
            self.cmd.ready.eq((remaining == 0) | (issue & (remaining == 1))),
            self.addr.eq(addr),
            self.en.eq(issue),
            buf.w_data.eq(self.data),
            buf.w_en.eq(in_flight),
            self.words.payload.eq(buf.r_data),
            self.words.valid.eq(buf.r_rdy),
            buf.r_en.eq(self.words.ready),
        ]
        m.d.sync += in_flight.eq(issue)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [addr.eq(self.cmd.payload.base), remaining.eq(self.cmd.payload.count)]
        with m.Elif(issue):
            m.d.sync += [addr.eq(addr + 1), remaining.eq(remaining - 1)]
        return m
