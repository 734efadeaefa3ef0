"""Mixture presets, per-source selection plans, and QaDS over a ``datasets.Dataset``.

A preset is a YAML file: one per sub-setting of the paper, in the top-level ``presets/`` folder, or a file of your
own. It names the sources and gives each a policy:

``all``
    Keep every row. With ``rank_all: qads`` (the default) the rows are still ranked by QaDS, so the nested subsets
    of a keep-all source are QaDS selections too, as in the paper's 10/40/70 % subsets of OpenMathMix. With
    ``rank_all: input`` they keep their input order, which is cheap, but then a subset takes the first rows.
``qads``
    Keep a QaDS selection of a size set by exactly one of:

    * ``rule: mean_quality``: ``r_i = mean QS_i / qs_max`` (large setting).
    * ``rule: eq5``: Eq. 5 with the preset-level ``eq5: {low, upp}`` (base setting).
    * ``ratio: 0.3``: a fixed ratio.
    * ``count: 5000``: a fixed number of rows.

Selection runs per source, the paper's per-dataset scope. Within a source the kept rows are the first ``kept`` rows
of its ranking (:func:`openmathmix.select.kcenter.rank_scope`): the QaDS greedy order with an initial pool of
``init_size`` random rows drawn with ``seed`` and the source name, and the pool rows at the tail. ``qads_rank`` is a
row's position in that ranking, counted from 0.

Nested subsets: the subset at ratio ``r`` keeps, from each source, the rows with
``qads_rank < ceil(r * kept_in_that_source)``. Those are prefixes of one order, so ratio_10 is inside ratio_40,
which is inside ratio_70, by construction. :func:`subset_mask` recomputes a subset from the written mixture alone,
from ``source`` and ``qads_rank``, so a release writer needs no side files.
"""

from __future__ import annotations

import importlib.resources
import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import MissingColumnsError, PresetError, SelectionError
from ..schema import EMBEDDING, QADS_RANK, QUALITY_SCORE
from .kcenter import DEFAULT_INIT_SIZE, rank_scope, resolve_dtype
from .ratios import QS_MAX, eq5_ratios, kept_count, mean_quality_ratio, prefix_count

__all__ = [
    "DEFAULT_SUBSET_RATIOS",
    "Eq5Params",
    "MixtureReport",
    "Preset",
    "SourcePolicy",
    "iter_subsets",
    "list_presets",
    "load_preset",
    "parse_preset",
    "plan",
    "registered_sources",
    "select_mixture",
    "subset",
    "subset_mask",
    "subset_name",
]

SOURCE = "source"
TASK = "task"
DEFAULT_SUBSET_RATIOS = (0.1, 0.4, 0.7)
POLICIES = ("all", "qads")
RULES = ("mean_quality", "eq5")
SCOPES = ("source",)
RANK_ALL = ("qads", "input")

PRESET_KEYS = {
    "name": "preset name (defaults to the file name)",
    "description": "free text for the dataset card",
    "setting": "'base' or 'large' (informational)",
    "scope": "selection scope; only 'source' (per dataset, as in the paper)",
    "seed": "int seed for the initial pools",
    "init_size": "|s0|, size of the initial pool per scope (paper: 100)",
    "subset_ratios": "ratios of the nested subsets (default [0.1, 0.4, 0.7])",
    "embedding_column": f"column with the embeddings (default {EMBEDDING!r})",
    "quality_column": f"column with the 1-5 quality scores (default {QUALITY_SCORE!r})",
    "dtype": "storage dtype of the embeddings during selection: float32, bfloat16, float16, float64",
    "qs_max": "upper bound of the quality scores for rule mean_quality (default 5)",
    "eq5": "{low, upp} for rule eq5 (Appendix B)",
    "rank_all": "how sources with policy 'all' are ranked: 'qads' (default) or 'input'",
    "sources": "mapping source -> policy ('all', or {policy: qads, rule|ratio|count: ...})",
}
SOURCE_KEYS = ("policy", "rule", "ratio", "count")
EQ5_KEYS = ("low", "upp")


# --------------------------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcePolicy:
    """How one source enters the mixture (see the module docstring)."""

    source: str
    policy: str = "all"
    rule: str | None = None
    ratio: float | None = None
    count: int | None = None

    def describe(self) -> str:
        if self.policy == "all":
            return "all"
        if self.rule is not None:
            return f"qads ({self.rule})"
        if self.ratio is not None:
            return f"qads (ratio {self.ratio:g})"
        return f"qads (count {self.count})"


