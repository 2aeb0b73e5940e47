"""The simulator build cache: keyed by the design, found without elaborating it again, dropped
by ``mxugen clean``."""

from __future__ import annotations

import pytest

from hw import generate
from mxugen.cli import main
from verif import runner


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MXUGEN_SIM_BUILD", str(tmp_path / "sb"))
    return tmp_path / "sb"


def _never_called() -> str:
    raise AssertionError("the design was generated although its build is cached")


def _finished(build_dir):
    build_dir.mkdir(parents=True)
    (build_dir / "build.ok").write_text(build_dir.name)


def test_a_cached_generated_design_is_not_generated_again(cache):
    build_dir = runner.build_directory("accel-4x4-0123456789ab", _never_called, "accel",
                                       waves=False, args=runner.VERILATOR_WAIVERS)
    assert build_dir.parent == cache
    _finished(build_dir)
    sim = runner.build_simulator("accel-4x4-0123456789ab", _never_called, "accel")
    assert sim.build_dir == build_dir


def test_runs_of_one_build_at_once_get_folders_of_their_own(tmp_path):
    """A run folder is held while it runs: another run of the same name, in another process
    or thread (a soak's workers), takes the next free one; a finished run frees its own."""
    runs = tmp_path / "runs"
    with runner._claimed(runs, "network") as first:
        with runner._claimed(runs, "network") as second, \
                runner._claimed(runs, "network") as third:
            assert [first.name, second.name, third.name] == \
                ["network", "network-1", "network-2"]
        with runner._claimed(runs, "network") as again:
            assert again.name == "network-1"
    with runner._claimed(runs, "network") as free:
        assert free.name == "network"


def test_the_key_follows_the_generator_the_flags_and_the_design(cache, monkeypatch):
    def where(name="mxu-4x4-0123456789ab", verilog=_never_called, **options):
        options = {"waves": False, "args": runner.VERILATOR_WAIVERS, **options}
        return runner.build_directory(name, verilog, "mxu", **options)

    first = where()
    assert where() == first
    assert where(name="mxu-8x8-0123456789ab") != first
    assert where(waves=True) != first
    assert where(args=(*runner.VERILATOR_WAIVERS, "-O3")) != first
    assert where(visibility="ports") != first
    assert where(verilog="module mxu; endmodule") != first
    assert where(verilog="module mxu; endmodule") != where(verilog="module mxu (); endmodule")
    monkeypatch.setattr(generate, "generator_digest", lambda: "another generator")
    assert where() != first


def test_clean_removes_the_builds_and_nothing_else(cache, capsys):
    for name in ("accel-4x4-0123456789ab", "mxu-2x2-ba9876543210"):
        _finished(cache / name)
        (cache / name / "accel").write_bytes(b"\0" * 1000)
    (cache / "notes.txt").write_text("the user's file")
    (cache / "results").mkdir()
    assert len(runner.cached_builds()) == 2

    assert main(["clean"]) == 0
    assert capsys.readouterr().out.startswith(f"removed 2 simulator builds (0.0 MB) from {cache}")
    assert sorted(p.name for p in cache.iterdir()) == ["notes.txt", "results"]

    (cache / "notes.txt").unlink()
    (cache / "results").rmdir()
    _finished(cache / "pe-0123456789ab")
    assert main(["clean"]) == 0
    assert "removed 1 simulator build " in capsys.readouterr().out
    assert not cache.exists()
    assert main(["clean"]) == 0
    assert "removed 0 simulator builds" in capsys.readouterr().out


@pytest.mark.parametrize("make", ["file", "empty folder"])
def test_clean_refuses_a_cache_that_is_not_a_folder_and_keeps_an_empty_one(tmp_path, capsys,
                                                                           monkeypatch, make):
    root = tmp_path / "sb"
    root.write_text("a file") if make == "file" else root.mkdir()
    monkeypatch.setenv("MXUGEN_SIM_BUILD", str(root))
    if make == "file":
        assert main(["clean"]) == 2
        assert "is not a folder; point MXUGEN_SIM_BUILD at one" in capsys.readouterr().err
        assert root.read_text() == "a file"
    else:
        assert main(["clean"]) == 0
        assert root.is_dir()  # the user's empty folder, not one clean emptied
