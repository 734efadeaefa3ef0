"""Release writer and card: a synthetic mixture and its scored pool written, loaded back, card and manifest read."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset, load_dataset
from huggingface_hub import DatasetCard

from openmathmix.errors import MissingColumnsError, OutputError, PublishError
from openmathmix.outputs import MARKER
from openmathmix.release import (
    CardFigure,
    CardSection,
    check_no_secrets,
    release_files,
    validate_release,
    write_release,
)
from openmathmix.release.card import SourceInfo, is_non_commercial, license_fields, size_category
from openmathmix.release.scan import check_no_local_paths

SUBSETS = ("ratio_10", "ratio_40", "ratio_70")
CONFIGS = ("default", *SUBSETS, "pool")
SOURCES = {"gsm8k_screl": (20, "reasoning", "mit"), "alpaca": (15, "general", "cc-by-nc-4.0"),
           "tal_scq5k_cn": (6, "reasoning", "mit")}
AVAILABLE = {"gsm8k_screl": 20, "alpaca": 40, "tal_scq5k_cn": 6}
COLUMNS = ["id", "source", "task", "question", "answer", "messages", "quality_score", "qads_rank", "license"]
POOL_COLUMNS = [*COLUMNS[:8], "kept", "license"]
SETTINGS = {
    "preset": "demo", "seed": 3, "n1": 8, "n2": 4, "init_size": 2, "budgets": {"token_budget": 8192},
    "models": {"embed": {"name": "embedded:smollm2-135m-instruct", "revision": None},
               "scorer": {"name": "light", "revision": "abc123"}},
    "binning": "equal-width 5 bins over [0, 1]",
}
SCORER = {"kind": "light", "scorers": {"reasoning": {"task": "reasoning", "pearson": 0.62, "n_eval": 12},
                                       "general": {"task": "general", "pearson": 0.41, "n_eval": 9}}}
FAKE_TOKEN = "hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH"


def make_pool(with_embedding: bool = True) -> Dataset:
    """Every row that entered selection: AVAILABLE rows per source, the first `kept` of each source marked kept.

    Rows are shuffled (a pool need not be in rank order); ranks run over the rows of a source, except the last ten
    of alpaca, which the strategy left unranked (null).
    """
    rng = np.random.default_rng(0)
    cols = {k: [] for k in ("id", "source", "task", "question", "answer", "license", "quality_score", "qads_rank",
                            "kept")}
    for name, (kept, task, licence) in SOURCES.items():
        for rank in range(AVAILABLE[name]):
            cols["id"].append(f"{name}/train/{rank}")
            cols["source"].append(name)
            cols["task"].append(task)
            cols["question"].append(f"question {rank} of {name}?")
            cols["answer"].append(f"answer {rank}")
            cols["license"].append(licence)
            cols["quality_score"].append(float(rng.uniform(1, 5)))
            cols["qads_rank"].append(None if name == "alpaca" and rank >= 30 else rank)
            cols["kept"].append(rank < kept)
    if with_embedding:
        cols["embedding"] = rng.standard_normal((len(cols["id"]), 4)).astype("float32").tolist()
    return Dataset.from_dict(cols).select(rng.permutation(len(cols["id"])))


def make_mixture(with_embedding: bool = True) -> Dataset:
    """The pool's kept rows, grouped by source in rank order (what select_mixture returns), without `kept`."""
    pool = make_pool(with_embedding)
    order = sorted((i for i, k in enumerate(pool["kept"]) if k),
                   key=lambda i: (list(SOURCES).index(pool[i]["source"]), pool[i]["qads_rank"]))
    return pool.select(order).remove_columns("kept").flatten_indices()


def subset_mask(ds: Dataset, ratio: float) -> np.ndarray:
    """Rows with qads_rank < ceil(ratio * kept of their source): the nested-subset rule."""
    counts = {s: n for s, (n, _, _) in SOURCES.items()}
    limit = np.array([int(np.ceil(round(ratio * counts[s], 9))) for s in ds["source"]])
    return np.asarray(ds["qads_rank"]) < limit


