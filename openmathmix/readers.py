"""Native data files -> chunks of raw records; nothing here knows about a particular source.

:func:`read_file` streams one file as :class:`Chunk` objects of at most ``batch_rows`` records, so a 3 GB JSON Lines
file never sits in memory at once:

* ``.jsonl`` / ``.ndjson`` / ``.json`` holding JSON Lines: pyarrow's block reader; if pyarrow gives up (a broken
  line, a column whose type changes, a date-looking text column, bad UTF-8) the rest of the file is read line by line
  in Python, which also finds the exact line of a broken record.
* ``.json`` holding one JSON array of objects: decoded element by element.
* ``.json`` holding one object: the caller's ``object_records`` turns it into records (a source keyed by id, a task
  file with a list of instances); without one, or when it declines, the object is one record.
* ``.parquet`` (the Hub's conversions): pyarrow record batches.
* ``.tsv``: no header, no quoting, newlines written as the two characters ``\\n`` (the FLAN CoT release layout);
  the caller names the columns.
* JSON and TSV files compressed as ``.gz``, ``.bz2``, ``.zst`` (pyarrow's codecs) or ``.xz`` (the standard library).

Every reader checks that text is valid UTF-8 as it reads; an error names the file, the line and the byte offset.
A file without records is an error. :func:`expand_inputs` turns paths, globs and folders (read recursively) into the
list of files to read and names every file it leaves out, with the reason.
"""

from __future__ import annotations

import glob
import io
import json
import lzma
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from .errors import DataFileError, DataFileNotFoundError, SourceError

BATCH_ROWS = 20_000  # records per chunk: bounds memory for big files and the size of one write
JSON_BLOCK_BYTES = 8 << 20  # pyarrow JSON/CSV block size; a longer line makes pyarrow give up (Python takes over)
WHOLE_FILE_BYTES = 256 << 20  # JSON Lines / TSV files up to this size are parsed in one multi-threaded call
PARALLEL_BLOCK_BYTES = 1 << 20  # block size of that call (blocks are parsed in parallel; a longer line -> Python)
READ_BYTES = 4 << 20  # how much text is decoded at a time (JSON arrays, UTF-8 scans)
SNIFF_BYTES = 16 << 20  # at most this much of the first line is read to tell JSON Lines from a JSON document
COMPRESSED_EXPANSION = 8  # assumed decompressed/compressed size ratio when choosing whole-file or streamed reads
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
DATA_SUFFIXES = (*JSON_SUFFIXES, ".parquet", ".tsv")
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".xz": "xz"}  # suffix -> codec
TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
NUMBER_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # a JSON escape that may encode half of a surrogate pair


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


def snippet(text: str | bytes, width: int = 80) -> str:
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
    with open_binary(path) as f:
        seen = -1
        for lineno, line in enumerate(f, 1):
            if line.strip():
                seen += 1
                if seen == row:
                    return lineno
    return None


def _chunks_of(records: list[dict], path: str, origin: str, kind: str, batch_rows: int, start: int = 0,
               lines: list[int] | None = None) -> Iterator[Chunk]:
    for lo in range(0, len(records), batch_rows):
        hi = min(lo + batch_rows, len(records))
        rows = np.arange(start + lo, start + hi, dtype=np.int64)
        ln = np.asarray(lines[lo:hi], dtype=np.int64) if lines is not None else None
        yield Chunk(path, origin, kind, rows, records_=records[lo:hi], lines=ln)


# --------------------------------------------------------------------------------------------------------------------
# File kinds, compression and UTF-8
# --------------------------------------------------------------------------------------------------------------------


def file_kind(path: str | os.PathLike) -> tuple[str, str | None]:
    """(data suffix, codec or None) of a file name: ``train.jsonl.gz`` -> ('.jsonl', 'gzip')."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    codec = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if codec:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), codec


def data_stem(path: str | os.PathLike) -> str:
    """The file name without its data and compression suffixes: ``train.jsonl.gz`` -> ``train``."""
    name = Path(path).name
    suffix, codec = file_kind(path)
    if codec:
        name = name[: name.lower().rfind(".")]
    return name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else Path(name).stem


def unreadable_reason(path: str | os.PathLike, *, tsv: bool) -> str | None:
    """Why :func:`read_file` cannot read this file (None: it can). ``tsv``: the caller has TSV column names."""
    suffix, codec = file_kind(path)
    if suffix == ".parquet" and codec:
        return "a compressed Parquet file (decompress it; Parquet compresses inside the file)"
    if suffix not in DATA_SUFFIXES:
        readable = ", ".join([*DATA_SUFFIXES, *(f"{s}{c}" for s in (".jsonl", ".json") for c in COMPRESSIONS)])
        return f"unsupported file type '{suffix or Path(path).suffix or '(none)'}' (readable: {readable}, ...)"
    if suffix == ".tsv" and not tsv:
        return "a tab-separated file, but this source has no tab-separated release"
    return None


def open_binary(path: str | os.PathLike) -> BinaryIO:
    """The file's bytes, decompressed according to its suffix."""
    _, codec = file_kind(path)
    if codec is None:
        return open(path, "rb")
    if codec == "xz":
        return lzma.open(path, "rb")
    return io.BufferedReader(pa.input_stream(str(path), compression=codec))


