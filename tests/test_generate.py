"""Hardware parameters, Verilog generation, lint, and the `mxugen generate` command."""

from __future__ import annotations

import json
import re

import pytest

from hw import ArrayConfig, ConfigError
from hw.generate import to_verilog
from hw.matrix_unit import MatrixUnit
from mxugen.cli import main
from verif.lint import LINT_RULES, lint, waiver_config


@pytest.mark.parametrize("kwargs, message", [
    (dict(rows=0), r"rows must be an integer in 1\.\.256, got 0"),
    (dict(cols=257), r"cols must be an integer in 1\.\.256, got 257"),
    (dict(rows=2.5), r"rows must be an integer"),
    (dict(dtype="int4"), r"dtype must be one of int8, uint8, got 'int4'"),
    (dict(acc_width=16), r"acc_width must be an integer in 18\.\.32, got 16"),
    (dict(requant_modes=()), r"requant_modes must be a non-empty subset"),
    (dict(requant_modes=("double", "nearest")), r"requant_modes must be a non-empty subset"),
    (dict(pipelined_product="yes"), r"pipelined_product must be true or false"),
])
def test_invalid_parameters_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ArrayConfig(**kwargs)


def test_config_is_canonical_and_round_trips():
    a = ArrayConfig(rows=64, cols=3, requant_modes=("single", "double"))
    b = ArrayConfig(rows=64, cols=3, requant_modes=["double", "single"])
    assert a == b and a.digest() == b.digest()
    assert ArrayConfig.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    assert ArrayConfig(rows=64, cols=3).digest() != ArrayConfig(rows=3, cols=64).digest()
    with pytest.raises(ConfigError, match="unknown hardware parameter.*depth"):
        ArrayConfig.from_dict({"rows": 2, "depth": 3})


@pytest.mark.parametrize("config", [
    ArrayConfig(rows=1, cols=1),
    ArrayConfig(rows=2, cols=3, requant_modes=("double",)),
    ArrayConfig(rows=8, cols=4, dtype="uint8", requant_modes=("pow2",), pipelined_product=False),
    ArrayConfig(rows=16, cols=16),
], ids=lambda c: c.describe())
@pytest.mark.rtl
def test_generated_verilog_lints_clean_and_records_parameters(tmp_path, config):
    text = to_verilog(MatrixUnit(config), config, "mxu")
    recorded = re.search(r"^// mxugen-config: (.*)$", text, re.MULTILINE).group(1)
    assert ArrayConfig.from_dict(json.loads(recorded)) == config
    source = tmp_path / "mxu.v"
    source.write_text(text)
    # Amaranth's Verilog trips the waived rules: without the waivers beside it, lint finds them.
    found = {m.group(1) for line in lint(source, "mxu")
             if (m := re.match(r"%Warning-(\w+):", line))}
    assert found and found <= set(LINT_RULES)
    (tmp_path / "mxu.vlt").write_text(waiver_config("mxu.v"))
    assert lint(source, "mxu") == []


def test_the_array_is_one_pe_module_in_one_column_module():
    """Generation scales with rows + cols: one PE module, instantiated once per row in one
    column module, instantiated once per column (the RTL regressions simulate this Verilog)."""
    config = ArrayConfig(rows=3, cols=5)
    text = to_verilog(MatrixUnit(config), config, "mxu")
    modules = re.findall(r"^module (\S+?)\(", text, re.MULTILINE)
    assert modules.count("mxu_pe") == 1 and modules.count("mxu_column") == 1
    assert not any("pe_" in name for name in modules)
    assert len(re.findall(r"^\s*mxu_pe \S+ \(", text, re.MULTILINE)) == 3
    assert len(re.findall(r"^\s*mxu_column \S+ \(", text, re.MULTILINE)) == 5


def test_bench_generate_times_the_command_in_its_own_process(capsys):
    assert main(["bench", "generate", "--arrays", "2x2,3X5", "--json"]) == 0
    small, large = json.loads(capsys.readouterr().out)["arrays"]
    assert (small["rows"], small["cols"], large["rows"], large["cols"]) == (2, 2, 3, 5)
    assert small["modules"] == large["modules"] == 5
    assert all(a["seconds"] > 0 and a["peak_memory_mb"] > 20 for a in (small, large))
    # An array the generator refuses is one line before anything runs.
    assert main(["bench", "generate", "--arrays", "2x2,300x2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rows must be an integer in 1..256, got 300" in err
    assert "bench generate 2x2" not in err


@pytest.mark.parametrize("bus, top", [("host", "accel"), ("axi-lite", "accel_axil")])
@pytest.mark.rtl
def test_the_accelerator_lints_clean_behind_either_bus(tmp_path, capsys, bus, top):
    assert main(["generate", "--accelerator", "--bus", bus, "--rows", "4", "--cols", "2",
                 "--lint", "-o", str(tmp_path)]) == 0
    assert f"lint-only -Wall {top}.vlt {top}.v: clean" in capsys.readouterr().out
    ports = json.loads((tmp_path / f"{top}.json").read_text())["ports"]
    assert ("s_axil__awaddr" in ports) == (bus == "axi-lite")


def test_generate_command_writes_verilog_and_json(tmp_path, capsys):
    assert main(["generate", "--rows", "3", "--cols", "2", "--requant", "pow2", "-o",
                 str(tmp_path)]) == 0
    description = json.loads((tmp_path / "mxu.json").read_text())
    assert description["config"]["rows"] == 3 and description["config"]["requant_modes"] == ["pow2"]
    assert "m0" not in {f["field"].split("[")[0] for f in description["ports"]["params"]["fields"]}
    assert (tmp_path / "mxu.v").read_text().startswith("// Generated by mxugen")
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # and no temporary files
        "README.md", "mxu.core", "mxu.json", "mxu.v", "mxu.vlt"]


@pytest.mark.parametrize("argv, message", [
    (["generate", "--rows", "300", "-o", "OUT"], "rows must be an integer in 1..256, got 300"),
    (["generate", "--requant", "double,bogus", "-o", "OUT"], "requant_modes must be"),
    (["generate", "--dtype", "fp8", "-o", "OUT"], "dtype must be one of int8, uint8"),
])
def test_generate_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    argv = [str(out) if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mxugen: error: ") and message in err and "\n" not in err
    assert not out.exists()
