"""The integer arithmetic every multiply-accumulate operator shares — TFLite int8 reference
semantics, and the specification of the array and its requantizer, which match it bit for bit.

Conventions follow TFLite: ``real = scale · (q − zero_point)``, int32 bias with zero point 0.
Fully-connected, convolution and depthwise kernels (:mod:`quantizer.kernels`) all compute

    acc[c] = bias[c] + Σ_k (x[k] − zx) · (w[c, k] − zw)          (int32)
    y[c]   = clamp(MultiplyByQuantizedMultiplier(acc[c], m0[c], shift[c]) + zy,
                   act_min, act_max)

with the rounding mode chosen per operator and runtime.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .errors import QuantizerError
from .fixedpoint import Rounding, multiply_by_quantized_multiplier, wrap_int32

DType = Literal["int8", "uint8"]
DTYPE_RANGES: dict[str, tuple[int, int]] = {"int8": (-128, 127), "uint8": (0, 255)}
_NUMPY_DTYPES = {"int8": np.int8, "uint8": np.uint8}


def dtype_range(dtype: str) -> tuple[int, int]:
    """``(min, max)`` of an activation type; raises for anything but int8/uint8."""
    try:
        return DTYPE_RANGES[dtype]
    except KeyError:
        raise QuantizerError(f"unknown data type {dtype!r}: choose int8 or uint8") from None


def _check_values(name: str, value, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        raise QuantizerError(f"{name} must be an integer array, got {arr.dtype}")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise QuantizerError(
            f"{name} must lie in [{lo}, {hi}], got values in [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def check_zero_point(name: str, zp: int, dtype: str) -> int:
    lo, hi = dtype_range(dtype)
    if not lo <= int(zp) <= hi:
        raise QuantizerError(f"{name} must lie in [{lo}, {hi}] for {dtype}, got {zp}")
    return int(zp)


def accumulate(x, w, *, input_zero_point: int, weight_zero_point: int = 0, bias=None,
               dtype: DType = "int8") -> np.ndarray:
    """``bias[c] + Σ_k (x[n, k] − zx)·(w[c, k] − zw)`` for ``x`` of shape ``(N, K)`` and
    ``w`` of shape ``(C, K)``; returns int64 values wrapped to int32 as the silicon wraps."""
    lo, hi = dtype_range(dtype)
    x = _check_values("input", x, lo, hi)
    w = _check_values("weights", w, lo, hi)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise QuantizerError(
            f"input {x.shape} and weights {w.shape} do not chain: need (N, K) and (C, K)")
    zx = check_zero_point("input zero point", input_zero_point, dtype)
    zw = check_zero_point("weight zero point", weight_zero_point, dtype)
    acc = (x - zx) @ (w - zw).T
    if bias is not None:
        b = _check_values("bias", bias, -(1 << 31), (1 << 31) - 1)
        if b.shape != (w.shape[0],):
            raise QuantizerError(f"bias has shape {b.shape}, expected ({w.shape[0]},)")
        acc = acc + b
    return wrap_int32(acc)


def requantize(acc, m0, shift, *, output_zero_point: int, act_min: int | None = None,
               act_max: int | None = None, rounding: Rounding = "double",
               dtype: DType = "int8") -> np.ndarray:
    """int32 accumulators → int8/uint8: multiply by ``(m0, shift)``, add the output zero point
    (int32 wrap, like TFLite), clamp to ``[act_min, act_max]`` (fused ReLU/ReLU6 bounds)."""
    lo, hi = dtype_range(dtype)
    act_min = lo if act_min is None else int(act_min)
    act_max = hi if act_max is None else int(act_max)
    if not lo <= act_min <= act_max <= hi:
        raise QuantizerError(
            f"activation bounds [{act_min}, {act_max}] must be ordered and inside "
            f"[{lo}, {hi}] for {dtype}")
    zy = check_zero_point("output zero point", output_zero_point, dtype)
    scaled = multiply_by_quantized_multiplier(acc, m0, shift, rounding)
    out = np.clip(wrap_int32(np.asarray(scaled) + zy), act_min, act_max)
    return out.astype(_NUMPY_DTYPES[dtype])


def _pair(name: str, value) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) < 1 for v in pair):
        raise QuantizerError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_output_size(size: int, kernel: int, stride: int, dilation: int,
                     padding: str) -> tuple[int, int]:
    """``(output size, padding before)`` along one axis, as TFLite computes them."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = (size + stride - 1) // stride
    elif padding == "VALID":
        if size < effective:
            raise QuantizerError(
                f"VALID convolution needs an input of at least {effective} pixels "
                f"(dilated kernel), got {size}")
        out = (size - effective + stride) // stride
    else:
        raise QuantizerError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    total = max((out - 1) * stride + effective - size, 0)
    return out, total // 2


def im2col(x: np.ndarray, kernel: tuple[int, int], *, stride=1, dilation=1,
           padding: str = "SAME", pad_value: int = 0) -> np.ndarray:
    """NHWC input → ``(N, OH, OW, KH·KW·Cin)`` patches, padded with ``pad_value``."""
    _, h, w, _ = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, _pair("stride", stride), _pair("dilation", dilation)
    oh, top = conv_output_size(h, kh, sh, dh, padding)
    ow, left = conv_output_size(w, kw, sw, dw, padding)
    return patches(x, kernel, (sh, sw), (dh, dw), (top, left), (oh, ow), pad_value)


def patches(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], pad: tuple[int, int], out: tuple[int, int],
            pad_value: int) -> np.ndarray:
    """NHWC input → the ``(N, OH, OW, KH·KW·Cin)`` patches of ``out = (OH, OW)`` windows whose
    first tap is ``pad = (top, left)`` pixels above and left of the input, taps ordered
    (kh, kw, c), taps outside the input ``pad_value``."""
    n, h, w_, cin = x.shape
    (kh, kw), (sh, sw), (dh, dw), (top, left), (oh, ow) = kernel, stride, dilation, pad, out
    padded = np.full((n, max(h + top, (kh - 1) * dh + sh * oh),
                      max(w_ + left, (kw - 1) * dw + sw * ow), cin), pad_value, dtype=x.dtype)
    padded[:, top:top + h, left:left + w_, :] = x
    taps = [padded[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            for i in range(kh) for j in range(kw)]
    return np.stack(taps, axis=3).reshape(n, oh, ow, kh * kw * cin)
