"""Calibration observers against their defining formulas."""

from __future__ import annotations

import numpy as np
import pytest

from quantizer import QuantizerError
from quantizer.calibrate import (MSE, Entropy, MinMax, MovingAverageMinMax, Percentile,
                                 make_observer)


def _with_outliers(rng, n=20000):
    x = rng.normal(0, 1, n)
    x[:5] = [40, -35, 60, 25, -50]
    return x


def test_minmax_tracks_extremes_across_batches(seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(size=(8, 5)) for _ in range(4)]
    obs = MinMax()
    for b in batches:
        obs.update(b)
    assert obs.range() == (min(b.min() for b in batches), max(b.max() for b in batches))


def test_moving_average_formula():
    obs = MovingAverageMinMax(averaging_constant=0.5)
    obs.update([-2.0, 4.0])
    obs.update([-4.0, 2.0])
    assert obs.range() == (-3.0, 3.0)


def test_percentile_clips_outliers(seed):
    x = _with_outliers(np.random.default_rng(seed))
    obs = Percentile(99.0)
    obs.update(x)
    assert obs.range() == (np.percentile(x, 1.0), np.percentile(x, 99.0))
    assert obs.range()[1] < 5


def test_mse_range_beats_minmax_on_outliers(seed):
    x = _with_outliers(np.random.default_rng(seed))
    obs = MSE(scheme="asymmetric")
    obs.update(x)
    lo, hi = obs.range()
    assert hi < x.max() and lo > x.min()
    assert obs.error(x, lo, hi) < obs.error(x, x.min(), x.max())


def test_entropy_clips_long_tails_but_not_uniform_data(seed):
    rng = np.random.default_rng(seed)
    tailed = Entropy()
    tailed.update(_with_outliers(rng))
    assert 0 < tailed.threshold() < 20
    uniform = Entropy()
    uniform.update(rng.uniform(-1, 1, 20000))
    assert uniform.threshold() > 0.9


def test_subsampling_is_deterministic(seed):
    x = np.random.default_rng(seed).normal(size=5000)
    ranges = []
    for _ in range(2):
        obs = Percentile(99.0, max_values=1000, seed=3)
        for chunk in np.split(x, 5):
            obs.update(chunk)
        ranges.append(obs.range())
    assert ranges[0] == ranges[1]


@pytest.mark.parametrize("call, message", [
    (lambda: MinMax().range(), r"MinMax has seen no data"),
    (lambda: MinMax().update([1.0, np.nan]), r"NaN or inf"),
    (lambda: Percentile().update([]), r"calibration batch is empty"),
    (lambda: Percentile(30), r"percentile must be in \(50, 100\]"),
    (lambda: MovingAverageMinMax(0), r"averaging constant must be in"),
    (lambda: make_observer("kmeans"), r"unknown calibration method 'kmeans'"),
])
def test_bad_calibration_input(call, message):
    with pytest.raises(QuantizerError, match=message):
        call()