def composition() -> list[dict]:
    rows = []
    for name, (n, task, _) in SOURCES.items():
        rows.append({"source": name, "task": task, "policy": "all" if n == AVAILABLE[name] else "qads (mean_quality)",
                     "available": AVAILABLE[name], "kept": n, "ratio": n / AVAILABLE[name],
                     "mean_quality": 3.0, "mean_quality_kept": 3.25})
    return rows


def write(mixture: Dataset, out, **kwargs):
    subsets = {
        "ratio_10": mixture.select(np.flatnonzero(subset_mask(mixture, 0.1))),  # a Dataset
        "ratio_40": subset_mask(mixture, 0.4),  # a boolean mask
        "ratio_70": np.flatnonzero(subset_mask(mixture, 0.7)).tolist(),  # row indices
    }
    options = {"subsets": subsets, "composition": composition(), "settings": SETTINGS, "scorer_report": SCORER,
                   "sources": list(SOURCES)}
    options.update(kwargs)
    return write_release(mixture, out, **options)


@pytest.fixture(scope="module")
def mixture() -> Dataset:
    return make_mixture()


@pytest.fixture(scope="module")
def pool() -> Dataset:
    return make_pool()


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    from matplotlib.figure import Figure

    path = tmp_path_factory.mktemp("fig") / "hygiene.png"
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([1, 2, 3])
    fig.savefig(path, format="png")
    return path


@pytest.fixture(scope="module")
def release(tmp_path_factory, mixture, pool, figure):
    sections = [CardSection("Data hygiene", "| check | rows dropped |\n|---|---:|\n| exact duplicates | 7 |"),
                CardSection("Scorer agreement with interval", "Pearson r = 0.62 (95 % interval 0.41-0.78).")]
    figures = [CardFigure(figure, "Hygiene", "Rows dropped by each hygiene check.")]
    return write(mixture, tmp_path_factory.mktemp("rel") / "demo", pool=pool, max_shard_size=1500,
                 sections=sections, extra_figures=figures)


def rows_of(ds) -> list[dict]:
    return ds.to_list()


def with_messages(rows: list[dict]) -> list[dict]:
    return [{**r, "messages": [{"role": "user", "content": r["question"]},
                               {"role": "assistant", "content": r["answer"]}]} for r in rows]


def expected_configs(mixture, pool) -> dict[str, list[dict]]:
    base = mixture.remove_columns("embedding")
    expected = {"default": base}
    for ratio, name in ((0.1, "ratio_10"), (0.4, "ratio_40"), (0.7, "ratio_70")):
        expected[name] = base.select(np.flatnonzero(subset_mask(mixture, ratio)))
    expected["pool"] = pool.remove_columns("embedding")
    order = {"default": COLUMNS, "pool": POOL_COLUMNS}
    return {n: [{c: r[c] for c in order.get(n, COLUMNS)} for r in with_messages(rows_of(ds))]
            for n, ds in expected.items()}


def test_every_config_loads_by_name_and_as_parquet_files(release, mixture, pool):
    expected = expected_configs(mixture, pool)
    manifest = json.loads((release / "manifest.json").read_text())
    for name in CONFIGS:
        loaded = load_dataset(str(release), name, split="train")
        assert loaded.column_names == (POOL_COLUMNS if name == "pool" else COLUMNS), name
        assert rows_of(loaded) == expected[name], name
        files = [str(release / f) for f in manifest["configs"][name]["files"]]
        assert files and all(f.endswith(".parquet") for f in files)
        plain = load_dataset("parquet", data_files=files, split="train")
        assert rows_of(plain) == expected[name], name
    assert len(load_dataset(str(release), split="train")) == len(mixture)  # no name: the default config


