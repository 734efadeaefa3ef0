"""Native source files -> chunks of raw records, and the row mappings that turn chunks into question/answer columns.

Two halves, used by :mod:`openmathmix.sources`:

Reading (:func:`read_file`)
    Every format a source is published in, as a stream of :class:`Chunk` objects (at most ``batch_rows`` records
    each, so a 3 GB JSON Lines file never sits in memory at once):

    * ``.jsonl`` / ``.ndjson`` / ``.json`` holding JSON Lines: pyarrow's block reader; if pyarrow gives up (a broken
      line, a column whose type changes, a date-looking text column) the rest of the file is read line by line in
      Python, which also yields the exact line of a broken record.
    * ``.json`` holding one JSON array of objects (Alpaca, MathInstruct, Baize, ...): decoded element by element.
    * ``.json`` holding one object: either keyed by id with one object per record (DMath), or a Lila task file with
      an ``Instances`` list, or else a single record.
    * ``.parquet`` (the Hub's conversions): pyarrow record batches.
    * ``.tsv``: the FLAN CoT release layout: no header, no quoting, newlines written as the two characters ``\\n``
      (turned back into newlines here). The column names come from the source.

Mapping (:class:`Columns`, :class:`RecordMap`, :class:`Instances`, :class:`MessageTrees`)
    A source lists one mapping per layout it accepts; the first whose columns are present in a file is used for the
    whole file. A mapping returns a :class:`Mapped` block: question, answer, the raw row index of every output row,
    and the input records it did not turn into rows, counted by reason.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from .errors import DataFileError

BATCH_ROWS = 20_000  # records per chunk: bounds memory for big files and the size of one write
JSON_BLOCK_BYTES = 8 << 20  # pyarrow JSON/CSV block size; a longer line makes pyarrow give up (Python takes over)
WHOLE_FILE_BYTES = 256 << 20  # JSON Lines / TSV files up to this size are parsed in one multi-threaded call
PARALLEL_BLOCK_BYTES = 1 << 20  # block size of that call (blocks are parsed in parallel; a longer line -> Python)
ARRAY_READ_BYTES = 4 << 20  # how much of a JSON array file is decoded at a time
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
SUFFIXES = (*JSON_SUFFIXES, ".parquet", ".tsv")
TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
NUMBER_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


class FieldError(Exception):
    """A value of the wrong type at record ``index`` of a chunk; the builder turns it into a located DataFileError."""

    def __init__(self, index: int, column: str, value: Any, expected: str = "a string"):
        super().__init__(index, column, value, expected)
        self.index, self.column, self.value, self.expected = index, column, value, expected

    def describe(self) -> str:
        found = json_type(self.value)
        if self.value is not None and not isinstance(self.value, (dict, list)):
            found += f" {str(self.value)[:60]!r}"
        return f"column '{self.column}' holds {found}, expected {self.expected}"


def json_type(value: Any) -> str:
    """How a Python value reads in JSON terms, for error messages."""
    for kind, name in ((bool, "a boolean"), (str, "a string"), (dict, "an object"), (list, "a list"),
                       ((int, float), "a number")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def _snippet(text: str | bytes, width: int = 80) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    return repr(text if len(text) <= width else text[:width] + "...")


# --------------------------------------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Chunk:
    """Up to ``batch_rows`` consecutive raw records of one origin, held as a pyarrow table or as Python dicts.

    ``rows`` are the records' 0-based indices in their origin (they become the last part of the ids); ``lines`` are
    their 1-based line numbers when the reader knows them.
    """

    path: str  # the file, or "hf://datasets/<repo>" for a Hub split
    origin: str  # file stem or Hub split: the middle part of the ids
    kind: str  # "jsonl", "json", "parquet", "tsv" or "hub": how to point at a record in messages
    rows: np.ndarray
    table_: pa.Table | None = None
    records_: list[dict] | None = None
    lines: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def column_names(self) -> list[str]:
        if self.table_ is not None:
            return list(self.table_.column_names)
        names: dict[str, None] = {}
        for rec in self.records_ or ():
            names.update(dict.fromkeys(rec))
        return list(names)

    def table(self) -> pa.Table:
        if self.table_ is None:
            self.table_ = pa.Table.from_pylist(self.records_ or [])
        return self.table_

    def records(self) -> list[dict]:
        if self.records_ is None:
            self.records_ = self.table_.to_pylist() if self.table_ is not None else []
        return self.records_

    def take(self, keep: np.ndarray) -> Chunk:
        """The records where the boolean mask ``keep`` is true."""
        idx = np.flatnonzero(keep)
        table = self.table_.take(pa.array(idx)) if self.table_ is not None else None
        records = [self.records_[i] for i in idx] if self.records_ is not None and table is None else None
        lines = self.lines[idx] if self.lines is not None else None
        return Chunk(self.path, self.origin, self.kind, self.rows[idx], table, records, lines)

    def head(self, n: int) -> Chunk:
        keep = np.zeros(len(self), dtype=bool)
        keep[:n] = True
        return self.take(keep)

    def text(self, ref: str) -> pa.Array:
        """Column ``ref`` as a string array; ``name[0]`` takes the first item of a list column.

        Strings and nulls pass, numbers are written out as text, anything else raises :class:`FieldError`.
        """
        name, first = (ref[:-3], True) if ref.endswith("[0]") else (ref, False)
        if self.table_ is not None:
            arr = self.table_.column(name).combine_chunks()
            kind = arr.type
            if any(test(kind) for test in TEXT_TYPES) or pa.types.is_null(kind):
                return arr.cast(pa.string())
            if any(test(kind) for test in NUMBER_TYPES):
                return pc.cast(arr, pa.string())
            values = arr.to_pylist()
        else:
            values = [rec.get(name) for rec in self.records_ or ()]
        return pa.array(text_values(values, ref, first), type=pa.string())

    def locate(self, i: int) -> str:
        """Where record ``i`` of this chunk is, for a person: file, line when known, and row index."""
        row = int(self.rows[i])
        if self.kind == "hub":
            return f"{self.path} split '{self.origin}', row {row}"
        line = int(self.lines[i]) if self.lines is not None else None
        if line is None and self.kind in ("jsonl", "tsv"):
            line = line_of_record(self.path, row)
        return f"{self.path}, line {line} (row {row})" if line else f"{self.path}, row {row}"


def text_values(values: Sequence[Any], column: str, first: bool = False) -> list[str | None]:
    """Python values -> text or None, with the same rules as :meth:`Chunk.text`."""
    out: list[str | None] = []
    for i, v in enumerate(values):
        if first and isinstance(v, list):
            v = v[0] if v else None
        if v is None or isinstance(v, str):
            out.append(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(str(v))
        else:
            raise FieldError(i, column, v)
    return out


def line_of_record(path: str, row: int) -> int | None:
    """1-based line number of the ``row``-th non-blank line of a text file (what pyarrow counts as a record)."""
    with open(path, "rb") as f:
        seen = -1
        for lineno, line in enumerate(f, 1):
            if line.strip():
                seen += 1
                if seen == row:
                    return lineno
    return None


# --------------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------------


def read_file(
    path: str | Path,
    origin: str,
    *,
    batch_rows: int = BATCH_ROWS,
    tsv_columns: Sequence[str] | None = None,
    prefer_records: bool = False,
    text_columns: Iterable[str] = (),
) -> Iterator[Chunk]:
    """Stream the records of one native data file as chunks (see the module docstring for the formats).

    ``prefer_records`` skips pyarrow for JSON Lines (nested trees read better as dicts); ``text_columns`` are the
    columns that must stay text (pyarrow turns date-looking strings into timestamps; then Python reads the file).
    """
    path = str(path)
    suffix = Path(path).suffix.lower()
    if not Path(path).is_file():
        raise DataFileError(f"{path}: no such file. Pass existing files with --data-files (globs are expanded).")
    if suffix == ".parquet":
        yield from _read_parquet(path, origin, batch_rows)
    elif suffix == ".tsv":
        if not tsv_columns:
            raise DataFileError(
                f"{path}: this source has no tab-separated release; pass its JSON, JSON Lines or Parquet files"
            )
        yield from _read_tsv(path, origin, list(tsv_columns), batch_rows)
    elif suffix in JSON_SUFFIXES:
        layout = _sniff_json(path)
        if layout == "lines":
            if prefer_records:
                yield from _read_json_lines_py(path, origin, batch_rows)
            else:
                yield from _read_json_lines(path, origin, batch_rows, set(text_columns))
        elif layout == "array":
            yield from _read_json_array(path, origin, batch_rows)
        elif layout == "object":
            yield from _read_json_object(path, origin, batch_rows)
    else:
        raise DataFileError(
            f"{path}: unsupported file type '{suffix or '(none)'}'; expected one of {', '.join(SUFFIXES)}"
        )


def _chunks_of(records: list[dict], path: str, origin: str, kind: str, batch_rows: int, start: int = 0,
               lines: list[int] | None = None) -> Iterator[Chunk]:
    for lo in range(0, len(records), batch_rows):
        hi = min(lo + batch_rows, len(records))
        rows = np.arange(start + lo, start + hi, dtype=np.int64)
        ln = np.asarray(lines[lo:hi], dtype=np.int64) if lines is not None else None
        yield Chunk(path, origin, kind, rows, records_=records[lo:hi], lines=ln)


def _read_parquet(path: str, origin: str, batch_rows: int) -> Iterator[Chunk]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise DataFileError(f"{path}: not a readable Parquet file ({err}); re-download it or convert it") from err
    start = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        rows = np.arange(start, start + batch.num_rows, dtype=np.int64)
        yield Chunk(path, origin, "parquet", rows, pa.Table.from_batches([batch]))
        start += batch.num_rows


def _tables(path: str, read_all: Callable[[], pa.Table], open_stream: Callable[[], Any]) -> Iterator[pa.Table]:
    """A small file in one multi-threaded pyarrow call; a big one block by block, so memory stays bounded."""
    if os.path.getsize(path) <= WHOLE_FILE_BYTES:
        yield read_all()
    else:
        for batch in open_stream():
            yield pa.Table.from_batches([batch])


def _read_tsv(path: str, origin: str, columns: list[str], batch_rows: int) -> Iterator[Chunk]:
    read = pcsv.ReadOptions(column_names=columns, block_size=PARALLEL_BLOCK_BYTES)
    parse = pcsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False, double_quote=False)
    convert = pcsv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False)
    options = {"read_options": read, "parse_options": parse, "convert_options": convert}
    start = 0
    try:
        for table in _tables(path, lambda: pcsv.read_csv(path, **options), lambda: pcsv.open_csv(path, **options)):
            # The FLAN release writes newlines as the two characters "\n".
            table = pa.table({c: pc.replace_substring(table[c], "\\n", "\n") for c in columns})
            for lo in range(0, table.num_rows, batch_rows):
                part = table.slice(lo, batch_rows)
                rows = np.arange(start, start + part.num_rows, dtype=np.int64)
                yield Chunk(path, origin, "tsv", rows, part)
                start += part.num_rows
    except pa.ArrowInvalid as err:
        raise _tsv_error(path, columns, err) from err


def _tsv_error(path: str, columns: list[str], err: Exception) -> DataFileError:
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip(b"\r\n").split(b"\t")
            if line.strip() and len(fields) != len(columns):
                return DataFileError(
                    f"{path}, line {lineno}: found {len(fields)} tab-separated fields, expected {len(columns)} "
                    f"({', '.join(columns)}): {_snippet(line)}. The FLAN CoT layout has no header and no quoting; "
                    "remove stray tabs inside a field or re-download the file."
                )
    return DataFileError(f"{path}: not a readable tab-separated file ({err})")


def _sniff_json(path: str) -> str:
    """'lines', 'array', 'object' or 'empty': the layout of a JSON file, from its first non-blank line."""
    with open(path, "rb") as f:
        for line in f:
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith(b"\xef\xbb\xbf"):
                stripped = stripped[3:]
            if stripped[:1] == b"[":
                return "array"
            if stripped[:1] != b"{":
                raise DataFileError(
                    f"{path}, line 1: found {_snippet(stripped)}, expected JSON: one object per line (JSON Lines), "
                    "an array of objects, or one object keyed by id"
                )
            try:
                json.loads(stripped)
            except json.JSONDecodeError:
                return "object"  # an object spread over several lines
            rest = f.read(4096)
            return "lines" if rest.strip() else "object"
    return "empty"


def _read_json_lines(path: str, origin: str, batch_rows: int, text_columns: set[str]) -> Iterator[Chunk]:
    done = 0
    whole = pjson.ReadOptions(block_size=PARALLEL_BLOCK_BYTES)
    stream = pjson.ReadOptions(block_size=JSON_BLOCK_BYTES)
    try:
        checked = False
        for table in _tables(path, lambda: pjson.read_json(path, read_options=whole),
                             lambda: pjson.open_json(path, read_options=stream)):
            if not checked:
                checked = True
                for fld in table.schema:
                    if fld.name in text_columns and not (
                        any(t(fld.type) for t in (*TEXT_TYPES, *NUMBER_TYPES)) or pa.types.is_null(fld.type)
                    ):
                        raise pa.ArrowInvalid(f"column {fld.name} read as {fld.type}")
            for lo in range(0, table.num_rows, batch_rows):
                part = table.slice(lo, batch_rows)
                yield Chunk(path, origin, "jsonl", np.arange(done, done + part.num_rows, dtype=np.int64), part)
                done += part.num_rows
        return
    except pa.ArrowInvalid:
        pass  # Python reads the rest and pins down any broken line
    yield from _read_json_lines_py(path, origin, batch_rows, skip=done)


def _read_json_lines_py(path: str, origin: str, batch_rows: int, skip: int = 0) -> Iterator[Chunk]:
    records: list[dict] = []
    lines: list[int] = []
    row = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            row += 1
            if row <= skip:
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                what = f"{err.msg} at column {err.colno}" if isinstance(err, json.JSONDecodeError) else str(err)
                raise DataFileError(
                    f"{path}, line {lineno}: invalid JSON ({what}): found {_snippet(raw)}, expected one complete "
                    "JSON object on each line (JSON Lines). Fix or delete that line."
                ) from err
            if not isinstance(rec, dict):
                raise DataFileError(
                    f"{path}, line {lineno}: found {json_type(rec)} {_snippet(raw)}, expected a JSON object "
                    "with the source's columns on each line"
                )
            records.append(rec)
            lines.append(lineno)
            if len(records) == batch_rows:
                yield from _chunks_of(records, path, origin, "jsonl", batch_rows, row - len(records), lines)
                records, lines = [], []
    yield from _chunks_of(records, path, origin, "jsonl", batch_rows, row - len(records), lines)


def _read_json_array(path: str, origin: str, batch_rows: int) -> Iterator[Chunk]:
    """Decode ``[{...}, {...}]`` one element at a time, so a multi-GB array is never held whole."""
    decoder = json.JSONDecoder()
    records: list[dict] = []
    lines: list[int] = []
    row = 0
    with open(path, encoding="utf-8-sig") as f:
        buf, pos, eof = "", 0, False
        line_base, seen_at, seen_lines = 1, 0, 0  # lines before buf; newlines in buf[:seen_at] (a moving cursor)

        def line_at(at: int) -> int:
            nonlocal seen_at, seen_lines
            if at < seen_at:
                return line_base + buf.count("\n", 0, at)
            seen_lines += buf.count("\n", seen_at, at)
            seen_at = at
            return line_base + seen_lines

        def more() -> bool:
            """Append the next block (dropping what is consumed); False at the end of the file."""
            nonlocal buf, pos, line_base, eof, seen_at, seen_lines
            block = "" if eof else f.read(ARRAY_READ_BYTES)
            if not block:
                eof = True
                return False
            line_base = line_at(pos)
            buf, pos, seen_at, seen_lines = buf[pos:] + block, 0, 0, 0
            return True

        def fail(at: int, found: str, expected: str) -> DataFileError:
            line = line_at(at)
            start = buf.rfind("\n", 0, at) + 1
            text = buf[start:buf.find("\n", at) if "\n" in buf[at:] else len(buf)]
            return DataFileError(
                f"{path}, line {line} (row {row}): found {found} in {_snippet(text)}, expected {expected}. "
                "Fix the file or re-download it."
            )

        def skip_ws() -> str:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos].isspace():
                    pos += 1
                if pos < len(buf) or not more():
                    return buf[pos] if pos < len(buf) else ""

        skip_ws()
        pos += 1  # the "[" seen by the sniffer
        expect_value = True
        while True:
            ch = skip_ws()
            if ch == "]" and (expect_value is False or row == 0):
                break
            if not expect_value:
                if ch != ",":
                    raise fail(pos, _snippet(buf[pos:pos + 40]) if ch else "the end of the file",
                               "',' or ']' between array elements (is the file truncated?)")
                pos += 1
                skip_ws()
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as err:
                    truncated = err.pos >= len(buf) - 8 or err.msg.startswith("Unterminated string")
                    if not (truncated and more()):
                        raise fail(err.pos, f"invalid JSON ({err.msg})", "an array of JSON objects") from err
            if not isinstance(value, dict):
                raise fail(pos, f"{json_type(value)} {_snippet(str(value))}", "a JSON object for each record")
            records.append(value)
            lines.append(line_at(pos))
            row += 1
            pos, expect_value = end, False
            if len(records) == batch_rows:
                yield from _chunks_of(records, path, origin, "json", batch_rows, row - len(records), lines)
                records, lines = [], []
    yield from _chunks_of(records, path, origin, "json", batch_rows, row - len(records), lines)


def _read_json_object(path: str, origin: str, batch_rows: int) -> Iterator[Chunk]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise DataFileError(
            f"{path}, line {err.lineno}: invalid JSON ({err.msg} at column {err.colno}); expected JSON Lines, an "
            "array of objects, or one object keyed by id. Fix the file or re-download it."
        ) from err
    if isinstance(data, dict) and isinstance(data.get("Instances"), list):  # a Lila task file
        records = data["Instances"]
    elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        records = list(data.values())  # keyed by id (DMath): the position in the file is the row
    else:
        records = [data]
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataFileError(f"{path}, row {i}: found {json_type(rec)}, expected a JSON object for each record")
    yield from _chunks_of(records, path, origin, "json", batch_rows)


# --------------------------------------------------------------------------------------------------------------------
# Mappings
# --------------------------------------------------------------------------------------------------------------------


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

    def mask(self, chunk: Chunk) -> np.ndarray:
        col = chunk.text(self.column)
        return pc.fill_null(pc.equal(col, self.value), False).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class RowMapping:
    """Base of the mappings: which columns a layout needs, the filters, and the unit that rows_in counts."""

    where: tuple[Where, ...] = field(default=(), kw_only=True)
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
        return all(c.removesuffix("[0]") in names for c in self.needs()) and all(w.column in names for w in self.where)

    def describe(self) -> str:
        cols = [*self.needs(), *(w.column for w in self.where if w.column not in self.needs())]
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


def _rows_text(chunk: Chunk) -> pa.Array:
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
        return Mapped(len(chunk), _rows_text(chunk), q, a)


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
        return Mapped(len(chunk), _rows_text(chunk), pa.array(qs, pa.string()), pa.array(ans, pa.string()))


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


def baize_exchange(rec: dict) -> tuple[str | None, str | None]:
    """Baize ``input``: ``<preamble>[|Human|] q [|AI|] a [|Human|] ...`` -> the first human turn and its AI reply."""
    text = expect(rec, "input", str, "a string", "")
    for turn in text.split("[|Human|]")[1:]:
        human, sep, ai = turn.partition("[|AI|]")
        if sep:
            return human, ai
        if human.strip():
            return human, None
    return None, None


def prompt_completion(rec: dict) -> tuple[str | None, str | None]:
    """GPT-3 fine-tuning rows: the completion loses its leading space and trailing ``<|endoftext|>``."""
    prompt = expect(rec, "prompt", str, "a string")
    completion = expect(rec, "completion", str, "a string", "")
    completion = completion.removeprefix(" ").rstrip()
    return prompt, completion.removesuffix("<|endoftext|>")


def choice_exchange(rec: dict) -> tuple[str | None, str | None]:
    """TAL-SCQ5K: options folded into the question as ``(A) ...`` lines; answer = analysis + ``The answer is (X).``"""
    problem = expect(rec, "problem", str, "a string")
    options = expect(rec, "answer_option_list", list, "a list of options", [])
    lines = []
    for opt in options:
        opt = opt[0] if isinstance(opt, list) and len(opt) == 1 else opt
        if not isinstance(opt, dict):
            raise FieldError(0, "answer_option_list", opt, "options like {aoVal, content}")
        lines.append(f"({opt.get('aoVal', '?')}) {str(opt.get('content') or '').strip()}")
    analysis = expect(rec, "answer_analysis", (list, str), "a list of strings", [])
    steps = [analysis] if isinstance(analysis, str) else analysis
    if any(not isinstance(s, str) for s in steps):
        raise FieldError(0, "answer_analysis", steps, "a list of strings")
    letter = str(expect(rec, "answer_value", (str, int), "a letter", "")).strip()
    body = "\n".join(s.strip() for s in steps if s.strip())
    answer = "\n".join(p for p in (body, f"The answer is ({letter})." if letter else "") if p)
    question = "\n".join([problem.strip(), *lines]) if problem else problem
    return question, answer


def aqua_exchange(rec: dict) -> tuple[str | None, str | None]:
    """AQuA-RAT release rows: options ``A)21`` folded in as ``Answer Choices: (A) 21 ...`` (MathInstruct's style);
    answer = rationale + ``The answer is X.``"""
    question = expect(rec, "question", str, "a string")
    options = expect(rec, "options", list, "a list of 'A)...' strings", [])
    labelled = []
    for opt in options:
        if not isinstance(opt, str):
            raise FieldError(0, "options", opt, "a list of 'A)...' strings")
        letter, sep, text = opt.partition(")")
        labelled.append(f"({letter.strip()}) {text.strip()}" if sep else opt.strip())
    rationale = expect(rec, "rationale", str, "a string", "")
    letter = expect(rec, "correct", str, "a letter", "").strip()
    if question and labelled:
        question = f"{question.strip()}\nAnswer Choices: {' '.join(labelled)}"
    return question, "\n".join(p for p in (rationale.strip(), f"The answer is {letter}." if letter else "") if p)


# ---- one record -> several rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instances(RowMapping):
    """Self-Instruct task records ``{instruction, instances: [{input, output}]}``: one row per instance.

    rows_in counts instances (a task without instances counts as one unit, dropped). The id of instance ``k`` of raw
    record ``r`` ends in ``r.k``. question = instruction, plus a blank line and the input when it is not blank.
    """

    unit = "instance"
    prefer_records = True

    def needs(self) -> tuple[str, ...]:
        return ("instruction", "instances")

    def extract(self, chunk: Chunk) -> Mapped:
        rows, qs, ans, dropped, units = [], [], [], Counter(), 0
        for i, rec in enumerate(chunk.records()):
            try:
                instruction = expect(rec, "instruction", str, "a string")
                instances = expect(rec, "instances", list, "a list of {input, output} objects", [])
                if not instances:
                    units += 1
                    dropped["task without instances"] += 1
                for k, inst in enumerate(instances):
                    if not isinstance(inst, dict):
                        raise FieldError(0, "instances", inst, "a list of {input, output} objects")
                    units += 1
                    rows.append(f"{chunk.rows[i]}.{k}")
                    qs.append(join_text(instruction, expect(inst, "input", str, "a string")))
                    ans.append(expect(inst, "output", str, "a string"))
            except FieldError as err:
                err.index = i
                raise
        return Mapped.from_lists(units, rows, qs, ans, dropped)


# ---- OpenAssistant message trees ----------------------------------------------------------------------------------

DROP_DELETED = "deleted message"
DROP_UNDER_DELETED = "reply to a deleted message"
DROP_OFF_PATH = "message not on the top-ranked path"
DROP_LATER_TURN = "later turn of the conversation (only the first exchange is kept)"
DROP_NO_REPLY = "conversation without an assistant reply"
DROP_ORPHAN = "parent message not in the input"
DROP_BAD_ROOT = "tree root is not a prompter message"
DROP_DUPLICATE = "duplicate message_id"
MERGED_ANSWER = "assistant reply used as the answer of its conversation"


def _rank_key(item: tuple[int, dict]) -> tuple:
    pos, msg = item
    rank = msg.get("rank")
    ranked = isinstance(rank, (int, float)) and not isinstance(rank, bool)
    return (not ranked, rank if ranked else 0, pos)


def _subtree_size(node: dict, kids: Callable[[dict], list]) -> int:
    n, stack = 0, [node]
    while stack:
        cur = stack.pop()
        n += 1
        stack.extend(kids(cur))
    return n


def _drop_deleted(msg: dict, kids: Callable[[dict], list], dropped: Counter) -> None:
    dropped[DROP_DELETED] += 1
    below = _subtree_size(msg, kids) - 1
    if below:
        dropped[DROP_UNDER_DELETED] += below


def walk_tree(root: dict, kids: Callable[[dict], list], dropped: Counter) -> tuple[str, str] | None:
    """The first exchange on the top-ranked path of one message tree; every other message is counted in ``dropped``.

    At each level the reply with the lowest ``rank`` wins (0 = best); replies without a rank come after ranked ones,
    and ties go to the reply that comes first in the input. Deleted replies and their subtrees never count.
    """
    if root.get("deleted"):
        _drop_deleted(root, kids, dropped)
        return None
    if root.get("role") != "prompter":
        dropped[DROP_BAD_ROOT] += _subtree_size(root, kids)
        return None
    path, node = [root], root
    while True:
        live = []
        for pos, child in enumerate(kids(node)):
            if child.get("deleted"):
                _drop_deleted(child, kids, dropped)
            else:
                live.append((pos, child))
        if not live:
            break
        live.sort(key=_rank_key)
        for _, other in live[1:]:
            dropped[DROP_OFF_PATH] += _subtree_size(other, kids)
        node = live[0][1]
        path.append(node)
    if len(path) < 2 or path[1].get("role") != "assistant":
        dropped[DROP_NO_REPLY] += len(path)  # the prompt and whatever (malformed) path hangs below it
        return None
    dropped[DROP_LATER_TURN] += len(path) - 2
    return str(root.get("text") or ""), str(path[1].get("text") or "")


@dataclass(frozen=True)
class MessageTrees(RowMapping):
    """OpenAssistant conversations: one row per message tree, from its top-ranked path.

    Accepts the export layout (``{message_tree_id, prompt: {..., replies: [...]}}``), nested root messages
    (``{message_id, role, text, replies: [...]}``) and, with ``flat=True``, oasst1's flat message rows
    (``message_id``, ``parent_id``, ...), whose trees are rebuilt once a whole file or split has been read. rows_in
    counts messages; every message is the question of a row, the answer of a row (merged), or dropped with a reason.
    The id ends in the row index of the tree (nested layouts) or of its root message (flat rows).
    """

    unit = "message"
    prefer_records = True
    flat: bool = False

    @property
    def whole_origin(self) -> bool:
        return self.flat

    def needs(self) -> tuple[str, ...]:
        return ("message_id", "parent_id", "role", "text") if self.flat else ()

    def matches(self, names: Iterable[str]) -> bool:
        names = set(names)
        if self.flat:
            return super().matches(names) and "replies" not in names
        return "prompt" in names or {"replies", "text", "role"} <= names

    def describe(self) -> str:
        return super().describe() if self.flat else "{prompt: message tree} or {message_id, role, text, replies}"

    def extract(self, chunk: Chunk) -> Mapped:
        rows, qs, ans, dropped, units = [], [], [], Counter(), 0
        for i, rec in enumerate(chunk.records()):
            root = rec.get("prompt", rec)
            if not isinstance(root, dict):
                raise FieldError(i, "prompt", root, "a message object")

            def kids(msg: dict, i: int = i) -> list:
                replies = msg.get("replies") or []
                if not isinstance(replies, list) or not all(isinstance(r, dict) for r in replies):
                    raise FieldError(i, "replies", replies, "a list of message objects")
                return replies

            units += _subtree_size(root, kids)
            pair = walk_tree(root, kids, dropped)
            if pair:
                rows.append(int(chunk.rows[i]))
                qs.append(pair[0])
                ans.append(pair[1])
        return Mapped.from_lists(units, rows, qs, ans, dropped, [1] * len(rows), MERGED_ANSWER)

    def map_origin(self, chunks: list[Chunk]) -> Mapped:
        """Flat rows (one message each, linked by ``parent_id``) of one origin -> one conversation per root."""
        dropped: Counter = Counter()
        known: set[str] = set()
        children: dict[str, list[dict]] = {}
        roots: list[tuple[int, dict]] = []
        for chunk in chunks:
            for i, msg in enumerate(chunk.records()):
                mid = msg.get("message_id")
                if not isinstance(mid, str) or not mid:
                    raise DataFileError(f"{chunk.locate(i)}: {FieldError(i, 'message_id', mid).describe()}")
                if mid in known:
                    dropped[DROP_DUPLICATE] += 1
                    continue
                known.add(mid)
                parent = msg.get("parent_id")
                if parent in (None, ""):
                    roots.append((int(chunk.rows[i]), msg))
                else:
                    children.setdefault(str(parent), []).append(msg)

        def kids(msg: dict) -> list:
            return children.get(msg["message_id"], [])

        rows, qs, ans, reached = [], [], [], 0
        for row, root in roots:
            reached += _subtree_size(root, kids)
            pair = walk_tree(root, kids, dropped)
            if pair:
                rows.append(row)
                qs.append(pair[0])
                ans.append(pair[1])
        if len(known) > reached:
            dropped[DROP_ORPHAN] += len(known) - reached
        units = len(known) + dropped[DROP_DUPLICATE]
        return Mapped.from_lists(units, rows, qs, ans, dropped, [1] * len(rows), MERGED_ANSWER)
