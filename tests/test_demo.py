"""`mxugen demo` end to end, checked the way a new user would check it: the figures it prints
must agree with the files it wrote, recomputed here independently."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mxugen.cli import main
from quantizer.graph import Graph
from quantizer.layers import dense_chain
from quantizer.report import accuracy

pytestmark = pytest.mark.rtl  # Verilator builds or place and route


def test_accuracy_is_top1_percent():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    assert accuracy(scores, np.array([1, 0, 0, 0])) == 75.0
    with pytest.raises(ValueError):
        accuracy(scores, np.array([1, 0]))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    import contextlib
    import io
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["demo", "--json", "--plot", "-o", str(out)])
    return code, json.loads(stdout.getvalue()), out


def test_demo_rtl_equals_golden_and_int8_tracks_float(demo_run):
    code, figures, out = demo_run
    print(figures)
    assert code == 0
    assert figures["mismatches"] == 0
    assert figures["rtl_accuracy"] == figures["int8_golden_accuracy"]
    assert abs(figures["int8_golden_accuracy"] - figures["float_accuracy"]) <= 1.0
    assert figures["float_accuracy"] > 90


def test_demo_figures_agree_with_its_files(demo_run):
    _, figures, out = demo_run
    graph = Graph.load(out / "net")
    x, labels = np.load(out / "test_inputs.npy"), np.load(out / "test_labels.npy")
    assert figures["test_samples"] == len(x) == len(labels)
    golden = accuracy(graph.run(graph.input.quantize(x)), labels)
    assert figures["int8_golden_accuracy"] == round(golden, 2)
    saved = json.loads((out / "results.json").read_text())
    assert {k: saved[k] for k in figures} == figures
    verilog = (out / "rtl" / "accel.v").read_text()
    assert "mxugen-config:" in verilog.splitlines()[2]
    manifest = json.loads((out / "images" / "manifest.json").read_text())
    assert manifest["samples"] == len(x)
    # The measured cycle count is the sum of the documented per-layer cycle model.
    assert figures["cycles"] == figures["predicted_cycles"]
    macs = len(x) * sum(layer.weight.size for layer in dense_chain(graph))
    assert figures["utilization"] == round(macs / (8 * 8 * figures["cycles"]), 4)
    for path in figures["outputs"]["plots"]:
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
