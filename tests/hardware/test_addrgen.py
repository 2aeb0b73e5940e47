"""The activation address generator walks a layer's tiles by implicit im2col (docs/images.md):
fully-connected layers read their K-slice of every sample, convolutions the taps of every
output pixel with stride, dilation and padding, and padding taps become the input zero point."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim import launch, simulate

from hw import ArrayConfig
from hw.addrgen import ActivationAddressGenerator
from hw.contract import LAYER_OPS, dense_geometry, descriptor_format

CONFIG = ArrayConfig(rows=4, cols=2, act_depth=1024, psum_depth=64, window=3, window_width=16)
WINDOW = LAYER_OPS.index("window")
# A range's tag: bit 0 padding, then the raster flags (hw.addrgen.raster_flags_layout).
KEEP, SECOND, ROW_START, ROW_END, TOP = 2, 4, 8, 16, 32
WORD = descriptor_format(CONFIG)
WIDTH = 8 * CONFIG.rows  # bits of a word; the memory streamer returns rows of two
ROWS_MASK = (1 << WIDTH) - 1


def _desc(rng, **fields) -> dict:
    """Random fields over their whole range, a ``matmul`` layer unless ``op`` is given."""
    values = {f.name: int(rng.integers(f.min, f.max + 1)) for f in WORD}
    values.update(op=LAYER_OPS.index("matmul"))
    values.update(fields)
    return values


def _raster_taps(layer: dict) -> list[tuple[int, int, int]]:
    """A window layer's (address, words, tag): every column tile reads its channel group's
    padded input once, raster by raster, but for the first min(pad, K − 1) rows and columns
    (the window unit fills those in), a word a beat, or in pair mode two; the beats where a
    window ends on an output pixel kept (in pair mode, ``second`` if on the second word),
    each row's first and last marked, and the rows streamed above (at most K − 1)."""
    k, (sh, sw) = CONFIG.window, (layer["stride_h"], layer["stride_w"])
    top, left = min(layer["pad_top"], k - 1), min(layer["pad_left"], k - 1)
    samples = layer["m"] // (layer["oh"] * layer["ow"])
    step, rw = 1 + layer["pair"], layer["rw"]

    def kept(r, c):
        return r >= k - 1 and (r - k + 1) % sh == 0 and c >= k - 1 and (c - k + 1) % sw == 0 \
            and c < rw
    taps = []
    for nt in range(layer["n_tiles"]):
        base = layer["in_base"] + nt // (CONFIG.rows // CONFIG.cols) * layer["plane"]
        for n in range(samples):
            for r in range(top, layer["rh"]):
                for c in range(left, rw, step):
                    # Which word of a pair may end a window: the same all layer long.
                    second = step == 2 and (c + 1 - k + 1) % sw == 0
                    ih, iw = r - layer["pad_top"], c - layer["pad_left"]
                    inside = 0 <= ih < layer["h"] and 0 <= iw < layer["w"]
                    flags = KEEP * (kept(r, c) or second and kept(r, c + 1)) + \
                        SECOND * second + \
                        ROW_START * (c == left) + ROW_END * (c + step >= rw) + \
                        TOP * min(r - top, k - 1)
                    taps.append(((base + (n * layer["h"] + ih) * layer["w"] + iw) * inside,
                                 step, (not inside) | flags))
    return taps


