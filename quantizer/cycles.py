"""The accelerator's cycle model: how many cycles a layer takes on a given array, exactly as the
sequencer runs it (docs/performance.md derives it; the benchmarks and the demo check it against
the hardware's own cycle counter)."""

from __future__ import annotations

from hw import ArrayConfig


def predicted_cycles(config: ArrayConfig, m: int, k: int, n: int) -> int:
    """The cycle model of one fully-connected layer (docs/performance.md).

    Tiles stream back to back, one vector per cycle, when each tile is used for at least
    ``rows + cols`` vectors; before that the array waits for a tile's weight loads. Around
    them: descriptor fetch, the first tile's load, and the pipeline's fill and drain.
    """
    tiles = -(-k // config.rows) * -(-n // config.cols)
    per_tile = max(m, config.rows + config.cols)
    fetch, first_load, stream_latency = 3, config.rows, 3
    drain = config.array_latency + config.requant_latency + 1
    return fetch + stream_latency + first_load + tiles * per_tile + drain
