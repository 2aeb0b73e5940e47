"""Random small networks for the soak (:mod:`verif.soak`): a float graph of TFLite operators
drawn from a seeded generator, quantized to int8 (or uint8) the way a user's model is
(:func:`~quantizer.quantize_graph.quantize_graph`, on random calibration inputs).

Every operator the accelerator runs appears — CONV_2D (stride, dilation, SAME and VALID
padding), DEPTHWISE_CONV_2D (depth multiplier 1), AVERAGE_POOL_2D, MAX_POOL_2D, ADD (a residual
branch), MEAN, FULLY_CONNECTED (on a vector, a flattened map or a map), RESHAPE, PAD and
CONCATENATION of channels — and SOFTMAX, which runs on the host, as do the PADs, pools and
concatenations the accelerator cannot take (a channel PAD, an average pool over the padding,
a concatenation it cannot write in place). Maps stay small (at most 12×12×12), so the memories
:func:`~quantizer.sizing.accelerator_config` sizes land on a few powers of two.

The options follow the float ONNX importer's conventions
(:mod:`quantizer.importers.onnx_graph`). Everything is drawn from the ``rng`` passed in, so a
seed makes the same graph on any machine.
"""

from __future__ import annotations

import numpy as np

from quantizer.errors import QuantizerError
from quantizer.golden import conv_output_size
from quantizer.graph import Graph, Operator, Tensor
from quantizer.partition import partition
from quantizer.quantize_graph import WEIGHT_AXIS, quantize_graph
from quantizer.schemes import round_half_away
from quantizer.weights import quantize_weights

#: Operator kinds the generator makes.
KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MEAN",
         "FULLY_CONNECTED", "RESHAPE", "PAD", "CONCATENATION", "SOFTMAX")
#: The largest map side and channel count a generated graph has.
MAX_SIDE, MAX_CHANNELS = 12, 12
#: The largest map a FULLY_CONNECTED flattens (larger ones are averaged first): its weights
#: stay within a few thousand words of weight memory on a 2×2 array.
MAX_FLATTENED = 256
ACTIVATIONS = ("NONE", "NONE", "RELU", "RELU6")


