"""A selected mixture -> a release folder laid out like a Hub dataset repository (parquet, card, figures, manifest).

Layout written by `write_release(mixture, out_dir, ...)`:

    README.md                 dataset card (YAML header with `configs:` and `dataset_info:`, see `release.card`)
    LICENSE.md                per-source licences (the mixture adds none of its own)
    manifest.json             versions, settings, models, row counts per config and source, sha256 of every file
    data/default/train-00000-of-0000N.parquet    the full mixture
    data/ratio_10/...  data/ratio_40/...  data/ratio_70/...   the nested subsets
    figures/score_histogram.png  figures/mean_score_per_source.png  figures/composition.png

`datasets.load_dataset(out_dir)` gives the full mixture and `load_dataset(out_dir, "ratio_10")` a subset; the same
calls work on the Hub repository once `openmathmix publish` has uploaded the folder.

The folder is built next to `out_dir` and moved into place at the end, so a failed or interrupted write never
leaves half a release behind, and an earlier release in `out_dir` is replaced as a whole (no stale shards). Before
the move, every text file is scanned for Hugging Face tokens (`check_no_secrets`); a hit aborts the release.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..compat import selected_bytes
from ..errors import MissingColumnsError, PublishError
from ..schema import COLUMNS, EMBEDDING, QADS_RANK, QUALITY_SCORE
from ..stages.base import progress_bars_off
from .figures import FIGURES, write_figures
from .manifest import MANIFEST, README, build_manifest
from .scan import check_no_secrets

__all__ = ["DEFAULT_MAX_SHARD_SIZE", "RELEASE_COLUMNS", "parse_size", "write_parquet_shards", "write_release"]

DEFAULT_MAX_SHARD_SIZE = "500MB"  # per parquet file, measured on the Arrow data (the same rule as push_to_hub)
DEFAULT_CONFIG = "default"
SPLIT = "train"
RELEASE_COLUMNS = (*COLUMNS[:-1], QUALITY_SCORE, QADS_RANK, COLUMNS[-1])  # id ... answer, scores, license
SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}

COLUMN_DOCS = {
    "id": "stable row id `<source>/<origin>/<row>`, unique across the mixture",
    "source": "name of the source dataset in the openmathmix registry",
    "task": "`reasoning` (math) or `general` (instruction following)",
    "question": "the prompt",
    "answer": "the reference response",
    QUALITY_SCORE: "expected 1-5 label of the trained quality scorer (higher is more influential)",
    QADS_RANK: "position of the row in its source's QaDS order, from 0; subsets keep the smallest ranks",
    "license": "licence of the row's source",
    EMBEDDING: "mean-pooled last hidden state used for selection",
}


def write_release(
    mixture,
    out_dir: str | os.PathLike,
    *,
    subsets: Mapping[str, Any] | None = None,
    composition: Any = None,
    settings: Mapping[str, Any] | None = None,
    scorer_report: Mapping[str, Any] | None = None,
    sources: Sequence[str] | None = None,
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    keep_embedding: bool = False,
    repo_id: str | None = None,
    pretty_name: str | None = None,
    description: str = "",
    version: str | None = None,
) -> Path:
    """Write `mixture` (a `datasets.Dataset` with `quality_score` and `qads_rank`) as a release folder; return it.

    Args:
        subsets: config name -> a `Dataset` of mixture rows, a boolean row mask over `mixture`, or row indices into
            it. None derives the nested subsets from `qads_rank` (`select.mixture.iter_subsets`, ratios from
            `settings["subset_ratios"]` or 10/40/70 %).
        composition: the selection report: a `select.mixture.MixtureReport`, or a list of per-source dicts
            (`source`, `available`, `kept`, `ratio`, `mean_quality`, ...). None counts the mixture's own rows.
        settings: build settings recorded in the manifest and the card (`preset`, `seed`, `n1`, `n2`, `models`
            {role: {"name", "revision"}}, budgets, binning, ...). JSON-serialisable.
        scorer_report: the scorer's evaluation (`pearson` as a number or per task, `n_eval`, `kind`, ...).
        sources: source names in card order (default: the order of first appearance in the mixture).
        max_shard_size: largest parquet shard, in bytes or as "500MB".
        keep_embedding: also write the `embedding` column (dropped by default: large and model-specific).
        repo_id: the Hub repository the card's usage examples name.
        version: release version for the manifest and the tag (default: the openmathmix version).
    """
    from datasets import Dataset

    from .. import __version__
    from .card import ConfigSummary, ReleaseSummary, license_markdown, make_card, source_info

    if not isinstance(mixture, Dataset):
        raise PublishError(f"write_release needs a datasets.Dataset, got {type(mixture).__name__}")
    settings = dict(settings or {})
    scorer_report = dict(scorer_report or {})
    columns = _release_columns(mixture, keep_embedding)
    mixture = mixture.select_columns(columns)
    configs = {DEFAULT_CONFIG: mixture, **_resolve_subsets(mixture, subsets, settings)}
    out_dir = Path(out_dir)
    _check_target(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        summaries = []
        for name, ds in configs.items():
            data_dir = f"data/{name}"
            paths = write_parquet_shards(ds, tmp / data_dir, max_shard_size)
            summaries.append(
                ConfigSummary(
                    name=name,
                    data_dir=data_dir,
                    rows=len(ds),
                    num_bytes=selected_bytes(ds),
                    download_size=sum(p.stat().st_size for p in paths),
                    description=_config_description(name, len(ds), len(mixture)),
                    per_source=_count_by(ds, "source"),
                )
            )
        names = list(sources) if sources else list(summaries[0].per_source)
        rows = _composition_rows(composition, mixture, [c for c in configs if c != DEFAULT_CONFIG], summaries)
        licences = _values_by_source(mixture, "license")
        tasks = {r["source"]: r.get("task") for r in rows}
        infos = [source_info(n, licences.get(n, ()), tasks.get(n)) for n in names]
        figures = write_figures(tmp / "figures", configs, rows)
        summary = ReleaseSummary(
            pretty_name=pretty_name or _pretty_name(settings),
            version=version or __version__,
            configs=summaries,
            composition=rows,
            subset_names=[c for c in configs if c != DEFAULT_CONFIG],
            sources=infos,
            settings=settings,
            scorer=scorer_report,
            figures=[{"path": f"figures/{p.name}", "title": FIGURES[p.stem][0], "caption": FIGURES[p.stem][1]}
                     for p in figures],
            columns=[{"name": c, "dtype": _dtype(mixture.features[c]), "description": COLUMN_DOCS.get(c, "")}
                     for c in columns],
            features=mixture.features,
            repo_id=repo_id,
            description=description or str(settings.get("description") or ""),
            embedding_kept=EMBEDDING in columns,
        )
        make_card(summary).save(tmp / README)
        (tmp / "LICENSE.md").write_text(license_markdown(summary), encoding="utf-8")
        manifest = build_manifest(summary, settings, scorer_report, rows, tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n",
                                    encoding="utf-8")
        check_no_secrets(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _release_columns(mixture, keep_embedding: bool) -> list[str]:
    missing = [c for c in RELEASE_COLUMNS if c not in mixture.column_names]
    if missing:
        raise MissingColumnsError(
            f"a release needs column(s) {missing}; the mixture has {mixture.column_names}. "
            "Score every row and run the selection (select_mixture) first"
        )
    columns = list(RELEASE_COLUMNS)
    if keep_embedding:
        if EMBEDDING not in mixture.column_names:
            raise MissingColumnsError(f"keep_embedding=True, but the mixture has no {EMBEDDING!r} column")
        columns.append(EMBEDDING)
    return columns


def _resolve_subsets(mixture, subsets: Mapping[str, Any] | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every subset as a Dataset of mixture rows, checked to hold only mixture ids."""
    from datasets import Dataset

    if subsets is None:
        from ..select.mixture import DEFAULT_SUBSET_RATIOS, iter_subsets

        return dict(iter_subsets(mixture, settings.get("subset_ratios") or DEFAULT_SUBSET_RATIOS))
    out = {}
    all_ids = None
    for name, spec in subsets.items():
        if name == DEFAULT_CONFIG or not re.fullmatch(r"[A-Za-z0-9_]+", str(name)):
            raise PublishError(f"subset name {name!r} is not allowed; use letters, digits and '_' (not 'default')")
        if isinstance(spec, Dataset):
            ds = spec.select_columns(mixture.column_names)
            if all_ids is None:
                all_ids = set(mixture["id"])
            stray = [i for i in ds["id"] if i not in all_ids]
            if stray:
                raise PublishError(f"subset {name!r} holds {len(stray)} row(s) not in the mixture, e.g. {stray[0]!r}")
        else:
            arr = np.asarray(spec)
            if arr.dtype == bool:
                if arr.shape != (len(mixture),):
                    raise PublishError(f"subset {name!r}: a mask needs {len(mixture)} entries, got {arr.shape}")
                arr = np.flatnonzero(arr)
            elif arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= len(mixture)):
                raise PublishError(f"subset {name!r}: indices must be integers in [0, {len(mixture)})")
            ds = mixture.select(arr.astype(np.int64))
        out[str(name)] = ds
    return out


