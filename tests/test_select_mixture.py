"""Presets (loading, validation errors), select_mixture over a Dataset, nested subsets, and `openmathmix select`."""

from __future__ import annotations

import itertools
import json
import textwrap

import datasets
import numpy as np
import pytest

from openmathmix.cli import main
from openmathmix.errors import MissingColumnsError, PresetError, SelectionError
from openmathmix.outputs import MARKER
from openmathmix.schema import QADS_RANK
from openmathmix.select.kcenter import rank_scope
from openmathmix.select.mixture import (
    capped_counts,
    iter_subsets,
    list_presets,
    load_preset,
    parse_preset,
    plan,
    ranked_pool,
    registered_sources,
    select_mixture,
    subset,
    subset_mask,
)

PACKAGED = [
    "demo", "openmathmix", "sbase_69k", "sbase_130k", "sbase_203k",
    "slarge_4.3m", "slarge_5.0m", "slarge_2.6m", "slarge_3.0m",
]


# ---------------------------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------------------------


def test_every_packaged_preset_loads():
    assert sorted(PACKAGED) == list_presets()
    known = set(registered_sources())
    for name in PACKAGED:
        preset = load_preset(name)
        assert preset.name == name and preset.origin == f"presets/{name}.yaml"
        assert set(preset.source_names) <= known
        assert preset.subset_ratios == (0.1, 0.4, 0.7) and preset.scope == "source"
    assert load_preset("sbase_69k").eq5.upp == 30_000


def test_preset_from_a_user_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "sources:\n  cot: {policy: qads, ratio: 0.5}\n  alpaca: {policy: qads, count: 3}\n  gsm8k_screl: all\n"
    )
    preset = load_preset(path)
    assert preset.name == "mine" and preset.origin == str(path) and preset.init_size == 100
    assert plan(preset, {"cot": 10, "alpaca": 10, "gsm8k_screl": 4}) == {"cot": 5, "alpaca": 3, "gsm8k_screl": 4}
    assert plan(preset, {"cot": 10, "alpaca": 2, "gsm8k_screl": 4})["alpaca"] == 2  # a count is capped at n
    assert capped_counts(preset, {"cot": 10, "alpaca": 2, "gsm8k_screl": 4}) == {
        "alpaca": {"requested": 3, "available": 2}
    }
    assert capped_counts(preset, {"cot": 10, "alpaca": 3, "gsm8k_screl": 4}) == {}


def write(tmp_path, body: str):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (
            "sources: {cot: all}\nsubset_ratio: [0.1]\n",
            ["unknown key(s) ['subset_ratio']", "subset_ratios:", "bad.yaml"],
        ),
        ("sources: {cot: all, gsm8k: all}\n", ["unknown source(s) ['gsm8k']", "gsm8k_screl", "bad.yaml"]),
        ("sources: {cot: {policy: random}}\n", ["unknown policy 'random'", "['all', 'select']", "bad.yaml"]),
        ("sources: {cot: all}\nstrategy: best\n", ["'strategy' must be one of", "'length'", "'best'"]),
        ("sources: {cot: all}\ninclude: [1]\n", ["'include' must be a file name"]),
        ("include: nowhere.yaml\nsources: {cot: all}\n", ["nowhere.yaml does not exist"]),
        ("sources: {cot: {policy: qads}}\n", ["exactly one of 'rule', 'ratio', 'count'"]),
        ("sources: {cot: {policy: qads, rule: eq5, ratio: 0.2}}\n", ["exactly one of"]),
        ("sources: {cot: {policy: qads, rule: median}}\n", ["unknown rule 'median'", "mean_quality"]),
        ("sources: {cot: {policy: qads, rule: eq5}}\n", ["no 'eq5:"]),
        ("sources: {cot: {policy: qads, ratio: 1.5}}\n", ["ratio must lie in [0, 1]"]),
        ("sources: {cot: {policy: all, ratio: 0.5}}\n", ["policy 'all' takes no"]),
        ("sources: {cot: {policy: qads, rule: eq5}}\neq5: {low: 10}\n", ["exactly the keys ['low', 'upp']"]),
        ("sources: {cot: {policy: qads, rule: eq5}}\neq5: {low: 10, upp: 5}\n", ["low < upp"]),
        ("sources: {cot: {policy: qads, ratio: 0.5, fraction: 1}}\n", ["unknown key(s) ['fraction']"]),
        ("sources: {cot: all}\nsubset_ratios: [0.4, 0.1]\n", ["increasing"]),
        ("sources: {cot: all}\nscope: global\n", ["'scope' must be one of ['source']"]),
        ("sources: {cot: all}\ndtype: int8\n", ["unsupported dtype"]),
        ("sources: {}\n", ["non-empty mapping"]),
        ("- cot\n", ["top level must be a mapping"]),
        ("sources: {cot: all\n", ["not valid YAML"]),
    ],
)
def test_bad_presets(tmp_path, body, messages):
    with pytest.raises(PresetError) as err:
        load_preset(write(tmp_path, body))
    for message in messages:
        assert message in str(err.value)


