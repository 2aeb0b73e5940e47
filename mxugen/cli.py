"""The ``mxugen`` command line: one tool over the generator, quantizer and verification. Each
subcommand lives in :mod:`mxugen.commands`; this module parses and maps errors to exit codes.

Exit codes: 0 success, 1 verification failure (mismatch or lint finding), 2 usage or input error,
3 the simulator could not be built or run.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .commands import COMMANDS
from .options import Parser, UsageError, epilog


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mxugen", description="Generate int8 systolic matrix units and verify them "
        "bit-exactly against TFLite integer semantics.",
        epilog=epilog([line for module in COMMANDS for line in module.EXAMPLES]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mxugen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    parser.set_defaults(commands=commands.choices)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's parser, which names its own --help
        args.commands.get(args.command, parser).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    empty = [name for name, value in vars(args).items() if value == ""]
    if empty:  # an empty path is "." or "not given" to the code below: neither is meant
        print(f"mxugen: error: the {empty[0].replace('_', '-')} argument is empty; give a "
              "value", file=sys.stderr)
        return 2
    if not getattr(args, "run", None):
        print("mxugen: error: give a command, e.g. mxugen demo (see mxugen --help)",
              file=sys.stderr)
        return 2
    from hw import ConfigError
    from quantizer import QuantizerError
    from verif.errors import SimulationError, ToolchainError
    try:
        return args.run(args)
    except (UsageError, ConfigError, QuantizerError, ToolchainError) as exc:
        print(f"mxugen: error: {exc}", file=sys.stderr)
        return 2
    except SimulationError as exc:
        print(f"mxugen: simulation failed: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"mxugen: {args.command} interrupted; what it was writing was not written",
              file=sys.stderr)
        return 130
    except MemoryError:
        print(f"mxugen: error: {args.command} ran out of memory: give it smaller sizes "
              "(shapes, samples, batch)", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave that cannot be read or written
        where = f" {exc.filename}" if exc.filename else ""
        print(f"mxugen: error: cannot access{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
