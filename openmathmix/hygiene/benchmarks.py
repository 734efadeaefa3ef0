"""Benchmark registry for decontamination: builders/benchmarks/<name>.py (a declarative Benchmark each) -> Dataset.

A benchmark is one small file in ``builders/benchmarks/`` (installed as ``openmathmix.builders.benchmarks``) that
defines ``BENCHMARK = Benchmark(...)``: its Hub dataset (repo, configs, split) and the row layouts its native files
come in (:class:`openmathmix.formats.Columns`, the first whose columns a file has is used). Its fixture, in a native
layout and written for the tests, is ``builders/benchmarks/fixtures/<name>.<ext>`` or a ``<name>/`` folder.

:func:`build_benchmark` reads it from local files (paths, globs, folders; any layout it declares) or, without
files, from the Hub with :func:`datasets.load_dataset`, and returns a :class:`datasets.Dataset` with the columns
``id`` (``<name>/<file or config>/<row>``), ``question`` and ``answer``. :func:`build_benchmark_files` does the same
for a user's own file in any common layout (question/answer, problem/solution, query/response, ...).
"""

from __future__ import annotations

import importlib
import importlib.resources
import pkgutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataFileError, SourceError, UnknownSourceError
from ..formats import Columns
from ..readers import Chunk, data_stem, expand_inputs, read_file, unreadable_reason

__all__ = [
    "BENCHMARK_FEATURES",
    "COMMON_LAYOUTS",
    "Benchmark",
    "benchmark_fixture_files",
    "build_benchmark",
    "build_benchmark_files",
    "get_benchmark",
    "list_benchmarks",
]

PACKAGE = "openmathmix.builders.benchmarks"
BENCHMARK_FEATURES = datasets.Features(
    {"id": datasets.Value("string"), "question": datasets.Value("string"), "answer": datasets.Value("string")}
)
COMMON_LAYOUTS = (  # user files: the first layout whose columns a file has
    Columns("question", "answer"),
    Columns("problem", "solution"),
    Columns("query", "response"),
    Columns("instruction", "output"),
    Columns("input", "output"),
    Columns("prompt", "completion"),
    Columns("question", "solution"),
    Columns("problem", "answer"),
)


@dataclass(frozen=True)
class Benchmark:
    """One benchmark test set, declared in ``builders/benchmarks/<name>.py``."""

    name: str  # registry name = file stem; used in reasons: "contaminated:<name>"
    title: str  # display name, e.g. "GSM8K (test)"
    formats: tuple[Columns, ...]  # accepted native layouts (question column, answer column)
    size: int  # items in the test set (the Hub split, all configs together)
    repo: str | None = None  # Hub dataset id
    configs: tuple[str | None, ...] = (None,)  # Hub configs read (MATH is one config per subject)
    split: str = "test"
    revision: str | None = None  # Hub commit or ref, pinned where known
    homepage: str = ""
    notes: str = ""  # where the native files come from, in a sentence

    def __post_init__(self) -> None:
        if not self.formats:
            raise SourceError(f"benchmark {self.name!r} declares no row layouts (formats=...)")
        if self.size <= 0:
            raise SourceError(f"benchmark {self.name!r} needs a positive size")

    def layouts(self) -> str:
        return " or ".join(f.describe() for f in self.formats)


def list_benchmarks() -> list[Benchmark]:
    """Every registered benchmark, sorted by name."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, Benchmark] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.ispkg or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        bench = getattr(module, "BENCHMARK", None)
        if not isinstance(bench, Benchmark) or bench.name != info.name:
            raise SourceError(f"{module.__file__}: a benchmark module must define BENCHMARK = Benchmark(name="
                              f"{info.name!r}, ...)")
        found[bench.name] = bench
    return list(found.values())


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark called ``name``; :class:`UnknownSourceError` lists the valid names."""
    registry = {b.name: b for b in list_benchmarks()}
    if name not in registry:
        raise UnknownSourceError(f"unknown benchmark {name!r}; registered benchmarks: {', '.join(registry)}. "
                                 "Pass a file of your own with build_benchmark_files(name, files).")
    return registry[name]


