"""Helpers for the component tests: run a testbench on Amaranth's simulator, launch a layer as
the sequencer does, and a read-only memory for a component's read port."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import memory
from amaranth.sim import Simulator

from hw import ArrayConfig
from hw.block_ram import registered_read
from hw.contract import LAYER_OPS, address_bits
from hw.layouts import LOOP_BOUNDS


#: Cycles a component test may take: a design that stops making progress (a lost beat a
#: testbench waits for) fails the test instead of hanging it.
MAX_CYCLES = 200_000
PERIOD = 1e-8


def simulate(top, testbench, *, max_cycles: int = MAX_CYCLES) -> None:
    """Run the async ``testbench(ctx)`` against ``top`` with a clock on the sync domain; fail
    if it has not finished after ``max_cycles`` cycles."""
    async def watchdog(ctx):
        await ctx.delay(max_cycles * PERIOD)
        raise AssertionError(f"the testbench did not finish in {max_cycles} cycles: the "
                             "design stopped making progress")

    sim = Simulator(top)
    sim.add_clock(PERIOD)
    sim.add_testbench(testbench)
    # A background testbench: the simulation ends with the testbench, not with the watchdog.
    sim.add_testbench(watchdog, background=True)
    sim.run()


def walk_steps(config: ArrayConfig, layer: dict) -> dict[str, int]:
    """What the sequencer presents as ``steps`` for descriptor ``layer`` (hw.geometry's
    WALK_STEPS, stated here from docs/images.md): the words of an input row (in quad mode,
    of half a row pair of 2×2 blocks: ``w`` rounded up to even) times the rows an output row
    steps, a kernel row steps, a sample holds, and the first streamed row lies at, modulo
    the activation memory's addresses."""
    window = config.window and layer["op"] == LAYER_OPS.index("window")
    quad = window and layer["quad"]
    width = layer["w"] + layer["w"] % 2 if quad else layer["w"]
    height = layer["h"] + layer["h"] % 2 if quad else layer["h"]
    first_row = (min(layer["pad_top"], config.window - 1) if window else 0) - layer["pad_top"]
    rows = {"row_words": (2 if quad else 1) if window else layer["stride_h"],
            "dilation_words": layer["dil_h"], "sample_words": height,
            "first_row_words": first_row}
    return {name: rows[name] * width % (1 << address_bits(config.act_depth)) for name in rows}


async def launch(ctx, port, word, layer: dict, previous: dict | None = None, *,
                 steps: dict | None = None) -> None:
    """Launch ``layer`` on a component's ``LayerSignature`` ``port`` as the sequencer does:
    ``incoming`` carries it (packed with the descriptor ``word``) from the cycle before the
    launch to the launch cycle, while ``desc`` (and ``ends``, its loop bounds less one) still
    holds the ``previous`` layer; from the next cycle ``desc`` holds it. ``steps``
    (:func:`walk_steps`), for a component that walks the input map, are set with
    ``incoming``."""
    def hold(values: dict) -> None:
        ctx.set(port.desc.as_value(), word.pack(values))
        for name in LOOP_BOUNDS:
            ctx.set(getattr(port.ends, name), values[name] - 1)
    ctx.set(port.incoming.as_value(), word.pack(layer))
    for name, value in (steps or {}).items():
        ctx.set(getattr(port.steps, name), value)
    if previous is not None:
        hold(previous)
    await ctx.tick()
    ctx.set(port.launch, 1)
    await ctx.tick()
    ctx.set(port.launch, 0)
    hold(layer)


def with_rom(component, words: list[int], width: int, depth: int, addr, data, *,
             registered: bool = True) -> Module:
    """``component`` with a memory of ``words`` on its read port ``addr`` → ``data``,
    synchronous and registered as the accelerator's memories are (data
    :data:`~hw.block_ram.READ_LATENCY` cycles after the address), or, not ``registered``,
    the bare port (the cycle after) for a component that registers the read itself."""
    m = Module()
    m.submodules.dut = component
    m.submodules.rom = rom = memory.Memory(shape=width, depth=depth, init=words)
    port = rom.read_port()
    m.d.comb += [port.addr.eq(addr),
                 data.eq(registered_read(m, port, "rom_read") if registered else port.data)]
    return m


async def feed_unit(ctx, dut, rng, busy: float, weights: list, vectors: list, *, zw: int,
                    zx: int, latency: int) -> list[tuple[list[int], bool]]:
    """Drive a per-channel unit (:class:`~hw.vector.VectorUnit`, :class:`~hw.window.WindowUnit`)
    as the accelerator does: each cycle offer the next weight word and the next vector
    ``(data, last)``, ``(data, last, raster flags)`` or ``(data, last, raster flags, rest)``
    (``rest``: the window unit's ``x_rest`` words in pair and quad mode, lanes as ``data``),
    each with probability ``busy``; return the beats ``(lanes, last)`` it gives until
    ``latency`` cycles after the last vector."""
    beats, drain = [], latency + 2
    while drain:
        drain -= not vectors
        w_valid = bool(weights) and rng.random() < busy
        x_valid = bool(vectors) and rng.random() < busy
        ctx.set(dut.w.valid, w_valid)
        if w_valid:
            ctx.set(dut.w.payload.data, weights[0])
            ctx.set(dut.w.payload.zero, zw)
        ctx.set(dut.x.valid, x_valid)
        if x_valid:
            data, last, *extra = vectors[0]
            ctx.set(dut.x.payload.data, data)
            ctx.set(dut.x.payload.zero, zx)
            ctx.set(dut.x.payload.last, last)
            if extra:
                ctx.set(dut.raster, extra[0])
            if extra[1:]:
                width = len(dut.x.payload.data.as_value())
                ctx.set(dut.x_rest, sum(dut.x.payload.data.shape().const(word).as_bits()
                                        << (i * width) for i, word in enumerate(extra[1])))
        if w_valid and ctx.get(dut.w.ready):
            weights.pop(0)
        if x_valid and ctx.get(dut.x.ready):
            vectors.pop(0)
        if ctx.get(dut.acc.valid):
            beats.append((list(ctx.get(dut.acc.payload.data)),
                          bool(ctx.get(dut.acc.payload.last))))
        await ctx.tick()
    return beats