def expected_taps(layer: dict) -> list[tuple[int, int, int]]:
    """The (address, words, tag: padding, kept) of every vector of the layer, from the
    descriptor alone: the software statement of docs/images.md's implicit im2col."""
    if layer["op"] == WINDOW:
        return _raster_taps(layer)
    samples = layer["m"] // (layer["oh"] * layer["ow"])
    kh_count = layer["k_tiles"] // (layer["kw"] * layer["groups"])
    vector = layer["op"] != LAYER_OPS.index("matmul")
    taps = []
    for nt in range(layer["n_tiles"]):
        # A vector-unit layer's column tile reads its own channel group.
        group = nt // (CONFIG.rows // CONFIG.cols) if vector else 0
        for kh in range(kh_count):
            second = layer["op"] == LAYER_OPS.index("add") and kh == 1
            base = (layer["in2_base"] if second else layer["in_base"]) + group * layer["plane"]
            for kw in range(layer["kw"]):
                for g in range(layer["groups"]):
                    for n in range(samples):
                        for oh in range(layer["oh"]):
                            for ow in range(layer["ow"]):
                                ih = oh * layer["stride_h"] + kh * layer["dil_h"] - \
                                    layer["pad_top"]
                                iw = ow * layer["stride_w"] + kw * layer["dil_w"] - \
                                    layer["pad_left"]
                                if 0 <= ih < layer["h"] and 0 <= iw < layer["w"]:
                                    taps.append((base + g * layer["plane"] +
                                                 (n * layer["h"] + ih) * layer["w"] + iw,
                                                 1, KEEP))
                                else:
                                    taps.append((0, 1, 1 | KEEP))
    return taps


def _run(layers: list[dict], rng) -> list[dict]:
    """Launch each layer, feed its tiles, answer every range with a random word (tagged as the
    range was) after random gaps and backpressure; return ranges and vectors per layer."""
    dut = ActivationAddressGenerator(CONFIG)
    results = []

    async def testbench(ctx):
        previous = _desc(rng)  # the last layer's descriptor is still on desc at a launch
        for layer in layers:
            tiles = [(nt, kt, int(kt == layer["k_tiles"] - 1)) for nt in range(layer["n_tiles"])
                     for kt in range(layer["k_tiles"])]
            total = len(expected_taps(layer))
            seen = {"ranges": [], "vectors": [], "words": []}
            pending: list[int] = []  # words answering the ranges issued so far
            await launch(ctx, dut.layer, WORD, layer, previous)
            while len(seen["vectors"]) < total:
                ctx.set(dut.tiles.valid, int(bool(tiles) and rng.integers(4) > 0))
                if tiles:
                    nt, kt, last_k = tiles[0]
                    ctx.set(dut.tiles.payload, {"nt": nt, "kt": kt, "last_k": last_k})
                ctx.set(dut.ranges.ready, int(rng.integers(4) > 0))
                ctx.set(dut.words.valid, int(bool(pending) and rng.integers(4) > 0))
                if pending:
                    ctx.set(dut.words.payload, pending[0])
                ctx.set(dut.x.ready, int(rng.integers(4) > 0))
                if tiles and ctx.get(dut.tiles.valid) and ctx.get(dut.tiles.ready):
                    tiles.pop(0)  # taken with its last pixel's read
                if ctx.get(dut.ranges.valid) and ctx.get(dut.ranges.ready):
                    r = ctx.get(dut.ranges.payload)
                    assert r.wide == (r.count == 2)  # pair mode reads a memory row
                    seen["ranges"].append((r.base, r.count, r.tag))
                    words = sum(int(rng.integers(0, 1 << WIDTH)) << (WIDTH * i)
                                for i in range(r.count))
                    pending.append(words | (r.tag << (2 * WIDTH)))
                if ctx.get(dut.x.valid) and ctx.get(dut.x.ready):
                    assert ctx.get(dut.words.ready)
                    x = ctx.get(dut.x.payload)
                    seen["words"].append(pending.pop(0))
                    seen["vectors"].append((ctx.get(dut.x.payload.data.as_value()),
                                            ctx.get(dut.x_next), x.zero, x.last,
                                            ctx.get(dut.x_raster.as_value())))
                await ctx.tick()
            assert not tiles
            ctx.set(dut.tiles.valid, 0)
            ctx.set(dut.words.valid, 0)
            results.append(seen)
            previous = layer

    simulate(dut, testbench)
    return results


