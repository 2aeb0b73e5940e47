"""Memory-image file formats: $readmemh, .coe, .mif, and lane packing."""

from __future__ import annotations

import numpy as np
import pytest

from quantizer import QuantizerError
from quantizer.image_formats import (format_coe, format_mif, format_readmemh, pack_lanes,
                                     parse_readmemh, unpack_lanes, write_image)


def test_pack_lanes_is_little_endian_by_lane():
    # lane 0 = -1 (0xff) in the low byte, lane 1 = 2, lane 2 = -128 (0x80) in the high byte
    assert pack_lanes([[-1, 2, -128]], 8) == [0x8002FF]


def test_pack_unpack_round_trip(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(-128, 128, size=(20, 7))
    np.testing.assert_array_equal(unpack_lanes(pack_lanes(values, 8), 7, 8), values)
    unsigned = rng.integers(0, 256, size=(5, 3))
    np.testing.assert_array_equal(unpack_lanes(pack_lanes(unsigned, 8), 3, 8, signed=False),
                                  unsigned)


def test_readmemh_round_trip_with_comment(seed):
    rng = np.random.default_rng(seed)
    words = [int(w) for w in rng.integers(0, 1 << 62, size=50)]
    text = format_readmemh(words, 62, comment="weights of layer 0\nrows=8")
    assert text.startswith("// weights of layer 0\n// rows=8\n")
    assert all(len(line) == 16 for line in text.splitlines()[2:])  # ceil(62/4) digits
    assert parse_readmemh(text) == words


def test_coe_and_mif_layout():
    assert format_coe([1, 255], 8) == ("memory_initialization_radix=16;\n"
                                       "memory_initialization_vector=\n01,\nff;\n")
    mif = format_mif([0xA, 0xBC], 12, depth=8).splitlines()
    assert mif[:6] == ["DEPTH = 8;", "WIDTH = 12;", "ADDRESS_RADIX = HEX;", "DATA_RADIX = HEX;",
                       "CONTENT", "BEGIN"]
    assert mif[6:] == ["0 : 00a;", "1 : 0bc;", "[2..7] : 000;", "END;"]


@pytest.mark.parametrize("call, message", [
    (lambda: format_readmemh([256], 8), r"word 0 \(256\) does not fit an unsigned 8-bit"),
    (lambda: format_readmemh([-1], 8), r"does not fit"),
    (lambda: format_mif([1, 2, 3], 8, depth=2), r"image has 3 words but the memory only 2"),
    (lambda: pack_lanes([[300]], 8), r"lane values must fit 8 bits"),
    (lambda: parse_readmemh("0a\nzz\n"), r"line 2: 'zz' is not a hex word"),
    (lambda: write_image("/tmp/x.img", [1], 8, "bin"), r"unknown image format 'bin'"),
])
def test_bad_images_are_refused(call, message):
    with pytest.raises(QuantizerError, match=message):
        call()


@pytest.mark.parametrize("fmt", ["hex", "coe", "mif"])
def test_write_image_leaves_no_temporary_files(tmp_path, fmt):
    path = write_image(tmp_path / f"w.{fmt}", [1, 2, 3], 16, fmt)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.read_text().endswith("\n")
