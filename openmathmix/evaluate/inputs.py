"""What `evaluate` reads: a scored pool (a ``save_to_disk`` folder or a release with embeddings) and benchmarks.

A pool needs ``source``, ``question``, ``answer``, ``embedding`` and ``quality_score``: the output of
``openmathmix score`` (or any dataset with those columns), or a release folder built with ``--keep-embedding``
(checked against its manifest first; its ``pool`` config of every candidate row when it has one, else the mixture,
``default``).

A benchmark is a local file (JSON Lines, JSON, Parquet, CSV) or a Hub dataset ``org/name[:config][@split]`` (split
``test`` by default), for example ``openai/gsm8k:main`` or ``HuggingFaceH4/MATH-500``. The question column is the
first of ``question, query, problem, prompt, instruction, input`` it has; the reference solution the first of
``solution, response, answer, output, completion, target``; the final answer is the ``answer`` column when the
solution is another column (MATH-500), else the solution itself (its ``#### N`` line for GSM8K).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingColumnsError, SelectionError
from ..schema import EMBEDDING, QUALITY_SCORE
from .proxy import Benchmark

__all__ = ["Pool", "load_benchmark", "load_dataset_folder", "load_pool", "pool_from_dataset"]

QUESTION_COLUMNS = ("question", "query", "problem", "prompt", "instruction", "input")
SOLUTION_COLUMNS = ("solution", "response", "answer", "output", "completion", "target")
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
POOL_COLUMNS = ("source", "question", "answer", EMBEDDING, QUALITY_SCORE)
POOL_CONFIG = "pool"  # a release's config of every row that entered selection (else its mixture, "default")


@dataclass
class Pool:
    """A scored pool as arrays (row order of ``dataset``), plus the dataset for the training rows."""

    dataset: Any
    source: np.ndarray
    embeddings: np.ndarray
    quality: np.ndarray
    lengths: np.ndarray  # answer length in characters
    origin: str
    key: str  # content identity (the dataset's fingerprint): part of every cached run's key

    def __len__(self) -> int:
        return len(self.source)

    def counts(self) -> dict[str, int]:
        """Rows per source, in order of first appearance."""
        names = list(dict.fromkeys(self.source.tolist()))
        return {name: int((self.source == name).sum()) for name in names}


def pool_from_dataset(ds: Any, origin: str = "<memory>") -> Pool:
    """Read the columns evaluation needs from a ``datasets.Dataset``; missing or broken columns are errors."""
    from ..compat import fingerprint
    from ..select.mixture import read_selection_columns

    missing = [c for c in POOL_COLUMNS if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(
            f"{origin}: evaluation needs column(s) {missing}; it has {ds.column_names}. Pass the output of "
            "`openmathmix score`, or a release built with --keep-embedding"
        )
    if len(ds) == 0:
        raise SelectionError(f"{origin}: the pool has no rows")
    cols = read_selection_columns(ds, embedding_column=EMBEDDING, quality_column=QUALITY_SCORE, need_quality=True,
                                  need_lengths=True)
    emb = np.ascontiguousarray(cols.embeddings, dtype=np.float32)
    if not np.isfinite(emb).all():
        bad = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
        raise SelectionError(f"{origin}: row {bad} has a non-finite embedding; embed it again")
    if not np.isfinite(cols.quality).all():
        bad = int(np.flatnonzero(~np.isfinite(cols.quality))[0])
        raise SelectionError(f"{origin}: row {bad} has a non-finite {QUALITY_SCORE}; score it again")
    return Pool(ds, cols.source, emb, cols.quality, cols.lengths, origin, fingerprint(ds))


def load_dataset_folder(path: str | os.PathLike, split: str | None = None, what: str = "--in"):
    """A ``save_to_disk`` folder as one Dataset (``split`` picks one of a DatasetDict)."""
    import datasets

    path = Path(path)
    if not path.is_dir():
        raise SelectionError(f"{what} {path} is not a folder written by save_to_disk")
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as err:
        raise SelectionError(f"{what} {path} is not a folder written by save_to_disk ({err})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split is None and len(loaded) == 1:
            return next(iter(loaded.values()))
        if split not in loaded:
            raise SelectionError(f"{what} {path} holds splits {list(loaded)}; pick one with --split")
        return loaded[split]
    if split is not None:
        raise SelectionError(f"{what} {path} is a single Dataset; drop --split")
    return loaded


def load_pool(path: str | os.PathLike, split: str | None = None) -> Pool:
    """A pool from a ``save_to_disk`` folder or from a release folder (``manifest.json``) with embeddings."""
    from datasets import Dataset

    folder = Path(path)
    if (folder / "manifest.json").is_file():
        from ..release import validate_release

        manifest = validate_release(folder)  # sizes and sha256 of every file against the manifest
        config = POOL_CONFIG if POOL_CONFIG in manifest["configs"] else "default"
        ds = Dataset.from_parquet([str(folder / f) for f in manifest["configs"][config]["files"]])
        if EMBEDDING not in ds.column_names:
            raise MissingColumnsError(f"release {folder} has no {EMBEDDING!r} column; rebuild it with --keep-embedding")
        return pool_from_dataset(ds, f"{folder} ({config})")
    return pool_from_dataset(load_dataset_folder(folder, split), str(folder))


def _split_hub_id(spec: str) -> tuple[str, str | None, str]:
    repo, _, split = spec.partition("@")
    repo, _, config = repo.partition(":")
    return repo, config or None, split or "test"


def load_benchmark(spec: str, limit: int | None = None) -> Benchmark:
    """The first ``limit`` items of a benchmark file or Hub dataset (see the module docstring)."""
    import datasets

    path = Path(spec)
    suffix = next((s for s in FILE_BUILDERS if spec.endswith(s)), None)
    if path.is_file() or suffix is not None:
        if not path.is_file():
            raise SelectionError(f"benchmark file {spec} does not exist; pass an existing file or a Hub id")
        if suffix is None:
            raise SelectionError(f"benchmark file {spec}: unknown format; use one of {', '.join(FILE_BUILDERS)}")
        ds = datasets.load_dataset(FILE_BUILDERS[suffix], data_files=str(path), split="train")
        name, origin = path.name.split(".", 1)[0], path.name  # no local absolute paths in shared results
    else:
        repo, config, split = _split_hub_id(spec)
        try:
            ds = datasets.load_dataset(repo, config, split=split)
        except (OSError, ValueError, ConnectionError) as err:
            raise SelectionError(f"benchmark {spec!r}: could not load {repo} ({config or 'default'}, {split}): "
                                 f"{err}") from None
        name, origin = repo.rsplit("/", 1)[-1], spec
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    q_col = next((c for c in QUESTION_COLUMNS if c in ds.column_names), None)
    s_col = next((c for c in SOLUTION_COLUMNS if c in ds.column_names), None)
    if q_col is None or s_col is None:
        raise MissingColumnsError(
            f"benchmark {spec}: needs a question column (one of {list(QUESTION_COLUMNS)}) and a solution column "
            f"(one of {list(SOLUTION_COLUMNS)}); it has {ds.column_names}"
        )
    f_col = "answer" if "answer" in ds.column_names and s_col != "answer" else s_col
    rows = ds.select_columns(list(dict.fromkeys([q_col, s_col, f_col]))).to_dict()
    empty = [i for i, (q, s) in enumerate(zip(rows[q_col], rows[s_col])) if not q or not s]
    if empty:
        raise SelectionError(f"benchmark {spec}: item {empty[0]} has an empty question or solution "
                             f"({len(empty)} such item(s)); drop them from the file")
    if not rows[q_col]:
        raise SelectionError(f"benchmark {spec} has no items")
    return Benchmark(name, origin, tuple(map(str, rows[q_col])), tuple(map(str, rows[s_col])),
                     tuple(map(str, rows[f_col])))