def test_pool_holds_every_row_that_entered_selection_and_marks_the_mixture(release):
    pool = load_dataset(str(release), "pool", split="train")
    mix = load_dataset(str(release), "default", split="train")
    assert len(pool) == sum(AVAILABLE.values()) == 66
    kept = pool.filter(lambda r: r["kept"])
    assert sorted(kept["id"]) == sorted(mix["id"]) and len(kept) == len(mix) == 41
    ranks = dict(zip(mix["id"], mix["qads_rank"], strict=True))
    assert all(ranks[i] == r for i, r in zip(kept["id"], kept["qads_rank"], strict=True))
    dropped = pool.filter(lambda r: not r["kept"])
    assert {s: dropped["source"].count(s) for s in AVAILABLE} == {"gsm8k_screl": 0, "alpaca": 25, "tal_scq5k_cn": 0}
    assert sorted(dropped["qads_rank"], key=lambda r: (r is None, r)) == [*range(15, 30), *[None] * 10]
    budget = pool.filter(lambda r: r["qads_rank"] is not None and r["qads_rank"] < 18)  # the card's budget recipe
    assert {s: budget["source"].count(s) for s in AVAILABLE} == {"gsm8k_screl": 18, "alpaca": 18, "tal_scq5k_cn": 6}


def test_small_shards_are_split_by_datasets(release):
    shards = sorted((release / "data" / "default").glob("*.parquet"))
    assert len(shards) > 1
    assert shards[0].name == f"train-00000-of-{len(shards):05d}.parquet"


def test_subsets_are_nested(release):
    ids = {name: set(load_dataset(str(release), name, split="train")["id"]) for name in CONFIGS}
    assert ids["ratio_10"] < ids["ratio_40"] < ids["ratio_70"] < ids["default"] < ids["pool"]


def test_card_metadata_parses_back_and_lists_every_config(release):
    card = DatasetCard.load(release / "README.md")
    data = card.data.to_dict()
    configs = {c["config_name"]: c for c in data["configs"]}
    assert set(configs) == set(CONFIGS)
    assert configs["default"]["default"] is True
    assert configs["pool"]["data_files"] == [{"split": "train", "path": "data/pool/train-*"}]
    assert sorted(data["license"]) == ["cc-by-nc-4.0", "mit"]
    assert data["task_categories"] == ["text-generation", "question-answering"]
    assert {"en", "zh"} <= set(data["language"])
    assert data["size_categories"] == ["n<1K"]
    infos = {i["config_name"]: i for i in data["dataset_info"]}
    assert set(infos) == set(CONFIGS)
    assert infos["pool"]["splits"][0]["num_examples"] == 66
    assert infos["ratio_40"]["splits"][0]["num_examples"] == len(load_dataset(str(release), "ratio_40", split="train"))
    features = {f["name"]: f for f in infos["pool"]["features"]}
    assert features["kept"]["dtype"] == "bool"
    assert features["messages"]["list"] == [{"name": "role", "dtype": "string"},
                                            {"name": "content", "dtype": "string"}]
    assert "kept" not in {f["name"] for f in infos["default"]["features"]}


