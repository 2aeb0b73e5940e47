"""Range calibration from sample data: observers that watch a tensor's values and propose the
real range ``[rmin, rmax]`` to quantize it with.

- :class:`MinMax` — the extremes seen (no clipping).
- :class:`MovingAverageMinMax` — exponential moving average of per-batch extremes.
- :class:`Percentile` — the p-th and (100−p)-th percentiles: clip rare outliers.
- :class:`MSE` — the range, shrunk from the extremes, whose quantize-dequantize round trip has
  the least mean squared error on the data.
- :class:`Entropy` — TensorRT-style KL-divergence calibration: the clipping threshold whose
  128-level quantized histogram of |x| diverges least from the 2048-bin original.

Observers that need the data's distribution keep the values they saw, up to ``max_values``
(a seeded uniform subsample beyond that, so calibration is deterministic and bounded).
"""

from __future__ import annotations

import numpy as np

from .errors import QuantizerError
from .schemes import Scheme, choose_qparams


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise QuantizerError("calibration batch is empty")
    if not np.all(np.isfinite(x)):
        raise QuantizerError("calibration data contains NaN or inf")
    return x


class Observer:
    """Base class: feed batches with :meth:`update`, read the proposal with :meth:`range`."""

    def update(self, x) -> None:
        raise NotImplementedError

    def range(self) -> tuple[float, float]:
        raise NotImplementedError

    def _require_data(self, seen: bool) -> None:
        if not seen:
            raise QuantizerError(f"{type(self).__name__} has seen no data: calibrate first")


class MinMax(Observer):
    def __init__(self):
        self.lo, self.hi = np.inf, -np.inf

    def update(self, x) -> None:
        x = _finite(x)
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    def range(self) -> tuple[float, float]:
        self._require_data(self.lo <= self.hi)
        return self.lo, self.hi


class MovingAverageMinMax(Observer):
    """``r ← r + c·(batch_r − r)`` per batch, starting from the first batch's extremes."""

    def __init__(self, averaging_constant: float = 0.01):
        if not 0 < averaging_constant <= 1:
            raise QuantizerError(f"averaging constant must be in (0, 1], got {averaging_constant}")
        self.c = averaging_constant
        self.lo = self.hi = None

    def update(self, x) -> None:
        x = _finite(x)
        lo, hi = float(x.min()), float(x.max())
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo += self.c * (lo - self.lo)
            self.hi += self.c * (hi - self.hi)

    def range(self) -> tuple[float, float]:
        self._require_data(self.lo is not None)
        return self.lo, self.hi


class _Collecting(Observer):
    def __init__(self, max_values: int = 1 << 20, seed: int = 0):
        self.max_values = max_values
        self.rng = np.random.default_rng(seed)
        self.chunks: list[np.ndarray] = []
        self.count = 0

    def update(self, x) -> None:
        x = _finite(x)
        self.chunks.append(x)
        self.count += x.size
        if self.count > 2 * self.max_values:
            self.chunks = [self.values()]
            self.count = self.chunks[0].size

    def values(self) -> np.ndarray:
        self._require_data(bool(self.chunks))
        values = np.concatenate(self.chunks)
        if values.size > self.max_values:
            values = self.rng.choice(values, self.max_values, replace=False)
        return values


class Percentile(_Collecting):
    def __init__(self, percentile: float = 99.99, **kwargs):
        if not 50 < percentile <= 100:
            raise QuantizerError(f"percentile must be in (50, 100], got {percentile}")
        super().__init__(**kwargs)
        self.percentile = percentile

    def range(self) -> tuple[float, float]:
        values = self.values()
        return (float(np.percentile(values, 100 - self.percentile)),
                float(np.percentile(values, self.percentile)))


class MSE(_Collecting):
    """Search ``alpha · [min, max]`` for alpha in (0, 1] (``steps`` candidates)."""

    def __init__(self, scheme: Scheme = "asymmetric", dtype: str = "int8", steps: int = 100,
                 **kwargs):
        super().__init__(**kwargs)
        self.scheme, self.dtype, self.steps = scheme, dtype, steps

    def error(self, values: np.ndarray, lo: float, hi: float) -> float:
        qp = choose_qparams(lo, hi, scheme=self.scheme, dtype=self.dtype)
        return float(np.mean((values - qp.dequantize(qp.quantize(values))) ** 2))

    def range(self) -> tuple[float, float]:
        values = self.values()
        lo, hi = float(min(values.min(), 0.0)), float(max(values.max(), 0.0))
        if lo == hi:
            return lo, hi
        alphas = np.linspace(1.0 / self.steps, 1.0, self.steps)
        errors = [self.error(values, a * lo, a * hi) for a in alphas]
        best = alphas[int(np.argmin(errors))]
        return best * lo, best * hi


class Entropy(_Collecting):
    """KL-divergence threshold on |x| (2048 bins quantized to 128 levels), as in TensorRT's
    entropy calibrator; the range is ``[-t, t]`` cut to the observed extremes."""

    def __init__(self, bins: int = 2048, levels: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.bins, self.levels = bins, levels

    def threshold(self) -> float:
        magnitudes = np.abs(self.values())
        top = float(magnitudes.max())
        if top == 0:
            return 0.0
        hist, edges = np.histogram(magnitudes, bins=self.bins, range=(0.0, top))
        hist = hist.astype(np.float64)
        best_i, best_kl = self.bins, np.inf
        for i in range(self.levels, self.bins + 1):
            p = hist[:i].copy()
            p[-1] += hist[i:].sum()  # clipped values pile into the last bin
            # Merge the i bins into `levels` chunks and spread each chunk's mass evenly over
            # the bins p occupies (what quantizing to `levels` values keeps).
            sizes = np.full(self.levels, i // self.levels)
            sizes[:i % self.levels] += 1
            starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
            occupied = p > 0
            sums = np.add.reduceat(hist[:i], starts)
            counts = np.add.reduceat(occupied.astype(np.float64), starts)
            q = np.repeat(sums / np.maximum(counts, 1), sizes) * occupied
            kl = _kl_divergence(_smooth(p), _smooth(q))
            if kl < best_kl:
                best_i, best_kl = i, kl
        return float(edges[best_i])

    def range(self) -> tuple[float, float]:
        values = self.values()
        t = self.threshold()
        return max(float(values.min()), -t), min(float(values.max()), t)


def _smooth(counts: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Give empty bins a little mass taken evenly from the others (MXNet's calibration
    smoothing), so the divergence stays finite where one histogram has a hole."""
    empty = counts == 0
    if empty.all():
        return counts
    return counts + eps * empty - eps * empty.sum() / (~empty).sum() * ~empty


def _kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


OBSERVERS = {"minmax": MinMax, "moving_average": MovingAverageMinMax,
             "percentile": Percentile, "mse": MSE, "entropy": Entropy}


def make_observer(method: str, **kwargs) -> Observer:
    """An observer by name: ``minmax``, ``moving_average``, ``percentile``, ``mse``, ``entropy``."""
    try:
        return OBSERVERS[method](**kwargs)
    except KeyError:
        raise QuantizerError(f"unknown calibration method {method!r}: choose one of "
                             f"{', '.join(OBSERVERS)}") from None