@dataclass(frozen=True)
class Eq5Params:
    """Bounds of Eq. 5: sources of size in (low, upp) set the mean size, sources >= upp are cut to it."""

    low: float
    upp: float


@dataclass(frozen=True)
class Preset:
    """A parsed, validated preset. Build one with :func:`load_preset` or :func:`parse_preset`."""

    name: str
    sources: tuple[SourcePolicy, ...]
    description: str = ""
    setting: str | None = None
    scope: str = "source"
    seed: int = 0
    init_size: int = DEFAULT_INIT_SIZE
    subset_ratios: tuple[float, ...] = DEFAULT_SUBSET_RATIOS
    embedding_column: str = EMBEDDING
    quality_column: str = QUALITY_SCORE
    dtype: str = "float32"
    qs_max: float = QS_MAX
    eq5: Eq5Params | None = None
    rank_all: str = "qads"
    origin: str = field(default="<memory>", compare=False)

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(p.source for p in self.sources)

    def policy(self, source: str) -> SourcePolicy:
        for p in self.sources:
            if p.source == source:
                return p
        raise PresetError(f"preset {self.name!r} has no source {source!r}; it lists {list(self.source_names)}")


def registered_sources() -> list[str]:
    """Source names known to the registry (``openmathmix.sources.list_sources``)."""
    from ..sources import list_sources

    return [source.name for source in list_sources()]


def _packaged_presets() -> dict[str, Any]:
    root = importlib.resources.files("openmathmix.presets")
    return {f.name[: -len(".yaml")]: f for f in root.iterdir() if f.name.endswith(".yaml")}


def list_presets() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(_packaged_presets())


