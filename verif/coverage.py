"""Functional coverage of the requantizer's, the matrix unit's and the accelerator's regressions
(docs/verification.md, "Coverage"): the plan as ``cocotb-coverage`` cover points, sampled once
per beat or tile the testbench sends (per descriptor the accelerator runs), from the stimulus
and the golden model's arithmetic (never from the RTL's outputs, which the scoreboards check).

The bins follow from the configuration (its data type's extremes, its rounding modes, its
accumulator width, the whole shift range of the contract, its array shape), so every bin of
a configuration can be hit by its regression, and the regression fails below
:data:`TARGET_PERCENT`.
"""

from __future__ import annotations

import json
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


def _hit(*pairs: tuple[str, bool]) -> set[str]:
    return {label for label, hit in pairs if hit}


class CoveragePlan:
    """Cover points under ``prefix`` (a subclass's :meth:`_points`), in cocotb-coverage's
    database, with the report the regressions check against :data:`TARGET_PERCENT`."""

    def __init__(self, config: ArrayConfig, prefix: str):
        from cocotb_coverage.coverage import coverage_section
        self.config, self.prefix = config, prefix
        self._sample = coverage_section(*self._points())(lambda sample: None)

    _shared: dict = {}

    @classmethod
    def shared(cls, config: ArrayConfig):
        """The one model of this kind a simulator process has (cocotb-coverage keeps one
        database a process): the tests of a run add up their samples."""
        if cls not in cls._shared:
            cls._shared[cls] = cls(config)
        return cls._shared[cls]

    def point(self, name: str, bins, hits: Callable):
        from cocotb_coverage.coverage import CoverPoint
        # inj=False: one sample hits every bin it contains (cocotb-coverage's default counts
        # only the first).
        return CoverPoint(f"{self.prefix}.{name}", xf=hits, bins=list(bins), rel=_contains,
                          inj=False)

    def _points(self) -> list:
        raise NotImplementedError

    def report(self) -> dict:
        """``{"percent", "target", "points": {cover point: {"percent", "missed": [bins]}}}``."""
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
        from cocotb_coverage.coverage import coverage_db
        path = Path(path)
        path.write_text(json.dumps(self.report(), indent=1))
        coverage_db.export_to_yaml(filename=str(path.with_suffix(".yml")))


class RequantizerCoverage(CoveragePlan):
    """The requantizer's cover points under ``prefix``; :meth:`sample` takes a block of
    accumulators and their parameters.

    Cover points (each a set of bins one sample may hit several of):

    - ``rounding``: the configuration's rounding modes;
    - ``shift``: every shift of the contract's range, ``SHIFT_MIN … SHIFT_MAX``;
    - ``multiplier``: a lane's real multiplier ``m0·2^shift / 2^31`` of 0 (builds with a
      multiplier), below 1, at least 1;
    - ``clamp``: a result clamped at its lower and at its upper bound;
    - ``accumulator``: the accumulator width's lowest and highest values, and a sum with the
      bias that wraps around int32.
    """

    def __init__(self, config: ArrayConfig, prefix: str = "requant"):
        super().__init__(config, prefix)

    #: Whether the accumulator's own corners are bins (an array cannot reach them).
    accumulator_corners = True

    def _points(self) -> list:
        config = self.config
        return [
            self.point("rounding", config.requant_modes, lambda s: {s["params"].rounding}),
            self.point("shift", range(SHIFT_MIN, SHIFT_MAX + 1),
                       lambda s: set(s["params"].shift.tolist())),
            self.point("multiplier", (["zero"] if config.has_multiplier else []) +
                       ["below 1", "1 or more"], lambda s: s["multiplier"]),
            self.point("clamp", ["lower bound", "upper bound"], lambda s: s["clamp"]),
        ] + ([self.point("accumulator", ["lowest", "highest", "bias wraps"],
                         lambda s: s["accumulator"])] if self.accumulator_corners else [])

    def _requant_sample(self, acc: np.ndarray, params) -> dict:
        p, acc = params, np.asarray(acc, dtype=np.int64)
        with_bias = acc + p.bias
        scaled = multiply_by_quantized_multiplier(wrap_int32(with_bias), p.m0, p.shift,
                                                  p.rounding)
        unclamped = wrap_int32(np.asarray(scaled) + p.zero)
        real = p.m0.astype(float) * np.exp2(p.shift.astype(float) - 31)
        bits = self.config.acc_width
        return {
            "params": p,
            "multiplier": {"zero" if r == 0 else "below 1" if r < 1 else "1 or more"
                           for r in real},
            "clamp": _hit(("lower bound", np.any(unclamped < p.act_min)),
                          ("upper bound", np.any(unclamped > p.act_max))),
            "accumulator": _hit(("lowest", np.any(acc == -(1 << (bits - 1)))),
                                ("highest", np.any(acc == (1 << (bits - 1)) - 1)),
                                ("bias wraps", np.any(with_bias != wrap_int32(with_bias)))),
        }

    def sample(self, acc: np.ndarray, params) -> None:
        """Accumulators ``acc`` (``(N, cols)``, without the bias) and their parameters."""
        self._sample(self._requant_sample(acc, params))


