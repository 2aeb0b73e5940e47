"""Build the small full-integer (int8) TFLite models in this folder.

Run it with the TensorFlow virtualenv, never with the project's own Python (TensorFlow pins its
own numpy/protobuf)::

    python -m venv /opt/tfenv && /opt/tfenv/bin/pip install tensorflow-cpu==2.21.0
    /opt/tfenv/bin/python tests/models/make_models.py            # all models
    /opt/tfenv/bin/python tests/models/make_models.py fc add     # only these

Every model is a small Keras model whose weights and biases are drawn from a fixed-seed random
generator (per-output-channel magnitudes vary, biases are nonzero), converted by the TFLite
converter with full integer quantization (``Optimize.DEFAULT``, ``TFLITE_BUILTINS_INT8``, int8
input and output) calibrated on fixed-seed random data.  The script prints each file's
operators (fused activations in brackets) and rewrites ``README.md`` beside it.  Same TensorFlow
version, same bytes.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import contextlib
import io
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import keras
from keras import layers
from tensorflow.lite.python import schema_py_generated as schema

HERE = Path(__file__).resolve().parent
CALIBRATION_SAMPLES = 64
REGENERATE = "/opt/tfenv/bin/python tests/models/make_models.py"


# --------------------------------------------------------------------------- model definitions

def _in(shape: tuple[int, ...]) -> keras.KerasTensor:
    return keras.Input(shape, batch_size=1, name="input")


def _conv(filters: int, kernel: int, name: str, **kw) -> layers.Conv2D:
    return layers.Conv2D(filters, kernel, name=name, **kw)


def fc() -> keras.Model:
    x = inp = _in((20,))
    x = layers.Dense(16, activation="relu", name="fc1")(x)
    x = layers.Dense(12, activation="relu6", name="fc2")(x)
    x = layers.Dense(10, name="fc3")(x)
    return keras.Model(inp, x, name="fc")


def conv_same() -> keras.Model:
    inp = _in((9, 9, 3))
    x = _conv(8, 3, "conv", padding="same", activation="relu")(inp)
    return keras.Model(inp, x, name="conv_same")


def conv_valid_stride2() -> keras.Model:
    inp = _in((11, 11, 3))
    x = _conv(6, 5, "conv", strides=2, padding="valid", activation="relu6")(inp)
    return keras.Model(inp, x, name="conv_valid_stride2")


def conv_dilated() -> keras.Model:
    inp = _in((10, 10, 4))
    x = _conv(5, 3, "conv", dilation_rate=2, padding="valid")(inp)
    return keras.Model(inp, x, name="conv_dilated")


def conv_per_tensor() -> keras.Model:
    inp = _in((7, 7, 5))
    x = _conv(6, 3, "conv", padding="same", activation="relu")(inp)
    return keras.Model(inp, x, name="conv_per_tensor")


def depthwise() -> keras.Model:
    inp = _in((10, 10, 8))
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6", name="dw")(inp)
    return keras.Model(inp, x, name="depthwise")


def depthwise_mult2() -> keras.Model:
    inp = _in((9, 9, 3))
    x = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="valid", name="dw")(inp)
    return keras.Model(inp, x, name="depthwise_mult2")


def _pool_model(name: str, pool: type) -> keras.Model:
    inp = _in((11, 11, 3))
    x = _conv(6, 3, "conv1", padding="same", activation="relu")(inp)
    x = pool(3, strides=1, padding="same", name="pool3x3_s1_same")(x)
    x = _conv(8, 1, "conv2")(x)
    x = pool(2, strides=2, padding="valid", name="pool2x2_s2_valid")(x)
    return keras.Model(inp, x, name=name)


def avgpool() -> keras.Model:
    return _pool_model("avgpool", layers.AveragePooling2D)


def maxpool() -> keras.Model:
    return _pool_model("maxpool", layers.MaxPooling2D)


def global_avgpool_mean() -> keras.Model:
    inp = _in((7, 9, 5))
    x = _conv(12, 3, "conv", padding="same", activation="relu")(inp)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, x, name="global_avgpool_mean")


def add() -> keras.Model:
    inp = _in((9, 9, 3))
    a = _conv(6, 3, "branch_a", padding="same")(inp)
    b = _conv(6, 3, "branch_b_x6", padding="same")(inp)     # ~6x larger scale than branch_a
    c = _conv(6, 1, "branch_c")(inp)
    s = layers.Add(name="add_plain")([b, a])
    x = layers.Add(name="add_relu")([s, c])
    x = layers.ReLU(name="relu")(x)                          # fused into the second ADD
    return keras.Model(inp, x, name="add")


def _residual_body(inp: keras.KerasTensor, width: int) -> keras.KerasTensor:
    x = _conv(width, 3, "stem", padding="same", activation="relu")(inp)
    for i in range(2):
        y = _conv(width, 3, f"block{i}_conv1", padding="same", activation="relu")(x)
        y = _conv(width, 3, f"block{i}_conv2", padding="same")(y)
        x = layers.Add(name=f"block{i}_add")([x, y])
        x = layers.ReLU(name=f"block{i}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return layers.Dense(10, name="logits")(x)


def residual() -> keras.Model:
    inp = _in((9, 9, 3))
    return keras.Model(inp, _residual_body(inp, 8), name="residual")


def concat() -> keras.Model:
    inp = _in((9, 7, 3))
    a = _conv(4, 3, "branch_a", padding="same", activation="relu")(inp)
    b = _conv(5, 1, "branch_b_x8")(inp)                      # ~8x larger scale than branch_a
    x = layers.Concatenate(axis=-1, name="concat")([a, b])
    return keras.Model(inp, x, name="concat")


def pad() -> keras.Model:
    inp = _in((8, 7, 3))
    x = layers.ZeroPadding2D(((1, 2), (2, 0)), name="pad")(inp)   # asymmetric: cannot be SAME
    x = _conv(4, 3, "conv", padding="valid", activation="relu")(x)
    return keras.Model(inp, x, name="pad")


def pad_vector() -> keras.Model:
    """Explicit PADs before the vector unit's operators: a depthwise conv, a max pool reading
    a ReLU's output (padded with its zero point, the lowest int8) and an average pool."""
    inp = _in((8, 7, 4))
    x = layers.ZeroPadding2D(((1, 1), (0, 2)), name="pad_dw")(inp)
    x = layers.DepthwiseConv2D(3, padding="valid", activation="relu", name="dw")(x)
    x = layers.ZeroPadding2D(((1, 0), (1, 1)), name="pad_max")(x)
    x = layers.MaxPooling2D(2, strides=2, name="max")(x)
    x = layers.ZeroPadding2D(((0, 1), (1, 0)), name="pad_avg")(x)
    x = layers.AveragePooling2D(2, strides=1, name="avg")(x)
    return keras.Model(inp, x, name="pad_vector")


