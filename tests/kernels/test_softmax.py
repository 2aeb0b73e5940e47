"""SOFTMAX against the quantized reference_ops::Softmax (reference/softmax.h) with gemmlowp's
exp_on_negative_values and one_over_one_plus_x_for_x_in_0_1 and TFLite's GetReciprocal,
PreprocessSoftmaxScaling and CalculateInputRadius, transcribed independently here with plain
Python ints, one element at a time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cpp_reference import INT_MAX, INT_MIN, rdbpot, srdhm, wrap32

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor
from quantizer.kernels import evaluate
from quantizer.kernels.softmax import exp_on_negative_values


def sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent>."""
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    return INT_MAX if x > threshold else INT_MIN if x < -threshold else wrap32(x << exponent)


def exp_quarter(a: int) -> int:
    """exp_on_interval_between_negative_one_quarter_and_0_excl, Q0.31."""
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    t = sat_mul_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), 715827883) + x2), -1)
    return wrap32(1895147668 + srdhm(1895147668, wrap32(x + t)))


def exp_negative(a: int) -> int:
    """exp_on_negative_values for Q5.26 input, Q0.31 output."""
    quarter = 1 << 24
    a_mod = wrap32((a & (quarter - 1)) - quarter)
    result = exp_quarter(sat_mul_pot(a_mod, 5))
    remainder = wrap32(a_mod - a)
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084),
                                 (1, 290630308), (2, 39332535), (3, 720401), (4, 242)):
        if remainder & (1 << (26 + exponent)):
            result = srdhm(result, multiplier)
    return INT_MAX if a == 0 else result


def one_over_one_plus_x(a: int) -> int:
    total = a + INT_MAX
    half_denominator = (total + 1) // 2  # RoundingHalfSum, sum ≥ 0 here
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        x = wrap32(x + sat_mul_pot(srdhm(x, wrap32((1 << 29) - srdhm(half_denominator, x))), 2))
    return sat_mul_pot(x, 1)


def softmax_reference(row, input_scale, beta=1.0):
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << 26),
               (1 << 31) - 1.0)
    q, shift = math.frexp(real)
    multiplier = math.floor(q * (1 << 31) + 0.5)
    if multiplier == 1 << 31:
        multiplier, shift = multiplier // 2, shift + 1
    diff_min = -math.floor(31 * (1 << 26) / (1 << shift))
    top = max(int(v) for v in row)
    exps = []
    for v in row:
        diff = int(v) - top
        exps.append(exp_negative(srdhm(diff * (1 << shift), multiplier))
                    if diff >= diff_min else None)
    total = sum(sat_mul_pot(e, -12) for e in exps if e is not None)
    headroom_plus_one = 32 - total.bit_length()
    scale = one_over_one_plus_x(((total << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    exponent = 12 - headroom_plus_one + 31 - 8
    assert 0 <= exponent <= 31
    return [-128 if e is None else max(-128, min(127, rdbpot(srdhm(scale, e), exponent) - 128))
            for e in exps]


def softmax_graph(depth, scale, zp, beta=1.0, out_scale=1 / 256, out_zp=-128):
    tensors = {"x": Tensor("x", (1, depth), "int8", scale, zp),
               "y": Tensor("y", (1, depth), "int8", out_scale, out_zp)}
    op = Operator("SOFTMAX", ("x",), ("y",), {"beta": beta})
    return Graph(tensors, [op], ["x"], ["y"]), op


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_constant_row_gives_equal_probabilities(runtime):
    graph, op = softmax_graph(10, 0.1, 3)
    y = evaluate(op, graph, [np.full((2, 10), 42, np.int8)], runtime)
    assert len(set(y.reshape(-1).tolist())) == 1
    assert abs((int(y[0, 0]) + 128) / 256 - 0.1) < 1 / 256


def test_one_dominant_class_saturates():
    # With scale 0.5 only differences down to −31 enter the sum (diff_min); the rest get the
    # output's minimum, and the maximum's probability 1.0 clamps to 127.
    graph, op = softmax_graph(4, 0.5, 0)
    y = evaluate(op, graph, [np.array([[127, -128, -100, 0]], np.int8)], "litert")
    assert y.tolist() == [[127, -128, -128, -128]]


def test_exp_on_negative_values_tracks_exp():
    a = np.array([0, -1, -(1 << 20), -(1 << 26), -5 << 26, -(31 << 26)], np.int64)
    got = exp_on_negative_values(a) / 2 ** 31
    np.testing.assert_allclose(got, np.exp(a / 2 ** 26), atol=1e-6)
    assert [int(v) for v in exp_on_negative_values(a)] == [exp_negative(int(v)) for v in a]


def test_too_many_near_maximal_classes_is_refused():
    # A sum of exponentials of 512 or more makes the output exponent 32: TFLite's TFLITE_CHECK
    # aborts (measured: 512 equal classes abort LiteRT, 511 give −127 everywhere).
    graph, op = softmax_graph(512, 0.001, 0)
    with pytest.raises(QuantizerError, match="abort"):
        evaluate(op, graph, [np.zeros((1, 512), np.int8)], "tflm")
    graph, op = softmax_graph(511, 0.001, 0)
    assert set(evaluate(op, graph, [np.zeros((1, 511), np.int8)], "litert").flat) == {-127}


def test_output_quantization_is_checked():
    graph, op = softmax_graph(4, 0.1, 0, out_scale=1 / 255)
    with pytest.raises(QuantizerError, match="1/256"):
        evaluate(op, graph, [np.zeros((1, 4), np.int8)], "litert")


@pytest.mark.parametrize("depth", [1, 2, 10, 100])
def test_random_against_scalar_reference(seed, depth):
    rng = np.random.default_rng(seed)
    scale = float(np.float32(10 ** rng.uniform(-2.5, 0.5)))
    beta = float(np.float32(rng.choice([1.0, rng.uniform(0.2, 3)])))
    graph, op = softmax_graph(depth, scale, int(rng.integers(-128, 128)), beta)
    x = rng.integers(-128, 128, (8, depth)).astype(np.int8)
    y = evaluate(op, graph, [x], "litert")
    expected = [softmax_reference(row, scale, beta) for row in x]
    np.testing.assert_array_equal(y, np.array(expected))
    np.testing.assert_array_equal(evaluate(op, graph, [x], "tflm"), y)
    assert y.dtype == np.int8
