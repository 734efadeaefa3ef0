"""Benchmark decontamination by shared normalised word n-grams (pure functions on numpy arrays).

A pool row is contaminated by a benchmark when one of its texts (question, answer) contains a word n-gram of a
benchmark item's question (and of its answer, when ``fields`` says so), after :mod:`.normalize`:

* items of at least ``n`` words contribute every window of ``n`` words;
* items of ``min_item_words`` to ``n - 1`` words contribute their whole word sequence, found anywhere in a pool text;
* shorter items (``"Compute $\\dbinom{8}{4}$."``: 4 words) only match a pool question that equals them after
  normalisation, since a 4-word phrase turns up inside unrelated problems.

Lookups take one pass over the pool's words: every benchmark gram has at least ``min_item_words`` words, so a pool
position can only start a match if the ``min_item_words`` words from there are the start of some gram. The top 24
bits of that window's hash index a bitmap of those gram prefixes (16 MiB, about 1 % set for GSM8K + MATH), an exact
lookup in the sorted prefixes confirms it, and only at the few positions left are the windows of every gram length
hashed and looked up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .ngrams import Windows
from .normalize import Tokens, tokenize

BITMAP_BITS = 24
_SHIFT = np.uint64(64 - BITMAP_BITS)
MAX_BENCHMARKS = 63  # one bit of a uint64 mask per benchmark


@dataclass(frozen=True)
class BenchmarkItems:
    """The texts of one benchmark: item ids, questions and answers (answers may be empty strings)."""

    ids: Sequence[str]
    questions: Sequence[str]
    answers: Sequence[str]


@dataclass(frozen=True)
class _Table:
    """Sorted gram hashes, the benchmarks holding each (a bit mask) and one item holding it (for examples)."""

    hashes: np.ndarray  # uint64, sorted, unique
    mask: np.ndarray  # uint64, bit b set = benchmark b has the gram
    item: np.ndarray  # int64, index into BenchmarkIndex.item_ids of one item with the gram

    @classmethod
    def build(cls, hashes: np.ndarray, bench: np.ndarray, item: np.ndarray) -> _Table:
        order = np.lexsort((item, hashes))
        hashes, bench, item = hashes[order], bench[order], item[order]
        first = np.ones(len(hashes), dtype=bool)
        first[1:] = hashes[1:] != hashes[:-1]
        group = np.cumsum(first) - 1
        mask = np.zeros(int(first.sum()), dtype=np.uint64)
        np.bitwise_or.at(mask, group, np.left_shift(np.uint64(1), bench.astype(np.uint64)))
        return cls(hashes[first], mask, item[first])

    def find(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``query`` whose hash is in the table, and the table row of each."""
        if not len(self.hashes) or not len(query):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pos = np.minimum(np.searchsorted(self.hashes, query), len(self.hashes) - 1)
        hit = np.flatnonzero(self.hashes[pos] == query)
        return hit, pos[hit]


@dataclass(frozen=True)
class BenchmarkIndex:
    """Every benchmark's grams, ready for :func:`find_contamination`. Build it with :func:`build_index`."""

    names: tuple[str, ...]
    n: int
    min_item_words: int
    grams: _Table  # windows of n words and whole sequences of min_item_words..n-1 words
    whole: _Table  # whole questions shorter than min_item_words (matched against whole pool questions)
    lengths: tuple[int, ...]  # window lengths to look up in pool texts: n and the short item lengths present
    prefixes: np.ndarray  # uint64, sorted: hashes of the first min_item_words words of every gram
    bitmap: np.ndarray  # bool, 2^BITMAP_BITS: top bits of every prefix hash
    item_ids: tuple[str, ...]  # all benchmarks' item ids, in order
    items: dict[str, int]  # benchmark -> number of items
    indexed_grams: dict[str, int]  # benchmark -> number of distinct grams (windows + short wholes + whole questions)


