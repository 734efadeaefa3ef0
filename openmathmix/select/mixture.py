"""A preset's selection over a ``datasets.Dataset``: per-source counts, one order per source, nested subsets.

The preset (schema, loading, ``include:``) lives in :mod:`openmathmix.select.preset`, the orders in
:mod:`openmathmix.select.strategies`, the report in :mod:`openmathmix.select.report`; this module wires them over a
dataset and re-exports the names the pipeline and the release code import from here.

Selection runs per source, the paper's per-dataset scope. :func:`plan` turns the preset's policies into a row count
per source; the kept rows of a source are the first ``kept`` rows of its order under the preset's strategy (QaDS by
default: the greedy order with an initial pool of ``init_size`` random rows drawn with ``seed`` and the source name,
the pool rows at the tail). ``qads_rank`` is a row's position in that order, counted from 0.

Nested subsets: the subset at ratio ``r`` keeps, from each source, the rows with
``qads_rank < ceil(r * kept_in_that_source)``. Those are prefixes of one order, so ratio_10 is inside ratio_40,
which is inside ratio_70, by construction, for every strategy. :func:`subset_mask` recomputes a subset from the
written mixture alone, from ``source`` and ``qads_rank``, so a release writer needs no side files.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingColumnsError, SelectionError
from ..schema import KEPT, QADS_RANK
from .kcenter import resolve_dtype
from .preset import (
    DEFAULT_SUBSET_RATIOS,
    Eq5Params,
    Preset,
    SourcePolicy,
    list_presets,
    load_preset,
    parse_preset,
    registered_sources,
)
from .ratios import eq5_ratios, kept_count, mean_quality_ratio, prefix_count
from .report import MixtureReport, subset_name
from .strategies import EMBEDDINGS, LENGTHS, QUALITY, get_strategy, rank

__all__ = [
    "DEFAULT_SUBSET_RATIOS",
    "Eq5Params",
    "MixtureReport",
    "Preset",
    "SelectionColumns",
    "SourcePolicy",
    "capped_counts",
    "iter_subsets",
    "list_presets",
    "load_preset",
    "parse_preset",
    "plan",
    "ranked_pool",
    "read_selection_columns",
    "registered_sources",
    "select_mixture",
    "subset",
    "subset_mask",
    "subset_name",
]

SOURCE = "source"
TASK = "task"
ANSWER = "answer"


def _as_preset(preset: Preset | str | Path) -> Preset:
    return preset if isinstance(preset, Preset) else load_preset(preset)


# --------------------------------------------------------------------------------------------------------------------
# Planning (pure)
# --------------------------------------------------------------------------------------------------------------------


def plan(
    preset: Preset | str | Path,
    available: Mapping[str, int],
    mean_quality: Mapping[str, float] | None = None,
) -> dict[str, int]:
    """Rows to keep per source: ``{source: n_keep}`` in preset order.

    ``available`` maps each preset source to its row count. Sources missing from it are an error, and sources that
    are not in the preset are ignored. ``mean_quality`` (the mean 1-5 score per source) is needed only by sources
    with ``rule: mean_quality``. Counts are ``ratio * n`` rounded half up. A fixed ``count`` above ``n`` keeps the
    ``n`` rows; :func:`capped_counts` lists those sources, and the report carries them.
    """
    preset = _as_preset(preset)
    missing = [s for s in preset.source_names if s not in available]
    if missing:
        raise SelectionError(
            f"preset {preset.name!r} lists source(s) {missing} with no rows in the data; "
            f"build them, or copy {preset.origin} and drop them"
        )
    sizes = {s: int(available[s]) for s in preset.source_names}
    eq5 = None
    if any(p.rule == "eq5" for p in preset.sources):
        eq5 = eq5_ratios(sizes, low=preset.eq5.low, upp=preset.eq5.upp)
    counts = {}
    for p in preset.sources:
        n = sizes[p.source]
        if p.policy == "all":
            counts[p.source] = n
        elif p.count is not None:
            counts[p.source] = min(p.count, n)
        elif p.ratio is not None:
            counts[p.source] = kept_count(n, p.ratio)
        elif p.rule == "eq5":
            counts[p.source] = kept_count(n, eq5[p.source])
        else:
            if mean_quality is None or p.source not in mean_quality:
                raise SelectionError(f"source {p.source!r} uses rule mean_quality but no mean quality was given")
            try:
                counts[p.source] = kept_count(n, mean_quality_ratio(float(mean_quality[p.source]), preset.qs_max))
            except SelectionError as err:
                raise SelectionError(f"source {p.source!r}: {err}") from None
    return counts


def capped_counts(preset: Preset | str | Path, available: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Sources whose fixed ``count`` exceeds their rows: ``{source: {"requested": count, "available": n}}``."""
    preset = _as_preset(preset)
    return {
        p.source: {"requested": int(p.count), "available": int(available[p.source])}
        for p in preset.sources
        if p.count is not None and p.source in available and p.count > available[p.source]
    }


