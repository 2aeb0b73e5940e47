"""Accumulator-overflow bounds: prove, per layer, that the silicon's accumulator cannot wrap.

With int8 operands a product is at most 2^14 in magnitude (2^16 with zero points subtracted),
so short reductions are always safe; long ones, large biases or narrow accumulators are not.
The bound here is exact for the given weights: it is the extreme over every input in
``[input_min, input_max]``, not a product of worst cases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import QuantizerError


class AccumulatorOverflowError(QuantizerError):
    """A layer's accumulator could leave the signed range of the accumulator width."""


@dataclass(frozen=True)
class AccumulatorRange:
    """Extremes a layer's accumulators can reach, per output channel.

    Attributes
    ----------
    partial_min, partial_max : bounds of every partial sum Σ over any subset of k (what the
        array and the partial-sum buffer hold before the bias is added).
    final_min, final_max : bounds of ``bias + Σ_k`` (what the requantizer receives).
    """

    partial_min: np.ndarray
    partial_max: np.ndarray
    final_min: np.ndarray
    final_max: np.ndarray

    def bits_needed(self) -> int:
        """Smallest signed width that holds every partial and final value."""
        lo = int(min(self.partial_min.min(), self.final_min.min()))
        hi = int(max(self.partial_max.max(), self.final_max.max()))
        return max(_signed_bits(lo), _signed_bits(hi))


def _signed_bits(value: int) -> int:
    return (value if value >= 0 else -value - 1).bit_length() + 1


def accumulator_range(w, *, input_zero_point: int, weight_zero_point: int = 0, bias=None,
                      input_min: int = -128, input_max: int = 127) -> AccumulatorRange:
    """Exact accumulator extremes for weights ``w`` of shape ``(C, ...)`` (the reduction axes
    are flattened) over all inputs in ``[input_min, input_max]``."""
    w = np.asarray(w, dtype=np.int64)
    if w.ndim < 2:
        raise QuantizerError(f"weights need an output axis and a reduction axis, got {w.shape}")
    w = w.reshape(w.shape[0], -1) - int(weight_zero_point)
    lo_x, hi_x = int(input_min) - int(input_zero_point), int(input_max) - int(input_zero_point)
    term_max = np.maximum(w * lo_x, w * hi_x)
    term_min = np.minimum(w * lo_x, w * hi_x)
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, np.int64)
    return AccumulatorRange(
        partial_min=np.minimum(term_min, 0).sum(axis=1),
        partial_max=np.maximum(term_max, 0).sum(axis=1),
        final_min=term_min.sum(axis=1) + b,
        final_max=term_max.sum(axis=1) + b,
    )


def check_accumulator(w, *, input_zero_point: int, weight_zero_point: int = 0, bias=None,
                      input_min: int = -128, input_max: int = 127, acc_bits: int = 32,
                      layer: str = "layer") -> AccumulatorRange:
    """Raise :class:`AccumulatorOverflowError` if any accumulator of the layer could leave the
    signed ``acc_bits`` range; return the range otherwise."""
    rng = accumulator_range(w, input_zero_point=input_zero_point,
                            weight_zero_point=weight_zero_point, bias=bias,
                            input_min=input_min, input_max=input_max)
    need = rng.bits_needed()
    if need > acc_bits:
        raise AccumulatorOverflowError(
            f"{layer}: accumulators can reach {need} bits but the array has {acc_bits}; "
            f"split the reduction (K={np.asarray(w).reshape(len(w), -1).shape[1]}) "
            f"or build a wider accumulator")
    return rng