def test_unknown_preset_name_lists_the_packaged_ones():
    with pytest.raises(PresetError, match="unknown preset 'openmathmix2'.*sbase_69k"):
        load_preset("openmathmix2")
    with pytest.raises(PresetError, match="does not exist"):
        load_preset("nowhere/mine.yaml")


def test_plan_errors():
    preset = parse_preset({"sources": {"cot": {"policy": "qads", "rule": "mean_quality"}, "alpaca": "all"}})
    with pytest.raises(SelectionError, match=r"source\(s\) \['alpaca'\] with no rows"):
        plan(preset, {"cot": 10})
    with pytest.raises(SelectionError, match="no mean quality"):
        plan(preset, {"cot": 10, "alpaca": 3})
    with pytest.raises(SelectionError, match="outside"):
        plan(preset, {"cot": 10, "alpaca": 3}, {"cot": 9.0})
    assert plan(preset, {"cot": 10, "alpaca": 3}, {"cot": 2.0}) == {"cot": 4, "alpaca": 3}


# ---------------------------------------------------------------------------------------------------------------------
# select_mixture
# ---------------------------------------------------------------------------------------------------------------------

GENERAL = {"alpaca", "baize", "cot", "evol_instruct_v2", "flan_v2", "oasst1", "self_instruct"}


def make_dataset(sources, seed=0, d=8, extra=()):
    """Rows of every source (6-12 each, like the demo fixtures), shuffled together, plus unlisted extra sources."""
    rng = np.random.default_rng(seed)
    rows = {"id": [], "source": [], "task": [], "answer": [], "embedding": [], "quality_score": []}
    for name in [*sources, *extra]:
        for i in range(int(rng.integers(6, 13))):
            rows["id"].append(f"{name}/train/{i}")
            rows["source"].append(name)
            rows["task"].append("general" if name in GENERAL else "reasoning")
            rows["answer"].append("x" * int(rng.integers(1, 40)))
            rows["embedding"].append(rng.standard_normal(d).astype(np.float32).tolist())
            rows["quality_score"].append(float(rng.uniform(1, 5)))
    return datasets.Dataset.from_dict(rows).shuffle(seed=seed)


@pytest.fixture(scope="module")
def demo_run():
    preset = load_preset("demo")
    ds = make_dataset(preset.source_names, extra=["mathinstruct_gsm8k"])
    mixture, report = select_mixture(ds, preset)
    return preset, ds, mixture, report


def test_demo_mixture_ranks_and_counts(demo_run):
    preset, _, mixture, report = demo_run
    assert QADS_RANK in mixture.column_names
    src = np.array(mixture["source"])
    rank = np.array(mixture[QADS_RANK])
    rows = {r["source"]: r for r in report.rows}
    assert rows["mathinstruct_gsm8k"]["policy"] == "excluded" and rows["mathinstruct_gsm8k"]["kept"] == 0
    assert "mathinstruct_gsm8k" not in set(src)
    # grouped by source in preset order, ranks 0..kept-1 within each source
    order = [s for i, s in enumerate(src) if i == 0 or src[i - 1] != s]
    assert order == [s for s in preset.source_names if rows[s]["kept"]]
    for name in preset.source_names:
        r = rows[name]
        np.testing.assert_array_equal(rank[src == name], np.arange(r["kept"]))
        if name in GENERAL:
            assert r["kept"] == int(np.floor(r["available"] * r["mean_quality"] / 5 + 0.5))
        else:
            assert r["kept"] == r["available"]
    assert report.total_kept == len(mixture)


def test_mixture_rows_follow_rank_scope(demo_run):
    preset, ds, mixture, report = demo_run
    import zlib

    source = np.array(ds["source"])
    emb = np.array(ds["embedding"], dtype=np.float32)
    q = np.array(ds["quality_score"])
    ids = np.array(ds["id"])
    for name in ("baize", "dmath"):
        where = np.flatnonzero(source == name)
        keep = next(r["kept"] for r in report.rows if r["source"] == name)
        order = rank_scope(emb[where], q[where], keep, init_size=preset.init_size,
                           seed=[preset.seed, zlib.crc32(name.encode())])
        got = np.array(mixture.filter(lambda s, want=name: s == want, input_columns="source")["id"])
        np.testing.assert_array_equal(got, ids[where][order])


