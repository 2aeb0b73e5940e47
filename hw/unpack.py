"""Packed low-bit weights → int8 lanes, between the weight memory and the array."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value, signed


def unpack_weights(word: Value, bits: int, lanes: int) -> Value:
    """``lanes`` weights of ``bits`` bits each (lane 0 in the least significant bits) as
    ``lanes`` int8 values, packed the same way.

    8/4/2-bit lanes are two's complement and sign-extended. A 1-bit lane has no zero to
    encode, so it encodes a binary weight: 0 is −1, 1 is +1.
    """
    if bits == 8:
        return word
    values = []
    for lane in range(lanes):
        field = word[lane * bits:(lane + 1) * bits]
        value = Mux(field[0], Const(1, signed(2)), Const(-1, signed(2))) if bits == 1 \
            else field.as_signed()
        values.append(_to_int8(value))
    return Cat(*values)


def _to_int8(value: Value) -> Value:
    # Sign-extend a narrow signed value to 8 bits (Cat would concatenate it unextended).
    return Cat(value, *[value[-1]] * (8 - len(value)))
