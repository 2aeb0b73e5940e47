"""Where operators run (quantizer/partition.py) and where their tensors live
(quantizer/memory_plan.py): a Python model of activation memory runs each partitioned graph
step by step, writing every tensor where the plan puts it and checking that every read finds
the values written, so a plan that lets a live tensor be overwritten fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw import ArrayConfig
from quantizer.importers.tflite import load_tflite
from quantizer.memory_plan import plan_memory
from quantizer.partition import ACCELERATOR, HOST, partition

MODELS = Path(__file__).parent / "models"
GRAPHS = ["resnet8", "kws_dscnn", "residual", "mobilenet_tiny", "reshape", "fc", "add",
          "softmax", "maxpool"]


def test_residual_network_runs_on_the_accelerator_up_to_its_softmax():
    part = partition(load_tflite(MODELS / "resnet8.tflite"))
    kinds = {(p.op.kind, p.where) for p in part.placements}
    assert kinds == {("CONV_2D", ACCELERATOR), ("FULLY_CONNECTED", ACCELERATOR),
                     ("ADD", ACCELERATOR), ("AVERAGE_POOL_2D", ACCELERATOR),
                     ("SOFTMAX", HOST)}
    assert [s.where for s in part.steps] == [ACCELERATOR, HOST]
    # The first block's ADD reads the stem's output (the skip) and the block's second conv.
    layers = part.layers
    add = layers[3]
    assert add.kind == "ADD" and set(add.reads) == {layers[0].output, layers[2].output}
    assert part.summary() == ("accelerator: CONV_2D×9, ADD×3, AVERAGE_POOL_2D×1, "
                              "FULLY_CONNECTED×1; host: SOFTMAX×1")


def test_a_flatten_before_a_dense_layer_is_free():
    part = partition(load_tflite(MODELS / "reshape.tflite"))
    assert [(p.op.kind, p.where, p.note) for p in part.placements] == [
        ("CONV_2D", ACCELERATOR, ""), ("RESHAPE", ACCELERATOR, "free re-layout"),
        ("FULLY_CONNECTED", ACCELERATOR, "")]
    conv, dense = part.layers
    assert dense.input == conv.output  # reads the map the flatten would have copied
    assert len(part.steps) == 1


def test_layer_steps_give_every_layer_its_own_program():
    part = partition(load_tflite(MODELS / "fc.tflite"), layer_steps=True)
    assert [len(step.layers) for step in part.steps] == [1, 1, 1]


@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("rows", [4, 8])
def test_no_live_tensor_is_overwritten(name, rows, seed):
    graph = load_tflite(MODELS / f"{name}.tflite")
    part = partition(graph)
    samples = 2
    config = ArrayConfig(rows=rows, cols=4)
    plan = plan_memory(part, rows, samples)
    x = np.random.default_rng(seed).integers(-128, 128, (samples, *graph.input.sample_shape))
    values = graph.run(x.astype(np.int8), all_tensors=True)
    memory: dict[int, int] = {}

    def write(name):
        if name in plan.tensors:
            region = plan.tensors[name]
            memory.update(enumerate(region.pack(values[name], config), region.base))

    def check(name):
        if name in plan.tensors:
            region = plan.tensors[name]
            words = [memory.get(a) for a in range(region.base, region.base + region.words)]
            np.testing.assert_array_equal(region.unpack(words, config), values[name],
                                          err_msg=f"{name} was overwritten")

    write(graph.inputs[0])
    for step in part.steps:
        for placement in step.placements:
            reads = [placement.layer.input] if placement.where == ACCELERATOR else \
                [n for n in placement.op.inputs if n in values]
            for tensor in reads:
                check(tensor)
            write(placement.op.outputs[0])
    for tensor in graph.outputs:
        check(tensor)
    assert plan.words == max(r.base + r.words for r in plan.tensors.values())


def test_dead_tensors_free_their_words_unless_all_are_kept():
    part = partition(load_tflite(MODELS / "resnet8.tflite"))
    reused, kept = plan_memory(part, 8, 1), plan_memory(part, 8, 1, keep_all=True)
    total = sum(r.words for r in kept.tensors.values())
    assert kept.words == total
    assert reused.words < total / 2
    regions = sorted((r.base, r.base + r.words) for r in kept.tensors.values())
    assert all(end <= start for (_, end), (start, _) in zip(regions, regions[1:]))