class _Builder:
    """The float graph being drawn: tensors, operators, and the tensor the chain is at."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...]):
        self.rng = rng
        self.tensors = {"input": Tensor("input", (1, *shape), "float32")}
        self.operators: list[Operator] = []
        self.current = "input"

    # -- helpers ------------------------------------------------------------------------
    def shape(self, name: str | None = None) -> tuple[int, ...]:
        return self.tensors[name or self.current].shape

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def constant(self, name: str, data: np.ndarray) -> str:
        self.tensors[name] = Tensor(name, data.shape, "float32",
                                    data=np.asarray(data, np.float32))
        return name

    def emit(self, kind: str, inputs, shape, options: dict) -> str:
        name = f"{kind.lower()}_{len(self.operators)}"
        self.tensors[name] = Tensor(name, shape, "float32")
        self.operators.append(Operator(kind, tuple(inputs), (name,), options))
        self.current = name
        return name

    def weights(self, name: str, shape, fan_in: int, channels: int) -> tuple[str, str]:
        w = self.rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        b = self.rng.normal(0.0, 0.2, channels)
        return self.constant(f"{name}/weights", w), self.constant(f"{name}/bias", b)

    def window(self, h: int, w: int, *, dilations=(1,), kernels=(1, 2, 3, 5)):
        """A random kernel, stride, dilation and padding that leave an output of ``h × w``."""
        for _ in range(20):
            k = self.pick(kernels)
            d = self.pick(dilations) if k > 1 else 1
            s = 1 if d > 1 else self.pick((1, 1, 2))
            padding = self.pick(("SAME", "VALID"))
            if padding == "VALID" and (k - 1) * d + 1 > min(h, w):
                continue
            oh = conv_output_size(h, k, s, d, padding)[0]
            ow = conv_output_size(w, k, s, d, padding)[0]
            return k, s, d, padding, oh, ow
        return 1, 1, 1, "VALID", h, w

    # -- operators ----------------------------------------------------------------------
    def conv(self, x: str, cout: int | None = None, *, same: bool = False) -> str:
        _, h, w, cin = self.shape(x)
        cout = cout or int(self.rng.integers(1, MAX_CHANNELS + 1))
        k, s, d, padding, oh, ow = (self.pick((1, 3)), 1, 1, "SAME", h, w) if same else \
            self.window(h, w, dilations=(1, 1, 2))
        name = f"conv_2d_{len(self.operators)}"
        weights = self.weights(name, (cout, k, k, cin), k * k * cin, cout)
        return self.emit("CONV_2D", (x, *weights), (1, oh, ow, cout),
                         {"stride": (s, s), "dilation": (d, d), "padding": padding,
                          "activation": self.pick(ACTIVATIONS)})

    def depthwise(self, x: str, *, same: bool = False) -> str:
        _, h, w, c = self.shape(x)
        k, s, d, padding, oh, ow = (3, 1, 1, "SAME", h, w) if same else \
            self.window(h, w, dilations=(1, 1, 2), kernels=(2, 3, 3, 5))
        name = f"depthwise_conv_2d_{len(self.operators)}"
        weights = self.weights(name, (1, k, k, c), k * k, c)
        return self.emit("DEPTHWISE_CONV_2D", (x, *weights), (1, oh, ow, c),
                         {"stride": (s, s), "dilation": (d, d), "padding": padding,
                          "activation": self.pick(ACTIVATIONS), "depth_multiplier": 1})

    def pool(self, x: str, kind: str) -> str:
        _, h, w, c = self.shape(x)
        k, s, _, padding, oh, ow = self.window(h, w, kernels=(2, 2, 3))
        if kind == "AVERAGE_POOL_2D" and padding == "SAME" and self.rng.random() < 0.5:
            # SAME averages over the padding run on the host; VALID ones on the accelerator.
            k, s, _, padding, oh, ow = self.window(h, w, kernels=(2, 2, 3))
        return self.emit(kind, (x,), (1, oh, ow, c),
                         {"filter": (k, k), "stride": (s, s), "padding": padding,
                          "activation": "NONE"})

    def pad(self, x: str) -> str:
        _, h, w, c = self.shape(x)
        top, bottom, left, right = (int(v) for v in self.rng.integers(0, 3, 4))
        if h >= MAX_SIDE:   # maps stay small however many PADs follow each other
            top = bottom = 0
        if w >= MAX_SIDE:
            left = right = 0
        channels = (0, int(self.rng.integers(1, 3))) if self.rng.random() < 0.15 or \
            top + bottom + left + right == 0 else (0, 0)
        shape = (1, h + top + bottom, w + left + right, c + sum(channels))
        return self.emit("PAD", (x,), shape, {
            "paddings": ((0, 0), (top, bottom), (left, right), channels)})

    def residual(self, x: str) -> str:
        """A shape-keeping branch of one or two operators, added back to ``x``."""
        c = self.shape(x)[3]
        branch = self.conv(x, c, same=True) if self.rng.random() < 0.6 else \
            self.depthwise(x, same=True)
        if self.rng.random() < 0.3:
            branch = self.depthwise(branch, same=True)
        return self.emit("ADD", (x, branch), self.shape(x),
                         {"activation": self.pick(ACTIVATIONS)})

    def concatenation(self, x: str) -> str:
        """Two same-size branches from ``x`` (or ``x`` itself and one), channels joined."""
        first = x if self.rng.random() < 0.3 else self.conv(x, same=True)
        second = self.conv(x, same=True) if self.rng.random() < 0.7 else \
            self.depthwise(x, same=True)
        _, h, w, c1 = self.shape(first)
        c2 = self.shape(second)[3]
        return self.emit("CONCATENATION", (first, second), (1, h, w, c1 + c2),
                         {"axis": self.pick((3, -1)), "activation": "NONE"})

    def mean(self, x: str) -> str:
        c = self.shape(x)[3]
        keep = bool(self.rng.random() < 0.5)
        return self.emit("MEAN", (x,), (1, 1, 1, c) if keep else (1, c),
                         {"axis": (1, 2), "keep_dims": keep})

    def flatten(self, x: str) -> str:
        return self.emit("RESHAPE", (x,), (1, int(np.prod(self.shape(x)[1:]))), {})

    def dense(self, x: str) -> str:
        k = int(np.prod(self.shape(x)[1:]))
        units = int(self.rng.integers(1, 17))
        name = f"fully_connected_{len(self.operators)}"
        weights = self.weights(name, (units, k), k, units)
        return self.emit("FULLY_CONNECTED", (x, *weights), (1, units),
                         {"activation": self.pick(ACTIVATIONS)})

    def softmax(self, x: str) -> str:
        return self.emit("SOFTMAX", (x,), self.shape(x), {"beta": 1.0})

    # -- the graph ----------------------------------------------------------------------
    def map_step(self) -> None:
        """One random step on the current map."""
        x = self.current
        _, h, w, c = self.shape()
        steps = ["conv"] * 3 + ["depthwise"] * 2 + ["avg", "max", "pad", "residual"]
        if c + 2 <= MAX_CHANNELS and h * w > 1:
            steps.append("concatenation")
        step = self.pick(steps)
        if step == "conv":
            self.conv(x)
        elif step == "depthwise":
            self.depthwise(x)
        elif step in ("avg", "max"):
            self.pool(x, "AVERAGE_POOL_2D" if step == "avg" else "MAX_POOL_2D")
        elif step == "pad":
            self.pad(x)
            # A PAD before a window is done by addressing; a channel PAD runs on the host.
            follow = self.pick(("conv", "depthwise", "max", "avg", "none"))
            if follow == "conv":
                self.conv(self.current)
            elif follow == "depthwise":
                self.depthwise(self.current)
            elif follow != "none":
                self.pool(self.current, "MAX_POOL_2D" if follow == "max" else
                          "AVERAGE_POOL_2D")
        elif step == "residual":
            self.residual(x)
        else:
            self.concatenation(x)
        if self.shape()[3] > MAX_CHANNELS:   # a channel PAD or a concatenation grew it
            self.conv(self.current, int(self.rng.integers(1, MAX_CHANNELS + 1)))

    def tail(self) -> None:
        """How the network ends: a map, a MEAN, a dense head; maybe a SOFTMAX."""
        ends = ["map", "mean", "mean_dense"]
        if int(np.prod(self.shape()[1:])) <= MAX_FLATTENED:
            ends += ["flatten_dense", "flatten_dense", "dense"]
        end = self.pick(ends)
        if end == "mean":
            self.mean(self.current)
        elif end == "mean_dense":
            self.dense(self.mean(self.current))
        elif end == "flatten_dense":
            self.dense(self.flatten(self.current))
            if self.rng.random() < 0.3:
                self.dense(self.current)
        elif end == "dense":   # FULLY_CONNECTED flattens a map itself
            self.dense(self.current)
        if self.rng.random() < 0.2:
            self.softmax(self.current)

    def graph(self) -> Graph:
        return Graph(dict(self.tensors), list(self.operators), ["input"], [self.current],
                     {"source": "verif.random_network"})


def random_float_graph(rng: np.random.Generator) -> Graph:
    """A random float graph of 2 to about 8 operators: a chain over an NHWC map of up to
    12×12×8 (residual ADDs and concatenations branch off it and join again) with a random end,
    or now and then a small MLP on a vector input."""
    if rng.random() < 0.1:
        b = _Builder(rng, (int(rng.integers(2, 65)),))
        for _ in range(int(rng.integers(2, 4))):
            b.dense(b.current)
        if rng.random() < 0.3:
            b.softmax(b.current)
        return b.graph()
    h = int(rng.integers(3, MAX_SIDE + 1))
    w = int(rng.integers(3, MAX_SIDE + 1))
    b = _Builder(rng, (h, w, int(rng.integers(1, 9))))
    target = int(rng.integers(2, 7))
    while len(b.operators) < target - 1:
        b.map_step()
    b.tail()
    if len(b.operators) < 2:
        b.softmax(b.current)
    return b.graph()


def calibration_inputs(rng: np.random.Generator, graph: Graph, samples: int = 8) -> np.ndarray:
    """Float inputs to calibrate ``graph``'s activation ranges on."""
    return rng.normal(0.0, 1.0, (samples, *graph.input.sample_shape))


