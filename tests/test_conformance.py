"""The golden model against the real interpreters: every TFLite test model (tests/models, made
by make_models.py with the TensorFlow converter) run on random int8 inputs must give exactly
LiteRT's reference-kernel bytes with ``runtime="litert"`` and TFLite Micro's with
``runtime="tflm"`` — the output and every tensor an operator computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from oracles import litert, tflm
from quantizer.importers.tflite import load_tflite
from tests_paths import DIGITS_CNN

#: Every test model with int8 input and output that mxugen runs (``unsupported`` and the
#: float-interface model have tests of their own in test_tflite_import.py).
MODELS = sorted(p for p in Path(__file__).parent.joinpath("models").glob("*.tflite")
                if p.stem not in ("unsupported", "fc_float_io"))
ORACLES = {"litert": litert, "tflm": tflm}


def _random_inputs(graph, seed: int, samples: int = 48) -> np.ndarray:
    lo, hi = graph.input.range
    return np.random.default_rng(seed).integers(lo, hi + 1, (samples,
                                                             *graph.input.sample_shape))


def _assert_same(name: str, golden: np.ndarray, reference: np.ndarray) -> None:
    golden = golden.reshape(reference.shape)
    differ = golden != reference
    assert not differ.any(), (
        f"{name}: {differ.sum()} of {differ.size} bytes differ, first at "
        f"{np.argwhere(differ)[0].tolist()}: golden {golden[differ][0]}, "
        f"interpreter {reference[differ][0]}")


@pytest.mark.parametrize("runtime", ORACLES)
@pytest.mark.parametrize("path", MODELS + [DIGITS_CNN], ids=lambda p: p.stem)
def test_every_tensor_equals_the_interpreter(path, runtime, seed):
    graph = load_tflite(path)
    x = _random_inputs(graph, seed)
    output, tensors = ORACLES[runtime](path, x, all_tensors=True)
    golden = graph.run(x, runtime=runtime, all_tensors=True)
    for op in graph.operators:
        name = op.outputs[0]
        assert name in tensors, f"the interpreter has no tensor {name}"
        _assert_same(f"{op.kind} {name}", golden[name], tensors[name])
    _assert_same("output", golden[graph.outputs[0]], output)


def test_the_runtimes_differ_and_each_is_matched(seed):
    """FULLY_CONNECTED rounds once in LiteRT and twice in TFLite Micro: on enough samples the
    two interpreters disagree, and each golden runtime sides with its own interpreter."""
    path = next(p for p in MODELS if p.stem == "fc")
    graph = load_tflite(path)
    x = _random_inputs(graph, seed, samples=1500)
    by_litert, by_tflm = litert(path, x), tflm(path, x)
    assert (by_litert != by_tflm).any()
    np.testing.assert_array_equal(graph.run(x, runtime="litert"), by_litert)
    np.testing.assert_array_equal(graph.run(x, runtime="tflm"), by_tflm)