def reshape() -> keras.Model:
    inp = _in((7, 7, 2))
    x = _conv(4, 3, "conv", padding="valid", activation="relu")(inp)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(10, name="fc")(x)
    return keras.Model(inp, x, name="reshape")


def softmax() -> keras.Model:
    inp = _in((16,))
    x = layers.Dense(10, name="logits")(inp)
    x = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, x, name="softmax")


def mobilenet_tiny() -> keras.Model:
    inp = _in((24, 24, 3))
    x = _conv(8, 3, "stem", strides=2, padding="same", activation="relu6")(inp)
    for i, (stride, width) in enumerate([(1, 16), (2, 16), (1, 24)]):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu6",
                                   name=f"dw{i}")(x)
        x = _conv(width, 1, f"pw{i}", activation="relu6")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(10, name="logits")(x)
    x = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, x, name="mobilenet_tiny")


def resnet_tiny() -> keras.Model:
    inp = _in((16, 16, 3))
    x = layers.Softmax(name="softmax")(_residual_body(inp, 8))
    return keras.Model(inp, x, name="resnet_tiny")


def relu_n1_to_1() -> keras.Model:
    inp = _in((12,))
    x = layers.Dense(8, name="fc")(inp)
    x = layers.Lambda(lambda t: tf.clip_by_value(t, -1.0, 1.0), name="clip")(x)
    return keras.Model(inp, x, name="relu_n1_to_1")


def unsupported() -> keras.Model:
    """Operators mxugen does not run (TANH, LOGISTIC, MUL): the importer must name them all."""
    inp = _in((10,))
    a = layers.Dense(8, activation="tanh", name="fc_tanh")(inp)
    b = layers.Dense(8, activation="sigmoid", name="fc_sigmoid")(inp)
    x = layers.Multiply(name="mul")([a, b])
    x = layers.Multiply(name="mul2")([x, a])
    return keras.Model(inp, x, name="unsupported")