def build_index(benchmarks: Mapping[str, BenchmarkItems], *, n: int, min_item_words: int,
                fields: Sequence[str] = ("question",)) -> BenchmarkIndex:
    """Index the grams of each benchmark's ``fields`` ("question", "answer") for decontamination."""
    if len(benchmarks) > MAX_BENCHMARKS:
        raise ValueError(f"at most {MAX_BENCHMARKS} benchmarks per run, got {len(benchmarks)}")
    unknown = set(fields) - {"question", "answer"}
    if unknown or not fields:
        raise ValueError(f"benchmark fields must be 'question' and/or 'answer', got {list(fields)}")
    if not 1 <= min_item_words <= n:
        raise ValueError(f"need 1 <= min_item_words <= n, got min_item_words={min_item_words}, n={n}")
    g_hash, g_bench, g_item, w_hash, w_bench, w_item, prefixes = [], [], [], [], [], [], []
    item_ids: list[str] = []
    items, indexed = {}, {}
    lengths_found = {n}
    for b, (name, bench) in enumerate(benchmarks.items()):
        base = len(item_ids)
        item_ids += [str(i) for i in bench.ids]
        items[name] = len(bench.ids)
        grams_before = sum(len(h) for h in g_hash) + sum(len(h) for h in w_hash)
        for field in fields:
            texts = bench.questions if field == "question" else bench.answers
            windows = Windows(tokenize(texts))
            hashes, text = windows.grams(n, short=True, min_words=min_item_words, mix=False)
            lengths = windows.tokens.lengths
            starts = windows.tokens.offsets[:-1][text] + _rank_within(text)  # first word of each gram
            prefixes.append(windows.span(starts, starts + min_item_words, mix=False))
            lengths_found |= {int(x) for x in np.unique(lengths[(lengths >= min_item_words) & (lengths < n)])}
            g_hash.append(hashes)
            g_item.append(text + base)
            g_bench.append(np.full(len(hashes), b, dtype=np.int64))
            if field == "question":
                tiny = np.flatnonzero((lengths > 0) & (lengths < min_item_words))
                w_hash.append(windows.whole(tiny, mix=False))
                w_item.append(tiny + base)
                w_bench.append(np.full(len(tiny), b, dtype=np.int64))
        indexed[name] = sum(len(h) for h in g_hash) + sum(len(h) for h in w_hash) - grams_before
    cat = (lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype))
    grams = _Table.build(cat(g_hash, np.uint64), cat(g_bench, np.int64), cat(g_item, np.int64))
    whole = _Table.build(cat(w_hash, np.uint64), cat(w_bench, np.int64), cat(w_item, np.int64))
    prefix = np.unique(cat(prefixes, np.uint64))
    bitmap = np.zeros(1 << BITMAP_BITS, dtype=bool)
    bitmap[prefix >> _SHIFT] = True
    return BenchmarkIndex(tuple(benchmarks), n, min_item_words, grams, whole, tuple(sorted(lengths_found)), prefix,
                          bitmap, tuple(item_ids), items, {k: int(v) for k, v in indexed.items()})


def _rank_within(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array (the gram's position in its text)."""
    if not len(group):
        return np.zeros(0, np.int64)
    new = np.ones(len(group), dtype=bool)
    new[1:] = group[1:] != group[:-1]
    first = np.flatnonzero(new)
    return np.arange(len(group)) - np.repeat(first, np.diff(np.append(first, len(group))))


@dataclass
class Contamination:
    """Per pool row: the benchmarks it matches (bit mask, bit b = ``index.names[b]``) and one matched item."""

    mask: np.ndarray  # uint64 per row
    item: np.ndarray  # int64 per row: index into index.item_ids of one matched item, -1 if none


def find_contamination(index: BenchmarkIndex, texts: Tokens, rows_of_text: np.ndarray, n_rows: int,
                       question_texts: np.ndarray, searched: np.ndarray | None = None) -> Contamination:
    """Rows whose texts contain a benchmark gram.

    ``texts``: the tokenised pool texts; ``rows_of_text``: the pool row of each text; ``question_texts``: the
    indices of the texts that are questions (matched against whole short benchmark questions); ``searched``: which
    texts are searched at all (default: every text).
    """
    mask = np.zeros(n_rows, dtype=np.uint64)
    item = np.full(n_rows, -1, dtype=np.int64)
    windows = Windows(texts)

    def record(text_idx: np.ndarray, table_rows: np.ndarray, table: _Table) -> None:
        if searched is not None:
            keep = searched[text_idx]
            text_idx, table_rows = text_idx[keep], table_rows[keep]
        rows = rows_of_text[text_idx]
        np.bitwise_or.at(mask, rows, table.mask[table_rows])
        first_rows, first = np.unique(rows, return_index=True)  # the first hit of each row names its example
        fresh = item[first_rows] < 0
        item[first_rows[fresh]] = table.item[table_rows[first[fresh]]]

    prefix, valid = windows.at_every_word(index.min_item_words, mix=False)
    starts = np.flatnonzero(index.bitmap[prefix >> _SHIFT])
    starts = starts[valid[starts]]
    if len(starts) and len(index.prefixes):
        at = np.minimum(np.searchsorted(index.prefixes, prefix[starts]), len(index.prefixes) - 1)
        starts = starts[index.prefixes[at] == prefix[starts]]
    ends = windows.text_end(starts)
    for length in index.lengths:
        fits = starts[starts + length <= ends]
        hit, table_rows = index.grams.find(windows.span(fits, fits + length, mix=False))
        record(windows.text_of_word[fits[hit]], table_rows, index.grams)
    if len(index.whole.hashes):
        lengths = texts.lengths[question_texts]
        short = question_texts[(lengths > 0) & (lengths < index.min_item_words)]
        hit, table_rows = index.whole.find(windows.whole(short, mix=False))
        record(short[hit], table_rows, index.whole)
    return Contamination(mask, item)
