"""The accelerator's cycle model: how many cycles a layer takes on a given array, exactly as the
sequencer runs it (docs/performance.md derives it; the benchmarks and the demo check it against
the hardware's own cycle counter)."""

from __future__ import annotations


from hw import ArrayConfig
from hw.block_ram import READ_LATENCY
from hw.config import PRODUCT_REGISTERS


#: Cycles from a layer's launch to its first activation vector at a unit's input: the tile
#: loop's first tile, the address generator's three stages, the ranges' FIFO, the activation
#: streamer's command, its read and its FIFO.
ACTIVATION_LATENCY = 7 + READ_LATENCY
#: Cycles from a descriptor's fetch to its layer's launch: the fetch, the program memory's
#: read, the products of the address generator's walk (hw.geometry), whose last cycle checks
#: the descriptor, and the load (hw.sequencer's FETCH, READ…, STEPS…, CHECK and LOAD).
FETCH_CYCLES = 1 + READ_LATENCY + PRODUCT_REGISTERS
#: Cycles from a layer's launch to its first weight word at a unit: the weight ranges' FIFO,
#: the weight streamer's command, its read and its FIFO.
WEIGHT_LATENCY = 3 + READ_LATENCY


def predicted_cycles(config: ArrayConfig, m: int, k: int, n: int) -> int:
    """The cycle model of one fully-connected layer (docs/performance.md).

    A tile's weights load in ``rows / weight_load_rows`` beats, one a cycle, into the bank
    the tile before last used, from the cycle after that tile's last vector; the tile's
    vectors follow the cycle after its last beat. So tiles stream back to back, one vector a
    cycle, when each is used for at least as many vectors as it takes beats; with fewer a
    tile takes its load's beats. Around them: descriptor fetch (the weights start streaming
    as the layer launches, in its third cycle), the first tile's load or, on an array that
    loads a tile in fewer than 4 beats, the first activation vector's way through the
    address generator, whichever comes later (the second tile's weights are in a load after
    the first's), and the pipeline's fill and drain.
    """
    beats = config.rows // config.weight_load_rows
    tiles = -(-k // config.rows) * -(-n // config.cols)
    fetch, weight_latency = FETCH_CYCLES, WEIGHT_LATENCY
    drain = (config.array_latency + config.psum_latency + config.requant_latency
             + config.write_latency)
    weights_in = fetch + weight_latency + beats
    first = max(weights_in, fetch + ACTIVATION_LATENCY)
    if tiles == 1:
        return first + m + drain
    second = max(first + m, weights_in + beats)
    return second + (tiles - 2) * max(m, beats) + m + drain


def vector_cycles(config: ArrayConfig, m: int, tiles: int) -> int:
    """The cycle model of one vector-unit layer of ``tiles`` tiles (taps × column tiles) of
    ``m`` vectors each (docs/performance.md): one vector per cycle, the next tile's weight word
    taken with the last vector of this one. The first weight word, offered as the layer
    launches, is in before the first vector, so the descriptor fetch, the first vector's way
    to the unit and the drain are all that add."""
    fetch = FETCH_CYCLES
    drain = (config.vector_latency + config.psum_latency + config.requant_latency
             + config.write_latency)
    return fetch + ACTIVATION_LATENCY + tiles * m + drain


def window_cycles(config: ArrayConfig, raster: int, n_tiles: int) -> int:
    """The cycle model of one window-unit pass over ``raster`` beats of input (samples × the
    rows × columns of the padded input it streams, a word or in pair mode two a beat,
    :meth:`~quantizer.layers.AcceleratorLayer.streamed_raster`) for each of ``n_tiles``
    column tiles (docs/performance.md): the first
    column tile takes its ``window²`` weight words, one a cycle, from the layer's launch (in
    its third cycle); then the rasters stream back to back, one beat a cycle, each next
    tile's weights loading into the unit's other bank meanwhile, so a tile takes its raster's
    beats or, when that is shorter (a map of a few pixels), its ``window²`` weight words'
    (found by ``mxugen bench soak``)."""
    fetch, weight_latency = FETCH_CYCLES, WEIGHT_LATENCY
    taps = config.window ** 2
    drain = (config.window_latency + config.psum_latency + config.requant_latency
             + config.write_latency)
    return fetch + weight_latency + taps + raster + (n_tiles - 1) * max(raster, taps) + drain


def layer_cycles(config: ArrayConfig, layer, samples: int, quad: bool = False) -> int:
    """The cycle model of one layer as the compiler lays it out
    (:class:`~quantizer.layers.AcceleratorLayer`): a convolution is the GEMM of implicit
    im2col, ``M = samples·OH·OW`` output pixels, ``K = KH·KW·⌈Cin/rows⌉·rows`` (K tiles
    ``(kh, kw, g)``), ``N = Cout``; the address generator feeds it one vector per cycle, padding
    taps included, so the fully-connected model holds unchanged. A vector-unit layer streams
    its taps × column tiles (:func:`vector_cycles`), a window-unit layer its padded input
    once per column tile, less the padding the unit fills in (:func:`window_cycles`; with
    ``quad``, its input held in blocks, a block a beat). A
    layer whose output pixels exceed the partial-sum memory runs in passes
    (:meth:`~quantizer.layers.AcceleratorLayer.passes`), one descriptor each, one after the
    other: its cycles are theirs summed."""
    _, k_tiles, n_tiles = layer.tiles(config.rows, config.cols)
    if layer.on_window(config):
        return sum(window_cycles(config, p.samples * layer.streamed_raster(config, p, quad),
                                 n_tiles)
                   for p in layer.passes(samples, config.psum_depth))
    if not layer.on_array:
        return sum(vector_cycles(config, layer.pass_geometry(p)["m"], k_tiles * n_tiles)
                   for p in layer.passes(samples, config.psum_depth))
    return sum(predicted_cycles(config, layer.pass_geometry(p)["m"], k_tiles * config.rows,
                                layer.channels_out)
               for p in layer.passes(samples, config.psum_depth))


def _layers_and_cycles(config: ArrayConfig, graph, samples: int, runtime: str) -> list:
    """``(layer, cycles)`` of every layer of ``graph`` that runs on the accelerator
    (:func:`~quantizer.partition.partition`), the window layers whose inputs the compiler
    holds in blocks in quad mode (:func:`~quantizer.memory_plan.blocked_tensors`)."""
    from .memory_plan import blocked_tensors
    from .partition import partition
    part = partition(graph, runtime, rows=config.rows)
    blocked = blocked_tensors(part, config, samples)
    return [(layer, layer_cycles(config, layer, samples, layer.input in blocked))
            for layer in part.layers]


def network_cycles(config: ArrayConfig, graph, samples: int, runtime: str = "litert") -> int:
    """The cycle model of one run of ``samples`` inputs through the layers of ``graph`` that
    run on the accelerator (the sequencer runs one layer after the other, so a run's cycles
    are its layers' sum)."""
    return sum(cycles for _, cycles in _layers_and_cycles(config, graph, samples, runtime))


def weight_traffic(config: ArrayConfig, graph, samples: int,
                   runtime: str = "litert") -> list[dict]:
    """What each accelerator layer's weights take in one run of ``samples`` inputs: its
    format (None for a pool, a mean or an add, whose taps weigh 1), the bytes of weight
    memory at the build's ``weight_bits`` and at the layer's own width, the bytes the weight
    stream carries (the layer's weights once a pass,
    :meth:`~quantizer.layers.AcceleratorLayer.passes`), its cycles and the bytes a cycle
    that takes on average."""
    rows = []
    for layer, cycles in _layers_and_cycles(config, graph, samples, runtime):
        lanes = config.cols * layer.weight_words(config.rows, config.cols,
                                                 config.weight_load_rows)
        weighted = layer.has_weights
        stored = lanes * config.weight_bits // 8
        streamed = stored * len(layer.passes(samples, config.psum_depth))
        rows.append({"layer": layer.name, "format": layer.weight_format if weighted else None,
                     "weight_bytes": stored,
                     "weight_bytes_own_width": -(-lanes * layer.weight_bits // 8)
                     if weighted else stored,
                     "streamed_bytes": streamed, "cycles": cycles,
                     "bytes_per_cycle": round(streamed / cycles, 3)})
    return rows
