"""Weight quantization: int8 and the low-bit formats, all symmetric (zero point 0 for int8
networks), per output channel or per tensor.

============  =====  ============  =======================================================
format        bits   values        scale
============  =====  ============  =======================================================
int8          8      [-127, 127]   max|W| / 127 (TFLite)
int4          4      [-7, 7]       the clipping of max|W| that minimises the squared error
int2          2      [-1, 1]       the clipping of max|W| that minimises the squared error
ternary       2      {-1, 0, 1}    threshold Δ = 0.7·mean|W|; scale = mean of |W| above Δ
                                   (Li & Liu, Ternary Weight Networks, 2016)
ternary_asym  4      {-n, 0, p}    a threshold for each sign: the one that fits that
                                   sign's kept weights best (the TWN objective, solved);
                                   levels p, n ≤ 7 and one scale by least squares, so the
                                   positive and negative scales are s·p and s·n
binary        1      {-1, 1}       mean|W| (Rastegari et al., XNOR-Net, 2016)
============  =====  ============  =======================================================

Every format's values are small integers, so the int8 array runs them exactly; the scale
folds into the requantization multiplier. So asymmetric ternary weights, whose positive and
negative scales differ (as in Zhu et al., Trained Ternary Quantization, 2017), become two
integer levels under one scale: their ratio is rounded to a ratio of integers up to 7, and a
weight takes 4 bits in memory, not 2. In memory images a weight takes ``bits`` bits
(two's complement; 1-bit lanes encode −1 as 0 and +1 as 1, see docs/images.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import QuantizerError
from .schemes import round_half_away

#: format → bits per weight in memory
WEIGHT_FORMATS: dict[str, int] = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2,
                                  "ternary_asym": 4, "binary": 1}

#: The largest level of an asymmetric ternary weight (the int4 range).
ASYMMETRIC_LEVELS = 7

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


def layer_formats(weights: str | Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """Each named layer's weight format: ``weights`` is one format for all of them, or a
    format for some of them by name (the others int8)."""
    if isinstance(weights, str):
        chosen = dict.fromkeys(names, weights)
    else:
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise QuantizerError(f"no layer with weights is named {', '.join(unknown)}; the "
                                 f"layers are {', '.join(names)}")
        chosen = {name: weights.get(name, "int8") for name in names}
    for fmt in set(chosen.values()) - set(WEIGHT_FORMATS):
        raise QuantizerError(f"unknown weight format {fmt!r}: choose one of "
                             f"{', '.join(WEIGHT_FORMATS)}")
    return chosen


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


def _kept(magnitudes: np.ndarray) -> np.ndarray:
    """Which of each row's magnitudes a ternary level of its own keeps: the ``k`` largest
    for the ``k`` that fits them best, maximising ``(their sum)² / k`` (the squared error is
    the row's ``Σ|w|²`` less that; TWN's ``Δ = 0.7·mean|W|`` approximates this choice)."""
    order = np.argsort(-magnitudes, axis=1, kind="stable")
    sums = np.cumsum(np.take_along_axis(magnitudes, order, axis=1), axis=1)
    fit = sums ** 2 / np.arange(1, magnitudes.shape[1] + 1)
    count = np.where(sums[:, -1] > 0, np.argmax(fit, axis=1) + 1, 0)
    kept = np.zeros(magnitudes.shape, dtype=bool)
    np.put_along_axis(kept, order, np.arange(magnitudes.shape[1]) < count[:, None], axis=1)
    return kept & (magnitudes > 0)


def _asymmetric_ternary(w: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric ternary ``(values, scale)`` of ``w``: each group (a channel, or the tensor)
    keeps its positive weights and its negative ones with thresholds of their own
    (:func:`_kept`) as ``+p`` and ``−n``; of every pair of levels up to
    :data:`ASYMMETRIC_LEVELS`, the one whose least-squares scale leaves the least squared
    error (the smallest such pair: ``(2p, 2n)`` fits no better than ``(p, n)``)."""
    groups = w if per_channel else w.reshape(1, -1)
    up, down = _kept(np.maximum(groups, 0)), _kept(np.maximum(-groups, 0))
    # For levels (p, n) the error is Σw² − (p·S+ + n·S−)² / (p²·N+ + n²·N−): S the sum of the
    # kept weights' magnitudes, N their count; the best pair maximises the fraction.
    s_up, s_down = (np.sum(np.abs(groups) * kept, axis=1) for kept in (up, down))
    n_up, n_down = up.sum(axis=1), down.sum(axis=1)
    levels = np.arange(1, ASYMMETRIC_LEVELS + 1)
    p, n = (grid.reshape(-1, 1) for grid in np.meshgrid(levels, levels, indexing="ij"))
    fitted = (p * s_up + n * s_down) ** 2 / np.maximum(p * p * n_up + n * n * n_down, 1)
    best = np.argmax(fitted > fitted.max(axis=0) * (1 - 1e-12), axis=0)  # first of the best
    p, n = p[best, 0], n[best, 0]
    scale = (p * s_up + n * s_down) / np.maximum(p * p * n_up + n * n * n_down, 1)
    values = np.where(up, p[:, None], 0) - np.where(down, n[:, None], 0)
    if not per_channel:
        return values.reshape(w.shape), np.full(len(w), scale[0])
    return values, scale


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
    elif fmt == "ternary_asym":
        values, scale = _asymmetric_ternary(w, per_channel)
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
