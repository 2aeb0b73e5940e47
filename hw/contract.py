"""The hardware/software contract: every word the accelerator decodes and the compiler encodes,
defined once, in plain Python.

This module imports no Amaranth, so ``quantizer/`` packs memory images with it without loading
the HDL, while ``hw/`` builds its :mod:`amaranth.lib.data` layouts from the same definitions
(:mod:`hw.layouts`). docs/images.md describes these formats in prose.

A word (:class:`WordFormat`) is a sequence of fields (:class:`Field`), the first in the least
significant bits; a field of several lanes holds lane 0 in its least significant bits (like
Amaranth's ``ArrayLayout``); signed values are two's complement. Functions that describe a word
take the hardware configuration (:class:`hw.ArrayConfig`, or anything with its attributes):
field widths follow from its memory depths, lane counts from ``rows`` and ``cols``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:  # annotations only: importing hw.config would import Amaranth
    from .config import ArrayConfig

__all__ = [
    "BIAS_BITS", "DATA_BITS", "DTYPES", "ContractError", "Field", "LAYER_OPS", "M0_BITS",
    "MEM_ACTIVATIONS", "MEMORY_ARRAYS", "MEMORY_NAMES",
    "MEM_PARAMS", "MEM_PROGRAM", "MEM_WEIGHTS", "PAD_BITS", "POW2_M0", "SPATIAL_BITS",
    "STEP_BITS", "REQUANT_MODES", "SHIFT_BITS",
    "SHIFT_MAX", "SHIFT_MIN", "TILE_COUNT_BITS", "WEIGHT_BITS", "WordFormat",
    "activation_format", "address_bits", "data_field", "decode_weight", "dense_geometry",
    "descriptor_format", "memory_array_words", "memory_row_words", "memory_shapes",
    "one_input_fields",
    "raster_fields", "words_per_row",
    "double_bit", "dtype_signed", "encode_weight", "has_multiplier", "lane_params_format",
    "rounding_path", "runtime_rounding_select", "weight_field", "weight_format", "weight_range",
]


class ContractError(ValueError):
    """A value does not fit the word it is packed into, or a word format is malformed."""


# --- data types ---------------------------------------------------------------------------

#: Types of activations, weights, zero points and outputs.
DTYPES = ("int8", "uint8")
#: Bits of one activation, zero point or clamp bound.
DATA_BITS = 8


def dtype_signed(dtype: str) -> bool:
    """True for ``int8``, False for ``uint8``."""
    if dtype not in DTYPES:
        raise ContractError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype == "int8"


# --- requantization -----------------------------------------------------------------------

#: Rounding modes a requantizer can be built with. ``single`` and ``double`` share one
#: multiplier; ``pow2`` alone builds a shift-only requantizer.
REQUANT_MODES = ("double", "single", "pow2")

#: Range of the per-channel shift every rounding mode accepts (TFLite's convention:
#: multiplier = m0 · 2^(shift − 31)). Single rounding needs ``31 − shift ≥ 1``; gemmlowp's
#: RoundingDivideByPOT an exponent of at most 31.
SHIFT_MIN, SHIFT_MAX = -31, 30

#: The ``m0`` of every power-of-two multiplier (TFLite's QuantizeMultiplier of 2^n).
POW2_M0 = 1 << 30

#: Lane widths of a parameter word: int32 bias, unsigned 31-bit ``m0`` (``m0 < 2^31``, so its
#: sign bit is not stored), signed shift.
BIAS_BITS, M0_BITS, SHIFT_BITS = 32, 31, 6


def has_multiplier(requant_modes: Iterable[str]) -> bool:
    """True when the requantizer has a multiplier (``single`` or ``double`` is built)."""
    return bool({"single", "double"} & set(requant_modes))


def runtime_rounding_select(requant_modes: Iterable[str]) -> bool:
    """True when both multiplier roundings are built, so the descriptor's ``double`` bit
    selects one per layer; otherwise the hardware ignores the bit."""
    return {"single", "double"} <= set(requant_modes)


def rounding_path(requant_modes: Iterable[str], rounding: str) -> str | None:
    """The requantizer path that runs a layer quantized with ``rounding`` on hardware built
    with ``requant_modes``, or None if none can.

    ``pow2`` layers run on the ``single`` path when a multiplier is built (identical for
    power-of-two multipliers, ``m0 = POW2_M0``), otherwise on the shift-only path.
    """
    modes = set(requant_modes)
    if rounding == "pow2":
        return "single" if "single" in modes else "pow2" if "pow2" in modes else None
    return rounding if rounding in modes else None


def double_bit(path: str) -> int:
    """The descriptor's ``double`` bit for a layer run on ``path`` (:func:`rounding_path`):
    1 selects double rounding, 0 single rounding (the shift-only path ignores it)."""
    if path not in REQUANT_MODES:
        raise ContractError(f"rounding path must be one of {', '.join(REQUANT_MODES)}, "
                            f"got {path!r}")
    return int(path == "double")


# --- weights ------------------------------------------------------------------------------

#: Bits per weight in the weight memory: int8, or packed 4/2/1-bit lanes.
WEIGHT_BITS = (8, 4, 2, 1)


def _check_weight_bits(bits: int) -> None:
    if bits not in WEIGHT_BITS or isinstance(bits, bool):
        raise ContractError(f"weight_bits must be one of {', '.join(map(str, WEIGHT_BITS))}, "
                            f"got {bits!r}")


def weight_range(bits: int, dtype: str = "int8") -> tuple[int, ...] | range:
    """The weights a ``bits``-bit lane holds: two's complement for 8/4/2 bits (uint8 for an
    8-bit ``uint8`` memory); a 1-bit lane has no zero and holds binary weights −1 and +1."""
    _check_weight_bits(bits)
    if bits == 1:
        return (-1, 1)
    if not dtype_signed(dtype):
        if bits != 8:
            raise ContractError(f"{bits}-bit weights need dtype int8 (uint8 weights are "
                                "offset by 128 and do not pack)")
        return range(0, 1 << 8)
    return range(-(1 << (bits - 1)), 1 << (bits - 1))


def encode_weight(value: int, bits: int, dtype: str = "int8") -> int:
    """The code a ``bits``-bit weight lane stores for ``value`` (before two's-complement
    packing): the value itself, except 1-bit lanes, which store −1 as 0 and +1 as 1."""
    value = int(value)
    if value not in weight_range(bits, dtype):
        raise ContractError(f"weight {value} does not fit a {bits}-bit {dtype} weight lane"
                            + (" (binary: −1 or +1)" if bits == 1 else ""))
    return (value + 1) >> 1 if bits == 1 else value


def decode_weight(code: int, bits: int) -> int:
    """The weight a lane code stands for: what the hardware widens to int8
    (:func:`hw.unpack.unpack_weights`); ``code`` as :meth:`Field.decode` returns it."""
    _check_weight_bits(bits)
    return 2 * int(code) - 1 if bits == 1 else int(code)


# --- word formats -------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One field of a memory word.

    Parameters
    ----------
    name : the field's name (a Python identifier, as the Amaranth layout names it).
    width : bits per value, at least 1.
    signed : two's complement values.
    lanes : None for a single value; ``n`` for an array of ``n`` values, lane 0 in the least
        significant bits (an Amaranth ``ArrayLayout``, even for ``n = 1``).
    values : the values the hardware accepts, if fewer than ``width`` bits encode (a
        ``range``); :meth:`encode` refuses others.
    """

    name: str
    width: int
    signed: bool = False
    lanes: int | None = None
    values: range | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ContractError(f"field name must be an identifier, got {self.name!r}")
        if not isinstance(self.width, int) or isinstance(self.width, bool) or self.width < 1:
            raise ContractError(f"{self.name}: width must be a positive integer, "
                                f"got {self.width!r}")
        if self.lanes is not None and (not isinstance(self.lanes, int) or
                                       isinstance(self.lanes, bool) or self.lanes < 1):
            raise ContractError(f"{self.name}: lanes must be None or a positive integer, "
                                f"got {self.lanes!r}")
        if self.values is not None and not (
                isinstance(self.values, range) and self.values.step == 1 and self.values and
                self._lo <= self.values.start and self.values.stop - 1 <= self._hi):
            raise ContractError(f"{self.name}: values must be a non-empty range within "
                                f"{self._lo}..{self._hi}, got {self.values!r}")

    @property
    def _lo(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def _hi(self) -> int:
        return (1 << (self.width - 1 if self.signed else self.width)) - 1

    @property
    def min(self) -> int:
        """Smallest value :meth:`encode` accepts."""
        return self.values.start if self.values is not None else self._lo

    @property
    def max(self) -> int:
        """Largest value :meth:`encode` accepts."""
        return self.values.stop - 1 if self.values is not None else self._hi

    @property
    def size(self) -> int:
        """Bits the field occupies in its word."""
        return self.width * (1 if self.lanes is None else self.lanes)

    def encode(self, value: int, *, lane: int | None = None) -> int:
        """``value`` as the field's unsigned ``width`` bits; refuses a value outside
        :attr:`min`..:attr:`max`."""
        value = int(value)
        if not self.min <= value <= self.max:
            where = self.name if lane is None else f"{self.name}[{lane}]"
            kind = "signed" if self.signed else "unsigned"
            raise ContractError(f"{where}={value} does not fit its {self.width}-bit {kind} "
                                f"field ({self.min}..{self.max})")
        return value & ((1 << self.width) - 1)

    def decode(self, bits: int) -> int:
        """The value of the field's ``width`` bits ``bits``."""
        bits &= (1 << self.width) - 1
        return bits - (1 << self.width) if self.signed and bits >> (self.width - 1) else bits


FieldValue = Union[int, Sequence[int]]


class WordFormat:
    """The fields of one memory word, least significant first.

    Parameters
    ----------
    name : what the word is (``"layer descriptor"``), for error messages.
    fields : the :class:`Field` objects, least significant first, with distinct names.

    Attributes
    ----------
    size : bits of the word.
    """

    def __init__(self, name: str, fields: Iterable[Field]):
        fields = tuple(fields)
        for field in fields:
            if not isinstance(field, Field):
                raise ContractError(f"{name}: fields must be Field objects, got {field!r}")
        names = [field.name for field in fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ContractError(f"{name}: duplicate field(s) {', '.join(duplicates)}")
        self._name = name
        self._fields = fields
        self._offsets = {}
        offset = 0
        for field in fields:
            self._offsets[field.name] = offset
            offset += field.size
        self._size = offset

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Field]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: str) -> bool:
        return name in self._offsets

    def __getitem__(self, name: str) -> Field:
        for field in self._fields:
            if field.name == name:
                return field
        raise KeyError(f"{self._name} has no field {name!r}")

    def __eq__(self, other) -> bool:
        return isinstance(other, WordFormat) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return f"WordFormat({self._name!r}, {list(self._fields)!r})"

    def offset(self, name: str) -> int:
        """Bit offset of field ``name`` in the word."""
        if name not in self._offsets:
            raise KeyError(f"{self._name} has no field {name!r}")
        return self._offsets[name]

    def pack(self, values: Mapping[str, FieldValue]) -> int:
        """One word from ``{field name: value}`` (a sequence of ``lanes`` values for a lane
        field). Every field must be given, and nothing else."""
        missing = [field.name for field in self._fields if field.name not in values]
        unknown = sorted(set(values) - set(self._offsets))
        if missing or unknown:
            raise ContractError(
                f"{self._name}: " + "; ".join(
                    ([f"missing field(s) {', '.join(missing)}"] if missing else []) +
                    ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])))
        word = 0
        try:
            for field in self._fields:
                offset, value = self._offsets[field.name], values[field.name]
                if field.lanes is None:
                    word |= field.encode(value) << offset
                    continue
                lanes = list(value)
                if len(lanes) != field.lanes:
                    raise ContractError(f"{field.name} has {field.lanes} lanes, "
                                        f"got {len(lanes)} values")
                for lane, lane_value in enumerate(lanes):
                    word |= field.encode(lane_value, lane=lane) << (offset + lane * field.width)
        except ContractError as exc:
            raise ContractError(f"{self._name}: {exc}") from None
        return word

    def pack_array(self, values: Mapping[str, np.ndarray]) -> list[int]:
        """Many words at once, each as :meth:`pack` makes it, with the same checks:
        ``{field name: array}`` whose first axis counts the words (a lane field's second
        axis is its lanes). Whole images go through this: a 16-lane activation image of
        100,000 words packs in milliseconds, where a word at a time takes seconds."""
        if set(values) != set(self._offsets):
            self.pack(values)  # raises pack's error: a field missing or unknown
        self._check_array_widths()
        count = len(values[self._fields[0].name]) if self._fields else 0
        if count == 0:
            return []
        bits = np.zeros((count, -(-self._size // 8) * 8), dtype=np.uint8)
        for field in self._fields:
            array = np.asarray(values[field.name], dtype=np.int64)
            lanes = field.lanes or 1
            if array.shape != ((count,) if field.lanes is None else (count, lanes)):
                raise ContractError(f"{self._name}: {count} words need {field.name} of shape "
                                    f"({count}{', ' + str(lanes) if field.lanes else ''}), "
                                    f"got {array.shape}")
            wrong = np.flatnonzero(((array < field.min) | (array > field.max)).reshape(count, -1)
                                   .any(axis=1))
            if len(wrong):  # pack names the first value that does not fit
                self.pack({f.name: np.asarray(values[f.name])[wrong[0]].tolist()
                           for f in self._fields})
            offset, width = self._offsets[field.name], field.width
            raw = (array & ((1 << width) - 1)).astype("<u8").view(np.uint8)
            lane_bits = np.unpackbits(raw.reshape(count, lanes, 8)[:, :, :-(-width // 8)],
                                      axis=2, bitorder="little")[:, :, :width]
            bits[:, offset:offset + field.size] = lane_bits.reshape(count, field.size)
        data = np.packbits(bits, axis=1, bitorder="little").tobytes()
        size = len(data) // count
        return [int.from_bytes(data[i * size:(i + 1) * size], "little") for i in range(count)]

    def unpack_array(self, words: Sequence[int]) -> dict[str, np.ndarray]:
        """Inverse of :meth:`pack_array`: ``{field name: values}`` (a lane field's of shape
        ``(words, lanes)``), with :meth:`unpack`'s check of every word."""
        self._check_array_widths()
        words = [int(word) for word in words]
        wrong = next((word for word in words if not 0 <= word < 1 << self._size), None)
        if wrong is not None:
            self.unpack(wrong)  # raises unpack's error
        size, count = -(-self._size // 8), len(words)
        data = b"".join(word.to_bytes(size, "little") for word in words)
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8).reshape(count, size), axis=1,
                             bitorder="little")
        values = {}
        for field in self._fields:
            offset, lanes = self._offsets[field.name], field.lanes or 1
            raw = np.zeros((count, lanes, 8), dtype=np.uint8)  # each value's 64-bit bytes
            raw[:, :, :-(-field.width // 8)] = np.packbits(
                bits[:, offset:offset + field.size].reshape(count, lanes, field.width),
                axis=2, bitorder="little")
            raw = raw.view("<u8")[:, :, 0].astype(np.int64)
            if field.signed:
                raw = np.where(raw >> (field.width - 1), raw - (1 << field.width), raw)
            values[field.name] = raw if field.lanes else raw[:, 0]
        return values

    def _check_array_widths(self) -> None:
        wide = [field.name for field in self._fields if field.width > 63]
        if wide:  # numpy's int64 holds the values
            raise ContractError(f"{self._name}: fields of more than 63 bits ({', '.join(wide)})"
                                " are packed a word at a time (pack, unpack)")

    def unpack(self, word: int) -> dict[str, FieldValue]:
        """Inverse of :meth:`pack`: ``{field name: value or list of lane values}``."""
        word = int(word)
        if not 0 <= word < 1 << self._size:
            raise ContractError(f"{self._name}: {word} is not a {self._size}-bit word")
        values: dict[str, FieldValue] = {}
        for field in self._fields:
            offset = self._offsets[field.name]
            if field.lanes is None:
                values[field.name] = field.decode(word >> offset)
            else:
                values[field.name] = [field.decode(word >> (offset + lane * field.width))
                                      for lane in range(field.lanes)]
        return values


def address_bits(depth: int) -> int:
    """Bits of an address into a memory of ``depth`` words (at least 1)."""
    return max(1, (depth - 1).bit_length())


# --- the accelerator's memories -----------------------------------------------------------

#: ``host_sel`` values: the memory a host write goes to.
MEM_WEIGHTS, MEM_ACTIVATIONS, MEM_PARAMS, MEM_PROGRAM = 0, 1, 2, 3

#: The Verilog arrays of those memories in the accelerator's top module (``host_sel`` →
#: name): the simulation loader (:mod:`verif.bulk_load`) reads images into them.
MEMORY_ARRAYS = {MEM_WEIGHTS: "wmem", MEM_ACTIVATIONS: "amem", MEM_PARAMS: "pmem",
                 MEM_PROGRAM: "prog"}

#: The memories by ``host_sel``, as :func:`memory_shapes` names them.
MEMORY_NAMES = {MEM_WEIGHTS: "weights", MEM_ACTIVATIONS: "activations", MEM_PARAMS: "params",
                MEM_PROGRAM: "program"}

#: Width of a descriptor's tile counts: layers up to 4095 tiles along K and along N.
TILE_COUNT_BITS = 12

#: Widths of a descriptor's convolution geometry (docs/images.md): feature-map heights and
#: widths (input and output) and the kernel width up to 1023, strides and dilations 1..15,
#: top and left padding 0..15.
SPATIAL_BITS, STEP_BITS, PAD_BITS = 10, 4, 4


#: What a layer does (the descriptor's ``op``), by its index:
#:
#: - ``matmul``: the systolic array multiplies the im2col'd input by a weight matrix
#:   (CONV_2D, FULLY_CONNECTED);
#: - ``mac``: the vector unit multiplies each channel of every tap by that channel's weight
#:   and the partial sums add up over the taps (DEPTHWISE_CONV_2D; AVERAGE_POOL_2D and MEAN
#:   with weights of 1);
#: - ``max``: the vector unit passes each channel of every tap, less the zero point, and the
#:   partial sums keep the largest over the taps (MAX_POOL_2D; padded taps read the type's
#:   lowest value);
#: - ``add``: two taps, the input at ``in_base`` and the one at ``in2_base``, each rescaled by
#:   TFLite's ``(x − z)·2^20`` then ``MultiplyByQuantizedMultiplierSmallerThanOneExp`` with
#:   its ``m0``/``shift`` (``m0_a``/``shift_a``, ``m0_b``/``shift_b``), and summed (ADD);
#: - ``window``: the window unit (:mod:`hw.window`) reads the padded input once, raster by
#:   raster (``rh × rw`` words a sample), keeps the last ``K`` rows in line buffers and sums
#:   ``(x − zx)·(w − zw)`` over each K×K window that ends on an output pixel (a K×K
#:   DEPTHWISE_CONV_2D, ``K`` the configuration's ``window``; one K tile, ``K·K`` weight words
#:   a column tile).
#:
#: Every layer then goes through the requantizer with its parameter words.
LAYER_OPS = ("matmul", "mac", "max", "add", "window")


def data_field(name: str, dtype: str, lanes: int | None = None) -> Field:
    """An 8-bit activation, zero point or clamp bound (``lanes`` of them), of ``dtype``."""
    return Field(name, DATA_BITS, signed=dtype_signed(dtype), lanes=lanes)


def descriptor_format(config: ArrayConfig) -> WordFormat:
    """One layer of the program: ``m`` output pixels (samples × OH × OW), ``k_tiles × n_tiles``
    weight tiles, memory bases, zero points (input, weight, output), clamp bounds, the
    rounding select (:func:`double_bit`), ``last`` (the final layer) and the convolution
    geometry the address generator walks (docs/images.md): input ``h × w``, output
    ``oh × ow``, kernel width ``kw`` (the kernel height is ``k_tiles / (kw·groups)``),
    ``groups`` channel groups of ``rows`` channels, ``plane`` = words of one channel group of
    the input (samples·h·w), ``out_plane`` = those of the output (``m``, unless the layer runs
    in several passes over parts of its output, each a descriptor of its own), strides,
    dilations and the top/left padding. A fully-connected layer is the convolution with
    ``h = w = oh = ow = kw = 1``, ``groups = k_tiles``, ``plane = out_plane = m``, strides and
    dilations 1, no padding.

    Then the layer's operation (``op``, an index into :data:`LAYER_OPS`), the value of the
    output words' unused lanes (``zpad``, the output tensor's zero point: the requantizer's
    ``zy`` differs from it for average pooling, whose sums include the input zero point), and
    the second input of an ``add`` (base, zero point, and both inputs' rescaling; zero for
    other layers, :func:`one_input_fields`), and the raster a ``window`` layer reads, ``rh``
    rows of ``rw`` words a sample, ``pair``: it streams two words a beat, and ``quad``: it
    streams a 2×2 block of its input a beat, its input held in blocks (zero for other layers,
    :func:`raster_fields`). Last ``out_blocks``: the layer writes its output in blocks of 2×2
    pixels (docs/images.md), for a ``quad`` layer to read."""
    act = address_bits(config.act_depth)
    return WordFormat("layer descriptor", [
        Field("m", address_bits(config.psum_depth + 1)),
        Field("k_tiles", TILE_COUNT_BITS),
        Field("n_tiles", TILE_COUNT_BITS),
        Field("in_base", act),
        Field("out_base", act),
        Field("w_base", address_bits(config.weight_depth)),
        Field("p_base", address_bits(config.param_depth)),
        *(data_field(name, config.dtype) for name in ("zx", "zw", "zy", "act_min", "act_max")),
        Field("double", 1),
        Field("last", 1),
        *(Field(name, SPATIAL_BITS) for name in ("h", "w", "oh", "ow", "kw")),
        Field("groups", TILE_COUNT_BITS),
        Field("plane", address_bits(config.act_depth + 1)),
        Field("out_plane", address_bits(config.act_depth + 1)),
        *(Field(name, STEP_BITS) for name in ("stride_h", "stride_w", "dil_h", "dil_w")),
        *(Field(name, PAD_BITS) for name in ("pad_top", "pad_left")),
        Field("op", 3, values=range(len(LAYER_OPS))),
        data_field("zpad", config.dtype),
        Field("in2_base", act),
        data_field("zx2", config.dtype),
        *(field for tap in "ab" for field in (
            Field(f"m0_{tap}", M0_BITS),
            Field(f"shift_{tap}", SHIFT_BITS, signed=True, values=range(SHIFT_MIN, 1)))),
        *(Field(name, SPATIAL_BITS) for name in ("rh", "rw")),
        Field("pair", 1),
        Field("quad", 1),
        Field("out_blocks", 1),
    ])


def one_input_fields() -> dict[str, int]:
    """The descriptor's second-input fields of a layer that is not an ``add``."""
    return {"in2_base": 0, "zx2": 0, "m0_a": 0, "shift_a": 0, "m0_b": 0, "shift_b": 0}


def raster_fields(rh: int = 0, rw: int = 0, pair: bool = False,
                  quad: bool = False) -> dict[str, int]:
    """The descriptor's raster fields: a ``window`` layer's ``rh × rw`` padded input words a
    sample and whether it streams them two a beat (pair mode: a stride-2 layer whose input
    rows start on two-word boundaries, :meth:`~hw.config.ArrayConfig.act_words_per_row`) or
    a 2×2 block a beat (quad mode: a stride-2 layer whose input is held in blocks); zero for
    other layers."""
    return {"rh": rh, "rw": rw, "pair": int(pair), "quad": int(quad)}


def dense_geometry(m: int, k_tiles: int) -> dict[str, int]:
    """The descriptor's convolution fields of a fully-connected layer of ``m`` samples."""
    return {"h": 1, "w": 1, "oh": 1, "ow": 1, "kw": 1, "groups": k_tiles, "plane": m,
            "out_plane": m,
            "stride_h": 1, "stride_w": 1, "dil_h": 1, "dil_w": 1, "pad_top": 0, "pad_left": 0}


def lane_params_format(config: ArrayConfig) -> WordFormat:
    """One parameter word, the requantization parameters of one column tile: ``bias``,
    ``m0`` (multiplier builds only) and ``shift``, ``cols`` lanes each."""
    cols = config.cols
    return WordFormat("parameter word", [
        Field("bias", BIAS_BITS, signed=True, lanes=cols),
        *([Field("m0", M0_BITS, lanes=cols)] if has_multiplier(config.requant_modes) else []),
        Field("shift", SHIFT_BITS, signed=True, lanes=cols,
              values=range(SHIFT_MIN, SHIFT_MAX + 1)),
    ])


def weight_field(bits: int, lanes: int, dtype: str = "int8") -> Field:
    """``lanes`` weight codes (:func:`encode_weight`) of ``bits`` bits each."""
    weight_range(bits, dtype)  # refuses packed uint8
    return Field("w", bits, signed=bits != 1 and dtype_signed(dtype), lanes=lanes)


def weight_format(config: ArrayConfig) -> WordFormat:
    """One weight-memory word: row ``k`` of a weight tile, lane ``c`` = code of ``W[k, c]``."""
    return WordFormat("weight word", [weight_field(config.weight_bits, config.cols,
                                                   config.dtype)])


def activation_format(config: ArrayConfig) -> WordFormat:
    """One activation-memory word: ``rows`` values, lane ``r`` = input ``r`` of a K-slice."""
    return WordFormat("activation word", [data_field("x", config.dtype, config.rows)])


def words_per_row(config: ArrayConfig, sel: int) -> int:
    """Words a row of memory ``sel``'s array holds: ``weight_load_rows`` for the weights,
    :attr:`~hw.config.ArrayConfig.act_words_per_row` for the activations, else 1."""
    return {MEM_WEIGHTS: config.weight_load_rows,
            MEM_ACTIVATIONS: config.act_words_per_row}.get(sel, 1)


def memory_shapes(config: ArrayConfig) -> dict[str, tuple[int, int]]:
    """``(bits per row, rows)`` of each of the accelerator's memory arrays: the four the host
    loads (the weight and activation memories hold :func:`words_per_row` words a row), the
    partial sums (one ``acc_width`` sum per column) and, with a window unit, its line buffer
    (``window − 1`` rows of ``cols`` values for each of two raster columns a row)."""
    def rows_of(sel: int, width: int, depth: int) -> tuple[int, int]:
        per_row = words_per_row(config, sel)
        return width * per_row, -(-depth // per_row)

    shapes = {"weights": rows_of(MEM_WEIGHTS, weight_format(config).size, config.weight_depth),
              "activations": rows_of(MEM_ACTIVATIONS, activation_format(config).size,
                                     config.act_depth),
              "params": (lane_params_format(config).size, config.param_depth),
              "program": (descriptor_format(config).size, config.program_depth),
              "psums": (config.acc_width * config.cols, config.psum_depth)}
    if config.window:
        shapes["lines"] = (2 * (config.window - 1) * DATA_BITS * config.cols,
                           -(-config.window_width // 2))
    return shapes


def memory_array_words(config: ArrayConfig, sel: int, base: int,
                       words: Sequence[int]) -> tuple[int, list[int]]:
    """Where ``words``, memory ``sel``'s words from address ``base`` as the host and the
    compiler count them, sit in its memory array (:func:`memory_shapes`), and the array rows
    they make: a memory of :func:`words_per_row` words a row keeps consecutive words in a
    row, the first in the low bits, so its images start at a multiple of that (a missing
    last word is 0). Baked images and the simulation loader write the array directly."""
    per_row = words_per_row(config, sel)
    if base % per_row:
        raise ContractError(f"{MEMORY_NAMES[sel]} memory images start at a multiple of "
                            f"{per_row} words, got {base}")
    width = memory_shapes(config)[MEMORY_NAMES[sel]][0] // per_row
    words = [int(word) for word in words] + [0] * (-len(words) % per_row)
    return base // per_row, [sum(word << (i * width) for i, word in
                                 enumerate(words[row:row + per_row]))
                             for row in range(0, len(words), per_row)]


def memory_row_words(config: ArrayConfig, sel: int, rows: Sequence[int]) -> list[int]:
    """Inverse of :func:`memory_array_words`: the words, in address order, of memory
    ``sel``'s array ``rows`` (as a simulator dumps them)."""
    per_row = words_per_row(config, sel)
    width = memory_shapes(config)[MEMORY_NAMES[sel]][0] // per_row
    return [(int(row) >> (i * width)) & ((1 << width) - 1) for row in rows
            for i in range(per_row)]

