"""Row mappings: chunks of raw records (:mod:`openmathmix.readers`) -> question/answer columns.

A source lists one mapping per layout it accepts (``Source.formats``); the first whose columns a file has is used for
the whole file. A mapping returns a :class:`Mapped` block: question, answer, the raw row index of every output row,
and the input records it did not turn into rows, counted by reason. Filters (:class:`Where`, :class:`Keep`) drop
records before the mapping and count them.

The mappings here are generic: two columns (:class:`Columns`, vectorised with pyarrow), a Python function per record
(:class:`RecordMap`), chat turns (:func:`first_exchange`). A parser that belongs to one source (OpenAssistant trees,
TAL options, ...) lives in that source's builder file, built from these pieces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .readers import Chunk, FieldError

__all__ = [
    "ASSISTANT_ROLES",
    "USER_ROLES",
    "Chunk",
    "Columns",
    "FieldError",
    "Keep",
    "Mapped",
    "RecordMap",
    "RowMapping",
    "Where",
    "expect",
    "first_exchange",
    "join_text",
    "nonblank",
    "rows_text",
]


@dataclass
class Mapped:
    """What one mapping made of one chunk.

    ``units_in`` input records (in the mapping's unit) went in; ``question``/``answer``/``rows`` are the output rows
    (``rows`` = the id suffix, normally the raw row index); ``extra`` counts, per output row, the further input units
    folded into it (e.g. the reply message of a conversation), reported under ``merge_reason``; ``dropped`` counts
    the units that produced no row.
    """

    units_in: int
    rows: pa.Array
    question: pa.Array
    answer: pa.Array
    dropped: Counter = field(default_factory=Counter)
    extra: pa.Array | None = None
    merge_reason: str = ""

    @classmethod
    def from_lists(cls, units_in: int, rows: list, question: list, answer: list, dropped: Counter | None = None,
                   extra: list[int] | None = None, merge_reason: str = "") -> Mapped:
        return cls(
            units_in, pa.array([str(r) for r in rows], pa.string()), pa.array(question, pa.string()),
            pa.array(answer, pa.string()), dropped or Counter(),
            pa.array(extra, pa.int64()) if extra is not None else None, merge_reason,
        )


@dataclass(frozen=True)
class Where:
    """Keep only records whose ``column`` equals ``value``; the others are counted as dropped under ``reason``."""

    column: str
    value: str
    reason: str = ""

    @property
    def why(self) -> str:
        return self.reason or f"filtered: {self.column} != {self.value}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def mask(self, chunk: Chunk) -> np.ndarray:
        col = chunk.text(self.column)
        return pc.fill_null(pc.equal(col, self.value), False).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class Keep:
    """Keep records where ``rule(chunk)`` (a boolean mask) is true; the others are counted as dropped under ``reason``.

    For rules that read a row's content or a column some exports lack; ``columns`` are those the rule cannot do
    without (a layout matches only files that have them).
    """

    rule: Callable[[Chunk], np.ndarray]
    reason: str
    columns: tuple[str, ...] = ()

    @property
    def why(self) -> str:
        return self.reason

    def mask(self, chunk: Chunk) -> np.ndarray:
        return np.asarray(self.rule(chunk), dtype=bool)


@dataclass(frozen=True)
class RowMapping:
    """Base of the mappings: which columns a layout needs, the filters, and the unit that rows_in counts."""

    where: tuple[Where | Keep, ...] = field(default=(), kw_only=True)
    unit = "row"  # what one input unit is, for rows_in
    prefer_records = False  # True: read JSON Lines as Python dicts rather than pyarrow tables
    whole_origin = False  # True: the builder hands all chunks of a file or split to map_origin() at once

    def needs(self) -> tuple[str, ...]:
        """The columns that identify this layout (all must be present)."""
        raise NotImplementedError

    def text_columns(self) -> tuple[str, ...]:
        return ()

    def matches(self, names: Iterable[str]) -> bool:
        names = set(names)
        return all(c.removesuffix("[0]") in names for c in self.needs()) and all(
            c in names for w in self.where for c in w.columns)

    def describe(self) -> str:
        cols = list(dict.fromkeys([*self.needs(), *(c for w in self.where for c in w.columns)]))
        return "{" + ", ".join(c.removesuffix("[0]") for c in cols) + "}"

    def map(self, chunk: Chunk) -> Mapped:
        dropped: Counter = Counter()
        for w in self.where:
            keep = w.mask(chunk)
            if not keep.all():
                dropped[w.why] += int((~keep).sum())
                chunk = chunk.take(keep)
        mapped = self.extract(chunk)
        mapped.dropped.update(dropped)
        mapped.units_in += sum(dropped.values())
        return mapped

    def extract(self, chunk: Chunk) -> Mapped:
        raise NotImplementedError

    def map_origin(self, chunks: list[Chunk]) -> Mapped:
        raise NotImplementedError


def nonblank(arr: pa.Array) -> pa.Array:
    """True where a string has a non-whitespace character (null -> False); stops at the first one it finds."""
    return pc.fill_null(pc.match_substring_regex(arr, r"\S"), False)


def where_else(mask: pa.Array, yes: pa.Array, no: pa.Array | str) -> pa.Array:
    """``if_else`` that skips the copy when the mask is all true (the usual case)."""
    return yes if pc.all(mask).as_py() else pc.if_else(mask, yes, no)


def rows_text(chunk: Chunk) -> pa.Array:
    return pc.cast(pa.array(chunk.rows), pa.string())


@dataclass(frozen=True)
class Columns(RowMapping):
    """Question and answer straight from two columns, vectorised with pyarrow.

    ``context``: a second input column appended to the question after a blank line when it is not blank
    (Alpaca-style ``instruction`` + ``input``). ``final``: a column with the final answer, appended to the answer as
    a last sentence ``So the answer is <final>.`` (FLAN CoT rationale + answer). A ``name[0]`` reference takes the
    first item of a list column (Lila's raw files).
    """

    question: str = "question"
    answer: str = "answer"
    context: str | None = None
    final: str | None = None

    def needs(self) -> tuple[str, ...]:
        return tuple(c for c in (self.question, self.answer, self.context, self.final) if c)

    def text_columns(self) -> tuple[str, ...]:
        return self.needs()

    def extract(self, chunk: Chunk) -> Mapped:
        q = chunk.text(self.question)
        a = chunk.text(self.answer)
        if self.context:
            ctx = pc.fill_null(chunk.text(self.context), "")
            has = nonblank(ctx)
            if pc.any(has).as_py():
                q = pc.if_else(has, pc.binary_join_element_wise(q, ctx, "\n\n"), q)
        if self.final:
            fin = pc.utf8_trim_whitespace(pc.fill_null(chunk.text(self.final), ""))
            stop = pc.if_else(pc.match_substring_regex(fin, r"[.!?]$"), "", ".")
            sentence = pc.binary_join_element_wise("So the answer is ", fin, stop, "")
            a = pc.fill_null(a, "")
            joined = where_else(nonblank(a), pc.binary_join_element_wise(a, sentence, "\n"), sentence)
            a = where_else(nonblank(fin), joined, a)
        return Mapped(len(chunk), rows_text(chunk), q, a)


@dataclass(frozen=True)
class RecordMap(RowMapping):
    """One output row per record from a Python function ``fn(record) -> (question, answer)``.

    For layouts that need real parsing (chat turns, nested option lists). ``columns`` identify the layout. ``fn`` may
    raise :class:`FieldError` (index 0) for a value of the wrong type; blank results are counted by the builder.
    """

    fn: Callable[[dict], tuple[str | None, str | None]] | None = None
    columns: tuple[str, ...] = ()
    prefer_records = True

    def needs(self) -> tuple[str, ...]:
        return self.columns

    def extract(self, chunk: Chunk) -> Mapped:
        qs, ans = [], []
        for i, rec in enumerate(chunk.records()):
            try:
                q, a = self.fn(rec)
            except FieldError as err:
                err.index = i
                raise
            qs.append(q)
            ans.append(a)
        return Mapped(len(chunk), rows_text(chunk), pa.array(qs, pa.string()), pa.array(ans, pa.string()))


def expect(rec: dict, key: str, kind: type | tuple[type, ...], expected: str, default: Any = None) -> Any:
    """``rec[key]`` if it is a ``kind`` (missing or null -> ``default``), else a :class:`FieldError`."""
    value = rec.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise FieldError(0, key, value, expected)
    return value


def join_text(first: str | None, second: str | None, sep: str = "\n\n") -> str | None:
    """``first`` + sep + ``second`` when ``second`` is not blank (instruction + input)."""
    return f"{first}{sep}{second}" if first and second and second.strip() else first


# ---- chat-style records -------------------------------------------------------------------------------------------

USER_ROLES = ("human", "user", "prompter")
ASSISTANT_ROLES = ("gpt", "assistant", "chatgpt", "bard", "model")


def first_exchange(turns_key: str, role_key: str, text_key: str) -> Callable[[dict], tuple[str | None, str | None]]:
    """A ``fn`` for :class:`RecordMap`: the first user turn and the first assistant turn after it.

    Later turns of a multi-turn record are not kept (one row per conversation, the opening exchange).
    """

    def fn(rec: dict) -> tuple[str | None, str | None]:
        turns = expect(rec, turns_key, list, f"a list of {{{role_key}, {text_key}}} turns", [])
        question = None
        for turn in turns:
            if not isinstance(turn, dict):
                raise FieldError(0, turns_key, turn, f"a list of {{{role_key}, {text_key}}} objects")
            role = str(turn.get(role_key, "")).lower()
            text = expect(turn, text_key, str, "a string")
            if question is None and role in USER_ROLES:
                question = text or ""
            elif question is not None and role in ASSISTANT_ROLES:
                return question, text
        return question, None

    return fn
