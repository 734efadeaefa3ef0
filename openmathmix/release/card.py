"""Dataset card of a release: Hub metadata through `huggingface_hub.DatasetCardData`, body from a Jinja template.

The YAML header is never written by hand. `card_data(summary)` fills a `DatasetCardData` (licences, languages, task
categories, tags, size category, source datasets) and lets `datasets` add its own two blocks:
`MetadataConfigs.to_dataset_card_data` (`configs:` with `data_files`, read by `load_dataset`) and
`DatasetInfosDict.to_dataset_card_data` (`dataset_info:` with features and row counts, which `load_dataset`
verifies). The body is `cards/release.md.jinja` rendered with a `ReleaseSummary` (see `render_body`).

Licences on the Hub: `license` takes one identifier from the Hub's list or a list of them. A mixture of sources
with different licences gets the list of their identifiers; a licence the Hub does not know (a research-only
clause, a custom licence) adds `other`, with `license_name` and `license_link` pointing at the per-source
`LICENSE.md` that `write_release` writes beside the card.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import PublishError

TASK_CATEGORIES = ("text-generation", "question-answering")
TAGS = ("math", "reasoning", "sft", "data-selection", "qads")
LICENSE_FILE = "LICENSE.md"
MIXED_LICENSE_NAME = "openmathmix-per-source"  # `license_name` when some source licence is not a Hub identifier

# Pearson r of the paper's two DeepSeekMath scorers against the real quality scores (Section 5.3, Figure 4).
PAPER_PEARSON = {"reasoning": 0.91, "general": 0.74}

PAPER_BIBTEX = """@inproceedings{ni2024exploring,
  title     = {Exploring the Mystery of Influential Data for Mathematical Reasoning},
  author    = {Ni, Xinzhe and Gong, Yeyun and Gou, Zhibin and Shen, Yelong and Yang, Yujiu and Duan, Nan
               and Chen, Weizhu},
  booktitle = {First Conference on Language Modeling (COLM)},
  year      = {2024},
  eprint    = {2404.01067},
  archivePrefix = {arXiv},
  url       = {https://arxiv.org/abs/2404.01067}
}"""

# Licence identifiers the Hub accepts in `license:` (https://huggingface.co/docs/hub/repositories-licenses).
_HUB_LICENSE_IDS = """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
    cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
    cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
    cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
    eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c
    ms-pl apple-ascl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 gemma
    unknown other
"""
HUB_LICENSES = frozenset(_HUB_LICENSE_IDS.split())

# Licence ids (or words in a licence note) that forbid commercial use.
_NON_COMMERCIAL = re.compile(r"(^|[^a-z])nc([^a-z]|$)|non-?commercial|research[- ]only|academic|research-license")

# Languages of sources whose text is not (only) English, when the registry does not say.
_SOURCE_LANGUAGES = {"tal_scq5k_cn": ("zh",), "oasst1": ("en", "multilingual")}

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


def is_non_commercial(licence: str | None) -> bool:
    """True for licences that forbid commercial use: cc-by-nc-*, research-only, academic-only, ..."""
    return bool(licence) and bool(_NON_COMMERCIAL.search(licence.lower()))


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket of a row count."""
    for bound, label in SIZE_CATEGORIES:
        if n < bound:
            return label
    return "n>1B"


@dataclass
class SourceInfo:
    """What the card says about one source: registry metadata plus the licences found in its rows."""

    name: str
    task: str | None = None
    licenses: tuple[str, ...] = ()
    hub_id: str | None = None
    homepage: str | None = None
    citation: str | None = None
    notes: str | None = None  # the per-source card (cards/sources/<name>.md), markdown
    languages: tuple[str, ...] = ("en",)
    paper_size: str | None = None
    title: str | None = None  # display name, e.g. "GSM8K-ScRel"
    flagged_non_commercial: bool = False  # the registry says part of the data forbids commercial use

    @property
    def non_commercial(self) -> bool:
        return self.flagged_non_commercial or any(is_non_commercial(x) for x in self.licenses)


def source_info(name: str, licenses_seen: Iterable[str] = (), task: str | None = None) -> SourceInfo:
    """Registry metadata of `name` (when `openmathmix.sources` knows it), merged with the licences of its rows."""
    from .. import sources as registry
    from ..errors import SourceError

    seen = tuple(dict.fromkeys(x for x in licenses_seen if x))
    info = SourceInfo(name=name, task=task, licenses=seen, languages=_SOURCE_LANGUAGES.get(name, ("en",)))
    try:
        src = registry.get_source(name)
    except SourceError:  # not registered (a user's own rows): the card shows what the rows say
        return info
    info.licenses = tuple(dict.fromkeys([*seen, src.license]))
    info.flagged_non_commercial = src.non_commercial
    info.title = src.title or None
    info.task = task or src.task
    info.hub_id = src.repo
    info.homepage = src.homepage or None
    info.citation = src.citation.strip() or None
    info.paper_size = str(src.paper_size)
    try:
        info.notes = _demote_headings(_drop_bibtex(registry.source_card(name))).strip() or None
    except SourceError:  # no per-source card shipped for this source
        info.notes = None
    return info


def _drop_bibtex(markdown: str) -> str:
    """A source card without its citation section: the release card cites every source in one place."""
    markdown = re.sub(r"(?ms)^#{1,6} Citations?\s*\n(?:\s*```bibtex\n.*?```\s*\n?)+", "", markdown)
    return re.sub(r"(?ms)^```bibtex\n.*?```\s*\n?", "", markdown)


def _demote_headings(markdown: str, levels: int = 3) -> str:
    """Push the headings of an embedded per-source card below the release card's own sections."""
    return re.sub(r"(?m)^(#{1,6}) ", lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", markdown)


@dataclass(frozen=True)
class CardSection:
    """A section a caller adds to the card (a hygiene table, a selection report, ...): `## title`, then markdown."""

    title: str
    markdown: str

    def __post_init__(self) -> None:
        if not self.title.strip() or "\n" in self.title:
            raise PublishError(f"a card section needs a one-line title, got {self.title!r}")


@dataclass(frozen=True)
class CardFigure:
    """A figure a caller adds to the card: an image file (copied into `figures/`), its title and caption."""

    path: str | os.PathLike
    title: str
    caption: str


@dataclass
class ConfigSummary:
    """One config of the release: where its parquet shards are and what it holds."""

    name: str
    data_dir: str  # relative to the release root, e.g. "data/ratio_10"
    rows: int
    num_bytes: int  # size of the rows in Arrow (what `dataset_info` reports as the split size)
    download_size: int  # bytes of its parquet files
    description: str
    features: Any  # datasets.Features of its rows
    per_source: dict[str, int] = field(default_factory=dict)
    kept_rows: int | None = None  # the pool config: rows the mixture kept

    @property
    def data_files(self) -> list[dict[str, str]]:
        return [{"split": "train", "path": f"{self.data_dir}/train-*"}]


@dataclass
class ReleaseSummary:
    """Everything the card shows; `openmathmix.release.write_release` builds it from the written files."""

    pretty_name: str
    version: str
    configs: list[ConfigSummary]
    composition: list[dict[str, Any]]
    subset_names: list[str]
    sources: list[SourceInfo]
    settings: dict[str, Any]
    scorer: dict[str, Any]
    figures: list[dict[str, str]]  # {"path", "title", "caption"}, paths relative to the release root
    columns: list[dict[str, str]]  # {"name", "dtype", "description"} of every column of any config
    repo_id: str | None = None
    description: str = ""
    embedding_kept: bool = False
    pool_name: str | None = None  # the config holding the whole scored pool, if written
    sections: list[CardSection] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return next((c.rows for c in self.configs if c.name == "default"), 0)


# ---------------------------------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------------------------------


def license_fields(sources: Iterable[SourceInfo]) -> dict[str, Any]:
    """`license` (one id or a list), plus `license_name`/`license_link` when some licence is not a Hub id."""
    ids = sorted({x.lower() for s in sources for x in s.licenses})
    known = [x for x in ids if x in HUB_LICENSES and x != "other"]
    unknown = [x for x in ids if x not in HUB_LICENSES or x == "other"]
    if not ids:
        return {"license": "unknown"}
    if not unknown:
        return {"license": known[0] if len(known) == 1 else known}
    licence = [*known, "other"] if known else "other"
    return {"license": licence, "license_name": MIXED_LICENSE_NAME, "license_link": LICENSE_FILE}


def languages(sources: Iterable[SourceInfo]) -> list[str]:
    found = dict.fromkeys(lang for s in sources for lang in s.languages)
    return sorted(found, key=lambda x: (x == "multilingual", x != "en", x))


def card_data(summary: ReleaseSummary) -> Any:
    """The card's YAML header as a `DatasetCardData` (configs and dataset_info added by `datasets` helpers)."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    langs = languages(summary.sources)
    hub_sources = [s.hub_id for s in summary.sources if s.hub_id]
    data = DatasetCardData(
        pretty_name=summary.pretty_name,
        language=langs,
        multilinguality="multilingual" if len(langs) > 1 else "monolingual",
        size_categories=[size_category(summary.total_rows)],
        task_categories=list(TASK_CATEGORIES),
        source_datasets=sorted(dict.fromkeys(hub_sources)) or None,
        tags=list(TAGS),
        **license_fields(summary.sources),
    )
    configs = {
        c.name: {"data_files": c.data_files, **({"default": True} if c.name == "default" else {})}
        for c in summary.configs
    }
    MetadataConfigs(configs).to_dataset_card_data(data)
    infos = {}
    for c in summary.configs:
        splits = SplitDict()
        splits.add(SplitInfo(name="train", num_bytes=c.num_bytes, num_examples=c.rows))
        infos[c.name] = DatasetInfo(
            features=c.features,
            splits=splits,
            dataset_size=c.num_bytes,
            download_size=c.download_size,
            config_name=c.name,
        )
    DatasetInfosDict(infos).to_dataset_card_data(data)
    return data


# ---------------------------------------------------------------------------------------------------------------------
# Body
# ---------------------------------------------------------------------------------------------------------------------


def template_text(name: str = "release.md.jinja") -> str:
    """A template shipped in the `cards/` folder (package `openmathmix.cards`)."""
    return importlib.resources.files("openmathmix.cards").joinpath(name).read_text(encoding="utf-8")


def render_body(summary: ReleaseSummary, template: str | None = None) -> str:
    """Render the card body (markdown, no YAML header)."""
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,  # a misspelt field fails loudly instead of printing nothing
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # markdown, not HTML
    )
    env.filters["num"] = _num
    env.filters["score"] = _score
    env.filters["pct"] = lambda x: "" if x is None else f"{100 * x:.1f} %"
    env.filters["value"] = _value
    try:
        return env.from_string(template or template_text()).render(**_context(summary))
    except jinja2.TemplateError as err:
        raise PublishError(f"the card template could not be rendered: {err}") from err


def _num(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _score(value: Any) -> str:
    return "" if value is None else f"{float(value):.2f}"


def _value(value: Any) -> str:
    """A setting as it reads in a table cell."""
    import json

    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list, tuple)):
        return "`" + json.dumps(value, sort_keys=True, default=str) + "`"
    return str(value).replace("|", "\\|").replace("\n", " ")


def scorer_rows(scorer: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per trained scorer, from `{"scorers": {name: {"pearson": r, "n_eval": n, "task": ...}}}`."""
    rows = []
    for name, report in (scorer.get("scorers") or {}).items():
        pearson = report.get("pearson")
        rows.append({"name": name, "pearson": None if pearson is None else float(pearson),
                     "paper": PAPER_PEARSON.get(report.get("task") or name), "n": report.get("n_eval"),
                     "ci_low": report.get("ci_low"), "ci_high": report.get("ci_high"),
                     "method": report.get("method"), "model": report.get("model")})
    return rows


def trainer_snippets(config: str, repo: str, key: str) -> dict[str, str]:
    """Configuration text for axolotl and LLaMA-Factory that reads `config` of `repo` through its `messages` column.

    Built as data and dumped, so the YAML and JSON parse by construction. Checked against (2025/2026 docs):
    axolotl docs/dataset-formats/conversation.qmd (`type: chat_template`, `field_messages`,
    `message_property_mappings`) and docs/dataset_loading.qmd (`path`, `name`, `split` as in load_dataset);
    LLaMA-Factory data/README.md, "OpenAI Format" under "Sharegpt Format" (`formatting: sharegpt`,
    `columns.messages`, `tags` role/content/user/assistant) and its dataset description keys (`hf_hub_url`,
    `subset`, `split`).
    """
    import json

    import yaml

    axolotl = {"datasets": [{
        "path": repo, "name": config, "split": "train", "type": "chat_template", "field_messages": "messages",
        "message_property_mappings": {"role": "role", "content": "content"},
    }]}
    llamafactory = {key: {
        "hf_hub_url": repo, "subset": config, "split": "train", "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }}
    return {"axolotl": yaml.safe_dump(axolotl, sort_keys=False).rstrip(),
            "llamafactory": json.dumps(llamafactory, indent=2)}


def _context(summary: ReleaseSummary) -> dict[str, Any]:
    settings = dict(summary.settings)
    settings.pop("description", None)
    models = settings.pop("models", None) or {}
    # long values (per-source inputs, scorer hyper-parameters) stay in manifest.json, the table names them
    long_settings = [k for k, v in settings.items() if len(_value(v)) > 100]
    settings = {k: v for k, v in settings.items() if k not in long_settings}
    model_rows = [{"role": role, "name": spec.get("name"), "revision": spec.get("revision")}
                  for role, spec in models.items()]
    scorer_other = {k: v for k, v in summary.scorer.items() if k != "scorers"}
    non_commercial = [s for s in summary.sources if s.non_commercial]
    totals = {
        "available": sum(r.get("available") or 0 for r in summary.composition),
        "kept": sum(r.get("kept") or 0 for r in summary.composition),
    }
    repo = summary.repo_id or "ORG/NAME"
    first_subset = summary.subset_names[0] if summary.subset_names else "default"
    key = re.sub(r"[^a-z0-9]+", "_", repo.split("/")[-1].lower()).strip("_") + f"_{first_subset}"
    return {
        "s": summary,
        "repo": repo,
        "repo_known": summary.repo_id is not None,
        "settings": settings,
        "long_settings": long_settings,
        "models": model_rows,
        "scorers": scorer_rows(summary.scorer),
        "scorer_other": scorer_other,
        "paper_pearson": PAPER_PEARSON,
        "non_commercial": non_commercial,
        "totals": totals,
        "first_subset": first_subset,
        "snippets": trainer_snippets(first_subset, repo, key),
        "llamafactory_key": key,
        "paper_bibtex": PAPER_BIBTEX,
        "license_file": LICENSE_FILE,
    }


# ---------------------------------------------------------------------------------------------------------------------
# The card, and the licence file beside it
# ---------------------------------------------------------------------------------------------------------------------


def make_card(summary: ReleaseSummary, template: str | None = None):
    """The complete card: `DatasetCard` built from `card_data(summary)` and the rendered body."""
    from huggingface_hub import DatasetCard

    data = card_data(summary)
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{render_body(summary, template)}")


def license_markdown(summary: ReleaseSummary) -> str:
    """`LICENSE.md`: every row keeps its source's licence (the `license` column); this lists them per source."""
    lines = [
        f"# Licences of {summary.pretty_name}",
        "",
        ("This dataset is a mixture. It adds no licence of its own: every row stays under the licence of the "
        "source it came from, recorded in the row's `license` column. Check each source's terms before use; "
        "sources marked non-commercial must not be used for commercial purposes."),
        "",
        "| source | licence(s) | non-commercial | homepage |",
        "|---|---|---|---|",
    ]
    for s in summary.sources:
        lines.append(
            f"| {s.name} | {', '.join(s.licenses) or 'unknown'} | {'yes' if s.non_commercial else 'no'} | "
            f"{s.homepage or ''} |"
        )
    return "\n".join(lines) + "\n"
