"""Small pipeline helpers: delay lines, valid bits, shifts in stages, per-lane copies and loop
counters' last-value flags, for every component that registers a value on its way."""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value


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


def shift_in_stages(m: Module, value, amount, shape, *, left: bool, name: str,
                    splits: tuple[int, ...] = (2,)):
    """``value`` shifted left (or, arithmetically, right) by ``amount``, truncated to ``shape``,
    in registered stages, one per slice of the amount's bits that ``splits`` (the bit
    positions where a stage ends) cuts: by default by the low two bits, then by the rest, so
    that no stage is a whole barrel shifter (a few LUT levels each instead of five). The
    result is ``len(splits) + 1`` cycles later."""
    bounds = [0, *splits, len(amount)]
    for stage, (low, high) in enumerate(zip(bounds, bounds[1:])):
        last = high == len(amount)
        by = Cat(Const(0, low), amount[low:high])
        shifted = Signal(shape if left or last else value.shape(),
                         name=name if last else f"{name}_s{stage + 1}", reset_less=True)
        m.d.sync += shifted.eq(value << by if left else value >> by)
        if not last:
            rest = Signal(len(amount), name=f"{name}_amount_s{stage + 1}", reset_less=True)
            m.d.sync += rest.eq(amount)
            amount = rest
        value = shifted
    return value


def lane_copies(m: Module, value, count: int, *, name: str) -> list[Signal]:
    """``count`` copies of ``value``, a cycle later, one register each marked ``keep``: a
    layer-wide field that every lane reads gets a copy per lane, placed beside the lane,
    instead of one register routed across the chip to all of them. Synthesis merges
    identical registers unless told not to; ``mxugen fpga`` keeps these (Yosys reads
    ``keep`` on a register's always block, not on its wire: docs/verilog.md)."""
    copies = []
    for lane in range(count):
        copy = Signal(value.shape(), name=f"{name}{lane}", reset_less=True,
                      attrs={"keep": 1})
        m.d.sync += copy.eq(value)
        copies.append(copy)
    return copies


class LoopEnd(NamedTuple):
    """A loop's end, as :func:`~hw.sequencer.loop_end` makes it for :func:`next_is_last`."""

    #: Whether the running layer's loop has one step (a register).
    single: Value
    #: The loop's last value less one, negative for one step (a register).
    before_last: Value
    #: ``single`` of the layer being launched, to restart the loop's flag from at the launch.
    first_single: Value


def next_is_last(counter, last, end: LoopEnd):
    """Whether a loop counter that counts from 0 to its last value and back to 0 is at its
    last value after its next step, ``last`` saying whether it is now; ``end`` says whether
    the loop has one step and its last value less one, in registers (:class:`LoopEnd`).
    Registered beside the counter as it steps, it lets
    what the loop's end enables (the next counters, a stream's ``last``) be a LUT from
    registers, not a compare of the counter; and the compare here is of two registers, with
    no add's carry chain before it. Short of its last value the counter is at most the one
    before, so it is there when it is not below it: a carry chain's sign, where an equality
    of a dozen bits is three LUT levels."""
    return Mux(last, end.single, counter >= end.before_last)


def next_is_last_but_one(counter, last_but_one, shorter: LoopEnd):
    """Whether a loop counter that steps (it is not at its last value) is at its last value
    but one after the step, ``last_but_one`` saying whether it is now; ``shorter`` is the end
    of the loop a step shorter (:func:`~hw.sequencer.loop_end`), and the flag restarts from
    its ``single`` when the counter does. Registered beside the counter with its last flag, it
    makes the last flag's next value a register too: what reads both (a flag of two loops'
    ends, :class:`~hw.addrgen.ActivationAddressGenerator`'s kernel wrap) is a LUT from
    registers, with no compare's carry chain before it."""
    return ~last_but_one & (counter >= shorter.before_last)
