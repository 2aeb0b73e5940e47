"""Design-space exploration (mxugen.explore): the candidates a sweep builds, the Pareto front
it reports, the cache that makes a repeated sweep free, and (RTL) a sweep on a local Dask
cluster whose figures are those mxugen fpga reports for the same accelerator."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from mxugen.cli import main
from mxugen.explore import Candidate, candidates, pareto_front, point_digest

MODELS = Path(__file__).parent / "models"


def _point(name: str, ips: float, luts: int, dsps: int, brams: int, fits: bool = True):
    return {"candidate": name, "inferences_per_s": ips, "luts": luts, "dsps": dsps,
            "block_rams": brams, "fits": fits}


def test_the_pareto_front_keeps_the_fitting_points_no_other_beats():
    small = _point("small", 100, 1000, 10, 2)
    twin = _point("twin", 100, 1000, 10, 2)       # ties small: neither beats the other
    fast = _point("fast", 200, 2000, 20, 2)
    worse = _point("worse", 150, 2500, 20, 2)     # fast is faster with fewer LUTs
    lean = _point("lean", 90, 1000, 10, 1)        # slower, but one block RAM fewer
    too_big = _point("too big", 300, 500, 5, 1, fits=False)
    failed = {"candidate": "failed", "error": "place and route failed"}
    front = pareto_front([small, twin, fast, worse, lean, too_big, failed])
    assert [p["candidate"] for p in front] == ["fast", "small", "twin", "lean"]


def test_candidates_are_the_shapes_the_accelerator_can_build():
    points = candidates((2, 3, 4), (2, 4), (8, 4), [("single",)])
    assert [(p.rows, p.cols, p.weight_bits) for p in points] == [
        (2, 2, 8), (2, 2, 4), (4, 2, 8), (4, 2, 4), (4, 4, 8), (4, 4, 4)]
    assert points[0].label == "2x2 w8 single"


def test_a_points_cache_key_changes_with_everything_it_depends_on():
    settings = {"target": "ecp5-85k", "runtime": "litert", "seed": 1, "place_and_route": True}
    point = Candidate(4, 4, 8, ("single",))
    key = point_digest("net", point, settings)
    assert key == point_digest("net", Candidate(4, 4, 8, ("single",)), dict(settings))
    assert len({key, point_digest("other", point, settings),
                point_digest("net", Candidate(4, 2, 8, ("single",)), settings),
                point_digest("net", Candidate(4, 4, 8, ("double", "single")), settings),
                point_digest("net", point, {**settings, "seed": 2}),
                point_digest("net", point, {**settings, "target": "ecp5-25k"})}) == 6


@pytest.mark.rtl
def test_a_sweep_on_the_local_cluster_matches_mxugen_fpga_and_reuses_its_cache(tmp_path,
                                                                                 capsys):
    """Two accelerators for a dense network, synthesized on a local Dask cluster of two
    workers: each point's resources are what ``mxugen fpga`` reports for the command the
    point prints; a rounding the network cannot run on is an error for its point, and the
    sweep goes on; a second sweep takes every finished point from the cache and tries the
    failed ones again."""
    out = tmp_path / "explore"
    argv = ["explore", str(MODELS / "fc.tflite"), "--rows", "2", "--cols", "1,2", "--requant",
            "double,double+single", "--no-pnr", "--no-progress", "--json", "-o", str(out)]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    points = {p["candidate"]: p for p in first["points"]}
    assert list(points) == ["2x1 w8 double", "2x1 w8 double+single", "2x2 w8 double",
                            "2x2 w8 double+single"]
    # LiteRT's FULLY_CONNECTED rounds once: a double-only requantizer cannot run it.
    assert all("needs single rounding" in points[f"2x{c} w8 double"]["error"] for c in (1, 2))
    built = [points["2x1 w8 double+single"], points["2x2 w8 double+single"]]
    assert all(not p["cached"] and p["fits"] and p["cycles"] > 0 for p in built)
    assert built[1]["cycles"] < built[0]["cycles"] and built[1]["dsps"] > built[0]["dsps"]
    command = shlex.split(built[1]["reproduce"]["fpga"])
    assert main([*command[1:], "--json", "-o", str(tmp_path / "by_hand")]) == 0
    by_hand = json.loads(capsys.readouterr().out)
    assert {k: by_hand[k] for k in ("luts", "ffs", "dsps", "block_rams")} == \
        {k: built[1][k] for k in ("luts", "ffs", "dsps", "block_rams")}
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)["points"]
    assert [p["cached"] for p in second] == [False, True, False, True]
    assert [{k: v for k, v in p.items() if k != "cached"} for p in second] == \
        [{k: v for k, v in p.items() if k != "cached"} for p in first["points"]]
