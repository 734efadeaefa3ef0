"""Mixture presets: the YAML schema, strict loading, ``include:`` and validation into a frozen :class:`Preset`.

A preset is a YAML file, one per sub-setting of the paper in the top-level ``presets/`` folder, or a file of your
own. It names the sources and gives each a policy:

``all``
    Keep every row. With ``rank_all: strategy`` (the default) the rows are still ranked by the preset's strategy, so
    the nested subsets of a keep-all source are selections too, as in the paper's 10/40/70 % subsets of OpenMathMix.
    With ``rank_all: input`` they keep their input order, which is cheap, but then a subset takes the first rows.
    (``rank_all: qads`` is the older spelling of ``strategy``.)
``select`` (or its older name ``qads``)
    Keep the head of the strategy's order, of a size set by exactly one of:

    * ``rule: mean_quality``: ``r_i = mean QS_i / qs_max`` (large setting).
    * ``rule: eq5``: Eq. 5 with the preset-level ``eq5: {low, upp}`` (base setting).
    * ``ratio: 0.3``: a fixed ratio.
    * ``count: 5000``: a fixed number of rows (capped at the rows available; the report says so).

``strategy`` (preset level, default ``qads``) names the order, see :mod:`openmathmix.select.strategies`.

Shared keys are not repeated: every key has a default here (:class:`Preset`), and a preset may start from other
files with ``include: name`` (or a list of names). A name without a slash is a packaged file (``_sbase`` is the
fragment ``presets/_sbase.yaml``; files starting with ``_`` are fragments, not presets); anything else is a path,
relative to the including file. The including file wins: mappings (``sources``, ``eq5``) merge key by key, every
other value is replaced. ``name`` is never inherited (it defaults to the file name). A source keeps the position
it had in the first file that lists it. Presets stay pure data: no code, no tags, no expressions.

Loading is strict: a key given twice in one mapping (a source listed twice, say) is an error naming the file, the
key and both lines, as is an unknown key, source, policy, rule or strategy.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import PresetError, SelectionError
from ..schema import EMBEDDING, QUALITY_SCORE
from .kcenter import DEFAULT_INIT_SIZE, resolve_dtype
from .ratios import QS_MAX
from .strategies import DEFAULT_STRATEGY, STRATEGIES

__all__ = [
    "DEFAULT_SUBSET_RATIOS",
    "Eq5Params",
    "Preset",
    "SourcePolicy",
    "list_presets",
    "load_preset",
    "parse_preset",
    "read_preset_data",
    "registered_sources",
]

DEFAULT_SUBSET_RATIOS = (0.1, 0.4, 0.7)
SELECT = "select"
POLICIES = ("all", SELECT)
POLICY_ALIASES = {"qads": SELECT}  # older spelling, still accepted
RULES = ("mean_quality", "eq5")
SCOPES = ("source",)
RANK_ALL = ("strategy", "input")
RANK_ALL_ALIASES = {"qads": "strategy"}
INCLUDE = "include"

PRESET_KEYS = {
    "name": "preset name (defaults to the file name; never inherited through include)",
    "description": "free text for the dataset card",
    INCLUDE: "packaged fragment/preset name or relative path (or a list of them) whose keys this file extends",
    "setting": "'base' or 'large' (informational)",
    "strategy": f"order within each source: {', '.join(STRATEGIES)} (default {DEFAULT_STRATEGY!r})",
    "scope": "selection scope; only 'source' (per dataset, as in the paper)",
    "seed": "int seed for the initial pools and the random strategy",
    "init_size": f"|s0|, size of the initial pool per scope of qads/kcenter (default {DEFAULT_INIT_SIZE}, the paper's)",
    "subset_ratios": f"ratios of the nested subsets (default {list(DEFAULT_SUBSET_RATIOS)})",
    "embedding_column": f"column with the embeddings (default {EMBEDDING!r})",
    "quality_column": f"column with the 1-5 quality scores (default {QUALITY_SCORE!r})",
    "dtype": "storage dtype of the embeddings during selection: float32 (default), bfloat16, float16, float64",
    "qs_max": f"upper bound of the quality scores for rule mean_quality (default {QS_MAX:g})",
    "eq5": "{low, upp} for rule eq5 (Appendix B)",
    "rank_all": "how sources with policy 'all' are ranked: 'strategy' (default) or 'input'",
    "sources": "mapping source -> policy ('all', or {policy: select, rule|ratio|count: ...})",
}
SOURCE_KEYS = ("policy", "rule", "ratio", "count")
EQ5_KEYS = ("low", "upp")


@dataclass(frozen=True)
class SourcePolicy:
    """How one source enters the mixture (see the module docstring)."""

    source: str
    policy: str = "all"
    rule: str | None = None
    ratio: float | None = None
    count: int | None = None

    def describe(self, strategy: str = DEFAULT_STRATEGY) -> str:
        """``"all"``, or the strategy and the sizing rule, e.g. ``"qads (mean_quality)"``."""
        if self.policy == "all":
            return "all"
        if self.rule is not None:
            return f"{strategy} ({self.rule})"
        if self.ratio is not None:
            return f"{strategy} (ratio {self.ratio:g})"
        return f"{strategy} (count {self.count})"


@dataclass(frozen=True)
class Eq5Params:
    """Bounds of Eq. 5: sources of size in (low, upp) set the mean size, sources >= upp are cut to it."""

    low: float
    upp: float


@dataclass(frozen=True)
class Preset:
    """A parsed, validated preset; the field defaults are the defaults of every preset key.

    Build one with :func:`load_preset` or :func:`parse_preset`.
    """

    name: str
    sources: tuple[SourcePolicy, ...]
    description: str = ""
    setting: str | None = None
    strategy: str = DEFAULT_STRATEGY
    scope: str = "source"
    seed: int = 0
    init_size: int = DEFAULT_INIT_SIZE  # the paper's |s0| = 100 (Section 3.1)
    subset_ratios: tuple[float, ...] = DEFAULT_SUBSET_RATIOS
    embedding_column: str = EMBEDDING
    quality_column: str = QUALITY_SCORE
    dtype: str = "float32"
    qs_max: float = QS_MAX
    eq5: Eq5Params | None = None
    rank_all: str = "strategy"
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


# --------------------------------------------------------------------------------------------------------------------
# Reading YAML: strict mappings, packaged files, include
# --------------------------------------------------------------------------------------------------------------------


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first_line: int, line: int):
        super().__init__(f"key {key!r} appears twice (lines {first_line} and {line})")
        self.key, self.first_line, self.line = key, first_line, line


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: the base constructor reports it
                continue
            if first != line:
                raise _DuplicateKey(key, first, line)
        return super().construct_mapping(node, deep=deep)


def _packaged_files() -> dict[str, Any]:
    root = importlib.resources.files("openmathmix.presets")
    return {f.name[: -len(".yaml")]: f for f in root.iterdir() if f.name.endswith(".yaml")}


def list_presets() -> list[str]:
    """Names of the presets shipped with the package (fragments, whose names start with ``_``, excluded)."""
    return sorted(name for name in _packaged_files() if not name.startswith("_"))


def _parse_yaml(text: str, origin: str) -> Any:
    try:
        return yaml.load(text, Loader=StrictLoader)
    except _DuplicateKey as err:
        raise PresetError(
            f"{origin}: key {err.key!r} is given twice (lines {err.first_line} and {err.line}); keep one of them"
        ) from None
    except yaml.YAMLError as err:
        raise PresetError(f"{origin}: not valid YAML: {err}") from None


def _locate(ref: str, base: Path | None) -> tuple[str, str, str, Path | None]:
    """(text, origin, default name, folder for relative includes) of a preset reference.

    A reference that names a file (a slash or a .yaml suffix, or an existing file) is a path, relative to ``base``
    when given; anything else is a packaged name.
    """
    path = Path(ref)
    is_path = ref.endswith((".yaml", ".yml")) or "/" in ref or (base is None and path.is_file())
    if is_path:
        if base is not None and not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise PresetError(f"preset file {path} does not exist")
        return path.read_text(encoding="utf-8"), str(path), path.name.rsplit(".", 1)[0], path.parent
    packaged = _packaged_files()
    if ref not in packaged:
        raise PresetError(
            f"unknown preset {ref!r}; packaged presets: {', '.join(list_presets())} "
            "(or pass the path of your own YAML file)"
        )
    return packaged[ref].read_text(encoding="utf-8"), f"presets/{ref}.yaml", ref, None


def read_preset_data(name_or_path: str | Path) -> tuple[dict[str, Any], str, str]:
    """The merged mapping of a preset with its includes resolved: ``(data, origin, default name)``."""
    text, origin, default_name, folder = _locate(str(name_or_path), None)
    return _resolve(text, origin, folder, chain=(origin,)), origin, default_name


def _resolve(text: str, origin: str, folder: Path | None, chain: tuple[str, ...]) -> dict[str, Any]:
    data = _parse_yaml(text, origin)
    if not isinstance(data, Mapping):
        raise PresetError(f"preset {origin}: the top level must be a mapping, got {type(data).__name__}")
    refs = data.get(INCLUDE, [])
    refs = [refs] if isinstance(refs, str) else refs
    if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
        raise PresetError(f"preset {origin}: 'include' must be a file name or a list of them, got {refs!r}")
    merged: dict[str, Any] = {}
    for ref in refs:
        inc_text, inc_origin, _, inc_folder = _locate(ref, folder)
        if inc_origin in chain:
            raise PresetError(f"preset {origin}: include cycle {' -> '.join([*chain, inc_origin])}")
        included = _resolve(inc_text, inc_origin, inc_folder, (*chain, inc_origin))
        included.pop("name", None)  # a name belongs to its own file
        merged = _merge(merged, included)
    own = {k: v for k, v in data.items() if k != INCLUDE}
    return _merge(merged, own)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key (existing keys keep their position), the rest replace."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_preset(name_or_path: str | Path) -> Preset:
    """A packaged preset by name (``"openmathmix"``, ``"sbase_69k"``, ...), or a YAML file by path."""
    data, origin, default_name = read_preset_data(name_or_path)
    return parse_preset(data, origin=origin, default_name=default_name)


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


def parse_preset(data: Any, *, origin: str = "<memory>", default_name: str | None = None) -> Preset:
    """Validate a preset mapping (as read from YAML, includes resolved) and build a :class:`Preset`."""
    where = f"preset {origin}"
    if not isinstance(data, Mapping):
        raise PresetError(f"{where}: the top level must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(PRESET_KEYS) - {INCLUDE})
    if unknown:
        valid = "\n".join(f"  {k}: {v}" for k, v in PRESET_KEYS.items())
        raise PresetError(f"{where}: unknown key(s) {unknown}; valid keys are:\n{valid}")
    if INCLUDE in data:
        raise PresetError(f"{where}: 'include' is resolved when a file is read; load it with load_preset")
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
    strategy = _choice(data, "strategy", tuple(STRATEGIES), DEFAULT_STRATEGY, where)
    rank_all = _choice(data, "rank_all", RANK_ALL, "strategy", where, RANK_ALL_ALIASES)
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
        strategy=strategy,
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
    policy = POLICY_ALIASES.get(policy, policy) if isinstance(policy, str) else policy
    if policy not in POLICIES:
        raise PresetError(
            f"{here}: unknown policy {spec.get('policy')!r}; valid policies are {list(POLICIES)} "
            f"({', '.join(repr(a) for a in POLICY_ALIASES)} is the older name of {SELECT!r}); "
            "the order within a source is the preset-level 'strategy'"
        )
    sizing = [k for k in ("rule", "ratio", "count") if k in spec]
    if policy == "all":
        if sizing:
            raise PresetError(f"{here}: policy 'all' takes no {sizing}; use policy '{SELECT}' to select a part")
        return SourcePolicy(source)
    if len(sizing) != 1:
        got = sizing or "none"
        raise PresetError(f"{here}: policy '{SELECT}' needs exactly one of 'rule', 'ratio', 'count', got {got}")
    key = sizing[0]
    if key == "rule":
        if spec["rule"] not in RULES:
            raise PresetError(f"{here}: unknown rule {spec['rule']!r}; valid rules are {list(RULES)}")
        return SourcePolicy(source, SELECT, rule=spec["rule"])
    if key == "ratio":
        ratio = _number(spec["ratio"], f"{source}.ratio", where)
        if not 0 <= ratio <= 1:
            raise PresetError(f"{here}: ratio must lie in [0, 1], got {ratio}")
        return SourcePolicy(source, SELECT, ratio=ratio)
    count = spec["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise PresetError(f"{here}: count must be an int >= 0, got {count!r}")
    return SourcePolicy(source, SELECT, count=count)


def _typed(data: Mapping, key: str, kind: type, default: Any, where: str) -> Any:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise PresetError(f"{where}: '{key}' must be {kind.__name__}, got {value!r}")
    return value


def _number(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PresetError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return float(value)


def _choice(data: Mapping, key: str, valid: Sequence[str], default: str, where: str,
            aliases: Mapping[str, str] | None = None) -> str:
    value = data.get(key, default)
    if aliases and isinstance(value, str):
        value = aliases.get(value, value)
    if value not in valid:
        raise PresetError(f"{where}: '{key}' must be one of {list(valid)}, got {data.get(key)!r}")
    return value