def test_subsets_are_nested_and_match_the_report(demo_run):
    preset, _, mixture, report = demo_run
    masks = [subset_mask(mixture, r) for r in preset.subset_ratios]
    for small, large in itertools.pairwise(masks):
        assert not (small & ~large).any()
    assert subset_mask(mixture, 1.0).all()
    src = np.array(mixture["source"])
    for (name, sub), mask in zip(iter_subsets(mixture, preset.subset_ratios), masks):
        assert len(sub) == mask.sum() == sum(report.subsets[name].values())
        for source, count in report.subsets[name].items():
            assert (mask & (src == source)).sum() == count
    ranks = list(subset(mixture, 0.1)[QADS_RANK])  # 6-12 rows per source: ceil(0.1 * kept) is 1 or 2
    assert ranks.count(0) == len(set(src)) and set(ranks) <= {0, 1}


def test_selection_is_deterministic_and_seeded(demo_run):
    preset, ds, mixture, _ = demo_run
    again, _ = select_mixture(ds, preset)
    assert again["id"] == mixture["id"]
    reseeded, _ = select_mixture(ds, parse_preset({"sources": {"baize": {"policy": "qads", "ratio": 0.5}},
                                                   "init_size": 2, "seed": 99}))
    base, _ = select_mixture(ds, parse_preset({"sources": {"baize": {"policy": "qads", "ratio": 0.5}},
                                               "init_size": 2, "seed": 0}))
    assert len(reseeded) == len(base)
    assert reseeded["id"] != base["id"] or len(base) < 3


def test_report_rendering(demo_run):
    _, _, mixture, report = demo_run
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["total"]["kept"] == len(mixture)
    assert {"source", "available", "kept", "ratio", "mean_quality"} <= set(payload["sources"][0])
    md = report.to_markdown()
    assert md.startswith("| source | task | policy | available | kept | ratio | mean QS |")
    assert "ratio_10" in md and "**total**" in md and "| baize | general | qads (mean_quality) |" in md


def test_rank_all_input_and_rerun_replaces_rank():
    ds = make_dataset(["cot", "alpaca"], seed=3)
    preset = parse_preset({"sources": {"cot": "all", "alpaca": {"policy": "qads", "ratio": 0.5}},
                           "rank_all": "input", "init_size": 2})
    mixture, _ = select_mixture(ds, preset)
    cot_ids = [i for i, s in zip(ds["id"], ds["source"]) if s == "cot"]
    assert mixture["id"][: len(cot_ids)] == cot_ids  # input order kept for 'all' sources
    again, _ = select_mixture(mixture, preset)  # an existing qads_rank column is replaced, not duplicated
    assert again.column_names.count(QADS_RANK) == 1


def test_fixed_length_embeddings_on_an_index_mapped_dataset():
    # The embed stage writes List(Value("float32"), length=d), an Arrow fixed_size_list.
    ds = make_dataset(["cot", "alpaca"], seed=6)
    fixed = ds.cast_column("embedding", datasets.List(datasets.Value("float32"), length=8))
    preset = parse_preset({"sources": {"cot": {"policy": "qads", "ratio": 0.5}, "alpaca": "all"}, "init_size": 2})
    a, _ = select_mixture(fixed.select(range(3, len(fixed))), preset)
    b, _ = select_mixture(ds.select(range(3, len(ds))), preset)
    assert a["id"] == b["id"] and a[QADS_RANK] == b[QADS_RANK]


def test_missing_columns_and_ragged_embeddings():
    ds = make_dataset(["cot"], seed=4)
    preset = parse_preset({"sources": {"cot": "all"}, "init_size": 2})
    with pytest.raises(MissingColumnsError, match="quality_score"):
        select_mixture(ds.remove_columns("quality_score"), preset)
    two = parse_preset({"sources": {"cot": "all", "baize": "all"}, "init_size": 2})
    with pytest.raises(SelectionError, match=r"lists source\(s\) \['baize'\] with no rows"):
        select_mixture(ds, two)
    ragged = datasets.Dataset.from_dict(
        {"source": ["cot"] * 3, "embedding": [[1.0, 2.0], [1.0], [0.0, 1.0]], "quality_score": [1.0, 2.0, 3.0]}
    )
    with pytest.raises(SelectionError, match="different lengths"):
        select_mixture(ragged, preset)
    nan = datasets.Dataset.from_dict(
        {"source": ["cot"] * 3, "embedding": [[1.0, 2.0], [np.nan, 1.0], [0.0, 1.0]], "quality_score": [1.0, 2.0, 3.0]}
    )
    with pytest.raises(SelectionError, match="NaN"):
        select_mixture(nan, preset)


