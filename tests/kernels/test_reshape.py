"""RESHAPE (a copy) and 8-bit QUANTIZE against reference_ops::Requantize
(reference/requantize.h), transcribed independently here with plain Python ints."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cpp_reference import rdbpot, srdhm

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor
from quantizer.kernels import evaluate


def requantize_reference(q, s_in, zp_in, s_out, zp_out, lo=-128, hi=127):
    real = float(np.float32(s_in)) / float(np.float32(s_out))
    mantissa, shift = math.frexp(real)
    m = math.floor(mantissa * (1 << 31) + 0.5)
    if m == 1 << 31:
        m, shift = m // 2, shift + 1
    x = (q - zp_in) * (1 << max(shift, 0))
    return min(hi, max(lo, rdbpot(srdhm(x, m), max(-shift, 0)) + zp_out))


def one_op_graph(kind, in_shape, out_shape, q_in, q_out, dtypes=("int8", "int8")):
    tensors = {"x": Tensor("x", in_shape, dtypes[0], *q_in),
               "y": Tensor("y", out_shape, dtypes[1], *q_out)}
    op = Operator(kind, ("x",), ("y",), {})
    return Graph(tensors, [op], ["x"], ["y"]), op


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_reshape_flattens_each_sample(runtime):
    graph, op = one_op_graph("RESHAPE", (1, 2, 3, 2), (1, 12), (0.1, 1), (0.1, 1))
    x = np.arange(-12, 12, dtype=np.int8).reshape(2, 2, 3, 2)
    y = evaluate(op, graph, [x], runtime)
    np.testing.assert_array_equal(y, x.reshape(2, 12))


def test_reshape_must_keep_the_batch_first():
    graph, op = one_op_graph("RESHAPE", (1, 2, 3), (1, 5), (0.1, 0), (0.1, 0))
    with pytest.raises(QuantizerError, match="batch"):
        evaluate(op, graph, [np.zeros((2, 2, 3), np.int8)], "litert")


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_quantize_rounds_twice(runtime):
    # s_in / s_out = 1/4: −2 → −0.5 rounds away from zero to −1 through RoundingDivideByPOT
    # (single rounding would give 0). Measured on both interpreters.
    graph, op = one_op_graph("QUANTIZE", (1, 3), (1, 3), (0.25, 0), (1.0, 0))
    y = evaluate(op, graph, [np.array([[-2, 2, -6]], np.int8)], runtime)
    assert y.tolist() == [[-1, 1, -2]]


def test_quantize_uint8_to_int8_shifts_the_zero_point():
    graph, op = one_op_graph("QUANTIZE", (1, 3), (1, 3), (0.1, 128), (0.1, 0),
                             ("uint8", "int8"))
    y = evaluate(op, graph, [np.array([[0, 128, 255]], np.uint8)], "tflm")
    assert y.dtype == np.int8 and y.tolist() == [[-128, 0, 127]]


def test_quantize_float_input_is_refused():
    graph, op = one_op_graph("QUANTIZE", (1, 3), (1, 3), (1.0, 0), (0.1, 0),
                             ("float32", "int8"))
    with pytest.raises(QuantizerError, match="8-bit"):
        evaluate(op, graph, [np.zeros((1, 3), np.float32)], "litert")


@pytest.mark.parametrize("dtypes", [("int8", "int8"), ("uint8", "int8"), ("int8", "uint8")])
def test_quantize_random_against_scalar_reference(seed, dtypes):
    rng = np.random.default_rng(seed)
    ranges = {"int8": (-128, 127), "uint8": (0, 255)}
    (lo_in, hi_in), (lo, hi) = ranges[dtypes[0]], ranges[dtypes[1]]
    s_in = float(np.float32(10 ** rng.uniform(-3, 0)))
    s_out = float(np.float32(s_in * 10 ** rng.uniform(-1.5, 1.5)))
    zp_in, zp_out = int(rng.integers(lo_in, hi_in + 1)), int(rng.integers(lo, hi + 1))
    graph, op = one_op_graph("QUANTIZE", (1, 256), (1, 256), (s_in, zp_in), (s_out, zp_out),
                             dtypes)
    x = np.arange(lo_in, hi_in + 1).reshape(1, 256).astype(dtypes[0])
    y = evaluate(op, graph, [x], "litert")
    expected = [requantize_reference(int(q), s_in, zp_in, s_out, zp_out, lo, hi)
                for q in x.reshape(-1)]
    assert y.reshape(-1).tolist() == expected
    np.testing.assert_array_equal(evaluate(op, graph, [x], "tflm"), y)
