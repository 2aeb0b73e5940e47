"""Requantization parameters for a test: random or directed, packed for the port, and the
golden result for a block of accumulators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw import ArrayConfig
from hw.requant import requant_params_layout
from quantizer import dtype_range, requantize
from quantizer.fixedpoint import POW2_M0, wrap_int32


@dataclass
class RequantParams:
    config: ArrayConfig
    bias: np.ndarray
    m0: np.ndarray
    shift: np.ndarray
    zero: int
    act_min: int
    act_max: int
    rounding: str

    @property
    def layout(self):
        return requant_params_layout(self.config)

    def port_value(self) -> dict:
        value = {"bias": self.bias.tolist(), "shift": self.shift.tolist(), "zero": self.zero,
                 "min": self.act_min, "max": self.act_max}
        if self.config.has_multiplier:
            value["m0"] = self.m0.tolist()
        if self.config.runtime_rounding_select:
            value["double"] = int(self.rounding == "double")
        return value

    def golden(self, acc: np.ndarray, dtype: str) -> np.ndarray:
        """Expected outputs for accumulators ``acc`` (without bias), shape ``(N, cols)``."""
        return requantize(wrap_int32(np.asarray(acc) + self.bias), self.m0, self.shift,
                          output_zero_point=self.zero, act_min=self.act_min,
                          act_max=self.act_max, rounding=self.rounding, dtype=dtype)

    @classmethod
    def random(cls, rng: np.random.Generator, config: ArrayConfig, *, rounding: str | None = None,
               bounds: str = "random", acc_bits: int = 32) -> "RequantParams":
        """Legal parameters, biased toward the corners: multipliers in the usual range, at
        both ends of m0 and shift, greater than one, and zero."""
        cols = config.cols
        if rounding is None:
            rounding = str(rng.choice(config.requant_modes))
        if rounding == "pow2":
            m0 = np.full(cols, POW2_M0)
        else:
            m0 = rng.integers(1 << 30, 1 << 31, size=cols)
            corners = rng.random(cols) < 0.25
            m0[corners] = rng.choice([0, 1 << 30, (1 << 31) - 1, 1], size=corners.sum())
        # Typical multipliers bring |acc| (~2^(acc_bits/2)) into int8 range; some go to the ends.
        shift = rng.integers(-(acc_bits // 2) - 4, -2, size=cols)
        corners = rng.random(cols) < 0.3
        shift[corners] = rng.choice([-31, -30, -1, 0, 1, 2, 15, 29, 30], size=corners.sum())
        bias = rng.integers(-(1 << 20), 1 << 20, size=cols)
        corners = rng.random(cols) < 0.1
        bias[corners] = rng.choice([-(1 << 31), (1 << 31) - 1], size=corners.sum())
        lo, hi = dtype_range(config.dtype)
        zero = int(rng.integers(lo, hi + 1))
        if bounds == "full":
            act_min, act_max = lo, hi
        elif bounds == "relu":
            act_min, act_max = zero, hi
        elif bounds == "relu6":
            act_min, act_max = zero, min(hi, zero + int(rng.integers(0, 100)))
        else:
            act_min, act_max = sorted(int(v) for v in rng.integers(lo, hi + 1, size=2))
        return cls(config, bias.astype(np.int64), m0.astype(np.int64), shift.astype(np.int64),
                   zero, act_min, act_max, rounding)
