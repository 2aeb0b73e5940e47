"""The depthwise window unit slides a K×K window over a padded input raster and gives, for every
kept position, the column tile's depthwise sums (checked against a direct numpy convolution);
the top and left padding it is not sent (at most K − 1 rows and columns) it fills in with the
zero point. In pair mode (stride 2) it takes two raster columns a vector, in quad mode (strides
2) a 2×2 block."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim import feed_unit, launch, simulate

from hw import ArrayConfig
from hw.contract import LAYER_OPS, descriptor_format, one_input_fields, raster_fields
from hw.window import WindowUnit

CONFIGS = [ArrayConfig(rows=4, cols=2, window=3, window_width=12),
           ArrayConfig(rows=2, cols=2, window=2, window_width=8),
           ArrayConfig(rows=2, cols=2, window=5, window_width=16)]


def _raster(rng, config, samples: int, oh: int, ow: int, stride: int, pad: tuple, zx: int):
    """``samples`` padded inputs (``pad`` rows on top and columns on the left hold the zero
    point) and their raster's size."""
    k = config.window
    rh, rw = (oh - 1) * stride + k, (ow - 1) * stride + k
    x = rng.integers(-128, 128, (samples, rh, rw, config.rows))
    x[:, :pad[0]] = zx
    x[:, :, :pad[1]] = zx
    return x, rh, rw


def _expected(config, x, w, zx, zw, oh, ow, stride, n_tiles):
    k, cols, ratio = config.window, config.cols, config.rows // config.cols
    out = np.zeros((n_tiles, x.shape[0], oh, ow, cols), np.int64)
    for nt in range(n_tiles):
        lanes = x[..., (nt % ratio) * cols:(nt % ratio + 1) * cols] - zx
        for kh in range(k):
            for kw in range(k):
                taps = lanes[:, kh:kh + (oh - 1) * stride + 1:stride,
                             kw:kw + (ow - 1) * stride + 1:stride]
                out[nt] += taps * (w[nt, kh * k + kw] - zw)
    return out


