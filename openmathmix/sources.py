"""Source registry and builder: builders/<name>.py (a declarative Source each) -> (Dataset, BuildReport).

A source is one small file in the top-level ``builders/`` folder (installed as ``openmathmix.builders``) that defines
``SOURCE = Source(...)``: where the data lives on the Hub, its licence and size in the paper, and the row layouts it
is published in (``formats``, see :mod:`openmathmix.formats`; a parser that only one source needs lives in its
builder file). Its notes, licence discussion and BibTeX live in ``cards/sources/<name>.md``; a sample in its native
format in ``builders/fixtures/``, one per other layout under ``builders/fixtures/layouts/<name>/``.
:func:`build_source` turns it into rows of :data:`openmathmix.schema.FEATURES`:

* without ``data_files`` it calls :func:`datasets.load_dataset` with the source's Hub arguments, one split at a time;
* with ``data_files`` it reads local copies of the source's native files (Hub files, original releases, re-exports;
  plain or compressed; folders recursively, see :mod:`openmathmix.readers`). :func:`input_files` lists exactly the
  files a build reads; the :class:`BuildReport` names every file it was pointed at and did not read.

Both paths stream the input in chunks, map each chunk (vectorised with pyarrow where the layout allows), drop rows
whose question or answer is blank, and write the rows with ``datasets``' ``ArrowWriter`` into one Arrow file that the
returned :class:`datasets.Dataset` memory-maps. The :class:`BuildReport` accounts for every input record. A build
that yields no rows is an error, as is an empty input file.

Extra builder folders (private sources) can be listed in the ``OPENMATHMIX_BUILDERS`` environment variable
(separated like ``PATH``); a name defined twice raises :class:`DuplicateSourceError`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.resources
import importlib.util
import json
import os
import pkgutil
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets.arrow_writer import ArrowWriter
from datasets.utils.tqdm import tqdm as hf_tqdm

from .errors import DataFileError, DuplicateSourceError, OpenMathMixError, SourceError, UnknownSourceError
from .formats import FieldError, Mapped, RowMapping, nonblank
from .readers import (
    BATCH_ROWS,
    Chunk,
    Inputs,
    check_table_utf8,
    data_stem,
    expand_inputs,
    read_file,
    unreadable_reason,
)
from .schema import COLUMNS, FEATURES, TASKS

__all__ = [
    "BUILDERS_ENV",
    "BuildReport",
    "Source",
    "build_source",
    "discover",
    "fixture_files",
    "get_source",
    "input_files",
    "layout_fixtures",
    "list_sources",
    "source_card",
]

BUILDERS_ENV = "OPENMATHMIX_BUILDERS"
WRITER_BATCH_ROWS = 10_000  # rows per Arrow record batch in the output file
EMPTY_QUESTION = "empty question"
EMPTY_ANSWER = "empty answer"
SUMMARY_SKIPPED = 20  # files not read that BuildReport.summary() lists by name
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Source:
    """One training source of the paper, declared in ``builders/<name>.py``."""

    name: str  # registry name = file stem, e.g. "gsm8k_screl"
    task: str  # "reasoning" or "general" (openmathmix.schema.TASKS)
    license: str  # SPDX-like licence id written into every row, e.g. "mit", "cc-by-nc-4.0"
    paper_size: int  # rows in Table 1 of the paper (large setting where a source is in both)
    formats: tuple[RowMapping, ...]  # accepted row layouts; the first whose columns a file has is used for it
    title: str = ""  # display name, e.g. "GSM8K-ScRel"
    repo: str | None = None  # Hub dataset id; None = not on the Hub (local files only)
    config: str | None = None  # Hub config name (load_dataset's second argument)
    revision: str | None = None  # Hub commit or ref, pinned where known
    data_dir: str | None = None
    data_files: str | list[str] | dict[str, str | list[str]] | None = None
    split: str | tuple[str, ...] = "train"  # Hub split(s) used; each is an id origin
    homepage: str = ""
    notes: str = ""  # how rows are mapped, in one or two sentences (details in the card)
    non_commercial: bool = False  # the licence (or part of the data) forbids commercial use
    paper_size_base: int | None = None  # size in the base setting (Table 1, S_base), where it differs
    tsv_columns: tuple[str, ...] | None = None  # column names of a headerless .tsv release
    json_object: Callable[[dict], list | None] | None = None  # a file holding one JSON object -> its records
    unavailable: str = ""  # why there is no Hub path (repo=None), shown when no data files are given
    version: int = 1  # bump when the mapping changes meaning

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise SourceError(f"source name {self.name!r} must be snake_case (letters, digits, underscores)")
        if self.task not in TASKS:
            raise SourceError(f"source {self.name!r}: task {self.task!r} is not one of {list(TASKS)}")
        if not self.formats:
            raise SourceError(f"source {self.name!r} declares no row layouts (formats=...)")
        if not self.license or self.paper_size <= 0:
            raise SourceError(f"source {self.name!r} needs a licence and a positive paper_size")

    @property
    def splits(self) -> tuple[str, ...]:
        return (self.split,) if isinstance(self.split, str) else tuple(self.split)

    def hub_arguments(self, split: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments :func:`datasets.load_dataset` gets for one split."""
        kwargs = {"data_dir": self.data_dir, "data_files": self.data_files, "split": split, "revision": self.revision}
        return (self.repo, self.config), kwargs

    def layouts(self) -> str:
        return " or ".join(f.describe() for f in self.formats)

    @property
    def card(self) -> str:
        return source_card(self.name)

    @property
    def citation(self) -> str:
        """The BibTeX entries of the source's card (its ```bibtex blocks); empty when it has no card."""
        try:
            card = self.card
        except SourceError:
            return ""
        blocks = re.findall(r"```bibtex\n(.*?)```", card, flags=re.DOTALL)
        return "\n".join(b.strip() + "\n" for b in blocks)

    def build(self, data_files: Any = None, limit: int | None = None, **kwargs: Any):
        return build_source(self, data_files, limit, **kwargs)


