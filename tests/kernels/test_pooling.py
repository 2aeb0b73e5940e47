"""AVERAGE_POOL_2D and MAX_POOL_2D against reference_integer_ops/pooling.h, transcribed
independently here as the C++ loop nest over plain Python ints."""

from __future__ import annotations

import numpy as np
import pytest

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor, activation_range
from quantizer.kernels import evaluate


def compute_padding(stride, in_size, filter_size, out_size):
    """TFLite's ComputePadding (dilation 1)."""
    padding = ((out_size - 1) * stride + filter_size - in_size) // 2
    return max(padding, 0)


def out_size(size, filter_size, stride, padding):
    return (size + stride - 1) // stride if padding == "SAME" else \
        (size - filter_size + stride) // stride


def pool_reference(x, kind, filter_, stride, padding, act_min, act_max):
    n, h, w, c = x.shape
    (fh, fw), (sh, sw) = filter_, stride
    oh, ow = out_size(h, fh, sh, padding), out_size(w, fw, sw, padding)
    pad_h, pad_w = compute_padding(sh, h, fh, oh), compute_padding(sw, w, fw, ow)
    y = np.zeros((n, oh, ow, c), np.int64)
    for b in range(n):
        for out_y in range(oh):
            for out_x in range(ow):
                for ch in range(c):
                    x0, y0 = out_x * sw - pad_w, out_y * sh - pad_h
                    acc, count, best = 0, 0, -128
                    for fy in range(max(0, -y0), min(fh, h - y0)):
                        for fx in range(max(0, -x0), min(fw, w - x0)):
                            v = int(x[b, y0 + fy, x0 + fx, ch])
                            acc, count, best = acc + v, count + 1, max(best, v)
                    if kind == "MAX_POOL_2D":
                        value = best
                    elif acc > 0:
                        value = (acc + count // 2) // count
                    else:  # C++ division truncates toward zero
                        value = -((-acc + count // 2) // count)
                    y[b, out_y, out_x, ch] = min(act_max, max(act_min, value))
    return y


def pool_graph(kind, shape, out_shape, scale, zp, filter_, stride, padding, activation="NONE"):
    tensors = {"x": Tensor("x", shape, "int8", scale, zp),
               "y": Tensor("y", out_shape, "int8", scale, zp)}
    op = Operator(kind, ("x",), ("y",), {"filter": filter_, "stride": stride,
                                         "padding": padding, "activation": activation})
    return Graph(tensors, [op], ["x"], ["y"]), op


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_average_excludes_padded_taps_and_rounds_half_away(runtime):
    # 3x3 SAME window over a 2x2 input: every window holds the 4 real taps only (count 4,
    # not 9), whatever the zero point.
    x = np.array([[1, 2], [3, 4]], np.int8).reshape(1, 2, 2, 1)
    graph, op = pool_graph("AVERAGE_POOL_2D", (1, 2, 2, 1), (1, 2, 2, 1), 0.1, -128, (3, 3),
                           (1, 1), "SAME")
    assert evaluate(op, graph, [x], runtime).reshape(-1).tolist() == [3] * 4   # 10/4 = 2.5 → 3
    assert evaluate(op, graph, [-x], runtime).reshape(-1).tolist() == [-3] * 4  # −2.5 → −3


def test_average_rounding_of_each_sign():
    # 1x2 windows, stride 2, VALID: sums 5, −5, −3, 3, 1, −1 over 2 taps.
    x = np.array([2, 3, -2, -3, -1, -2, 1, 2, 0, 1, 0, -1], np.int8).reshape(1, 1, 12, 1)
    graph, op = pool_graph("AVERAGE_POOL_2D", (1, 1, 12, 1), (1, 1, 6, 1), 0.1, 0, (1, 2),
                           (2, 2), "VALID")
    y = evaluate(op, graph, [x], "litert")
    assert y.reshape(-1).tolist() == [3, -3, -2, 2, 1, -1]


def test_max_pool_with_padding_and_relu6():
    x = np.array([[-100, -90], [-80, 120]], np.int8).reshape(1, 2, 2, 1)
    graph, op = pool_graph("MAX_POOL_2D", (1, 2, 2, 1), (1, 1, 1, 1), 0.05, -100, (3, 3),
                           (2, 2), "SAME", activation="RELU6")
    # The only window covers all four values; RELU6 clamps to quantize(6.0) = 120 − 100 = 20.
    assert evaluate(op, graph, [x], "tflm").reshape(-1).tolist() == [20]


def test_rescaling_pool_is_refused():
    tensors = {"x": Tensor("x", (1, 2, 2, 1), "int8", 0.1, 0),
               "y": Tensor("y", (1, 1, 1, 1), "int8", 0.2, 0)}
    op = Operator("MAX_POOL_2D", ("x",), ("y",), {"filter": (2, 2), "stride": (2, 2),
                                                   "padding": "VALID"})
    graph = Graph(tensors, [op], ["x"], ["y"])
    with pytest.raises(QuantizerError, match="quantization differ"):
        evaluate(op, graph, [np.zeros((1, 2, 2, 1), np.int8)], "litert")


@pytest.mark.parametrize("kind", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_random_against_reference_loops(seed, kind, padding):
    rng = np.random.default_rng(seed)
    filter_ = tuple(int(v) for v in rng.integers(1, 5, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    h, w = (int(v) for v in rng.integers(1, 10, 2))
    if padding == "VALID":
        h, w = max(h, filter_[0]), max(w, filter_[1])
    c = int(rng.integers(1, 4))
    scale, zp = float(rng.uniform(0.001, 0.1)), int(rng.integers(-128, 128))
    activation = str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    oh, ow = out_size(h, filter_[0], stride[0], padding), out_size(w, filter_[1], stride[1],
                                                                 padding)
    graph, op = pool_graph(kind, (1, h, w, c), (1, oh, ow, c), scale, zp, filter_, stride,
                           padding, activation)
    x = rng.integers(-128, 128, (4, h, w, c)).astype(np.int8)
    lo, hi = activation_range(activation, graph.tensors["y"])
    y = evaluate(op, graph, [x], "litert")
    np.testing.assert_array_equal(y, pool_reference(x, kind, filter_, stride, padding, lo, hi))
    np.testing.assert_array_equal(evaluate(op, graph, [x], "tflm"), y)
    assert y.dtype == np.int8
