"""Drawing the two samples of the one-shot quality score (Appendix A): the test set Dt and the prompt set Dp.

Dt: K-center Greedy over the embeddings of the test pool (or a seeded random draw), `n2` rows. Dp: up to `n1` rows
per source, uniform without replacement, seeded per source so a source's sample does not depend on which other
sources are present. Both are deterministic for a seed and return row indices (no I/O).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from ..errors import ConfigError, MissingColumnsError
from ..schema import EMBEDDING
from ..settings import QualitySettings

logger = logging.getLogger(__name__)

__all__ = ["choose_test_set", "default_test_sources", "sample_prompt_set"]

DEFAULT_TEST_SOURCE = QualitySettings.test_source  # the MATH CoT part of MathInstruct: Dt of the large setting


def default_test_sources(ds: Dataset) -> list[str]:
    """``mathinstruct_math`` when present (large setting), else every reasoning source (base setting)."""
    sources = ds.unique("source")
    if DEFAULT_TEST_SOURCE in sources:
        return [DEFAULT_TEST_SOURCE]
    if "task" in ds.column_names:
        reasoning = sorted({s for s, t in zip(ds["source"], ds["task"]) if t == "reasoning"})
        if reasoning:
            return reasoning
    return sorted(sources)


def choose_test_set(pool: Dataset, n2: int, *, seed: int = 0, pool_size: int | None = None,
                    method: str = "kcenter") -> np.ndarray:
    """Row indices of Dt inside ``pool``: K-center Greedy over ``embedding`` (or a random draw), ``n2`` rows.

    Rows with an empty answer are never chosen. ``pool_size`` first cuts the pool to that many random rows.
    The result is in selection order and deterministic for a seed.
    """
    if method not in ("kcenter", "random"):
        raise ConfigError(f"unknown test selection {method!r}; use 'kcenter' or 'random'")
    answers = pool["answer"]
    candidates = np.array([i for i, a in enumerate(answers) if a and a.strip()], dtype=np.int64)
    if len(candidates) == 0:
        raise ConfigError("the test pool has no row with a non-empty answer")
    rng = np.random.default_rng([seed, 2])
    if pool_size is not None and len(candidates) > pool_size:
        candidates = np.sort(rng.choice(candidates, size=pool_size, replace=False))
    if n2 >= len(candidates):
        logger.warning("test pool has %d usable rows <= n2=%d: every row is a test sample", len(candidates), n2)
        return candidates
    if method == "random":
        return np.sort(rng.choice(candidates, size=n2, replace=False))
    if EMBEDDING not in pool.column_names:
        raise MissingColumnsError(
            f"choosing Dt by K-center Greedy needs the {EMBEDDING!r} column (run `openmathmix embed` first), "
            "or use test_selection='random'"
        )
    from ..select.kcenter import k_center_greedy

    emb = np.asarray(pool.select(candidates).with_format("numpy", columns=[EMBEDDING])[EMBEDDING], dtype=np.float32)
    # on the CPU: small (pool x d, n2 steps), and CUDA must stay uninitialised in the caller (forked GPU workers)
    order = k_center_greedy(emb, n2 - 1, init=1, seed=seed, include_init=True, device="cpu")
    return candidates[order]


def _source_seed(seed: int, source: str) -> list[int]:
    return [int(seed), zlib.crc32(source.encode())]


def sample_prompt_set(ds: Dataset, n1: int, *, seed: int = 0, sources: Sequence[str] | None = None,
                      exclude_ids: set[str] | None = None, exclude_rows: set[int] | None = None) -> np.ndarray:
    """Row indices of Dp: up to ``n1`` rows per source, uniform without replacement, seeded per source.

    Sources are taken in first-appearance order; rows of a source stay in dataset order.
    """
    if n1 < 1:
        raise ConfigError(f"n1 must be >= 1, got {n1}")
    src = ds["source"]
    ids = ds["id"] if exclude_ids and "id" in ds.column_names else None
    wanted = None if sources is None else set(sources)
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(src):
        if wanted is not None and s not in wanted:
            continue
        if exclude_rows and i in exclude_rows:
            continue
        if ids is not None and ids[i] in exclude_ids:
            continue
        by_source.setdefault(s, []).append(i)
    if wanted is not None:
        missing = sorted(wanted - set(by_source))
        if missing:
            raise ConfigError(f"prompt source(s) {missing} have no rows; known sources: {sorted(set(src))}")
    picked = []
    for s, rows in by_source.items():
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > n1:
            rows = np.sort(np.random.default_rng(_source_seed(seed, s)).choice(rows, size=n1, replace=False))
        picked.append(rows)
    return np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)
