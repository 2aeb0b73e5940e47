"""Hardware parameters: one frozen dataclass, validated once, recorded in every generated file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from . import contract
from .contract import DTYPES, REQUANT_MODES, WEIGHT_BITS

# Amaranth is imported only when a shape is asked for: the compiler and the whole-network
# testbench use the configuration without loading the HDL.
if TYPE_CHECKING:
    from amaranth.hdl import Shape


#: The registers of a pipelined multiplier (:mod:`hw.multiplier`): an FPGA DSP block's three,
#: at its inputs, inside the product and at its output, and one in the fabric beside it.
PRODUCT_REGISTERS = 4

MEMORY_FIELDS = ("weight_depth", "act_depth", "param_depth", "psum_depth", "program_depth")


class ConfigError(ValueError):
    """An invalid hardware parameter; the message names the field and its allowed values."""


@dataclass(frozen=True)
class ArrayConfig:
    """Parameters of a generated matrix unit.

    Parameters
    ----------
    rows : number of PE rows, the reduction (K) dimension of one tile. 1..256.
    cols : number of PE columns, the output-channel (N) dimension of one tile. 1..256.
    dtype : ``"int8"`` or ``"uint8"``: activations, weights, zero points and outputs.
    acc_width : accumulator width in bits, 18..32. Results are sign-extended to the int32 the
        requantizer takes; the compiler proves no layer can exceed it.
    requant_modes : rounding modes built into the requantizer. ``"single"`` and ``"double"``
        share one multiplier and are selected at run time per layer; ``"pow2"`` alone builds
        a shift-only requantizer with no multiplier (with a multiplier present, pow2 layers run
        on the ``single`` path, which is identical for power-of-two multipliers).
    pipelined_product : register each PE's operands in the fabric and its multiplier as an
        FPGA DSP block does, at its inputs, inside the product and at its output, and once
        more beside it (``1 +`` :data:`PRODUCT_REGISTERS` more cycles of latency;
        :mod:`hw.multiplier`), so the multipliers do not limit the clock.
    weight_bits : bits per weight in the accelerator's weight memory: 8, or 4/2/1 for packed
        low-bit weights (two's complement; 1 bit encodes −1/+1), widened to int8 on their way
        into the array. Low-bit weights need ``dtype="int8"``.
    weight_depth, act_depth, param_depth, psum_depth, program_depth : words of the
        accelerator's memories: weights (one tile row of ``cols`` weights per word), activations
        (``rows`` bytes per word), requantization parameters (one column tile per word),
        partial sums (the largest batch M of a layer), layer descriptors. 2..2^20.
    window : kernel size ``K`` of the depthwise window unit (:mod:`hw.window`), 2..7, which
        runs K×K depthwise convolutions (dilation 1) from one pass over their input, each
        word read once; 0 builds none (they run tap by tap on the vector unit).
    window_width : words of each of its ``K − 1`` line buffers: the widest padded input row
        it takes. 2..4096 with a window unit, else 0.
    weight_load_rows : rows of a weight tile the array loads a cycle, 1 or 2 (a divisor of
        ``rows``); default 2 when ``rows`` is even. With 2 each row of the accelerator's
        weight memory holds two weight words (the same bits in half the rows) and a tile
        loads in ``rows/2`` cycles, which is what a layer with fewer output pixels than
        ``rows`` waits for (a pointwise convolution on a small map, a dense layer at batch 1).
    """

    rows: int = 8
    cols: int = 8
    dtype: str = "int8"
    acc_width: int = 32
    requant_modes: tuple[str, ...] = ("double", "single")
    pipelined_product: bool = True
    weight_bits: int = 8
    weight_depth: int = 4096
    act_depth: int = 4096
    param_depth: int = 64
    psum_depth: int = 512
    program_depth: int = 16
    window: int = 0
    window_width: int = 0
    weight_load_rows: int | None = None

    def __post_init__(self):
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 256:
                raise ConfigError(f"{name} must be an integer in 1..256, got {value!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.acc_width, int) or not 18 <= self.acc_width <= 32:
            raise ConfigError(f"acc_width must be an integer in 18..32, got {self.acc_width!r}")
        modes = (self.requant_modes,) if isinstance(self.requant_modes, str) \
            else tuple(self.requant_modes)
        unknown = [m for m in modes if m not in REQUANT_MODES]
        if unknown or not modes:
            raise ConfigError(
                f"requant_modes must be a non-empty subset of {', '.join(REQUANT_MODES)}, "
                f"got {self.requant_modes!r}")
        # Canonical order, so equal configurations hash equally.
        object.__setattr__(self, "requant_modes",
                           tuple(m for m in REQUANT_MODES if m in modes))
        for name in MEMORY_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or \
                    not 2 <= value <= 1 << 20:
                raise ConfigError(f"{name} must be an integer in 2..{1 << 20}, got {value!r}")
        if self.weight_bits not in WEIGHT_BITS or isinstance(self.weight_bits, bool):
            raise ConfigError(f"weight_bits must be one of {', '.join(map(str, WEIGHT_BITS))}, "
                              f"got {self.weight_bits!r}")
        if self.weight_bits != 8 and self.dtype != "int8":
            raise ConfigError(f"weight_bits={self.weight_bits} needs dtype int8 (uint8 weights "
                              "are offset by 128 and do not pack)")
        if self.window != 0 and (not isinstance(self.window, int) or
                                 not 2 <= self.window <= 7):
            raise ConfigError(f"window must be 0 (none) or a kernel size in 2..7, got "
                              f"{self.window!r}")
        if not isinstance(self.window_width, int) or (
                self.window and not 2 <= self.window_width <= 4096) or (
                not self.window and self.window_width):
            raise ConfigError(f"window_width must be in 2..4096 with a window unit and 0 "
                              f"without, got {self.window_width!r}")
        if self.weight_load_rows is None:  # canonical, so equal configurations hash equally
            object.__setattr__(self, "weight_load_rows", 2 if self.rows % 2 == 0 else 1)
        if self.weight_load_rows not in (1, 2) or isinstance(self.weight_load_rows, bool) or \
                self.rows % self.weight_load_rows:
            raise ConfigError(f"weight_load_rows must be 1, or 2 with an even number of rows, "
                              f"got {self.weight_load_rows!r} with {self.rows} rows")
        if not isinstance(self.pipelined_product, bool):
            raise ConfigError(
                f"pipelined_product must be true or false, got {self.pipelined_product!r}")

    # -- derived values ----------------------------------------------------------------------
    @property
    def data_shape(self) -> Shape:
        """Shape of activations, weights, zero points and outputs."""
        from amaranth.hdl import signed, unsigned
        return signed(8) if self.dtype == "int8" else unsigned(8)

    @property
    def operand_shape(self) -> Shape:
        """A value minus its zero point: −255..255 for either data type."""
        from amaranth.hdl import signed
        return signed(9)

    @property
    def acc_shape(self) -> Shape:
        from amaranth.hdl import signed
        return signed(self.acc_width)

    @property
    def has_multiplier(self) -> bool:
        return contract.has_multiplier(self.requant_modes)

    @property
    def runtime_rounding_select(self) -> bool:
        """True when the requantizer has a run-time single/double select input."""
        return contract.runtime_rounding_select(self.requant_modes)

    @property
    def act_words_per_row(self) -> int:
        """Activation words a row of the activation memory holds, the first in the low bits:
        4 with a window unit, which reads two words a beat in pair mode and a row, a 2×2
        block of pixels, in quad mode (stride-2 layers), else 1. Every tensor then starts
        on a row (:func:`~quantizer.memory_plan.plan_memory`)."""
        return 4 if self.window else 1

    @property
    def array_latency(self) -> int:
        """Cycles from an activation vector's handshake to its accumulators at the output:
        edge register, row skew and column travel, product pipeline, column de-skew."""
        return self.rows + self.cols + self.product_latency

    @property
    def product_latency(self) -> int:
        """Cycles a PE's product takes before its add: its operands' register and
        :data:`PRODUCT_REGISTERS` when pipelined, none in a single-cycle PE."""
        return 1 + PRODUCT_REGISTERS if self.pipelined_product else 0

    @property
    def vector_latency(self) -> int:
        """Cycles from an activation vector's handshake to its beat at the vector unit's
        output (:class:`~hw.vector.VectorUnit`): the operands, the product in DSP blocks with
        their registers, its halves summed; with a multiplier requantizer (which builds the
        ``add`` layers) then an add's SRDHM and RoundingDivideByPOT (four stages)."""
        return 2 + PRODUCT_REGISTERS + (4 if self.has_multiplier else 0)

    @property
    def window_latency(self) -> int:
        """Cycles from an activation vector's handshake to the window unit's beat: window
        shift, products, sum."""
        return 3

    @property
    def psum_latency(self) -> int:
        """Cycles from a K tile's last beat at the partial-sum accumulator to its sums at the
        requantizer: its read-modify-write's stages (:class:`~hw.psum.PartialSumAccumulator`)."""
        return 4

    @property
    def write_latency(self) -> int:
        """Cycles from a layer's last result at the output writer to its ``done``, the cycle
        its word is written: the writer's offset and address stages
        (:class:`~hw.writer.OutputWriter`)."""
        return 2

    @property
    def requant_latency(self) -> int:
        """Pipeline depth of the requantizer (:mod:`hw.requant`): the bias add; with a
        multiplier, the operand's shift (three stages), the multipliers' registers, the
        partial products' two adds, the rounding shift (three) and its add, and
        RoundingDivideByPOT (three), or the shift and rounding of a shift-only build; then
        the zero-point add and the clamp's tests, choice and select."""
        return 4 + PRODUCT_REGISTERS + 13 if self.has_multiplier else 6

    # -- serialization -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["requant_modes"] = list(self.requant_modes)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "ArrayConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown hardware parameter(s): {', '.join(unknown)}")
        data = dict(data)
        if "requant_modes" in data:
            data["requant_modes"] = tuple(data["requant_modes"])
        return cls(**data)

    def digest(self) -> str:
        """Short stable hash of the parameters (simulator cache key, image compatibility)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def require_whole_column_tiles(self, what: str) -> None:
        """Refuse, naming ``what`` needs it, a configuration whose activation word (``rows``
        lanes) does not hold whole column tiles (``cols`` lanes)."""
        if self.rows % self.cols:
            raise ConfigError(f"{what} needs rows to be a multiple of cols, got "
                              f"{self.rows}x{self.cols}")

    def describe(self) -> str:
        packed = f", {self.weight_bits}-bit weights" if self.weight_bits != 8 else ""
        window = f", {self.window}x{self.window} window unit" if self.window else ""
        return (f"{self.rows}x{self.cols} {self.dtype}, acc{self.acc_width}, requant "
                f"{'/'.join(self.requant_modes)}, "
                f"{'pipelined' if self.pipelined_product else 'single-cycle'} PE{packed}{window}")