def _arrow_input(path: str) -> Any:
    """What pyarrow's CSV/JSON readers take for this file: the path, or a decompressing stream."""
    _, codec = file_kind(path)
    if codec is None:
        return path
    return lzma.open(path, "rb") if codec == "xz" else pa.input_stream(path, compression=codec)


def _data_size(path: str) -> int:
    """Bytes of data in the file (estimated for compressed files)."""
    return os.path.getsize(path) * (COMPRESSED_EXPANSION if file_kind(path)[1] else 1)


def utf8_error(path: str, err: UnicodeDecodeError, data: bytes, line_base: int, offset_base: int) -> DataFileError:
    """A located error for invalid UTF-8 at ``err.start`` of ``data`` (at ``line_base``, ``offset_base``)."""
    line = line_base + data.count(b"\n", 0, err.start)
    bad = data[err.start:min(err.end, err.start + 4)].hex(" ")
    where = "byte offset" if file_kind(path)[1] is None else "byte offset (decompressed)"
    return DataFileError(
        f"{path}, line {line}, {where} {offset_base + err.start:,}: invalid UTF-8 (bytes {bad}: {err.reason}). "
        "The file must be UTF-8 text; is it a binary file, a compressed file without its .gz/.zst/.bz2/.xz suffix, "
        "or text in another encoding? Re-download it, or convert it (e.g. `iconv -f latin1 -t utf-8`)."
    )


class Utf8Text:
    """Reads a binary stream as text, ``size`` bytes at a time, checking UTF-8; errors name the line and offset."""

    def __init__(self, f: BinaryIO, path: str):
        self.f, self.path = f, path
        self.offset, self.line, self.carry, self.started = 0, 1, b"", False

    def read(self, size: int = READ_BYTES) -> str:
        """The next piece of text ('' at the end of the file); a leading byte-order mark is dropped."""
        while True:
            block = self.f.read(size)
            data = self.carry + block
            if not data:
                return ""
            try:
                text, self.carry = data.decode("utf-8"), b""
            except UnicodeDecodeError as err:
                if not (block and err.reason == "unexpected end of data"):
                    raise utf8_error(self.path, err, data, self.line, self.offset) from None
                text, self.carry = data[:err.start].decode("utf-8"), data[err.start:]  # a character cut in two
            used = len(data) - len(self.carry)
            self.line += data.count(b"\n", 0, used)
            self.offset += used
            if not self.started and text:
                self.started, text = True, text.removeprefix("\ufeff")
            if text or not block:
                return text


def find_bad_utf8(path: str) -> DataFileError | None:
    """The located error for the first invalid UTF-8 in a text file, or None when it is all valid."""
    with open_binary(path) as f:
        reader = Utf8Text(f, path)
        try:
            while reader.read():
                pass
        except DataFileError as err:
            return err
    return None


