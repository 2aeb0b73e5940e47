"""``mxugen clean``: drop the cached simulator builds."""

from __future__ import annotations

from ..options import command

EXAMPLES = ["mxugen clean"]


def register(commands) -> None:
    parser = command(
        commands, "clean", "delete the cached Verilator builds", EXAMPLES,
        "Delete the simulators that sim, bench and demo build once per hardware configuration "
        "and reuse (in sim_build/, or $MXUGEN_SIM_BUILD); the next run builds them again. "
        "Only build folders are touched.")
    parser.set_defaults(run=run)


def run(args) -> int:
    from verif.runner import clear_build_cache, sim_build_root

    count, size = clear_build_cache()
    print(f"removed {count} simulator build{'s' if count != 1 else ''} "
          f"({size / 1e6:.1f} MB) from {sim_build_root()}")
    return 0
