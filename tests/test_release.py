"""Release writer and card: a synthetic mixture written, loaded back with `load_dataset`, card and manifest read."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from datasets import Dataset, load_dataset
from huggingface_hub import DatasetCard

from openmathmix.release.card import SourceInfo, is_non_commercial, license_fields, size_category
from openmathmix.errors import MissingColumnsError, PublishError
from openmathmix.release import release_files, validate_release, write_release

CONFIGS = ("default", "ratio_10", "ratio_40", "ratio_70")
SOURCES = {"gsm8k_screl": (20, "reasoning", "mit"), "alpaca": (15, "general", "cc-by-nc-4.0"),
           "tal_scq5k_cn": (6, "reasoning", "mit")}
AVAILABLE = {"gsm8k_screl": 20, "alpaca": 40, "tal_scq5k_cn": 6}
SETTINGS = {
    "preset": "demo", "seed": 3, "n1": 8, "n2": 4, "init_size": 2, "budgets": {"token_budget": 8192},
    "models": {"embed": {"name": "embedded:smollm2-135m-instruct", "revision": None},
               "scorer": {"name": "light", "revision": "abc123"}},
    "binning": "equal-width 5 bins over [0, 1]",
}
SCORER = {"pearson": {"reasoning": 0.62, "general": 0.41}, "n_eval": {"reasoning": 12, "general": 9}}


def make_mixture(with_embedding: bool = True) -> Dataset:
    rng = np.random.default_rng(0)
    cols = {k: [] for k in ("id", "source", "task", "question", "answer", "license", "quality_score", "qads_rank")}
    for name, (n, task, licence) in SOURCES.items():
        for rank in range(n):
            cols["id"].append(f"{name}/train/{rank}")
            cols["source"].append(name)
            cols["task"].append(task)
            cols["question"].append(f"question {rank} of {name}?")
            cols["answer"].append(f"answer {rank}")
            cols["license"].append(licence)
            cols["quality_score"].append(float(rng.uniform(1, 5)))
            cols["qads_rank"].append(rank)
    if with_embedding:
        cols["embedding"] = rng.standard_normal((len(cols["id"]), 4)).astype("float32").tolist()
    return Dataset.from_dict(cols)


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
    options = dict(subsets=subsets, composition=composition(), settings=SETTINGS, scorer_report=SCORER,
                   sources=list(SOURCES))
    options.update(kwargs)
    return write_release(mixture, out, **options)


@pytest.fixture(scope="module")
def mixture() -> Dataset:
    return make_mixture()


@pytest.fixture(scope="module")
def release(tmp_path_factory, mixture):
    return write(mixture, tmp_path_factory.mktemp("rel") / "demo", max_shard_size=1500)


def rows_of(ds) -> list[dict]:
    return ds.to_list()


def test_every_config_round_trips_through_load_dataset(release, mixture):
    expected = {"default": mixture.remove_columns("embedding")}
    for ratio, name in ((0.1, "ratio_10"), (0.4, "ratio_40"), (0.7, "ratio_70")):
        expected[name] = expected["default"].select(np.flatnonzero(subset_mask(mixture, ratio)))
    for name in CONFIGS:
        loaded = load_dataset(str(release), name, split="train")
        assert loaded.column_names == ["id", "source", "task", "question", "answer", "quality_score", "qads_rank",
                                       "license"]
        assert rows_of(loaded) == rows_of(expected[name]), name
    assert len(load_dataset(str(release), split="train")) == len(mixture)  # no name: the default config


def test_small_shards_are_split_by_datasets(release):
    shards = sorted((release / "data" / "default").glob("*.parquet"))
    assert len(shards) > 1
    assert shards[0].name == f"train-00000-of-{len(shards):05d}.parquet"


def test_subsets_are_nested(release):
    ids = {name: set(load_dataset(str(release), name, split="train")["id"]) for name in CONFIGS}
    assert ids["ratio_10"] < ids["ratio_40"] < ids["ratio_70"] < ids["default"]


def test_card_metadata_parses_back(release):
    card = DatasetCard.load(release / "README.md")
    data = card.data.to_dict()
    configs = {c["config_name"]: c for c in data["configs"]}
    assert set(configs) == set(CONFIGS)
    assert configs["default"]["default"] is True
    assert configs["ratio_10"]["data_files"] == [{"split": "train", "path": "data/ratio_10/train-*"}]
    assert sorted(data["license"]) == ["cc-by-nc-4.0", "mit"]
    assert data["task_categories"] == ["text-generation", "question-answering"]
    assert {"en", "zh"} <= set(data["language"])
    assert {"math", "reasoning", "sft", "data-selection", "qads"} <= set(data["tags"])
    assert data["size_categories"] == ["n<1K"]
    infos = {i["config_name"]: i for i in data["dataset_info"]}
    assert infos["ratio_40"]["splits"][0]["num_examples"] == len(load_dataset(str(release), "ratio_40", split="train"))


def test_card_body(release):
    body = DatasetCard.load(release / "README.md").text
    assert "| alpaca | general | qads (mean_quality) | 40 | 15 | 37.5 % | 3.00 | 3.25 | 2 | 6 | 11 |" in body
    assert "| alpaca | cc-by-nc-4.0 | **non-commercial** |" in body
    assert "| gsm8k_screl | mit | per licence |" in body
    assert "Non-commercial data inside" in body
    links = [line.split("](")[1].rstrip(")") for line in body.splitlines() if line.startswith("![")]
    assert sorted(links) == ["figures/composition.png", "figures/mean_score_per_source.png",
                             "figures/score_histogram.png"]
    for link in links:
        assert (release / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| reasoning | 0.620 | 12 | 0.91 |" in body and "| general | 0.410 | 9 | 0.74 |" in body
    assert '"ratio_10", split="train")' in body and 'r["quality_score"] >= 4' in body
    assert "2404.01067" in body and "Exploring the Mystery of Influential Data for Mathematical Reasoning" in body
    assert "| n1 | 8 |" in body and "| seed | 3 |" in body and "`embedded:smollm2-135m-instruct`" in body
    assert "abc123" in body and "equal-width 5 bins" in body


def test_manifest(release):
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["package"] == {"name": "openmathmix", "version": manifest["version"]}
    assert {"datasets", "huggingface_hub", "pyarrow", "python"} <= set(manifest["libraries"])
    assert manifest["settings"]["n1"] == 8 and manifest["settings"]["n2"] == 4 and manifest["settings"]["seed"] == 3
    assert manifest["models"]["scorer"]["revision"] == "abc123"
    assert manifest["scorer"] == SCORER
    assert manifest["configs"]["default"]["rows"] == 41
    assert manifest["configs"]["default"]["rows_per_source"] == {"gsm8k_screl": 20, "alpaca": 15, "tal_scq5k_cn": 6}
    assert manifest["configs"]["ratio_10"]["rows_per_source"] == {"gsm8k_screl": 2, "alpaca": 2, "tal_scq5k_cn": 1}
    assert manifest["embedding_kept"] is False and "embedding" not in manifest["columns"]
    listed = set(manifest["files"])
    on_disk = {p.relative_to(release).as_posix() for p in release_files(release)} - {"manifest.json"}
    assert listed == on_disk
    for rel, meta in manifest["files"].items():
        data = (release / rel).read_bytes()
        assert meta == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert validate_release(release, check_hashes=True)["version"] == manifest["version"]


def test_rewrite_is_byte_identical_and_replaces_old_files(tmp_path, mixture):
    first = write(mixture, tmp_path / "a", max_shard_size=1500)
    (first / "data" / "default" / "stale.parquet").write_bytes(b"old")
    again = write(mixture, tmp_path / "a", max_shard_size=1500)
    assert not (again / "data" / "default" / "stale.parquet").exists()
    other = write(mixture, tmp_path / "b", max_shard_size=1500)
    digest = {p.relative_to(again): p.read_bytes() for p in release_files(again)}
    assert digest == {p.relative_to(other): p.read_bytes() for p in release_files(other)}


def test_keep_embedding_and_default_subsets(tmp_path, mixture):
    out = write_release(mixture, tmp_path / "emb", keep_embedding=True, settings={"subset_ratios": [0.5]})
    ds = load_dataset(str(out), "ratio_50", split="train")
    assert "embedding" in ds.column_names and len(ds["embedding"][0]) == 4
    assert sorted(ds["id"]) == sorted(mixture.select(np.flatnonzero(subset_mask(mixture, 0.5)))["id"])


def test_missing_columns_and_foreign_subset_rows(tmp_path, mixture):
    with pytest.raises(MissingColumnsError, match="qads_rank"):
        write_release(mixture.remove_columns("qads_rank"), tmp_path / "x", subsets={})
    stranger = Dataset.from_dict({k: [v[0]] for k, v in mixture.to_dict().items()}).map(lambda r: {"id": "nope/1"})
    with pytest.raises(PublishError, match="not in the mixture"):
        write_release(mixture, tmp_path / "y", subsets={"odd": stranger})
    assert not (tmp_path / "y").exists()


def test_refuses_to_overwrite_a_folder_that_is_not_a_release(tmp_path, mixture):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(PublishError, match="does not look like an earlier release"):
        write(mixture, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_secret_guard_blocks_token_patterns_and_the_current_token(tmp_path, mixture, monkeypatch):
    fake = "hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH"
    monkeypatch.setenv("HF_TOKEN", fake)
    out = write(mixture, tmp_path / "clean")  # the environment's token is never written
    for path in release_files(out):
        assert fake.encode() not in path.read_bytes()
    with pytest.raises(PublishError, match="looks like a Hugging Face access token") as err:
        write(mixture, tmp_path / "leak", settings={**SETTINGS, "note": f"token {fake}"})
    assert fake not in str(err.value)
    assert not (tmp_path / "leak").exists()
    monkeypatch.setenv("HF_TOKEN", "plain-secret-value-42")  # not hf_-shaped: caught by value
    with pytest.raises(PublishError):
        write(mixture, tmp_path / "leak2", description="plain-secret-value-42")


def test_licence_helpers():
    assert is_non_commercial("cc-by-nc-4.0") and is_non_commercial("cc-by-nc-sa-4.0")
    assert is_non_commercial("research-only") and not is_non_commercial("mit") and not is_non_commercial("cc-by-4.0")
    same = [SourceInfo("a", licenses=("mit",)), SourceInfo("b", licenses=("mit",))]
    assert license_fields(same) == {"license": "mit"}
    mixed = license_fields([SourceInfo("a", licenses=("mit",)), SourceInfo("b", licenses=("nvidia-license",))])
    assert mixed == {"license": ["mit", "other"], "license_name": "openmathmix-per-source",
                     "license_link": "LICENSE.md"}
    assert size_category(999) == "n<1K" and size_category(4_700_000) == "1M<n<10M"


def test_build_demo_end_to_end_with_a_tiny_model(tmp_path, tiny_model_dir, capsys):
    """The whole pipeline on the bundled fixtures; a second build reuses every cached stage and writes the same
    bytes; `openmathmix show` loads it back."""
    import dataclasses

    from openmathmix.cli import main
    from openmathmix.pipeline import BuildConfig, build

    config = dataclasses.replace(BuildConfig.demo(), n1=1, n2=2)
    first = build("demo", tmp_path / "a", model=tiny_model_dir, device="cpu", cache_dir=tmp_path / "cache",
                  config=config)
    out = capsys.readouterr().out
    assert "[7/7] release" in out and "| **total** |" in out
    second = build("demo", tmp_path / "b", model=tiny_model_dir, device="cpu", cache_dir=tmp_path / "cache",
                   config=config)
    out = capsys.readouterr().out
    assert "reused from the cache" in out and "all reused from the cache" in out
    assert {p.relative_to(first): p.read_bytes() for p in release_files(first)} == {
        p.relative_to(second): p.read_bytes() for p in release_files(second)}

    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["settings"]["n1"] == 1 and manifest["settings"]["n2"] == 2
    assert manifest["settings"]["scorers"] == ["general", "reasoning"]
    assert set(manifest["configs"]) == set(CONFIGS)
    ids = {name: set(load_dataset(str(first), name, split="train")["id"]) for name in CONFIGS}
    assert ids["ratio_10"] <= ids["ratio_40"] <= ids["ratio_70"] <= ids["default"]
    assert len(ids["default"]) == manifest["configs"]["default"]["rows"]

    assert main(["show", str(first)]) == 0
    out = capsys.readouterr().out
    assert "| ratio_10 |" in out and "| alpaca | general |" in out and "card: " in out
    assert main(["show", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