def _vectors(config, x, zx: int, stride: int, pad: tuple, mode: str):
    """One column tile's raster of ``x`` as the address generator streams it: ``(data,
    flags)``, or in pair mode ``(data, flags, [right])`` (the word right of ``data``, the zero
    point past the raster), in quad mode ``(data, flags, [right, below, below right])``; the
    raster leaves out the first min(pad, K − 1) rows and columns."""
    k = config.window
    rh, rw = x.shape[1:3]

    def kept(r, c):
        return r >= k - 1 and (r - k + 1) % stride == 0 and c >= k - 1 and \
            (c - k + 1) % stride == 0

    def word(n, r, c):
        return x[n, r, c].tolist() if r < rh and c < rw else [zx] * config.rows

    top, left = (min(p, k - 1) for p in pad)
    step, row_step = {"narrow": (1, 1), "pair": (2, 1), "quad": (2, 2)}[mode]
    raster = []
    for n in range(x.shape[0]):
        for r in range(top, rh, row_step):
            for c in range(left, rw, step):
                flags = {"keep": kept(r, c), "second": False, "lower": False,
                         "row_start": c == left, "row_end": c + step >= rw,
                         "top": min(r - top, k - 1)}
                if mode == "narrow":
                    raster.append((word(n, r, c), flags))
                    continue
                ends = [(dr, dc) for dr in range(row_step) for dc in range(2)
                        if kept(r + dr, c + dc)]
                assert len(ends) <= 1
                flags.update(keep=bool(ends), second=any(dc for _, dc in ends),
                             lower=any(dr for dr, _ in ends))
                rest = [word(n, r + i // 2, c + i % 2) for i in range(1, 2 * row_step)]
                raster.append((word(n, r, c), flags, rest))
    return raster


# Narrow mode: a word a vector, any stride.
NARROW = [(1, 3, 4, 1, (0, 0), 3, 1.0), (2, 2, 3, 2, (0, 0), 2, 0.6), (1, 1, 5, 1, (0, 0), 1, 0.8),
          (2, 3, 3, 1, (1, 1), 3, 1.0), (2, 2, 3, 2, (3, 1), 2, 0.7)]
# Pair mode: stride 2, two words a vector, rows starting at an even column (so with K = 2 no
# left padding); rows of an odd width (K = 3) end on a pair half past the raster, and rows of
# one pair (ow = 1) read back the line buffer entry they write.
PAIR = [(1, 3, 4, (0, 0), 3, 1.0), (2, 2, 3, (1, 2), 2, 0.6), (3, 2, 2, (2, 2), 1, 0.8),
        (2, 3, 3, (3, 0), 3, 1.0), (2, 2, 1, (1, 2), 2, 1.0), (1, 1, 4, (0, 2), 2, 0.5)]
# Quad mode: strides 2, a 2×2 block a vector, from any padding (the window ends on either row
# and either column of a block); rows and columns past the raster are the zero point.
QUAD = [(1, 3, 4, (0, 0), 3, 1.0), (2, 2, 3, (1, 1), 2, 0.6), (3, 2, 2, (1, 0), 1, 0.8),
        (2, 3, 3, (0, 1), 3, 1.0), (2, 1, 1, (2, 2), 2, 1.0), (1, 4, 2, (3, 2), 2, 0.5)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.window}x{c.window}")
@pytest.mark.parametrize("mode, samples, oh, ow, stride, pad, n_tiles, busy",
                         [("narrow", *case) for case in NARROW] +
                         [(mode, s, oh, ow, 2, pad, nt, busy)
                          for mode, cases in (("pair", PAIR), ("quad", QUAD))
                          for s, oh, ow, pad, nt, busy in cases])
def test_each_kept_position_gets_its_windows_sum(seed, config, mode, samples, oh, ow, stride,
                                                 pad, n_tiles, busy):
    rng = np.random.default_rng(seed)
    k = config.window
    if mode == "pair" and min(pad[1], k - 1) % 2:
        pad = (pad[0], 0)  # pair mode streams no raster starting at an odd column
    word = descriptor_format(config)
    layer = {f.name: int(rng.integers(f.min, f.max + 1)) for f in word}
    x, rh, rw = _raster(rng, config, samples, oh, ow, stride, pad, layer["zx"])
    assert rw <= config.window_width
    w = rng.integers(-128, 128, (n_tiles, k * k, config.cols))
    layer.update(**one_input_fields(), **raster_fields(rh, rw, mode == "pair", mode == "quad"),
                 op=LAYER_OPS.index("window"), m=samples * oh * ow, n_tiles=n_tiles, k_tiles=1)
    expected = _expected(config, x, w, layer["zx"], layer["zw"], oh, ow, stride, n_tiles)

    raster = _vectors(config, x, layer["zx"], stride, pad, mode)
    last = max(i for i, (_, flags, *_) in enumerate(raster) if flags["keep"])
    vectors = [(data, i == last, flags, *right) for _ in range(n_tiles)
               for i, (data, flags, *right) in enumerate(raster)]
    weights = [row for tile in w.tolist() for row in tile]
    dut = WindowUnit(config)
    beats = []

    async def testbench(ctx):
        await launch(ctx, dut.layer, word, layer)
        beats.extend(await feed_unit(ctx, dut, rng, busy, weights, vectors, zw=layer["zw"],
                                     zx=layer["zx"], latency=config.window_latency))

    simulate(dut, testbench)
    got = np.array([data for data, _ in beats]).reshape(expected.shape)
    np.testing.assert_array_equal(got, expected)
    lasts = [i for i, (_, last) in enumerate(beats) if last]
    assert lasts == [(nt + 1) * samples * oh * ow - 1 for nt in range(n_tiles)]
