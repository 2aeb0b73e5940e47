"""Small pipeline helpers shared by the array and the requantizer."""

from __future__ import annotations

from amaranth.hdl import Module, Signal


def delayed(m: Module, value, cycles: int, *, name: str):
    """Return ``value`` delayed by ``cycles`` registers in ``m``'s sync domain.

    Works for plain values and :mod:`amaranth.lib.data` views; ``cycles == 0`` returns
    ``value`` itself.
    """
    for stage in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{stage + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
