"""The hardware/software contract (hw/contract.py): word formats pack and unpack exactly, refuse
what does not fit with a precise message, need no Amaranth, and the weight encoding is the one
the hardware's unpacker decodes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw import ArrayConfig
from hw import contract
from hw.contract import (MEM_ACTIVATIONS, MEM_PARAMS, MEM_WEIGHTS, ContractError, Field,
                         WordFormat,
                         memory_array_words, memory_row_words, memory_shapes)
from hw.unpack import unpack_weights
from quantizer import QuantizerError
from quantizer.compile import compile_network, pack_weights


def test_contract_and_compiler_import_no_amaranth():
    code = ("import sys, hw.contract, quantizer.compile, quantizer.manifest, "
            "quantizer.fixedpoint; print(sorted(m for m in sys.modules if "
            "m.split('.')[0] == 'amaranth'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_fixedpoint_uses_the_contract_shift_range():
    from quantizer import fixedpoint
    assert (fixedpoint.SHIFT_MIN, fixedpoint.SHIFT_MAX, fixedpoint.POW2_M0) == \
        (contract.SHIFT_MIN, contract.SHIFT_MAX, contract.POW2_M0) == (-31, 30, 1 << 30)


WORD = WordFormat("test word", [Field("a", 3), Field("b", 4, signed=True),
                                Field("c", 2, signed=True, lanes=3), Field("d", 1, lanes=1)])


def test_fields_pack_least_significant_first_and_round_trip():
    assert WORD.size == 3 + 4 + 6 + 1
    assert [WORD.offset(name) for name in "abcd"] == [0, 3, 7, 13]
    values = {"a": 5, "b": -3, "c": [1, -2, -1], "d": [1]}
    word = WORD.pack(values)
    assert word == 5 | (0b1101 << 3) | (0b01 << 7) | (0b10 << 9) | (0b11 << 11) | (1 << 13)
    assert WORD.unpack(word) == values


@pytest.mark.parametrize("values, message", [
    ({"a": 8, "b": 0, "c": [0] * 3, "d": [0]}, r"test word: a=8 does not fit its 3-bit "
                                               r"unsigned field \(0\.\.7\)"),
    ({"a": 0, "b": -9, "c": [0] * 3, "d": [0]}, r"b=-9 does not fit its 4-bit signed field "
                                                r"\(-8\.\.7\)"),
    ({"a": 0, "b": 0, "c": [0, 2, 0], "d": [0]}, r"c\[1\]=2 does not fit"),
    ({"a": 0, "b": 0, "c": [0, 0], "d": [0]}, r"c has 3 lanes, got 2 values"),
    ({"a": 0, "c": [0] * 3, "d": [0], "e": 1}, r"missing field\(s\) b; unknown field\(s\) e"),
])
def test_pack_refuses_what_does_not_fit(values, message):
    with pytest.raises(ContractError, match=message):
        WORD.pack(values)


WIDE = WordFormat("wide word", [Field("s", 3, signed=True), Field("x", 8, signed=True, lanes=5),
                                Field("acc", 32, signed=True), Field("base", 20),
                                Field("shift", 6, signed=True, values=range(-31, 31))])


def _random_words(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    return {field.name: rng.integers(field.min, field.max + 1,
                                     (count,) if field.lanes is None else (count, field.lanes))
            for field in WIDE}


def test_arrays_pack_and_unpack_as_word_by_word(seed):
    rng = np.random.default_rng(seed)
    values = _random_words(rng, 300)
    for field in WIDE:  # both ends of every field
        values[field.name][0], values[field.name][1] = field.min, field.max
    words = WIDE.pack_array(values)
    assert words == [WIDE.pack({name: column[i].tolist() for name, column in values.items()})
                     for i in range(300)]
    back = WIDE.unpack_array(words)
    assert all(np.array_equal(back[name], values[name]) for name in values)
    assert WIDE.pack_array({name: column[:0] for name, column in values.items()}) == []


@pytest.mark.parametrize("change, message", [
    (lambda v: v["x"].__setitem__((7, 3), 128), r"wide word: x\[3\]=128 does not fit"),
    (lambda v: v["shift"].__setitem__(2, 31), r"wide word: shift=31 does not fit"),
    (lambda v: v.pop("base"), r"wide word: missing field\(s\) base"),
    (lambda v: v.__setitem__("x", v["x"][:, :4]), r"x of shape \(10, 5\), got \(10, 4\)"),
])
def test_array_packing_refuses_what_word_packing_refuses(change, message):
    values = _random_words(np.random.default_rng(0), 10)
    change(values)
    with pytest.raises(ContractError, match=message):
        WIDE.pack_array(values)


def test_array_unpacking_refuses_a_word_too_wide():
    with pytest.raises(ContractError, match=f"wide word: {1 << WIDE.size} is not a "
                                            f"{WIDE.size}-bit word"):
        WIDE.unpack_array([0, 1 << WIDE.size])


@pytest.mark.parametrize("make, message", [
    (lambda: Field("a", 0), r"a: width must be a positive integer, got 0"),
    (lambda: Field("a b", 1), r"field name must be an identifier"),
    (lambda: Field("a", 2, lanes=0), r"a: lanes must be None or a positive integer"),
    (lambda: Field("a", 4, signed=True, values=range(-9, 0)), r"a: values must be a non-empty "
                                                               r"range within -8\.\.7"),
    (lambda: WordFormat("w", [Field("a", 1), Field("a", 2)]), r"w: duplicate field\(s\) a"),
])
def test_malformed_formats_are_refused(make, message):
    with pytest.raises(ContractError, match=message):
        make()


def test_shift_field_accepts_exactly_the_contract_range():
    shift = contract.lane_params_format(ArrayConfig(cols=1))["shift"]
    assert (shift.min, shift.max, shift.width) == (contract.SHIFT_MIN, contract.SHIFT_MAX, 6)


def test_rounding_paths():
    assert contract.rounding_path(("double", "single"), "pow2") == "single"
    assert contract.rounding_path(("pow2",), "pow2") == "pow2"
    assert contract.rounding_path(("double",), "pow2") is None
    assert contract.rounding_path(("double",), "single") is None
    assert contract.rounding_path(("single",), "single") == "single"
    assert [contract.double_bit(p) for p in contract.REQUANT_MODES] == [1, 0, 0]
    assert contract.runtime_rounding_select(("single", "double"))
    assert not contract.runtime_rounding_select(("double", "pow2"))
    assert not contract.has_multiplier(("pow2",))


def _unpacked_by_hardware(words: list[int], bits: int, lanes: int) -> list[list[int]]:
    """Run words through :func:`hw.unpack.unpack_weights` on Amaranth's simulator."""
    m = Module()
    word, out = Signal(bits * lanes), Signal(8 * lanes)
    m.d.comb += out.eq(unpack_weights(word, bits, lanes))
    result = []

    async def testbench(ctx):
        for w in words:
            ctx.set(word, w)
            value = ctx.get(out)
            result.append([((value >> (8 * lane)) & 0xFF) - ((value >> (8 * lane + 7)) & 1) * 256
                           for lane in range(lanes)])

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    return result


