"""The fully-connected layers of a graph, as the compiler, the fake-quantized model and the
reports see them: weights as a ``(C, K)`` matrix with the integer parameters the golden kernel
derives for the chosen runtime.

:func:`dense_chain` returns a chain of FULLY_CONNECTED operators (the output of one is the
input of the next) in order, or says which operator breaks the chain (the quantizer's
fake-quantized model and reports work on these). :func:`lower` maps one operator onto the
array as an :class:`AcceleratorLayer` convolution (docs/images.md), or says why it cannot;
:mod:`quantizer.partition` decides with it where each operator of a graph runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from hw.contract import PAD_BITS, POW2_M0, SHIFT_MAX, SHIFT_MIN, SPATIAL_BITS, STEP_BITS

from .errors import QuantizerError
from .golden import dtype_range, patches
from .graph import Graph, Operator, Tensor, activation_range
from .kernels.common import MacParams
from .kernels.fully_connected import params as fully_connected_params
from .weights import WEIGHT_FORMATS


@dataclass(frozen=True)
class FullyConnectedLayer:
    """One FULLY_CONNECTED operator with its tensors and integer parameters."""

    op: Operator
    input: Tensor
    weights: Tensor
    output: Tensor
    bias: np.ndarray
    params: MacParams

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def weight(self) -> np.ndarray:
        """``(C, K)``."""
        return self.weights.data

    @property
    def weight_format(self) -> str:
        return self.op.options.get("weight_format", "int8")

    @property
    def weight_bits(self) -> int:
        return WEIGHT_FORMATS[self.weight_format]

    @property
    def weight_scale(self) -> np.ndarray:
        """One scale per output channel."""
        channels = self.weight.shape[0]
        return self.weights.scale if self.weights.per_channel else \
            np.full(channels, self.weights.scale[0])


def dense_chain(graph: Graph, runtime: str = "litert") -> list[FullyConnectedLayer]:
    """The graph's operators as a chain of fully-connected layers, first to last."""
    layers, current = [], graph.inputs[0]
    for op in graph.operators:
        if op.kind != "FULLY_CONNECTED":
            raise QuantizerError(f"{op.kind} {op.name}: fake quantization and the dense "
                                 "reports work on chains of FULLY_CONNECTED operators")
        if op.inputs[0] != current:
            raise QuantizerError(f"{op.name} does not read the previous layer's output: "
                                 "fake quantization and the dense reports work on a chain of "
                                 "layers, one after the other")
        x, w = graph.op_inputs(op)[:2]
        if len(x.sample_shape) != 1 or w.shape[1] != x.sample_shape[0]:
            raise QuantizerError(f"{op.name}: input {x.name} of shape {x.shape} is not a "
                                 f"vector of {w.shape[1]} values")
        bias = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 else None
        layers.append(FullyConnectedLayer(
            op, x, w, graph.op_output(op),
            np.zeros(w.shape[0], np.int64) if bias is None else bias.data.astype(np.int64),
            fully_connected_params(op, graph, runtime)))
        current = op.outputs[0]
    if current != graph.outputs[0]:
        raise QuantizerError("the graph's output is not its last layer's")
    return layers


@dataclass(frozen=True)
class LayerPass:
    """The output pixels one descriptor of a layer computes: ``samples`` samples from
    ``sample`` on, output rows ``row`` … ``row + rows − 1`` of each
    (:meth:`AcceleratorLayer.passes`)."""

    sample: int
    samples: int
    row: int
    rows: int


