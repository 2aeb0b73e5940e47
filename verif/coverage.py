"""Functional coverage of the matrix unit's regression (docs/verification.md, "Coverage"): the
plan as ``cocotb-coverage`` cover points, sampled once per tile the testbench sends, from the
stimulus and the golden model's arithmetic (never from the RTL's outputs, which the
scoreboards check).

The bins follow from the configuration (its data type's extremes, its rounding modes, the
whole shift range of the contract, its array shape), so every bin of a configuration can be
hit by its regression, and the regression fails below :data:`TARGET_PERCENT`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hw import ArrayConfig
from hw.contract import SHIFT_MAX, SHIFT_MIN
from quantizer import dtype_range
from quantizer.fixedpoint import multiply_by_quantized_multiplier, wrap_int32

#: Every bin of the plan must be hit.
TARGET_PERCENT = 100.0


def operand_bins(dtype: str) -> tuple[int, ...]:
    """Operand values (a value less its zero point, 9 bits) whose presence is a bin: both
    ends, and for int8 the type's own ends with a zero point of 0."""
    return (-255, -128, 127, 255) if dtype == "int8" else (-255, 255)


def _contains(values: set, bin_) -> bool:
    return bin_ in values


class MatrixUnitCoverage:
    """The matrix unit's cover points under ``prefix``; :meth:`sample` takes one tile.

    Cover points (each a set of bins a tile may hit several of):

    - ``operand.x``, ``operand.w``: values less their zero point at :func:`operand_bins`;
    - ``accumulation``: a vector whose sum is ``±rows·255·255`` (every product at the 9-bit
      extremes, the largest magnitude an accumulator can take);
    - ``zero_point.x``, ``zero_point.w``: the data type's lowest, 0 (int8), highest, anything
      else;
    - ``rounding``: the configuration's rounding modes;
    - ``shift``: every shift of the contract's range, ``SHIFT_MIN … SHIFT_MAX``;
    - ``multiplier``: a lane's real multiplier ``m0·2^shift / 2^31`` of 0 (builds with a
      multiplier), below 1, at least 1;
    - ``clamp``: a result the requantizer clamps at its lower and at its upper bound;
    - ``tile``: a tile of one vector, of fewer vectors than its load takes beats (the array
      waits for weights), of enough to hide the next load;
    - ``stream``: tiles sent back to back and with random gaps in both streams.
    """

    def __init__(self, config: ArrayConfig, prefix: str = "mxu"):
        from cocotb_coverage.coverage import CoverPoint, coverage_section
        self.config, self.prefix = config, prefix
        lo, hi = dtype_range(config.dtype)
        beats = config.rows // config.weight_load_rows

        def point(name: str, bins, hits: Callable) -> CoverPoint:
            return CoverPoint(f"{prefix}.{name}", xf=hits, bins=list(bins), rel=_contains)

        # A zero point at the type's ends, at 0 (int8: uint8's 0 is its lowest), or between.
        zero_names = {lo: "lowest", hi: "highest", **({0: "zero"} if lo < 0 else {})}

        def zero_bins(value: int) -> set:
            return {zero_names.get(value, "other")}

        tile_bins = ["one vector", "enough to hide the next load"] + (
            ["fewer than its load's beats"] if beats > 2 else [])
        self._section = coverage_section(
            point("operand.x", operand_bins(config.dtype),
                  lambda t: set(np.unique(t["x"] - t["zx"]).tolist())),
            point("operand.w", operand_bins(config.dtype),
                  lambda t: set(np.unique(t["w"] - t["zw"]).tolist())),
            point("accumulation", ["+full scale", "-full scale"], lambda t: t["full"]),
            point("zero_point.x", [*zero_names.values(), "other"],
                  lambda t: zero_bins(t["zx"])),
            point("zero_point.w", [*zero_names.values(), "other"],
                  lambda t: zero_bins(t["zw"])),
            point("rounding", config.requant_modes, lambda t: {t["params"].rounding}),
            point("shift", range(SHIFT_MIN, SHIFT_MAX + 1),
                  lambda t: set(t["params"].shift.tolist())),
            point("multiplier", (["zero"] if config.has_multiplier else []) +
                  ["below 1", "1 or more"], lambda t: t["multiplier"]),
            point("clamp", ["lower bound", "upper bound"], lambda t: t["clamp"]),
            point("tile", tile_bins, lambda t: t["length"]),
            point("stream", ["back to back", "with gaps"], lambda t: {t["stream"]}),
        )
        self._sample = self._section(lambda tile: None)
        self._beats, self._full = beats, config.rows * 255 * 255

    def sample(self, weights: np.ndarray, x: np.ndarray, *, zx: int, zw: int, params,
               acc: np.ndarray, gaps: bool) -> None:
        """One tile: ``weights`` (rows × cols), vectors ``x`` (M × rows), their zero points,
        the requantization parameters, the golden accumulators ``acc`` (M × cols) and whether
        the streams had gaps."""
        p = params
        scaled = multiply_by_quantized_multiplier(wrap_int32(np.asarray(acc) + p.bias), p.m0,
                                                  p.shift, p.rounding)
        unclamped = wrap_int32(np.asarray(scaled) + p.zero)
        real = p.m0.astype(float) * np.exp2(p.shift.astype(float) - 31)
        m = len(x)
        self._sample({
            "x": np.asarray(x), "w": np.asarray(weights), "zx": zx, "zw": zw, "params": p,
            "full": {label for label, hit in (("+full scale", np.any(acc == self._full)),
                                              ("-full scale", np.any(acc == -self._full)))
                     if hit},
            "multiplier": {"zero" if r == 0 else "below 1" if r < 1 else "1 or more"
                           for r in real},
            "clamp": {label for label, hit in (("lower bound", np.any(unclamped < p.act_min)),
                                               ("upper bound", np.any(unclamped > p.act_max)))
                      if hit},
            "length": {label for label, hit in (
                ("one vector", m == 1), ("fewer than its load's beats", 1 < m < self._beats),
                ("enough to hide the next load", m >= self._beats)) if hit},
            "stream": "with gaps" if gaps else "back to back",
        })

    def report(self) -> dict:
        """``{cover point: {"percent", "missed": [bins]}}`` and the whole plan's percentage."""
        from cocotb_coverage.coverage import coverage_db
        points = {}
        for name, item in coverage_db.items():
            if name.startswith(self.prefix + ".") and hasattr(item, "detailed_coverage"):
                points[name[len(self.prefix) + 1:]] = {
                    "percent": round(item.cover_percentage, 2),
                    "missed": [str(b) for b, hits in item.detailed_coverage.items() if not hits]}
        return {"percent": round(coverage_db[self.prefix].cover_percentage, 2),
                "target": TARGET_PERCENT, "points": points}

    def export(self, path: Path) -> None:
        """The report as JSON (the regression reads it) and cocotb-coverage's own YAML beside
        it."""
        import json

        from cocotb_coverage.coverage import coverage_db
        path = Path(path)
        path.write_text(json.dumps(self.report(), indent=1))
        coverage_db.export_to_yaml(filename=str(path.with_suffix(".yml")))