def low_bit_weights(float_graph: Graph, graph: Graph, fmt: str) -> Graph:
    """``graph`` (quantized from ``float_graph``) with every layer's weights quantized again
    to ``fmt`` (``int4``, …) per output channel and the biases to match, the layers marked
    with the ``weight_format`` the accelerator's weight memory packs."""
    tensors = dict(graph.tensors)
    operators = []
    for op in graph.operators:
        options = dict(op.options)
        if op.kind in WEIGHT_AXIS:
            axis = WEIGHT_AXIS[op.kind]
            w = np.asarray(float_graph.tensors[op.inputs[1]].data, np.float64)
            rows = np.moveaxis(w, axis, 0)
            wq = quantize_weights(rows.reshape(len(rows), -1), fmt=fmt, per_channel=True)
            values = np.moveaxis(wq.values.reshape(rows.shape), 0, axis).astype(np.int8)
            tensors[op.inputs[1]] = Tensor(op.inputs[1], w.shape, "int8", wq.scale, [0], axis,
                                           values)
            s_in = graph.tensors[op.inputs[0]].scalar_scale
            bias = np.asarray(float_graph.tensors[op.inputs[2]].data, np.float64).reshape(-1)
            q = round_half_away(bias / (s_in * wq.scale)).astype(np.int32)
            tensors[op.inputs[2]] = Tensor(op.inputs[2], q.shape, "int32", s_in * wq.scale,
                                           [0], 0, q)
            options["weight_format"] = fmt
        operators.append(Operator(op.kind, op.inputs, op.outputs, options, op.name))
    return Graph(tensors, operators, list(graph.inputs), list(graph.outputs), dict(graph.meta))


