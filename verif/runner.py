"""Build Verilog into a simulator once (Verilator, or Icarus Verilog where it is installed), then
run cocotb test modules on it many times.

Builds are the slow part (tens of seconds to minutes), so each one is cached under
``sim_build/<name>-<hash>`` (``$MXUGEN_SIM_BUILD``; ``mxugen clean`` drops it), keyed by the
design, the simulator, the build flags and the versions of the simulator and cocotb: the same
design is never compiled twice, a changed one always is. A design given as a function that
generates it is keyed by its name and the generator's digest
(:func:`hw.generate.generator_digest`), so a cached build is found without elaborating the
design again. Many seeds and tests then reuse one build.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from cocotb_tools.runner import Verilator, get_runner

from .errors import SimulationError, ToolchainError
from .toolchain import simulator_version

#: Narrow, documented waivers for Verilator's default-fatal warnings (docs/verilog.md):
#: Amaranth's Verilog relies on implicit width extension and truncation in assignments (its own
#: semantics are width-exact), and its FSMs assign a default before a ``case`` that lists only
#: the states driving that signal.
VERILATOR_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")


def sim_build_root() -> Path:
    """Where simulators are built: ``$MXUGEN_SIM_BUILD`` (not empty) or ``./sim_build``."""
    try:
        return Path(os.environ.get("MXUGEN_SIM_BUILD") or "sim_build").resolve()
    except RuntimeError:  # a loop of links
        raise ToolchainError(f"MXUGEN_SIM_BUILD={os.environ['MXUGEN_SIM_BUILD']} is a loop of "
                              "symbolic links; point it at a folder") from None


#: Variables for the Makefile Verilator writes: the code evaluated every cycle (``OPT_FAST``,
#: Verilator's default ``-Os``) at ``-O3``. It runs a 16×16 accelerator 1.3–1.5× faster for
#: the same build time; ``-CFLAGS -O3`` would optimise the rest too, for twice the build time
#: and no more speed (docs/performance.md).
MAKE_VARIABLES = ("OPT_FAST=-O3",)


#: The modules whose asserts pytest rewrites (to print the values compared) in a simulation:
#: the testbenches. cocotb's default, every module imported after it, rewrites numpy too and
#: made every start a second slower.
REWRITTEN_MODULES = "*_tb.py"


class _Verilator(Verilator):
    """cocotb's Verilator runner, making with :data:`MAKE_VARIABLES`; with ``ports_only``,
    without its ``--public-flat-rw``, which makes every signal visible and keeps Verilator
    from optimising any of them: such a build sees only what a configuration file makes
    public (:func:`build_simulator`'s ``visibility``)."""

    def __init__(self, ports_only: bool):
        super().__init__()
        self.ports_only = ports_only

    def _build_command(self):
        verilate, make, *rest = super()._build_command()
        if self.ports_only:
            verilate = [arg for arg in verilate if arg != "--public-flat-rw"]
        return [verilate, [*make, *MAKE_VARIABLES], *rest]


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
    """A built simulator (:data:`~verif.toolchain.SIMULATORS`) of one design, ready to run
    cocotb test modules."""

    build_dir: Path
    toplevel: str
    waves: bool = False
    simulator: str = "verilator"

    def run(self, test_module: str, *, config: dict | None = None, seed: int | None = None,
            testcase: str | None = None, name: str = "run") -> TestOutcome:
        """Launch the simulator once with ``test_module``'s cocotb tests.

        ``config`` is handed to the testbench as JSON (see :func:`load_tb_config`).
        """
        simulator_version(self.simulator)
        with _claimed(self.build_dir / "runs", name) as run_dir:
            return self._run_in(run_dir, test_module, config, seed, testcase)

    def _run_in(self, run_dir: Path, test_module: str, config: dict | None, seed: int | None,
                testcase: str | None) -> TestOutcome:
        config_file = run_dir / "tb_config.json"
        config_file.write_text(json.dumps(config or {}))
        results = run_dir / "results.xml"
        log = run_dir / "sim.log"
        runner = get_runner(self.simulator)
        try:  # test() runs the cached build in build_dir; it never rebuilds
            runner.test(test_module=test_module, hdl_toplevel=self.toplevel,
                        hdl_toplevel_lang="verilog",
                        build_dir=self.build_dir, test_dir=run_dir, results_xml=str(results),
                        seed=seed, testcase=testcase, waves=self.waves, log_file=log,
                        extra_env={"MXUGEN_TB_CONFIG": str(config_file),
                                   "COCOTB_REWRITE_ASSERTION_FILES": REWRITTEN_MODULES})
        except SystemExit:
            pass  # the runner exits on failures; the results file says which
        return _read_results(results, log)


@contextmanager
def _claimed(runs: Path, name: str):
    """A run folder ``runs/<name>`` that no other process is using, held for the run:
    ``<name>``, or while another holds it ``<name>-1``, ``<name>-2``, … (runs of one build
    in parallel, as a soak's workers make)."""
    runs.mkdir(parents=True, exist_ok=True)
    for number in itertools.count():
        run_dir = runs / (name if number == 0 else f"{name}-{number}")
        run_dir.mkdir(exist_ok=True)
        with open(run_dir / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield run_dir
            return


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


def build_directory(name: str, verilog: str | Callable[[], str], toplevel: str, *,
                    waves: bool, args: tuple[str, ...], visibility: str = "all",
                    public: tuple[str, ...] = (), simulator: str = "verilator") -> Path:
    """Where :func:`build_simulator` keeps this build: ``<name>-<hash>`` of the design (its
    text, or its name and the generator's digest), the simulator, the flags and the tools'
    versions."""
    from hw.generate import generator_digest  # here: testbenches import this module, and
    # the whole-network one runs without Amaranth, which takes a second to import
    design = ["generated", name, generator_digest()] if callable(verilog) else ["text", verilog]
    key = hashlib.sha256(json.dumps([
        design, toplevel, list(args), list(MAKE_VARIABLES), waves, visibility, list(public),
        simulator_version(simulator), metadata.version("cocotb"),
        *([] if simulator == "verilator" else [simulator]),  # Verilator's keys as they were
    ]).encode()).hexdigest()
    return sim_build_root() / f"{name}-{key[:12]}"


def build_simulator(name: str, verilog: str | Callable[[], str], toplevel: str, *,
                    waves: bool = False, extra_args: tuple[str, ...] = (),
                    visibility: str = "all", public: tuple[str, ...] = (),
                    simulator: str = "verilator") -> Simulator:
    """Compile ``verilog`` (whose top module is ``toplevel``) unless the same build exists.

    ``verilog`` is the design's text, or a function that generates it: then ``name`` must
    name the design and everything it is generated from but the generator itself (a
    component and its configuration's digest, ``accel-4x4-<digest>``), and the function is
    called only when no build of that name, generator digest and flags exists yet.

    ``visibility`` is what a testbench can reach: ``"all"`` signals (cocotb's default, for
    unit testbenches that watch internals), or the top module's ``"ports"`` only, which lets
    Verilator optimise the rest (whole-network runs); ``public`` adds variables of the top
    module by name or wildcard (a testbench's hooks).

    ``simulator`` is ``"verilator"`` or ``"icarus"`` (:data:`~verif.toolchain.SIMULATORS`);
    ``extra_args`` are that simulator's options. Icarus sees every signal, so ``visibility``
    and ``public`` are for Verilator only, and a design without a ``timescale`` of its own
    runs in 1 ns units."""
    if visibility not in ("all", "ports"):
        raise ValueError(f"visibility is 'all' or 'ports', not {visibility!r}")
    verilator = simulator == "verilator"
    args = (*VERILATOR_WAIVERS, *extra_args) if verilator else extra_args
    build_dir = build_directory(name, verilog, toplevel, waves=waves, args=args,
                                visibility=visibility, public=public, simulator=simulator)
    stamp = build_dir / "build.ok"
    build_dir.mkdir(parents=True, exist_ok=True)
    # One process builds; another that wants the same build waits for it (parallel soaks).
    with open(build_dir / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists():
            _build(build_dir, name, verilog, toplevel, args=args, waves=waves,
                   visibility=visibility, public=public, simulator=simulator)
    return Simulator(build_dir=build_dir, toplevel=toplevel, waves=waves, simulator=simulator)


def _build(build_dir: Path, name: str, verilog: str | Callable[[], str], toplevel: str, *,
           args: tuple[str, ...], waves: bool, visibility: str, public: tuple[str, ...],
           simulator: str) -> None:
    """Compile the design into ``build_dir`` and stamp it built (:func:`build_simulator`)."""
    verilator = simulator == "verilator"
    source = build_dir / f"{toplevel}.v"
    text = verilog() if callable(verilog) else verilog
    source.write_text(text)
    if verilator and visibility == "ports":
        rules = build_dir / "public.vlt"
        rules.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{toplevel}" -var "{var}"\n'
            for var in (*verilog_ports(text, toplevel), *public)))
        args = (*args, str(rules))
    log = build_dir / "build.log"
    runner = _Verilator(ports_only=visibility == "ports") if verilator \
        else get_runner(simulator)
    try:
        runner.build(sources=[source], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=list(args), waves=waves, always=True, log_file=log,
                     **({} if verilator else {"timescale": ("1ns", "1ps")}))
    except (RuntimeError, SystemExit) as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) \
            if log.exists() else ""
        raise SimulationError(f"{simulator.capitalize()} build of {name} failed ({exc}); "
                              f"full log: {log}\n{tail}") from None
    (build_dir / "build.ok").write_text(build_dir.name)


