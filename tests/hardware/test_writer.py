"""The output writer puts requantized column tiles into activation memory in the layout the next
layer reads (docs/images.md), ``rows/cols`` tiles to a word, padding the last word's remaining
lanes with the output tensor's zero point (``zpad``), and reports the layer done as its last
beat is written; with ``out_blocks`` it writes each map in blocks of 2×2 pixels."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable
from hwsim import launch, simulate

from hw import ArrayConfig, ConfigError
from hw.contract import descriptor_format
from hw.writer import OutputWriter


def _signed(byte: int) -> int:
    return byte - 256 if byte >= 128 else byte


def _run(config, layer: dict, results: np.ndarray, rng, busy: float):
    """Launch ``layer``, feed ``results[nt, sample, col]`` with random gaps; return the memory
    the writes made (``{address: [lane or None]}``) and, per cycle, ``done`` and whether the
    last beat had been written by then. Each beat's write must come ``write_latency`` cycles
    after it."""
    desc = descriptor_format(config)
    dut = OutputWriter(config)
    beats = [row for tile in results.tolist() for row in tile]
    memory, done = {}, []
    latency = config.write_latency

    async def testbench(ctx):
        await launch(ctx, dut.layer, desc, layer, {**layer, "out_base": 0})
        written, drain = False, 4 + latency  # cycles after the last beat
        fed = []  # per cycle: whether a beat came, and whether it was the last
        while drain:
            drain -= not beats
            valid = bool(beats) and rng.random() < busy
            ctx.set(dut.results.valid, valid)
            if valid:
                ctx.set(dut.results.payload.data, beats.pop(0))
            fed.append((valid, valid and not beats))
            en, addr, data = ctx.get(dut.en), ctx.get(dut.addr), ctx.get(dut.data)
            beat, last = fed[-1 - latency] if len(fed) > latency else (False, False)
            assert bool(en) == beat
            word = memory.setdefault(addr, [None] * config.rows)
            for lane in range(config.rows):
                if en >> (lane // config.cols) & 1:
                    word[lane] = _signed((data >> (8 * lane)) & 0xFF)
            written |= last
            done.append((ctx.get(dut.done), written))
            await ctx.tick()

    simulate(dut, testbench)
    return {a: w for a, w in memory.items() if w != [None] * config.rows}, done


@pytest.mark.parametrize("rows, cols", [(4, 2), (2, 2), (6, 2), (3, 1)])
@pytest.mark.parametrize("m, n_tiles, busy", [(3, 5, 0.7), (1, 4, 1.0), (2, 1, 1.0)])
def test_tiles_share_words_and_the_last_one_pads(seed, rows, cols, m, n_tiles, busy):
    rng = np.random.default_rng(seed)
    config = ArrayConfig(rows=rows, cols=cols, act_depth=64, psum_depth=8)
    ratio = rows // cols
    fields = descriptor_format(config)
    layer = {f.name: int(rng.integers(f.min, f.max + 1)) for f in fields}
    # A pass over part of an output: the output's channel groups lie out_plane ≥ m apart.
    out_plane = m + int(rng.integers(0, 3))
    layer.update(m=m, n_tiles=n_tiles, out_plane=out_plane, out_blocks=0,
                 out_base=int(rng.integers(0, 64 - n_tiles * out_plane)))
    results = rng.integers(-128, 128, (n_tiles, m, cols))
    memory, done_cycles = _run(config, layer, results, rng, busy)

    expected = {}
    for nt in range(n_tiles):
        for sample in range(m):
            word = expected.setdefault(layer["out_base"] + nt // ratio * out_plane + sample,
                                       [layer["zpad"]] * rows)
            group = nt % ratio
            word[group * cols:(group + 1) * cols] = results[nt, sample].tolist()
    assert memory == expected
    # done rises in the cycle the last beat is written and stays up.
    assert all(done == written for done, written in done_cycles)


@pytest.mark.parametrize("samples, oh, ow", [(2, 3, 4), (1, 4, 5), (3, 1, 1), (1, 2, 2),
                                             (2, 5, 3)])
def test_maps_in_blocks_put_each_2x2_block_in_four_consecutive_words(seed, samples, oh, ow):
    """Pixel ``(n, y, x)`` of a map written in blocks sits at ``((n·⌈oh/2⌉ + y div 2)·⌈ow/2⌉
    + x div 2)·4 + 2·(y mod 2) + x mod 2`` in its group; odd maps leave the words of their
    last block row and column that lie outside the map unwritten."""
    rng = np.random.default_rng(seed)
    config = ArrayConfig(rows=4, cols=2, act_depth=512, psum_depth=64)
    n_tiles, m = 3, samples * oh * ow
    layer = {f.name: int(rng.integers(f.min, f.max + 1)) for f in descriptor_format(config)}
    out_plane = samples * -(-oh // 2) * -(-ow // 2) * 4
    layer.update(m=m, n_tiles=n_tiles, oh=oh, ow=ow, out_plane=out_plane, out_blocks=1,
                 out_base=int(rng.integers(0, 512 - 2 * out_plane)))
    results = rng.integers(-128, 128, (n_tiles, m, config.cols))
    memory, _ = _run(config, layer, results, rng, 0.8)

    expected = {}
    for nt in range(n_tiles):
        for i, (n, y, x) in enumerate(np.ndindex(samples, oh, ow)):
            block = (n * -(-oh // 2) + y // 2) * -(-ow // 2) + x // 2
            address = layer["out_base"] + nt // 2 * out_plane + block * 4 + 2 * (y % 2) + x % 2
            word = expected.setdefault(address, [layer["zpad"]] * config.rows)
            word[nt % 2 * 2:nt % 2 * 2 + 2] = results[nt, i].tolist()
    assert memory == expected


def test_rows_must_be_a_multiple_of_cols():
    with warnings.catch_warnings():  # the refused writer is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ConfigError, match=r"output writer needs rows to be a multiple of "
                                              r"cols, got 3x2"):
            OutputWriter(ArrayConfig(rows=3, cols=2))
        gc.collect()
