"""A selected mixture -> a release folder laid out like a Hub dataset repository (parquet, card, figures, manifest).

Layout written by `write_release(mixture, out_dir, ...)`:

    README.md                 dataset card (YAML header with `configs:` and `dataset_info:`, see `release.card`)
    LICENSE.md                per-source licences (the mixture adds none of its own)
    manifest.json             versions, settings, models, row counts per config and source, sha256 of every file
    data/default/train-00000-of-0000N.parquet    the full mixture
    data/ratio_10/...  data/ratio_40/...  data/ratio_70/...   the nested subsets
    data/pool/...             every row that entered selection, with `kept` (when a pool is given)
    figures/score_histogram.png  figures/mean_score_per_source.png  figures/composition.png  (+ extra figures)

`datasets.load_dataset(out_dir)` gives the full mixture and `load_dataset(out_dir, "ratio_10")` a subset; the same
calls work on the Hub repository once `openmathmix publish` has uploaded the folder.

The folder is written through `outputs.output_folder`: into a new folder beside `out_dir`, swapped in only when
complete, and replacing `out_dir` only if an earlier openmathmix output lives there (never a folder of someone
else's, whatever it holds). Before the swap the whole folder is scanned for tokens (parquet rows included) and the
card and manifest for local paths; a hit aborts the release and leaves `out_dir` as it was.
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
from ..errors import PublishError
from ..outputs import output_folder
from ..schema import EMBEDDING, QUALITY_SCORE
from ..stages.base import progress_bars_off
from .card import CardFigure, CardSection
from .columns import COLUMN_DOCS, KEPT, check_pool, config_columns, with_messages
from .figures import FIGURES, write_figures
from .manifest import DEFAULT_CONFIG, MANIFEST, POOL_CONFIG, README, build_manifest
from .scan import check_inputs, check_no_local_paths, check_no_secrets, portable

__all__ = ["DEFAULT_MAX_SHARD_SIZE", "parse_size", "write_parquet_shards", "write_release"]

DEFAULT_MAX_SHARD_SIZE = "500MB"  # per parquet file, measured on the Arrow data (the same rule as push_to_hub)
SPLIT = "train"
SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif", ".webp")


def write_release(
    mixture,
    out_dir: str | os.PathLike,
    *,
    pool=None,
    subsets: Mapping[str, Any] | None = None,
    composition: Any = None,
    settings: Mapping[str, Any] | None = None,
    scorer_report: Mapping[str, Any] | None = None,
    sources: Sequence[str] | None = None,
    sections: Sequence[CardSection] = (),
    extra_figures: Sequence[CardFigure] = (),
    max_shard_size: int | str = DEFAULT_MAX_SHARD_SIZE,
    keep_embedding: bool = False,
    repo_id: str | None = None,
    pretty_name: str | None = None,
    description: str = "",
    version: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write `mixture` (a `datasets.Dataset` with `quality_score` and `qads_rank`) as a release folder; return it.

    Args:
        pool: every row that entered selection (a `Dataset` with the mixture's columns, `qads_rank` = the row's
            position in its source's order under the preset's strategy, null where the strategy did not rank it,
            and a boolean `kept`), written as the `pool` config. The mixture must be exactly its kept rows with
            the same ranks, and each source must have the `available` count of `composition`.
        subsets: config name -> a `Dataset` of mixture rows, a boolean row mask over `mixture`, or row indices into
            it. None derives the nested subsets from `qads_rank` (`select.mixture.iter_subsets`, ratios from
            `settings["subset_ratios"]` or 10/40/70 %).
        composition: the selection report: a `select.mixture.MixtureReport`, or a list of per-source dicts with
            its keys (`source`, `task`, `policy`, `available`, `kept`, `ratio`, `mean_quality`,
            `mean_quality_kept`). None describes the mixture (and the pool, if given) by their rows.
        settings: build settings recorded in the manifest and the card (`preset`, `seed`, `n1`, `n2`, `models`
            {role: {"name", "revision"}}, budgets, binning, ...). JSON-serialisable. Local absolute paths in it
            are recorded by name (files with a short sha256).
        scorer_report: `{"kind": ..., "scorers": {name: {"task", "pearson", "n_eval", ...}}}`.
        sources: source names in card order (default: the order of first appearance in the mixture).
        sections: extra card sections (hygiene table, selection report, ...), shown after the method section.
        extra_figures: extra images for the card, copied into `figures/` under their file names.
        max_shard_size: largest parquet shard, in bytes or as "500MB".
        keep_embedding: also write the `embedding` column (dropped by default: large and model-specific).
        repo_id: the Hub repository the card's usage examples name.
        version: release version for the manifest and the tag (default: the openmathmix version).
        overwrite: replace an earlier openmathmix output at `out_dir` (a folder not written by openmathmix is
            never replaced).
    """
    from datasets import Dataset

    from .. import __version__
    from .card import ConfigSummary, ReleaseSummary, license_markdown, make_card, source_info

    for name, ds in (("mixture", mixture), ("pool", pool)):
        if ds is not None and not isinstance(ds, Dataset):
            raise PublishError(f"write_release needs a datasets.Dataset as {name}, got {type(ds).__name__}")
    local = [os.fspath(out_dir), *_cache_folders(mixture), *_cache_folders(pool)]
    settings = portable(dict(settings or {}), roots=local)
    scorer_report = portable(dict(scorer_report or {}), roots=local)
    check_inputs({"settings": json.dumps(settings, default=str), "scorer report": json.dumps(scorer_report, default=str),
                  "description": description, "pretty name": pretty_name or "",
                  **{f"card section {s.title!r}": f"{s.title}\n{s.markdown}" for s in sections},
                  **{f"figure {f.title!r}": f"{f.title}\n{f.caption}" for f in extra_figures}}, roots=local)
    figures_in = _check_figures(extra_figures)
    columns = config_columns(mixture, keep_embedding=keep_embedding)
    mixture = with_messages(mixture, columns)
    configs = {DEFAULT_CONFIG: mixture, **_resolve_subsets(mixture, subsets, settings)}
    rows = _composition_rows(composition, mixture, pool, list(configs)[1:])
    kept_in_pool = None
    if pool is not None:
        pool_columns = config_columns(pool, keep_embedding=keep_embedding, pool=True, what="the pool")
        kept_in_pool = check_pool(pool, mixture, rows if composition is not None else None)
        configs[POOL_CONFIG] = with_messages(pool, pool_columns)

    with output_folder(out_dir, inputs=local[1:], overwrite=overwrite, what="the release folder") as tmp:
        summaries = []
        for name, ds in configs.items():
            data_dir = f"data/{name}"
            paths = write_parquet_shards(ds, tmp / data_dir, max_shard_size)
            check_no_secrets(tmp / data_dir)  # rows first: a token in the data stops the release before the card
            summaries.append(ConfigSummary(
                name=name,
                data_dir=data_dir,
                rows=len(ds),
                num_bytes=selected_bytes(ds),
                download_size=sum(p.stat().st_size for p in paths),
                description=_config_description(name, len(ds), len(mixture), kept_in_pool),
                features=ds.features,
                per_source=_count_by(ds, "source"),
                kept_rows=kept_in_pool if name == POOL_CONFIG else None,
            ))
        subset_names = [c for c in configs if c not in (DEFAULT_CONFIG, POOL_CONFIG)]
        per_config = {c.name: c.per_source for c in summaries}
        for row in rows:
            row["subsets"] = {n: per_config[n].get(row["source"], 0) for n in subset_names}
        names = list(sources) if sources else list(summaries[0].per_source)
        licences = _values_by_source(mixture, "license")
        tasks = {r["source"]: r.get("task") for r in rows}
        infos = [source_info(n, licences.get(n, ()), tasks.get(n)) for n in names]
        mixture_configs = {n: ds for n, ds in configs.items() if n != POOL_CONFIG}
        figures = [{"path": f"figures/{p.name}", "title": FIGURES[p.stem][0], "caption": FIGURES[p.stem][1]}
                   for p in write_figures(tmp / "figures", mixture_configs, rows)]
        for fig in figures_in:
            shutil.copyfile(fig.path, tmp / "figures" / Path(fig.path).name)
            figures.append({"path": f"figures/{Path(fig.path).name}", "title": fig.title, "caption": fig.caption})
        all_columns = [*columns, *([KEPT] if pool is not None else [])]
        features = {**mixture.features, **(configs[POOL_CONFIG].features if pool is not None else {})}
        summary = ReleaseSummary(
            pretty_name=pretty_name or _pretty_name(settings),
            version=version or __version__,
            configs=summaries,
            composition=rows,
            subset_names=subset_names,
            sources=infos,
            settings=settings,
            scorer=scorer_report,
            figures=figures,
            columns=[{"name": c, "dtype": _dtype(features[c]), "description": COLUMN_DOCS.get(c, "")}
                     for c in sorted(all_columns, key=all_columns.index)],
            repo_id=repo_id,
            description=description or str(settings.get("description") or ""),
            embedding_kept=EMBEDDING in columns,
            pool_name=POOL_CONFIG if pool is not None else None,
            sections=list(sections),
        )
        make_card(summary).save(tmp / README)
        (tmp / "LICENSE.md").write_text(license_markdown(summary), encoding="utf-8")
        manifest = build_manifest(summary, settings, scorer_report, rows, tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n",
                                    encoding="utf-8")
        check_no_secrets(tmp, skip=["data"])
        check_no_local_paths(tmp, roots=local)
    return Path(out_dir)


