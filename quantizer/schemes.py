"""Quantization schemes: from a real range to ``(scale, zero_point)``, and back and forth.

- ``asymmetric`` (affine): the full integer range covers ``[rmin, rmax]``; the zero point is
  nudged to an integer so that real 0.0 is exactly representable (TFLite's
  ``ChooseQuantizationParams``, bit for bit).
- ``symmetric``: zero point 0 (int8) or 128 (uint8), restricted range ``[-127, 127]`` so that
  −128 never occurs and ``-q`` is always representable — TFLite's scheme for int8 weights.
- ``pow2``: symmetric with the scale rounded up to a power of two, so every requantization
  multiplier ``s_in·s_w/s_out`` is a power of two and runs on shift-only (``pow2``) hardware.

Ranges are extended to contain 0 first (a range that excludes zero cannot represent the zero
padding and ReLU floors the integer kernels rely on). Per-channel parameters come from arrays of
ranges, one per output channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import QuantizerError
from .golden import dtype_range

Scheme = Literal["asymmetric", "symmetric", "pow2"]
SCHEMES: tuple[str, ...] = ("asymmetric", "symmetric", "pow2")


def round_half_away(x) -> np.ndarray:
    """``std::round`` (TFLite's ``TfLiteRound``): ties away from zero, unlike ``np.round``."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


@dataclass(frozen=True)
class QuantParams:
    """``real = scale · (q − zero_point)`` with ``q`` in ``[qmin, qmax]``.

    ``scale`` and ``zero_point`` are scalars (per tensor) or 1-D arrays (per channel along
    ``axis``).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str
    qmin: int
    qmax: int
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def _broadcast(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        if not self.per_channel:
            return values
        shape = [1] * x.ndim
        shape[self.axis] = -1
        return values.reshape(shape)

    def quantize(self, x) -> np.ndarray:
        """Round half away from zero (TFLite's ``TfLiteRound``), add the zero point, clamp."""
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise QuantizerError("cannot quantize NaN or infinite values")
        q = round_half_away(x / self._broadcast(self.scale, x)) + \
            self._broadcast(self.zero_point, x)
        return np.clip(q, self.qmin, self.qmax).astype(np.int8 if self.dtype == "int8"
                                                       else np.uint8)

    def dequantize(self, q) -> np.ndarray:
        q = np.asarray(q, dtype=np.int64)
        return (self._broadcast(self.scale, q) *
                (q - self._broadcast(self.zero_point, q))).astype(np.float64)


#: The widest and narrowest spans of real values quantized: a tensor's scale, span / 255, is a
#: float32 in the model file and goes into products of scales; beyond these it overflows or
#: vanishes.
MAX_SPAN, MIN_SPAN = 1e30, 1e-30


def _check_range(rmin, rmax, name: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    what = f"{name}: range" if name else "range"
    rmin = np.asarray(rmin, dtype=np.float64)
    rmax = np.asarray(rmax, dtype=np.float64)
    if not (np.all(np.isfinite(rmin)) and np.all(np.isfinite(rmax))):
        raise QuantizerError(f"{what} contains NaN or inf: check the model weights and the "
                             "calibration data")
    if np.any(rmin > rmax):
        raise QuantizerError(f"{what} minimum exceeds maximum ({rmin} > {rmax})")
    rmin, rmax = np.minimum(rmin, 0.0), np.maximum(rmax, 0.0)
    if np.any(rmax == rmin):
        raise QuantizerError(
            f"{what} is a single point at 0 (a constant-zero or empty tensor), which gives a "
            "zero scale; remove the tensor or calibrate with data that exercises it")
    span = rmax - rmin
    if np.any(span > MAX_SPAN) or np.any(span < MIN_SPAN):
        raise QuantizerError(
            f"{what} spans {np.max(span) if np.any(span > MAX_SPAN) else np.min(span):.3g}, "
            f"outside the {MIN_SPAN:g} … {MAX_SPAN:g} an int8 scale can hold: rescale the "
            "model's values (or its input range)")
    return rmin, rmax


def choose_qparams(rmin, rmax, *, scheme: Scheme = "asymmetric", dtype: str = "int8",
                   axis: int | None = None, name: str | None = None) -> QuantParams:
    """Quantization parameters for real ranges ``[rmin, rmax]`` (scalars, or arrays with one
    entry per channel along ``axis``) of the tensor ``name`` (named in errors)."""
    if scheme not in SCHEMES:
        raise QuantizerError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
    lo, hi = dtype_range(dtype)
    rmin, rmax = _check_range(rmin, rmax, name)
    if (rmin.ndim != 0) != (axis is not None):
        raise QuantizerError("per-channel ranges need an axis, per-tensor ranges must not have one")
    if scheme == "asymmetric":
        scale = (rmax - rmin) / (hi - lo)
        from_min, from_max = lo - rmin / scale, hi - rmax / scale
        # TFLite keeps the candidate whose arithmetic loses less precision.
        error_min = abs(lo) + np.abs(rmin / scale)
        error_max = abs(hi) + np.abs(rmax / scale)
        zp_real = np.where(error_min < error_max, from_min, from_max)
        zero_point = np.clip(round_half_away(zp_real), lo, hi)
        qmin, qmax = lo, hi
    else:
        center = 0 if dtype == "int8" else 128
        qmin, qmax = center - 127, center + 127
        scale = np.maximum(np.abs(rmin), np.abs(rmax)) / 127.0
        if scheme == "pow2":
            scale = np.exp2(np.ceil(np.log2(scale)))
        zero_point = np.full_like(scale, center)
    return QuantParams(scale=np.asarray(scale, np.float64),
                       zero_point=np.asarray(zero_point).astype(np.int64), dtype=dtype,
                       qmin=qmin, qmax=qmax, axis=axis)
