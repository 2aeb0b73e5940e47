"""Weight quantization: int8 and the low-bit formats, all symmetric (zero point 0 for int8
networks), per output channel or per tensor.

========  =====  ============  ===========================================================
format    bits   values        scale
========  =====  ============  ===========================================================
int8      8      [-127, 127]   max|W| / 127 (TFLite)
int4      4      [-7, 7]       the clipping of max|W| that minimises the squared error
int2      2      [-1, 1]       the clipping of max|W| that minimises the squared error
ternary   2      {-1, 0, 1}    threshold Δ = 0.7·mean|W|; scale = mean of |W| above Δ
                               (Li & Liu, Ternary Weight Networks, 2016)
binary    1      {-1, 1}       mean|W| (Rastegari et al., XNOR-Net, 2016)
========  =====  ============  ===========================================================

Every format's values are small integers, so the int8 array runs them exactly; the scale
folds into the requantization multiplier. In memory images a weight takes ``bits`` bits
(two's complement; 1-bit lanes encode −1 as 0 and +1 as 1, see docs/images.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import QuantizerError
from .schemes import round_half_away

#: format → bits per weight in memory
WEIGHT_FORMATS: dict[str, int] = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2, "binary": 1}

_CLIP_RATIOS = np.linspace(0.25, 1.0, 61)


@dataclass(frozen=True)
class QuantizedWeights:
    """``W ≈ scale[c] · (values[c, :] − zero_point)``."""

    values: np.ndarray      # (out, in) int64
    scale: np.ndarray       # (out,)
    zero_point: int
    format: str

    @property
    def bits(self) -> int:
        return WEIGHT_FORMATS[self.format]

    def dequantize(self) -> np.ndarray:
        return self.scale[:, None] * (self.values - self.zero_point)


def _per_row(stat: np.ndarray, per_channel: bool) -> np.ndarray:
    return stat if per_channel else np.full_like(stat, stat.max())


def _uniform_scale(w: np.ndarray, qmax: int, per_channel: bool) -> np.ndarray:
    absmax = np.abs(w).max(axis=1)
    if qmax >= 127:  # int8: TFLite's absmax scale, no clipping
        return _per_row(absmax, per_channel) / qmax
    groups = w if per_channel else w.reshape(1, -1)
    top = np.abs(groups).max(axis=1)
    best, best_err = top / qmax, np.full(len(groups), np.inf)
    for ratio in _CLIP_RATIOS:
        s = np.where(top > 0, ratio * top / qmax, 1.0)[:, None]
        err = np.sum((groups - s * np.clip(round_half_away(groups / s), -qmax, qmax)) ** 2, 1)
        better = err < best_err
        best, best_err = np.where(better, s[:, 0], best), np.where(better, err, best_err)
    return best if per_channel else np.full(len(w), best[0])


def quantize_weights(w: np.ndarray, *, fmt: str = "int8", per_channel: bool = True,
                     pow2: bool = False, min_scale: np.ndarray | None = None,
                     dtype: str = "int8") -> QuantizedWeights:
    """Quantize ``w`` ``(out, in)`` to ``fmt``.

    ``min_scale`` (per channel) raises scales that would leave the bias unrepresentable;
    ``pow2`` rounds every scale up to a power of two (shift-only requantization).
    """
    if fmt not in WEIGHT_FORMATS:
        raise QuantizerError(f"unknown weight format {fmt!r}: choose one of "
                             f"{', '.join(WEIGHT_FORMATS)}")
    if fmt != "int8" and dtype != "int8":
        raise QuantizerError(f"{fmt} weights need an int8 network (--dtype int8)")
    w = np.asarray(w, dtype=np.float64)
    absw = np.abs(w)
    if fmt == "ternary":
        groups = absw if per_channel else absw.reshape(1, -1)
        delta = 0.7 * groups.mean(axis=1, keepdims=True)
        kept = groups > delta
        scale = np.sum(groups * kept, axis=1) / np.maximum(kept.sum(axis=1), 1)
        scale = scale if per_channel else np.full(len(w), scale[0])
        delta = delta[:, 0] if per_channel else np.full(len(w), delta[0, 0])
        values = np.sign(w) * (absw > delta[:, None])
    elif fmt == "binary":
        scale = absw.mean(axis=1) if per_channel else np.full(len(w), absw.mean())
        values = np.where(w >= 0, 1, -1)
    else:
        qmax = (1 << (WEIGHT_FORMATS[fmt] - 1)) - 1
        scale = _uniform_scale(w, qmax, per_channel)
        values = None
    scale = np.where(scale == 0, 1.0, scale)  # an all-zero channel: any scale is exact
    if pow2:  # uniform formats round up (no extra clipping); sign formats to the nearest
        scale = np.exp2(np.ceil(np.log2(scale)) if values is None else np.round(np.log2(scale)))
    if min_scale is not None:
        floor = np.maximum(min_scale, np.finfo(np.float64).tiny)
        raised = np.exp2(np.ceil(np.log2(floor))) if pow2 else min_scale
        scale = np.where(scale < min_scale, raised, scale)
    if values is None:
        qmax = (1 << (WEIGHT_FORMATS[fmt] - 1)) - 1
        values = np.clip(round_half_away(w / scale[:, None]), -qmax, qmax)
    center = 0 if dtype == "int8" else 128
    return QuantizedWeights(values=values.astype(np.int64) + center, scale=scale,
                            zero_point=center, format=fmt)