def _cache_folders(ds) -> list[str]:
    """Folders of the Arrow files behind `ds` (a release must not be written over them, nor name them)."""
    if ds is None:
        return []
    return sorted({os.path.dirname(f["filename"]) for f in ds.cache_files})


def _check_figures(figures: Sequence[CardFigure]) -> list[CardFigure]:
    seen = {f"{stem}.png" for stem in FIGURES}
    for fig in figures:
        path = Path(fig.path)
        if not path.is_file():
            raise PublishError(f"extra figure {path} does not exist; write it before the release or leave it out")
        if path.suffix.lower() not in FIGURE_SUFFIXES:
            raise PublishError(f"extra figure {path} is not an image the card can show ({', '.join(FIGURE_SUFFIXES)})")
        if path.name in seen:
            raise PublishError(f"extra figure {path}: the name {path.name!r} is already taken in figures/; rename it")
        seen.add(path.name)
    return list(figures)


def _resolve_subsets(mixture, subsets: Mapping[str, Any] | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every subset as a Dataset of mixture rows, checked to hold only mixture ids."""
    from datasets import Dataset

    if subsets is None:
        from ..select.mixture import DEFAULT_SUBSET_RATIOS, iter_subsets

        return dict(iter_subsets(mixture, settings.get("subset_ratios") or DEFAULT_SUBSET_RATIOS))
    out = {}
    all_ids = None
    for name, spec in subsets.items():
        if name in (DEFAULT_CONFIG, POOL_CONFIG) or not re.fullmatch(r"[A-Za-z0-9_]+", str(name)):
            raise PublishError(f"subset name {name!r} is not allowed; use letters, digits and '_' (not "
                               f"{DEFAULT_CONFIG!r} or {POOL_CONFIG!r})")
        if isinstance(spec, Dataset):
            config_columns(spec, keep_embedding=EMBEDDING in mixture.column_names, what=f"subset {name!r}")
            if all_ids is None:
                all_ids = set(mixture["id"])
            stray = [i for i in spec["id"] if i not in all_ids]
            if stray:
                raise PublishError(f"subset {name!r} holds {len(stray)} row(s) not in the mixture, e.g. {stray[0]!r}")
            ds = with_messages(spec, mixture.column_names)
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


def parse_size(size: int | str) -> int:
    """Bytes of `size`: an int, or a string such as "500MB" (10**6) or "2GiB" (2**30)."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(size))
    unit = match.group(2).upper() if match else None
    if unit not in SIZE_UNITS:
        raise PublishError(f"max_shard_size {size!r} is not a size; use bytes or a string such as '500MB'")
    return int(float(match.group(1)) * SIZE_UNITS[unit])


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


def _composition_rows(composition, mixture, pool, subset_names: list[str]) -> list[dict[str, Any]]:
    """Per-source rows for the card and manifest (subset counts are filled in from the written configs).

    `composition` is a `MixtureReport` (its `rows`) or a list of dicts with the report's keys; None describes the
    mixture by its own rows (and counts `available` from the pool, when there is one).
    """
    rows = getattr(composition, "rows", composition)
    if rows is None:
        kept = _count_by(mixture, "source")
        scores = _mean_by_source(mixture)
        available = _count_by(pool, "source") if pool is not None else {}
        pool_scores = _mean_by_source(pool) if pool is not None else {}
        rows = [{"source": s, "kept": n, "available": available.get(s), "mean_quality": pool_scores.get(s),
                 "mean_quality_kept": scores.get(s)} for s, n in kept.items()]
    out = []
    for row in rows:
        r = {"task": None, "policy": None, "available": None, "kept": 0, "ratio": None, "mean_quality": None,
             "mean_quality_kept": None, **dict(row)}
        if r["ratio"] is None and r["available"]:
            r["ratio"] = r["kept"] / r["available"]
        r["subsets"] = dict.fromkeys(subset_names, 0)
        out.append(r)
    return out


def _mean_by_source(ds) -> dict[str, float]:
    table = ds.select_columns(["source", QUALITY_SCORE]).with_format("arrow")[:]
    src = np.asarray(table.column("source").to_pylist())
    score = table.column(QUALITY_SCORE).to_numpy(zero_copy_only=False).astype(np.float64)
    return {s: float(score[src == s].mean()) for s in dict.fromkeys(src.tolist())}


def _config_description(name: str, rows: int, total: int, kept_in_pool: int | None) -> str:
    if name == DEFAULT_CONFIG:
        return "the full mixture, rows grouped by source and in selection order within each source"
    if name == POOL_CONFIG:
        return (f"the whole scored pool: every row that entered selection; `kept` marks the {kept_in_pool:,} rows "
                "of the mixture")
    match = re.fullmatch(r"ratio_(\d+(?:\.\d+)?)", name)
    share = f" ({100 * rows / total:.1f} % of the rows)" if total else ""
    if match:
        return f"nested subset: the first {match.group(1)} % of each source's selection order{share}"
    return f"subset `{name}`{share}"


def _pretty_name(settings: Mapping[str, Any]) -> str:
    preset = settings.get("preset")
    if not preset or preset == "openmathmix":
        return "OpenMathMix"
    return f"OpenMathMix ({preset})"


def _dtype(feature) -> str:
    """A feature as the card's column table shows it: `string`, `list of {role: string, content: string}`, ..."""
    from datasets import List

    if isinstance(feature, List):
        inner = feature.feature
        if isinstance(inner, dict):
            return "list of {" + ", ".join(f"{k}: {_dtype(v)}" for k, v in inner.items()) + "}"
        return f"list of {_dtype(inner)}"
    dtype = getattr(feature, "dtype", None)
    return str(dtype) if dtype is not None else type(feature).__name__
