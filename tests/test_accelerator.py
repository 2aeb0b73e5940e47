"""The accelerator runs whole quantized networks from memory images, bit-exact with the golden
model; the hardware's word layouts decode what the contract (hw/contract.py) packs."""

from __future__ import annotations

import numpy as np
import pytest

from hw import ArrayConfig
from hw.contract import SHIFT_MAX, SHIFT_MIN, descriptor_format, lane_params_format
from hw.layouts import descriptor_layout, lane_params_layout
from quantizer import QuantizerError
from quantizer.compile import pack_lane_params
from quantizer.layers import dense_chain
from random_networks import random_dense_network
from verif.network_sim import run_on_rtl

SMALL = dict(weight_depth=512, act_depth=512, param_depth=32, psum_depth=64, program_depth=8)
CONFIGS = {
    "4x2": ArrayConfig(rows=4, cols=2, **SMALL),
    "3x3-pow2-uint8": ArrayConfig(rows=3, cols=3, dtype="uint8", requant_modes=("pow2",),
                                  **SMALL),
    # Packed low-bit weights, unpacked on their way into the array.
    "4x2-binary": ArrayConfig(rows=4, cols=2, weight_bits=1, **SMALL),
    "4x4-int4-pow2": ArrayConfig(rows=4, cols=4, weight_bits=4, requant_modes=("pow2",),
                                 **SMALL),
}
WEIGHT_FORMAT = {1: "binary", 2: "ternary", 4: "int4", 8: "int8"}


def _random_values(rng, word):
    """Values for every field of a contract word: each field's extremes, then random ones."""
    values = {}
    for field in word:
        draw = [field.min, field.max] + rng.integers(field.min, field.max + 1, 6).tolist()
        values[field.name] = draw[int(rng.integers(len(draw)))] if field.lanes is None \
            else [draw[int(i)] for i in rng.integers(len(draw), size=field.lanes)]
    return values


def _decoded(view, field):
    value = getattr(view, field.name)
    return int(value) if field.lanes is None else [int(lane) for lane in value]


LAYOUT_CONFIGS = [
    ArrayConfig(rows=4, cols=2, **SMALL),
    ArrayConfig(rows=3, cols=3, dtype="uint8", requant_modes=("pow2",), **SMALL),
    ArrayConfig(rows=1, cols=1, requant_modes=("double",), weight_depth=2, act_depth=2,
                param_depth=2, psum_depth=2, program_depth=2),
    ArrayConfig(),
]


@pytest.mark.parametrize("config", LAYOUT_CONFIGS, ids=lambda c: c.describe())
@pytest.mark.parametrize("word, layout", [(descriptor_format, descriptor_layout),
                                          (lane_params_format, lane_params_layout)],
                         ids=["descriptor", "params"])
def test_hardware_layouts_decode_what_the_contract_packs(seed, config, word, layout):
    rng = np.random.default_rng(seed)
    word, layout = word(config), layout(config)
    assert layout.size == word.size
    for field in word:
        assert layout[field.name].offset == word.offset(field.name), field.name
    for _ in range(20):
        values = _random_values(rng, word)
        decoded = layout.from_bits(word.pack(values))
        assert {field.name: _decoded(decoded, field) for field in word} == values
        assert word.unpack(word.pack(values)) == values


def test_descriptor_format_is_the_documented_one():
    """docs/images.md's table, for the default configuration: changing the contract changes
    every compiled image, so it must be deliberate."""
    fields = [(f.name, f.width, f.signed) for f in descriptor_format(ArrayConfig())]
    assert fields == [("m", 10, False), ("k_tiles", 12, False), ("n_tiles", 12, False),
                      ("in_base", 12, False), ("out_base", 12, False), ("w_base", 12, False),
                      ("p_base", 6, False), ("zx", 8, True), ("zw", 8, True), ("zy", 8, True),
                      ("act_min", 8, True), ("act_max", 8, True), ("double", 1, False),
                      ("last", 1, False), ("h", 10, False), ("w", 10, False),
                      ("oh", 10, False), ("ow", 10, False), ("kw", 10, False),
                      ("groups", 12, False), ("plane", 13, False), ("out_plane", 13, False),
                      ("stride_h", 4, False),
                      ("stride_w", 4, False), ("dil_h", 4, False), ("dil_w", 4, False),
                      ("pad_top", 4, False), ("pad_left", 4, False), ("op", 3, False),
                      ("zpad", 8, True), ("in2_base", 12, False), ("zx2", 8, True),
                      ("m0_a", 31, False), ("shift_a", 6, True), ("m0_b", 31, False),
                      ("shift_b", 6, True), ("rh", 10, False), ("rw", 10, False),
                      ("pair", 1, False), ("quad", 1, False), ("out_blocks", 1, False)]
    params = [(f.name, f.width, f.signed, f.lanes) for f in lane_params_format(ArrayConfig())]
    assert params == [("bias", 32, True, 8), ("m0", 31, False, 8), ("shift", 6, True, 8)]
    assert [f.name for f in lane_params_format(ArrayConfig(requant_modes=("pow2",)))] == \
        ["bias", "shift"]


def test_compiler_packs_parameter_words_with_the_contract(seed):
    rng = np.random.default_rng(seed)
    config = ArrayConfig(rows=3, cols=3)
    bias = rng.integers(-(1 << 31), 1 << 31, 3)
    m0 = rng.integers(0, 1 << 31, 3)
    shift = rng.integers(SHIFT_MIN, SHIFT_MAX + 1, 3)
    decoded = lane_params_layout(config).from_bits(pack_lane_params(config, bias, m0, shift))
    assert list(decoded.bias) == bias.tolist() and list(decoded.m0) == m0.tolist()
    assert list(decoded.shift) == shift.tolist()
    with pytest.raises(QuantizerError, match=r"shift\[0\]=31 does not fit"):
        pack_lane_params(config, bias, m0, [31, 0, 0])


@pytest.mark.rtl
@pytest.mark.parametrize("name", CONFIGS)
def test_network_runs_start_to_done_bit_exact(name, seed):
    """A 3-layer network whose shapes fit no tile evenly, several batches in one launch, every
    layer's outputs checked; one configuration loads and reads its memories through the host
    port, one word a cycle, the others in bulk."""
    config = CONFIGS[name]
    rng = np.random.default_rng(seed)
    scheme = "pow2" if config.requant_modes == ("pow2",) else "asymmetric"
    graph = random_dense_network(rng, [11, 9, 6, 5], scheme, config.dtype,
                            WEIGHT_FORMAT[config.weight_bits])
    layers = dense_chain(graph)
    assert max(layer.weight_bits for layer in layers) == config.weight_bits
    x = graph.input.quantize(rng.normal(size=(17, 11)))
    run = run_on_rtl(graph, x, config, batch=7, check_layers=True, seed=seed,
                     host_port=name == "3x3-pow2-uint8")
    assert run.mismatches == []
    np.testing.assert_array_equal(run.outputs, graph.run(x))
    tiles = sum(-(-layer.weight.shape[0] // config.cols) * -(-layer.weight.shape[1] //
                config.rows) for layer in layers)
    assert [b["vectors"] for b in run.batches] == [tiles * 7, tiles * 7, tiles * 3]