def test_card_body(release):
    body = DatasetCard.load(release / "README.md").text
    assert "| alpaca | general | qads (mean_quality) | 40 | 15 | 37.5 % | 3.00 | 3.25 | 2 | 6 | 11 |" in body
    assert "| **total** | | | **66** | **41** | | | | **5** | **17** | **30** |" in body
    assert "| `pool` | 66 | the whole scored pool: every row that entered selection; `kept` marks the 41 rows" in body
    assert "| `messages` | list of {role: string, content: string} |" in body and "| `kept` | bool |" in body
    assert "| alpaca | cc-by-nc-4.0 | **non-commercial** |" in body
    assert "| gsm8k_screl | mit | per licence |" in body
    links = [line.split("](")[1].rstrip(")") for line in body.splitlines() if line.startswith("![")]
    assert sorted(links) == ["figures/composition.png", "figures/hygiene.png", "figures/mean_score_per_source.png",
                             "figures/score_histogram.png"]
    for link in links:
        assert (release / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "**Hygiene.** Rows dropped by each hygiene check." in body
    assert "## Data hygiene\n\n| check | rows dropped |\n|---|---:|\n| exact duplicates | 7 |\n" in body
    assert "## Scorer agreement with interval\n\nPearson r = 0.62 (95 % interval 0.41-0.78).\n" in body
    assert body.index("## Data hygiene") < body.index("## Figures") < body.index("## Usage")
    assert "| reasoning | 0.620 |  | 12 |  |  | 0.91 |" in body and "| general | 0.410 |  | 9 |  |  | 0.74 |" in body
    assert '"ratio_10", split="train")' in body and 'pool = load_dataset("ORG/NAME", "pool", split="train")' in body
    assert 'r["quality_score"] >= 3.5' in body and 'pool.filter(lambda r: r["kept"])' in body
    assert "from trl import SFTConfig, SFTTrainer" in body
    assert "2404.01067" in body and "Exploring the Mystery of Influential Data for Mathematical Reasoning" in body
    assert "| n1 | 8 |" in body and "| seed | 3 |" in body and "`embedded:smollm2-135m-instruct`" in body
    assert "abc123" in body and "equal-width 5 bins" in body


def code_blocks(body: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", body, flags=re.DOTALL)


def test_axolotl_and_llamafactory_snippets_match_the_data(release):
    """The configuration the card gives each trainer parses, names a config, and maps onto the loaded rows."""
    body = DatasetCard.load(release / "README.md").text
    (axolotl,) = [yaml.safe_load(b) for b in code_blocks(body, "yaml")]
    (llamafactory,) = [json.loads(b) for b in code_blocks(body, "json")]
    (entry,) = axolotl["datasets"]
    assert entry["type"] == "chat_template" and entry["path"] == "ORG/NAME" and entry["split"] == "train"
    rows = load_dataset(str(release), entry["name"], split="train")
    mapping = entry["message_property_mappings"]
    for row in rows:
        turns = row[entry["field_messages"]]
        assert [t[mapping["role"]] for t in turns] == ["user", "assistant"]
        assert [t[mapping["content"]] for t in turns] == [row["question"], row["answer"]]
    ((key, info),) = llamafactory.items()
    assert f"`dataset: {key}`" in body
    assert info["formatting"] == "sharegpt" and info["hf_hub_url"] == "ORG/NAME"
    rows = load_dataset(str(release), info["subset"], split=info["split"])
    tags = info["tags"]
    for row in rows:  # sharegpt: user turns at odd positions, assistant turns at even positions (1-based)
        turns = row[info["columns"]["messages"]]
        assert [t[tags["role_tag"]] for t in turns[0::2]] == [tags["user_tag"]] * ((len(turns) + 1) // 2)
        assert [t[tags["role_tag"]] for t in turns[1::2]] == [tags["assistant_tag"]] * (len(turns) // 2)
        assert turns[1][tags["content_tag"]] == row["answer"]


def test_manifest(release):
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    assert manifest["package"] == {"name": "openmathmix", "version": manifest["version"]}
    assert {"datasets", "huggingface_hub", "pyarrow", "python"} <= set(manifest["libraries"])
    assert manifest["settings"]["n1"] == 8 and manifest["settings"]["n2"] == 4 and manifest["settings"]["seed"] == 3
    assert manifest["models"]["scorer"]["revision"] == "abc123"
    assert manifest["scorer"] == SCORER
    assert manifest["card_sections"] == ["Data hygiene", "Scorer agreement with interval"]
    assert manifest["configs"]["default"]["rows"] == 41
    assert manifest["configs"]["default"]["rows_per_source"] == {"gsm8k_screl": 20, "alpaca": 15, "tal_scq5k_cn": 6}
    assert manifest["configs"]["ratio_10"]["rows_per_source"] == {"gsm8k_screl": 2, "alpaca": 2, "tal_scq5k_cn": 1}
    assert manifest["configs"]["pool"]["rows"] == 66 and manifest["configs"]["pool"]["rows_kept"] == 41
    assert manifest["configs"]["pool"]["columns"] == POOL_COLUMNS
    assert manifest["configs"]["ratio_10"]["columns"] == COLUMNS
    assert manifest["embedding_kept"] is False and "embedding" not in manifest["columns"]
    listed = set(manifest["files"])
    on_disk = {p.relative_to(release).as_posix() for p in release_files(release)} - {"manifest.json"}
    assert listed == on_disk and (release / MARKER).is_file()
    for rel, meta in manifest["files"].items():
        data = (release / rel).read_bytes()
        assert meta == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert validate_release(release)["version"] == manifest["version"]


def test_rewrite_is_byte_identical_and_replaces_old_files(tmp_path, mixture, pool, release):
    again = write(mixture, tmp_path / "a", pool=pool, max_shard_size=1500,
                  sections=[CardSection("Data hygiene", "| check | rows dropped |\n|---|---:|\n| exact duplicates | 7 |"),
                            CardSection("Scorer agreement with interval",
                                        "Pearson r = 0.62 (95 % interval 0.41-0.78).")],
                  extra_figures=[CardFigure(release / "figures" / "hygiene.png", "Hygiene",
                                            "Rows dropped by each hygiene check.")])
    digest = {p.relative_to(release): p.read_bytes() for p in release_files(release)}
    assert digest == {p.relative_to(again): p.read_bytes() for p in release_files(again)}
    (again / "data" / "default" / "stale.parquet").write_bytes(b"old")
    write(mixture, again, max_shard_size=1500)  # replaced as a whole: no stale shard, no pool any more
    assert not (again / "data" / "default" / "stale.parquet").exists() and not (again / "data" / "pool").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temporary folder left behind


def test_keep_embedding_and_default_subsets(tmp_path, mixture):
    out = write_release(mixture, tmp_path / "emb", keep_embedding=True, settings={"subset_ratios": [0.5]})
    ds = load_dataset(str(out), "ratio_50", split="train")
    assert ds.column_names == [*COLUMNS, "embedding"] and len(ds["embedding"][0]) == 4
    assert sorted(ds["id"]) == sorted(mixture.select(np.flatnonzero(subset_mask(mixture, 0.5)))["id"])
    assert not (out / "data" / "pool").exists()


def test_missing_columns_and_foreign_subset_rows(tmp_path, mixture, pool):
    with pytest.raises(MissingColumnsError, match="qads_rank"):
        write_release(mixture.remove_columns("qads_rank"), tmp_path / "x", subsets={})
    with pytest.raises(MissingColumnsError, match="'kept'"):
        write_release(mixture, tmp_path / "x", subsets={}, pool=pool.remove_columns("kept"))
    stranger = Dataset.from_dict({k: [v[0]] for k, v in mixture.to_dict().items()}).map(lambda r: {"id": "nope/1"})
    with pytest.raises(PublishError, match="not in the mixture"):
        write_release(mixture, tmp_path / "y", subsets={"odd": stranger})
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda p, m: (p.filter(lambda r: r["id"] != "alpaca/train/3"), m), "'alpaca/train/3' is in the mixture but not"),
    (lambda p, m: (p.map(lambda r: {"kept": r["kept"] or r["id"] == "alpaca/train/30"}), m),
     "'alpaca/train/30' is kept in the pool but not in the mixture"),
    (lambda p, m: (p.map(lambda r: {"qads_rank": 5 if r["id"] == "gsm8k_screl/train/4" else r["qads_rank"]}), m),
     "'gsm8k_screl/train/4' has qads_rank 5 in the pool but 4 in the mixture"),
    (lambda p, m: (p.map(lambda r: {"id": "alpaca/train/39" if r["id"] == "alpaca/train/38" else r["id"]}), m),
     "'alpaca/train/39' more than once"),
    (lambda p, m: (p.filter(lambda r: r["id"] != "alpaca/train/39"), m), "holds 39 rows of 'alpaca', but the select"),
])
def test_pool_must_match_the_mixture(tmp_path, mixture, pool, change, message):
    bad_pool, bad_mixture = change(pool, mixture)
    with pytest.raises(PublishError, match=re.escape(message)):
        write(bad_mixture, tmp_path / "r", pool=bad_pool)
    assert not (tmp_path / "r").exists()


def test_refuses_to_replace_a_folder_that_is_not_ours(tmp_path, mixture):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(OutputError, match="did not write"):
        write(mixture, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    # a folder holding a file called manifest.json is not a release of ours either (no marker)
    (tmp_path / "lookalike").mkdir()
    (tmp_path / "lookalike" / "manifest.json").write_text("{}")
    (tmp_path / "lookalike" / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="did not write"):
        write(mixture, tmp_path / "lookalike")
    assert sorted(p.name for p in (tmp_path / "lookalike").iterdir()) == ["manifest.json", "thesis.tex"]
    ours = write(mixture, tmp_path / "ours")
    with pytest.raises(OutputError, match="--overwrite"):
        write(mixture, ours, overwrite=False)
    with pytest.raises(OutputError, match="contains the input"):  # never written over the mixture's own files
        (tmp_path / "arrow").mkdir()
        write(mixture.flatten_indices(cache_file_name=str(tmp_path / "arrow" / "mix.arrow")), tmp_path)


def test_secret_guard_covers_text_and_parquet_rows(tmp_path, mixture, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    out = write(mixture, tmp_path / "clean")  # the environment's token is never written
    for path in out.rglob("*"):
        assert not path.is_file() or FAKE_TOKEN.encode() not in path.read_bytes()
    with pytest.raises(PublishError, match="the settings given to write_release contains what looks like a Hugg"
                       ) as err:
        write(mixture, tmp_path / "leak", settings={**SETTINGS, "note": f"token {FAKE_TOKEN}"})
    assert FAKE_TOKEN not in str(err.value)
    leaky = mixture.map(lambda r, i: {"answer": f"use {FAKE_TOKEN}" if i == 7 else r["answer"]}, with_indices=True)
    with pytest.raises(PublishError, match=r"row 7 of column 'answer' in .*data/default/train-00000") as err:
        write(leaky, tmp_path / "leak_row", max_shard_size="1GB")
    assert FAKE_TOKEN not in str(err.value)
    monkeypatch.setenv("HF_TOKEN", "plain-secret-value-42")  # not hf_-shaped: caught by value
    with pytest.raises(PublishError):
        write(mixture, tmp_path / "leak2", description="plain-secret-value-42")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean"]


def test_secret_scan_finds_a_token_inside_a_nested_column(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    turns = [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]] * 3
    turns.append([{"role": "user", "content": "q"}, {"role": "assistant", "content": f"key {FAKE_TOKEN}"}])
    pq.write_table(pa.table({"n": [1, 2, 3, 4], "messages": turns}), tmp_path / "x.parquet")
    with pytest.raises(PublishError, match=r"row 3 of column 'messages'"):
        check_no_secrets(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    turns = [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "my value-of-a-secret-12"}]]
    pq.write_table(pa.table({"messages": turns}), other / "y.parquet")
    check_no_secrets(other)  # no token pattern, no known secret
    with pytest.raises(PublishError, match=r"row 1 of column 'messages'"):  # a known secret, found by value
        check_no_secrets(other / "y.parquet", extra=["value-of-a-secret-12"])


def test_no_local_paths_in_the_card_or_manifest(tmp_path, mixture):
    preset = tmp_path / "presets" / "mine.yaml"
    preset.parent.mkdir()
    preset.write_text("name: mine\n")
    model = tmp_path / "models" / "tiny-llama"
    model.mkdir(parents=True)
    settings = {**SETTINGS, "preset_file": str(preset),
                "models": {"embedding": {"name": str(model), "revision": None},
                           "scorer": {"name": f"classifier on {model}", "revision": None}}}
    out = write(mixture, tmp_path / "rel", settings=settings)
    digest = hashlib.sha256(preset.read_bytes()).hexdigest()[:16]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["preset_file"] == f"mine.yaml (sha256 {digest})"
    assert manifest["models"] == {"embedding": {"name": "tiny-llama", "revision": None},
                                  "scorer": {"name": "classifier on tiny-llama", "revision": None}}
    for name in ("README.md", "manifest.json", "LICENSE.md"):
        assert str(tmp_path) not in (out / name).read_text()
    with pytest.raises(PublishError, match="card section 'Notes' given to write_release names the local folder"):
        write(mixture, tmp_path / "rel2", sections=[CardSection("Notes", f"see {tmp_path}/notes.md")])
    assert not (tmp_path / "rel2").exists()
    (out / "README.md").write_text(f"# Card\n\nBuilt from {tmp_path / 'work'}.\n")  # the guard on written files
    with pytest.raises(PublishError, match="README.md of the release names the local folder"):
        check_no_local_paths(out, roots=[tmp_path])


def test_extra_figures_and_sections_are_checked(tmp_path, mixture, figure):
    with pytest.raises(PublishError, match="does not exist"):
        write(mixture, tmp_path / "r", extra_figures=[CardFigure(tmp_path / "nope.png", "t", "c")])
    clash = tmp_path / "composition.png"
    clash.write_bytes(figure.read_bytes())
    with pytest.raises(PublishError, match="already taken"):
        write(mixture, tmp_path / "r", extra_figures=[CardFigure(clash, "t", "c")])
    with pytest.raises(PublishError, match="one-line title"):
        CardSection("two\nlines", "text")


def test_licence_helpers():
    assert is_non_commercial("cc-by-nc-4.0") and is_non_commercial("cc-by-nc-sa-4.0")
    assert is_non_commercial("research-only") and not is_non_commercial("mit") and not is_non_commercial("cc-by-4.0")
    same = [SourceInfo("a", licenses=("mit",)), SourceInfo("b", licenses=("mit",))]
    assert license_fields(same) == {"license": "mit"}
    mixed = license_fields([SourceInfo("a", licenses=("mit",)), SourceInfo("b", licenses=("nvidia-license",))])
    assert mixed == {"license": ["mit", "other"], "license_name": "openmathmix-per-source",
                     "license_link": "LICENSE.md"}
    assert size_category(999) == "n<1K" and size_category(4_700_000) == "1M<n<10M"


@pytest.mark.slow
def test_build_demo_end_to_end_with_a_tiny_model(demo_build, tiny_model_dir, capsys):
    """The whole pipeline on generated demo data; a second build reuses every cached stage and writes the same
    bytes; `openmathmix show` loads it back."""
    from openmathmix.cli import main
    from openmathmix.pipeline import build

    first, cache_dir, settings, out = demo_build
    assert re.search(r"\[(\d+)/\1\] release", out) and "| **total** |" in out
    assert "## Mean score per row kind" in out and "## Selection report" in out and "Pearson r = " in out
    second = build("demo", first.parent / "b", model=tiny_model_dir, cache_dir=cache_dir, settings=settings)
    out = capsys.readouterr().out
    assert "reused from the cache" in out and "all reused from the cache" in out
    assert {p.relative_to(first): p.read_bytes() for p in release_files(first)} == {
        p.relative_to(second): p.read_bytes() for p in release_files(second)}

    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["settings"]["n1"] == 2 and manifest["settings"]["n2"] == 2
    body = DatasetCard.load(first / "README.md").text
    assert "## Mean score per row kind" in body and "| reasoning | stepwise |" in body
    assert "## Selection report" in body and "figures/selection_report.png" in body
    pool = load_dataset(str(first), "pool", split="train")
    mixture = load_dataset(str(first), "default", split="train")
    assert len(pool) == sum(r["available"] for r in manifest["composition"])
    assert sorted(pool.filter(lambda k: k, input_columns="kept")["id"]) == sorted(mixture["id"])
    assert {"default", *SUBSETS} <= set(manifest["configs"])
    ids = {name: set(load_dataset(str(first), name, split="train")["id"]) for name in ("default", *SUBSETS)}
    assert ids["ratio_10"] <= ids["ratio_40"] <= ids["ratio_70"] <= ids["default"]
    assert len(ids["default"]) == manifest["configs"]["default"]["rows"]

    assert main(["show", str(first)]) == 0
    out = capsys.readouterr().out
    assert "| ratio_10 |" in out and "| alpaca | general |" in out and "card: " in out
    assert main(["show", str(first.parent / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
