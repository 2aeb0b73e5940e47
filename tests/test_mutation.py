"""Mutation testing (``mxugen mutate``): Yosys lists and applies single faults behind a select
input, the prover tells an equivalent mutant from one that changes the outputs, the score
leaves proved-equivalent mutants out, and the matrix unit's regression kills the mutants of a
small matrix unit."""

from __future__ import annotations

import json
import re

import pytest

from hw import ArrayConfig
from hw.generate import to_verilog
from hw.matrix_unit import MatrixUnit
from mxugen.mutation import (Mutation, MutationReport, list_mutations, mutant_verilog,
                             prove_equivalent)

# Bit 3 of the register's input is always 0: forcing it to 0 changes nothing; inverting
# bit 0 does.
TINY = """module mxu(input clk, input [3:0] a, output reg [3:0] y);
  always @(posedge clk) y <= a & 4'b0111;
endmodule
"""


def test_yosys_lists_numbered_mutations_and_builds_one_design_of_them(tmp_path):
    config = ArrayConfig(rows=1, cols=1)
    mutations = list_mutations(to_verilog(MatrixUnit(config), config, "mxu"), 12, 3, tmp_path)
    assert [m.number for m in mutations] == list(range(1, 13))
    assert {m.part for m in mutations} <= {"requantizer", "array", "top"}
    assert any(m.part == "requantizer" for m in mutations)
    assert all(f"-ctrl mutsel 16 {m.number} " in m.command and m.mode for m in mutations)
    verilog = mutant_verilog(mutations, tmp_path)
    assert re.search(r"input \[15:0\] mutsel;", verilog)
    assert len(set(re.findall(r"mutsel == 16'h([0-9a-f]{4})", verilog))) == 12


def test_the_prover_tells_an_equivalent_mutant_from_a_fault(tmp_path):
    mutations = list_mutations(TINY, 20, 1, tmp_path)
    [cell] = {m.cell for m in mutations if "dff" in m.cell}

    def mutation(mode: str, bit: int) -> Mutation:
        return Mutation(1, mode, cell, "D", bit, "", f"mutate -ctrl mutsel 16 1 -mode {mode} "
                        f"-module mxu -cell {cell} -port D -portbit {bit}")
    assert prove_equivalent(mutation("const0", 3), tmp_path)
    assert not prove_equivalent(mutation("inv", 0), tmp_path)


def test_the_score_leaves_proved_equivalent_mutants_out():
    def mutation(number: int, cell: str) -> Mutation:
        return Mutation(number, "inv", cell, "A", 0, "", "")
    report = MutationReport(config=ArrayConfig(rows=2, cols=2), seed=1, mutations=[
        mutation(1, "$flatten\\requant.$add$1"), mutation(2, "$flatten\\requant.$sub$2"),
        mutation(3, "$flatten\\array.$mul$3"), mutation(4, "$flatten\\array.$mux$4"),
        mutation(5, "$and$5")], killed={1: "corners", 3: "stalling", 5: "rounding"},
        equivalent={2})
    assert report.figures() == {"mutants": 5, "killed": 3, "equivalent": 1, "survived": 1,
                                "score": 0.75}
    assert report.figures("requantizer")["score"] == 1.0
    assert report.figures("array") == {"mutants": 2, "killed": 1, "equivalent": 0,
                                       "survived": 1, "score": 0.5}
    assert [m["number"] for m in report.to_dict()["survivors"]] == [4]


@pytest.mark.rtl
def test_the_regression_kills_the_mutants_of_a_small_matrix_unit(tmp_path, capsys):
    from mxugen.cli import main
    assert main(["mutate", "--rows", "2", "--cols", "2", "--mutants", "16", "--seed", "1",
                 "--jobs", "2", "--json", "--no-progress", "-o", str(tmp_path)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["mutants"] == 16
    assert figures["killed"] + figures["survived"] + figures["equivalent"] == 16
    assert figures["score"] >= 0.8, figures["survivors"]
    assert len(figures["survivors"]) == figures["survived"]