@dataclass
class BuildReport:
    """What a build read and wrote. Every input unit is in the output, merged into an output row, or dropped.

    ``unit`` is what rows_in counts ("row"; "message" for OpenAssistant trees; "instance" for Self-Instruct tasks);
    ``records_in`` counts raw records (lines, array elements, Parquet rows) whatever the unit. ``skipped`` names
    every file the build was pointed at (inside a folder or matched by a glob) and did not read, with the reason;
    ``layouts`` says which of the source's layouts each input was read as.
    """

    source: str
    unit: str = "row"
    rows_in: int = 0
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> input units that produced no row
    merged: dict[str, int] = field(default_factory=dict)  # reason -> input units folded into another output row
    records_in: int = 0
    inputs: list[str] = field(default_factory=list)  # files read, or "hf://datasets/<repo>:<split>"
    cache_file: str = ""
    skipped: dict[str, str] = field(default_factory=dict)  # file not read -> why
    layouts: dict[str, str] = field(default_factory=dict)  # input -> the layout it was read as

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def n_merged(self) -> int:
        return sum(self.merged.values())

    def check(self) -> None:
        """Raise :class:`SourceError` unless rows_in == rows_out + dropped + merged."""
        if self.rows_in != self.rows_out + self.n_dropped + self.n_merged:
            raise SourceError(
                f"{self.source}: row accounting does not balance: {self.rows_in:,} {self.unit}s in, "
                f"{self.rows_out:,} out + {self.n_dropped:,} dropped {self.dropped} + {self.n_merged:,} merged "
                f"{self.merged}. This is a bug in the builder; please report it with the input files."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"source      {self.source}",
            f"rows in     {self.rows_in:,} ({self.unit}s" + (f", from {self.records_in:,} records)"
                                                           if self.records_in != self.rows_in else ")"),
            f"rows out    {self.rows_out:,}",
            f"dropped     {self.n_dropped:,}",
        ]
        lines += [f"  {n:>9,}  {reason}" for reason, n in sorted(self.dropped.items(), key=lambda x: (-x[1], x[0]))]
        if self.merged:
            lines.append(f"merged      {self.n_merged:,}")
            lines += [f"  {n:>9,}  {reason}" for reason, n in sorted(self.merged.items())]
        if self.skipped:
            lines.append(f"not read    {len(self.skipped):,} file(s)")
            shown = list(self.skipped.items())[:SUMMARY_SKIPPED]
            lines += [f"  {path}: {reason}" for path, reason in shown]
            if len(self.skipped) > len(shown):
                lines.append(f"  ... and {len(self.skipped) - len(shown):,} more (all are listed in the report)")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------------


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"openmathmix_user_builders.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def discover(extra_dirs: Sequence[str | Path] = ()) -> dict[str, Source]:
    """Import every ``builders/*.py`` (sorted), then ``*.py`` of each extra folder; name -> Source.

    Each module must define ``SOURCE``, a :class:`Source` whose name equals the file stem. Import errors propagate.
    """
    import openmathmix.builders as package

    candidates: list[tuple[str, str | Path]] = [
        (info.name, f"{package.__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name)
        if not info.ispkg and not info.name.startswith("_")
    ]
    for folder in extra_dirs:
        candidates += [(p.stem, p) for p in sorted(Path(folder).glob("*.py")) if not p.stem.startswith("_")]
    found: dict[str, tuple[Source, str]] = {}
    for stem, target in candidates:
        module = importlib.import_module(target) if isinstance(target, str) else _load_module(target)
        where = str(module.__file__)
        source = getattr(module, "SOURCE", None)
        if not isinstance(source, Source):
            raise SourceError(f"{where}: a builder module must define SOURCE = Source(...)")
        if source.name in found:
            raise DuplicateSourceError(
                f"source {source.name!r} is defined twice: in {found[source.name][1]} and in {where}; "
                "rename or remove one of them"
            )
        if source.name != stem:
            raise SourceError(f"{where}: SOURCE.name is {source.name!r}, but it must equal the file stem {stem!r}")
        found[source.name] = (source, where)
    return {name: src for name, (src, _) in found.items()}


@functools.cache
def _registry(extra: str) -> dict[str, Source]:
    return discover([d for d in extra.split(os.pathsep) if d])


def list_sources() -> list[Source]:
    """Every registered source, in discovery order (sorted by file name)."""
    return list(_registry(os.environ.get(BUILDERS_ENV, "")).values())


def get_source(name: str) -> Source:
    """The registered source called ``name``; :class:`UnknownSourceError` lists the valid names."""
    registry = _registry(os.environ.get(BUILDERS_ENV, ""))
    if name not in registry:
        import difflib

        close = difflib.get_close_matches(str(name), registry, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownSourceError(f"unknown source {name!r}.{hint} Valid names: {', '.join(registry)}")
    return registry[name]


def _package_dir(package: str) -> Path:
    return Path(str(importlib.resources.files(package)))


def fixture_files(name: str) -> list[str]:
    """The bundled sample of a source (``builders/fixtures/<name>.<ext>`` or ``builders/fixtures/<name>/*``): the
    rows the demo and the contract tests build."""
    get_source(name)
    root = _package_dir("openmathmix.builders") / "fixtures"
    files = [p for p in root.glob(f"{name}.*") if p.is_file()] + [p for p in root.glob(f"{name}/*") if p.is_file()]
    if not files:
        raise SourceError(f"source {name!r} has no fixture in {root} (expected {name}.<ext> or a {name}/ folder)")
    return sorted(str(p) for p in files)


def layout_fixtures(name: str) -> list[str]:
    """Samples of the source's other published layouts: the files under ``builders/fixtures/layouts/<name>/``."""
    get_source(name)
    folder = _package_dir("openmathmix.builders") / "fixtures" / "layouts" / name
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def source_card(name: str) -> str:
    """The markdown notes of a source (``cards/sources/<name>.md``): what it is, mapping, licence, BibTeX."""
    path = _package_dir("openmathmix.cards") / "sources" / f"{name}.md"
    if not path.is_file():
        raise SourceError(f"source {name!r} has no card: {path} is missing")
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------------------------


def _expand(source: Source, data_files: Any) -> Inputs:
    tsv = bool(source.tsv_columns)
    return expand_inputs(data_files, unreadable=lambda path: unreadable_reason(path, tsv=tsv))


def input_files(name: str | Source, data_files: Any) -> list[Path]:
    """Exactly the files a build of ``name`` from ``data_files`` reads, in order (paths, globs and folders expanded
    the same way); reads no data. None (a Hub build) reads no local file: []. Raises DataFileNotFoundError /
    DataFileError as the build would."""
    source = name if isinstance(name, Source) else get_source(name)
    return _expand(source, data_files).files if data_files is not None else []


def _origins(paths: list[Path]) -> list[str]:
    """File stems (data and compression suffixes removed); where stems clash, prefixed with as many parent folder
    names as it takes to tell the files apart (``a.train``, ``b.train``)."""
    out = [data_stem(p) for p in paths]
    parents = [[part for part in p.parent.parts if part not in (p.anchor, "..", ".")] for p in paths]
    for depth in range(1, max(map(len, parents)) + 2):
        clash = {o for o, n in Counter(out).items() if n > 1}
        if not clash:
            return out
        out = [".".join([*parts[len(parts) - min(depth, len(parts)):], data_stem(p)]) if o in clash else o
               for o, p, parts in zip(out, paths, parents, strict=True)]
    counts = Counter(out)
    same = [str(p) for p, o in zip(paths, out, strict=True) if counts[o] > 1]
    raise DataFileError(f"{', '.join(same)}: these files differ only in their suffixes, so their rows would get the "
                        "same ids; rename one of them (or pass only one)")


def _local_chunks(source: Source, paths: list[Path], batch_rows: int) -> Iterator[Chunk]:
    prefer_records = any(f.prefer_records for f in source.formats)
    text_columns = {c for f in source.formats for c in f.text_columns()}
    for path, origin in zip(paths, _origins(paths), strict=True):
        yield from read_file(path, origin, batch_rows=batch_rows, tsv_columns=source.tsv_columns,
                             prefer_records=prefer_records, text_columns=text_columns,
                             object_records=source.json_object)


def _no_hub(source: Source) -> SourceError:
    return SourceError(
        f"{source.unavailable or f'{source.title or source.name} has no known Hub dataset'}. Build it from local "
        f"files instead: `openmathmix sources build {source.name} --data-files PATH --out DIR` (or "
        f"build_source({source.name!r}, data_files=[...])); accepted layouts: {source.layouts()}"
    )


def _load_split(source: Source, split: str) -> datasets.Dataset:
    """:func:`datasets.load_dataset` for one split; a Hub that cannot be reached or a missing repo is a SourceError."""
    from datasets.exceptions import DatasetNotFoundError, DatasetsError
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    args, kwargs = source.hub_arguments(split)
    where = f"{source.repo} (split {split!r}, revision {source.revision or 'main'})"
    local = (f"or build from local copies of its files: `openmathmix sources build {source.name} --data-files PATH "
             f"--out DIR` (accepted layouts: {source.layouts()})")
    try:
        return datasets.load_dataset(*args, **kwargs)
    except ConnectionError as err:
        raise SourceError(f"{source.name}: cannot reach the Hugging Face Hub to load {where}: {err}. Check the "
                          f"network (and that HF_HUB_OFFLINE / HF_DATASETS_OFFLINE are unset), {local}") from err
    except (DatasetNotFoundError, RepositoryNotFoundError) as err:
        raise SourceError(f"{source.name}: {where} was not found on the Hub, or it is gated: {err}. Check the id, "
                          f"accept its terms on the Hub and log in (`hf auth login`), {local}") from err
    except (OSError, DatasetsError, EntryNotFoundError) as err:
        raise SourceError(f"{source.name}: loading {where} from the Hub failed: {err}. Retry, {local}") from err


def _hub_chunks(source: Source, batch_rows: int) -> Iterator[Chunk]:
    for split in source.splits:
        ds = _load_split(source, split)
        table_view = ds.with_format("arrow")
        for start in range(0, len(ds), batch_rows):
            table = table_view[start:start + batch_rows]
            check_table_utf8(table, lambda row, s=start, sp=split: f"hf://datasets/{source.repo} split '{sp}'"
                             + (f", row {s + row}" if row is not None else ""))
            rows = np.arange(start, start + table.num_rows, dtype=np.int64)
            yield Chunk(f"hf://datasets/{source.repo}", split, "hub", rows, table)


def _pick_format(source: Source, chunk: Chunk) -> RowMapping:
    names = chunk.column_names
    for fmt in source.formats:
        if fmt.matches(names):
            return fmt
    needs = [[c.removesuffix("[0]") for c in f.needs()] for f in source.formats if f.needs()]
    missing = min(([c for c in cols if c not in names] for cols in needs), key=len, default=[])
    raise DataFileError(
        f"{chunk.locate(0)}: missing required column(s) {missing or ''} for source {source.name!r}: found columns "
        f"{sorted(names)}, expected {source.layouts()}. Rename the columns, or pass the files the source "
        f"publishes (see `openmathmix sources list` and the source's card)."
    )


def _nonblank(arr: pa.Array) -> np.ndarray:
    return nonblank(arr).to_numpy(zero_copy_only=False)


class _Builder:
    """Maps chunks of one source and writes the kept rows; keeps the report."""

    def __init__(self, source: Source, writer: ArrowWriter, report: BuildReport):
        self.source, self.writer, self.report = source, writer, report
        self.dropped: Counter = Counter()
        self.merged: Counter = Counter()
        self.units: set[str] = set()

    def map(self, fmt: RowMapping, chunk: Chunk | list[Chunk]) -> None:
        first = chunk if isinstance(chunk, Chunk) else chunk[0]
        try:
            mapped = fmt.map(chunk) if isinstance(chunk, Chunk) else fmt.map_origin(chunk)
        except FieldError as err:
            raise DataFileError(
                f"{first.locate(err.index) if isinstance(chunk, Chunk) else first.path}: {err.describe()}. "
                f"{self.source.name} expects {self.source.layouts()}; fix the value or the file."
            ) from err
        self.units.add(fmt.unit)
        self.emit(mapped, first.origin)

    def emit(self, mapped: Mapped, origin: str) -> None:
        question = pc.utf8_trim_whitespace(mapped.question)
        answer = pc.utf8_trim_whitespace(mapped.answer)
        has_q, has_a = _nonblank(mapped.question), _nonblank(mapped.answer)
        extra = (mapped.extra.to_numpy(zero_copy_only=False) if mapped.extra is not None
                 else np.zeros(len(has_q), dtype=np.int64))
        for reason, mask in ((EMPTY_QUESTION, ~has_q), (EMPTY_ANSWER, has_q & ~has_a)):
            if mask.any():
                self.dropped[reason] += int(mask.sum() + extra[mask].sum())
        keep = has_q & has_a
        if mapped.merge_reason and extra[keep].sum():
            self.merged[mapped.merge_reason] += int(extra[keep].sum())
        self.dropped.update(mapped.dropped)
        self.report.rows_in += mapped.units_in
        n = int(keep.sum())
        if not n:
            return
        rows = mapped.rows
        if n < len(keep):
            take = pa.array(np.flatnonzero(keep))
            rows, question, answer = rows.take(take), question.take(take), answer.take(take)
        columns = {
            "id": pc.binary_join_element_wise(f"{self.source.name}/{origin}/", rows, ""),
            "source": pa.repeat(self.source.name, n),
            "task": pa.repeat(self.source.task, n),
            "question": question,
            "answer": answer,
            "license": pa.repeat(self.source.license, n),
        }
        self.writer.write_table(pa.table([columns[c] for c in COLUMNS], names=list(COLUMNS)))
        self.report.rows_out += n

    def run(self, chunks: Iterator[Chunk], limit: int | None, progress: bool) -> None:
        current: tuple[str, str] | None = None
        fmt: RowMapping | None = None
        pending: list[Chunk] = []
        bar = hf_tqdm(desc=f"building {self.source.name}", unit=" records", disable=not progress)
        try:
            for chunk in chunks:
                if limit is not None:
                    if self.report.records_in >= limit:
                        break
                    chunk = chunk.head(limit - self.report.records_in)
                if (chunk.path, chunk.origin) != current:
                    if pending:
                        self.map(fmt, pending)
                        pending = []
                    current = (chunk.path, chunk.origin)
                    fmt = _pick_format(self.source, chunk)
                    name = chunk.path if chunk.kind != "hub" else f"{chunk.path}:{chunk.origin}"
                    self.report.inputs.append(name)
                    self.report.layouts[name] = fmt.describe()
                self.report.records_in += len(chunk)
                bar.update(len(chunk))
                if fmt.whole_origin:
                    pending.append(chunk)
                else:
                    self.map(fmt, chunk)
            if pending:
                self.map(fmt, pending)
        finally:
            bar.close()
        self.report.unit = "/".join(sorted(self.units)) or "row"
        self.report.dropped = {k: v for k, v in sorted(self.dropped.items()) if v}
        self.report.merged = {k: v for k, v in sorted(self.merged.items()) if v}


def _fingerprint(source: Source, paths: list[Path] | None, limit: int | None) -> str:
    if paths is None:
        inputs: Any = [source.repo, source.config, source.revision, source.data_dir, source.data_files, source.splits]
    else:
        inputs = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    blob = json.dumps([source.name, source.version, inputs, limit], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(datasets.config.HF_DATASETS_CACHE) / "openmathmix" / "sources"


def build_source(
    name: str | Source,
    data_files: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    limit: int | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: bool = True,
) -> tuple[datasets.Dataset, BuildReport]:
    """Build one source into rows of :data:`FEATURES`.

    Args:
        name: a registered source name (or a :class:`Source`).
        data_files: local files, globs or folders (read recursively) in the source's native layouts, plain or
            compressed; None = the Hub (:func:`datasets.load_dataset` with the source's repo, config, data_dir,
            data_files, split, revision).
        limit: read at most this many raw records (lines, array elements, rows, message trees), across all inputs.
        cache_dir: where the Arrow file is written (default: ``<HF_DATASETS_CACHE>/openmathmix/sources``).
        batch_rows: records per chunk.
        progress: show a progress bar (datasets' ``disable_progress_bars()`` also silences it).

    Returns:
        The dataset (memory-mapped from the Arrow file) and the :class:`BuildReport`, already checked.

    Raises:
        UnknownSourceError: ``name`` is not registered.
        DataFileNotFoundError: a data file, folder or glob does not exist (a FileNotFoundError).
        DataFileError: a file is empty, not UTF-8, or structurally broken (invalid JSON, missing column, wrong
            type), or the inputs yield no rows (a ValueError); the message names the file, the line or row, what
            was found and what was expected.
        SourceError: no data files for a source that is not on the Hub; the Hub cannot be reached; the cache
            cannot be written.
    """
    source = name if isinstance(name, Source) else get_source(name)
    if limit is not None and limit < 1:
        raise SourceError(f"limit must be >= 1 (records to read), got {limit}")
    inputs = _expand(source, data_files) if data_files is not None else None
    paths = inputs.files if inputs is not None else None
    if paths is None and not source.repo:
        raise _no_hub(source)
    chunks = _local_chunks(source, paths, batch_rows) if paths is not None else _hub_chunks(source, batch_rows)
    out_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _fingerprint(source, paths, limit)
    final = out_dir / f"{source.name}-{key}.arrow"
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    report = BuildReport(source=source.name, skipped=dict(inputs.skipped) if inputs is not None else {})
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stream = pa.OSFile(str(tmp), "wb")  # a native file: Arrow writes its buffers without going through Python
    except OSError as err:
        raise _cache_error(tmp, err) from err
    writer = ArrowWriter(features=FEATURES, stream=stream, writer_batch_size=WRITER_BATCH_ROWS)
    try:
        _Builder(source, writer, report).run(chunks, limit, progress)
        report.check()
        if not report.rows_out:
            raise _no_rows(source, report)
        writer.finalize()
        os.replace(tmp, final)
    except OpenMathMixError:
        raise
    except OSError as err:  # reading errors arrive as OpenMathMixErrors: an OSError here is about the cache
        raise _cache_error(tmp, err) from err
    finally:
        if not stream.closed:
            stream.close()
        tmp.unlink(missing_ok=True)  # our own temporary cache file (gone after a successful rename)
    report.cache_file = str(final)
    info = datasets.DatasetInfo(
        description=f"{source.title or source.name} mapped to the OpenMathMix question/answer schema",
        citation=source.citation, homepage=source.homepage, license=source.license, features=FEATURES,
    )
    # The file is rewritten on every call, so the fingerprint `datasets` derives from it would change each run and
    # no stage cache keyed on it would be found again; give the dataset the key of its definition and inputs instead.
    ds = datasets.Dataset.from_file(str(final), info=info)
    return ds.select(range(len(ds)), new_fingerprint=key), report


def _cache_error(path: Path, err: OSError) -> SourceError:
    return SourceError(f"cannot write the source cache file {path} ({err.strerror or err}); free some space there "
                       "or choose another cache folder (cache_dir=..., or HF_DATASETS_CACHE)")


def _no_rows(source: Source, report: BuildReport) -> DataFileError:
    hub = f"hf://datasets/{source.repo} (split {', '.join(source.splits)})"
    where = ", ".join(report.inputs) or hub
    why = "; ".join(f"{n:,} {reason}" for reason, n in report.dropped.items()) or "no records"
    return DataFileError(
        f"{source.name}: {where} yielded no rows ({report.records_in:,} records read; dropped: {why}). Check that "
        f"these are the source's files; it expects {source.layouts()}"
    )
