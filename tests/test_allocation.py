"""Mixed-precision allocation (quantizer.allocation): on a model whose score is known in closed
form, the greedy's outcome has the properties it promises; on the digits MLP, through the CLI,
the network written keeps the budget it was given and is smaller than int8."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from quantizer import QuantizerError
from quantizer.allocation import CANDIDATES, allocate_formats, weight_bits
from quantizer.graph import Graph
from quantizer.layers import dense_chain
from quantizer.report import accuracy
from quantizer.weights import WEIGHT_FORMATS


def _additive_model(rng):
    """Layers of random sizes whose score loses a random penalty per (layer, format),
    narrower formats costing more: ``quantize`` returns the formats themselves."""
    layers = {f"layer{i}": int(rng.integers(10, 5000)) for i in range(5)}
    penalty = {name: dict(zip(CANDIDATES, np.sort(rng.exponential(0.4, len(CANDIDATES)))
                              * rng.uniform(0.2, 3))) for name in layers}

    def score(formats):
        return 90 - sum(penalty[name][fmt] for name, fmt in formats.items() if fmt != "int8")
    return layers, penalty, score


def test_the_allocation_keeps_its_budget_and_no_move_left_would(seed):
    rng = np.random.default_rng(seed)
    layers, penalty, score = _additive_model(rng)
    budget = penalty["layer0"]["ternary"] + float(rng.uniform(0.2, 2))
    result = allocate_formats(dict, score, layers, budget, fixed={"layer0": "ternary"},
                              progress=False)
    assert result.formats["layer0"] == "ternary" and result.baseline == 90
    assert result.score == score(result.formats) >= 90 - budget
    for name in set(layers) - {"layer0"}:
        assert result.sensitivity[name] == pytest.approx(penalty[name])
        for fmt in CANDIDATES:   # any narrower format for any free layer breaks the budget
            if WEIGHT_FORMATS[fmt] < WEIGHT_FORMATS[result.formats[name]]:
                assert score({**result.formats, name: fmt}) < 90 - budget
    # The path ends where the allocation did, narrowing at every move.
    sizes = [bits for _, _, bits, _ in result.path]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    if result.path:
        assert sizes[-1] == weight_bits(result.formats, layers)
    best = min(weight_bits(dict(zip(layers, combo)), layers)
               for combo in itertools.product(("int8", *CANDIDATES), repeat=len(layers))
               if combo[0] == "ternary" and score(dict(zip(layers, combo))) >= 90 - budget)
    print(f"greedy {weight_bits(result.formats, layers)} bits, best {best}")
    assert weight_bits(result.formats, layers) <= 2 * best


def test_a_budget_of_nothing_leaves_int8_unless_a_format_costs_nothing():
    layers = {"a": 100, "b": 100}
    result = allocate_formats(dict, lambda f: 50 - (f["a"] != "int8"), layers, 0,
                              progress=False)
    assert result.formats["a"] == "int8"
    assert WEIGHT_FORMATS[result.formats["b"]] == 2   # b costs nothing at any width
    with pytest.raises(QuantizerError, match="no layer with weights is named c"):
        allocate_formats(dict, lambda f: 0, layers, 1, fixed={"c": "int4"}, progress=False)


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory):
    from mxugen.demo import digits_classifier
    task = digits_classifier(seed=0)
    folder = tmp_path_factory.mktemp("digits")
    task.net.save_npz(folder / "mlp.npz")
    np.savez(folder / "calib.npz", pixels=task.x_train)
    np.savez(folder / "eval.npz", pixels=task.x_test, labels=task.y_test)
    return folder, task


def test_bits_auto_keeps_the_budget_on_the_digits_mlp(digits_files, tmp_path, capsys):
    from mxugen.cli import main
    folder, task = digits_files
    assert main(["quantize", str(folder / "mlp.npz"), "--calib", str(folder / "calib.npz"),
                 "--per-channel", "--bits", "auto", "--max-drop", "0.5", "--layer-bits",
                 "dense2=int8", "--eval", str(folder / "eval.npz"), "--plot", "--json",
                 "-o", str(tmp_path / "net")]) == 0
    summary = json.loads(capsys.readouterr().out)
    chosen = summary["allocation"]
    graph = Graph.load(tmp_path / "net")
    formats = {layer.name: layer.weight_format for layer in dense_chain(graph)}
    assert formats == {row["layer"]: row["format"] for row in chosen["layers"]}
    assert formats["dense2"] == "int8" and set(formats.values()) != {"int8"}
    # The written network, run by the golden model, is within the budget of int8's.
    got = accuracy(graph.run(graph.input.quantize(task.x_test)), task.y_test)
    assert round(got, 2) == chosen["score"] == summary["accuracy"]["int8"]
    assert got >= chosen["int8_score"] - 0.5
    bits = sum(layer.weight.size * WEIGHT_FORMATS[layer.weight_format]
               for layer in dense_chain(graph))
    assert chosen["weight_bytes"] == summary["size"]["weight_bytes_packed"] == -(-bits // 8)
    assert chosen["weight_bytes"] < chosen["weight_bytes_int8"]
    assert any(path.endswith("allocation.png") for path in summary["plots"])


@pytest.mark.parametrize("extra, message", [
    (["--input-range", "0,1", "--bits", "auto"], "give --calib"),
    (["--calib", "CALIB", "--bits", "auto", "--max-drop", "-1"], "--max-drop must be"),
    (["--calib", "CALIB", "--layer-bits", "dense9=int4"], "no layer with weights is named"),
    (["--calib", "CALIB", "--layer-bits", "dense0"], "expected LAYER=FORMAT"),
])
def test_allocation_option_errors(digits_files, tmp_path, capsys, extra, message):
    from mxugen.cli import main
    folder, _ = digits_files
    extra = [str(folder / "calib.npz") if a == "CALIB" else a for a in extra]
    try:
        code = main(["quantize", str(folder / "mlp.npz"), *extra, "-o", str(tmp_path / "net")])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not (tmp_path / "net").exists()