# --------------------------------------------------------------------------------------------------------------------
# Selection over a Dataset
# --------------------------------------------------------------------------------------------------------------------


def _scope_seed(seed: int, source: str) -> list[int]:
    """Seed of one scope (initial pool, random order): the preset seed and a stable hash of the source name."""
    return [int(seed), zlib.crc32(source.encode("utf-8"))]


@dataclasses.dataclass
class SelectionColumns:
    """The columns selection reads, in row order of the dataset (indices mappings honoured)."""

    source: np.ndarray
    embeddings: np.ndarray | None
    quality: np.ndarray | None
    lengths: np.ndarray | None
    task: np.ndarray | None


def read_selection_columns(ds: Any, *, embedding_column: str | None, quality_column: str,
                           need_quality: bool, need_lengths: bool) -> SelectionColumns:
    """Read ``source`` and what the strategy needs; the quality column is read whenever it exists (for reports).

    ``embedding_column=None`` skips the embeddings. Missing needed columns, null rows, ragged or non-finite vectors
    are errors that name the column.
    """
    import pyarrow.compute as pc

    need = [SOURCE]
    if embedding_column is not None:
        need.append(embedding_column)
    if need_quality:
        need.append(quality_column)
    if need_lengths:
        need.append(ANSWER)
    missing = [c for c in need if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(
            f"selection needs column(s) {missing}; the dataset has {ds.column_names}. "
            "Run the embedding and scoring stages first"
        )
    optional = [c for c in (quality_column, TASK) if c in ds.column_names and c not in need]
    table = ds.select_columns(need + optional).with_format("arrow")[:]
    source = table.column(SOURCE).to_numpy(zero_copy_only=False).astype(str)

    matrix = None
    if embedding_column is not None:
        emb = table.column(embedding_column).combine_chunks()
        if emb.null_count:
            raise SelectionError(f"column {embedding_column!r} has {emb.null_count} null row(s); embed them first")
        n = len(emb)
        if n:
            lengths = pc.list_value_length(emb).to_numpy(zero_copy_only=False)
            if lengths.min() != lengths.max() or lengths.min() == 0:
                raise SelectionError(
                    f"column {embedding_column!r} holds vectors of different lengths "
                    f"({lengths.min()}..{lengths.max()}); every row needs the same dimension"
                )
            matrix = emb.flatten().to_numpy(zero_copy_only=False).reshape(n, int(lengths[0]))
        else:
            matrix = np.empty((0, 1), dtype=np.float32)

    quality = None
    if quality_column in table.column_names:
        quality_col = table.column(quality_column)
        if quality_col.null_count:
            raise SelectionError(f"column {quality_column!r} has {quality_col.null_count} null row(s); score them")
        quality = quality_col.to_numpy(zero_copy_only=False).astype(np.float64)
    answer_lengths = None
    if need_lengths:
        answers = table.column(ANSWER)
        answer_lengths = pc.fill_null(pc.utf8_length(answers), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    task = table.column(TASK).to_numpy(zero_copy_only=False).astype(str) if TASK in table.column_names else None
    return SelectionColumns(source, matrix, quality, answer_lengths, task)


def _rows_of(positions: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The rows of ``matrix`` at ``positions``: a view when they are one contiguous ascending run."""
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions) and np.all(np.diff(positions) == 1):
        return matrix[positions[0] : positions[-1] + 1]
    return matrix[positions]


def select_mixture(
    ds: Any,
    preset: Preset | str | Path,
    *,
    strategy: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    chunk_size: int | None = None,
    backend: str = "auto",
    progress: bool = False,
) -> tuple[Any, MixtureReport]:
    """Plan per-source counts, order each source with the strategy, and return ``(mixture, report)``.

    ``ds`` is a ``datasets.Dataset`` with ``source`` and the columns the strategy reads (embeddings for qads and
    kcenter, the quality column for qads, score and rule mean_quality, ``answer`` for length). The mixture holds
    the kept rows with an int64 ``qads_rank`` column (any old one is replaced). Rows are grouped by source in preset
    order and sorted by rank within each source, so every nested subset is a head of each source block. Sources in
    ``ds`` that the preset does not list are dropped, and the report lists them with policy ``excluded``.
    ``strategy`` defaults to the preset's, ``dtype`` to the preset's, ``device`` to cuda when available.
    """
    preset = _as_preset(preset)
    if strategy is not None:
        preset = dataclasses.replace(preset, strategy=get_strategy(strategy).name)
    spec = get_strategy(preset.strategy)
    ranked = preset.rank_all != "input" or any(p.policy != "all" for p in preset.sources)
    cols = read_selection_columns(
        ds,
        embedding_column=preset.embedding_column if ranked and EMBEDDINGS in spec.needs else None,
        quality_column=preset.quality_column,
        need_quality=(ranked and QUALITY in spec.needs) or any(p.rule == "mean_quality" for p in preset.sources),
        need_lengths=ranked and LENGTHS in spec.needs,
    )
    source, quality = cols.source, cols.quality
    positions = {name: np.flatnonzero(source == name) for name in dict.fromkeys(source.tolist())}
    empty = np.empty(0, dtype=np.int64)
    available = {name: len(positions[name]) for name in preset.source_names if name in positions}
    means = None if quality is None else {name: float(quality[positions[name]].mean()) for name in available}
    counts = plan(preset, available, means)  # raises when a preset source has no rows

    kept_positions, ranks, rows = [], [], []
    greedy = {
        "dtype": dtype or preset.dtype,
        "device": device,
        "chunk_size": chunk_size,
        "backend": backend,
        "progress": progress,
    }
    for p in preset.sources:
        where = positions[p.source]
        keep = counts[p.source]
        if p.policy == "all" and preset.rank_all == "input":
            order = np.arange(keep, dtype=np.int64)
        else:
            order = rank(
                spec.name,
                len(where),
                keep,
                embeddings=None if cols.embeddings is None else _rows_of(where, cols.embeddings),
                quality=None if quality is None else quality[where],
                lengths=None if cols.lengths is None else cols.lengths[where],
                init_size=preset.init_size,
                seed=_scope_seed(preset.seed, p.source),
                **greedy,
            )
        kept_positions.append(where[order])
        ranks.append(np.arange(len(order), dtype=np.int64))
        rows.append(_report_row(p.source, p.describe(spec.name), where, where[order], quality, cols.task))
    for name, where in positions.items():
        if name not in available:
            rows.append(_report_row(name, "excluded", where, empty, quality, cols.task))

    chosen = np.concatenate(kept_positions) if kept_positions else empty
    # The rank column is added before the row selection: adding a column to a selected (index-mapped) dataset
    # would first copy every kept row, embeddings included.
    full_rank = np.full(len(ds), -1, dtype=np.int64)
    full_rank[chosen] = np.concatenate(ranks) if ranks else empty
    base = ds.remove_columns(QADS_RANK) if QADS_RANK in ds.column_names else ds
    out = base.add_column(QADS_RANK, full_rank).select(chosen)
    kept = {r["source"]: r["kept"] for r in rows if r["kept"]}
    subsets = {
        subset_name(r): {s: prefix_count(n, r) for s, n in kept.items()} for r in preset.subset_ratios
    }
    settings = {
        "strategy": spec.name,
        "seed": preset.seed,
        "init_size": preset.init_size,
        "scope": preset.scope,
        "rank_all": preset.rank_all,
        "dtype": resolve_dtype(greedy["dtype"]),
        "eq5": None if preset.eq5 is None else {"low": preset.eq5.low, "upp": preset.eq5.upp},
        "qs_max": preset.qs_max,
        "origin": preset.origin,
    }
    report = MixtureReport(preset.name, tuple(rows), preset.subset_ratios, subsets, settings,
                           strategy=spec.name, capped=capped_counts(preset, available))
    return out, report


def _report_row(
    name: str, policy: str, where: np.ndarray, chosen: np.ndarray, quality: np.ndarray | None,
    task: np.ndarray | None,
) -> dict[str, Any]:
    return {
        "source": name,
        "task": None if task is None or not len(where) else str(task[where[0]]),
        "policy": policy,
        "available": len(where),
        "kept": len(chosen),
        "ratio": len(chosen) / len(where) if len(where) else 0.0,
        "mean_quality": None if quality is None else _mean(quality[where]),
        "mean_quality_kept": None if quality is None else _mean(quality[chosen]),
    }


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


# --------------------------------------------------------------------------------------------------------------------
# Nested subsets of a written mixture
# --------------------------------------------------------------------------------------------------------------------


def ranked_pool(pool: Any, mixture: Any) -> Any:
    """Every row of ``pool`` (the rows that entered ``select_mixture``) with its ``qads_rank`` in ``mixture`` (null
    where the strategy did not keep it) and a boolean ``kept``: the release's pool config."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pool.select_columns(["id"]).with_format("arrow")[:].column("id")
    picked = mixture.select_columns(["id", QADS_RANK]).with_format("arrow")[:]
    where = pc.index_in(ids, value_set=picked.column("id"))
    ranks = picked.column(QADS_RANK).combine_chunks().take(where)
    base = pool.remove_columns(QADS_RANK) if QADS_RANK in pool.column_names else pool
    kept = pc.is_valid(where).combine_chunks()
    return base.add_column(QADS_RANK, ranks.cast(pa.int64())).add_column(KEPT, kept)


def subset_mask(ds: Any, ratio: float) -> np.ndarray:
    """Boolean row mask of the nested subset at ``ratio`` of a mixture written by :func:`select_mixture`.

    A row is in the subset when ``qads_rank < ceil(ratio * kept)``, where ``kept`` is the number of rows of its
    source in ``ds``. Pass the whole mixture: on a filtered copy the per-source counts, and so the subsets, would
    differ.
    """
    missing = [c for c in (SOURCE, QADS_RANK) if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(f"subsets need column(s) {missing}; run select_mixture first")
    table = ds.select_columns([SOURCE, QADS_RANK]).with_format("arrow")[:]
    source = table.column(SOURCE).to_numpy(zero_copy_only=False).astype(str)
    rank_ = table.column(QADS_RANK).to_numpy(zero_copy_only=False)
    names, inverse, kept = np.unique(source, return_inverse=True, return_counts=True)
    limits = np.array([prefix_count(int(n), ratio) for n in kept], dtype=np.int64)
    return rank_ < limits[inverse] if len(names) else np.zeros(0, dtype=bool)


def subset(ds: Any, ratio: float) -> Any:
    """The nested subset at ``ratio`` as a ``datasets.Dataset`` (rows in mixture order)."""
    return ds.select(np.flatnonzero(subset_mask(ds, ratio)))


def iter_subsets(ds: Any, ratios: Sequence[float] = DEFAULT_SUBSET_RATIOS) -> Iterator[tuple[str, Any]]:
    """``("ratio_10", Dataset), ("ratio_40", ...), ...``: the nested subsets, smallest first."""
    for r in sorted(ratios):
        yield subset_name(r), subset(ds, r)
