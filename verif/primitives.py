"""Simulation models of the FPGA primitives that Verilog generated for a target other than
``generic`` instantiates (:data:`hw.generate.TARGET_PRIMITIVES`), for simulators without the
vendor's library: ``verif/models/<primitive>.v``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODELS", "primitive_models"]

MODELS = Path(__file__).parent / "models"


def primitive_models(target: str) -> str:
    """The Verilog of the models a design generated for ``target`` needs (none for
    ``generic``), to simulate it as it is."""
    from hw.generate import TARGET_PRIMITIVES
    if target not in TARGET_PRIMITIVES:
        raise ValueError(f"target must be one of {', '.join(TARGET_PRIMITIVES)}, got {target!r}")
    return "".join((MODELS / f"{name}.v").read_text() for name in TARGET_PRIMITIVES[target])