@pytest.mark.parametrize("bits", contract.WEIGHT_BITS)
def test_hardware_unpacks_the_weights_the_compiler_packs(seed, bits):
    rng = np.random.default_rng(seed)
    weights = np.array(contract.weight_range(bits))
    tile = rng.choice(weights, (6, 5))
    tile[0, :2] = weights.min(), weights.max()
    assert _unpacked_by_hardware(pack_weights(tile, bits), bits, 5) == tile.tolist()
    assert [contract.decode_weight(contract.encode_weight(w, bits), bits)
            for w in weights] == weights.tolist()


def test_weight_encoding_refuses_what_a_lane_cannot_hold():
    with pytest.raises(ContractError, match=r"weight 0 does not fit a 1-bit int8 weight lane "
                                            r"\(binary: −1 or \+1\)"):
        contract.encode_weight(0, 1)
    with pytest.raises(ContractError, match=r"weight 8 does not fit a 4-bit"):
        contract.encode_weight(8, 4)
    with pytest.raises(ContractError, match=r"4-bit weights need dtype int8"):
        contract.weight_range(4, "uint8")
    with pytest.raises(QuantizerError, match=r"1-bit weight memories hold only binary"):
        pack_weights(np.zeros((1, 2)), 1)
    assert pack_weights(np.array([[255, 0]]), 8, "uint8") == [0x00FF]


def test_compiler_refuses_a_dict_configuration():
    with pytest.raises(TypeError, match=r"takes an hw.ArrayConfig, not a dict.*from_dict"):
        compile_network(None, ArrayConfig().to_dict(), 1)


@pytest.mark.parametrize("memory, field, depth", [("weights", "weight_depth", 128),
                                                  ("params", "param_depth", 8)])
