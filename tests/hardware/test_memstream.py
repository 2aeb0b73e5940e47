"""The memory streamer reads one-word ranges back to back at one word per cycle (the
activation stream of implicit im2col) and hands each word out with its range's tag."""

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
