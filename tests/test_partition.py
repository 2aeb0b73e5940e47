"""Where operators run (quantizer/partition.py) and where their tensors live
(quantizer/memory_plan.py): a Python model of activation memory runs each partitioned graph
step by step, writing every tensor where the plan puts it and checking that every read finds
the values written, so a plan that lets a live tensor be overwritten fails."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hw import ArrayConfig
from quantizer.importers.tflite import load_tflite
from hw import contract
from quantizer.layers import lower
from quantizer.memory_plan import TensorPlacement, activation_layout, plan_memory
from quantizer.partition import ACCELERATOR, HOST, PATCHED_INPUT, partition

MODELS = Path(__file__).parent / "models"
GRAPHS = ["resnet8", "kws_dscnn", "residual", "mobilenet_tiny", "reshape", "fc", "add",
          "softmax", "maxpool", "pad", "pad_vector", "concat"]


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


def test_a_pad_before_a_convolution_is_done_by_addressing():
    graph = load_tflite(MODELS / "pad.tflite")
    part = partition(graph)
    assert [(p.op.kind, p.where, p.note) for p in part.placements] == [
        ("PAD", ACCELERATOR, "padding by addressing"), ("CONV_2D", ACCELERATOR, "")]
    [conv] = part.layers
    # ZeroPadding2D(((1, 2), (2, 0))) of 8x7, then a VALID 3x3: the conv reads the 8x7 input
    # with 1 row above and 2 columns left (the rest below and right follow from 9x7 outputs).
    assert conv.input == graph.inputs[0]
    assert (conv.h, conv.w, conv.pad, conv.oh, conv.ow) == (8, 7, (1, 2), 9, 7)
    assert part.resident() == [graph.inputs[0], conv.output]


def test_pads_before_the_vector_units_operators_are_done_by_addressing():
    part = partition(load_tflite(MODELS / "pad_vector.tflite"))
    assert [(p.op.kind, p.note) for p in part.placements if p.where == HOST] == []
    dw, pool_max, pool_avg = part.layers
    # pad_dw ((1, 1), (0, 2)), pad_max ((1, 0), (1, 1)), pad_avg ((0, 1), (1, 0)): the top and
    # left of each; the max pool's padding reads the ReLU's zero point, int8's lowest value.
    assert [(layer.kind, layer.pad) for layer in part.layers] == [
        ("DEPTHWISE_CONV_2D", (1, 0)), ("MAX_POOL_2D", (1, 1)), ("AVERAGE_POOL_2D", (0, 1))]
    assert pool_max.input == dw.output and pool_avg.input == pool_max.output
    assert len(part.steps) == 1


def test_a_pad_with_another_value_than_its_readers_padding_runs_on_the_host():
    graph = load_tflite(MODELS / "pad_vector.tflite")
    pad = next(op for op in graph.operators if op.kind == "PAD" and
               graph.consumers(op.outputs[0])[0].kind == "MAX_POOL_2D")
    pad.options["constant_value"] = 0  # a max pool's padded taps read -128
    part = partition(graph)
    assert [(p.op.kind, p.where, p.note) for p in part.placements if p.op is pad] == [
        ("PAD", HOST, "a reader does not pad by addressing")]
    assert part.layers[1].input == pad.outputs[0]
    assert [step.where for step in part.steps] == [ACCELERATOR, HOST, ACCELERATOR]


def test_a_concatenation_of_whole_channel_groups_is_written_in_place():
    graph = load_tflite(MODELS / "concat.tflite")  # 4 channels, then 5: one output of 9
    a, b = graph.operators[-1].inputs
    part = partition(graph, rows=4)
    assert [(p.op.kind, p.where, p.note) for p in part.placements] == [
        ("CONV_2D", ACCELERATOR, ""), ("CONV_2D", ACCELERATOR, ""),
        ("CONCATENATION", ACCELERATOR, "concatenation by addressing")]
    out = graph.outputs[0]
    assert part.views == {a: (out, 0), b: (out, 4)} and part.resident() == [
        graph.inputs[0], out]
    plan = plan_memory(part, 4, samples=2)
    pixels = 2 * 9 * 7
    whole, first, second = (plan.tensors[n] for n in (out, a, b))
    assert (first.base, first.words) == (whole.base, pixels)
    assert (second.base, second.words) == (whole.base + pixels, 2 * pixels) == \
        (whole.base + pixels, whole.words - pixels)
    # On 8 rows the first input fills half a word group: the host concatenates.
    placements = partition(graph, rows=8).placements
    assert (placements[-1].where, partition(graph).placements[-1].where) == (HOST, HOST)


def test_layer_steps_give_every_layer_its_own_program():
    part = partition(load_tflite(MODELS / "fc.tflite"), layer_steps=True)
    assert [len(step.layers) for step in part.steps] == [1, 1, 1]


@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("rows", [4, 8])
def test_no_live_tensor_is_overwritten(name, rows, seed):
    graph = load_tflite(MODELS / f"{name}.tflite")
    part = partition(graph, rows=rows)
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
            # Every word as written (a region of patches cannot be decoded back).
            assert words == region.pack(values[name], config), f"{name} was overwritten"

    write(graph.inputs[0])
    for step in part.steps:
        for placement in step.placements:
            reads = placement.layer.reads if placement.where == ACCELERATOR else \
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


def test_a_layer_whose_pixels_exceed_the_partial_sums_runs_in_passes():
    from quantizer.errors import QuantizerError
    from quantizer.layers import LayerPass
    [same] = partition(load_tflite(MODELS / "conv_same.tflite")).layers  # 9x9 SAME, 81 pixels
    assert same.passes(2, 162) == [LayerPass(0, 2, 0, 9)]
    assert same.passes(3, 170) == [LayerPass(0, 2, 0, 9), LayerPass(2, 1, 0, 9)]
    # 40 sums hold 4 rows of 9: bands of rows 0-3, 4-7 and 8 of each sample.
    assert same.passes(2, 40) == [LayerPass(s, 1, r, n) for s in (0, 1)
                                  for r, n in ((0, 4), (4, 4), (8, 1))]
    # The first band reads from input row 0 with the SAME padding row above it; the second
    # from row 3 (output row 4's taps reach one row up), no padding; the second sample starts
    # 81 words on.
    geometry = [same.pass_geometry(p) for p in same.passes(2, 40)]
    assert [(g["in_offset"], g["h"], g["pad_top"], g["oh"], g["out_offset"], g["m"])
            for g in geometry[:4]] == [(0, 9, 1, 4, 0, 36), (27, 6, 0, 4, 36, 36),
                                       (63, 2, 0, 1, 72, 9), (81, 9, 1, 4, 81, 36)]
    with pytest.raises(QuantizerError, match="one output row of 9 pixels"):
        same.passes(1, 8)
    # 11x11 VALID 5x5 stride 2: output row 2 starts at input row 4.
    [strided] = partition(load_tflite(MODELS / "conv_valid_stride2.tflite")).layers
    band = strided.pass_geometry(strided.passes(1, 8)[1])
    assert (band["in_offset"], band["h"], band["pad_top"], band["oh"]) == (44, 7, 0, 2)


def test_square_depthwise_layers_run_on_a_window_unit_of_their_size():
    from hw.contract import LAYER_OPS, descriptor_format
    from quantizer.compile import compile_network
    from quantizer.sizing import accelerator_config
    graph = load_tflite(MODELS / "mobilenet_tiny.tflite")  # 24x24 input, 3x3 depthwise
    config = accelerator_config(graph, 2, rows=4, cols=2)
    assert (config.window, config.window_width) == (3, 14)  # 12x12 SAME: 14 padded columns
    dw = [layer for layer in partition(graph).layers if layer.kind == "DEPTHWISE_CONV_2D"]
    # 12x12 stride 1 SAME, 12x12 → 6x6 stride 2, 6x6 stride 1: padded rows × columns read.
    assert [layer.raster(3) for layer in dw] == [(14, 14), (13, 13), (8, 8)]
    assert all(layer.on_window(config) for layer in dw)
    assert not any(layer.on_window(ArrayConfig(rows=4, cols=2)) for layer in dw)
    assert not dw[0].on_window(ArrayConfig(rows=4, cols=2, window=3, window_width=13))
    compiled = compile_network(graph, config, 2)
    word = descriptor_format(config)
    ops = [word.unpack(d) for d in compiled.program]
    windows = [d for d in ops if d["op"] == LAYER_OPS.index("window")]
    assert [(d["k_tiles"], d["rh"], d["rw"], d["m"], d["pair"], d["quad"])
            for d in windows] == [(1, 14, 14, 2 * 144, 0, 0), (1, 13, 13, 2 * 36, 0, 1),
                                  (1, 8, 8, 2 * 36, 0, 0)]
    # Quad mode reads a memory row of four words, a 2×2 block of an input held in blocks,
    # which the pointwise convolution before it writes so.
    assert windows[1]["in_base"] % 4 == 0 and windows[1]["plane"] == 2 * 12 * 12
    assert all(region.base % 4 == 0 for region in compiled.tensors.values())
    blocked = [name for name, region in compiled.tensors.items() if region.blocks]
    assert blocked == [dw[1].input]
    assert [d["out_blocks"] for d in ops] == [int(layer.output in blocked)
                                             for layer in compiled.partition.layers]


def test_stride_2_depthwise_layers_stream_two_words_a_beat():
    """Pair mode: a stride-2 layer of even width, its raster starting at input column 0,
    streams ⌈rw'/2⌉ beats a row; stride 1, odd widths and builds without a window unit (one
    activation word a row) stream a word a beat."""
    graph = load_tflite(MODELS / "mobilenet_tiny.tflite")
    dw = [layer for layer in partition(graph).layers if layer.kind == "DEPTHWISE_CONV_2D"]
    config = ArrayConfig(rows=4, cols=2, window=3, window_width=14)
    whole = dw[1].passes(1, config.psum_depth)[0]
    assert (dw[1].stride, dw[1].w, dw[1].pad) == ((2, 2), 12, (0, 0))
    assert dw[1].pairs(config, whole) and not dw[0].pairs(config, dw[0].passes(1, 512)[0])
    # 13 raster rows of 13 words (SAME, padding right and below): 7 beats a row.
    assert dw[1].streamed_raster(config, whole) == 13 * 7
    odd = replace(dw[1], w=11)
    assert not odd.pairs(config, whole) and odd.streamed_raster(config, whole) == 13 * 13
    assert not replace(dw[1], pad=(0, 3)).pairs(config, whole)
    assert not dw[1].pairs(ArrayConfig(rows=4, cols=2), whole)


def test_stride_2_depthwise_layers_on_inputs_in_blocks_stream_a_block_a_beat():
    """Quad mode: a layer of strides 2 whose raster starts at input row and column 0 streams
    ⌈rh'/2⌉ × ⌈rw'/2⌉ blocks a sample, if its passes are whole samples of at least K² beats;
    the compiler holds its input in blocks when every layer that reads it can (the pointwise
    convolution that writes it runs in one pass)."""
    from quantizer.memory_plan import blocked_tensors
    graph = load_tflite(MODELS / "mobilenet_tiny.tflite")
    part = partition(graph, rows=4)
    dw = [layer for layer in part.layers if layer.kind == "DEPTHWISE_CONV_2D"]
    config = ArrayConfig(rows=4, cols=2, window=3, window_width=14, psum_depth=512)
    whole = dw[1].passes(1, config.psum_depth)[0]
    assert dw[1].quads(config, 1) and not dw[0].quads(config, 1)
    # 13 raster rows of 13 words: 7 block rows of 7 blocks.
    assert dw[1].streamed_raster(config, whole, quad=True) == 7 * 7
    assert blocked_tensors(part, config, 1) == {dw[1].input}
    # Passes over bands of output rows, padding past K − 1, stride 1 along one axis, and
    # builds without a window unit do not.
    assert not dw[1].quads(replace(config, psum_depth=8), 1)
    assert not replace(dw[1], pad=(3, 0)).quads(config, 1)
    assert not replace(dw[1], stride=(1, 2)).quads(config, 1)
    assert not dw[1].quads(ArrayConfig(rows=4, cols=2), 1)
    assert blocked_tensors(part, ArrayConfig(rows=4, cols=2), 1) == frozenset()


def test_the_window_unit_takes_only_what_it_runs_faster():
    graph = load_tflite(MODELS / "vww_mobilenet.tflite")
    config = ArrayConfig(rows=16, cols=16, window=3, window_width=98)
    layers = partition(graph).layers
    dw = [layer for layer in layers if layer.kind == "DEPTHWISE_CONV_2D"]
    [mean] = [layer for layer in layers if layer.kind == "MEAN"]
    assert len(dw) == 13 and all(layer.on_window(config) for layer in dw)
    # Its global pool averages a 3x3 map: a 3x3 window, but 9 weight words and 9 raster words
    # a column tile take longer than its 9 taps of one pixel.
    assert mean.raster(3) == (3, 3) and not mean.on_window(config)


def test_a_stem_with_few_channels_reads_its_input_as_patches_the_host_writes():
    graph = load_tflite(MODELS / "resnet8.tflite")
    stem = graph.consumers(graph.inputs[0])[0]
    plain = lower(graph, stem)
    # 3x3 taps of 3 channels: 9 K tiles of 16 rows, 3 lanes used in each; as patches 27
    # channels fill 2.
    assert plain.tiles(16, 16)[1] == 9
    placement = partition(graph, rows=16).placements[0]
    layer = placement.layer
    assert placement.note == PATCHED_INPUT and layer.tiles(16, 16)[1] == 2
    assert (layer.kernel.shape, layer.h, layer.w, layer.oh, layer.ow, layer.pad) == \
        ((16, 1, 1, 27), 32, 32, 32, 32, (0, 0))
    assert partition(graph, rows=16).patches == {graph.inputs[0]: layer.patches}
    # On 4 rows patches save only 2 of 9 K tiles for 7 times the words: not worth it.
    unpatched = partition(graph, rows=4).placements[0]
    assert unpatched.note == "" and unpatched.layer.kernel.shape == plain.kernel.shape
    assert partition(graph).patches == {}  # without the rows, nothing is decided


def test_a_patched_layer_computes_its_convolution(seed):
    """The 1x1 convolution of the patches equals the golden model's convolution, for a
    padded stride-1 stem (ResNet-8), a padded stride-2 one (MobileNet), a 10x4 kernel over
    one channel (KWS) and a stem reading through a PAD done by addressing."""
    from quantizer.kernels.conv import conv2d
    rng = np.random.default_rng(seed)
    for name in ("resnet8", "mobilenet_tiny", "kws_dscnn", "pad"):
        graph = load_tflite(MODELS / f"{name}.tflite")
        part = partition(graph, rows=16)
        [layer] = [p.layer for p in part.placements if p.note == PATCHED_INPUT]
        x = rng.integers(-128, 128, (2, *graph.input.sample_shape)).astype(np.int8)
        expected = graph.run(x, all_tensors=True)[layer.output]
        p = layer.params
        got = conv2d(layer.patches.of(x), layer.kernel, layer.bias,
                     input_zero_point=p.input_zero_point, weight_zero_point=p.weight_zero_point,
                     m0=p.m0, shift=p.shift,
                     output_zero_point=p.output_zero_point, act_min=p.act_min,
                     act_max=p.act_max, padding="VALID")
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_a_tensor_read_by_several_layers_is_not_patched():
    graph = load_tflite(MODELS / "add.tflite")  # three convolutions read the input
    assert partition(graph, rows=16).patches == {}


def test_a_region_of_patches_holds_them_and_cannot_be_read_back():
    from quantizer.errors import QuantizerError
    graph = load_tflite(MODELS / "kws_dscnn.tflite")
    part = partition(graph, rows=8)
    region = plan_memory(part, 8, 1).tensors[graph.inputs[0]]
    # 25x5 windows of 10x4 taps of one channel: 40 channels, 5 words a pixel.
    assert (region.map_shape, region.words) == ((25, 5, 40), 5 * 125)
    config = ArrayConfig(rows=8, cols=8)
    x = np.arange(490).reshape(1, 49, 10, 1) % 256 - 128
    words = region.pack(x, config)
    lanes = activation_layout(region.patches.of(x), 8, graph.input.zp)
    assert words == [contract.activation_format(config).pack({"x": row}) for row in lanes]
    with pytest.raises(QuantizerError, match="held as a layer's patches"):
        region.unpack(words, config)
    assert TensorPlacement.from_dict(region.to_dict()) == region
