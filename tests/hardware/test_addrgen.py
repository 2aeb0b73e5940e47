"""The activation address generator turns a dense layer's tiles into the activation ranges
docs/images.md lays out, and the words read back into vectors marked ``last`` per tile."""

from __future__ import annotations

import numpy as np
from hwsim import simulate

from hw import ArrayConfig
from hw.addrgen import ActivationAddressGenerator
from hw.contract import descriptor_format

CONFIG = ArrayConfig(rows=4, cols=2, act_depth=256, psum_depth=8)
WORD = descriptor_format(CONFIG)


def _desc(rng, **fields) -> dict:
    values = {f.name: int(rng.integers(f.min, f.max + 1)) for f in WORD}
    values.update(fields)
    return values


def _run(layers: list[dict], rng) -> list[dict]:
    """Launch each layer, feed its tiles and ``k_tiles·n_tiles·m`` words with random gaps and
    backpressure; return the ranges and vectors it produced, per layer."""
    dut = ActivationAddressGenerator(CONFIG)
    results = []

    async def testbench(ctx):
        previous = _desc(rng)  # the last layer's descriptor is still on desc at a launch
        for layer in layers:
            tiles = [(nt, kt, int(kt == layer["k_tiles"] - 1)) for nt in range(layer["n_tiles"])
                     for kt in range(layer["k_tiles"])]
            words = rng.integers(0, 1 << (8 * CONFIG.rows), len(tiles) * layer["m"]).tolist()
            seen = {"ranges": [], "vectors": [], "words": list(words)}
            ctx.set(dut.layer.launch, 1)
            ctx.set(dut.layer.incoming.as_value(), WORD.pack(layer))
            ctx.set(dut.layer.desc.as_value(), WORD.pack(previous))
            await ctx.tick()
            ctx.set(dut.layer.launch, 0)
            ctx.set(dut.layer.desc.as_value(), WORD.pack(layer))
            while tiles or words:
                ctx.set(dut.tiles.valid, int(bool(tiles) and rng.integers(4) > 0))
                if tiles:
                    nt, kt, last_k = tiles[0]
                    ctx.set(dut.tiles.payload, {"nt": nt, "kt": kt, "last_k": last_k})
                ctx.set(dut.ranges.ready, int(rng.integers(2)))
                ctx.set(dut.words.valid, int(bool(words) and rng.integers(4) > 0))
                if words:
                    ctx.set(dut.words.payload, words[0])
                ctx.set(dut.x.ready, int(rng.integers(4) > 0))
                if ctx.get(dut.ranges.valid) and ctx.get(dut.ranges.ready):
                    assert ctx.get(dut.tiles.ready)
                    r = ctx.get(dut.ranges.payload)
                    seen["ranges"].append((r.base, r.count))
                    tiles.pop(0)
                if ctx.get(dut.x.valid) and ctx.get(dut.x.ready):
                    assert ctx.get(dut.words.ready)
                    x = ctx.get(dut.x.payload)
                    seen["vectors"].append((ctx.get(dut.x.payload.data.as_value()), x.zero,
                                            x.last))
                    words.pop(0)
                await ctx.tick()
            ctx.set(dut.tiles.valid, 0)
            ctx.set(dut.words.valid, 0)
            results.append(seen)
            previous = layer

    simulate(dut, testbench)
    return results


def test_tiles_read_their_k_slice_of_every_sample(seed):
    rng = np.random.default_rng(seed)
    layers = [_desc(rng, m=m, k_tiles=k, n_tiles=n, in_base=int(rng.integers(0, 256 - k * m)))
              for m, k, n in ((3, 3, 2), (1, 2, 3), (8, 1, 2))]
    for layer, seen in zip(layers, _run(layers, rng)):
        m, base = layer["m"], layer["in_base"]
        assert seen["ranges"] == [(base + kt * m, m) for _nt in range(layer["n_tiles"])
                                  for kt in range(layer["k_tiles"])]
        assert seen["vectors"] == [(word, layer["zx"], int(i % m == m - 1))
                                   for i, word in enumerate(seen["words"])]
