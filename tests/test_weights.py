"""Weight formats (int8, int4, int2, ternary, binary): each against its defining formula, and
the packed memory encoding against the hardware's unpacker."""

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
