"""Accuracy recovery (clamping, cross-layer equalization, bias correction) and data-free
calibration: each against its defining formula, then on a model built to need it."""

from __future__ import annotations

import numpy as np
import pytest

from mxugen.demo import digits_classifier
from quantizer import QuantizerError
from quantizer.datafree import data_free_statistics, rectified_gaussian_moments
from quantizer.network import DenseLayer, FloatNetwork
from quantizer.quantize import quantize_network
from quantizer.recovery import clamp_outliers, corrected_bias, equalization_scales, equalize
from quantizer.report import accuracy


@pytest.fixture(scope="module")
def task():
    return digits_classifier(seed=0)


def _int8_accuracy(task, **options) -> float:
    q = quantize_network(options.pop("net", task.net), options.pop("data", task.x_train),
                         progress=False, **options)
    return accuracy(q.run(q.input.quantize(task.x_test)), task.y_test)


def test_clamping_clips_each_channel_at_n_std():
    w = np.array([[0.1, -0.1, 0.1, -0.1, 0.1, 5.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    net = FloatNetwork([DenseLayer(w, np.zeros(2))])
    clamped = clamp_outliers(net, 1.0).layers[0].weight
    for row, out in zip(w, clamped):
        lo, hi = row.mean() - row.std(), row.mean() + row.std()
        np.testing.assert_allclose(out, np.clip(row, lo, hi))
    assert clamped[0, 5] < 5.0 and clamped[0, 0] == 0.1
    with pytest.raises(QuantizerError, match="positive number of standard deviations"):
        clamp_outliers(net, 0)


def test_equalization_scales_balance_channel_ranges():
    w1 = np.array([[4.0, -1.0], [0.5, 0.25], [0.0, 0.0]])
    w2 = np.array([[1.0, 2.0, 3.0], [-0.25, 0.5, 1.0]])
    s = equalization_scales(w1, w2)
    np.testing.assert_allclose(s, [np.sqrt(4.0 / 1.0), np.sqrt(0.5 / 2.0), 1.0])
    r1 = np.abs(w1 / s[:, None]).max(axis=1)[:2]
    r2 = np.abs(w2 * s[None, :]).max(axis=0)[:2]
    np.testing.assert_allclose(r1, r2)


def _badly_scaled(net: FloatNetwork, seed: int = 0) -> FloatNetwork:
    """The same function with layer 0's channels scaled by 10^±2 and layer 1 compensating:
    a model built to need equalization."""
    c = np.exp(np.random.default_rng(seed).uniform(np.log(1e-2), np.log(1e2),
                                                   net.layers[0].weight.shape[0]))
    l0, l1, *rest = net.layers
    return FloatNetwork([DenseLayer(l0.weight * c[:, None], l0.bias * c, "relu", "dense0"),
                         DenseLayer(l1.weight / c[None, :], l1.bias, l1.activation, "dense1"),
                         *rest])


def test_equalization_keeps_the_float_function_and_recovers_accuracy(task):
    bad = _badly_scaled(task.net)
    float_acc = accuracy(task.net.forward(task.x_test), task.y_test)
    np.testing.assert_allclose(equalize(bad).forward(task.x_test), task.net.forward(task.x_test),
                               rtol=1e-9, atol=1e-9)
    for per_channel in (False, True):
        broken = _int8_accuracy(task, net=bad, per_channel=per_channel)
        fixed = _int8_accuracy(task, net=bad, per_channel=per_channel, equalize=True)
        print(f"per_channel={per_channel}: {broken:.2f}% → {fixed:.2f}% (float {float_acc:.2f}%)")
        assert broken < float_acc - 20
        assert abs(fixed - float_acc) <= 1.0


def test_bias_correction_removes_the_expected_output_shift(seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(5, 7))
    w_hat = np.round(w * 2) / 2  # a coarse quantization with a systematic error
    x = rng.normal(1.0, 0.5, (1000, 7))
    b = rng.normal(size=5)
    b_hat = corrected_bias(b, w, w_hat, x.mean(axis=0))
    np.testing.assert_allclose((x @ w_hat.T + b_hat).mean(axis=0), (x @ w.T + b).mean(axis=0))


@pytest.mark.parametrize("weights", ["int2", "ternary"])
def test_bias_correction_recovers_low_bit_accuracy(task, weights):
    plain = _int8_accuracy(task, per_channel=False, weights=weights)
    corrected = _int8_accuracy(task, per_channel=False, weights=weights, bias_correction=True)
    print(f"{weights} per tensor: {plain:.2f}% → {corrected:.2f}% with bias correction")
    assert corrected > plain + 3


def test_rectified_gaussian_moments_match_sampling(seed):
    rng = np.random.default_rng(seed)
    mean, std = np.array([-1.0, 0.0, 0.7]), np.array([0.5, 1.0, 2.0])
    samples = np.maximum(rng.normal(mean, std, (400_000, 3)), 0)
    m, v = rectified_gaussian_moments(mean, std)
    np.testing.assert_allclose(m, samples.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(v, samples.var(axis=0), rtol=0.02, atol=0.005)


def test_data_free_ranges_bound_the_real_activations(task):
    ranges, means = data_free_statistics(task.net, (0.0, 1.0), n_std=4.0)
    assert ranges[0] == (0.0, 1.0) and len(means) == len(task.net.layers)
    observed = task.net.forward(task.x_test, all_layers=True)
    for (lo, hi), values in zip(ranges[1:-1], observed[1:-1]):
        assert lo == 0.0 and 0 < hi  # ReLU layers
        assert np.mean(values <= hi) > 0.99  # 4σ covers nearly everything


def test_data_free_quantization_tracks_float(task):
    float_acc = accuracy(task.net.forward(task.x_test), task.y_test)
    data_free = _int8_accuracy(task, data=None, input_range=(0.0, 1.0))
    print(f"float {float_acc:.2f}%, data-free int8 {data_free:.2f}%")
    assert abs(data_free - float_acc) <= 1.0
    with pytest.raises(QuantizerError, match="give the input's range"):
        quantize_network(task.net, None)
    with pytest.raises(QuantizerError, match="LO < HI"):
        quantize_network(task.net, None, input_range=(1.0, 1.0))


@pytest.mark.parametrize("options", [{}, {"rounding": "double"}, {"scheme": "pow2"},
                                     {"weights": "ternary", "per_channel": False},
                                     {"dtype": "uint8"}])
def test_fake_quantization_predicts_the_integer_network(task, options):
    """Float simulation with the integer path's rounding: the same int8 values but for rare
    rounding ties (float vs 31-bit multiplier), and the same accuracy."""
    from quantizer.fakequant import fake_quant_forward
    q = quantize_network(task.net, task.x_train, progress=False, **options)
    from quantizer.layers import dense_chain
    values = q.run(q.input.quantize(task.x_test), all_tensors=True)
    ints = [values[op.outputs[0]] for op in q.operators]
    fakes = fake_quant_forward(q, task.x_test, all_layers=True)[1:]
    for layer, qi, fq in zip(dense_chain(q), ints, fakes):
        back = np.round(fq / layer.output.scalar_scale) + layer.output.zp
        assert np.max(np.abs(back - qi)) <= 1 and np.mean(back != qi) <= 1e-3, layer.name
    assert accuracy(fakes[-1], task.y_test) == accuracy(ints[-1], task.y_test)
