"""MEAN against the integer reference_ops::QuantizedMeanOrSum (reference/reduce.h) with
PrepareMeanOrSum's multiplier, transcribed independently here with plain Python ints."""

from __future__ import annotations

import numpy as np
import pytest
from cpp_reference import mbqm, quantize_multiplier, wrap32

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor
from quantizer.kernels import evaluate


def mean_reference(values, s_in, zp_in, s_out, zp_out):
    """One output of QuantizedMeanOrSum (compute_sum = false)."""
    m, shift = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    n = len(values)
    bits = min(63 - (64 - n.bit_length()), 32, 31 + shift)  # 63 − CountLeadingZeros(n)
    m, shift = (m << bits) // n, shift - bits
    total = wrap32(sum(int(v) for v in values) - zp_in * n)
    return min(127, max(-128, mbqm(total, m, shift) + zp_out))


def mean_graph(shape, out_shape, q_in, q_out, axis, keep_dims=True):
    tensors = {"x": Tensor("x", shape, "int8", *q_in), "y": Tensor("y", out_shape, "int8",
                                                                   *q_out)}
    op = Operator("MEAN", ("x",), ("y",), {"axis": axis, "keep_dims": keep_dims})
    return Graph(tensors, [op], ["x"], ["y"]), op


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_mean_rounds_half_away_from_zero(runtime):
    graph, op = mean_graph((1, 2, 2, 1), (1, 1, 1, 1), (0.1, 0), (0.1, 0), (1, 2))
    x = np.array([1, 2, 3, 4], np.int8).reshape(1, 2, 2, 1)
    assert evaluate(op, graph, [x], runtime).item() == 3     # 2.5
    assert evaluate(op, graph, [-x], runtime).item() == -3   # −2.5


def test_same_quantization_is_not_a_truncating_mean():
    # reference_ops::Mean would truncate −5/3 to −1; QuantizedMeanOrSum rounds to −2.
    graph, op = mean_graph((1, 1, 3, 1), (1, 1, 1, 1), (0.02, 0), (0.02, 0), (1, 2))
    x = np.array([0, -2, -3], np.int8).reshape(1, 1, 3, 1)
    assert evaluate(op, graph, [x], "litert").item() == -2
    assert evaluate(op, graph, [x], "tflm").item() == -2


def test_rescaling_mean_of_a_global_pool():
    graph, op = mean_graph((1, 3, 3, 2), (1, 2), (0.05, -10), (0.02, 5), (1, 2),
                           keep_dims=False)
    x = np.arange(-9, 9, dtype=np.int8).reshape(1, 3, 3, 2)
    y = evaluate(op, graph, [x], "tflm")
    assert y.shape == (1, 2)
    expected = [mean_reference(x[0, :, :, c].reshape(-1), 0.05, -10, 0.02, 5) for c in (0, 1)]
    assert y.reshape(-1).tolist() == expected


def test_averaging_the_batch_is_refused():
    graph, op = mean_graph((1, 2, 2, 1), (1, 2, 2, 1), (0.1, 0), (0.1, 0), (0,))
    with pytest.raises(QuantizerError, match="batch"):
        evaluate(op, graph, [np.zeros((1, 2, 2, 1), np.int8)], "litert")


@pytest.mark.parametrize("axis, keep_dims", [((1, 2), True), ((1, 2), False), ((-1,), True),
                                             ((2,), False), ((1, 2, 3), True),
                                             ((-2, -3), False)])
def test_random_against_scalar_reference(seed, axis, keep_dims):
    rng = np.random.default_rng(seed)
    h, w, c = (int(v) for v in rng.integers(1, 8, 3))
    s_in = float(np.float32(10 ** rng.uniform(-3, 0)))
    same = bool(rng.integers(0, 2))
    s_out = s_in if same else float(np.float32(s_in * rng.uniform(0.2, 5)))
    zp_in = int(rng.integers(-128, 128))
    zp_out = zp_in if same else int(rng.integers(-128, 128))
    axes = sorted({a % 4 for a in axis})
    full = (1, h, w, c)
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(full)) if keep_dims else \
        tuple(d for i, d in enumerate(full) if i not in axes)
    graph, op = mean_graph(full, out_shape, (s_in, zp_in), (s_out, zp_out), axis, keep_dims)
    x = rng.integers(-128, 128, (6, h, w, c)).astype(np.int8)
    y = evaluate(op, graph, [x], "litert")
    kept = np.moveaxis(x, axes, list(range(4 - len(axes), 4)))
    flat = kept.reshape(*kept.shape[:4 - len(axes)], -1)
    expected = np.array([mean_reference(v, s_in, zp_in, s_out, zp_out)
                         for v in flat.reshape(-1, flat.shape[-1])])
    np.testing.assert_array_equal(y.reshape(-1), expected)
    assert y.shape == (6, *out_shape[1:])
    np.testing.assert_array_equal(evaluate(op, graph, [x], "tflm"), y)
