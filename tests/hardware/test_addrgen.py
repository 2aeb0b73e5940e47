"""The activation address generator walks a layer's tiles by implicit im2col (docs/images.md):
fully-connected layers read their K-slice of every sample, convolutions the taps of every
output pixel with stride, dilation and padding, and padding taps become the input zero point."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim import launch, simulate, walk_steps

from hw import ArrayConfig
from hw.addrgen import ActivationAddressGenerator, raster_flags_layout
from hw.contract import LAYER_OPS, dense_geometry, descriptor_format

CONFIG = ArrayConfig(rows=4, cols=2, act_depth=1024, psum_depth=64, window=3, window_width=16)
WINDOW = LAYER_OPS.index("window")
# A range's tag: a padding bit for each word of a memory row, the raster flags
# (hw.addrgen.raster_flags_layout), the tile's last vector.
PER_ROW = CONFIG.act_words_per_row
PAD = (1 << PER_ROW) - 1
KEEP, SECOND, LOWER, ROW_START, ROW_END, TOP = (1 << (PER_ROW + i) for i in range(6))
RASTER_BITS = raster_flags_layout(CONFIG).size
LAST = 1 << (PER_ROW + RASTER_BITS)
WORD = descriptor_format(CONFIG)
WIDTH = 8 * CONFIG.rows  # bits of a word; the memory streamer returns rows of four
ROWS_MASK = (1 << WIDTH) - 1


def _desc(rng, **fields) -> dict:
    """Random fields over their whole range, a ``matmul`` layer unless ``op`` is given."""
    values = {f.name: int(rng.integers(f.min, f.max + 1)) for f in WORD}
    values.update(op=LAYER_OPS.index("matmul"), quad=0)
    values.update(fields)
    return values


def _raster_taps(layer: dict) -> list[tuple[int, int, int]]:
    """A window layer's (address, words, tag): every column tile reads its channel group's
    padded input once, raster by raster, but for the first min(pad, K − 1) rows and columns
    (the window unit fills those in), a word a beat, in pair mode two, in quad mode a 2×2
    block of a map held in blocks (each word padding where it lies outside the map); the
    beats where a window ends on an output pixel kept (``second`` if on the second column,
    ``lower`` on the second row), each row's first and last marked, and the rows streamed
    above (at most K − 1)."""
    k, (sh, sw) = CONFIG.window, (layer["stride_h"], layer["stride_w"])
    top, left = min(layer["pad_top"], k - 1), min(layer["pad_left"], k - 1)
    samples = layer["m"] // (layer["oh"] * layer["ow"])
    h, w, rw = layer["h"], layer["w"], layer["rw"]
    step = 2 if layer["pair"] or layer["quad"] else 1
    row_step = 2 if layer["quad"] else 1

    def kept(r, c):
        return r >= k - 1 and (r - k + 1) % sh == 0 and c >= k - 1 and (c - k + 1) % sw == 0 \
            and c < rw and r < layer["rh"]

    def inside(ih, iw):
        return 0 <= ih < h and 0 <= iw < w
    taps = []
    for nt in range(layer["n_tiles"]):
        base = layer["in_base"] + nt // (CONFIG.rows // CONFIG.cols) * layer["plane"]
        for n in range(samples):
            for r in range(top, layer["rh"], row_step):
                for c in range(left, rw, step):
                    # Which word of a pair or block may end a window: the same all layer long.
                    second = step == 2 and (c + 1 - k + 1) % sw == 0
                    lower = row_step == 2 and (r + 1 - k + 1) % sh == 0
                    ih, iw = r - layer["pad_top"], c - layer["pad_left"]
                    if layer["quad"]:  # blocks of 2×2: a row pair of ⌈w/2⌉ blocks
                        address = base + ((n * -(-h // 2) + ih // 2) * -(-w // 2) + iw // 2) * 4
                        pad = sum(1 << i for i in range(PER_ROW)
                                  if not inside(ih + i // 2, iw + i % 2))
                    else:
                        address = base + (n * h + ih) * w + iw
                        pad = 0 if inside(ih, iw) else PAD
                    flags = KEEP * (kept(r + lower, c + second)) + \
                        SECOND * second + LOWER * lower + \
                        ROW_START * (c == left) + ROW_END * (c + step >= rw) + \
                        TOP * min(r - top, k - 1)
                    taps.append((address * inside(ih, iw), step * row_step, pad | flags))
    return taps


def expected_taps(layer: dict) -> list[tuple[int, int, int]]:
    """The (address, words, tag: padding, kept, last) of every vector of the layer, from the
    descriptor alone: the software statement of docs/images.md's implicit im2col, each tile's
    ``m``-th kept vector its last."""
    taps, kept = _window_or_im2col_taps(layer), 0
    for i, (address, words, tag) in enumerate(taps):
        kept += bool(tag & KEEP)
        if tag & KEEP and kept % layer["m"] == 0:
            taps[i] = (address, words, tag | LAST)
    return taps


def _window_or_im2col_taps(layer: dict) -> list[tuple[int, int, int]]:
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
                                    taps.append((0, 1, PAD | KEEP))
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
            await launch(ctx, dut.layer, WORD, layer, previous,
                         steps=walk_steps(CONFIG, layer))
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
                    # Pair mode reads half a memory row, quad mode a row.
                    assert 1 << r.span == r.count
                    seen["ranges"].append((r.base, r.count, r.tag))
                    words = sum(int(rng.integers(0, 1 << WIDTH)) << (WIDTH * i)
                                for i in range(r.count))
                    pending.append(words | (r.tag << (PER_ROW * WIDTH)))
                if ctx.get(dut.x.valid) and ctx.get(dut.x.ready):
                    assert ctx.get(dut.words.ready)
                    x = ctx.get(dut.x.payload)
                    seen["words"].append(pending.pop(0))
                    seen["vectors"].append((ctx.get(dut.x.payload.data.as_value()),
                                            ctx.get(dut.x_rest), x.zero, x.last,
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
        flags = row >> (PER_ROW * WIDTH + PER_ROW) & ((1 << RASTER_BITS) - 1)
        padding = row >> (PER_ROW * WIDTH) & PAD
        keep = flags & 1
        kept += keep
        words = [zx_lanes if padding >> i & 1 else row >> (i * WIDTH) & ROWS_MASK
                 for i in range(PER_ROW)]
        expected.append((words[0], sum(word << (i * WIDTH) for i, word in enumerate(words[1:])),
                         layer["zx"], int(bool(keep) and kept % m == 0), flags))
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


@pytest.mark.parametrize("samples, h, w, stride, pad, out, mode", [
    (1, 5, 4, (1, 1), (1, 1), (5, 4), ""),      # SAME 3x3
    (2, 5, 6, (2, 2), (0, 1), (2, 3), ""),      # stride 2, padding on the left only
    (1, 4, 3, (2, 1), (1, 1), (2, 3), ""),
    (1, 3, 3, (1, 1), (2, 3), (3, 4), ""),      # padding of K − 1 rows and more columns
    # Pair mode, two words a beat: SAME stride 2 (padding right and below), an odd
    # streamed width; padding on the left (the kept word is the second), rows stride 1.
    (2, 6, 6, (2, 2), (0, 0), (3, 3), "pair"),
    (1, 5, 8, (1, 2), (1, 1), (5, 4), "pair"),
    (1, 4, 4, (2, 2), (2, 2), (3, 3), "pair"),  # K − 1 padding columns: kept on the first
    # Quad mode, a 2×2 block a beat of a map held in blocks: SAME stride 2 on even and odd
    # maps (odd ones end in half-padding blocks; padding on top and left, the window ends on
    # the lower row and second column), VALID with rows past the last window.
    (2, 6, 6, (2, 2), (0, 0), (3, 3), "quad"),
    (1, 7, 5, (2, 2), (1, 1), (4, 3), "quad"),
    (2, 8, 7, (2, 2), (0, 0), (3, 3), "quad"),
    (1, 4, 4, (2, 2), (2, 2), (3, 3), "quad"),  # K − 1 padding rows and columns
])
def test_a_window_layer_reads_its_padded_input_once(seed, samples, h, w, stride, pad, out,
                                                    mode):
    rng = np.random.default_rng(seed)
    k = CONFIG.window
    rh, rw = (out[0] - 1) * stride[0] + k, (out[1] - 1) * stride[1] + k
    # Pair and quad mode read from a memory row of four words: the input starts on one.
    plane = samples * (-(-h // 2) * -(-w // 2) * 4 if mode == "quad" else h * w)
    layer = _desc(rng, op=WINDOW, m=samples * out[0] * out[1], k_tiles=1, n_tiles=3,
                  in_base=int(rng.integers(0, 50)) * PER_ROW, h=h, w=w, oh=out[0],
                  ow=out[1], kw=k, groups=1, plane=plane, stride_h=stride[0],
                  stride_w=stride[1], dil_h=1, dil_w=1, pad_top=pad[0], pad_left=pad[1],
                  rh=rh, rw=rw, pair=int(mode == "pair"), quad=int(mode == "quad"))
    [seen] = _run([layer], rng)
    assert sum(bool(tag & KEEP) for _, _, tag in seen["ranges"]) == 3 * layer["m"]
    if mode:
        words = 4 if mode == "quad" else 2
        assert all(count == words and base % words == 0 for base, count, _ in seen["ranges"])
        assert any(tag & SECOND for _, _, tag in seen["ranges"]) == (pad[1] % 2 == 1)
    if mode == "quad":
        assert any(tag & LOWER for _, _, tag in seen["ranges"]) == (pad[0] % 2 == 1)
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
