"""Small pipeline helpers: delay lines, valid bits and two-step shifts, for every component
that registers a value on its way."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal


def delay_line(m: Module, value, cycles: int, *, name: str) -> list:
    """``[value, value delayed 1 cycle, …, delayed `cycles` cycles]`` as one register chain.

    Works for plain values and :mod:`amaranth.lib.data` views. The registers carry no reset:
    use it for data, and give control bits that must start at 0 their own chain.
    """
    taps = [value]
    for stage in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{stage + 1}", reset_less=True)
        m.d.sync += reg.eq(taps[-1])
        taps.append(reg)
    return taps


def delayed(m: Module, value, cycles: int, *, name: str):
    """``value`` delayed by ``cycles`` registers (``value`` itself for 0)."""
    return delay_line(m, value, cycles, name=name)[-1]


def valid_delayed(m: Module, valid, cycles: int, *, name: str):
    """A valid bit delayed by ``cycles`` resettable registers, so no phantom beat leaves a
    pipeline after reset."""
    for stage in range(cycles):
        reg = Signal(name=f"{name}_d{stage + 1}")
        m.d.sync += reg.eq(valid)
        valid = reg
    return valid


def shift_in_two_stages(m: Module, value, amount, shape, *, left: bool, name: str):
    """``value`` shifted left (or, arithmetically, right) by ``amount``, truncated to ``shape``,
    in two registered stages: by the amount's low two bits, then by the rest, so that neither
    stage is a whole barrel shifter (a few LUT levels each instead of five)."""
    first = Signal(shape if left else value.shape(), name=f"{name}_s1", reset_less=True)
    rest = Signal(len(amount) - 2, name=f"{name}_amount_s1", reset_less=True)
    m.d.sync += [first.eq(value << amount[:2] if left else value >> amount[:2]),
                 rest.eq(amount[2:])]
    out = Signal(shape, name=name, reset_less=True)
    by_rest = Cat(Const(0, 2), rest)
    m.d.sync += out.eq(first << by_rest if left else first >> by_rest)
    return out