def _check(layer: dict, seen: dict) -> None:
    assert seen["ranges"] == expected_taps(layer)
    # Padding taps are the zero point, or the lowest int8 for max pooling.
    pad = -128 if layer["op"] == LAYER_OPS.index("max") else layer["zx"]
    zx_lanes = sum((pad & 0xFF) << (8 * r) for r in range(CONFIG.rows))
    m, expected, kept = layer["m"], [], 0
    for row in seen["words"]:  # each tile's m-th kept vector is its last
        flags, padding = row >> (2 * WIDTH + 1), row >> (2 * WIDTH) & 1
        keep = flags & 1
        kept += keep
        words = (row & ROWS_MASK, row >> WIDTH & ROWS_MASK)
        expected.append((*((zx_lanes,) * 2 if padding else words), layer["zx"],
                         int(bool(keep) and kept % m == 0), flags))
    if not layer["pair"] or layer["op"] != WINDOW:  # x_next is meaningful in pair mode only
        expected = [(x, None, *rest) for x, _, *rest in expected]
        seen["vectors"] = [(x, None, *rest) for x, _, *rest in seen["vectors"]]
    assert seen["vectors"] == expected


def test_dense_tiles_read_their_k_slice_of_every_sample(seed):
    rng = np.random.default_rng(seed)
    layers = []
    for m, k, n in ((3, 3, 2), (1, 2, 3), (8, 1, 2)):
        layers.append(_desc(rng, m=m, k_tiles=k, n_tiles=n,
                            in_base=int(rng.integers(0, 256 - k * m)), **dense_geometry(m, k)))
    for layer, seen in zip(layers, _run(layers, rng)):
        assert [base for base, _, _ in seen["ranges"]] == [
            layer["in_base"] + kt * layer["m"] + i for _nt in range(layer["n_tiles"])
            for kt in range(layer["k_tiles"]) for i in range(layer["m"])]
        _check(layer, seen)


@pytest.mark.parametrize("name, geometry", [
    # samples, h, w, groups, kh, kw, stride, dilation, padding (top, left), output (oh, ow)
    ("same 3x3", dict(n=2, h=4, w=5, g=2, kh=3, kw=3, s=(1, 1), d=(1, 1), pad=(1, 1),
                      out=(4, 5))),
    ("valid stride 2", dict(n=1, h=7, w=6, g=1, kh=3, kw=2, s=(2, 2), d=(1, 1), pad=(0, 0),
                            out=(3, 3))),
    ("dilated", dict(n=1, h=6, w=6, g=2, kh=2, kw=3, s=(1, 1), d=(2, 2), pad=(0, 0),
                     out=(4, 2))),
    ("same stride 2 asymmetric", dict(n=2, h=5, w=4, g=1, kh=3, kw=3, s=(2, 1), d=(1, 2),
                                      pad=(1, 2), out=(3, 4))),
])
def test_convolution_taps_follow_stride_dilation_and_padding(seed, name, geometry):
    rng = np.random.default_rng(seed)
    g = geometry
    m = g["n"] * g["out"][0] * g["out"][1]
    k_tiles = g["kh"] * g["kw"] * g["g"]
    layer = _desc(rng, m=m, k_tiles=k_tiles, n_tiles=2, in_base=int(rng.integers(0, 200)),
                  h=g["h"], w=g["w"], oh=g["out"][0], ow=g["out"][1], kw=g["kw"],
                  groups=g["g"], plane=g["n"] * g["h"] * g["w"], stride_h=g["s"][0],
                  stride_w=g["s"][1], dil_h=g["d"][0], dil_w=g["d"][1], pad_top=g["pad"][0],
                  pad_left=g["pad"][1])
    [seen] = _run([layer], rng)
    taps = expected_taps(layer)
    assert any(tag & 1 for _, _, tag in taps) == (g["pad"] != (0, 0))
    _check(layer, seen)


