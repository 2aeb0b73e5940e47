"""The generated RTL against the golden model, in Verilator through cocotb.

One simulator build per hardware configuration (cached in sim_build/), reused by every test
and seed. Replay a failure with ``pytest --seed N``.
"""

from __future__ import annotations

import json

import pytest

from hw import ArrayConfig
from hw.generate import to_verilog
from hw.matrix_unit import MatrixUnit
from hw.requant import Requantizer
from verif.coverage import TARGET_PERCENT
from verif.primitives import primitive_models
from verif.runner import build_simulator

pytestmark = pytest.mark.rtl  # Verilator builds or place and route

MATRIX_UNIT_CONFIGS = {
    "1x1": ArrayConfig(rows=1, cols=1),
    "2x3": ArrayConfig(rows=2, cols=3),
    "4x4-uint8-pow2-unpipelined": ArrayConfig(rows=4, cols=4, dtype="uint8",
                                              requant_modes=("pow2",), pipelined_product=False),
    "5x3-acc20-single": ArrayConfig(rows=5, cols=3, acc_width=20, requant_modes=("single",)),
    "8x8": ArrayConfig(rows=8, cols=8),
    "16x16": ArrayConfig(rows=16, cols=16),
}

REQUANT_CONFIGS = {
    "double+single": ArrayConfig(rows=1, cols=4),
    "double": ArrayConfig(rows=1, cols=3, requant_modes=("double",)),
    "single+pow2-uint8": ArrayConfig(rows=1, cols=3, dtype="uint8",
                                     requant_modes=("single", "pow2")),
    "pow2": ArrayConfig(rows=1, cols=4, requant_modes=("pow2",)),
    "acc24": ArrayConfig(rows=1, cols=2, acc_width=24),
}


def _regression(kind: str, component, config: ArrayConfig, tb_module: str, seed: int, *,
                target: str = "generic", text: str | None = None, **settings) -> None:
    """Build (or reuse) the simulator of ``component``, its Verilog generated for ``target``
    (or ``text``, already generated) with the models of the primitives it instantiates, and
    run ``tb_module`` on it once."""
    if target == "generic":  # keyed by the generator's digest, generated only to build
        verilog = lambda: to_verilog(component, config, kind)  # noqa: E731
    else:  # keyed by its text, which holds the primitives' models
        verilog = (text or to_verilog(component, config, kind, target)) + \
            primitive_models(target)
    sim = build_simulator(f"{kind}-{config.rows}x{config.cols}-{target}-{config.digest()}",
                          verilog, kind)
    outcome = sim.run(tb_module, config={"hw": config.to_dict(), "seed": seed, **settings},
                      seed=seed, name=f"seed{seed}")
    assert outcome.passed, outcome.summary()


@pytest.mark.parametrize("name", MATRIX_UNIT_CONFIGS)
def test_matrix_unit_matches_golden_model(name, seed, tmp_path):
    """Every output equal to the golden model, and the coverage plan (verif/coverage.py)
    closed: every bin hit."""
    config = MATRIX_UNIT_CONFIGS[name]
    report_file = tmp_path / "coverage.json"
    _regression("mxu", MatrixUnit(config), config, "verif.tb.mxu_tb", seed,
                coverage_file=str(report_file))
    report = json.loads(report_file.read_text())
    missed = {point: figures["missed"] for point, figures in report["points"].items()
              if figures["missed"]}
    assert report["percent"] >= TARGET_PERCENT, f"coverage {report['percent']}%: {missed}"
    assert report_file.with_suffix(".yml").exists()


@pytest.mark.parametrize("kind, component", [("mxu", MatrixUnit), ("requant", Requantizer)])
def test_ecp5_verilog_matches_golden_model(kind, component, seed):
    """The Verilog for ECP5, its multipliers MULT18X18D blocks (simulated with
    verif/models/MULT18X18D.v), computes what the golden model does at the same latency."""
    config = ArrayConfig(rows=3, cols=2)
    text = to_verilog(component(config), config, kind, "ecp5")
    # One in the PE module (every PE instantiates it), four in each requantizer lane.
    assert text.count("MULT18X18D ") == (kind == "mxu") + 4 * config.cols
    _regression(kind, component(config), config, f"verif.tb.{kind}_tb", seed, target="ecp5",
                text=text)


@pytest.mark.parametrize("name", REQUANT_CONFIGS)
def test_requantizer_matches_golden_model(name, seed):
    config = REQUANT_CONFIGS[name]
    _regression("requant", Requantizer(config), config, "verif.tb.requant_tb", seed)