def benchmark_fixture_files(name: str) -> list[str]:
    """The bundled fixture files of a benchmark (``fixtures/<name>.<ext>`` or every file under ``fixtures/<name>/``)."""
    get_benchmark(name)
    root = Path(str(importlib.resources.files(PACKAGE))) / "fixtures"
    files = [p for p in root.glob(f"{name}.*") if p.is_file()] + [p for p in root.glob(f"{name}/**/*") if p.is_file()]
    if not files:
        raise SourceError(f"benchmark {name!r} has no fixture in {root}")
    return sorted(str(p) for p in files)


def _origin(path: Path, root: Path | None) -> str:
    """The middle part of the ids: the file's path under the folder given (MATH: ``algebra/17``), else its stem."""
    if root is not None and root in path.parents:
        return "/".join([*path.relative_to(root).parent.parts, data_stem(path)])
    return data_stem(path)


def _local_chunks(paths: Sequence[Any]) -> Iterator[Chunk]:
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    roots = [Path(p) for p in items if Path(p).is_dir()]
    files = expand_inputs(items, unreadable=lambda p: unreadable_reason(p, tsv=False)).files
    origins = [_origin(f, next((r for r in roots if r in f.parents), None)) for f in files]
    if len(set(origins)) < len(origins):
        raise DataFileError(f"several benchmark files map to the same id origin: {sorted(origins)}; rename them")
    for path, origin in zip(files, origins, strict=True):
        yield from read_file(path, origin)


def _hub_chunks(bench: Benchmark) -> Iterator[Chunk]:
    if not bench.repo:
        raise SourceError(f"benchmark {bench.name!r} has no Hub dataset; pass its files (accepted layouts: "
                          f"{bench.layouts()})")
    for config in bench.configs:
        ds = datasets.load_dataset(bench.repo, config, split=bench.split, revision=bench.revision)
        table = ds.with_format("arrow")[:]
        yield Chunk(f"hf://datasets/{bench.repo}", config or bench.split, "hub",
                    np.arange(table.num_rows, dtype=np.int64), table)


def _collect(name: str, chunks: Iterator[Chunk], formats: Sequence[Columns]) -> datasets.Dataset:
    ids, questions, answers = [], [], []
    for chunk in chunks:
        fmt = next((f for f in formats if f.matches(chunk.column_names)), None)
        if fmt is None:
            raise DataFileError(f"{chunk.path}: benchmark {name!r} expects columns "
                                f"{' or '.join(f.describe() for f in formats)}; the file has {sorted(chunk.column_names)}")
        mapped = fmt.map(chunk)
        ids.append(pc.binary_join_element_wise(f"{name}/{chunk.origin}/", mapped.rows, ""))
        questions.append(pc.fill_null(mapped.question, ""))
        answers.append(pc.fill_null(mapped.answer, ""))
    if not ids:
        raise DataFileError(f"benchmark {name!r}: no items were read")
    table = pa.table({"id": pa.concat_arrays(ids), "question": pa.concat_arrays(questions),
                      "answer": pa.concat_arrays(answers)})
    return datasets.Dataset(table, info=datasets.DatasetInfo(description=f"benchmark {name}",
                                                             features=BENCHMARK_FEATURES))


def build_benchmark(name: str | Benchmark, data_files: Any = None) -> datasets.Dataset:
    """A registered benchmark as a Dataset (id, question, answer), from ``data_files`` in one of its native
    layouts, or from the Hub when no files are given."""
    bench = name if isinstance(name, Benchmark) else get_benchmark(name)
    chunks = _local_chunks(data_files) if data_files is not None else _hub_chunks(bench)
    return _collect(bench.name, chunks, bench.formats)


def build_benchmark_files(name: str, data_files: Any, *, question: str | None = None,
                          answer: str | None = None) -> datasets.Dataset:
    """A user's benchmark file(s) as a Dataset (id, question, answer). Columns: ``question``/``answer`` when given,
    else the first of :data:`COMMON_LAYOUTS` the file has."""
    if (question is None) != (answer is None):
        raise DataFileError(f"benchmark {name!r}: give both the question and the answer column, or neither")
    formats = (Columns(question, answer),) if question is not None else COMMON_LAYOUTS
    return _collect(name, _local_chunks(data_files), formats)
