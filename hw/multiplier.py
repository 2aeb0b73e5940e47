"""A product registered the way an FPGA's DSP block registers it, and that block itself when
Verilog is generated for an FPGA family whose block Yosys does not pack registers into.

Every hard multiplier of the FPGAs mxugen targets has a register at its inputs, one inside the
product and one at its output (ECP5 MULT18X18D, iCE40 SB_MAC16, 7-series DSP48E1). Registers
left in the fabric around a multiplier cap the clock near the multiplier's own delay (measured
on ECP5-85k: 147 MHz from fabric flip-flop to fabric flip-flop through an inferred MULT18X18D,
253 MHz through one with its three registers). Yosys packs the 7-series and iCE40 registers
itself, but not the ECP5's, so for ``target="ecp5"`` (:class:`hw.cells.CellLibrary`) the
product is a MULT18X18D instance, and everywhere else the same three registers in the fabric.
A fourth register, in the fabric, takes the product out of the DSP blocks' rows before
anything adds it: on an 8×8 matrix unit the route from a MULT18X18D's output to the PE's
adder alone took 6 ns. The latency, and so every cycle count, is the same for both targets.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Signal, Value, signed

__all__ = ["TARGETS", "TARGET_PRIMITIVES", "registered_product"]

#: What Verilog can be generated for, and the FPGA primitives it instantiates: portable
#: Verilog, or Verilog that instantiates the Lattice ECP5's MULT18X18D for each
#: :func:`registered_product`. Synthesis knows the primitives; simulators need their models
#: (:mod:`verif.primitives`).
TARGET_PRIMITIVES = {"generic": (), "ecp5": ("MULT18X18D",)}
TARGETS = tuple(TARGET_PRIMITIVES)

#: MULT18X18D's operand width: an operand sign- or zero-extended to it is read as signed.
_ECP5_WIDTH = 18


def registered_product(m: Module, a: Value, b: Value, *, platform, name: str) -> Signal:
    """``a · b``, exact, :data:`hw.config.PRODUCT_REGISTERS` cycles after ``a`` and ``b``:
    registered at the inputs, inside the product, at the output and once more, in module
    ``m``. Each operand must fit an 18-bit signed operand (at most 18 bits signed or 17
    unsigned), the width of the DSP blocks it maps onto; ``name`` prefixes its signals."""
    a, b = Value.cast(a), Value.cast(b)
    for operand, value in (("a", a), ("b", b)):
        shape = value.shape()
        if shape.width + (not shape.signed) > _ECP5_WIDTH:
            raise ValueError(f"operand {operand} must fit an {_ECP5_WIDTH}-bit signed operand "
                             f"(at most 18 bits signed or 17 unsigned), got {shape!r}")
    block = Signal((a * b).shape(), name=f"{name}_dsp_p", reset_less=True)
    if getattr(platform, "target", "generic") == "ecp5":
        _mult18x18d(m, a, b, block, name)
    else:
        inputs = [Signal(v.shape(), name=f"{name}_{x}", reset_less=True)
                  for x, v in (("a", a), ("b", b))]
        inner = Signal(block.shape(), name=f"{name}_m", reset_less=True)
        m.d.sync += [inputs[0].eq(a), inputs[1].eq(b), inner.eq(inputs[0] * inputs[1]),
                     block.eq(inner)]
    product = Signal(block.shape(), name=f"{name}_p", reset_less=True)
    m.d.sync += product.eq(block)
    return product


def _mult18x18d(m: Module, a: Value, b: Value, product: Signal, name: str) -> None:
    """A MULT18X18D with its input, pipeline and output registers on ``CLK0``. Both operands
    are extended to 18 bits and multiplied as signed: an unsigned operand of at most 17 bits
    reads the same as signed, and the 36-bit product's low bits are the exact product."""
    ports = {}
    for port, value in (("A", a), ("B", b)):
        extended = Signal(signed(_ECP5_WIDTH), name=f"{name}_{port.lower()}18")
        m.d.comb += extended.eq(value)
        ports.update({f"i_{port}{bit}": extended[bit] for bit in range(_ECP5_WIDTH)})
    full = Signal(2 * _ECP5_WIDTH, name=f"{name}_p36")
    ports.update({f"o_P{bit}": full[bit] for bit in range(2 * _ECP5_WIDTH)})
    registers = {f"p_REG_{stage}_{what}": setting
                 for stage in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT")
                 for what, setting in (("CLK", "CLK0"), ("CE", "CE0"), ("RST", "RST0"))}
    m.submodules[f"{name}_dsp"] = Instance(
        "MULT18X18D", **registers, p_GSR="DISABLED", p_RESETMODE="SYNC",
        i_SIGNEDA=1, i_SIGNEDB=1, i_SOURCEA=0, i_SOURCEB=0,
        i_CLK0=ClockSignal(), i_CE0=1, i_RST0=0, **ports)
    m.d.comb += product.eq(full[:len(product)])
