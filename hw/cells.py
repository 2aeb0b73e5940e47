"""Repeated cells generated once: a large array's Verilog holds one column module instantiated
``cols`` times and one processing-element module instantiated ``rows`` times in it, rather than
``rows × cols`` PE modules that Python elaborated one by one (a 128×128 array has 16,384)."""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, ResetSignal
from amaranth.lib import wiring

from .multiplier import TARGETS

__all__ = ["CellLibrary", "place"]


class CellLibrary:
    """The elaboration platform of Verilog generation (:func:`hw.generate.convert`): the
    cells components :func:`place` in it, each converted to a module of its own once.

    Parameters
    ----------
    prefix : the top module's name; a cell's module is ``<prefix>_<key>``, so two generated
        designs can sit in one project.
    target : what the Verilog is for (:data:`hw.multiplier.TARGETS`): ``"generic"``, or
        ``"ecp5"`` to instantiate the ECP5's DSP blocks (:mod:`hw.multiplier`).

    Attributes
    ----------
    cells : ``{module name: component}``, the cells placed so far, one component per name.
    """

    def __init__(self, prefix: str, target: str = "generic"):
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        self.prefix = prefix
        self.target = target
        self.cells: dict[str, wiring.Component] = {}

    def module(self, key: str, component: wiring.Component) -> str:
        """The module name of cell ``key``; ``component`` stands for every cell of that key, so
        they must all be the same design (same class and configuration)."""
        name = f"{self.prefix}_{key}"
        first = self.cells.setdefault(name, component)
        if type(first) is not type(component) or \
                getattr(first, "config", None) != getattr(component, "config", None):
            raise ValueError(f"cell {key!r} is already a {type(first).__name__} of another "
                             f"design than this {type(component).__name__}")
        return name


def place(m, name: str, component: wiring.Component, platform, *, key: str) -> None:
    """Add ``component`` to module ``m`` as submodule ``name``: elaborated in place, or, when
    ``platform`` is a :class:`CellLibrary`, as an instance of the library's module ``key``
    wired to the component's own ports, so the code around it connects those either way.

    Every cell of one ``key`` must elaborate to the same logic: what differs between them (a
    processing element's row) has to be an input port. Cells run in the ``sync`` domain (their
    module has ``clk`` and ``rst``).
    """
    if not isinstance(platform, CellLibrary):
        m.submodules[name] = component
        return
    ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
    for path, member, value in component.signature.flatten(component):
        direction = "i" if member.flow == wiring.In else "o"
        ports[f"{direction}_{'__'.join(map(str, path))}"] = value
    m.submodules[name] = Instance(platform.module(key, component), **ports)
    # It stands in for its module and is not elaborated itself: tell Amaranth's
    # "created but never used" check so.
    component._MustUse__used = True