def _check_target(out_dir: Path) -> None:
    """Refuse to replace a folder that is neither empty nor an earlier release."""
    if out_dir.is_file():
        raise PublishError(f"{out_dir} is a file; give a folder for the release")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise PublishError(
            f"{out_dir} exists, is not empty and holds no {MANIFEST}: it does not look like an earlier release, "
            "so it is left alone. Choose another --out folder or empty this one"
        )


def write_parquet_shards(ds, folder: Path, max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE) -> list[Path]:
    """`ds` as `train-0000i-of-0000N.parquet` files of at most ~`max_shard_size` each (Arrow size, as push_to_hub)."""
    limit = parse_size(max_shard_size)
    if limit <= 0:
        raise PublishError(f"max_shard_size must be positive, got {max_shard_size!r}")
    num_shards = max(1, min(len(ds), int(selected_bytes(ds) / limit) + 1))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with progress_bars_off():  # a release has few, quick shards
        for index in range(num_shards):
            path = folder / f"{SPLIT}-{index:05d}-of-{num_shards:05d}.parquet"
            ds.shard(num_shards=num_shards, index=index, contiguous=True).to_parquet(str(path))
            paths.append(path)
    return paths


def _count_by(ds, column: str) -> dict[str, int]:
    import pyarrow.compute as pc

    if not len(ds):
        return {}
    counts = pc.value_counts(ds.select_columns([column]).with_format("arrow")[:].column(column))
    return {str(x["values"]): int(x["counts"]) for x in counts.to_pylist()}