class MatrixUnitCoverage(RequantizerCoverage):
    """The matrix unit's cover points under ``prefix``: the requantizer's
    (:class:`RequantizerCoverage`) and the array's; :meth:`sample_tile` takes one tile.

    - ``operand.x``, ``operand.w``: values less their zero point at :func:`operand_bins`;
    - ``accumulation``: a vector whose sum is ``±rows·255·255`` (every product at the 9-bit
      extremes, the largest magnitude an accumulator can take);
    - ``zero_point.x``, ``zero_point.w``: the data type's lowest, 0 (int8), highest, anything
      else;
    - ``tile``: a tile of one vector, of fewer vectors than its load takes beats (the array
      waits for weights; with loads of 3 beats or more), of enough to hide the next load;
    - ``stream``: tiles sent back to back and with random gaps in both streams.

    The accumulator's own corners (``accumulator``) are the requantizer regression's: an
    array cannot reach them.
    """

    def __init__(self, config: ArrayConfig, prefix: str = "mxu"):
        lo, hi = dtype_range(config.dtype)
        # A zero point at the type's ends, at 0 (int8: uint8's 0 is its lowest), or between.
        self._zero_names = {lo: "lowest", hi: "highest", **({0: "zero"} if lo < 0 else {})}
        self._beats = config.rows // config.weight_load_rows
        self._full = config.rows * 255 * 255
        super().__init__(config, prefix)

    accumulator_corners = False

    def _points(self) -> list:
        config, names = self.config, self._zero_names
        tiles = ["one vector", "enough to hide the next load"] + (
            ["fewer than its load's beats"] if self._beats > 2 else [])
        return super()._points() + [
            self.point("operand.x", operand_bins(config.dtype),
                       lambda s: set(np.unique(s["x"] - s["zx"]).tolist())),
            self.point("operand.w", operand_bins(config.dtype),
                       lambda s: set(np.unique(s["w"] - s["zw"]).tolist())),
            self.point("accumulation", ["+full scale", "-full scale"], lambda s: s["full"]),
            self.point("zero_point.x", [*names.values(), "other"],
                       lambda s: {names.get(s["zx"], "other")}),
            self.point("zero_point.w", [*names.values(), "other"],
                       lambda s: {names.get(s["zw"], "other")}),
            self.point("tile", tiles, lambda s: s["length"]),
            self.point("stream", ["back to back", "with gaps"], lambda s: {s["stream"]}),
        ]

    def sample_tile(self, weights: np.ndarray, x: np.ndarray, *, zx: int, zw: int, params,
                    acc: np.ndarray, gaps: bool) -> None:
        """One tile: ``weights`` (rows × cols), vectors ``x`` (M × rows), their zero points,
        the requantization parameters, the golden accumulators ``acc`` (M × cols) and whether
        the streams had gaps."""
        m = len(x)
        self._sample({
            **self._requant_sample(acc, params),
            "x": np.asarray(x), "w": np.asarray(weights), "zx": zx, "zw": zw,
            "full": _hit(("+full scale", np.any(acc == self._full)),
                         ("-full scale", np.any(acc == -self._full))),
            "length": _hit(("one vector", m == 1),
                           ("fewer than its load's beats", 1 < m < self._beats),
                           ("enough to hide the next load", m >= self._beats)),
            "stream": "with gaps" if gaps else "back to back",
        })


