"""What the command modules share: the usage error, subcommand declaration with examples, and
the hardware options that become an :class:`~hw.ArrayConfig`."""

from __future__ import annotations

import argparse
import re


class UsageError(Exception):
    """A user mistake: reported as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line, like every other user mistake: what is wrong and
    where the usage is, not the whole usage block. Subcommand parsers inherit the class."""

    def error(self, message: str):
        if message.endswith("expected one argument"):  # the value began with '-'
            message += " (a value that starts with '-' goes as --option=VALUE, e.g. " \
                "--input-range=-1,1)"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command(commands, name: str, help: str, examples: list[str],
            description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand parser with its examples under the option list."""
    return commands.add_parser(name, help=help, description=description or help,
                               epilog=epilog(examples),
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def epilog(examples: list[str]) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in examples)


def modes(text: str) -> tuple[str, ...]:
    """A comma-separated list of names (rounding modes, hardware), each once."""
    found = tuple(m.strip() for m in text.split(","))
    if not all(found) or len(set(found)) != len(found):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a comma-separated list that names each one once")
    return found


#: Seeds go to numpy and scikit-learn, which take 0 … 2³² − 1.
SEED_MAX = 2 ** 32 - 1


def seed(text: str) -> int:
    """A random seed: an integer from 0 to :data:`SEED_MAX`."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is an integer from 0 to {SEED_MAX}")
    return value


