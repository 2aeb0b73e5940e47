"""CONCATENATION: int8 byte copies (both runtimes refuse rescaling int8 inputs) and LiteRT's
uint8 reference_ops::ConcatenationWithScaling (reference/concatenation.h), the latter
transcribed independently here element by element in float32."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor
from quantizer.kernels import evaluate


def concat_graph(shapes, quants, out_shape, out_quant, axis, dtype="int8", constants=None):
    constants = constants or {}
    names = [f"x{i}" for i in range(len(shapes))]
    tensors = {n: Tensor(n, s, dtype, *q, data=constants.get(n))
               for n, s, q in zip(names, shapes, quants)}
    tensors["y"] = Tensor("y", out_shape, dtype, *out_quant)
    op = Operator("CONCATENATION", tuple(names), ("y",), {"axis": axis})
    inputs = [n for n in names if n not in constants]
    return Graph(tensors, [op], inputs, ["y"]), op


def with_scaling_reference(q: int, s_in, zp_in, s_out, zp_out) -> int:
    """One element of ConcatenationWithScaling (float arithmetic, TfLiteRound)."""
    f = np.float32
    if zp_in == zp_out and f(s_in) == f(s_out):
        return q
    scale = f(s_in) * (f(1) / f(s_out))
    bias = f(-zp_in) * scale
    value = float(f(f(q) * scale) + bias)
    rounded = math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)  # std::round
    return min(255, max(0, rounded + zp_out))


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
@pytest.mark.parametrize("axis", [3, -1, 1, -3])
def test_int8_copy_along_any_sample_axis(runtime, axis):
    a = np.arange(2 * 2 * 3 * 2).reshape(2, 2, 3, 2).astype(np.int8)
    b = -np.arange(2 * 2 * 3 * 1).reshape(2, 2, 3, 1).astype(np.int8)
    if axis % 4 == 1:
        b = b.reshape(2, 1, 3, 2)
    out_shape = (1, *np.concatenate([a, b], axis=axis).shape[1:])
    graph, op = concat_graph([(1, *a.shape[1:]), (1, *b.shape[1:])], [(0.1, 3)] * 2,
                             out_shape, (0.1, 3), axis)
    y = evaluate(op, graph, [a, b], runtime)
    np.testing.assert_array_equal(y, np.concatenate([a, b], axis=axis))


def test_constant_input_is_repeated_over_the_batch():
    a = np.ones((3, 2, 2), np.int8)
    const = np.full((1, 2, 1), 9, np.int8)
    graph, op = concat_graph([(1, 2, 2), (1, 2, 1)], [(0.5, 0)] * 2, (1, 2, 3), (0.5, 0), 2,
                             constants={"x1": const})
    y = evaluate(op, graph, [a, const], "litert")
    assert y.shape == (3, 2, 3) and (y[:, :, 2] == 9).all() and (y[:, :, :2] == 1).all()


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
@pytest.mark.parametrize("quant", [(0.2, 3), (0.1, 4)])
def test_int8_rescaling_is_refused_by_both_runtimes(runtime, quant):
    graph, op = concat_graph([(1, 2), (1, 2)], [(0.1, 3), quant], (1, 4), (0.1, 3), 1)
    with pytest.raises(QuantizerError, match="refuse"):
        evaluate(op, graph, [np.zeros((1, 2), np.int8)] * 2, runtime)


def test_uint8_requantizes_with_ties_away_from_zero():
    # s_in = s_out / 2: q − zp_in = ±1 → ±0.5 → ±1; other input copied unchanged.
    graph, op = concat_graph([(1, 4), (1, 1)], [(0.05, 100), (0.1, 7)], (1, 5), (0.1, 7), 1,
                             dtype="uint8")
    a = np.array([[101, 99, 103, 0]], np.uint8)
    y = evaluate(op, graph, [a, np.array([[200]], np.uint8)], "litert")
    assert y.tolist() == [[8, 6, 9, 0, 200]]  # 0 → −50 + 7 clamps to 0
    with pytest.raises(QuantizerError, match="uint8"):
        evaluate(op, graph, [a, np.array([[200]], np.uint8)], "tflm")


def test_uint8_random_against_scalar_reference(seed):
    rng = np.random.default_rng(seed)
    s_out, zp_out = float(rng.uniform(0.01, 0.2)), int(rng.integers(0, 256))
    quants = [(float(s_out * rng.choice([0.5, 2.0, rng.uniform(0.2, 5)])),
               int(rng.integers(0, 256))) for _ in range(2)] + [(s_out, zp_out)]
    widths = [int(v) for v in rng.integers(1, 4, 3)]
    xs = [rng.integers(0, 256, (16, w)).astype(np.uint8) for w in widths]
    graph, op = concat_graph([(1, w) for w in widths], quants, (1, sum(widths)),
                             (s_out, zp_out), -1, dtype="uint8")
    y = evaluate(op, graph, xs, "litert")
    expected = np.concatenate([
        np.vectorize(lambda q, s=s, z=z: with_scaling_reference(int(q), s, z, s_out, zp_out))(x)
        for x, (s, z) in zip(xs, quants)], axis=1)
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.uint8


def test_batch_axis_is_refused():
    graph, op = concat_graph([(1, 2), (1, 2)], [(0.1, 0)] * 2, (2, 2), (0.1, 0), 0)
    with pytest.raises(QuantizerError, match="batch"):
        evaluate(op, graph, [np.zeros((1, 2), np.int8)] * 2, "litert")
