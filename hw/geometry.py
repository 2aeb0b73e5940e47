"""A layer's walk over its input map, as the address generator takes it (docs/images.md): the
padding rows and columns the window unit fills in itself, and the per-layer products the walk
steps by. The sequencer computes those products once, while it checks a descriptor, so that
the walk itself only adds: a product of two loop counters' fields, worked out afresh for
every address, once set the accelerator's clock."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Value, unsigned
from amaranth.lib import data

from .config import ArrayConfig
from .contract import LAYER_OPS, address_bits
from .multiplier import registered_product

__all__ = ["WALK_STEPS", "skipped_padding", "walk_steps", "walk_steps_layout"]

_WINDOW = LAYER_OPS.index("window")

#: The activation-memory words the address generator's walk steps by, each a row's words
#: (``w``; for a map held in 2×2 blocks ``w`` rounded up to even, as a block row pair holds
#: ``⌈w/2⌉`` blocks of 4 words) times: ``row_words`` the input rows an output row steps (the
#: stride ``stride_h``; on a ``window`` layer's raster 1, in quad mode 2), ``dilation_words``
#: the rows a kernel row steps (``dil_h``), ``sample_words`` a sample's rows (``h``, rounded
#: up to even in quad mode) and ``first_row_words`` the first streamed row's (``−pad_top``, or
#: on a ``window`` layer the rows it streams of its top padding, :func:`skipped_padding`
#: less ``pad_top``), modulo the memory's size.
WALK_STEPS = ("row_words", "dilation_words", "sample_words", "first_row_words")


def walk_steps_layout(config: ArrayConfig) -> data.StructLayout:
    """:data:`WALK_STEPS`, each an activation-memory address (adding wraps around it)."""
    return data.StructLayout({name: unsigned(address_bits(config.act_depth))
                              for name in WALK_STEPS})


def skipped_padding(config: ArrayConfig, desc, pad) -> Value:
    """The rows (or columns) of padding ``pad`` that a ``window`` layer does not stream, the
    window unit filling them in itself: at most ``K − 1``; 0 on other layers."""
    if not config.window:
        return Value.cast(0)
    first = config.window - 1
    return Mux(desc.op == _WINDOW, Mux(pad > first, first, pad), 0)


def walk_steps(m: Module, config: ArrayConfig, desc, *, platform) -> dict[str, Value]:
    """The :data:`WALK_STEPS` of descriptor ``desc``, each a
    :func:`~hw.multiplier.registered_product` (:data:`~hw.config.PRODUCT_REGISTERS` cycles
    after ``desc``)."""
    window = (desc.op == _WINDOW) if config.window else Value.cast(0)
    quad = window & desc.quad
    width = Mux(quad, desc.w + desc.w[0], desc.w)
    height = Mux(quad, desc.h + desc.h[0], desc.h)
    factors = {"row_words": Mux(window, Mux(quad, 2, 1), desc.stride_h),
               "dilation_words": desc.dil_h, "sample_words": height,
               "first_row_words": skipped_padding(config, desc, desc.pad_top) - desc.pad_top}
    return {name: registered_product(m, factors[name], width, platform=platform, name=name)
            for name in WALK_STEPS}
