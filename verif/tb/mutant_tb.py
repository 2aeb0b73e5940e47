"""The matrix unit's regression (verif/tb/mxu_tb.py) against each mutant of a design that holds
many (:mod:`mxugen.mutation`: Yosys's ``mutate`` pass, mutant ``mutsel`` active, 0 none): a
mutant is killed by the first stimulus whose outputs differ from the golden model, miss their
latency or do not come within the time limit. Each (mutant, stimulus) pair is a test of its
own, so cocotb stops the last one's drivers before the next; a killed mutant's remaining
stimuli are skipped. The verdicts go to ``results_file`` as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
from cocotb.triggers import with_timeout

from ..runner import load_tb_config
from .mxu_tb import STIMULI

SETTINGS = load_tb_config()
#: Simulated time a stimulus may take before its mutant counts as killed (a hang).
TIME_LIMIT_US = 2000


def _killed() -> set[int]:
    path = Path(SETTINGS["results_file"])
    lines = path.read_text().splitlines() if path.exists() else []
    return {record["mutant"] for record in map(json.loads, lines) if record["killed_by"]}


def _record(mutant: int, stimulus: str, killed_by: str | None) -> None:
    with open(SETTINGS["results_file"], "a") as results:
        results.write(json.dumps({"mutant": mutant, "stimulus": stimulus,
                                  "killed_by": killed_by}) + "\n")


@cocotb.test()
@cocotb.parametrize(mutant=SETTINGS.get("mutants", [0]), stimulus=list(STIMULI))
async def regression(dut, mutant: int, stimulus: str):
    if mutant in _killed():
        return
    dut.mutsel.value = mutant
    try:
        await with_timeout(STIMULI[stimulus](dut), TIME_LIMIT_US, "us")
    except AssertionError as failure:
        _record(mutant, stimulus, str(failure).splitlines()[0][:300] or "assertion")
        return
    except cocotb.triggers.SimTimeoutError:
        _record(mutant, stimulus, f"no result within {TIME_LIMIT_US} us")
        return
    _record(mutant, stimulus, None)
