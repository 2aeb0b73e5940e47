"""The soak (verif/soak.py, mxugen bench soak): a case is one seed, replayable alone; a run
whose output, any layer or any batch's cycles differ is a mismatch reported with the case's
seed and first difference; a case that raises is an error, apart from the mismatches, and the
soak goes on; bad arguments are one line and exit 2. The RTL test runs the real soak."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from quantizer.cycles import network_cycles
from verif import soak as soak_module
from verif.network_sim import plan_run
from verif.soak import HARDWARE, MEMORY_FLOOR, draw_case, soak, soak_config


def fake_run_on_rtl(corrupt=None, raise_on=()):
    """A stand-in for run_on_rtl that compiles for real but simulates with the golden model
    and the cycle model; ``corrupt(run)`` then damages what it reports, and seeds in
    ``raise_on`` raise as a crashed simulation would."""
    def run_on_rtl(graph, x, config, *, batch, check_layers, seed, runtime):
        assert check_layers
        if seed in raise_on:
            from verif.errors import SimulationError
            raise SimulationError("the simulation did not finish: FAIL=1")
        plan = plan_run(graph, x, config, batch=batch, check_layers=True, runtime=runtime)
        run = SimpleNamespace(
            outputs=graph.run(x, runtime=runtime), plan=plan, partition=plan.partition,
            batches=[{"cycles": network_cycles(config, graph, b["samples"], runtime)}
                     for b in plan.batches],
            mismatch_count=0, mismatches=[], first_difference=None)
        if corrupt is not None:
            corrupt(run)
        return run
    return run_on_rtl


def test_an_honest_run_passes_every_case(monkeypatch, seed):
    monkeypatch.setattr(soak_module.network_sim, "run_on_rtl", fake_run_on_rtl())
    summary = soak(None, seed, cases=8)
    assert (summary["cases"], summary["mismatches"], summary["errors"]) == (8, 0, 0), \
        summary["failures"]
    assert summary["failures"] == [] and sum(summary["configs"].values()) == 8
    assert summary["cycles"] > 0 and summary["seed"] == seed


def _flip_output(run):
    run.outputs = run.outputs.copy()
    run.outputs.flat[0] ^= 1


def _one_more_cycle(run):
    run.batches[-1]["cycles"] += 1


def _layer_differs(run):
    run.mismatch_count, run.first_difference = 3, "CONV_2D conv_2d_0 (on the accelerator)"
    run.mismatches = ["CONV_2D conv_2d_0, sample 0, output 1: expected 5, got 6"]


@pytest.mark.parametrize("corrupt, first", [
    (_flip_output, "the output"), (_one_more_cycle, "cycles: measured"),
    (_layer_differs, "CONV_2D conv_2d_0 (on the accelerator)")])
def test_a_corrupted_run_is_a_mismatch_with_its_seed(monkeypatch, seed, corrupt, first):
    monkeypatch.setattr(soak_module.network_sim, "run_on_rtl", fake_run_on_rtl(corrupt))
    summary = soak(None, seed, cases=3)
    assert (summary["cases"], summary["mismatches"], summary["errors"]) == (3, 3, 0)
    assert [f["seed"] for f in summary["failures"]] == [seed, seed + 1, seed + 2]
    for failure in summary["failures"]:
        assert failure["status"] == "mismatch" and failure["first_difference"].startswith(first)
        assert failure["replay"] == f"mxugen bench soak --seed {failure['seed']} --cases 1"
        assert failure["hardware"] in HARDWARE and failure["operators"]


def test_a_case_that_raises_is_an_error_and_the_soak_goes_on(monkeypatch, seed):
    monkeypatch.setattr(soak_module.network_sim, "run_on_rtl",
                        fake_run_on_rtl(raise_on={seed + 1}))
    summary = soak(None, seed, cases=3, hardware=("2x2",))
    assert (summary["cases"], summary["mismatches"], summary["errors"]) == (3, 0, 1)
    [failure] = summary["failures"]
    assert failure["seed"] == seed + 1 and failure["status"] == "error"
    assert failure["error"].startswith("SimulationError: the simulation did not finish")
    assert failure["replay"] == f"mxugen bench soak --seed {seed + 1} --cases 1 --hardware 2x2"


def test_a_case_replays_alone_from_its_seed(monkeypatch, seed):
    """Case i of a soak from seed S runs what the soak from seed S + i runs first: the same
    hardware, runtime, network, inputs, batch and simulator seed."""
    seen = []
    honest = fake_run_on_rtl()

    def recording(graph, x, config, **kwargs):
        seen.append((config, graph.summary(), x.tobytes(), sorted(kwargs.items())))
        return honest(graph, x, config, **kwargs)

    monkeypatch.setattr(soak_module.network_sim, "run_on_rtl", recording)
    for hardware in (None, ("2x2", "4x2-window3-psum64")):
        seen.clear()
        soak(None, seed, cases=3, hardware=hardware)
        soak(None, seed + 2, cases=1, hardware=hardware)
        assert len(seen) == 4 and seen[3] == seen[2] and seen[3] != seen[1]


def test_the_time_budget_ends_the_soak(monkeypatch, seed):
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(soak_module, "time", SimpleNamespace(monotonic=lambda: clock.now))

    def slow_case(case_seed, hardware):
        clock.now += 10.0
        return {"seed": case_seed, "status": "ok"}

    monkeypatch.setattr(soak_module, "run_case", slow_case)
    assert soak(35, seed)["cases"] == 4        # started at 0, 10, 20, 30 s
    clock.now = 0.0
    assert soak(35, seed, cases=2)["cases"] == 2
    clock.now = 0.0
    assert soak(1, seed)["cases"] == 1         # at least one case


def test_random_networks_share_one_build_per_hardware():
    """Memories at least MEMORY_FLOOR: over 40 cases each hardware is one configuration, so
    one Verilator build serves them all."""
    configs = {}
    for s in range(40):
        case = draw_case(s)
        config = soak_config(case["graph"], case["hardware"], case["batch"])
        memories = {**MEMORY_FLOOR, **HARDWARE[case["hardware"]].get("memories", {})}
        assert all(getattr(config, name) == words for name, words in memories.items()), s
        configs.setdefault(case["hardware"], set()).add(config.digest())
    assert all(len(digests) == 1 for digests in configs.values())


@pytest.mark.parametrize("args, message", [
    (["--seconds", "-1"], "--seconds must be a positive number"),
    (["--seconds", "0"], "--seconds must be a positive number"),
    (["--seconds", "inf"], "--seconds must be a positive number"),
    (["--cases", "0"], "--cases must be at least 1"),
    (["--seed", "-1"], "'-1': a seed is an integer from 0 to 4294967295"),
    (["--hardware", "3x3"], "'3x3' is not soak hardware: choose from 2x2"),
    (["--hardware", ","], "',': give a comma-separated list that names each one once"),
    (["--hardware", "2x2,2x2"], "give a comma-separated list that names each one once"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, args, message):
    from mxugen.cli import main
    try:  # argparse's own refusals exit from the parser
        assert main(["bench", "soak", *args]) == 2
    except SystemExit as exit_:
        assert exit_.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_the_command_prints_json_and_exits_1_on_a_mismatch_3_on_a_crash(monkeypatch, capsys):
    from mxugen.cli import main
    monkeypatch.setattr(soak_module.network_sim, "run_on_rtl", fake_run_on_rtl())
    assert main(["bench", "soak", "--seed", "7", "--cases", "2", "--json",
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    figures = json.loads(out.out)
    assert (figures["seed"], figures["cases"], figures["mismatches"]) == (7, 2, 0)
    assert "bench soak: seed 7" in out.err
    monkeypatch.setattr(soak_module.network_sim, "run_on_rtl", fake_run_on_rtl(_flip_output))
    assert main(["bench", "soak", "--seed", "7", "--cases", "1", "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert "1 mismatches" in text and "replay: mxugen bench soak --seed 7 --cases 1" in text
    # A case that crashed is a failed simulation, never a mismatch: exit 3, not 1.
    monkeypatch.setattr(soak_module.network_sim, "run_on_rtl", fake_run_on_rtl(raise_on={7}))
    assert main(["bench", "soak", "--seed", "7", "--cases", "1", "--no-progress"]) == 3
    assert "0 mismatches, 1 errors" in capsys.readouterr().out


@pytest.mark.rtl
def test_the_soak_runs_bit_exact_on_the_smallest_hardware(seed):
    summary = soak(None, seed, cases=2, hardware=("2x2",))
    assert summary["cases"] == 2 and summary["errors"] == 0, summary["failures"]
    assert summary["mismatches"] == 0, summary["failures"]
    assert summary["configs"] == {"2x2": 2} and summary["cycles"] > 0


@pytest.mark.rtl
def test_the_soak_runs_on_a_local_dask_cluster(seed):
    """Two workers, one build: the cases share the simulator build (one worker builds, the
    other waits for it) and run in folders of their own, each bit-exact."""
    summary = soak(None, seed, cases=4, hardware=("2x2",), jobs=2)
    assert summary["cases"] == 4 and summary["errors"] == 0, summary["failures"]
    assert summary["mismatches"] == 0 and summary["configs"] == {"2x2": 4}
