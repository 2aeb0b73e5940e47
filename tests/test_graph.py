"""The operator graph itself: structure checks, activation ranges, the folder format and its
refusal of damaged or hand-edited files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quantizer import QuantizerError
from quantizer.graph import Graph, Operator, Tensor, activation_range
from quantizer.importers.tflite import load_tflite
from tests_paths import MODELS


def _fc_graph(order=(0, 1)) -> Graph:
    rng = np.random.default_rng(0)
    tensors = {"x": Tensor("x", (1, 4), scale=[0.05], zero_point=[3]),
               "h": Tensor("h", (1, 3), scale=[0.1], zero_point=[-5]),
               "y": Tensor("y", (1, 2), scale=[0.2], zero_point=[1]),
               "w1": Tensor("w1", (3, 4), data=rng.integers(-127, 128, (3, 4)).astype(np.int8),
                            scale=[0.01, 0.02, 0.03], axis=0),
               "w2": Tensor("w2", (2, 3), data=rng.integers(-127, 128, (2, 3)).astype(np.int8),
                            scale=[0.01])}
    ops = [Operator("FULLY_CONNECTED", ("x", "w1", None), ("h",), {"activation": "RELU"}),
           Operator("FULLY_CONNECTED", ("h", "w2", None), ("y",))]
    return Graph(tensors, [ops[i] for i in order], ["x"], ["y"])


def test_operators_must_come_in_topological_order():
    with pytest.raises(QuantizerError, match=r"reads 'h' before any operator writes it"):
        _fc_graph(order=(1, 0))


def test_unknown_tensors_and_missing_outputs_are_named():
    graph = _fc_graph()
    with pytest.raises(QuantizerError, match="reads unknown tensor 'nope'"):
        Graph(graph.tensors, [Operator("RESHAPE", ("nope",), ("y",))], ["x"], ["y"])
    with pytest.raises(QuantizerError, match="no operator computes the graph output 'h'"):
        Graph(graph.tensors, graph.operators[:1] and [], ["x"], ["h"])


def test_fused_activation_bounds_follow_tflite():
    t = Tensor("t", (1, 1), scale=[0.05], zero_point=[-128])
    assert activation_range("NONE", t) == (-128, 127)
    assert activation_range("RELU", t) == (-128, 127)
    assert activation_range("RELU6", t) == (-128, -8)          # 6 / 0.05 = 120 steps
    u = Tensor("u", (1, 1), scale=[0.01], zero_point=[0])
    assert activation_range("RELU_N1_TO_1", u) == (-100, 100)
    with pytest.raises(QuantizerError, match="unknown fused activation 'TANH'"):
        activation_range("TANH", t)


def test_folder_round_trip_is_exact(tmp_path, seed):
    graph = load_tflite(MODELS / "resnet_tiny.tflite")
    loaded = Graph.load(graph.save(tmp_path / "net"))
    x = np.random.default_rng(seed).integers(-128, 128, (4, 16, 16, 3))
    for runtime in ("litert", "tflm"):
        np.testing.assert_array_equal(loaded.run(x, runtime=runtime),
                                      graph.run(x, runtime=runtime))
    assert loaded.summary() == graph.summary()


@pytest.mark.parametrize("edit, message", [
    (lambda doc: doc["tensors"][1].update(shape=[9, 9]), "changed after mxugen wrote it"),
    (lambda doc: doc["tensors"][0].update(zero_point=[4]), "changed after mxugen wrote it"),
    (lambda doc: doc["operators"].reverse(), "changed after mxugen wrote it"),
    (lambda doc: doc.update(version=99), "is not a version 1 mxugen network"),
    (lambda doc: doc.pop("digest"), "changed after mxugen wrote it"),
])
def test_hand_edited_folders_are_refused(tmp_path, edit, message):
    folder = _fc_graph().save(tmp_path / "net")
    doc = json.loads((folder / "graph.json").read_text())
    edit(doc)
    (folder / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(QuantizerError, match=message):
        Graph.load(folder)


def test_damaged_constants_are_refused(tmp_path):
    folder = _fc_graph().save(tmp_path / "net")
    arrays = dict(np.load(folder / "tensors.npz"))
    first = sorted(arrays)[0]
    arrays[first] = arrays[first] + 1
    np.savez(folder / "tensors.npz", **arrays)
    with pytest.raises(QuantizerError, match="changed after mxugen wrote it"):
        Graph.load(folder)
    (folder / "tensors.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(QuantizerError, match="cannot read the network's constants .* the file "
                                             "is damaged or truncated"):
        Graph.load(folder)


def test_inputs_are_checked_and_flat_rows_reshaped():
    graph = load_tflite(MODELS / "conv_same.tflite")
    flat = np.zeros((2, 9 * 9 * 3), np.int8)
    assert graph.run(flat).shape == (2, 9, 9, 8)
    with pytest.raises(QuantizerError, match=r"inputs must have shape \(samples, 9, 9, 3\)"):
        graph.run(np.zeros((2, 10), np.int8))
    with pytest.raises(QuantizerError, match="quantize them first"):
        graph.run(np.zeros((2, 9, 9, 3)))


def test_a_graph_whose_operators_do_not_fit_their_tensors_is_refused_naming_the_first():
    """What a damaged file makes: a declared output shape the operator does not compute, a
    stride of 0. The golden model finds it on one sample of zeros, before any compiling."""
    graph = _fc_graph()
    graph.check_runs()
    graph.tensors["y"] = Tensor("y", (1, 5), scale=[0.2], zero_point=[1])
    with pytest.raises(QuantizerError, match=r"FULLY_CONNECTED .* does not fit its operands, "
                                             r"options or declared output shape"):
        graph.check_runs()
    with pytest.raises(ValueError):  # a run outside the check is the kernel's own business
        graph.run(np.zeros((1, 4), np.int8))


def test_a_declared_shape_the_operator_does_not_compute_is_refused():
    """A PAD whose output the file declares bigger than the padding makes (found with a
    flatbuffer edited by hand: the simulator, not the importer, met it)."""
    from quantizer.importers.tflite import load_tflite
    graph = load_tflite(Path(__file__).parent / "models" / "pad.tflite")
    pad = next(op for op in graph.operators if op.kind == "PAD")
    out = graph.tensors[pad.outputs[0]]
    graph.tensors[out.name] = Tensor(out.name, (1, 99, *out.shape[2:]), out.dtype, out.scale,
                                     out.zero_point, out.axis)
    with pytest.raises(QuantizerError, match=r"PAD .* does not fit .*\(it computes \(\d+, \d+, "
                                             r"\d+\) a sample, the file declares \(99,"):
        graph.check_runs()


def test_a_dynamic_dimension_is_refused():
    with pytest.raises(QuantizerError, match=r"tensor x: shape \(1, -1, 9, 3\) has a dynamic"):
        Tensor("x", (1, -1, 9, 3))


def test_a_redigested_folder_that_is_not_a_network_is_refused(tmp_path):
    """Edited and signed again (the digest is no secret): still checked."""
    from quantizer.graph import _digest
    folder = _fc_graph().save(tmp_path / "net")
    doc = json.loads((folder / "graph.json").read_text())
    doc["outputs"] = []
    with np.load(folder / "tensors.npz") as archive:
        doc["digest"] = _digest(doc, {name: archive[name] for name in archive.files})
    (folder / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(QuantizerError, match="graph.json is damaged .*its inputs, outputs or "
                                             "meta are not a network's"):
        Graph.load(folder)
