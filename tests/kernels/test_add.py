"""ADD against TFLite's integer ADD (add.cc Prepare + reference_integer_ops/add.h AddFunc),
transcribed independently here with plain Python ints."""

from __future__ import annotations

import numpy as np
import pytest
from cpp_reference import quantize_multiplier, rdbpot, srdhm

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor, activation_range
from quantizer.kernels import evaluate

# --- a scalar transcription of the C++ -------------------------------------------------------


def mbqm_smaller_than_one(x: int, m: int, shift: int) -> int:
    return rdbpot(srdhm(x, m), -shift)  # double-rounding build


def add_reference(q1: int, q2: int, s1, zp1, s2, zp2, so, zpo, act_min=-128, act_max=127):
    s1, s2, so = (float(np.float32(s)) for s in (s1, s2, so))
    twice_max = 2 * max(s1, s2)
    m1 = quantize_multiplier(s1 / twice_max)
    m2 = quantize_multiplier(s2 / twice_max)
    mo = quantize_multiplier(twice_max / ((1 << 20) * so))
    a = mbqm_smaller_than_one((q1 - zp1) * (1 << 20), *m1)
    b = mbqm_smaller_than_one((q2 - zp2) * (1 << 20), *m2)
    return min(act_max, max(act_min, mbqm_smaller_than_one(a + b, *mo) + zpo))


# --- graphs ---------------------------------------------------------------------------------


def add_graph(shape1, shape2, q1, q2, qo, activation="NONE", const2=None, dtype="int8"):
    tensors = {"a": Tensor("a", shape1, dtype, *q1),
               "b": Tensor("b", shape2, dtype, *q2, data=const2),
               "y": Tensor("y", tuple(max(p, q) for p, q in zip(shape1, shape2)), dtype, *qo)}
    op = Operator("ADD", ("a", "b"), ("y",), {"activation": activation})
    inputs = ["a"] if const2 is not None else ["a", "b"]
    return Graph(tensors, [op], inputs, ["y"]), op


def run_add(graph, op, a, b, runtime="litert"):
    return evaluate(op, graph, [a, b], runtime)


# --- hand-computed cases ----------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_half_rounds_away_from_zero(runtime):
    # s_out = 2·s_in: 1 → 0.5 and −1 → −0.5 both round away from zero in RoundingDivideByPOT.
    graph, op = add_graph((1, 4), (1, 4), (1.0, 0), (1.0, 0), (2.0, 0))
    a = np.array([[1, -1, 3, -3]], np.int8)
    y = run_add(graph, op, a, np.zeros((1, 4), np.int8), runtime)
    assert y.tolist() == [[1, -1, 2, -2]]


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_double_rounding_case_measured_on_both_interpreters(runtime):
    # Found by search: single rounding gives 109 here; LiteRT and TFLite Micro both give 110.
    graph, op = add_graph((1, 1), (1, 1), (0.10716873, 103), (0.0015219771, -59),
                          (0.00010460401, -36))
    y = run_add(graph, op, np.array([[103]], np.int8), np.array([[-49]], np.int8), runtime)
    assert y.item() == 110
    assert add_reference(103, -49, 0.10716873, 103, 0.0015219771, -59, 0.00010460401,
                         -36) == 110


def test_fused_relu_clamps_at_the_output_zero_point():
    graph, op = add_graph((1, 3), (1, 3), (0.1, 0), (0.1, 0), (0.1, -20), activation="RELU")
    y = run_add(graph, op, np.array([[-50, 0, 50]], np.int8), np.zeros((1, 3), np.int8))
    assert y.tolist() == [[-20, -20, 30]]


def test_uint8_is_litert_only():
    graph, op = add_graph((1, 2), (1, 2), (0.1, 128), (0.2, 120), (0.3, 125), dtype="uint8")
    a, b = np.array([[0, 255]], np.uint8), np.array([[255, 0]], np.uint8)
    y = run_add(graph, op, a, b, "litert")
    assert y.dtype == np.uint8
    assert y.tolist() == [[add_reference(0, 255, 0.1, 128, 0.2, 120, 0.3, 125, 0, 255),
                           add_reference(255, 0, 0.1, 128, 0.2, 120, 0.3, 125, 0, 255)]]
    with pytest.raises(QuantizerError, match="uint8"):
        run_add(graph, op, a, b, "tflm")


def test_output_scale_too_small_is_refused():
    graph, op = add_graph((1, 1), (1, 1), (1.0, 0), (1.0, 0), (1e-7, 0))
    with pytest.raises(QuantizerError, match="too small"):
        run_add(graph, op, np.zeros((1, 1), np.int8), np.zeros((1, 1), np.int8))


# --- random cases against the scalar transcription --------------------------------------------


@pytest.mark.parametrize("broadcast", ["none", "channel", "constant"])
def test_random_against_scalar_reference(seed, broadcast):
    rng = np.random.default_rng(seed)
    n, h, w, c = 5, *rng.integers(1, 5, 3)
    s1, s2 = (float(np.float32(10 ** rng.uniform(-3, 0))) for _ in range(2))
    so = float(np.float32(max(s1, s2) * rng.uniform(0.3, 4)))
    zp1, zp2, zpo = (int(v) for v in rng.integers(-128, 128, 3))
    activation = str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    a = rng.integers(-128, 128, (n, h, w, c)).astype(np.int8)
    shape2 = (1, h, w, c) if broadcast == "none" else (1, 1, 1, c)
    b = rng.integers(-128, 128, (n if broadcast != "constant" else 1, *shape2[1:])).astype(np.int8)
    graph, op = add_graph((1, h, w, c), shape2, (s1, zp1), (s2, zp2), (so, zpo), activation,
                          const2=b if broadcast == "constant" else None)
    y = run_add(graph, op, a, b)
    lo, hi = activation_range(activation, graph.tensors["y"])
    bb = np.broadcast_to(b, a.shape)
    expected = np.array([add_reference(int(p), int(q), s1, zp1, s2, zp2, so, zpo, lo, hi)
                         for p, q in zip(a.reshape(-1), bb.reshape(-1))]).reshape(a.shape)
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.int8 and y.shape == a.shape
