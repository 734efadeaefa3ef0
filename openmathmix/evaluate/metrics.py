"""Training-free measures of a subset of a pool: coverage in embedding space, near-duplicates, score and length.

All functions are pure (arrays in, numbers out) and exact: large inputs are processed in blocks of at most
``block`` float32 entries, never sampled.

* Covering radius: ``max over pool rows x of min over subset rows s of |x - s|`` (Euclidean), the quantity K-center
  Greedy minimises; the mean of the same nearest distances says how well the *typical* row is covered.
* Near-duplicate pairs: unordered pairs of distinct subset rows whose embeddings have cosine similarity above a
  threshold (0.95 by default). Reported as a count, as a share of all ``k (k - 1) / 2`` pairs, and as the share of
  subset rows that have at least one such partner. Rows with a zero vector have cosine 0 with every row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import SelectionError

__all__ = ["coverage", "describe", "mean_and_spread", "near_duplicates"]


def _matrix(x, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise SelectionError(f"{what} must be a 2-D matrix (rows x dims), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise SelectionError(f"{what} holds non-finite values; embed those rows again")
    return arr


def _rows_per_block(width: int, block: int) -> int:
    return max(1, int(block) // max(1, width))


def coverage(pool, subset_rows: Sequence[int] | np.ndarray, *, block: int = 1 << 22) -> dict[str, float]:
    """``{"covering_radius", "mean_distance"}`` of the subset (row positions into ``pool``) over every pool row.

    Squared distances come from ``|x|^2 - 2 x.s + |s|^2`` with float32 products and float64 norms, clamped at 0.
    """
    x = _matrix(pool, "pool embeddings")
    idx = np.asarray(subset_rows, dtype=np.int64)
    if idx.ndim != 1 or not len(idx):
        raise SelectionError("the subset is empty: covering radius needs at least one subset row")
    if idx.min() < 0 or idx.max() >= len(x):
        raise SelectionError(f"subset rows must lie in [0, {len(x)})")
    s = x[idx]
    x_norm = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    s_norm = x_norm[idx]
    nearest = np.empty(len(x), dtype=np.float64)
    cols = min(len(s), 4096)  # subset rows per block
    rows = _rows_per_block(cols, block)  # pool rows per block: rows x cols <= block
    for a in range(0, len(x), rows):
        best = np.full(min(rows, len(x) - a), np.inf)
        for c in range(0, len(s), cols):
            d2 = x_norm[a : a + rows, None] - 2.0 * (x[a : a + rows] @ s[c : c + cols].T) + s_norm[None, c : c + cols]
            np.minimum(best, d2.min(axis=1), out=best)
        nearest[a : a + rows] = best
    dist = np.sqrt(np.maximum(nearest, 0.0))
    dist[idx] = 0.0  # a subset row covers itself exactly (the expansion can leave ~1e-3 of rounding there)
    return {"covering_radius": float(dist.max()), "mean_distance": float(dist.mean())}


def near_duplicates(emb, *, threshold: float = 0.95, block: int = 1 << 22) -> dict[str, float | int]:
    """Near-duplicate pairs among the rows of ``emb`` (a subset's embeddings): cosine similarity > ``threshold``."""
    if not -1.0 <= threshold <= 1.0:
        raise SelectionError(f"the cosine threshold must lie in [-1, 1], got {threshold}")
    x = _matrix(emb, "subset embeddings")
    k = len(x)
    norms = np.linalg.norm(x.astype(np.float64), axis=1)
    unit = (x / np.where(norms > 0, norms, 1.0)[:, None].astype(np.float32)).astype(np.float32)
    pairs = 0
    has_partner = np.zeros(k, dtype=bool)
    rows = _rows_per_block(max(k, 1), block)
    for a in range(0, k, rows):
        sim = unit[a : a + rows] @ unit.T
        local = np.arange(sim.shape[0])
        sim[local, a + local] = -np.inf  # a row is not its own duplicate
        hit = sim > threshold
        has_partner[a : a + rows] = hit.any(axis=1)
        upper = np.arange(k)[None, :] > (a + local)[:, None]  # each unordered pair counted once
        pairs += int((hit & upper).sum())
    total = k * (k - 1) // 2
    return {
        "pairs": pairs,
        "pair_share": pairs / total if total else 0.0,
        "row_share": float(has_partner.mean()) if k else 0.0,
    }


def describe(values) -> dict[str, float | None]:
    """``mean``, ``sd`` (population), ``min``, ``median``, ``max`` of a 1-D array; all None when it is empty."""
    arr = np.asarray(values, dtype=np.float64)
    if not arr.size:
        return {"mean": None, "sd": None, "min": None, "median": None, "max": None}
    return {"mean": float(arr.mean()), "sd": float(arr.std()), "min": float(arr.min()),
            "median": float(np.median(arr)), "max": float(arr.max())}


def mean_and_spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Across seeds: ``mean``, ``sd`` (sample, ddof 1; None for one value), ``min``, ``max``, ``n``; Nones skipped."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if not arr.size:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if arr.size > 1 else None,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(arr.size)}
