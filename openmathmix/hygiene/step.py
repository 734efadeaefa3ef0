"""The hygiene step, pool -> (kept rows, report): decontamination, exact duplicates, near duplicates, in that order.

One pass over the pool in chunks of ``batch_rows`` rows tokenises each row's question and answer once
(:mod:`.normalize`) and derives from the words: the benchmark matches (:mod:`.decontam`), the exact key and the
MinHash signature (:mod:`.dedup`). Then, over the whole pool: contaminated rows are dropped, exact duplicates among
the rest are resolved by the keep rule, and near duplicates among what remains. A row has one reason, the first
check that drops it; a duplicate always points at a row that is kept.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets.utils.tqdm import tqdm as hf_tqdm

from ..errors import MissingColumnsError, SchemaError
from ..settings import HygieneSettings
from .decontam import BenchmarkItems, build_index, find_contamination
from .dedup import (
    candidate_probability,
    exact_duplicates,
    keep_order,
    minhash_signatures,
    near_duplicates,
    rensa_info,
    row_keys,
)
from .ngrams import Windows
from .normalize import NORMALIZATION_VERSION, Tokens, tokenize
from .report import CONTAMINATED, EXACT, KEPT, KINDS, NEAR, HygieneReport

POOL_COLUMNS = ("id", "source", "task", "question", "answer")
KEEP_RULE = ("in every group of duplicates the row of the source listed first in the settings' source_priority is "
             "kept, then reasoning sources before general ones, each by name, then the smallest id (natural order)")


def _items(name: str, bench: Any) -> BenchmarkItems:
    """A benchmark given as a Dataset (question; answer and id optional) or as BenchmarkItems."""
    if isinstance(bench, BenchmarkItems):
        return bench
    names = bench.column_names
    if "question" not in names:
        raise MissingColumnsError(f"benchmark {name!r} needs a 'question' column; it has {names}")
    table = bench.select_columns([c for c in ("id", "question", "answer") if c in names]).with_format("arrow")[:]
    n = table.num_rows
    ids = table.column("id").to_pylist() if "id" in names else [f"{name}/{i}" for i in range(n)]
    answers = table.column("answer") if "answer" in names else pa.array([""] * n)
    return BenchmarkItems(ids, table.column("question"), answers)


def _interleave(questions: pa.Array, answers: pa.Array) -> pa.Array:
    """[q0, a0, q1, a1, ...] as one string array."""
    n = len(questions)
    both = pa.concat_arrays([questions.cast(pa.string()), answers.cast(pa.string())])
    order = np.empty(2 * n, dtype=np.int64)
    order[0::2] = np.arange(n)
    order[1::2] = np.arange(n, 2 * n)
    return both.take(pa.array(order))


def _priority(sources: pa.Array, tasks: pa.Array, first: tuple[str, ...]) -> tuple[str, ...]:
    pairs = pa.table({"s": sources, "t": tasks}).group_by(["s", "t"]).aggregate([]).to_pylist()
    task_of = {p["s"]: p["t"] for p in pairs}
    rest = sorted((s for s in task_of if s not in first), key=lambda s: (task_of[s] != "reasoning", s))
    return (*first, *rest)


def run_hygiene(pool: datasets.Dataset, *, benchmarks: Mapping[str, Any] | None = None,
                settings: HygieneSettings | None = None, progress: bool = True,
                ) -> tuple[datasets.Dataset, HygieneReport]:
    """Decontaminate and deduplicate ``pool`` (columns id, source, task, question, answer).

    Args:
        pool: the rows of every source, in the schema of :data:`openmathmix.schema.FEATURES`.
        benchmarks: name -> test set (a Dataset with ``question``, optional ``answer`` and ``id``, e.g. from
            :func:`build_benchmark`, or the quality stage's Dt). Their order decides which benchmark a row that
            matches several is dropped under.
        settings: :class:`HygieneSettings` (defaults: every check on).
        progress: show progress bars (datasets' ``disable_progress_bars()`` also silences them).

    Returns:
        The kept rows (``pool.select`` of their indices, pool order) and the :class:`HygieneReport`, checked.
    """
    settings = settings or HygieneSettings()
    benchmarks = dict(benchmarks or {})
    missing = [c for c in POOL_COLUMNS if c not in pool.column_names]
    if missing:
        raise MissingColumnsError(f"the hygiene step needs pool column(s) {missing}; the pool has {pool.column_names}")
    bad = [n for n in benchmarks if not n or ":" in n or "/" in n]
    if bad:
        raise SchemaError(f"benchmark names must be non-empty and free of ':' and '/': {bad}")
    n = len(pool)
    meta = pool.select_columns(["id", "source", "task"]).with_format("arrow")[:]
    if not settings.enabled:
        report = HygieneReport(False, n, n, settings=settings.to_dict(),
                               by_source={s: {"rows_in": c, KEPT: c, **{k: 0 for k in KINDS}}
                                          for s, c in Counter(meta.column("source").to_pylist()).items()})
        report.check()
        return pool, report

    timings: Counter = Counter()
    clock = time.perf_counter()
    index = None
    if settings.decontaminate and benchmarks:
        items = {name: _items(name, b) for name, b in benchmarks.items()}
        index = build_index(items, n=settings.ngram, min_item_words=settings.min_item_words,
                            fields=settings.benchmark_fields)
    timings["index"] += time.perf_counter() - clock

    mask = np.zeros(n, dtype=np.uint64)
    item = np.full(n, -1, dtype=np.int64)
    keys = np.zeros(n, dtype=np.uint64)
    has_words = np.zeros(n, dtype=bool)
    signatures = np.zeros((n if settings.near_dedup else 0, settings.num_perm), dtype=np.uint16)
    searched = np.array([f in settings.pool_fields for f in ("question", "answer")])
    texts_view = pool.select_columns(["question", "answer"]).with_format("arrow")
    bar = hf_tqdm(total=n, desc="hygiene: hashing rows", unit=" rows", disable=not progress)
    try:
        for start in range(0, n, settings.batch_rows):
            stop = min(start + settings.batch_rows, n)
            clock = time.perf_counter()
            table = texts_view[start:stop]
            tokens = tokenize(_interleave(table.column("question").combine_chunks(),
                                          table.column("answer").combine_chunks()))
            rows = stop - start
            has_words[start:stop] = tokens.offsets[2::2] > tokens.offsets[0:-1:2]
            timings["tokenize"] += time.perf_counter() - clock
            if index is not None:
                clock = time.perf_counter()
                found = find_contamination(index, tokens, np.arange(2 * rows) // 2, rows,
                                           question_texts=np.arange(0, 2 * rows, 2),
                                           searched=np.tile(searched, rows))
                mask[start:stop], item[start:stop] = found.mask, found.item
                timings["decontaminate"] += time.perf_counter() - clock
            if settings.exact_dedup:
                clock = time.perf_counter()
                keys[start:stop] = row_keys(tokens)
                timings["exact"] += time.perf_counter() - clock
            if settings.near_dedup:
                clock = time.perf_counter()
                row_words = Tokens(tokens.hashes, tokens.offsets[0::2])
                shingles, row = Windows(row_words).grams(settings.shingle, short=True)
                offsets = np.zeros(rows + 1, dtype=np.int64)
                np.cumsum(np.bincount(row, minlength=rows), out=offsets[1:])
                signatures[start:stop] = minhash_signatures(shingles, offsets, settings.num_perm, settings.seed)
                timings["minhash"] += time.perf_counter() - clock
            bar.update(rows)
    finally:
        bar.close()

    clock = time.perf_counter()
    sources, tasks = meta.column("source").combine_chunks(), meta.column("task").combine_chunks()
    rank = keep_order(meta.column("id"), sources, _priority(sources, tasks, settings.source_priority))
    timings["keep_order"] += time.perf_counter() - clock
    contaminated = mask != 0
    clock = time.perf_counter()
    exact_of = (exact_duplicates(keys, rank, ~contaminated & has_words) if settings.exact_dedup
                else np.full(n, -1, dtype=np.int64))
    timings["exact"] += time.perf_counter() - clock
    near_of, near_stats = np.full(n, -1, dtype=np.int64), {"pairs_checked": 0, "pairs_confirmed": 0}
    if settings.near_dedup:
        clock = time.perf_counter()
        near_of, near_stats = near_duplicates(signatures, rank, ~contaminated & (exact_of < 0) & has_words,
                                              bands=settings.bands, rows_per_band=settings.rows_per_band,
                                              threshold=settings.threshold, progress=progress)
        timings["lsh"] += time.perf_counter() - clock
        # an exact copy of a row that turned out to be a near duplicate is a near duplicate of the kept row
        moved = exact_of >= 0
        moved[moved] = near_of[exact_of[moved]] >= 0
        near_of[moved] = near_of[exact_of[moved]]
        exact_of[moved] = -1

    report = _report(meta, settings, index, mask, item, exact_of, near_of, rank,
                     {**near_stats, "rows_without_words": int((~has_words).sum())})
    report.timings = dict(timings)
    report.check()
    kept = np.flatnonzero(~contaminated & (exact_of < 0) & (near_of < 0))
    return pool.select(kept) if len(kept) < n else pool, report


def _scheme(settings: HygieneSettings) -> dict[str, Any]:
    """How rows were compared, for the report (the settings hold the same numbers; this says what they mean)."""
    scheme: dict[str, Any] = {
        "normalization_version": NORMALIZATION_VERSION,
        "word_hash": "xxh3-64 of each normalised word's UTF-8 bytes",
        "decontamination": f"word {settings.ngram}-grams of benchmark {'/'.join(settings.benchmark_fields)} in pool "
                           f"{'/'.join(settings.pool_fields)}; items of {settings.min_item_words}-{settings.ngram - 1} "
                           f"words as whole sequences, shorter ones against whole pool questions",
        "exact_key": "64-bit hash of the normalised word sequences of question and answer",
        "keep_rule": KEEP_RULE,
    }
    if settings.near_dedup:
        scheme.update(rensa_info())
        scheme.update({
            "algorithm": "R-MinHash (RMinHash.digest_matrix_from_flat_token_hashes), 32-bit values",
            "shingles": f"word {settings.shingle}-grams of the normalised question followed by the answer (a row "
                        f"shorter than {settings.shingle} words is one shingle)",
            "shingle_hash": "polynomial rolling hash of the word hashes mod 2^64, MurmurHash3 finaliser",
            "num_perm": settings.num_perm,
            "stored_bits": 16,
            "bands": settings.bands,
            "rows_per_band": settings.rows_per_band,
            "threshold": settings.threshold,
            "candidate_probability_at_threshold": round(float(candidate_probability(
                settings.threshold, settings.bands, settings.rows_per_band)), 4),
            "seed": settings.seed,
        })
    return scheme


def _pair_counts(codes: np.ndarray, names: list[str], dropped: np.ndarray, of: np.ndarray,
                 ) -> dict[str, dict[str, int]]:
    """dropped row's source -> kept row's source -> rows."""
    k = len(names)
    counts = np.bincount(codes[dropped] * k + codes[of[dropped]], minlength=k * k).reshape(k, k)
    return {names[a]: {names[b]: int(counts[a, b]) for b in np.flatnonzero(counts[a])}
            for a in np.flatnonzero(counts.sum(axis=1))}


def _report(meta: pa.Table, settings: HygieneSettings, index, mask: np.ndarray, item: np.ndarray,
            exact_of: np.ndarray, near_of: np.ndarray, rank: np.ndarray, stats: dict[str, int]) -> HygieneReport:
    n = meta.num_rows
    ids = meta.column("id").combine_chunks()
    encoded = pc.dictionary_encode(meta.column("source").combine_chunks())
    source_names = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    bench_names = index.names if index is not None else ()
    bench_bits = [(mask >> np.uint64(b)) & np.uint64(1) == 1 for b in range(len(bench_names))]
    first_bench = np.full(n, -1, dtype=np.int64)
    for b in reversed(range(len(bench_names))):  # a row matching several benchmarks is dropped under the first
        first_bench[bench_bits[b]] = b
    kinds = {CONTAMINATED: first_bench >= 0, EXACT: exact_of >= 0, NEAR: near_of >= 0}

    drop = np.flatnonzero(kinds[CONTAMINATED] | kinds[EXACT] | kinds[NEAR])
    partner = np.where(kinds[EXACT], exact_of, near_of)[drop]
    partner_ids = ids.take(pa.array(np.maximum(partner, 0))).to_pylist()
    item_ids = index.item_ids if index is not None else ()
    reason, of = [], []
    for row, p_id, bench in zip(drop.tolist(), partner_ids, first_bench[drop].tolist()):
        if bench >= 0:
            reason.append(f"{CONTAMINATED}:{bench_names[bench]}")
            of.append(item_ids[item[row]])
        else:
            reason.append(f"{EXACT if exact_of[row] >= 0 else NEAR}_of:{p_id}")
            of.append(p_id)
    dropped = pa.table({"id": ids.take(pa.array(drop)), "source": pa.array([source_names[c] for c in codes[drop]],
                                                                               pa.string()),
                        "reason": pa.array(reason, pa.string()), "of": pa.array(of, pa.string())})

    counts = {f"{CONTAMINATED}:{name}": int((first_bench == b).sum()) for b, name in enumerate(bench_names)}
    counts.update({EXACT: int(kinds[EXACT].sum()), NEAR: int(kinds[NEAR].sum())})
    counts = {k: v for k, v in counts.items() if v}
    per = {k: np.bincount(codes[v], minlength=len(source_names)) for k, v in kinds.items()}
    rows_in = np.bincount(codes, minlength=len(source_names))
    by_source = {}
    for c, name in sorted(enumerate(source_names), key=lambda x: x[1]):
        row = {"rows_in": int(rows_in[c]), **{k: int(per[k][c]) for k in KINDS}}
        row[KEPT] = row["rows_in"] - sum(row[k] for k in KINDS)
        by_source[name] = row
    matches = {name: {b_name: int(np.count_nonzero(bench_bits[b] & (codes == c)))
                      for b, b_name in enumerate(bench_names)}
               for c, name in sorted(enumerate(source_names), key=lambda x: x[1])}
    examples: dict[str, list[dict[str, str]]] = {}
    position = {int(r): i for i, r in enumerate(drop)}
    for kind, hit in kinds.items():
        rows = np.flatnonzero(hit)
        rows = rows[np.argsort(rank[rows], kind="stable")][:settings.examples]
        if len(rows):
            examples[kind] = [{"id": dropped.column("id")[position[int(r)]].as_py(), "of": of[position[int(r)]]}
                              for r in rows]
    bench_info = ({name: {"items": index.items[name], "indexed_grams": index.indexed_grams[name]}
                   for name in bench_names} if index is not None else {})
    return HygieneReport(
        enabled=True, rows_in=n, rows_kept=int(n - len(drop)), counts=counts, by_source=by_source,
        benchmark_matches=matches if bench_names else {},
        exact_pairs=_pair_counts(codes, source_names, kinds[EXACT], exact_of),
        near_pairs=_pair_counts(codes, source_names, kinds[NEAR], near_of), examples=examples,
        benchmarks=bench_info, settings=settings.to_dict(), scheme=_scheme(settings), stats=stats, dropped=dropped,
    )