class AcceleratorCoverage(CoveragePlan):
    """What the accelerator's sequencer runs, under ``prefix``: :meth:`sample_plan` takes
    every descriptor of a whole-network run (:func:`verif.network_sim.plan_run`), the
    stimulus the RTL regression gives it.

    - ``op``: every layer operation the build runs (``window`` with a window unit);
    - ``matmul``: strided, dilated and padded convolutions, one and several K tiles, several
      channel groups and column tiles, tiles of fewer vectors than their load's beats (loads
      of 2 beats or more), a layer in passes;
    - ``vector``: a max pool over padding, a ``mac`` of several taps (pooling, depthwise
      tap by tap, MEAN), an ``add``;
    - ``window`` (with a window unit): a word, two words (pair mode) and a 2×2 block (quad
      mode) a beat, top and left padding the unit fills in, several samples, a layer in
      passes;
    - ``program``: a program of several layers, and host operators between accelerator
      programs.
    """

    def __init__(self, config: ArrayConfig, prefix: str = "accel"):
        from hw.contract import LAYER_OPS, descriptor_format
        self._ops = [op for op in LAYER_OPS if op != "window" or config.window]
        self._names = LAYER_OPS
        self._format = descriptor_format(config)
        self._beats = config.rows // config.weight_load_rows
        super().__init__(config, prefix)

    def _points(self) -> list:
        matmul = ["stride 2+", "dilation 2+", "padding", "one K tile", "several K tiles",
                  "several channel groups", "several column tiles", "in passes"] + (
            ["fewer vectors than beats"] if self._beats > 1 else [])
        points = [
            self.point("op", self._ops, lambda s: s["ops"]),
            self.point("matmul", matmul, lambda s: s["matmul"]),
            self.point("vector", ["max over padding", "mac of several taps", "add"],
                       lambda s: s["vector"]),
            self.point("program", ["several layers", "host operators between"],
                       lambda s: s["program"]),
        ]
        if self.config.window:
            points.append(self.point("window", ["a word a beat", "pair mode", "quad mode",
                                                "top padding", "left padding",
                                                "several samples", "in passes"],
                                     lambda s: s["window"]))
        return points

    def sample_plan(self, plan) -> None:
        """Every descriptor of every batch of ``plan``."""
        for batch in plan.batches:
            layers = [self._format.unpack(word) for word in batch["program"]]
            programs = [step for step in batch["steps"] if step["start_pc"] is not None]
            self._sample({"ops": {self._names[d["op"]] for d in layers},
                          "matmul": set(), "vector": set(), "window": set(),
                          "program": _hit(("several layers",
                                           any(len(step["ops"]) > 1 for step in programs)),
                                          ("host operators between",
                                           len(programs) > 1 and len(batch["steps"]) >
                                           len(programs)))})
            for index, d in enumerate(layers):
                # A layer in passes: descriptors of the same weights one after the other.
                passes = any(0 <= j < len(layers) and j != index and
                             (layers[j]["w_base"], layers[j]["p_base"]) ==
                             (d["w_base"], d["p_base"]) for j in (index - 1, index + 1))
                self._sample({"ops": set(), "program": set(), **self._layer(d, passes)})

    def _layer(self, d: dict, passes: bool) -> dict:
        op = self._names[d["op"]]
        padded = d["pad_top"] > 0 or d["pad_left"] > 0
        groups = d["groups"]
        return {
            "matmul": _hit(("stride 2+", max(d["stride_h"], d["stride_w"]) > 1),
                           ("dilation 2+", max(d["dil_h"], d["dil_w"]) > 1),
                           ("padding", padded), ("one K tile", d["k_tiles"] == 1),
                           ("several K tiles", d["k_tiles"] > 1),
                           ("several channel groups", groups > 1),
                           ("several column tiles", d["n_tiles"] > 1), ("in passes", passes),
                           ("fewer vectors than beats", d["m"] < self._beats))
            if op == "matmul" else set(),
            "vector": _hit(("max over padding", op == "max" and padded),
                           ("mac of several taps", op == "mac" and d["k_tiles"] > 1),
                           ("add", op == "add")),
            "window": _hit(("a word a beat", not d["pair"] and not d["quad"]),
                           ("pair mode", bool(d["pair"])), ("quad mode", bool(d["quad"])),
                           ("top padding", d["pad_top"] > 0),
                           ("left padding", d["pad_left"] > 0),
                           ("several samples", d["m"] > d["oh"] * d["ow"]),
                           ("in passes", passes))
            if op == "window" else set(),
        }
