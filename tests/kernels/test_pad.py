"""PAD and PADV2 against pad.cc EvalInt / micro pad.cc PadEval: the input's integers copied,
the border filled with the output zero point (PAD) or the constant value (PADV2)."""

from __future__ import annotations

import numpy as np
import pytest

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor
from quantizer.kernels import evaluate


def pad_reference(x, paddings, value):
    """The reference Pad loop: every output index reads the input or the pad value."""
    out_shape = [d + b + a for d, (b, a) in zip(x.shape, paddings)]
    y = np.empty(out_shape, np.int64)
    for index in np.ndindex(*out_shape):
        source = tuple(i - b for i, (b, _) in zip(index, paddings))
        inside = all(0 <= s < d for s, d in zip(source, x.shape))
        y[index] = x[source] if inside else value
    return y


def pad_graph(shape, paddings, quant, kind="PAD", constant=None, options=True):
    out_shape = tuple(d + b + a for d, (b, a) in zip(shape, paddings))
    tensors = {"x": Tensor("x", shape, "int8", *quant),
               "p": Tensor("p", (len(shape), 2), "int32", data=np.array(paddings, np.int32)),
               "y": Tensor("y", out_shape, "int8", *quant)}
    inputs = ("x", "p")
    if constant is not None:
        tensors["c"] = Tensor("c", (1,), "int8", *quant, data=np.array([constant], np.int8))
        inputs += ("c",)
    op = Operator(kind, inputs, ("y",), {"paddings": tuple(paddings)} if options else {})
    return Graph(tensors, [op], ["x"], ["y"]), op


def run(graph, op, x, runtime="litert"):
    args = [x] + [graph.tensors[n].data for n in op.inputs[1:]]
    return evaluate(op, graph, args, runtime)


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_pad_fills_with_the_zero_point(runtime):
    graph, op = pad_graph((1, 1, 2, 1), [(0, 0), (1, 0), (0, 1), (0, 0)], (0.1, -7))
    y = run(graph, op, np.array([5, 6], np.int8).reshape(1, 1, 2, 1), runtime)
    assert y[..., 0].tolist() == [[[-7, -7, -7], [5, 6, -7]]]


@pytest.mark.parametrize("runtime", ["litert", "tflm"])
def test_padv2_fills_with_its_constant(runtime):
    graph, op = pad_graph((1, 2), [(0, 0), (2, 1)], (0.1, -7), kind="PADV2", constant=42)
    y = run(graph, op, np.array([[1, 2]], np.int8), runtime)
    assert y.tolist() == [[42, 42, 1, 2, 42]]


def test_paddings_tensor_is_used_without_the_option():
    graph, op = pad_graph((1, 2), [(0, 0), (1, 1)], (0.1, 3), options=False)
    assert run(graph, op, np.array([[1, 2]], np.int8)).tolist() == [[3, 1, 2, 3]]


def test_batch_padding_is_refused():
    graph, op = pad_graph((1, 2), [(1, 0), (0, 0)], (0.1, 0))
    with pytest.raises(QuantizerError, match="batch"):
        run(graph, op, np.zeros((1, 2), np.int8))


@pytest.mark.parametrize("kind", ["PAD", "PADV2"])
def test_random_against_reference_loop(seed, kind):
    rng = np.random.default_rng(seed)
    shape = (1, *(int(v) for v in rng.integers(1, 5, 3)))
    paddings = [(0, 0)] + [tuple(int(v) for v in rng.integers(0, 3, 2)) for _ in range(3)]
    zp = int(rng.integers(-128, 128))
    constant = int(rng.integers(-128, 128)) if kind == "PADV2" else None
    graph, op = pad_graph(shape, paddings, (0.05, zp), kind, constant)
    x = rng.integers(-128, 128, (3, *shape[1:])).astype(np.int8)
    y = run(graph, op, x)
    np.testing.assert_array_equal(y, pad_reference(x, paddings, zp if constant is None
                                                   else constant))
    np.testing.assert_array_equal(run(graph, op, x, "tflm"), y)
    assert y.dtype == np.int8
