"""Memory → stream: read ranges of a memory out as a valid/ready stream at one read per cycle."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .pipeline import delayed


def range_command_layout(addr_width: int, count_width: int, tag_width: int = 0,
                         words_per_read: int = 1) -> data.StructLayout:
    """Read ``count`` words starting at ``base``; with ``tag_width``, a ``tag`` that comes out
    with each of the range's words; from a memory of ``words_per_read`` words a row, a
    ``span``: the range comes out ``2**span`` words a beat (a whole row at most)."""
    span = (words_per_read - 1).bit_length()
    return data.StructLayout({"base": unsigned(addr_width), "count": unsigned(count_width),
                              **({"tag": unsigned(tag_width)} if tag_width else {}),
                              **({"span": span} if span else {})})


class MemoryStreamer(wiring.Component):
    """Turns range commands into a stream of the words a synchronous read port returns.

    A small FIFO absorbs the read's latency (``read_latency`` cycles from ``addr`` to
    ``data``: 1 for a bare synchronous read port, 2 with :func:`~hw.block_ram.registered_read`
    after it), so the output runs at full rate and still honours backpressure. Drive a
    :class:`amaranth.lib.memory.ReadPort` with ``addr``/``en`` and feed its (registered)
    ``data`` back.

    The FIFO hands its words out through a skid register, so that it is read on a register
    (the skid register empty), not on the consumer's ready: ready comes from far (a unit's
    tile loop) and would otherwise enable the FIFO's pointers, level and output register in
    the same cycle. A word passes the empty skid register in the cycle it leaves the FIFO:
    no latency.

    A memory may keep ``words_per_read`` (1, 2 or 4) consecutive words a row (word ``a`` in
    row ``a // words_per_read``, the first in the low bits). Ranges count words; a range of
    ``span`` ``s`` (its base and count multiples of ``2**s``) comes out ``2**s`` words a beat,
    in the low bits: a whole row, half of one, or a word.

    Attributes
    ----------
    cmd : stream of :func:`range_command_layout`; accepted as the previous range's last word
        is issued, so back-to-back ranges stream without a gap (ranges of one word included:
        one command per cycle reads one word per cycle).
    words : stream of memory rows (or words, in the low bits), in address order; with
        ``tag_width``, ``Cat(row, tag)``.
    """

    FIFO_DEPTH = 8  # credit must cover the read + FIFO round trip (~5 cycles)

    def __init__(self, *, addr_width: int, count_width: int, word_width: int,
                 tag_width: int = 0, words_per_read: int = 1, read_latency: int = 1):
        if words_per_read not in (1, 2, 4):
            raise ValueError(f"words_per_read must be 1, 2 or 4, got {words_per_read!r}")
        if read_latency not in (1, 2):
            raise ValueError(f"read_latency must be 1 or 2, got {read_latency!r}")
        self._latency = read_latency
        self._word_width = word_width
        self._tag_width = tag_width
        self._per_read = words_per_read
        row_width = word_width * words_per_read
        super().__init__({
            "cmd": In(stream.Signature(range_command_layout(addr_width, count_width,
                                                            tag_width, words_per_read))),
            "words": Out(stream.Signature(unsigned(row_width + tag_width))),
            "addr": Out(max(1, addr_width - (words_per_read - 1).bit_length())),
            "en": Out(1),
            "data": In(row_width),
        })

    def elaborate(self, platform):
        m = Module()
        per_read, width = self._per_read, self._word_width
        # A read's row goes into the FIFO with its tag; with several words a row, shifted as
        # it goes in so that the word the read starts at is the low one (the shift is not on
        # the way out, where the consumer's path begins).
        extra = (per_read - 1).bit_length()
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(
            width=width * per_read + self._tag_width, depth=self.FIFO_DEPTH)
        addr = Signal.like(self.cmd.payload.base)
        remaining = Signal.like(self.cmd.payload.count)
        # Whether no word of the range is left to read, and whether one read is: registered
        # beside `remaining`, so that a read's enable and the next command's ready are a LUT
        # or two from registers, not a compare of the whole count.
        idle, final = Signal(init=1), Signal()
        # Reads issued and not yet taken out of the FIFO (in flight or in it): the FIFO has
        # room for every one of them.
        held = Signal(range(self.FIFO_DEPTH + 1))
        # Whether the FIFO has room for one more, registered beside `held`: a read's enable is
        # then a LUT from two registers.
        room = Signal(init=1)
        # in_flight[-1]: a read issued read_latency cycles ago lands in the FIFO this cycle.
        in_flight = [Signal(name=f"in_flight{i + 1}") for i in range(self._latency)]
        tag = Signal(self._tag_width)
        issue = ~idle & room
        # The skid register: a word the consumer did not take in the cycle it left the FIFO.
        skid = Signal(len(self.words.payload), reset_less=True)
        skid_full = Signal()
        taken = buf.r_rdy & ~skid_full  # a word leaves the FIFO
        row, out = self.data, buf.r_data[:width * per_read]
        if per_read > 1:
            span = Signal(extra)
            step = Const(1, per_read.bit_length()) << span
            first_step = Const(1, per_read.bit_length()) << self.cmd.payload.span
            # The read's words from the one its address selected, in the low bits.
            row = self.data >> (delayed(m, addr[:extra], self._latency, name="offset") * width)
            with m.If(self.cmd.valid & self.cmd.ready):
                m.d.sync += span.eq(self.cmd.payload.span)
        else:
            step = first_step = 1
        word = Cat(out, buf.r_data[width * per_read:]) if self._tag_width else out
        m.d.comb += [
            # The next range may start in the cycle the last word of this one is issued.
            self.cmd.ready.eq(idle | (issue & final)),
            self.addr.eq(addr[extra:]),
            self.en.eq(issue),
            buf.w_data.eq(Cat(row, delayed(m, tag, self._latency, name="tag_in_flight"))
                          if self._tag_width else row),
            buf.w_en.eq(in_flight[-1]),
            buf.r_en.eq(~skid_full),
            self.words.valid.eq(skid_full | buf.r_rdy),
            self.words.payload.eq(Mux(skid_full, skid, word)),
        ]
        with m.If(~skid_full):
            m.d.sync += skid.eq(word)
        m.d.sync += skid_full.eq(self.words.valid & ~self.words.ready)
        m.d.sync += [*[stage.eq(before) for stage, before in zip(in_flight, [issue, *in_flight])],
                     held.eq(held + issue - taken),
                     room.eq(held + issue - taken < self.FIFO_DEPTH - 1)]
        with m.If(self.cmd.valid & self.cmd.ready):
            count = self.cmd.payload.count
            m.d.sync += [addr.eq(self.cmd.payload.base), remaining.eq(count),
                         idle.eq(count == 0), final.eq(count == first_step)]
            if self._tag_width:
                m.d.sync += tag.eq(self.cmd.payload.tag)
        with m.Elif(issue):
            m.d.sync += [addr.eq(addr + step), remaining.eq(remaining - step), idle.eq(final),
                         final.eq(remaining == step << 1)]
        return m