def _bn_relu(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def kws_dscnn() -> keras.Model:
    """MLPerf Tiny keyword spotting DS-CNN (49x10 MFCC, 12 classes); Dropout omitted."""
    inp = _in((49, 10, 1))
    x = _bn_relu(_conv(64, (10, 4), "conv", strides=2, padding="same")(inp), "conv")
    for i in range(4):
        x = _bn_relu(layers.DepthwiseConv2D(3, padding="same", name=f"dw{i}")(x), f"dw{i}")
        x = _bn_relu(_conv(64, 1, f"pw{i}")(x), f"pw{i}")
    x = layers.AveragePooling2D((24, 5), name="pool")(x)      # MLPerf's (49 // 2, 10 // 2)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(12, name="logits")(x)
    x = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, x, name="kws_dscnn")


def resnet8() -> keras.Model:
    """MLPerf Tiny image classification ResNet-8 (CIFAR-10 32x32x3, 10 classes)."""
    inp = _in((32, 32, 3))
    x = _bn_relu(_conv(16, 3, "stem", padding="same")(inp), "stem")
    for i, (width, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
        y = _bn_relu(_conv(width, 3, f"stack{i}_conv1", strides=stride, padding="same")(x),
                     f"stack{i}_conv1")
        y = _conv(width, 3, f"stack{i}_conv2", padding="same")(y)
        y = layers.BatchNormalization(name=f"stack{i}_conv2_bn")(y)
        if stride != 1:
            x = _conv(width, 1, f"stack{i}_shortcut", strides=stride, padding="same")(x)
        x = layers.Add(name=f"stack{i}_add")([x, y])
        x = layers.ReLU(name=f"stack{i}_relu")(x)
    x = layers.AveragePooling2D(8, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(10, name="logits")(x)
    x = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, x, name="resnet8")


def vww_mobilenet() -> keras.Model:
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25 at 96x96x3, 2 classes (Keras'
    own MobileNet; the converter folds its ZeroPadding2D into the stride-2 depthwise layers)."""
    inp = _in((96, 96, 3))
    return keras.applications.MobileNet(input_tensor=inp, alpha=0.25, weights=None, classes=2,
                                        name="vww_mobilenet")


def fc_float_io() -> keras.Model:
    """The fc model's shape with float input and output (QUANTIZE / DEQUANTIZE at the edges)."""
    inp = _in((20,))
    x = layers.Dense(16, activation="relu", name="fc1")(inp)
    x = layers.Dense(10, name="fc2")(x)
    return keras.Model(inp, x, name="fc_float_io")


# name -> (builder, calibration distribution, per-channel weights?, what it exercises)
MODELS: dict[str, tuple[Callable[[], keras.Model], str, bool, str]] = {
    "fc": (fc, "uniform11", True, "Dense 20-16 relu-12 relu6-10"),
    "conv_same": (conv_same, "uniform01", True, "3x3 SAME stride 1, relu"),
    "conv_valid_stride2": (conv_valid_stride2, "normal", True, "5x5 VALID stride 2, relu6"),
    "conv_dilated": (conv_dilated, "uniform11", True, "3x3 dilation 2 VALID, no activation"),
    "conv_per_tensor": (conv_per_tensor, "uniform11", False, "3x3 SAME relu, per-tensor weights"),
    "depthwise": (depthwise, "uniform11", True, "depthwise 3x3 SAME, multiplier 1, relu6"),
    "depthwise_mult2": (depthwise_mult2, "normal", True, "depthwise 3x3 VALID stride 2, mult 2"),
    "avgpool": (avgpool, "uniform01", True, "avg pool 3x3/1 SAME, then 2x2/2 VALID"),
    "maxpool": (maxpool, "uniform11", True, "max pool 3x3/1 SAME, then 2x2/2 VALID"),
    "global_avgpool_mean": (global_avgpool_mean, "uniform01", True, "GlobalAveragePooling2D"),
    "add": (add, "uniform11", True, "ADD of branches with different scales; ADD+relu"),
    "residual": (residual, "uniform11", True, "2 residual blocks, global pool, dense"),
    "concat": (concat, "normal", True, "channel concat of branches with different scales"),
    "pad": (pad, "uniform11", True, "asymmetric ZeroPadding2D, VALID conv"),
    "pad_vector": (pad_vector, "uniform11", True, "PADs before depthwise, max and avg pools"),
    "reshape": (reshape, "uniform01", True, "conv, Flatten, Dense"),
    "softmax": (softmax, "normal", True, "Dense, Softmax"),
    "mobilenet_tiny": (mobilenet_tiny, "uniform01", True, "depthwise-separable stack, softmax"),
    "resnet_tiny": (resnet_tiny, "uniform01", True, "residual model at 16x16x3, softmax"),
    "relu_n1_to_1": (relu_n1_to_1, "uniform11", True, "Dense, clip_by_value(-1, 1)"),
    "unsupported": (unsupported, "uniform11", True, "TANH, LOGISTIC, MUL: refused by name"),
    "fc_float_io": (fc_float_io, "uniform11", True, "float input and output around int8"),
    "kws_dscnn": (kws_dscnn, "normal", True, "MLPerf Tiny KWS DS-CNN, BN folded, 24x5 avg pool"),
    "resnet8": (resnet8, "uniform01", True, "MLPerf Tiny ResNet-8, 1x1 stride-2 shortcuts"),
    "vww_mobilenet": (vww_mobilenet, "uniform01", True,
                      "MLPerf Tiny VWW MobileNetV1 0.25, 96x96x3 (PADs folded)"),
}


# --------------------------------------------------------------------------- weights, conversion

def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def randomize(model: keras.Model, rng: np.random.Generator) -> None:
    """He-scaled random kernels with per-output-channel gains in [1/4, 2] (so per-channel scales
    differ), nonzero random biases.  A layer named ``*_xK`` gets its kernel multiplied by K.
    BatchNormalization gets gamma in [1/2, 3/2], beta and moving mean ~ N(0, 0.3), moving
    variance in [1/2, 2] (the converter folds it into the layer before)."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if isinstance(layer, layers.BatchNormalization):
            n = weights[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, n).astype(np.float32),
                               rng.normal(0.0, 0.3, n).astype(np.float32),
                               rng.normal(0.0, 0.3, n).astype(np.float32),
                               rng.uniform(0.5, 2.0, n).astype(np.float32)])
            continue
        kernel, *rest = weights
        if isinstance(layer, layers.DepthwiseConv2D):   # (kh, kw, cin, mult)
            fan_in = kernel.shape[0] * kernel.shape[1]
            gain = np.exp(rng.uniform(np.log(0.25), np.log(2.0), kernel.shape[2:]))
        else:                                           # (..., cin, cout)
            fan_in = int(np.prod(kernel.shape[:-1]))
            gain = np.exp(rng.uniform(np.log(0.25), np.log(2.0), kernel.shape[-1]))
        kernel = rng.normal(0.0, np.sqrt(2.0 / fan_in), kernel.shape) * gain
        if "_x" in layer.name:
            kernel = kernel * float(layer.name.rsplit("_x", 1)[1])
        new = [kernel.astype(np.float32)]
        for bias in rest:
            new.append(rng.normal(0.0, 0.3, bias.shape).astype(np.float32))
        layer.set_weights(new)


def calibration_data(name: str, shape: tuple[int, ...], dist: str) -> np.ndarray:
    rng = np.random.default_rng(_seed(name) + 1)
    size = (CALIBRATION_SAMPLES, *shape)
    if dist == "uniform01":
        return rng.uniform(0.0, 1.0, size).astype(np.float32)
    if dist == "uniform11":
        return rng.uniform(-1.0, 1.0, size).astype(np.float32)
    return rng.normal(0.0, 1.0, size).astype(np.float32)


#: Models whose input and output stay float (the converter adds QUANTIZE and DEQUANTIZE).
FLOAT_IO = {"fc_float_io"}


def convert_int8(model: keras.Model, data: np.ndarray, per_channel: bool = True,
                 float_io: bool = False) -> bytes:
    """Full integer quantization with int8 (or, with ``float_io``, float) input and output,
    calibrated on ``data`` (one batch-1 sample at a time)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    converter.representative_dataset = lambda: ([sample[None]] for sample in data)
    if not per_channel:
        converter._experimental_disable_per_channel = True
    with contextlib.redirect_stdout(io.StringIO()):   # Keras' "Saved artifact at ..." notice
        return converter.convert()


# --------------------------------------------------------------------------- inspection

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_ACT_NAMES = {v: k for k, v in vars(schema.ActivationFunctionType).items()
              if not k.startswith("_")}
_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"}


def describe(flatbuffer: bytes) -> dict:
    """Operators (with fused activation), input/output shapes and quantization, weight
    granularity of a .tflite flatbuffer."""
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    graph = model.subgraphs[0]
    ops, granularity = [], {}
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = _OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        act = getattr(op.builtinOptions, "fusedActivationFunction", None)
        ops.append(f"{name}[{_ACT_NAMES[act]}]" if act else name)
        if name in _WEIGHTED:
            scales = graph.tensors[op.inputs[1]].quantization.scale
            granularity.setdefault(name, set()).add(
                "per-channel" if scales is not None and len(scales) > 1 else "per-tensor")

    def io(index: int) -> dict:
        t = graph.tensors[index]
        q = t.quantization
        quantized = q is not None and q.scale is not None
        return {"shape": tuple(int(d) for d in t.shape),
                "type": [k for k, v in vars(schema.TensorType).items() if v == t.type][0],
                "scale": float(q.scale[0]) if quantized else None,
                "zero_point": int(q.zeroPoint[0]) if quantized else None}

    return {"ops": ops, "inputs": [io(i) for i in graph.inputs],
            "outputs": [io(i) for i in graph.outputs],
            "granularity": {k: "/".join(sorted(v)) for k, v in granularity.items()}}


def compact(ops: list[str]) -> str:
    """``A, A, B`` -> ``A x2, B`` (consecutive repeats only, order kept)."""
    out: list[list] = []
    for op in ops:
        if out and out[-1][0] == op:
            out[-1][1] += 1
        else:
            out.append([op, 1])
    return ", ".join(op if n == 1 else f"{op} x{n}" for op, n in out)


def _shape(io: dict) -> str:
    return "x".join(map(str, io["shape"]))


def _q(io: dict) -> str:
    if io["scale"] is None:
        return io["type"].lower()
    return f"{io['type'].lower()} s={io['scale']:.6g} zp={io['zero_point']}"


NOTES = """
## What the converter did (TensorFlow 2.21.0)

- `GlobalAveragePooling2D` becomes `MEAN` over axes 1, 2 (keep_dims false), never
  `AVERAGE_POOL_2D`: hence the name `global_avgpool_mean`.
- `FULLY_CONNECTED` weights are per-channel (one scale per output unit) by default, like
  `CONV_2D` and `DEPTHWISE_CONV_2D`.  `converter._experimental_disable_per_channel = True`
  (`conv_per_tensor`) makes them per-tensor.
- Keras `relu`/`relu6` activations fuse into `CONV_2D`, `DEPTHWISE_CONV_2D` and
  `FULLY_CONNECTED`; a `ReLU` layer after `Add` fuses into `ADD`; `tf.clip_by_value(x, -1, 1)`
  after a `Dense` fuses into `FULLY_CONNECTED` as `RELU_N1_TO_1`.
- A dilated `Conv2D` stays one `CONV_2D` with dilation factors 2 (no `SPACE_TO_BATCH_ND`).
- The asymmetric `ZeroPadding2D` stays a separate `PAD` (int8 padding uses the zero point);
  `Flatten` becomes `RESHAPE` to (1, N) before `FULLY_CONNECTED`.
- `BatchNormalization` (`kws_dscnn`, `resnet8`) folds into the `CONV_2D` or
  `DEPTHWISE_CONV_2D` before it, and the `ReLU` after it fuses too.  The fused tensor's name
  joins every folded TensorFlow op's name with `;`: up to 310 characters here (more than a
  file name may have once non-alphanumerics become `_` and `.npy` is added).
- `kws_dscnn`'s `AveragePooling2D((24, 5))` on its 25x5 map stays one `AVERAGE_POOL_2D`
  (VALID, the last row unused); `resnet8`'s 1x1 stride-2 shortcut is a `CONV_2D` with no
  activation feeding `ADD[RELU]`.
- `CONCATENATION`: the converter gives both inputs the output's scale and zero point (int8
  concatenation requires it), so the two branches do not keep different scales; each branch's
  `CONV_2D` requantizes straight into the shared scale.
- `ADD` in `add`: the first operand (a `CONV_2D` used only by that `ADD`) was given the `ADD`
  output's scale and zero point; the second operand keeps its own, so both `ADD`s still rescale
  operands of different scales.

## LiteRT and TFLite Micro

`python tests/oracles.py` runs every model through both on 256 random int8 inputs.  With
ai-edge-litert 2.3.0 (`BUILTIN_REF`) and tflite-micro 0.dev20261023182759 every operator agrees
bit for bit except `FULLY_CONNECTED`, which differs by 1 in about 0.15% of its outputs:
LiteRT's reference `FULLY_CONNECTED` (per-channel and per-tensor) rounds once,
`(acc * M + 2^(30-shift)) >> (31-shift)`, where TFLite Micro (and LiteRT's own `CONV_2D`) use
the double rounding `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, M), -shift)`.
Differences downstream of a `FULLY_CONNECTED` (e.g. in `SOFTMAX` outputs) follow from it.
"""


def write_readme(info: dict[str, dict]) -> None:
    rows = []
    for name, d in info.items():
        gran = ", ".join(f"{k}: {v}" for k, v in d["granularity"].items()) or "no weights"
        rows.append(f"| `{name}.tflite` | {d['size']} | {compact(d['ops'])} | "
                    f"{_shape(d['inputs'][0])} ({_q(d['inputs'][0])}) | "
                    f"{_shape(d['outputs'][0])} ({_q(d['outputs'][0])}) | {gran} | "
                    f"{d['what']} |")
    text = f"""# Test models

Small full-integer (int8) TFLite models built from random-weight Keras models by
`make_models.py` with TensorFlow {tf.__version__} (Keras {keras.__version__}): `Optimize.DEFAULT`,
`TFLITE_BUILTINS_INT8`, int8 input and output, calibrated on {CALIBRATION_SAMPLES} fixed-seed
random samples.  Batch size is 1.  Operators are listed in execution order, the fused activation
in brackets; `xN` marks N consecutive identical operators.  Weight granularity is read from the
file (number of scales of each weighted operator's filter tensor).

Regenerate (outside the project's Python; TensorFlow lives in its own virtualenv):

```sh
python -m venv /opt/tfenv && /opt/tfenv/bin/pip install tensorflow-cpu==2.21.0
{REGENERATE}
```

Run them in the project's Python with `tests/oracles.py` (`litert()` for LiteRT's reference
kernels, `tflm()` for TFLite Micro); `python tests/oracles.py` runs every model through both and
counts the bytes where they differ.

| file | bytes | operators | input (quantization) | output (quantization) | weights | exercises |
| --- | --- | --- | --- | --- | --- | --- |
""" + "\n".join(rows) + "\n" + NOTES
    # Sections other scripts own (make_onnx_quantized.py's) stay as they are.
    readme = HERE / "README.md"
    old = readme.read_text() if readme.exists() else ""
    kept = old[old.index(ONNX_SECTION):] if ONNX_SECTION in old else ""
    readme.write_text(text + ("\n" + kept if kept else ""))


#: The README section make_onnx_quantized.py writes.
ONNX_SECTION = "## Quantized ONNX models"


def main(argv: list[str]) -> int:
    names = argv or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(MODELS)}")
        return 2
    warnings.filterwarnings("ignore")
    tf.get_logger().setLevel("ERROR")
    start = time.perf_counter()
    for name in names:
        builder, dist, per_channel, _ = MODELS[name]
        keras.backend.clear_session()
        keras.utils.set_random_seed(_seed(name))
        model = builder()
        randomize(model, np.random.default_rng(_seed(name)))
        data = calibration_data(name, tuple(model.input_shape[1:]), dist)
        flatbuffer = convert_int8(model, data, per_channel, float_io=name in FLOAT_IO)
        (HERE / f"{name}.tflite").write_bytes(flatbuffer)
    # README and summary always cover every model present.
    info = {}
    for name, (_, _, _, what) in MODELS.items():
        path = HERE / f"{name}.tflite"
        if path.exists():
            flatbuffer = path.read_bytes()
            info[name] = describe(flatbuffer) | {"size": len(flatbuffer), "what": what}
    for name, d in info.items():
        gran = ", ".join(f"{k}: {v}" for k, v in d["granularity"].items()) or "no weights"
        print(f"{name:20s} {d['size']:6d} B  in {_shape(d['inputs'][0])} "
              f"out {_shape(d['outputs'][0])}  [{gran}]\n    {compact(d['ops'])}")
    write_readme(info)
    total = sum(d["size"] for d in info.values())
    print(f"{len(names)} model(s) converted, {len(info)} listed, {total} bytes in all, "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
