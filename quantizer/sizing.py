"""Sizing the accelerator for a network: the smallest memories that hold its weights,
parameters, program and activations, rounded up to powers of two so that similar networks
share one simulator build (or, for an FPGA build, not rounded)."""

from __future__ import annotations

from dataclasses import replace

from hw import ArrayConfig, ConfigError

from .errors import QuantizerError
from .graph import Graph
from .layers import AcceleratorLayer
from .memory_plan import blocked_tensors, plan_memory
from .partition import partition


#: Partial sums of an FPGA build: one DP16KD deep (512 × 36); a layer with more output pixels
#: runs in passes over bands of its output rows (AcceleratorLayer.passes).
FPGA_PSUM_WORDS = 512


def _window_unit(layers: list[AcceleratorLayer]) -> dict[str, int]:
    """A window unit for the depthwise convolutions among ``layers``, if any can use one: the
    kernel size most of them have, line buffers as wide as their widest padded row (up to
    the limit; wider layers run tap by tap)."""
    sizes = [layer.kernel.shape[1] for layer in layers
             if layer.kind == "DEPTHWISE_CONV_2D" and layer.raster(layer.kernel.shape[1])
             and 2 <= layer.kernel.shape[1] <= 7]
    if not sizes:
        return {}
    window = max(set(sizes), key=sizes.count)
    widths = [layer.raster(window)[1] for layer in layers if layer.raster(window)]
    return {"window": window, "window_width": max(2, min(max(widths), 4096))}


def _pow2_at_least(n: int) -> int:
    return max(2, 1 << max(0, (n - 1).bit_length()))


def accelerator_config(graph: Graph, batch: int, *, rows: int = 8, cols: int = 8,
                       keep_layers: bool = False, exact: bool = False,
                       **options) -> ArrayConfig:
    """An accelerator sized for ``graph`` at ``batch`` samples per run; ``keep_layers`` makes
    room for every layer's outputs at once; a graph with K×K depthwise convolutions gets a
    window unit of that size (unless ``options`` give a ``window``, or ``exact``); ``exact``
    sizes each memory to the words it needs instead of the next power of two and the partial
    sums to :data:`FPGA_PSUM_WORDS` (an FPGA build). ``options`` are further ArrayConfig
    fields.

    A convolution's GEMM has one row per output pixel, so the partial-sum memory holds
    ``batch`` × the largest output map; activation memory holds the resident tensors that are
    alive at once (:func:`~quantizer.memory_plan.plan_memory`)."""
    weight_bits = options.pop("weight_bits", None)
    # The hardware options are validated before any sizing arithmetic divides by them.
    shape = ArrayConfig(rows=rows, cols=cols, dtype=graph.dtype, **options)
    part = partition(graph, rows=rows)
    layers = part.layers
    if not layers:
        raise QuantizerError("no operator of the graph runs on the accelerator: run it on the "
                             "golden model (mxugen sim --golden)")
    if "window" not in options and not exact:
        # An FPGA build leaves it out: its K²·cols multipliers (72 on 8x8) would take an
        # 8x8 accelerator to 193 MULT18X18D on an ECP5, past the 85k's 156.
        shape = replace(shape, **_window_unit(layers))
    words = {"weights": 0, "params": 0}
    for layer in layers:
        words["weights"] += layer.weight_words(rows, cols, shape.weight_load_rows)
        words["params"] += layer.tiles(rows, cols)[2]
    bits = weight_bits or max((layer.weight_bits for layer in layers if layer.has_weights),
                              default=8)
    psums = batch * max(layer.pixels for layer in layers)
    if exact:  # an FPGA build: layers with more output pixels run in passes
        psums = min(psums, max(FPGA_PSUM_WORDS, *(layer.ow for layer in layers)))
    size = (lambda n: max(2, n)) if exact else _pow2_at_least
    try:
        # Which tensors are held in blocks depends on the passes the partial sums allow.
        blocked = blocked_tensors(part, replace(shape, psum_depth=size(psums)), batch)
        depths = {"weight_depth": words["weights"], "param_depth": words["params"],
                  "act_depth": plan_memory(part, rows, batch, keep_all=keep_layers,
                                           align=shape.act_words_per_row,
                                           blocked=blocked).words,
                  "psum_depth": psums,
                  "program_depth": sum(len(layer.passes(batch, psums)) for layer in layers)}
        return replace(shape, weight_bits=bits,
                       **{name: size(words) for name, words in depths.items()})
    except ConfigError as exc:
        raise QuantizerError(f"{exc}: at {batch} samples per run the network needs more "
                             "memory than the generator builds; use fewer samples per run") \
            from None
