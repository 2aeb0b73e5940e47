"""Amaranth views of the hardware/software contract: :mod:`amaranth.lib.data` layouts built from
the word formats of :mod:`hw.contract`, so the hardware decodes exactly what the compiler packs."""

from __future__ import annotations

from amaranth.hdl import ShapeLike, signed, unsigned
from amaranth.lib import data

from .config import ArrayConfig
from .contract import Field, WordFormat, descriptor_format, lane_params_format


def field_shape(field: Field) -> ShapeLike:
    """The shape of one field: ``signed``/``unsigned(width)``, in an ``ArrayLayout`` for a lane
    field (even of one lane, so lanes are always indexed)."""
    shape = signed(field.width) if field.signed else unsigned(field.width)
    return shape if field.lanes is None else data.ArrayLayout(shape, field.lanes)


def struct_layout(word: WordFormat) -> data.StructLayout:
    """A word format as a ``StructLayout``: same fields, same order, same bit offsets."""
    return data.StructLayout({field.name: field_shape(field) for field in word})


def descriptor_layout(config: ArrayConfig) -> data.StructLayout:
    """One layer of the program (:func:`hw.contract.descriptor_format`)."""
    return struct_layout(descriptor_format(config))


#: The descriptor fields that bound a loop counter, whose last value (the field less one) the
#: sequencer registers as a layer launches (:func:`loop_ends_layout`).
LOOP_BOUNDS = ("m", "k_tiles", "n_tiles", "oh", "ow", "kw", "groups", "stride_h", "stride_w")


def loop_ends_layout(config: ArrayConfig) -> data.StructLayout:
    """Each of :data:`LOOP_BOUNDS` less one: a counter's last value, exact (one bit wider and
    signed, so a bound of 0 gives −1, which no counter reaches)."""
    fields = {field.name: field for field in descriptor_format(config)}
    return data.StructLayout({name: signed(fields[name].width + 1) for name in LOOP_BOUNDS})


def lane_params_layout(config: ArrayConfig) -> data.StructLayout:
    """Per-column requantization parameters, one word of the parameter memory:
    :func:`hw.contract.lane_params_format`."""
    return struct_layout(lane_params_format(config))
