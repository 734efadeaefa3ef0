"""Pearson r with a 95 % interval: the figure that says how well a quality scorer tracks the real QS.

Two intervals, both for the population correlation of (score, QS) pairs drawn like the evaluated ones:

* ``fisher``: ``tanh(atanh(r) +- z / sqrt(n - 3))`` with z the normal quantile. Exact in the limit for bivariate
  normal pairs and close for most others; undefined for n <= 3.
* ``bootstrap``: percentile interval of r over ``resamples`` draws of n pairs with replacement (seeded). Makes no
  normality assumption; a little narrow for small n.

Pure numpy, no I/O; the shipped ``evaluate`` metric (``pearson_qs.py``) computes its r with ``pearson``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import OpenMathMixError, SchemaError

LEVEL = 0.95
_Z = {0.90: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004}  # normal quantiles


def pearson(x, y) -> float:
    """Pearson r of two equal-length 1-D sequences in float64; nan when undefined (n < 2 or a constant side)."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise SchemaError(f"pearson needs two 1-D sequences of equal length, got shapes {a.shape} and {b.shape}")
    if a.size < 2:
        return math.nan
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    if denom == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float(a @ b) / denom))


def _quantile(level: float) -> float:
    if level not in _Z:
        raise OpenMathMixError(f"interval level must be one of {sorted(_Z)}, got {level}")
    return _Z[level]


def fisher_interval(r: float, n: int, level: float = LEVEL) -> tuple[float, float] | None:
    """Fisher-z interval of a Pearson r from n pairs; None when n <= 3 or r is nan."""
    z = _quantile(level)
    if n <= 3 or not math.isfinite(r):
        return None
    if abs(r) >= 1.0:
        return (r, r)
    centre, half = math.atanh(r), z / math.sqrt(n - 3)
    return (math.tanh(centre - half), math.tanh(centre + half))


def bootstrap_interval(x, y, *, level: float = LEVEL, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of Pearson r (pairs resampled with replacement); None when n <= 3.

    Resamples in which one side is constant (r undefined) are dropped; None when more than half are.
    """
    _quantile(level)
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise SchemaError(f"bootstrap_interval needs two 1-D sequences of equal length, got {a.shape} and {b.shape}")
    n = a.size
    if n <= 3:
        return None
    rs = _resampled_r(a, [b], resamples, np.random.default_rng([seed, 0xB007]))[0]
    rs = rs[np.isfinite(rs)]
    if rs.size < resamples / 2:
        return None
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(np.clip(rs, -1.0, 1.0), [tail, 1.0 - tail])
    return (float(lo), float(hi))


def _resampled_r(y: np.ndarray, xs: list[np.ndarray], resamples: int, rng) -> np.ndarray:
    """r of each x in ``xs`` against y on the same ``resamples`` bootstrap draws of the rows -> [len(xs), resamples]
    (nan where a side is constant)."""
    n = y.size
    out = np.empty((len(xs), resamples), dtype=np.float64)
    for start in range(0, resamples, 256):  # bounded memory: 256 x n indices at a time
        idx = rng.integers(0, n, size=(min(256, resamples - start), n))
        yb = y[idx]
        yb = yb - yb.mean(axis=1, keepdims=True)
        yy = np.einsum("ij,ij->i", yb, yb)
        for j, x in enumerate(xs):
            xa = x[idx]
            xa = xa - xa.mean(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[j, start : start + len(idx)] = np.einsum("ij,ij->i", xa, yb) / np.sqrt(
                    np.einsum("ij,ij->i", xa, xa) * yy)
    return out


def paired_gain(a, b, y, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """How much better scores ``a`` correlate with ``y`` than scores ``b`` do: (r(a, y) - r(b, y), its bootstrap
    standard error with both r computed on the same resampled rows). nan when either r is undefined."""
    ya, aa, ba = (np.asarray(v, dtype=np.float64) for v in (y, a, b))
    if not (ya.shape == aa.shape == ba.shape) or ya.ndim != 1:
        raise SchemaError(f"paired_gain needs three 1-D sequences of equal length, got {aa.shape}, {ba.shape}, "
                          f"{ya.shape}")
    gain = pearson(aa, ya) - pearson(ba, ya)
    if ya.size <= 3 or not math.isfinite(gain):
        return math.nan, math.nan
    ra, rb = _resampled_r(ya, [aa, ba], resamples, np.random.default_rng([seed, 0x6A1]))
    diff = (ra - rb)[np.isfinite(ra - rb)]
    return gain, float(diff.std()) if diff.size >= resamples / 2 else math.nan


@dataclass
class PearsonFigure:
    """r of n (score, QS) pairs, its Fisher-z interval (``ci_low``/``ci_high``) and its bootstrap interval."""

    r: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    boot_low: float | None
    boot_high: float | None
    level: float = LEVEL

    def to_dict(self) -> dict:
        return asdict(self)


def pearson_figure(scores, qs, *, level: float = LEVEL, resamples: int = 2000, seed: int = 0) -> PearsonFigure:
    """r with both intervals; every field None (n kept) when r is undefined."""
    r = pearson(scores, qs)
    n = len(scores)
    if not math.isfinite(r):
        return PearsonFigure(None, n, None, None, None, None, level)
    fisher = fisher_interval(r, n, level) or (None, None)
    boot = bootstrap_interval(scores, qs, level=level, resamples=resamples, seed=seed) or (None, None)
    return PearsonFigure(r, n, fisher[0], fisher[1], boot[0], boot[1], level)
