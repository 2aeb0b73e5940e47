"""The soak's random networks (verif/random_network.py): one graph per seed, every one valid,
quantized, run by the golden model of both runtimes, with at least one operator on the
accelerator; over 50 seeds every operator kind the generator promises appears, each
accelerator kind placed on the accelerator at least once and the host's share exercised too."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from quantizer.layers import ACCELERATOR_KINDS
from quantizer.partition import ACCELERATOR, HOST, partition
from verif.random_network import (KINDS, MAX_CHANNELS, low_bit_weights, random_float_graph,
                                  random_graph, random_inputs)

SEEDS = range(50)


def _fingerprint(graph) -> list:
    """Everything that makes a graph: operators with options, tensors with their data."""
    tensors = [(t.name, t.shape, t.dtype, t.scale.tolist(), t.zero_point.tolist(), t.axis,
                None if t.data is None else t.data.tolist()) for t in graph.tensors.values()]
    ops = [(op.kind, op.inputs, op.outputs, sorted(op.options.items())) for op in
           graph.operators]
    return [tensors, ops, graph.inputs, graph.outputs]


def test_a_seed_makes_one_graph(seed):
    for s in (seed, seed + 1, seed + 2):
        first = random_graph(np.random.default_rng(s))
        assert _fingerprint(first) == _fingerprint(random_graph(np.random.default_rng(s)))
    assert _fingerprint(random_graph(np.random.default_rng(seed))) != \
        _fingerprint(random_graph(np.random.default_rng(seed + 1)))


@pytest.mark.parametrize("dtype, runtimes", [("int8", ("litert", "tflm")),
                                             ("uint8", ("litert",))])
def test_graphs_are_valid_and_run_on_the_golden_model(dtype, runtimes):
    for s in SEEDS:
        rng = np.random.default_rng(s)
        graph = random_graph(rng, dtype=dtype)
        assert graph.dtype == dtype and 2 <= len(graph.operators) <= 10
        x = random_inputs(rng, graph, 2)
        for runtime in runtimes:
            y = graph.run(x, runtime=runtime)
            assert y.shape == (2, *graph.output.sample_shape) and y.dtype == np.dtype(dtype)
        for name in (graph.inputs[0], *(op.outputs[0] for op in graph.operators)):
            shape = graph.tensors[name].sample_shape
            assert len(shape) != 3 or (max(shape[:2]) <= 16 and shape[2] <= 2 * MAX_CHANNELS)
        assert partition(graph, runtime, rows=4).layers, f"seed {s}: nothing on the accelerator"


def test_every_operator_kind_appears_and_runs_where_it_can():
    kinds, where = Counter(), Counter()
    for s in SEEDS:
        graph = random_graph(np.random.default_rng(s))
        kinds.update(op.kind for op in graph.operators)
        where.update((p.op.kind, p.where, p.free)
                     for p in partition(graph, "litert", rows=4).placements)
    assert set(kinds) == set(KINDS), f"missing: {set(KINDS) - set(kinds)}"
    for kind in ACCELERATOR_KINDS:
        assert where[kind, ACCELERATOR, False], f"no {kind} ran on the accelerator"
    assert where["SOFTMAX", HOST, False]
    assert where["RESHAPE", ACCELERATOR, True] and where["PAD", ACCELERATOR, True]
    assert where["CONCATENATION", ACCELERATOR, True] and where["CONCATENATION", HOST, False]
    assert where["PAD", HOST, False] and where["AVERAGE_POOL_2D", HOST, False]


def test_low_bit_weights_are_requantized_with_their_biases():
    for s in range(10):
        rng = np.random.default_rng(s)
        graph = random_graph(rng, weight_format="int4")
        layers = [op for op in graph.operators if op.kind in
                  ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
        for op in layers:
            w, b = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
            assert op.options["weight_format"] == "int4"
            assert np.abs(w.data).max() <= 7 and w.data.dtype == np.int8
            np.testing.assert_allclose(b.scale, graph.tensors[op.inputs[0]].scalar_scale
                                       * w.scale)
        graph.run(random_inputs(rng, graph, 1))


def test_low_bit_weights_keep_the_float_weights_meaning():
    """Requantized to int4, a weight is its float value within half a step, or clipped."""
    from quantizer.quantize_graph import quantize_graph
    from verif.random_network import calibration_inputs
    for s in range(5):
        rng = np.random.default_rng(s)
        float_graph = random_float_graph(rng)
        graph = quantize_graph(float_graph, calibration_inputs(rng, float_graph),
                               progress=False)
        low = low_bit_weights(float_graph, graph, "int4")
        for op in low.operators:
            if op.kind in ("CONV_2D", "FULLY_CONNECTED"):
                w = low.tensors[op.inputs[1]]
                real = np.asarray(float_graph.tensors[op.inputs[1]].data, np.float64)
                step = w.scale.reshape(-1, *[1] * (real.ndim - 1))
                clipped = np.maximum(np.abs(real) - 7 * step, 0)
                assert np.all(np.abs(w.data * step - real) <= 0.5 * step + clipped + 1e-6)
