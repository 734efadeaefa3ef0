"""Rephrased benchmark items: pool rows whose embedding is very close to a benchmark item's (candidates, not drops).

n-gram decontamination misses a test problem rewritten in other words. Their embeddings stay close, so every pool
row is compared with every benchmark item by cosine similarity and the rows whose nearest item is above a threshold
are listed for a person to look at. Mean-pooled hidden states of a language model share one large common direction
(unrelated texts have cosines of 0.7 and more), so by default both sides are centred on the pool's mean embedding
first; the threshold then applies to the centred cosine. Nothing is dropped: paraphrase and "same kind of problem"
are not told apart reliably this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import SchemaError

BLOCK_ROWS = 8192  # pool rows per similarity block (x benchmark items x 4 bytes of scores)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.float32(1e-12))


def rephrasing_candidates(pool_embeddings: np.ndarray, pool_ids: Sequence[str],
                          benchmarks: Mapping[str, tuple[np.ndarray, Sequence[str]]], *, threshold: float = 0.9,
                          center: bool = True, block_rows: int = BLOCK_ROWS) -> dict[str, Any]:
    """Pool rows whose nearest benchmark item (by cosine) is at or above ``threshold``.

    Args:
        pool_embeddings: (rows, dim) embeddings of the pool rows; ``pool_ids`` their ids.
        benchmarks: name -> ((items, dim) embeddings, item ids), embedded with the same model and template.
        threshold: cosine (after centring) from which a row is a candidate.
        center: subtract the pool's mean embedding from both sides first.

    Returns:
        ``{"threshold", "centered", "rows", "counts": {benchmark: candidates}, "candidates": [{"id", "benchmark",
        "item", "cosine"}, ...]}``, candidates sorted by cosine, highest first (ties by pool order).
    """
    pool = np.asarray(pool_embeddings, dtype=np.float32)
    if pool.ndim != 2 or len(pool) != len(pool_ids):
        raise SchemaError(f"pool embeddings must be (rows, dim) with one id per row; got shape {pool.shape} and "
                          f"{len(pool_ids)} ids")
    names, mats, item_ids, owner = [], [], [], []
    for b, (name, (emb, ids)) in enumerate(benchmarks.items()):
        emb = np.asarray(emb, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != pool.shape[1] or len(emb) != len(ids):
            raise SchemaError(f"benchmark {name!r}: embeddings must be (items, {pool.shape[1]}) with one id per item;"
                              f" got shape {emb.shape} and {len(ids)} ids")
        names.append(name)
        mats.append(emb)
        item_ids += [str(i) for i in ids]
        owner += [b] * len(emb)
    result: dict[str, Any] = {"threshold": threshold, "centered": center, "rows": len(pool),
                              "counts": {name: 0 for name in names}, "candidates": []}
    if not len(pool) or not item_ids:
        return result
    mean = pool.mean(axis=0, dtype=np.float64).astype(np.float32) if center else np.zeros(pool.shape[1], np.float32)
    bench = _unit(np.concatenate(mats) - mean)
    owner_arr = np.asarray(owner)
    best = np.empty(len(pool), dtype=np.float32)
    which = np.empty(len(pool), dtype=np.int64)
    for start in range(0, len(pool), block_rows):
        sims = _unit(pool[start:start + block_rows] - mean) @ bench.T
        which[start:start + len(sims)] = sims.argmax(axis=1)
        best[start:start + len(sims)] = sims.max(axis=1)
    rows = np.flatnonzero(best >= threshold)
    rows = rows[np.argsort(-best[rows], kind="stable")]
    for r in rows:
        b = int(owner_arr[which[r]])
        result["counts"][names[b]] += 1
        result["candidates"].append({"id": str(pool_ids[r]), "benchmark": names[b], "item": item_ids[which[r]],
                                     "cosine": round(float(best[r]), 4)})
    return result
