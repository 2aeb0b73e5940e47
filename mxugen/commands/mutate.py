"""``mxugen mutate``: the mutation score of the matrix unit's regression."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..options import (UsageError, add_hw_options, check_accelerator_options, check_output_folder,
                       command, config_from, seed)

EXAMPLES = ["mxugen mutate --rows 4 --cols 4 --mutants 200 --json",
            "mxugen mutate --rows 2 --cols 2 --mutants 30 --no-prove"]

#: The score the regression is held to (issue: ≥ 95 % of non-equivalent mutants killed).
TARGET = 0.95


def register(commands) -> None:
    parser = command(
        commands, "mutate", "inject single faults into the matrix unit and count how many its "
        "regression catches", EXAMPLES,
        "Generate the matrix unit (default 4x4), let Yosys's mutate pass list N single faults "
        "of its netlist and build one design holding them all, run the matrix unit's cocotb "
        "regression against every mutant in Verilator (on a Dask cluster, one build), put "
        "each survivor to Yosys's equivalence prover, and report killed, survived and "
        "proved-equivalent mutants with the score killed / (mutants - equivalent), overall "
        "and for the requantizer's and the array's cells (docs/verification.md).")
    add_hw_options(parser, shape=(4, 4))
    parser.add_argument("--mutants", type=int, default=200,
                        help="mutations to sample, evenly over the netlist (default 200)")
    parser.add_argument("--seed", type=seed, default=1,
                        help="seed of the sampling and of the regression's stimulus")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="workers of the local Dask cluster: simulator and prover "
                             "processes at once (default: the cores)")
    parser.add_argument("--address", help="a Dask scheduler to run on instead (also "
                                          "DASK_SCHEDULER_ADDRESS; its workers must see -o; "
                                          "docs/explore.md)")
    parser.add_argument("--no-prove", action="store_true",
                        help="skip the equivalence proofs of surviving mutants")
    parser.add_argument("--fail-under", type=float, metavar="SCORE",
                        help="exit 1 when the score is below SCORE (0..1)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show progress on stderr (default: on a terminal)")
    parser.add_argument("-o", "--output", default="out/mutate",
                        help="folder for the netlists, mutants and logs (default out/mutate)")
    parser.set_defaults(run=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..fpga import FpgaToolError
    from ..mutation import mutation_campaign

    for name in ("mutants", "jobs"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.jobs > 256:
        raise UsageError(f"--jobs is the simulator processes run at once, at most 256, got "
                         f"{args.jobs}")
    if args.mutants >= 1 << 16:
        raise UsageError(f"--mutants must be below 65536, got {args.mutants}")
    if args.fail_under is not None and not 0 <= args.fail_under <= 1:
        raise UsageError(f"--fail-under is a score in 0..1, got {args.fail_under}")
    check_output_folder(args.output)
    check_accelerator_options(args, "mxugen mutate tests the matrix unit alone; leave it out")
    config = config_from(args)
    bars: dict = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=total, desc=f"mutate {stage}", unit="mutant",
                               file=sys.stderr, disable=None if args.progress is None
                               else not args.progress)
        bars[stage].update(done - bars[stage].n)

    try:
        report = mutation_campaign(config, args.mutants, args.seed, args.jobs, Path(args.output),
                                   prove=not args.no_prove, progress=progress,
                                   address=args.address)
    except FpgaToolError as exc:
        raise UsageError(str(exc)) from None
    finally:
        for bar in bars.values():
            bar.close()
    figures = report.to_dict()
    figures.update(target=TARGET,
                   meets_target=figures["score"] is not None and figures["score"] >= TARGET)
    failed = args.fail_under is not None and (figures["score"] or 0) < args.fail_under
    if args.json:
        print(json.dumps(figures))
        return int(failed)
    print(f"{figures['design']} ({figures['hardware']}), seed {figures['seed']}: "
          f"{figures['mutants']} mutants, {figures['killed']} killed, {figures['survived']} "
          f"survived, {figures['equivalent']} proved equivalent: score {figures['score']} "
          f"(target {TARGET})")
    for part, counts in figures["parts"].items():
        if counts["mutants"]:
            print(f"  {part:>12s}: {counts['killed']} of {counts['mutants'] - counts['equivalent']}"
                  f" killed, score {counts['score']}")
    for mutant in figures["survivors"]:
        print(f"  survived #{mutant['number']}: {mutant['mode']} on {mutant['cell']} "
              f"{mutant['port']}[{mutant['bit']}] ({mutant['source']})")
    return int(failed)
