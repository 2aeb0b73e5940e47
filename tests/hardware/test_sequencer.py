"""The sequencer runs a layer program from the program memory: it decodes what the contract
packs, issues each layer's weight range and tile loop, moves on when a layer is written, and
stops at the last layer, or with an error at an invalid descriptor or the program's end."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hwsim import simulate, walk_steps, with_rom

from hw import ArrayConfig
from hw.contract import LAYER_OPS, descriptor_format
from hw.geometry import WALK_STEPS
from hw.layouts import LOOP_BOUNDS
from hw.sequencer import Sequencer
from quantizer.cycles import FETCH_CYCLES

CONFIG = ArrayConfig(rows=4, cols=2, weight_depth=512, act_depth=512, param_depth=32,
                     psum_depth=16, program_depth=4, window=3, window_width=8)
WORD = descriptor_format(CONFIG)
MATMUL = LAYER_OPS.index("matmul")


def _layer(rng, **fields) -> dict:
    """A valid descriptor with random fields (each over its whole range), small tile counts."""
    values = {f.name: int(rng.integers(f.min, f.max + 1)) for f in WORD}
    values.update(m=int(rng.integers(1, CONFIG.psum_depth + 1)),
                  k_tiles=int(rng.integers(1, 4)), n_tiles=int(rng.integers(1, 4)), last=0)
    values.update(fields)
    if values["op"] == MATMUL and "w_base" not in fields:
        # The array reads its weights a memory row (weight_load_rows words) a beat.
        values["w_base"] -= values["w_base"] % CONFIG.weight_load_rows
    return values


def _run(program: list[dict], rng, *, done_after: int = 3, max_cycles: int = 2000,
         start_pc: int = 0, config: ArrayConfig = CONFIG) -> dict:
    """Run ``program`` from descriptor ``start_pc``; ``layer_done`` rises ``done_after``
    cycles after a layer's last weight range and last tile are taken. Returns what the
    sequencer did, cycle by cycle."""
    dut = Sequencer(config)
    top = with_rom(dut, [WORD.pack(v) for v in program], WORD.size, CONFIG.program_depth,
                   dut.program_addr, dut.program_data)
    seen = {"launches": [], "descs": [], "ends": [], "weights": [], "tiles": [], "done": None,
            "error": None, "layer_done": [], "steps": []}

    def steps(ctx) -> dict:
        return {name: ctx.get(getattr(dut.layer.steps, name)) for name in WALK_STEPS}

    async def testbench(ctx):
        ctx.set(dut.start_pc, start_pc)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        layer, countdown, issued = None, None, set()
        for cycle in range(1, max_cycles):
            if seen["launches"] and seen["launches"][-1][0] == cycle - 1:
                seen["descs"].append({f.name: ctx.get(getattr(dut.layer.desc, f.name))
                                      for f in WORD if f.lanes is None})
                seen["ends"].append({name: ctx.get(getattr(dut.layer.ends, name))
                                     for name in LOOP_BOUNDS})
            ctx.set(dut.weights.ready, int(rng.integers(2)))
            ctx.set(dut.tiles.ready, int(rng.integers(2)))
            if ctx.get(dut.layer.launch):
                layer = {f.name: ctx.get(getattr(dut.layer.incoming, f.name)) for f in WORD}
                seen["launches"].append((cycle, layer))
                seen["steps"].append([steps(ctx)])
                ctx.set(dut.layer_done, 0)
                countdown, issued = None, set()
            if ctx.get(dut.weights.valid) and ctx.get(dut.weights.ready):
                payload = ctx.get(dut.weights.payload)
                seen["weights"].append((payload.base, payload.count, payload.span))
                if len(seen["weights"]) == sum(d["n_tiles"] * d["k_tiles"]
                                               for _cycle, d in seen["launches"]):
                    issued.add("weights")
            if ctx.get(dut.tiles.valid) and ctx.get(dut.tiles.ready):
                tile = ctx.get(dut.tiles.payload)
                seen["tiles"].append((tile.nt, tile.kt, tile.last_k))
                if tile.last_k and tile.nt == layer["n_tiles"] - 1:
                    issued.add("tiles")
            if issued == {"weights", "tiles"}:
                countdown, issued = done_after, set()
            if countdown is not None:
                if countdown == 0:
                    ctx.set(dut.layer_done, 1)
                    seen["layer_done"].append(cycle)
                    seen["steps"][-1].append(steps(ctx))
                    countdown = None
                else:
                    countdown -= 1
            assert ctx.get(dut.busy) and not ctx.get(dut.done)
            await ctx.tick()
            if ctx.get(dut.done):
                seen["done"], seen["error"] = cycle + 1, ctx.get(dut.error)
                return
        raise AssertionError("no done")

    simulate(top, testbench)
    return seen


def test_runs_every_layer_as_the_contract_packed_it(seed):
    rng = np.random.default_rng(seed)
    program = [_layer(rng), _layer(rng), _layer(rng, last=1)]
    seen = _run(program, rng)
    assert [layer for _cycle, layer in seen["launches"]] == program
    assert seen["descs"] == program
    # Beside each descriptor, its loop bounds less one (whatever the field's value).
    assert seen["ends"] == [{name: layer[name] - 1 for name in LOOP_BOUNDS}
                            for layer in program]
    # The walk's steps, from the launch until the layer is written.
    assert seen["steps"] == [[walk_steps(CONFIG, layer)] * 2 for layer in program]
    # A range per tile, the tiles one after the other from w_base: rows weight words on the
    # array, read two a beat (span 1), window² on the window unit, one on the vector unit.
    assert CONFIG.weight_load_rows == 2
    words = {MATMUL: CONFIG.rows, LAYER_OPS.index("window"): 9}
    assert seen["weights"] == [
        ((layer["w_base"] + tile * words.get(layer["op"], 1)) % CONFIG.weight_depth,
         words.get(layer["op"], 1), int(layer["op"] == MATMUL))
        for layer in program for tile in range(layer["n_tiles"] * layer["k_tiles"])]
    assert seen["tiles"] == [(nt, kt, int(kt == layer["k_tiles"] - 1)) for layer in program
                             for nt in range(layer["n_tiles"]) for kt in range(layer["k_tiles"])]
    assert seen["error"] == 0


def test_runs_the_program_at_start_pc(seed):
    """Programs share the memory, each ending in ``last``: a run starts where it is told."""
    rng = np.random.default_rng(seed)
    program = [_layer(rng, last=1), _layer(rng), _layer(rng, last=1), _layer(rng, last=1)]
    seen = _run(program, rng, start_pc=1)
    assert [layer for _cycle, layer in seen["launches"]] == program[1:3]
    assert seen["error"] == 0


def test_timing_fetch_and_load_take_seven_cycles():
    """Start (cycle 0) → fetch, the read's two cycles, three more for the walk's steps (a
    DSP block's four registers from the read's data, the checks in the last) → launch in
    cycle 7; a written layer → the next launch seven cycles later; the last layer written →
    done the cycle after. The cycle model (quantizer/cycles.py) counts on these."""
    rng = np.random.default_rng(0)
    seen = _run([_layer(rng), _layer(rng, last=1)], rng)
    launches = [cycle for cycle, _layer in seen["launches"]]
    assert launches[0] == 7 == FETCH_CYCLES
    assert launches[1] == seen["layer_done"][0] + 7
    assert seen["done"] == seen["layer_done"][1] + 1


@pytest.mark.parametrize("fields", [dict(m=0), dict(m=CONFIG.psum_depth + 1), dict(k_tiles=0),
                                    dict(n_tiles=0), dict(op=MATMUL, w_base=5)],
                         ids=lambda f: f"{f}")
def test_invalid_descriptor_stops_with_error(seed, fields):
    """…and offers none of its weights: the checks are done by the cycle the first range of
    a valid one is offered."""
    rng = np.random.default_rng(seed)
    first = _layer(rng)
    seen = _run([first, _layer(rng, last=1, **fields)], rng)
    assert len(seen["launches"]) == 1 and seen["error"] == 1
    assert len(seen["weights"]) == first["n_tiles"] * first["k_tiles"]


def test_a_window_layer_without_a_window_unit_stops_with_error(seed):
    rng = np.random.default_rng(seed)
    without = replace(CONFIG, window=0, window_width=0)
    assert descriptor_format(without) == WORD
    program = [_layer(rng, op=0), _layer(rng, last=1, op=LAYER_OPS.index("window"))]
    seen = _run(program, rng, config=without)
    assert len(seen["launches"]) == 1 and seen["error"] == 1


def test_program_without_a_last_layer_stops_with_error(seed):
    rng = np.random.default_rng(seed)
    seen = _run([_layer(rng) for _ in range(CONFIG.program_depth)], rng)
    assert len(seen["launches"]) == CONFIG.program_depth and seen["error"] == 1