def random_graph(rng: np.random.Generator, *, dtype: str = "int8",
                 weight_format: str = "int8") -> Graph:
    """A random integer graph (:func:`random_float_graph`, quantized with random settings on
    random calibration inputs) with at least one operator on the accelerator; ``dtype`` is
    its activations' type, ``weight_format`` its layers' weights (``int4`` and narrower need
    int8)."""
    while True:
        float_graph = random_float_graph(rng)
        per_channel = bool(rng.random() < 0.7)
        scheme = "pow2" if rng.random() < 0.15 else "asymmetric"
        try:
            graph = quantize_graph(float_graph, calibration_inputs(rng, float_graph),
                                   per_channel=per_channel, scheme=scheme, dtype=dtype,
                                   progress=False)
        except QuantizerError:   # a tensor the calibration never moves off 0 (a dead ReLU)
            continue
        if weight_format != "int8":
            graph = low_bit_weights(float_graph, graph, weight_format)
        if partition(graph).layers:
            return graph


def random_inputs(rng: np.random.Generator, graph: Graph, samples: int) -> np.ndarray:
    """``samples`` random integer inputs over the input type's whole range."""
    lo, hi = graph.input.range
    return rng.integers(lo, hi + 1, (samples, *graph.input.sample_shape)).astype(
        graph.input.dtype)
