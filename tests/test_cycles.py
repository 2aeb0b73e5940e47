"""The weight traffic the cycle model reports per layer (quantizer.cycles.weight_traffic),
against the images the compiler writes and the cycle model of the whole run."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from quantizer.compile import compile_network
from quantizer.cycles import network_cycles, weight_traffic
from quantizer.importers import load_float_graph
from quantizer.quantize_graph import quantize_graph
from quantizer.sizing import accelerator_config
from quantizer.weights import WEIGHT_FORMATS
from tests_paths import MODELS


def test_weight_traffic_adds_up_to_the_images_and_the_run(seed):
    """The digits CNN with a layer at each of three widths on a 4x2 array whose partial sums
    hold less than a batch (layers run in passes, each streaming its weights again)."""
    rng = np.random.default_rng(seed)
    float_graph = load_float_graph(MODELS / "digits_cnn.onnx")
    names = [op.name for op in float_graph.operators
             if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    formats = {names[1]: "int4", names[3]: "ternary"}
    graph = quantize_graph(float_graph, rng.uniform(0, 1, (32, 8, 8, 1)), weights=formats,
                           progress=False)
    samples = 4
    config = replace(accelerator_config(graph, samples, rows=4, cols=2), psum_depth=40,
                     program_depth=64)
    assert config.weight_bits == 8
    rows = weight_traffic(config, graph, samples)
    image = compile_network(graph, config, samples).weights
    assert sum(r["weight_bytes"] for r in rows) == len(image) * config.cols
    by_name = {r["layer"]: r for r in rows}
    for name in names:
        fmt = formats.get(name, "int8")
        assert by_name[name]["format"] == fmt
        assert by_name[name]["weight_bytes_own_width"] == \
            by_name[name]["weight_bytes"] * WEIGHT_FORMATS[fmt] // 8
    unit_taps = [r for r in rows if r["layer"] not in names]
    assert unit_taps and all(r["format"] is None for r in unit_taps)
    assert sum(r["cycles"] for r in rows) == network_cycles(config, graph, samples)
    # The first convolution's 8x8 outputs of a sample exceed the 40 sums: each sample runs in
    # bands of 5 rows and of 3, 8 passes; the dense layer's 4 outputs in one. The weights
    # stream once a pass.
    assert by_name[names[0]]["streamed_bytes"] == 8 * by_name[names[0]]["weight_bytes"]
    assert by_name[names[-1]]["streamed_bytes"] == by_name[names[-1]]["weight_bytes"]
