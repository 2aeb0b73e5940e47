"""Memory → stream: read ranges of a memory out as a valid/ready stream at one word per cycle."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out


def range_command_layout(addr_width: int, count_width: int,
                         tag_width: int = 0) -> data.StructLayout:
    """Read ``count`` words starting at ``base``; with ``tag_width``, a ``tag`` that comes out
    with each of the range's words."""
    return data.StructLayout({"base": unsigned(addr_width), "count": unsigned(count_width),
                              **({"tag": unsigned(tag_width)} if tag_width else {})})


class MemoryStreamer(wiring.Component):
    """Turns range commands into a stream of the words a synchronous read port returns.

    A small FIFO absorbs the port's one-cycle read latency, so the output runs at full rate
    and still honours backpressure. Drive a :class:`amaranth.lib.memory.ReadPort` with
    ``addr``/``en`` and feed its ``data`` back.

    Attributes
    ----------
    cmd : stream of :func:`range_command_layout`; accepted as the previous range's last word
        is issued, so back-to-back ranges stream without a gap (ranges of one word included:
        one command per cycle reads one word per cycle).
    words : stream of memory words, in address order; with ``tag_width``, ``Cat(word, tag)``.
    """

    FIFO_DEPTH = 8  # credit must cover the read + FIFO round trip (~4 cycles)

    def __init__(self, *, addr_width: int, count_width: int, word_width: int,
                 tag_width: int = 0):
        self._word_width = word_width
        self._tag_width = tag_width
        super().__init__({
            "cmd": In(stream.Signature(range_command_layout(addr_width, count_width,
                                                            tag_width))),
            "words": Out(stream.Signature(unsigned(word_width + tag_width))),
            "addr": Out(addr_width),
            "en": Out(1),
            "data": In(word_width),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(
            width=self._word_width + self._tag_width, depth=self.FIFO_DEPTH)
        addr = Signal.like(self.addr)
        remaining = Signal.like(self.cmd.payload.count)
        in_flight = Signal()  # a read issued last cycle lands in the FIFO this cycle
        tag, tag_in_flight = Signal(self._tag_width), Signal(self._tag_width)
        issue = (remaining != 0) & (buf.level + in_flight < self.FIFO_DEPTH - 1)
        m.d.comb += [
            # The next range may start in the cycle the last word of this one is issued.
            self.cmd.ready.eq((remaining == 0) | (issue & (remaining == 1))),
            self.addr.eq(addr),
            self.en.eq(issue),
            buf.w_data.eq(Cat(self.data, tag_in_flight) if self._tag_width else self.data),
            buf.w_en.eq(in_flight),
            self.words.payload.eq(buf.r_data),
            self.words.valid.eq(buf.r_rdy),
            buf.r_en.eq(self.words.ready),
        ]
        m.d.sync += in_flight.eq(issue)
        if self._tag_width:
            m.d.sync += tag_in_flight.eq(tag)
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [addr.eq(self.cmd.payload.base), remaining.eq(self.cmd.payload.count)]
            if self._tag_width:
                m.d.sync += tag.eq(self.cmd.payload.tag)
        with m.Elif(issue):
            m.d.sync += [addr.eq(addr + 1), remaining.eq(remaining - 1)]
        return m