def load_preset(name_or_path: str | Path) -> Preset:
    """A packaged preset by name (``"openmathmix"``, ``"sbase_69k"``, ...), or a YAML file by path."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or path.is_file() or "/" in text:
        if not path.is_file():
            raise PresetError(f"preset file {text} does not exist")
        raw, origin = path.read_text(encoding="utf-8"), str(path)
        default_name = path.name.rsplit(".", 1)[0]
    else:
        packaged = _packaged_presets()
        if text not in packaged:
            raise PresetError(
                f"unknown preset {text!r}; packaged presets: {', '.join(sorted(packaged))} "
                "(or pass the path of your own YAML file)"
            )
        raw, origin, default_name = packaged[text].read_text(encoding="utf-8"), f"presets/{text}.yaml", text
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise PresetError(f"{origin}: not valid YAML: {err}") from None
    return parse_preset(data, origin=origin, default_name=default_name)


def parse_preset(data: Any, *, origin: str = "<memory>", default_name: str | None = None) -> Preset:
    """Validate a preset mapping (as read from YAML) and build a :class:`Preset`."""
    where = f"preset {origin}"
    if not isinstance(data, Mapping):
        raise PresetError(f"{where}: the top level must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(PRESET_KEYS))
    if unknown:
        valid = "\n".join(f"  {k}: {v}" for k, v in PRESET_KEYS.items())
        raise PresetError(f"{where}: unknown key(s) {unknown}; valid keys are:\n{valid}")
    name = _typed(data, "name", str, default_name or "preset", where)
    sources = data.get("sources")
    if not isinstance(sources, Mapping) or not sources:
        raise PresetError(f"{where}: 'sources' must be a non-empty mapping of source name -> policy")
    known = registered_sources()
    bad = [s for s in sources if s not in known]
    if bad:
        raise PresetError(f"{where}: unknown source(s) {bad}; registered sources: {', '.join(known)}")
    policies = tuple(_parse_policy(str(src), spec, where) for src, spec in sources.items())

    eq5 = None
    if "eq5" in data:
        spec = data["eq5"]
        if not isinstance(spec, Mapping) or set(spec) != set(EQ5_KEYS):
            raise PresetError(f"{where}: 'eq5' must be a mapping with exactly the keys {list(EQ5_KEYS)}, got {spec!r}")
        low, upp = (_number(spec[k], f"eq5.{k}", where) for k in EQ5_KEYS)
        if not low < upp:
            raise PresetError(f"{where}: eq5 needs low < upp, got low={low}, upp={upp}")
        eq5 = Eq5Params(low=low, upp=upp)
    if eq5 is None and any(p.rule == "eq5" for p in policies):
        raise PresetError(f"{where}: sources use rule eq5 but the preset has no 'eq5: {{low: ..., upp: ...}}' block")

    ratios = data.get("subset_ratios", list(DEFAULT_SUBSET_RATIOS))
    if not isinstance(ratios, Sequence) or isinstance(ratios, str):
        raise PresetError(f"{where}: 'subset_ratios' must be a list of numbers in (0, 1], got {ratios!r}")
    ratios = tuple(_number(r, "subset_ratios", where) for r in ratios)
    if any(not 0 < r <= 1 for r in ratios) or list(ratios) != sorted(set(ratios)):
        raise PresetError(f"{where}: 'subset_ratios' must be increasing, distinct, in (0, 1]; got {list(ratios)}")

    scope = _choice(data, "scope", SCOPES, "source", where)
    rank_all = _choice(data, "rank_all", RANK_ALL, "qads", where)
    seed = _typed(data, "seed", int, 0, where)
    init_size = _typed(data, "init_size", int, DEFAULT_INIT_SIZE, where)
    if init_size < 0:
        raise PresetError(f"{where}: 'init_size' must be >= 0, got {init_size}")
    qs_max = _number(data.get("qs_max", QS_MAX), "qs_max", where)
    if qs_max <= 0:
        raise PresetError(f"{where}: 'qs_max' must be > 0, got {qs_max}")
    try:
        dtype = resolve_dtype(_typed(data, "dtype", str, "float32", where))
    except SelectionError as err:
        raise PresetError(f"{where}: {err}") from None
    setting = data.get("setting")
    return Preset(
        name=name,
        sources=policies,
        description=_typed(data, "description", str, "", where).strip(),
        setting=None if setting is None else str(setting),
        scope=scope,
        seed=seed,
        init_size=init_size,
        subset_ratios=ratios,
        embedding_column=_typed(data, "embedding_column", str, EMBEDDING, where),
        quality_column=_typed(data, "quality_column", str, QUALITY_SCORE, where),
        dtype=dtype,
        qs_max=qs_max,
        eq5=eq5,
        rank_all=rank_all,
        origin=origin,
    )


def _parse_policy(source: str, spec: Any, where: str) -> SourcePolicy:
    here = f"{where}: source {source!r}"
    if isinstance(spec, str):
        spec = {"policy": spec}
    if not isinstance(spec, Mapping):
        raise PresetError(f"{here}: expected 'all' or a mapping with 'policy', got {spec!r}")
    unknown = sorted(set(spec) - set(SOURCE_KEYS))
    if unknown:
        raise PresetError(f"{here}: unknown key(s) {unknown}; valid keys are {list(SOURCE_KEYS)}")
    policy = spec.get("policy")
    if policy not in POLICIES:
        raise PresetError(f"{here}: unknown policy {policy!r}; valid policies are {list(POLICIES)}")
    sizing = [k for k in ("rule", "ratio", "count") if k in spec]
    if policy == "all":
        if sizing:
            raise PresetError(f"{here}: policy 'all' takes no {sizing}; use policy 'qads' to select a part")
        return SourcePolicy(source)
    if len(sizing) != 1:
        got = sizing or "none"
        raise PresetError(f"{here}: policy 'qads' needs exactly one of 'rule', 'ratio', 'count', got {got}")
    key = sizing[0]
    if key == "rule":
        if spec["rule"] not in RULES:
            raise PresetError(f"{here}: unknown rule {spec['rule']!r}; valid rules are {list(RULES)}")
        return SourcePolicy(source, "qads", rule=spec["rule"])
    if key == "ratio":
        ratio = _number(spec["ratio"], f"{source}.ratio", where)
        if not 0 <= ratio <= 1:
            raise PresetError(f"{here}: ratio must lie in [0, 1], got {ratio}")
        return SourcePolicy(source, "qads", ratio=ratio)
    count = spec["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise PresetError(f"{here}: count must be an int >= 0, got {count!r}")
    return SourcePolicy(source, "qads", count=count)


def _typed(data: Mapping, key: str, kind: type, default: Any, where: str) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise PresetError(f"{where}: '{key}' must be {kind.__name__}, got {value!r}")
    return value


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PresetError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return float(value)


def _choice(data: Mapping, key: str, valid: Sequence[str], default: str, where: str) -> str:
    value = data.get(key, default)
    if value not in valid:
        raise PresetError(f"{where}: '{key}' must be one of {list(valid)}, got {value!r}")
    return value


def _as_preset(preset: Preset | str | Path) -> Preset:
    return preset if isinstance(preset, Preset) else load_preset(preset)


# --------------------------------------------------------------------------------------------------------------------
# Planning (pure)
# --------------------------------------------------------------------------------------------------------------------


def plan(
    preset: Preset | str | Path,
    available: Mapping[str, int],
    mean_quality: Mapping[str, float] | None = None,
) -> dict[str, int]:
    """Rows to keep per source: ``{source: n_keep}`` in preset order.

    ``available`` maps each preset source to its row count. Sources missing from it are an error, and sources that
    are not in the preset are ignored. ``mean_quality`` (the mean 1-5 score per source) is needed only by sources
    with ``rule: mean_quality``. Counts are ``ratio * n`` rounded half up. A fixed ``count`` is capped at ``n``.
    """
    preset = _as_preset(preset)
    missing = [s for s in preset.source_names if s not in available]
    if missing:
        raise SelectionError(
            f"preset {preset.name!r} lists source(s) {missing} with no rows in the data; "
            f"build them, or copy {preset.origin} and drop them"
        )
    sizes = {s: int(available[s]) for s in preset.source_names}
    eq5 = None
    if any(p.rule == "eq5" for p in preset.sources):
        eq5 = eq5_ratios(sizes, low=preset.eq5.low, upp=preset.eq5.upp)
    counts = {}
    for p in preset.sources:
        n = sizes[p.source]
        if p.policy == "all":
            counts[p.source] = n
        elif p.count is not None:
            counts[p.source] = min(p.count, n)
        elif p.ratio is not None:
            counts[p.source] = kept_count(n, p.ratio)
        elif p.rule == "eq5":
            counts[p.source] = kept_count(n, eq5[p.source])
        else:
            if mean_quality is None or p.source not in mean_quality:
                raise SelectionError(f"source {p.source!r} uses rule mean_quality but no mean quality was given")
            try:
                counts[p.source] = kept_count(n, mean_quality_ratio(float(mean_quality[p.source]), preset.qs_max))
            except SelectionError as err:
                raise SelectionError(f"source {p.source!r}: {err}") from None
    return counts


# --------------------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------------------


def subset_name(ratio: float) -> str:
    """``0.1 -> "ratio_10"``: the name of the nested subset at ``ratio``."""
    return f"ratio_{round(ratio * 100, 6):g}"


@dataclass(frozen=True)
class MixtureReport:
    """Per-source composition of a mixture, for the dataset card.

    ``rows`` holds one dict per source: ``source``, ``task``, ``policy``, ``available``, ``kept``, ``ratio``
    (kept / available), ``mean_quality`` (over the available rows) and ``mean_quality_kept``. ``subsets`` maps a
    subset name to ``{source: rows}``.
    """

    preset: str
    rows: tuple[dict[str, Any], ...]
    subset_ratios: tuple[float, ...]
    subsets: dict[str, dict[str, int]]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def total_available(self) -> int:
        return sum(r["available"] for r in self.rows)

    @property
    def total_kept(self) -> int:
        return sum(r["kept"] for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "settings": dict(self.settings),
            "sources": [dict(r) for r in self.rows],
            "total": {"available": self.total_available, "kept": self.total_kept},
            "subset_ratios": list(self.subset_ratios),
            "subsets": {name: dict(counts) for name, counts in self.subsets.items()},
            "subset_rule": "per source, rows with qads_rank < ceil(ratio * kept)",
        }

    def to_markdown(self) -> str:
        names = list(self.subsets)
        head = ["source", "task", "policy", "available", "kept", "ratio", "mean QS", "mean QS kept", *names]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
        for r in self.rows:
            cells = [
                r["source"],
                r.get("task") or "",
                r["policy"],
                f"{r['available']:,}",
                f"{r['kept']:,}",
                f"{r['ratio']:.3f}",
                _fmt(r["mean_quality"]),
                _fmt(r["mean_quality_kept"]),
                *(f"{self.subsets[s].get(r['source'], 0):,}" for s in names),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        ratio = self.total_kept / self.total_available if self.total_available else 0.0
        total = ["**total**", "", "", f"**{self.total_available:,}**", f"**{self.total_kept:,}**", f"{ratio:.3f}", "", ""]
        total += [f"**{sum(self.subsets[s].values()):,}**" for s in names]
        lines.append("| " + " | ".join(total) + " |")
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


# --------------------------------------------------------------------------------------------------------------------
# Selection over a Dataset
# --------------------------------------------------------------------------------------------------------------------


def _scope_seed(seed: int, source: str) -> list[int]:
    """Seed of one scope's initial pool: the preset seed and a stable hash of the source name."""
    return [int(seed), zlib.crc32(source.encode("utf-8"))]


