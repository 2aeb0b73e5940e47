"""The memory streamer reads one-word ranges back to back at one word per cycle (the
activation stream of implicit im2col) and hands each word out with its range's tag; from a
memory of two words a row (the weight memory), a row a beat or a word a beat."""

from __future__ import annotations

import numpy as np
from hwsim import simulate, with_rom

from hw.memstream import MemoryStreamer

DEPTH, WIDTH = 64, 16


def _run(commands, words, rng, *, always_ready: bool):
    dut = MemoryStreamer(addr_width=6, count_width=8, word_width=WIDTH, tag_width=1)
    top = with_rom(dut, words, WIDTH, DEPTH, dut.addr, dut.data)
    seen, cycles = [], []

    async def testbench(ctx):
        pending, cycle, first, last = list(commands), 0, None, None
        total = sum(count for _, count, _ in commands)
        while len(seen) < total:
            ctx.set(dut.cmd.valid, int(bool(pending)))
            if pending:
                base, count, tag = pending[0]
                ctx.set(dut.cmd.payload, {"base": base, "count": count, "tag": tag})
            ctx.set(dut.words.ready, 1 if always_ready else int(rng.integers(3) > 0))
            if ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready):
                pending.pop(0)
            if ctx.get(dut.words.valid) and ctx.get(dut.words.ready):
                word = ctx.get(dut.words.payload)
                seen.append((word & ((1 << WIDTH) - 1), word >> WIDTH))
                first = cycle if first is None else first
                last = cycle
            await ctx.tick()
            cycle += 1
        cycles.append(last - first + 1)

    simulate(top, testbench)
    return seen, cycles[0]


def test_one_word_ranges_stream_at_full_rate_with_their_tags(seed):
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 1 << WIDTH, DEPTH).tolist()
    commands = [(int(rng.integers(DEPTH)), 1, int(rng.integers(2))) for _ in range(40)]
    seen, cycles = _run(commands, words, rng, always_ready=True)
    assert seen == [(words[base], tag) for base, _, tag in commands]
    assert cycles == len(commands)  # no gap between one-word ranges


def test_ranges_and_tags_survive_backpressure(seed):
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 1 << WIDTH, DEPTH).tolist()
    commands = [(int(rng.integers(DEPTH - 5)), int(rng.integers(1, 5)), int(rng.integers(2)))
                for _ in range(20)]
    seen, _ = _run(commands, words, rng, always_ready=False)
    assert seen == [(words[base + i], tag) for base, count, tag in commands
                    for i in range(count)]


def test_a_memory_of_two_words_a_row_streams_rows_or_single_words(seed):
    """Word ``a`` sits in row ``a // 2``, the even one in the low bits. A wide range comes
    out a row a beat, a narrow one a word a beat (any base, odd ones included), in the low
    bits; under backpressure, mixed back to back."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 1 << WIDTH, DEPTH).tolist()
    rows = [words[a] | words[a + 1] << WIDTH for a in range(0, DEPTH, 2)]
    dut = MemoryStreamer(addr_width=6, count_width=8, word_width=WIDTH, words_per_read=2)
    top = with_rom(dut, rows, 2 * WIDTH, DEPTH // 2, dut.addr, dut.data)
    commands = []
    for _ in range(24):
        if rng.integers(2):
            commands.append((2 * int(rng.integers(DEPTH // 2 - 4)), 2 * int(rng.integers(1, 4)),
                             1))
        else:
            commands.append((int(rng.integers(DEPTH - 5)), int(rng.integers(1, 5)), 0))
    expected = [rows[(base + i) // 2] if wide else words[base + i]
                for base, count, wide in commands for i in range(0, count, 1 + wide)]
    seen = []

    async def testbench(ctx):
        pending = list(commands)
        for _ in range(2000):
            ctx.set(dut.cmd.valid, int(bool(pending)))
            if pending:
                base, count, wide = pending[0]
                ctx.set(dut.cmd.payload, {"base": base, "count": count, "wide": wide})
            ctx.set(dut.words.ready, int(rng.integers(3) > 0))
            if ctx.get(dut.cmd.valid) and ctx.get(dut.cmd.ready):
                pending.pop(0)
            if ctx.get(dut.words.valid) and ctx.get(dut.words.ready):
                seen.append(ctx.get(dut.words.payload))
            await ctx.tick()
            if len(seen) == len(expected):
                return

    simulate(top, testbench)
    assert seen == expected