def module_name(text: str) -> str:
    """A Verilog module name: a letter or ``_``, then letters, digits and ``_`` (it names the
    files written too, so it holds no path)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Verilog module name: a letter or _, then letters, digits, _")
    if text in VERILOG_KEYWORDS:
        raise argparse.ArgumentTypeError(f"{text!r} is a Verilog keyword: choose another name")
    return text


#: The Verilog-2005 keywords a module name could collide with (IEEE 1364-2005, annex B).
VERILOG_KEYWORDS = frozenset("""
    always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config
    deassign default defparam design disable edge else end endcase endconfig endfunction
    endgenerate endmodule endprimitive endspecify endtable endtask event for force forever fork
    function generate genvar highz0 highz1 if ifnone incdir include initial inout input instance
    integer join large liblist library localparam macromodule medium module nand negedge nmos
    nor noshowcancelled not notif0 notif1 or output parameter pmos posedge primitive pull0 pull1
    pulldown pullup pulsestyle_ondetect pulsestyle_onevent rcmos real realtime reg release
    repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small specify
    specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0
    tri1 triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor
    xnor xor""".split())


def add_shape_options(parser, default: int = 8) -> None:
    parser.add_argument("--rows", type=int, default=default,
                        help=f"PE rows, the K of one tile (default {default})")
    parser.add_argument("--cols", type=int, default=default,
                        help=f"PE columns, the N of one tile (default {default})")


#: Hardware option → ArrayConfig field. Options left unset take the ArrayConfig default, or
#: with ``--images`` the hardware the images were compiled for.
HW_OPTIONS = {"rows": "rows", "cols": "cols", "dtype": "dtype", "acc_width": "acc_width",
              "requant": "requant_modes", "weight_bits": "weight_bits", "window": "window",
              "window_width": "window_width", "weight_load_rows": "weight_load_rows",
              **{f"{m.split('_')[0]}_depth": m for m in
                 ("weight_depth", "act_depth", "param_depth", "psum_depth", "program_depth")}}


def add_hw_options(parser: argparse.ArgumentParser, *, shape: tuple[int, int] | None = None,
                   images: bool = False) -> None:
    """The hardware parameters; ``shape`` is the command's own default rows × cols; with
    ``images``, the command takes ``--images``, whose hardware they default to."""
    from hw import ArrayConfig
    d = ArrayConfig()
    rows, cols = shape or (d.rows, d.cols)
    group = parser.add_argument_group("hardware parameters" + (
        " (with --images: default the images')" if images else ""))
    group.add_argument("--rows", type=int, default=shape and rows,
                       help=f"PE rows, the K of one tile (default {rows})")
    group.add_argument("--cols", type=int, default=shape and cols,
                       help=f"PE columns, the N of one tile (default {cols})")
    group.add_argument("--dtype", help="int8 (default) or uint8")
    group.add_argument("--acc-width", type=int,
                       help=f"accumulator bits, 18..32 (default {d.acc_width})")
    group.add_argument("--requant", type=modes,
                       help="rounding modes to build, comma-separated from double,single,pow2 "
                            "(default double,single; pow2 alone builds no multiplier)")
    group.add_argument("--no-pipeline", action="store_true",
                       help="single-cycle PEs (default: product registered before the add)")
    group.add_argument("--weight-bits", type=int, choices=[8, 4, 2, 1],
                       help="weight-memory bits per weight: packed low-bit weights (default 8)")
    group.add_argument("--weight-load-rows", type=int, choices=[1, 2],
                       help="rows of a weight tile the array loads a cycle (default 2 with an "
                            "even number of rows; 1 halves the weight memory's word)")
    group.add_argument("--window", type=int,
                       help="accelerator: kernel size K of a depthwise window unit, 2..7 "
                            "(default none; docs/hardware.md)")
    group.add_argument("--window-width", type=int,
                       help="accelerator: words of each window line buffer, the widest padded "
                            "input row it takes")
    for option, field in HW_OPTIONS.items():
        if option.endswith("_depth"):
            group.add_argument(f"--{option.replace('_', '-')}", type=int,
                               help=f"accelerator {option.split('_')[0]} memory words "
                                    f"(default {getattr(d, field)})")


def config_from(args, base: dict | None = None):
    """The ArrayConfig of the options given, over ``base`` (a hardware dict) or the defaults;
    with a base, a given option that contradicts it is an error."""
    from hw import ArrayConfig
    params = dict(base or {})
    given = {field: getattr(args, option) for option, field in HW_OPTIONS.items()
             if getattr(args, option) is not None}
    if args.no_pipeline:
        given["pipelined_product"] = False
    if base is not None:
        canonical = ArrayConfig.from_dict({**base, **given}).to_dict()
        clashes = [k for k in given if canonical[k] != base[k]]
        if clashes:
            raise UsageError(f"--{clashes[0].replace('_', '-')} contradicts the images' hardware "
                             f"({clashes[0]}={base[clashes[0]]!r}); leave it out or recompile "
                             "the images for the hardware you want")
    return ArrayConfig.from_dict({**params, **given})


def hardware_options(config) -> list[str]:
    """The hardware options that give ``config`` (those that differ from the defaults): the
    inverse of :func:`config_from`, to print a command that builds it again."""
    from hw import ArrayConfig
    default, given = ArrayConfig().to_dict(), config.to_dict()
    options = []
    for option, field in HW_OPTIONS.items():
        value = given[field]
        if field in ("rows", "cols") or value != default[field]:
            text = ",".join(value) if isinstance(value, list) else str(value)
            options += [f"--{option.replace('_', '-')}", text]
    return options + ([] if config.pipelined_product else ["--no-pipeline"])


#: ``--bus`` → the accelerator's host interface and its default top module name.
BUSES = {"host": "accel", "axi-lite": "accel_axil"}


def add_bus_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bus", choices=list(BUSES), default="host",
                        help="with --accelerator: its host interface, the simple host port "
                             "(default) or an AXI4-Lite slave (docs/verilog.md)")


#: Hardware options that size or add to the accelerator around the matrix unit.
ACCELERATOR_OPTIONS = ("window", "window_width",
                       *(option for option in HW_OPTIONS if option.endswith("_depth")))


def check_accelerator_options(args, fix: str = "add --accelerator") -> None:
    """Refuse an accelerator's option given for the matrix unit alone (it would be
    ignored); ``fix`` says what to do."""
    if getattr(args, "accelerator", False):
        return
    given = [option for option in ACCELERATOR_OPTIONS if getattr(args, option) is not None]
    given += ["bus"] if getattr(args, "bus", "host") != "host" else []
    if given:
        raise UsageError(f"--{given[0].replace('_', '-')} is an option of the accelerator: "
                         f"{fix}")


def design(config, accelerator: bool, images: dict | None = None, bus: str = "host"):
    """The component to generate: the whole accelerator (behind ``bus``), or the matrix unit
    alone."""
    if accelerator and bus == "axi-lite":
        from hw.axi_lite import AxiLiteAccelerator
        return AxiLiteAccelerator(config, images)
    if accelerator:
        from hw.accelerator import Accelerator
        return Accelerator(config, images)
    from hw.matrix_unit import MatrixUnit
    return MatrixUnit(config)


#: The file that marks a folder as another command's output, and what it holds.
OUTPUT_MARKERS = {"graph.json": "a network written by mxugen quantize",
                  "manifest.json": "images written by mxugen compile",
                  "tensors.json": "tensors dumped by mxugen sim",
                  "explore.json": "a sweep written by mxugen explore"}


def check_output_folder(path, own: str | None = None, option: str = "-o") -> None:
    """Refuse, before anything is written, an output folder (``option``) that is a file,
    lies below one, cannot be written, or holds another command's output
    (:data:`OUTPUT_MARKERS` but ``own``, the marker of what the command writes itself)."""
    import os
    import tempfile
    from pathlib import Path
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise UsageError(f"output {path} exists and is not a directory; choose another "
                         f"{option}")
    existing = next(p for p in (path.absolute(), *path.absolute().parents)
                    if os.path.lexists(p))
    if not existing.is_dir():
        what = "a file" if existing.is_file() else "not a folder"
        raise UsageError(f"output {path} would be inside {existing}, which is {what}; choose "
                         f"another {option}")
    try:  # can a folder be made where the output goes?
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".mxugen-probe."))
    except OSError as exc:
        raise UsageError(f"cannot write under {existing}: {exc.strerror or exc}; choose another "
                         f"{option}") from None
    other = [m for m in OUTPUT_MARKERS if m != own and (path / m).exists()]
    if other:
        raise UsageError(f"output {path} holds {OUTPUT_MARKERS[other[0]]}; choose another "
                         f"{option}")


def check_not_an_input(output, inputs, what: str = "the output") -> None:
    """Refuse an output that is one of the ``inputs`` (files or folders) or a file that is
    already inside an input folder: writing it would overwrite what the command reads."""
    import os
    if output is None:
        return
    out = os.path.realpath(output)
    for given in inputs:
        if given is None:
            continue
        source = os.path.realpath(given)
        inside = out.startswith(source.rstrip(os.sep) + os.sep) and os.path.isfile(out)
        if out == source or inside:
            raise UsageError(f"{what} {output} would overwrite the input {given}"
                             + ("" if out == source else "'s files") + "; give another name")


def add_device_option(parser: argparse.ArgumentParser, help: str, default: str | None = None):
    from hw.block_ram import ECP5_BLOCK_RAMS
    parser.add_argument("--device", default=default, choices=list(ECP5_BLOCK_RAMS), help=help)


def block_ram_line(config, device: str | None, what: str) -> str:
    """One line on the DP16KD blocks the accelerator ``config`` needs on an ECP5; a
    :class:`UsageError` when ``device`` has fewer."""
    from hw.block_ram import block_ram_report
    report = block_ram_report(config, device)
    by_memory = ", ".join(f"{name} {n}" for name, n in report["block_rams_by_memory"].items())
    need = f"{report['block_rams']} DP16KD block RAMs ({by_memory})" if report["block_rams"] \
        else "no DP16KD block RAM (every memory fits in LUT RAM)"
    if device is not None and not report["fits"]:
        raise UsageError(f"{what} needs {need}, the ECP5 {device} has "
                         f"{report['device_block_rams']}: use a larger device, fewer samples "
                         "per run or smaller memories (docs/verilog.md)")
    room = f" of the {device}'s {report['device_block_rams']}" if device else ""
    return f"block RAM on an ECP5: {need}{room}"