@pytest.mark.parametrize("op", ["mac", "max"])
def test_vector_layers_read_each_column_tiles_channel_group(seed, op):
    """Depthwise and pooling: one K tile per tap, column tile nt reads channel group
    nt div (rows/cols); max pooling pads with the lowest value."""
    rng = np.random.default_rng(seed)
    n, h, w, oh, ow = 1, 5, 4, 5, 4
    layer = _desc(rng, op=LAYER_OPS.index(op), m=n * oh * ow, k_tiles=9, n_tiles=5,
                  in_base=int(rng.integers(0, 200)), h=h, w=w, oh=oh, ow=ow, kw=3, groups=1,
                  plane=n * h * w, stride_h=1, stride_w=1, dil_h=1, dil_w=1, pad_top=1,
                  pad_left=1)
    [seen] = _run([layer], rng)
    assert {base for base, _, tag in seen["ranges"] if not tag & 1} >= \
        {layer["in_base"] + 2 * layer["plane"]}  # column tile 4 reads group 2
    _check(layer, seen)


@pytest.mark.parametrize("samples, h, w, stride, pad, out, pair", [
    (1, 5, 4, (1, 1), (1, 1), (5, 4), 0),      # SAME 3x3
    (2, 5, 6, (2, 2), (0, 1), (2, 3), 0),      # stride 2, padding on the left only
    (1, 4, 3, (2, 1), (1, 1), (2, 3), 0),
    (1, 3, 3, (1, 1), (2, 3), (3, 4), 0),      # padding of K − 1 rows and more columns
    # Pair mode, two words a beat: SAME stride 2 (padding right and below), an odd
    # streamed width; padding on the left (the kept word is the second), rows stride 1.
    (2, 6, 6, (2, 2), (0, 0), (3, 3), 1),
    (1, 5, 8, (1, 2), (1, 1), (5, 4), 1),
    (1, 4, 4, (2, 2), (2, 2), (3, 3), 1),      # K − 1 padding columns: kept on the first
])
def test_a_window_layer_reads_its_padded_input_once(seed, samples, h, w, stride, pad, out,
                                                    pair):
    rng = np.random.default_rng(seed)
    k = CONFIG.window
    rh, rw = (out[0] - 1) * stride[0] + k, (out[1] - 1) * stride[1] + k
    # Pair mode reads a memory row of two words: the input starts on one.
    layer = _desc(rng, op=WINDOW, m=samples * out[0] * out[1], k_tiles=1, n_tiles=3,
                  in_base=int(rng.integers(0, 100)) * 2, h=h, w=w, oh=out[0], ow=out[1],
                  kw=k, groups=1, plane=samples * h * w, stride_h=stride[0],
                  stride_w=stride[1], dil_h=1, dil_w=1, pad_top=pad[0], pad_left=pad[1],
                  rh=rh, rw=rw, pair=pair)
    [seen] = _run([layer], rng)
    assert sum(tag >> 1 & 1 for _, _, tag in seen["ranges"]) == 3 * layer["m"]
    if pair:
        assert all(count == 2 and base % 2 == 0 for base, count, _ in seen["ranges"])
        assert any(tag >> 2 & 1 for _, _, tag in seen["ranges"]) == (pad[1] % 2 == 1)
    _check(layer, seen)


def test_an_add_reads_its_second_input_for_the_second_tap(seed):
    rng = np.random.default_rng(seed)
    layer = _desc(rng, op=LAYER_OPS.index("add"), m=6, k_tiles=2, n_tiles=3,
                  in_base=int(rng.integers(0, 200)), in2_base=int(rng.integers(300, 500)),
                  h=2, w=3, oh=2, ow=3, kw=1, groups=1, plane=6, stride_h=1, stride_w=1,
                  dil_h=0, dil_w=1, pad_top=0, pad_left=0)
    [seen] = _run([layer], rng)
    assert [base for base, _, _ in seen["ranges"][6:12]] == \
        [layer["in2_base"] + i for i in range(6)]
    _check(layer, seen)