def _check_surrogates(path: str, raw: bytes, rec: Any, where: str) -> None:
    """Refuse a ``\\uD800``-style escape that leaves half a surrogate pair (not valid Unicode) in the decoded text."""
    if _LONE_SURROGATE.search(raw):
        try:
            json.dumps(rec, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            raise DataFileError(
                f"{path}, {where}: a \\u escape encodes half of a surrogate pair ({err.object[err.start]!a}), which "
                "is not valid Unicode; fix the escape or re-export the file"
            ) from None


def _invalid_utf8(table: pa.Table) -> tuple[str, int | None] | None:
    """(column, row or None) of the first invalid UTF-8 string of a table; None when the table is valid."""
    try:
        table.validate(full=True)
        return None
    except pa.ArrowInvalid:
        pass
    for name, col in zip(table.column_names, table.columns, strict=True):
        try:
            col.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        if any(t(col.type) for t in TEXT_TYPES):
            for row, value in enumerate(pc.cast(col, pa.binary()).to_pylist()):
                try:
                    (value or b"").decode("utf-8")
                except UnicodeDecodeError:
                    return name, row
        return name, None
    return "(a nested column)", None


def check_table_utf8(table: pa.Table, where: Callable[[int | None], str]) -> None:
    """Raise a DataFileError naming the column and row when a table read from Parquet or the Hub has bad UTF-8."""
    bad = _invalid_utf8(table)
    if bad:
        column, row = bad
        raise DataFileError(f"{where(row)}: column '{column}' holds invalid UTF-8 text; re-export or re-download "
                            "the data as UTF-8")


# --------------------------------------------------------------------------------------------------------------------
# Inputs: paths, globs and folders -> files
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class Inputs:
    """The files a build reads, in order, and every file it was pointed at but does not read (path -> reason)."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _walk(folder: Path, unreadable: Callable[[Path], str | None], found: Inputs) -> None:
    """Every file under ``folder`` (sorted, recursive); hidden entries, symlinked folders and folders that cannot be
    listed are named, not read."""

    def unlisted(err: OSError) -> None:
        found.skipped[f"{err.filename}{os.sep}"] = f"folder that cannot be listed ({err.strerror})"

    for root, dirs, files in os.walk(folder, onerror=unlisted):
        base = Path(root)
        for name in sorted(dirs):
            path = base / name
            if name.startswith("."):
                count = sum(len(f) for _, _, f in os.walk(path))
                found.skipped[f"{path}{os.sep}"] = f"hidden folder ({count:,} file(s) not read)"
            elif path.is_symlink():
                found.skipped[f"{path}{os.sep}"] = "symbolic link to a folder (not followed)"
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (base / d).is_symlink())
        for name in sorted(files):
            path = base / name
            reason = "hidden file" if name.startswith(".") else unreadable(path)
            if reason:
                found.skipped[str(path)] = reason
            else:
                found.files.append(path)


def expand_inputs(data_files: str | os.PathLike | Iterable[str | os.PathLike], *,
                  unreadable: Callable[[Path], str | None]) -> Inputs:
    """Paths, globs (``**`` included) and folders -> :class:`Inputs`, without reading any data.

    A file named on its own must be readable (else :class:`DataFileError` with the reason); files found in a folder
    or by a glob that cannot be read are recorded in ``skipped``. Raises :class:`DataFileNotFoundError` for a path or
    pattern that matches nothing, and :class:`DataFileError` when no readable file remains or a file comes twice.
    """
    items = [data_files] if isinstance(data_files, (str, os.PathLike)) else list(data_files)
    found = Inputs()
    for item in items:
        text = os.fspath(item)
        pattern = glob.has_magic(text)
        matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))] if pattern else [Path(text)]
        if pattern and not matches:
            raise DataFileNotFoundError(f"{text}: the pattern matches no file; check the path (quote it so that the "
                                        "shell does not expand it)")
        for path in matches:
            if path.is_dir() and pattern:
                if "**" not in text:  # under "**" the pattern matches the folder's files itself
                    found.skipped[f"{path}{os.sep}"] = ("a folder matched by a glob (a glob selects files; name the "
                                                        "folder itself to read all of it)")
            elif path.is_dir():
                _walk(path, unreadable, found)
            elif path.is_file():
                reason = unreadable(path)
                if reason is None:
                    found.files.append(path)
                elif pattern:
                    found.skipped[str(path)] = reason
                else:
                    raise DataFileError(f"{path}: cannot be read: {reason}")
            else:
                raise DataFileNotFoundError(f"{path}: no such file or folder; pass existing files, folders or globs")
    seen: set[Path] = set()
    for p in found.files:
        if p.resolve() in seen:
            raise DataFileError(f"{p}: the same file is given twice; its rows would be built twice")
        seen.add(p.resolve())
    if not found.files:
        listed = "; ".join(f"{p}: {why}" for p, why in list(found.skipped.items())[:10])
        raise DataFileError(f"{', '.join(map(os.fspath, items))}: no readable data file found"
                            + (f" (not read: {listed})" if listed else ""))
    return found


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
    object_records: Callable[[dict], list | None] | None = None,
) -> Iterator[Chunk]:
    """Stream the records of one data file as chunks (see the module docstring for the formats).

    ``prefer_records`` skips pyarrow for JSON Lines (nested trees read better as dicts); ``text_columns`` are the
    columns that must stay text (pyarrow turns date-looking strings into timestamps; then Python reads the file);
    ``object_records`` unpacks a file that holds one JSON object. Raises :class:`DataFileError` for a file that is
    empty, broken, or not UTF-8, and :class:`DataFileNotFoundError` for a missing one.
    """
    path = str(path)
    reason = unreadable_reason(path, tsv=bool(tsv_columns))
    if reason:
        raise DataFileError(f"{path}: cannot be read: {reason}")
    if not Path(path).is_file():
        raise DataFileNotFoundError(f"{path}: no such file; pass existing files with --data-files")
    records = 0
    try:
        for chunk in _read(path, origin, batch_rows, tsv_columns, prefer_records, set(text_columns), object_records):
            records += len(chunk)
            yield chunk
    except (DataFileError, DataFileNotFoundError):
        raise
    except FileNotFoundError as err:
        raise DataFileNotFoundError(f"{path}: the file disappeared while it was read ({err.strerror})") from err
    except PermissionError as err:
        raise SourceError(f"{path}: cannot be read (permission denied); make it readable or copy it") from err
    except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as err:  # damaged or truncated data
        codec = file_kind(path)[1]
        hint = f"is it a complete {codec} file?" if codec else "is it complete?"
        raise DataFileError(f"{path}: cannot be read ({err}); {hint} Re-download it.") from err
    if not records:
        raise DataFileError(f"{path}: the file holds no records (it is empty); remove it from the inputs or "
                            "re-download it")


def _read(path: str, origin: str, batch_rows: int, tsv_columns: Sequence[str] | None, prefer_records: bool,
          text_columns: set[str], object_records: Callable[[dict], list | None] | None) -> Iterator[Chunk]:
    suffix, _ = file_kind(path)
    if suffix == ".parquet":
        yield from _read_parquet(path, origin, batch_rows)
    elif suffix == ".tsv":
        yield from _read_tsv(path, origin, list(tsv_columns), batch_rows)
    else:
        layout = _sniff_json(path)
        if layout == "lines":
            if prefer_records:
                yield from _read_json_lines_py(path, origin, batch_rows)
            else:
                yield from _read_json_lines(path, origin, batch_rows, text_columns)
        elif layout == "array":
            yield from _read_json_array(path, origin, batch_rows)
        elif layout == "object":
            yield from _read_json_object(path, origin, batch_rows, object_records)


def _read_parquet(path: str, origin: str, batch_rows: int) -> Iterator[Chunk]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise DataFileError(f"{path}: not a readable Parquet file ({err}); re-download it or convert it") from err
    start = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        table = pa.Table.from_batches([batch])
        check_table_utf8(table, lambda row, s=start: f"{path}, row {s + row}" if row is not None else path)
        yield Chunk(path, origin, "parquet", np.arange(start, start + batch.num_rows, dtype=np.int64), table)
        start += batch.num_rows


def _tables(path: str, read_all: Callable[[], pa.Table], open_stream: Callable[[], Any]) -> Iterator[pa.Table]:
    """A small file in one multi-threaded pyarrow call; a big one block by block, so memory stays bounded."""
    if _data_size(path) <= WHOLE_FILE_BYTES:
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
        for table in _tables(path, lambda: pcsv.read_csv(_arrow_input(path), **options),
                             lambda: pcsv.open_csv(_arrow_input(path), **options)):
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
    bad_text = find_bad_utf8(path)
    if bad_text:
        return bad_text
    with open_binary(path) as f:
        if not any(line.strip() for line in f):
            return DataFileError(f"{path}: the file is empty; remove it from the inputs or re-download it")
    with open_binary(path) as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip(b"\r\n").split(b"\t")
            if line.strip() and len(fields) != len(columns):
                return DataFileError(
                    f"{path}, line {lineno}: found {len(fields)} tab-separated fields, expected {len(columns)} "
                    f"({', '.join(columns)}): {snippet(line)}. The FLAN CoT layout has no header and no quoting; "
                    "remove stray tabs inside a field or re-download the file."
                )
    return DataFileError(f"{path}: not a readable tab-separated file ({err})")


def _decode_line(path: str, raw: bytes, lineno: int, offset: int) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        if not (len(raw) >= SNIFF_BYTES and err.reason == "unexpected end of data"):
            raise utf8_error(path, err, raw, lineno, offset) from None
        text = raw[:err.start].decode("utf-8")  # the sniffer's cut fell inside a character
    return text.removeprefix("\ufeff") if lineno == 1 else text


def _sniff_json(path: str) -> str:
    """'lines', 'array' or 'object': the layout of a JSON file, from its first non-blank line."""
    with open_binary(path) as f:
        offset = lineno = 0
        while True:
            lineno += 1
            raw = f.readline(SNIFF_BYTES)
            if not raw:
                raise DataFileError(f"{path}: the file is empty; remove it from the inputs or re-download it")
            text = _decode_line(path, raw, lineno, offset).strip()
            offset += len(raw)
            if not text:
                continue
            if text[:1] == "[":
                return "array"
            if text[:1] != "{":
                raise DataFileError(
                    f"{path}, line {lineno}: found {snippet(text)}, expected JSON: one object per line (JSON Lines), "
                    "an array of objects, or one object"
                )
            try:
                json.loads(text)
            except json.JSONDecodeError:
                return "object"  # an object spread over several lines
            rest = f.read(4096)
            return "lines" if rest.strip() else "object"


def _read_json_lines(path: str, origin: str, batch_rows: int, text_columns: set[str]) -> Iterator[Chunk]:
    done = 0
    whole = pjson.ReadOptions(block_size=PARALLEL_BLOCK_BYTES)
    stream = pjson.ReadOptions(block_size=JSON_BLOCK_BYTES)
    try:
        checked = False
        for table in _tables(path, lambda: pjson.read_json(_arrow_input(path), read_options=whole),
                             lambda: pjson.open_json(_arrow_input(path), read_options=stream)):
            if not checked:
                checked = True
                for fld in table.schema:
                    if fld.name in text_columns and not (
                        any(t(fld.type) for t in (*TEXT_TYPES, *NUMBER_TYPES)) or pa.types.is_null(fld.type)
                    ):
                        raise pa.ArrowInvalid(f"column {fld.name} read as {fld.type}")
            table.validate(full=True)  # pyarrow does not check UTF-8 in JSON strings; Python locates a bad byte
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
    row = offset = 0
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            row += 1
            if row <= skip:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise utf8_error(path, err, raw, lineno, start) from None
            try:
                rec = json.loads(text.removeprefix("\ufeff") if lineno == 1 else text)
            except json.JSONDecodeError as err:
                raise DataFileError(
                    f"{path}, line {lineno}: invalid JSON ({err.msg} at column {err.colno}): found {snippet(raw)}, "
                    "expected one complete JSON object on each line (JSON Lines). Fix or delete that line."
                ) from err
            if not isinstance(rec, dict):
                raise DataFileError(
                    f"{path}, line {lineno}: found {json_type(rec)} {snippet(raw)}, expected a JSON object "
                    "with the source's columns on each line"
                )
            _check_surrogates(path, raw, rec, f"line {lineno}")
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
    with open_binary(path) as f:
        text_in = Utf8Text(f, path)
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
            block = "" if eof else text_in.read(READ_BYTES)
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
                f"{path}, line {line} (row {row}): found {found} in {snippet(text)}, expected {expected}. "
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
                    raise fail(pos, snippet(buf[pos:pos + 40]) if ch else "the end of the file",
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
                raise fail(pos, f"{json_type(value)} {snippet(str(value))}", "a JSON object for each record")
            _check_surrogates(path, buf[pos:end].encode("utf-8", "surrogatepass"), value,
                              f"line {line_at(pos)} (row {row})")
            records.append(value)
            lines.append(line_at(pos))
            row += 1
            pos, expect_value = end, False
            if len(records) == batch_rows:
                yield from _chunks_of(records, path, origin, "json", batch_rows, row - len(records), lines)
                records, lines = [], []
    yield from _chunks_of(records, path, origin, "json", batch_rows, row - len(records), lines)


def _read_json_object(path: str, origin: str, batch_rows: int,
                      object_records: Callable[[dict], list | None] | None) -> Iterator[Chunk]:
    with open_binary(path) as f:
        reader = Utf8Text(f, path)
        parts = []
        while piece := reader.read():
            parts.append(piece)
    text = "".join(parts)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(
            f"{path}, line {err.lineno}: invalid JSON ({err.msg} at column {err.colno}); expected JSON Lines, an "
            "array of objects, or one JSON object. Fix the file or re-download it."
        ) from err
    _check_surrogates(path, text.encode("utf-8", "surrogatepass"), data, "somewhere in the file")
    records = object_records(data) if object_records is not None else None
    if records is None:
        records = [data]
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataFileError(f"{path}, row {i}: found {json_type(rec)}, expected a JSON object for each record")
    yield from _chunks_of(records, path, origin, "json", batch_rows)
