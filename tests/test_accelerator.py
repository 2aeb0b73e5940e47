"""The accelerator runs whole quantized networks from memory images, bit-exact with the golden
model; the compiler's image layouts agree with the hardware's."""

from __future__ import annotations

import numpy as np
import pytest

from hw import ArrayConfig
from hw.accelerator import descriptor_layout
from hw.requant import lane_params_layout
from quantizer.compile import descriptor_fields, pack_fields, pack_lane_params
from quantizer.layers import dense_chain
from quantizer.network import DenseLayer, FloatNetwork
from quantizer.quantize import quantize_network
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


def test_descriptor_layout_agrees_with_hardware(seed):
    rng = np.random.default_rng(seed)
    config = ArrayConfig(rows=4, cols=2, **SMALL)
    fields = descriptor_fields(config.to_dict())
    layout = descriptor_layout(config)
    assert [(name, width) for name, width in fields] == \
        [(name, field.width) for name, field in layout]
    values = {name: int(rng.integers(0, 1 << (width - 1))) for name, width in fields}
    decoded = layout.from_bits(pack_fields(fields, values))
    assert all(int(getattr(decoded, name)) == value for name, value in values.items())


@pytest.mark.parametrize("modes", [("double", "single"), ("pow2",)])
def test_lane_params_agree_with_hardware(seed, modes):
    rng = np.random.default_rng(seed)
    config = ArrayConfig(rows=3, cols=3, requant_modes=modes)
    bias = rng.integers(-(1 << 31), 1 << 31, 3)
    m0 = rng.integers(0, 1 << 31, 3)
    shift = rng.integers(-31, 31, 3)
    decoded = lane_params_layout(config).from_bits(
        pack_lane_params(config.to_dict(), bias, m0, shift))
    assert list(decoded.bias) == bias.tolist() and list(decoded.shift) == shift.tolist()
    if "double" in modes:
        assert list(decoded.m0) == m0.tolist()


def _random_network(rng, sizes, scheme, dtype, weights="int8"):
    layers = [DenseLayer(rng.normal(0, 1 / np.sqrt(k), (n, k)), rng.normal(0, 0.1, n),
                         "relu" if i < len(sizes) - 2 else "none", name=f"dense{i}")
              for i, (k, n) in enumerate(zip(sizes, sizes[1:]))]
    net = FloatNetwork(layers)
    return quantize_network(net, rng.normal(size=(64, sizes[0])), per_channel=True,
                            scheme=scheme, dtype=dtype, weights=weights, progress=False)


@pytest.mark.rtl
@pytest.mark.parametrize("name", CONFIGS)
def test_network_runs_start_to_done_bit_exact(name, seed):
    """A 3-layer network whose shapes fit no tile evenly, several batches in one launch, every
    layer's outputs checked."""
    config = CONFIGS[name]
    rng = np.random.default_rng(seed)
    scheme = "pow2" if config.requant_modes == ("pow2",) else "asymmetric"
    graph = _random_network(rng, [11, 9, 6, 5], scheme, config.dtype,
                            WEIGHT_FORMAT[config.weight_bits])
    layers = dense_chain(graph)
    assert max(layer.weight_bits for layer in layers) == config.weight_bits
    x = graph.input.quantize(rng.normal(size=(17, 11)))
    run = run_on_rtl(graph, x, config, batch=7, check_layers=True, seed=seed)
    assert run.mismatches == []
    np.testing.assert_array_equal(run.outputs, graph.run(x))
    tiles = sum(-(-layer.weight.shape[0] // config.cols) * -(-layer.weight.shape[1] //
                config.rows) for layer in layers)
    assert [b["vectors"] for b in run.batches] == [tiles * 7, tiles * 7, tiles * 3]
