"""Memory-image file formats: Verilog ``$readmemh`` hex (the primary format), Xilinx ``.coe``
and Intel ``.mif``.

A memory image is a list of unsigned words of a fixed bit width. Multi-lane words are packed
little-endian by lane, like Amaranth's ``ArrayLayout``: lane 0 in the least significant bits
(:func:`pack_lanes`). What the words of each on-chip memory mean is documented in
``docs/images.md``; this module only moves words to and from files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import QuantizerError
from .files import write_atomic

FORMATS = ("hex", "coe", "mif")


def pack_lanes(values, lane_bits: int) -> list[int]:
    """Rows of lane values (``(words, lanes)``, signed or unsigned) → words, lane 0 in the
    least significant bits, each lane in two's complement of ``lane_bits`` bits."""
    values = np.asarray(values, dtype=np.int64)
    if values.ndim != 2:
        raise QuantizerError(f"pack_lanes needs a 2-D array (words, lanes), got {values.shape}")
    lo, hi = -(1 << (lane_bits - 1)), (1 << lane_bits) - 1
    if values.size and (values.min() < lo or values.max() > hi):
        raise QuantizerError(f"lane values must fit {lane_bits} bits, got values in "
                             f"[{values.min()}, {values.max()}]")
    mask = (1 << lane_bits) - 1
    words = []
    for row in values.tolist():
        word = 0
        for lane, value in enumerate(row):
            word |= (value & mask) << (lane * lane_bits)
        words.append(word)
    return words


def unpack_lanes(words, lanes: int, lane_bits: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: words → ``(words, lanes)`` array."""
    mask = (1 << lane_bits) - 1
    out = np.array([[(w >> (lane * lane_bits)) & mask for lane in range(lanes)] for w in words],
                   dtype=np.int64).reshape(len(words), lanes)
    if signed:
        out = np.where(out >= 1 << (lane_bits - 1), out - (1 << lane_bits), out)
    return out


def _check_words(words, width: int) -> list[int]:
    if width < 1:
        raise QuantizerError(f"word width must be at least 1 bit, got {width}")
    words = [int(w) for w in words]
    for address, word in enumerate(words):
        if not 0 <= word < (1 << width):
            raise QuantizerError(
                f"word {address} ({word}) does not fit an unsigned {width}-bit memory word")
    return words


def _digits(width: int) -> int:
    return (width + 3) // 4


def format_readmemh(words, width: int, comment: str = "") -> str:
    """``$readmemh`` text: one hex word per line, zero-padded; ``comment`` as ``//`` lines."""
    words = _check_words(words, width)
    header = "".join(f"// {line}\n" for line in comment.splitlines())
    return header + "".join(f"{w:0{_digits(width)}x}\n" for w in words)


def parse_readmemh(text: str) -> list[int]:
    """Words of a ``$readmemh`` file (comments and blank lines skipped; no ``@`` addresses)."""
    words = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("//", 1)[0].strip()
        for token in line.split():
            if token.startswith("@"):
                raise QuantizerError(f"line {number}: address records (@) are not supported")
            try:
                words.append(int(token.replace("_", ""), 16))
            except ValueError:
                raise QuantizerError(f"line {number}: {token!r} is not a hex word") from None
    return words


def format_coe(words, width: int) -> str:
    """Xilinx coefficient file for Block Memory Generator initialization (radix 16)."""
    words = _check_words(words, width)
    body = ",\n".join(f"{w:0{_digits(width)}x}" for w in words) or "0"
    return f"memory_initialization_radix=16;\nmemory_initialization_vector=\n{body};\n"


def format_mif(words, width: int, depth: int | None = None) -> str:
    """Intel Memory Initialization File; addresses past the image (up to ``depth``) are 0."""
    words = _check_words(words, width)
    depth = len(words) if depth is None else int(depth)
    if depth < len(words):
        raise QuantizerError(f"image has {len(words)} words but the memory only {depth}")
    lines = [f"DEPTH = {depth};", f"WIDTH = {width};", "ADDRESS_RADIX = HEX;",
             "DATA_RADIX = HEX;", "CONTENT", "BEGIN"]
    lines += [f"{a:x} : {w:0{_digits(width)}x};" for a, w in enumerate(words)]
    if depth > len(words):
        lines.append(f"[{len(words):x}..{depth - 1:x}] : {0:0{_digits(width)}x};")
    lines.append("END;")
    return "\n".join(lines) + "\n"


def write_image(path: Path | str, words, width: int, fmt: str = "hex", *,
                depth: int | None = None, comment: str = "") -> Path:
    """Write one memory image in ``fmt`` (``hex``, ``coe`` or ``mif``), atomically."""
    if fmt == "hex":
        text = format_readmemh(words, width, comment)
    elif fmt == "coe":
        text = format_coe(words, width)
    elif fmt == "mif":
        text = format_mif(words, width, depth)
    else:
        raise QuantizerError(f"unknown image format {fmt!r}: choose one of {', '.join(FORMATS)}")
    write_atomic(path, text)
    return Path(path)
