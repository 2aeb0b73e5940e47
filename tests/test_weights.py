"""Weight formats (int8, int4, int2, ternary, asymmetric ternary, binary): each against its
defining formula, and the packed memory encoding against the hardware's unpacker."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.unpack import unpack_weights
from quantizer import QuantizerError
from quantizer.compile import pack_weights
from quantizer.weights import quantize_weights


def test_ternary_follows_twn_threshold_and_scale():
    w = np.array([[0.9, -0.05, 0.3, -0.6], [0.0, 0.2, -0.2, 0.01]])
    q = quantize_weights(w, fmt="ternary", per_channel=True)
    # Row 0: mean|W| = 0.4625, Δ = 0.32375: 0.9 and -0.6 survive, scale = 0.75.
    # Row 1: mean|W| = 0.1025, Δ = 0.07175: 0.2 and -0.2 survive, scale = 0.2.
    assert q.values.tolist() == [[1, 0, 0, -1], [0, 1, -1, 0]]
    np.testing.assert_allclose(q.scale, [0.75, 0.2])
    assert q.bits == 2


def test_asymmetric_ternary_has_a_threshold_and_a_level_for_each_sign():
    w = np.array([[0.9, -0.05, 0.3, -0.3, -0.35, 0.8, 0.02]])
    q = quantize_weights(w, fmt="ternary_asym")
    # Positives by size 0.9, 0.8, 0.3, 0.02: (sum of the k largest)²/k is 0.81, 1.445, 1.333,
    # 1.0201, so 0.9 and 0.8 are kept (mean 0.85). Negatives 0.35, 0.3, 0.05: 0.1225, 0.845,
    # 0.4817, so -0.35 and -0.3 (mean 0.325). Levels (p, n) maximise (1.7p + 0.65n)² /
    # (2p² + 2n²): the ratio 0.85/0.325 = 2.6 rounds to 5/2, scale (8.5 + 1.3)/58.
    assert q.values.tolist() == [[5, 0, 0, -2, -2, 5, 0]]
    np.testing.assert_allclose(q.scale, [9.8 / 58])
    assert q.bits == 4


def _best_sign_part(magnitudes: np.ndarray) -> set:
    """The magnitudes (>0) one level fits best, by trying every threshold."""
    candidates = [set(np.flatnonzero(magnitudes >= t)) for t in magnitudes[magnitudes > 0]]
    return max(candidates, key=lambda kept: (magnitudes[list(kept)].sum() ** 2 / len(kept),
                                             -len(kept)), default=set())


def test_asymmetric_ternary_is_the_least_squares_fit_of_its_levels(seed):
    rng = np.random.default_rng(seed)
    w = np.concatenate([rng.gamma(2, 0.3, (6, 20)), -rng.gamma(2, 0.1, (6, 20))], axis=1)
    w = rng.permuted(w, axis=1)   # positive weights three times the negative ones
    q = quantize_weights(w, fmt="ternary_asym", per_channel=True)
    for row, values, scale in zip(w, q.values, q.scale):
        up, down = _best_sign_part(np.maximum(row, 0)), _best_sign_part(np.maximum(-row, 0))
        assert set(np.flatnonzero(values > 0)) == up
        assert set(np.flatnonzero(values < 0)) == down
        p, n = values.max(), -values.min()
        assert set(values.tolist()) == {p, 0, -n} and max(p, n) <= 7

        def error(p, n):
            v = np.zeros_like(row)
            v[list(up)], v[list(down)] = p, -n
            return np.sum((row - (row @ v) / (v @ v) * v) ** 2)
        assert error(p, n) <= min(error(a, b) for a in range(1, 8) for b in range(1, 8)) + 1e-12
        np.testing.assert_allclose(np.sum((row - scale * values) ** 2), error(p, n))
    symmetric = quantize_weights(w, fmt="ternary", per_channel=True)
    assert np.sum((q.dequantize() - w) ** 2) < 0.8 * np.sum((symmetric.dequantize() - w) ** 2)
    tensor = quantize_weights(w, fmt="ternary_asym", per_channel=False)
    assert len(set(tensor.scale)) == 1 and len(np.unique(tensor.values)) == 3


def test_binary_is_sign_times_mean_magnitude():
    w = np.array([[0.5, -1.5, 0.0], [-0.1, -0.2, 0.3]])
    q = quantize_weights(w, fmt="binary", per_channel=False)
    assert q.values.tolist() == [[1, -1, 1], [-1, -1, 1]]
    np.testing.assert_allclose(q.scale, [w.__abs__().mean()] * 2)


@pytest.mark.parametrize("fmt, qmax", [("int8", 127), ("int4", 7), ("int2", 1)])
def test_uniform_formats_stay_in_range_and_beat_plain_absmax(seed, fmt, qmax):
    rng = np.random.default_rng(seed)
    w = rng.standard_t(3, size=(16, 64))  # heavy tails: clipping pays off at low bits
    q = quantize_weights(w, fmt=fmt, per_channel=True)
    assert q.values.min() >= -qmax and q.values.max() <= qmax
    absmax = np.abs(w).max(axis=1) / qmax
    plain = absmax[:, None] * np.clip(np.sign(w / absmax[:, None]) *
                                      np.floor(np.abs(w / absmax[:, None]) + 0.5), -qmax, qmax)
    err, plain_err = np.sum((q.dequantize() - w) ** 2), np.sum((plain - w) ** 2)
    if fmt == "int8":
        np.testing.assert_allclose(q.scale, absmax)  # TFLite: no clipping at 8 bits
    else:
        assert err < plain_err


def test_pow2_scales_and_bias_limited_scales():
    w = np.array([[0.3, -0.2], [0.002, 0.001]])
    q = quantize_weights(w, fmt="int4", pow2=True, min_scale=np.array([0.0, 0.01]))
    assert np.all(np.log2(q.scale) == np.round(np.log2(q.scale)))
    assert q.scale[1] >= 0.01


def test_low_bit_weights_need_int8_networks():
    with pytest.raises(QuantizerError, match="need an int8 network"):
        quantize_weights(np.ones((2, 2)), fmt="int4", dtype="uint8")
    with pytest.raises(QuantizerError, match="unknown weight format 'int3'"):
        quantize_weights(np.ones((2, 2)), fmt="int3")


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_packed_weights_unpack_in_hardware_to_the_same_values(seed, bits):
    rng = np.random.default_rng(seed)
    lanes = 5
    tile = rng.choice([-1, 1], (6, lanes)) if bits == 1 else \
        rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (6, lanes))
    words = pack_weights(tile, bits)
    m = Module()
    word = Signal(bits * lanes)
    out = Signal(8 * lanes)
    m.d.comb += out.eq(unpack_weights(word, bits, lanes))
    got = []

    async def bench(ctx):
        for value in words:
            ctx.set(word, value)
            packed = ctx.get(out)
            got.append([((packed >> (8 * i)) & 0xFF) - (256 if (packed >> (8 * i + 7)) & 1
                                                         else 0) for i in range(lanes)])

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == tile.tolist()


def test_one_bit_memories_refuse_zero_weights():
    with pytest.raises(QuantizerError, match="only binary weights"):
        pack_weights(np.array([[1, 0]]), 1)
