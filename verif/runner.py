"""Build Verilog into a Verilator simulator once, then run cocotb test modules on it many times.

Builds are the slow part (tens of seconds to minutes), so each one is cached under
``sim_build/<name>-<hash>``, keyed by the Verilog text and the build flags: the same design is
never compiled twice, a changed generator always is. Many seeds and tests then reuse one build.
"""

from __future__ import annotations

import hashlib
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from cocotb_tools.runner import get_runner

from .errors import SimulationError
from .toolchain import ensure_toolchain

#: Narrow, documented waivers for Verilator's default-fatal warnings (docs/verilog.md):
#: Amaranth's Verilog relies on implicit width extension and truncation in assignments (its own
#: semantics are width-exact), and its FSMs assign a default before a ``case`` that lists only
#: the states driving that signal.
VERILATOR_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")


def sim_build_root() -> Path:
    """Where simulators are built: ``$MXUGEN_SIM_BUILD`` or ``./sim_build``."""
    return Path(os.environ.get("MXUGEN_SIM_BUILD", "sim_build")).resolve()


@dataclass
class TestOutcome:
    """Result of one simulator launch: each cocotb test's name, and failure messages."""

    tests: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    @property
    def passed(self) -> bool:
        return bool(self.tests) and not self.failures

    def summary(self) -> str:
        if not self.tests:
            return f"no cocotb test ran (see {self.log})"
        lines = [f"{len(self.tests) - len(self.failures)} of {len(self.tests)} cocotb tests passed"]
        lines += [f"  FAILED {name}: {message}" for name, message in self.failures.items()]
        if self.failures and self.log:
            lines.append(f"  simulator log: {self.log}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Simulator:
    """A built Verilator model of one design, ready to run cocotb test modules."""

    build_dir: Path
    toplevel: str
    waves: bool = False

    def run(self, test_module: str, *, config: dict | None = None, seed: int | None = None,
            testcase: str | None = None, name: str = "run") -> TestOutcome:
        """Launch the simulator once with ``test_module``'s cocotb tests.

        ``config`` is handed to the testbench as JSON (see :func:`load_tb_config`).
        """
        ensure_toolchain()
        run_dir = self.build_dir / "runs" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        config_file = run_dir / "tb_config.json"
        config_file.write_text(json.dumps(config or {}))
        results = run_dir / "results.xml"
        log = run_dir / "sim.log"
        runner = get_runner("verilator")
        try:  # test() runs the cached build in build_dir; it never rebuilds
            runner.test(test_module=test_module, hdl_toplevel=self.toplevel,
                        hdl_toplevel_lang="verilog",
                        build_dir=self.build_dir, test_dir=run_dir, results_xml=str(results),
                        seed=seed, testcase=testcase, waves=self.waves, log_file=log,
                        extra_env={"MXUGEN_TB_CONFIG": str(config_file)})
        except SystemExit:
            pass  # the runner exits on failures; the results file says which
        return _read_results(results, log)


def _read_results(results: Path, log: Path) -> TestOutcome:
    outcome = TestOutcome(log=log)
    if not results.exists():
        return outcome
    for case in ET.parse(results).getroot().iter("testcase"):
        name = case.get("name", "?")
        outcome.tests.append(name)
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is not None:
            outcome.failures[name] = (failure.get("message") or failure.text or "failed").strip()
    return outcome


def build_simulator(name: str, verilog: str, toplevel: str, *, waves: bool = False,
                    extra_args: tuple[str, ...] = ()) -> Simulator:
    """Compile ``verilog`` (whose top module is ``toplevel``) unless an identical build exists."""
    ensure_toolchain()
    args = (*VERILATOR_WAIVERS, *extra_args)
    key = hashlib.sha256(json.dumps([verilog, toplevel, args, waves]).encode()).hexdigest()
    build_dir = sim_build_root() / f"{name}-{key[:12]}"
    stamp = build_dir / "build.ok"
    if not stamp.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        source = build_dir / f"{toplevel}.v"
        source.write_text(verilog)
        log = build_dir / "build.log"
        runner = get_runner("verilator")
        try:
            runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=list(args), waves=waves, always=True, log_file=log)
        except (RuntimeError, SystemExit) as exc:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) \
                if log.exists() else ""
            raise SimulationError(f"Verilator build of {name} failed ({exc}); "
                                  f"full log: {log}\n{tail}") from None
        stamp.write_text(key)
    return Simulator(build_dir=build_dir, toplevel=toplevel, waves=waves)


def load_tb_config() -> dict:
    """Inside a cocotb test: the ``config`` dict that :meth:`Simulator.run` was given."""
    path = os.environ.get("MXUGEN_TB_CONFIG")
    return json.loads(Path(path).read_text()) if path else {}