def verilog_ports(verilog: str, top: str) -> list[str]:
    """The port names of module ``top`` in ``verilog`` (a header ``module top(a, b, …);``, as
    Amaranth writes it)."""
    header = re.search(rf"^module {re.escape(top)}\((.*?)\);", verilog, re.MULTILINE | re.DOTALL)
    if header is None:
        raise SimulationError(f"no module {top} in the design")
    return [port.strip() for port in header.group(1).split(",")]


#: What :func:`build_directory` names a build: ``<name>-<12 hex digits>``.
_BUILD_NAME = re.compile(r".+-[0-9a-f]{12}")


def cached_builds() -> list[Path]:
    """The simulator builds under :func:`sim_build_root`, finished or not (nothing else there
    is counted: the folder may be one the user shares with other files)."""
    root = sim_build_root()
    if not root.exists():
        return []
    if not root.is_dir():
        raise ToolchainError(f"the simulator build folder {root} ($MXUGEN_SIM_BUILD) is not a "
                              "folder; point MXUGEN_SIM_BUILD at one")
    return sorted(path for path in root.iterdir()
                  if path.is_dir() and _BUILD_NAME.fullmatch(path.name))


def clear_build_cache() -> tuple[int, int]:
    """Delete every cached build (:func:`cached_builds`) and the cache folder if that leaves
    it empty (not a folder that was empty before); return how many builds went and their
    bytes."""
    builds = cached_builds()
    size = sum(f.stat().st_size for build in builds for f in build.rglob("*") if f.is_file())
    for build in builds:
        shutil.rmtree(build)
    root = sim_build_root()
    if builds and not any(root.iterdir()):
        root.rmdir()
    return len(builds), size


def load_tb_config() -> dict:
    """Inside a cocotb test: the ``config`` dict that :meth:`Simulator.run` was given."""
    path = os.environ.get("MXUGEN_TB_CONFIG")
    return json.loads(Path(path).read_text()) if path else {}