def _values_by_source(ds, column: str) -> dict[str, list[str]]:
    table = ds.select_columns(["source", column]).with_format("arrow")[:]
    pairs = dict.fromkeys(zip(table.column("source").to_pylist(), table.column(column).to_pylist(), strict=True))
    out: dict[str, list[str]] = {}
    for src, value in pairs:
        out.setdefault(src, []).append(value)
    return out


def _composition_rows(composition, mixture, subset_names: list[str], summaries) -> list[dict[str, Any]]:
    """Per-source rows for the card and manifest, with the subset counts measured on the written configs."""
    rows = getattr(composition, "rows", None)
    if rows is None and isinstance(composition, Mapping):
        rows = composition.get("sources")
    if rows is None:
        rows = composition
    kept = summaries[0].per_source
    if rows is None:  # nothing given: describe the mixture by its own rows
        scores = _mean_by_source(mixture)
        rows = [{"source": s, "available": None, "kept": n, "mean_quality_kept": scores.get(s)}
                for s, n in kept.items()]
    per_config = {c.name: c.per_source for c in summaries}
    out = []
    for row in rows:
        r = dict(row)
        name = r["source"]
        r.setdefault("task", None)
        r.setdefault("policy", None)
        r["kept"] = r.get("kept", kept.get(name, 0))
        r.setdefault("available", None)
        if r.get("ratio") is None and r.get("available"):
            r["ratio"] = r["kept"] / r["available"]
        r.setdefault("ratio", None)
        r["mean_quality"] = r.get("mean_quality", r.get("mean_quality_score", r.get("mean_score")))
        r.setdefault("mean_quality_kept", None)
        r["subsets"] = {n: per_config[n].get(name, 0) for n in subset_names}
        out.append(r)
    return out


def _mean_by_source(ds) -> dict[str, float]:
    table = ds.select_columns(["source", QUALITY_SCORE]).with_format("arrow")[:]
    src = np.asarray(table.column("source").to_pylist())
    score = table.column(QUALITY_SCORE).to_numpy(zero_copy_only=False).astype(np.float64)
    return {s: float(score[src == s].mean()) for s in dict.fromkeys(src.tolist())}


def _config_description(name: str, rows: int, total: int) -> str:
    if name == DEFAULT_CONFIG:
        return "the full mixture, rows grouped by source and in QaDS order within each source"
    match = re.fullmatch(r"ratio_(\d+(?:\.\d+)?)", name)
    share = f" ({100 * rows / total:.1f} % of the rows)" if total else ""
    if match:
        return f"nested subset: the first {match.group(1)} % of each source's QaDS order{share}"
    return f"subset `{name}`{share}"


def _pretty_name(settings: Mapping[str, Any]) -> str:
    preset = settings.get("preset")
    if not preset or preset == "openmathmix":
        return "OpenMathMix"
    return f"OpenMathMix ({preset})"


def _dtype(feature) -> str:
    dtype = getattr(feature, "dtype", None)
    if dtype is not None:
        return str(dtype)
    return type(feature).__name__


def parse_size(size: int | str) -> int:
    """Bytes of `size`: an int, or a string such as "500MB" (10**6) or "2GiB" (2**30)."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(size))
    unit = match.group(2).upper() if match else None
    if unit not in SIZE_UNITS:
        raise PublishError(f"max_shard_size {size!r} is not a size; use bytes or a string such as '500MB'")
    return int(float(match.group(1)) * SIZE_UNITS[unit])