@dataclass(frozen=True)
class Patches:
    """A map the host writes to activation memory as the patches of one convolution (im2col
    done by the writer, :meth:`AcceleratorLayer.patched`): ``out`` = ``(OH, OW)`` windows of a
    ``kernel`` with ``stride`` and ``dilation``, whose first tap is ``pad`` = (top, left)
    pixels above and left of the ``channels``-channel input; taps outside it hold ``value``
    (the input zero point)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]
    out: tuple[int, int]
    channels: int
    value: int

    @property
    def map_shape(self) -> tuple[int, int, int]:
        """``(OH, OW, KH·KW·Cin)``: the map activation memory holds."""
        return (*self.out, self.kernel[0] * self.kernel[1] * self.channels)

    def of(self, x: np.ndarray) -> np.ndarray:
        """NHWC input ``(N, H, W, Cin)`` → its patches ``(N, OH, OW, KH·KW·Cin)``, taps
        ordered (kh, kw, c) like the weight matrix's K."""
        return patches(np.asarray(x), self.kernel, self.stride, self.dilation, self.pad,
                       self.out, self.value)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Patches:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@dataclass(frozen=True)
class AcceleratorLayer:
    """One operator as the accelerator runs it: a convolution by implicit im2col
    (docs/images.md) over an NHWC input of ``h × w × channels`` per sample, weights
    ``(Cout, KH, KW, Cin)``; a fully-connected layer is the convolution with ``h = w = 1``,
    a FULLY_CONNECTED after a flattening RESHAPE the VALID convolution whose kernel covers
    the whole map (``oh = ow = 1``). ``input`` is the tensor it reads from activation memory
    (for a FULLY_CONNECTED behind flattening RESHAPEs, the tensor they flatten), ``output``
    the one it writes; with ``patches`` the host writes ``input`` as this layer's patches and
    the layer is their 1×1 convolution (:meth:`patched`)."""

    name: str
    kind: str
    input: str
    output: str
    kernel: np.ndarray  # (Cout, KH, KW, Cin)
    bias: np.ndarray
    params: MacParams
    weight_format: str
    h: int
    w: int
    oh: int
    ow: int
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pad: tuple[int, int] = (0, 0)  # top, left
    operation: str = "matmul"
    input2: str | None = None
    add_fields: dict[str, int] | None = None
    patches: Patches | None = None

    @property
    def on_array(self) -> bool:
        """True for a ``matmul`` layer (the systolic array), False for a per-channel one (the
        vector unit's, or the window unit's, :meth:`on_window`)."""
        return self.operation == "matmul"

    @property
    def reads(self) -> tuple[str, ...]:
        """The tensors it reads from activation memory."""
        return (self.input,) if self.input2 is None else (self.input, self.input2)

    @property
    def weight(self) -> np.ndarray:
        """``(Cout, KH·KW·Cin)``: the GEMM's weight matrix, K ordered (kh, kw, c)."""
        return self.kernel.reshape(self.kernel.shape[0], -1)

    @property
    def weight_bits(self) -> int:
        return WEIGHT_FORMATS[self.weight_format]

    @property
    def has_weights(self) -> bool:
        """Whether its weights are the model's: a pool's, a mean's or an add's taps weigh 1,
        which every weight width holds."""
        return self.kind in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")

    @property
    def channels_in(self) -> int:
        return self.kernel.shape[3]

    @property
    def channels_out(self) -> int:
        return self.kernel.shape[0]

    @property
    def pixels(self) -> int:
        """Output pixels per sample: the GEMM's M per sample."""
        return self.oh * self.ow

    @property
    def input_pixels(self) -> int:
        return self.h * self.w

    def tiles(self, rows: int, cols: int) -> tuple[int, int, int]:
        """``(groups, k_tiles, n_tiles)`` on a rows×cols array: input channels in groups of
        ``rows``, one K tile per kernel tap and group, one column tile per ``cols`` output
        channels (docs/images.md). A vector-unit layer has one K tile per tap: each column
        tile reads its own channels."""
        cout, kh, kw, cin = self.kernel.shape
        groups = -(-cin // rows) if self.on_array else 1
        return groups, kh * kw * groups, -(-cout // cols)

    def patched(self, rows: int) -> AcceleratorLayer | None:
        """This array layer as the 1×1 convolution of its input's patches (``Cin' =
        KH·KW·Cin`` channels, taps packed densely into the ``rows`` lanes of a word) when that
        at least halves its K tiles, else None. Only the host can write a tensor that way
        (:func:`~quantizer.partition.partition` decides where it does): it pays for inputs
        with few channels, a stem's 3 colours or 1 audio channel, which fill ``Cin`` of
        ``rows`` lanes a tap."""
        cout, kh, kw, cin = self.kernel.shape
        depth = kh * kw * cin
        if not self.on_array or self.patches is not None or kh * kw == 1 or \
                2 * -(-depth // rows) > self.tiles(rows, 1)[1]:
            return None
        geometry = Patches((kh, kw), self.stride, self.dilation, self.pad, (self.oh, self.ow),
                           cin, self.params.input_zero_point)
        return replace(self, kernel=self.kernel.reshape(cout, 1, 1, depth), h=self.oh,
                       w=self.ow, stride=(1, 1), dilation=(1, 1), pad=(0, 0), patches=geometry)

    def raster(self, window: int, rows: int | None = None) -> tuple[int, int] | None:
        """``(rh, rw)``: the padded input words a sample the window unit of a ``window``×
        ``window`` kernel reads for this layer (``rows`` output rows, default all), or None
        when the window unit does not run it (it runs ``mac`` layers of that kernel size with
        dilation 1: depthwise convolutions, average pools, the MEAN of a map that size)."""
        if not window or self.operation != "mac" or self.dilation != (1, 1) or \
                self.kernel.shape[1:3] != (window, window):
            return None
        rows = self.oh if rows is None else rows
        return (rows - 1) * self.stride[0] + window, (self.ow - 1) * self.stride[1] + window

    def streamed_raster(self, config, p: LayerPass, quad: bool = False) -> int:
        """Beats a sample of pass ``p`` streams to the window unit of ``config``: its padded
        raster (:meth:`raster`) less the top and left padding the unit fills in itself, at
        most ``window − 1`` rows and columns, a word a beat, two in pair mode
        (:meth:`pairs`), or with ``quad`` (its input held in blocks, :meth:`quads`) a 2×2
        block (:class:`hw.addrgen.ActivationAddressGenerator`)."""
        mode = "quad" if quad else "pair" if self.pairs(config, p) else "word"
        return self._raster_beats(config.window, p, mode)

    def _raster_beats(self, window: int, p: LayerPass, mode: str) -> int:
        rh, rw = self.raster(window, p.rows)
        top = self.pass_geometry(p)["pad_top"]
        rows, columns = rh - min(top, window - 1), rw - min(self.pad[1], window - 1)
        if mode == "quad":
            return -(-rows // 2) * -(-columns // 2)
        return rows * (-(-columns // 2) if mode == "pair" else columns)

    def pairs(self, config, p: LayerPass) -> bool:
        """True when pass ``p`` runs on ``config``'s window unit in pair mode, two raster
        words a beat (the descriptor's ``pair``): a layer of column stride 2 whose input rows
        start on two-word boundaries of an activation memory of several words a row (an even
        ``w``; tensors start on a row, :func:`~quantizer.memory_plan.plan_memory`), whose
        raster starts at input column 0 (``pad_left ≤ K − 1``), and whose pass streams at
        least ``K²`` beats (the next column tile's weights load meanwhile). A layer whose
        input is held in blocks runs in quad mode instead (:meth:`quads`)."""
        k = config.window
        return config.act_words_per_row > 1 and self.on_window(config) and \
            self.stride[1] == 2 and self.w % 2 == 0 and self.pad[1] <= k - 1 and \
            p.samples * self._raster_beats(k, p, "pair") >= k * k

    def quads(self, config, samples: int) -> bool:
        """True when this layer can run on ``config``'s window unit in quad mode at
        ``samples`` samples a run, a 2×2 block of its input a beat (the descriptor's
        ``quad``), if its input is held in blocks (which
        :func:`~quantizer.memory_plan.blocked_tensors` decides): strides 2, a raster starting
        at input row and column 0 (padding at most ``K − 1``), passes of whole samples (a
        block never straddles two), each streaming at least ``K²`` beats."""
        k = config.window
        passes = self.passes(samples, config.psum_depth)
        return config.act_words_per_row == 4 and self.on_window(config) and \
            self.stride == (2, 2) and max(self.pad) <= k - 1 and \
            all(p.rows == self.oh and p.samples * self._raster_beats(k, p, "quad") >= k * k
                for p in passes)

    def on_window(self, config) -> bool:
        """True when ``config`` (an :class:`hw.ArrayConfig`) has a window unit that runs this
        layer (:meth:`raster`), its rows no wider than the line buffers, in fewer cycles than
        the vector unit: a column tile's ``K²`` weight words and raster against ``K²`` taps
        of every output pixel (a MEAN of a K×K map is faster tap by tap)."""
        raster = self.raster(config.window)
        taps = config.window ** 2
        return raster is not None and raster[1] <= config.window_width and \
            taps + raster[0] * raster[1] < taps * self.pixels

    def weight_words(self, rows: int, cols: int, per_row: int = 1) -> int:
        """Words of weight memory: ``rows`` per tile on the array, one on the vector unit,
        rounded up to whole rows of a memory array of ``per_row`` words a row (the array
        reads a row a beat, so every layer's weights start on one)."""
        _, k_tiles, n_tiles = self.tiles(rows, cols)
        words = k_tiles * n_tiles * (rows if self.on_array else 1)
        return -(-words // per_row) * per_row

    def passes(self, samples: int, psum_depth: int) -> list[LayerPass]:
        """The layer's output pixels for ``samples`` samples in passes of at most
        ``psum_depth`` (the partial-sum memory holds one sum vector per output pixel of a
        pass): the whole batch, else whole samples, else bands of output rows of one sample."""
        if samples * self.pixels <= psum_depth:
            return [LayerPass(0, samples, 0, self.oh)]
        if self.pixels <= psum_depth:
            per = psum_depth // self.pixels
            return [LayerPass(s, min(per, samples - s), 0, self.oh)
                    for s in range(0, samples, per)]
        rows = psum_depth // self.ow
        if rows == 0:
            raise QuantizerError(f"{self.name}: one output row of {self.ow} pixels does not "
                                 f"fit the partial-sum memory's {psum_depth} words")
        return [LayerPass(s, 1, r, min(rows, self.oh - r))
                for s in range(samples) for r in range(0, self.oh, rows)]

    def pass_geometry(self, p: LayerPass) -> dict[str, int]:
        """Where pass ``p`` reads and writes, as a layer of its own: ``m``, the input rows
        it starts at (``in_offset`` words into each channel group), their count ``h`` and
        padding ``pad_top``, its output rows ``oh`` and its first output word in each group
        (``out_offset``). Every input row a band's taps reach below its first lies in it."""
        first = p.row * self.stride[0] - self.pad[0]
        skipped = max(0, first)
        return {"m": p.samples * p.rows * self.ow, "h": self.h - skipped, "oh": p.rows,
                "pad_top": max(0, -first),
                "in_offset": (p.sample * self.h + skipped) * self.w,
                "out_offset": (p.sample * self.oh + p.row) * self.ow}

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample (real channels and taps, padding taps included);
        for pooling and adds, the values combined."""
        return self.pixels * int(np.prod(self.kernel.shape))


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def map_shape(tensor: Tensor) -> tuple[int, int, int] | None:
    """``(h, w, c)`` of a tensor as activation memory holds it (a vector is a 1×1 map), or
    None for a shape that is neither an NHWC map nor a vector."""
    shape = tensor.sample_shape
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    if len(shape) == 1:
        return 1, 1, int(shape[0])
    return None


def flattened_source(graph: Graph, name: str) -> str:
    """The tensor that RESHAPEs producing ``name`` reshape, followed back to one that is not
    a RESHAPE's output (``name`` itself if none)."""
    producer = graph.producer(name)
    while producer is not None and producer.kind == "RESHAPE":
        name = producer.inputs[0]
        producer = graph.producer(name)
    return name


@dataclass(frozen=True)
class FusedPad:
    """A PAD (or PADV2) of a map's height and width that the layer reading its output does by
    addressing: the layer reads ``source`` and adds ``top``/``left`` to its own padding (the
    bottom and right follow from the output size); its padded taps read ``value``."""

    source: str
    top: int
    left: int
    value: int


def fusable_pad(graph: Graph, name: str) -> FusedPad | None:
    """The PAD producing ``name`` when a layer can do it by addressing: it pads only height
    and width of an NHWC map and keeps the quantization; else None."""
    from .kernels.pad import pad_value_of, paddings_of

    op = graph.producer(name)
    if op is None or op.kind not in ("PAD", "PADV2"):
        return None
    source, out = graph.op_inputs(op)[0], graph.op_output(op)
    if len(source.shape) != 4 or source.is_constant or source.dtype != out.dtype or \
            source.zp != out.zp or source.scalar_scale != out.scalar_scale:
        return None
    inputs = [None if t is None else t.data for t in graph.op_inputs(op)]
    (_, _), (top, _), (left, _), channels = paddings_of(op, inputs, 4)
    if channels != (0, 0):
        return None
    return FusedPad(source.name, top, left, pad_value_of(op, graph, inputs))


#: What the descriptor's convolution fields hold (hw.contract).
_GEOMETRY_LIMITS = {"map size": (1 << SPATIAL_BITS) - 1,
                    "stride or dilation": (1 << STEP_BITS) - 1, "padding": (1 << PAD_BITS) - 1}


def _check_geometry(*, sizes, steps, pads) -> None:
    for what, values in (("map size", sizes), ("stride or dilation", steps), ("padding", pads)):
        limit = _GEOMETRY_LIMITS[what]
        if max(values) > limit:
            raise QuantizerError(f"its {what} {max(values)} exceeds the descriptor's limit "
                                 f"{limit}")


#: Operators :func:`lower` maps onto the accelerator: the array's, then the vector unit's.
ACCELERATOR_KINDS = ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D",
                     "MAX_POOL_2D", "MEAN", "ADD")


def lower(graph: Graph, op: Operator, runtime: str = "litert") -> AcceleratorLayer:
    """``op`` as the layer the accelerator runs; a :class:`QuantizerError` says why it cannot
    (the operator then runs on the host, :mod:`quantizer.partition`)."""
    if op.kind not in ACCELERATOR_KINDS:
        raise QuantizerError(f"the accelerator has no {op.kind} yet")
    x, out = graph.op_inputs(op)[0], graph.op_output(op)
    if x.dtype != out.dtype or x.dtype not in ("int8", "uint8"):
        raise QuantizerError(f"it computes {x.dtype} → {out.dtype}; the accelerator computes "
                             "int8 or uint8 layers")
    return _LOWERINGS[op.kind](graph, op, runtime)


def _input_map(tensor: Tensor) -> tuple[int, int, int]:
    if len(tensor.sample_shape) != 3:
        raise QuantizerError(f"its input {tensor.name} of shape {tensor.shape} is not an NHWC "
                             "map")
    return map_shape(tensor)


def _window(op: Operator, h: int, w: int, kernel: tuple[int, int], *, dilation=(1, 1),
            padding: str = "SAME"):
    """``(oh, ow, stride, pad top/left, padded)`` of a sliding window, within the descriptor's
    limits; ``padding`` is the operator's default (its kernel's); ``padded`` says whether any
    tap falls outside the input."""
    from .golden import conv_output_size

    (sh, sw), (dh, dw) = _pair(op.options.get("stride", 1)), dilation
    padding = op.options.get("padding", padding)
    oh, top = conv_output_size(h, kernel[0], sh, dh, padding)
    ow, left = conv_output_size(w, kernel[1], sw, dw, padding)
    sh, sw = (sh if oh > 1 else 1), (sw if ow > 1 else 1)  # one window: its stride is unused
    _check_geometry(sizes=(h, w, oh, ow, kernel[1]), steps=(sh, sw, dh, dw), pads=(top, left))
    padded = (oh - 1) * sh + (kernel[0] - 1) * dh + 1 > h or \
        (ow - 1) * sw + (kernel[1] - 1) * dw + 1 > w or top or left
    return oh, ow, (sh, sw), (top, left), bool(padded)


def _through_pad(graph: Graph, x: Tensor, h: int, w: int, pad: tuple[int, int],
                 value: int) -> tuple[str, int, int, tuple[int, int]]:
    """``(input, h, w, pad)`` of a layer reading ``x`` (``h × w``, its own padding ``pad``),
    reading instead through the PAD that makes ``x`` when that PAD fills with ``value``, what
    the layer's padded taps read (:func:`fusable_pad`)."""
    fused = fusable_pad(graph, x.name)
    if fused is None or fused.value != value:
        return x.name, h, w, pad
    source_h, source_w, _ = map_shape(graph.tensor(fused.source))
    top, left = pad[0] + fused.top, pad[1] + fused.left
    if max(top, left) > _GEOMETRY_LIMITS["padding"]:
        return x.name, h, w, pad
    return fused.source, source_h, source_w, (top, left)


def _lower_conv(graph: Graph, op: Operator, runtime: str) -> AcceleratorLayer:
    from .kernels.conv import params as conv_params

    x, wt = graph.op_inputs(op)[:2]
    h, w, c = _input_map(x)
    kernel = np.asarray(wt.data, np.int64)
    if kernel.shape[3] != c:
        raise QuantizerError("grouped convolutions do not run on the accelerator")
    dilation = _pair(op.options.get("dilation", 1))
    oh, ow, stride, pad, _ = _window(op, h, w, kernel.shape[1:3], dilation=dilation)
    source, h, w, pad = _through_pad(graph, x, h, w, pad, x.zp)
    return AcceleratorLayer(op.name, op.kind, source, op.outputs[0], kernel,
                            _bias(graph, op, kernel.shape[0]), conv_params(op, graph, runtime),
                            op.options.get("weight_format", "int8"), h, w, oh, ow, stride,
                            dilation, pad)


def _lower_fully_connected(graph: Graph, op: Operator, runtime: str) -> AcceleratorLayer:
    x, wt = graph.op_inputs(op)[:2]
    matrix = np.asarray(wt.data, np.int64)
    k = matrix.shape[1]
    source = graph.tensor(flattened_source(graph, x.name))
    spatial = map_shape(source)
    # FULLY_CONNECTED flattens each sample of its input (TFLite's batch = size / K).
    if int(np.prod(x.sample_shape)) != k or spatial is None or int(np.prod(spatial)) != k:
        raise QuantizerError(f"its input {x.name} of shape {x.shape} does not hold {k} values "
                             "per sample in an NHWC map or a vector")
    if source.zp != x.zp or source.scalar_scale != x.scalar_scale:
        raise QuantizerError(f"the RESHAPE before it changes the quantization of "
                             f"{source.name}")
    h, w, c = spatial
    _check_geometry(sizes=(h, w), steps=(1,), pads=(0,))
    return AcceleratorLayer(op.name, op.kind, source.name, op.outputs[0],
                            matrix.reshape(matrix.shape[0], h, w, c),
                            _bias(graph, op, matrix.shape[0]),
                            fully_connected_params(op, graph, runtime),
                            op.options.get("weight_format", "int8"), h, w, 1, 1)


def _lower_depthwise(graph: Graph, op: Operator, runtime: str) -> AcceleratorLayer:
    from .kernels.depthwise_conv import params as depthwise_params

    x, wt = graph.op_inputs(op)[:2]
    h, w, c = _input_map(x)
    filters = np.asarray(wt.data, np.int64)[0]  # (KH, KW, Cout)
    if filters.shape[2] != c:
        raise QuantizerError(f"its depth multiplier is {filters.shape[2] // c}; the vector unit "
                             "runs depth multiplier 1")
    dilation = _pair(op.options.get("dilation", 1))
    oh, ow, stride, pad, _ = _window(op, h, w, filters.shape[:2], dilation=dilation)
    p = depthwise_params(op, graph, runtime)
    _check_multipliers(p.m0, p.shift)
    source, h, w, pad = _through_pad(graph, x, h, w, pad, x.zp)
    return AcceleratorLayer(op.name, op.kind, source, op.outputs[0],
                            filters.transpose(2, 0, 1)[..., None], _bias(graph, op, c), p,
                            op.options.get("weight_format", "int8"), h, w, oh, ow, stride,
                            dilation, pad, operation="mac")


def _per_channel(value: int, channels: int) -> np.ndarray:
    return np.full(channels, value, np.int64)


def _lower_pool(graph: Graph, op: Operator, runtime: str) -> AcceleratorLayer:
    from .kernels.pooling import PADDING, check_pooling, window_pair

    x, out = graph.op_inputs(op)[0], graph.op_output(op)
    check_pooling(op, x, out, runtime)
    h, w, c = _input_map(x)
    fh, fw = window_pair(op, "filter")
    oh, ow, stride, pad, padded = _window(op, h, w, (fh, fw), padding=PADDING)
    act_min, act_max = activation_range(op.activation, out)
    if op.kind == "MAX_POOL_2D":
        # The maximum of the taps less the zero point, requantized by exactly 1 (m0 = 2^30,
        # shift 1, in every rounding), plus the zero point, clamped.
        params = MacParams(x.zp, 0, x.zp, _per_channel(POW2_M0, c), _per_channel(1, c),
                           act_min, act_max, "double")
        bias, operation = np.zeros(c, np.int64), "max"
    else:
        if padded:
            raise QuantizerError("its window overlaps the padding, so it divides by a count "
                                 "that changes near the edges")
        m0, shift = average_pool_multiplier(fh * fw, dtype_range(x.dtype))
        # The bias adds the zero point back: TFLite rounds the sum of the raw values.
        params = MacParams(x.zp, 0, 0, _per_channel(m0, c), _per_channel(shift, c), act_min,
                           act_max, "double")
        bias, operation = _per_channel(fh * fw * x.zp, c), "mac"
    # The padded taps of a max pool read the lowest value (an explicit PAD with it is free),
    # an average pool's the zero point (its own padding is none, as checked above).
    source, h, w, pad = _through_pad(graph, x, h, w, pad,
                                     x.range[0] if operation == "max" else x.zp)
    return AcceleratorLayer(op.name, op.kind, source, out.name, np.ones((c, fh, fw, 1), np.int64),
                            bias, params, "int8", h, w, oh, ow, stride, (1, 1), pad,
                            operation=operation)


def _lower_mean(graph: Graph, op: Operator, runtime: str) -> AcceleratorLayer:
    from .kernels.mean import ROUNDING, mean_multiplier, resolve_axes

    x, out = graph.op_inputs(op)[0], graph.op_output(op)
    h, w, c = _input_map(x)
    if resolve_axes(op, 4) not in ((1, 2), (2, 1)):
        raise QuantizerError("it averages over other axes than height and width")
    m0, shift = mean_multiplier(x.scalar_scale, out.scalar_scale, h * w)
    _check_multipliers(m0, shift)
    _check_geometry(sizes=(h, w), steps=(1,), pads=(0,))
    params = MacParams(x.zp, 0, out.zp, _per_channel(m0, c), _per_channel(shift, c),
                       *out.range, op.options.get("rounding") or ROUNDING[runtime])
    return AcceleratorLayer(op.name, op.kind, x.name, out.name, np.ones((c, h, w, 1), np.int64),
                            np.zeros(c, np.int64), params, "int8", h, w, 1, 1,
                            operation="mac")


def _lower_add(graph: Graph, op: Operator, runtime: str) -> AcceleratorLayer:
    from .kernels.add import ROUNDING, add_multipliers

    a, b = graph.op_inputs(op)
    out = graph.op_output(op)
    if a.is_constant or b.is_constant or a.shape != b.shape or a.dtype != b.dtype:
        raise QuantizerError("it broadcasts or adds a constant; the vector unit adds two "
                             "tensors of one shape")
    h, w, c = _input_map(a)
    _check_geometry(sizes=(h, w), steps=(1,), pads=(0,))
    (m0_a, shift_a), (m0_b, shift_b), (m0, shift) = add_multipliers(
        a.scalar_scale, b.scalar_scale, out.scalar_scale)
    for value in (shift_a, shift_b):
        if not SHIFT_MIN <= value <= 0:
            raise QuantizerError(f"an input rescaling shift of {value} is outside "
                                 f"{SHIFT_MIN}..0")
    _check_multipliers(m0, shift)
    params = MacParams(a.zp, 0, out.zp, _per_channel(m0, c), _per_channel(shift, c),
                       *activation_range(op.activation, out), ROUNDING[runtime])
    # Two taps, the second from the other input (hw.contract.LAYER_OPS); the weights are unused.
    return AcceleratorLayer(op.name, op.kind, a.name, out.name, np.ones((c, 2, 1, 1), np.int64),
                            np.zeros(c, np.int64), params, "int8", h, w, h, w, (1, 1), (0, 1),
                            operation="add", input2=b.name,
                            add_fields={"zx2": b.zp, "m0_a": m0_a, "shift_a": shift_a,
                                        "m0_b": m0_b, "shift_b": shift_b})


_LOWERINGS = {"CONV_2D": _lower_conv, "FULLY_CONNECTED": _lower_fully_connected,
              "DEPTHWISE_CONV_2D": _lower_depthwise, "AVERAGE_POOL_2D": _lower_pool,
              "MAX_POOL_2D": _lower_pool, "MEAN": _lower_mean, "ADD": _lower_add}


def _check_multipliers(m0, shift) -> None:
    shift = np.asarray(shift)
    if shift.min() < SHIFT_MIN or shift.max() > SHIFT_MAX:
        raise QuantizerError(f"its requantization shift {int(shift.min())}..{int(shift.max())} "
                             f"is outside the parameter word's {SHIFT_MIN}..{SHIFT_MAX}")


def average_pool_multiplier(count: int, value_range: tuple[int, int]) -> tuple[int, int]:
    """``(m0, shift)`` whose double-rounding requantization of every sum of ``count`` values in
    ``value_range`` equals TFLite's average, ``sum / count`` rounded half away from zero
    (checked over every such sum); a :class:`QuantizerError` if none is found."""
    from .fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier

    sums = np.arange(count * value_range[0], count * value_range[1] + 1, dtype=np.int64)
    half = count // 2
    expected = np.where(sums > 0, (sums + half) // count, -((half - sums) // count))
    # Shifts 1 and 0 round once (SRDHM alone, with an m0 below 2^30 where needed); the
    # normalized multiplier of TFLite's QuantizeMultiplier rounds twice.
    for shift in range(1, quantize_multiplier(1 / count)[1] - 1, -1):
        nearest = round(2 ** (31 - shift) / count)
        for m0 in sorted(range(max(nearest - 64, 1), min(nearest + 65, 1 << 31)),
                         key=lambda v: (abs(v - nearest), -v)):
            if np.array_equal(multiply_by_quantized_multiplier(sums, m0, shift, "double"),
                              expected):
                return m0, shift
    raise QuantizerError(f"no requantization divides by {count} exactly")


def _bias(graph: Graph, op: Operator, channels: int) -> np.ndarray:
    tensor = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    return np.zeros(channels, np.int64) if tensor is None else \
        np.asarray(tensor.data, np.int64).reshape(-1)