def test_compiler_refuses_a_network_its_memories_cannot_hold(memory, field, depth):
    """Said as what the network needs against what the hardware has, before a descriptor's
    base field would have to address past the memory (it said "w_base=128 does not fit its
    7-bit field")."""
    import re
    from pathlib import Path

    from quantizer.errors import QuantizerError
    from quantizer.importers.tflite import load_tflite
    graph = load_tflite(Path(__file__).parent / "models" / "mobilenet_tiny.tflite")
    config = ArrayConfig(rows=4, cols=2, act_depth=4096, window=3, window_width=14,
                         **{field: depth})
    with pytest.raises(QuantizerError) as refused:
        compile_network(graph, config, 1)
    needs = re.fullmatch(rf"the network needs (\d+) {memory} words but the hardware has "
                         rf"{depth}; generate it with a larger memory", str(refused.value))
    assert needs and int(needs.group(1)) > depth, refused.value


def test_weight_images_fill_memory_rows_of_weight_load_rows_words():
    paired = ArrayConfig(rows=4, cols=2)   # 16-bit weight words, two a row
    assert paired.weight_load_rows == 2
    assert memory_array_words(paired, MEM_WEIGHTS, 6, [0x1234, 0xabcd, 0x0f0f]) == \
        (3, [0xabcd1234, 0x0f0f])
    assert memory_array_words(paired, MEM_PARAMS, 5, [7, 8]) == (5, [7, 8])
    with pytest.raises(ContractError,
                       match="weights memory images start at a multiple of 2 words, got 3"):
        memory_array_words(paired, MEM_WEIGHTS, 3, [1])
    single = ArrayConfig(rows=4, cols=2, weight_load_rows=1)
    assert memory_array_words(single, MEM_WEIGHTS, 3, [1, 2]) == (3, [1, 2])
    assert memory_shapes(paired)["weights"] == (32, 2048) and \
        memory_shapes(single)["weights"] == (16, 4096)


def test_a_window_unit_reads_activation_rows_of_four_words():
    """With a window unit the activation memory holds four 32-bit words a row (pair mode reads
    two, quad mode four) and the line buffer two raster columns an entry; without, one word a
    row."""
    config = ArrayConfig(rows=4, cols=2, act_depth=7, window=3, window_width=9)
    assert config.act_words_per_row == 4 and ArrayConfig(rows=4, cols=2).act_words_per_row == 1
    shapes = memory_shapes(config)
    assert shapes["activations"] == (128, 2) and shapes["lines"] == (2 * 2 * 8 * 2, 5)
    assert memory_shapes(ArrayConfig(rows=4, cols=2, act_depth=7))["activations"] == (32, 7)
    assert memory_array_words(config, MEM_ACTIVATIONS, 4, [0x11, 0x22, 0x33, 0x44, 0x55]) == \
        (1, [0x44 << 96 | 0x33 << 64 | 0x22 << 32 | 0x11, 0x55])
    assert memory_row_words(config, MEM_ACTIVATIONS, [0x22 << 32 | 0x11, 0x33]) == \
        [0x11, 0x22, 0, 0, 0x33, 0, 0, 0]
    with pytest.raises(ContractError, match="activations memory images start at a multiple"):
        memory_array_words(config, MEM_ACTIVATIONS, 2, [1])


def test_array_layers_weights_start_on_a_memory_row():
    """A vector-unit layer takes a word a tile: the max pool takes 27 before a convolution.
    The compiler pads it so the array's layers start on a row of two words, and exact
    sizing counts the padding."""
    from pathlib import Path

    from quantizer.importers.tflite import load_tflite
    from quantizer.sizing import accelerator_config
    graph = load_tflite(Path(__file__).parent / "models" / "maxpool.tflite")
    config = accelerator_config(graph, 1, rows=4, cols=2, exact=True)
    compiled = compile_network(graph, config, 1)
    descriptors = [contract.descriptor_format(config).unpack(word)
                   for word in compiled.program]
    matmul, window = contract.LAYER_OPS.index("matmul"), contract.LAYER_OPS.index("window")
    per_tile = {matmul: config.rows, window: config.window ** 2}
    words = [d["n_tiles"] * d["k_tiles"] * per_tile.get(d["op"], 1) for d in descriptors]
    assert any(count % 2 for count in words)
    assert all(d["w_base"] % 2 == 0 for d in descriptors if d["op"] == matmul)
    assert len(compiled.weights) == config.weight_depth
