"""The memory streamer reads one-word ranges back to back at one word per cycle (the
activation stream of implicit im2col) and hands each word out with its range's tag; from a
memory of several words a row (the weight and activation memories), a row, half a row
or a word a beat."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim import simulate, with_rom

from hw.memstream import MemoryStreamer

DEPTH, WIDTH = 64, 16
#: A bare read port's latency, and the accelerator's (the read registered once more).
LATENCIES = pytest.mark.parametrize("latency", [1, 2])


def _run(commands, words, rng, *, always_ready: bool, latency: int):
    dut = MemoryStreamer(addr_width=6, count_width=8, word_width=WIDTH, tag_width=1,
                         read_latency=latency)
    top = with_rom(dut, words, WIDTH, DEPTH, dut.addr, dut.data, registered=latency == 2)
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


@LATENCIES
def test_one_word_ranges_stream_at_full_rate_with_their_tags(seed, latency):
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 1 << WIDTH, DEPTH).tolist()
    commands = [(int(rng.integers(DEPTH)), 1, int(rng.integers(2))) for _ in range(40)]
    seen, cycles = _run(commands, words, rng, always_ready=True, latency=latency)
    assert seen == [(words[base], tag) for base, _, tag in commands]
    assert cycles == len(commands)  # no gap between one-word ranges


@LATENCIES
def test_ranges_and_tags_survive_backpressure(seed, latency):
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 1 << WIDTH, DEPTH).tolist()
    commands = [(int(rng.integers(DEPTH - 5)), int(rng.integers(1, 5)), int(rng.integers(2)))
                for _ in range(20)]
    seen, _ = _run(commands, words, rng, always_ready=False, latency=latency)
    assert seen == [(words[base + i], tag) for base, count, tag in commands
                    for i in range(count)]


@LATENCIES
@pytest.mark.parametrize("per_row", [2, 4])
def test_a_memory_of_several_words_a_row_streams_rows_parts_or_words(per_row, seed, latency):
    """Word ``a`` sits in row ``a // per_row``, the first in the low bits. A range of span
    ``s`` comes out ``2**s`` words a beat from its (aligned) base, in the low bits: a row, half
    a row, or a word (any base); under backpressure, mixed back to back."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 1 << WIDTH, DEPTH).tolist()
    rows = [sum(words[a + i] << (i * WIDTH) for i in range(per_row))
            for a in range(0, DEPTH, per_row)]
    dut = MemoryStreamer(addr_width=6, count_width=8, word_width=WIDTH, words_per_read=per_row,
                         read_latency=latency)
    top = with_rom(dut, rows, per_row * WIDTH, DEPTH // per_row, dut.addr, dut.data,
                   registered=latency == 2)
    spans = range((per_row - 1).bit_length() + 1)
    commands = []
    for _ in range(30):
        span = int(rng.choice(spans))
        step = 1 << span
        count = step * int(rng.integers(1, 4))
        commands.append((step * int(rng.integers((DEPTH - count) // step + 1)), count, span))
    # A beat's words from its base, and past them the rest of its row (unused).
    expected = [sum(words[base + i + j] << (j * WIDTH)
                    for j in range(per_row - (base + i) % per_row))
                for base, count, span in commands for i in range(0, count, 1 << span)]
    seen = []

    async def testbench(ctx):
        pending = list(commands)
        for _ in range(3000):
            ctx.set(dut.cmd.valid, int(bool(pending)))
            if pending:
                base, count, span = pending[0]
                ctx.set(dut.cmd.payload, {"base": base, "count": count, "span": span})
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