# ---------------------------------------------------------------------------------------------------------------------
# Strict YAML and include
# ---------------------------------------------------------------------------------------------------------------------


def test_a_key_given_twice_is_an_error_naming_file_key_and_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("seed: 1\nsources:\n  cot: all\n  alpaca: all\n  cot: {policy: select, ratio: 0.5}\n")
    with pytest.raises(PresetError) as err:
        load_preset(path)
    assert str(path) in str(err.value) and "'cot' is given twice (lines 3 and 5)" in str(err.value)
    path.write_text("seed: 1\nsources: {cot: all}\nseed: 2\n")
    with pytest.raises(PresetError, match="'seed' is given twice \\(lines 1 and 3\\)"):
        load_preset(path)


def test_include_merges_mappings_and_the_including_file_wins(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "base.yaml").write_text(
        "name: not-inherited\nseed: 7\ninit_size: 3\nsources:\n  cot: all\n  alpaca: {policy: select, ratio: 0.5}\n"
    )
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "include: parts/base.yaml\nstrategy: random\ninit_size: 5\n"
        "sources:\n  alpaca: all\n  gsm8k_screl: all\n"
    )
    preset = load_preset(mine)
    assert preset.name == "mine" and preset.seed == 7 and preset.init_size == 5 and preset.strategy == "random"
    assert preset.source_names == ("cot", "alpaca", "gsm8k_screl")  # an included source keeps its position
    assert preset.policy("alpaca").policy == "all"
    # a packaged fragment by name, from a user file anywhere
    user = tmp_path / "base_user.yaml"
    user.write_text("include: _sbase\neq5: {upp: 30000}\n")
    assert load_preset(user).sources == load_preset("sbase_69k").sources
    assert load_preset(user).eq5 == load_preset("sbase_69k").eq5


