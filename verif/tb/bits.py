"""Amaranth layouts on cocotb ports: the bits of a port as the layout's fields, and back."""

from __future__ import annotations

from amaranth.lib import data


def pack(layout: data.Layout, value) -> int:
    """Python value (dict/list nesting mirroring ``layout``) → the port's integer bits."""
    return layout.const(value).as_value().value


def unpack(layout: data.Layout, bits) -> data.Const:
    """Port bits → a :class:`amaranth.lib.data.Const` with field and index access."""
    return layout.from_bits(int(bits))