def _read_columns(ds: Any, preset: Preset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """source, embedding matrix, quality, task (or None), in row order of ``ds`` (indices mappings honoured)."""
    import pyarrow.compute as pc

    need = [SOURCE, preset.embedding_column, preset.quality_column]
    missing = [c for c in need if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(
            f"selection needs column(s) {missing}; the dataset has {ds.column_names}. "
            "Run the embedding and scoring stages first"
        )
    cols = need + ([TASK] if TASK in ds.column_names else [])
    table = ds.select_columns(cols).with_format("arrow")[:]
    source = table.column(SOURCE).to_numpy(zero_copy_only=False).astype(str)

    emb = table.column(preset.embedding_column).combine_chunks()
    if emb.null_count:
        raise SelectionError(f"column {preset.embedding_column!r} has {emb.null_count} null row(s); embed them first")
    n = len(emb)
    if n:
        lengths = pc.list_value_length(emb).to_numpy(zero_copy_only=False)
        if lengths.min() != lengths.max() or lengths.min() == 0:
            raise SelectionError(
                f"column {preset.embedding_column!r} holds vectors of different lengths "
                f"({lengths.min()}..{lengths.max()}); every row needs the same dimension"
            )
        matrix = emb.flatten().to_numpy(zero_copy_only=False).reshape(n, int(lengths[0]))
    else:
        matrix = np.empty((0, 1), dtype=np.float32)

    quality_col = table.column(preset.quality_column)
    if quality_col.null_count:
        raise SelectionError(f"column {preset.quality_column!r} has {quality_col.null_count} null row(s); score them")
    quality = quality_col.to_numpy(zero_copy_only=False).astype(np.float64)
    task = table.column(TASK).to_numpy(zero_copy_only=False).astype(str) if TASK in cols else None
    return source, matrix, quality, task


def _rows_of(positions: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The rows of ``matrix`` at ``positions``: a view when they are one contiguous ascending run."""
    if len(positions) and positions[-1] - positions[0] + 1 == len(positions) and np.all(np.diff(positions) == 1):
        return matrix[positions[0] : positions[-1] + 1]
    return matrix[positions]


def select_mixture(
    ds: Any,
    preset: Preset | str | Path,
    *,
    device: str | None = None,
    dtype: str | None = None,
    chunk_size: int | None = None,
    backend: str = "auto",
    progress: bool = False,
) -> tuple[Any, MixtureReport]:
    """Plan per-source counts, run QaDS per source, and return ``(mixture, report)``.

    ``ds`` is a ``datasets.Dataset`` with ``source``, the embedding column and the quality column. The mixture holds
    the kept rows with an int64 ``qads_rank`` column (any old one is replaced). Rows are grouped by source in preset
    order and sorted by rank within each source, so every nested subset is a head of each source block. Sources in
    ``ds`` that the preset does not list are dropped, and the report lists them with policy ``excluded``.
    ``dtype`` defaults to the preset's, ``device`` to cuda when available.
    """
    preset = _as_preset(preset)
    source, matrix, quality, task = _read_columns(ds, preset)
    positions = {name: np.flatnonzero(source == name) for name in dict.fromkeys(source.tolist())}
    empty = np.empty(0, dtype=np.int64)
    available = {name: len(positions[name]) for name in preset.source_names if name in positions}
    means = {name: float(quality[positions[name]].mean()) for name in available}
    counts = plan(preset, available, means)  # raises when a preset source has no rows

    kept_positions, ranks, rows = [], [], []
    options = {
        "dtype": dtype or preset.dtype,
        "device": device,
        "chunk_size": chunk_size,
        "backend": backend,
        "progress": progress,
    }
    for p in preset.sources:
        where = positions[p.source]
        keep = counts[p.source]
        if keep and p.policy == "all" and preset.rank_all == "input":
            order = np.arange(keep)
        elif keep:
            order = rank_scope(
                _rows_of(where, matrix),
                quality[where],
                keep,
                init_size=preset.init_size,
                seed=_scope_seed(preset.seed, p.source),
                **options,
            )
        else:
            order = empty
        kept_positions.append(where[order])
        ranks.append(np.arange(len(order), dtype=np.int64))
        rows.append(_report_row(p.source, p.describe(), where, where[order], quality, task))
    for name, where in positions.items():
        if name not in available:
            rows.append(_report_row(name, "excluded", where, empty, quality, task))

    chosen = np.concatenate(kept_positions) if kept_positions else empty
    # The rank column is added before the row selection: adding a column to a selected (index-mapped) dataset
    # would first copy every kept row, embeddings included.
    full_rank = np.full(len(ds), -1, dtype=np.int64)
    full_rank[chosen] = np.concatenate(ranks) if ranks else empty
    base = ds.remove_columns(QADS_RANK) if QADS_RANK in ds.column_names else ds
    out = base.add_column(QADS_RANK, full_rank).select(chosen)
    kept = {r["source"]: r["kept"] for r in rows if r["kept"]}
    subsets = {
        subset_name(r): {s: prefix_count(n, r) for s, n in kept.items()} for r in preset.subset_ratios
    }
    settings = {
        "seed": preset.seed,
        "init_size": preset.init_size,
        "scope": preset.scope,
        "rank_all": preset.rank_all,
        "dtype": resolve_dtype(options["dtype"]),
        "eq5": None if preset.eq5 is None else {"low": preset.eq5.low, "upp": preset.eq5.upp},
        "qs_max": preset.qs_max,
        "origin": preset.origin,
    }
    report = MixtureReport(preset.name, tuple(rows), preset.subset_ratios, subsets, settings)
    return out, report


def _report_row(
    name: str, policy: str, where: np.ndarray, chosen: np.ndarray, quality: np.ndarray, task: np.ndarray | None
) -> dict[str, Any]:
    return {
        "source": name,
        "task": None if task is None or not len(where) else str(task[where[0]]),
        "policy": policy,
        "available": int(len(where)),
        "kept": int(len(chosen)),
        "ratio": len(chosen) / len(where) if len(where) else 0.0,
        "mean_quality": _mean(quality[where]),
        "mean_quality_kept": _mean(quality[chosen]),
    }


# --------------------------------------------------------------------------------------------------------------------
# Nested subsets of a written mixture
# --------------------------------------------------------------------------------------------------------------------


def subset_mask(ds: Any, ratio: float) -> np.ndarray:
    """Boolean row mask of the nested subset at ``ratio`` of a mixture written by :func:`select_mixture`.

    A row is in the subset when ``qads_rank < ceil(ratio * kept)``, where ``kept`` is the number of rows of its
    source in ``ds``. Pass the whole mixture: on a filtered copy the per-source counts, and so the subsets, would
    differ.
    """
    missing = [c for c in (SOURCE, QADS_RANK) if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(f"subsets need column(s) {missing}; run select_mixture first")
    table = ds.select_columns([SOURCE, QADS_RANK]).with_format("arrow")[:]
    source = table.column(SOURCE).to_numpy(zero_copy_only=False).astype(str)
    rank = table.column(QADS_RANK).to_numpy(zero_copy_only=False)
    names, inverse, kept = np.unique(source, return_inverse=True, return_counts=True)
    limits = np.array([prefix_count(int(n), ratio) for n in kept], dtype=np.int64)
    return rank < limits[inverse] if len(names) else np.zeros(0, dtype=bool)


def subset(ds: Any, ratio: float) -> Any:
    """The nested subset at ``ratio`` as a ``datasets.Dataset`` (rows in mixture order)."""
    return ds.select(np.flatnonzero(subset_mask(ds, ratio)))


def iter_subsets(ds: Any, ratios: Sequence[float] = DEFAULT_SUBSET_RATIOS) -> Iterator[tuple[str, Any]]:
    """``("ratio_10", Dataset), ("ratio_40", ...), ...``: the nested subsets, smallest first."""
    for r in sorted(ratios):
        yield subset_name(r), subset(ds, r)