def test_include_cycles_and_fragments(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\nsources: {cot: all}\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(PresetError, match="include cycle .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_preset(tmp_path / "a.yaml")
    assert "_sbase" not in list_presets()
    with pytest.raises(PresetError, match="exactly the keys \\['low', 'upp'\\]"):  # a fragment lacks eq5.upp
        load_preset("_sbase")


def test_packaged_presets_state_only_what_differs_from_the_defaults():
    """No packaged preset repeats a key whose value is the default (shared keys live in Preset or a fragment)."""
    import importlib.resources

    import yaml

    defaults = {"scope": "source", "seed": 0, "init_size": 100, "subset_ratios": [0.1, 0.4, 0.7],
                "embedding_column": "embedding", "quality_column": "quality_score", "dtype": "float32",
                "rank_all": "strategy", "qs_max": 5, "strategy": "qads"}
    root = importlib.resources.files("openmathmix.presets")
    for f in root.iterdir():
        if f.name.endswith(".yaml"):
            data = yaml.safe_load(f.read_text())
            repeated = {k for k in defaults if data.get(k) == defaults[k]}
            assert not repeated, f"{f.name} repeats default key(s) {repeated}"


# ---------------------------------------------------------------------------------------------------------------------
# CLI (through openmathmix.cli.main: exit codes and messages, no tracebacks)
# ---------------------------------------------------------------------------------------------------------------------


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def demo_input(tmp_path):
    preset = load_preset("demo")
    make_dataset(preset.source_names, seed=5).save_to_disk(str(tmp_path / "in"))
    return tmp_path / "in"


def test_cli_select_writes_mixture_and_report(tmp_path, capsys, demo_input):
    out = tmp_path / "out"
    argv = ["select", "--preset", "demo", "--in", str(demo_input), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| source |" in printed and "wrote" in printed and "(strategy qads)" in printed
    mixture = datasets.load_from_disk(str(out))
    report = json.loads((out / "composition.json").read_text())
    assert len(mixture) == report["total"]["kept"] and QADS_RANK in mixture.column_names
    assert report["strategy"] == "qads" and report["rank_column"] == QADS_RANK and report["capped"] == {}
    assert (out / "composition.md").read_text().startswith("# Composition of `demo` (qads)")
    assert (out / MARKER).is_file()
    for name, counts in report["subsets"].items():
        ratio = int(name.split("_")[1]) / 100
        assert subset_mask(mixture, ratio).sum() == sum(counts.values())
    before = snapshot(out)
    assert main(argv) == 2  # an earlier output is not replaced without --overwrite
    assert "holds an earlier output; pass --overwrite" in capsys.readouterr().err
    assert snapshot(out) == before
    assert main([*argv, "--overwrite", "--strategy", "length"]) == 0
    again = json.loads((out / "composition.json").read_text())
    assert again["strategy"] == "length" and again["settings"]["strategy"] == "length"
    by_length = datasets.load_from_disk(str(out))
    src, rank = np.array(by_length["source"]), np.array(by_length[QADS_RANK])
    size = np.array([len(a) for a in by_length["answer"]])
    for name in set(src):  # longest answer first within each source
        assert (np.diff(size[src == name][np.argsort(rank[src == name])]) <= 0).all()


def test_cli_select_overwrite_with_a_broken_preset_keeps_the_old_output(tmp_path, capsys, demo_input):
    out = tmp_path / "out"
    assert main(["select", "--preset", "demo", "--in", str(demo_input), "--out", str(out), "--device", "cpu"]) == 0
    before = snapshot(out)
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: {cot: all\n")
    capsys.readouterr()
    code = main(["select", "--preset", str(broken), "--in", str(demo_input), "--out", str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "not valid YAML" in err and str(broken) in err and "Traceback" not in err
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]  # no temporary folder left behind


def test_cli_select_refuses_an_out_that_holds_the_input(tmp_path, capsys):
    project = tmp_path / "proj"
    inp = project / "scored"
    make_dataset(["cot"], seed=2).save_to_disk(str(inp))
    before = snapshot(project)
    preset = tmp_path / "p.yaml"
    preset.write_text("init_size: 2\nsources: {cot: all}\n")
    code = main(["select", "--preset", str(preset), "--in", str(inp), "--out", str(project), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and f"--out {project} contains the input {inp}" in err
    assert snapshot(project) == before
    code = main(["select", "--preset", str(preset), "--in", str(inp), "--out", str(inp), "--overwrite"])
    assert code == 2 and f"--out {inp} is the input" in capsys.readouterr().err
    assert snapshot(project) == before


def test_cli_select_refuses_a_folder_it_did_not_write(tmp_path, capsys, demo_input):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code = main(["select", "--preset", "demo", "--in", str(demo_input), "--out", str(out), "--overwrite"])
    assert code == 2 and "did not write" in capsys.readouterr().err
    assert snapshot(out) == {"notes.txt": b"keep me"}


def test_cli_select_duplicate_source_and_capped_count(tmp_path, capsys):
    inp = tmp_path / "in"
    ds = make_dataset(["cot", "alpaca"], seed=8)
    ds.save_to_disk(str(inp))
    twice = tmp_path / "twice.yaml"
    twice.write_text("init_size: 2\nsources:\n  cot: all\n  alpaca: all\n  cot: {policy: select, count: 2}\n")
    out = tmp_path / "out"
    code = main(["select", "--preset", str(twice), "--in", str(inp), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"{twice}: key 'cot' is given twice (lines 3 and 5)" in err and "Traceback" not in err
    assert not out.exists()

    n_alpaca = ds["source"].count("alpaca")
    capped = tmp_path / "capped.yaml"
    capped.write_text(f"init_size: 2\nsources:\n  cot: all\n  alpaca: {{policy: select, count: {n_alpaca + 5}}}\n")
    assert main(["select", "--preset", str(capped), "--in", str(inp), "--out", str(out), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    message = f"source 'alpaca': count {n_alpaca + 5:,} exceeds its {n_alpaca:,} rows; all {n_alpaca:,} are kept"
    assert message in captured.err and "warning" in captured.err
    report = json.loads((out / "composition.json").read_text())
    assert report["capped"] == {"alpaca": {"requested": n_alpaca + 5, "available": n_alpaca}}
    assert message in (out / "composition.md").read_text()
    assert datasets.load_from_disk(str(out))["source"].count("alpaca") == n_alpaca


def test_ranked_pool_marks_exactly_the_kept_rows_with_their_ranks():
    preset = load_preset("demo")
    ds = make_dataset(preset.source_names, seed=5)
    mixture, report = select_mixture(ds, preset, device="cpu")
    pool = ranked_pool(ds, mixture)
    assert len(pool) == len(ds) == report.total_available and pool["id"] == ds["id"]
    kept = [row_id for row_id, k in zip(pool["id"], pool["kept"]) if k]
    assert sorted(kept) == sorted(mixture["id"]) and sum(pool["kept"]) == report.total_kept
    rank_of = dict(zip(mixture["id"], mixture[QADS_RANK]))
    assert [rank_of.get(i) for i in pool["id"]] == pool[QADS_RANK]  # null exactly where the row was not kept
    assert pool.features[QADS_RANK].dtype == "int64" and pool.features["kept"].dtype == "bool"
