"""Simulation models of the FPGA primitives that Verilog generated for a target other than
``generic`` instantiates (:data:`hw.multiplier.TARGET_PRIMITIVES`), for simulators without the
vendor's library: ``verif/models/<primitive>.v``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["MODELS", "primitive_model_files", "primitive_models"]

MODELS = Path(__file__).parent / "models"


def primitive_model_files(target: str) -> dict[str, str]:
    """``{file name: Verilog}`` of the models a design generated for ``target`` needs (none
    for ``generic``)."""
    from hw.multiplier import TARGET_PRIMITIVES
    if target not in TARGET_PRIMITIVES:
        raise ValueError(f"target must be one of {', '.join(TARGET_PRIMITIVES)}, got {target!r}")
    return {f"{name}.v": (MODELS / f"{name}.v").read_text() for name in TARGET_PRIMITIVES[target]}


def primitive_models(target: str) -> str:
    """The models' Verilog in one text, to simulate a design generated for ``target``."""
    return "".join(primitive_model_files(target).values())
