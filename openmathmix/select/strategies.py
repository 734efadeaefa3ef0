"""Selection strategies as data: each one ranks the rows of one scope (a source) into a single order.

Every strategy returns the first ``keep`` positions of one full ranking of the scope's ``n`` rows, so the order for a
smaller ``keep`` is always a prefix of the order for a larger one. The mixture keeps the head of each source's order
and the nested 10/40/70 % subsets are shorter heads of it, whatever the strategy; the release works the same way
for all of them. The position in that order is the ``qads_rank`` column (the name is kept for compatibility with
existing releases; ``MixtureReport.to_dict()["strategy"]`` says which order it is).

``qads``
    Eq. 4: greedy by ``quality x distance to the rows picked so far``, from a seeded random initial pool of
    ``init_size`` rows (:func:`openmathmix.select.kcenter.rank_scope`; the pool rows come last).
``kcenter``
    Algorithm 1: the same greedy loop without quality (farthest row first), same initial pool.
``score``
    Highest ``quality_score`` first. Ties go to the lower row position (a stable sort), so the order is a pure
    function of the input.
``random``
    A uniform random permutation drawn with ``numpy.random.default_rng(seed)``.
``length``
    Longest answer first, length in Unicode characters (model-free, so every tool counts it the same way). Ties go
    to the lower row position.

All functions here are pure: arrays in, an int64 array of row positions out. No I/O, no global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SelectionError
from .kcenter import DEFAULT_INIT_SIZE, rank_scope

__all__ = ["DEFAULT_STRATEGY", "STRATEGIES", "Strategy", "get_strategy", "rank"]

EMBEDDINGS = "embeddings"
QUALITY = "quality"
LENGTHS = "lengths"


@dataclass(frozen=True)
class Strategy:
    """A named order: which inputs it reads, whether the seed changes it, and one line for reports."""

    name: str
    needs: tuple[str, ...]  # among "embeddings", "quality", "lengths"
    seeded: bool  # True when the order depends on the seed
    summary: str


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("qads", (EMBEDDINGS, QUALITY), True, "QaDS (Eq. 4): greedy by quality x distance"),
        Strategy("kcenter", (EMBEDDINGS,), True, "K-center Greedy (Algorithm 1): farthest row first, no quality"),
        Strategy("score", (QUALITY,), False, "highest quality_score first"),
        Strategy("random", (), True, "uniform random order (seeded)"),
        Strategy("length", (LENGTHS,), False, "longest answer first (characters)"),
    )
}
DEFAULT_STRATEGY = "qads"


def get_strategy(name: str) -> Strategy:
    """The :class:`Strategy` called ``name``; an unknown name is an error that lists the valid ones."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise SelectionError(f"unknown strategy {name!r}; valid strategies are {list(STRATEGIES)}") from None


def rank(
    strategy: str,
    n: int,
    keep: int,
    *,
    embeddings: Any | None = None,
    quality: Sequence[float] | np.ndarray | None = None,
    lengths: Sequence[int] | np.ndarray | None = None,
    init_size: int = DEFAULT_INIT_SIZE,
    seed: int | Sequence[int] | None = 0,
    **greedy: Any,
) -> np.ndarray:
    """The first ``keep`` row positions (of ``n``) in ``strategy``'s order, as int64.

    Only the inputs the strategy needs must be given (``STRATEGIES[name].needs``); each must have ``n`` rows.
    ``init_size`` and ``greedy`` (dtype, device, chunk_size, backend, progress) go to the greedy strategies only.
    """
    spec = get_strategy(strategy)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise SelectionError(f"n must be an int >= 0, got {n!r}")
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or not 0 <= keep <= n:
        raise SelectionError(f"keep must be an int in [0, {n}], got {keep!r}")
    given = {EMBEDDINGS: embeddings, QUALITY: quality, LENGTHS: lengths}
    missing = [need for need in spec.needs if given[need] is None]
    if missing:
        raise SelectionError(f"strategy {strategy!r} needs {missing}; pass them (it reads {list(spec.needs)})")
    if keep == 0:
        return np.empty(0, dtype=np.int64)
    if spec.name in ("qads", "kcenter"):
        if len(embeddings) != n:
            raise SelectionError(f"strategy {strategy!r}: embeddings have {len(embeddings)} rows, expected {n}")
        weights = _finite(quality, n, "quality") if spec.name == "qads" else None
        return rank_scope(embeddings, weights, int(keep), init_size=init_size, seed=seed, **greedy)
    if spec.name == "random":
        return np.random.default_rng(seed).permutation(n)[:keep].astype(np.int64)
    values = _finite(quality if spec.name == "score" else lengths, n, spec.needs[0])
    # lexsort sorts by the last key first: descending value, then ascending position
    return np.lexsort((np.arange(n), -values))[:keep].astype(np.int64)


def _finite(values: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise SelectionError(f"{what} must be a 1-D array of {n} values, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if len(bad):
        raise SelectionError(f"{what} holds {len(bad)} non-finite value(s), first at row {bad[0]}; fix or drop them")
    return arr
