"""Demo data: deterministic, native layouts that build, kinds readable from ids, correct arithmetic, measurement helpers."""

from __future__ import annotations

import ast
import contextlib
import io
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset

from openmathmix.demo import KINDS, kind_of, write_demo_data
from openmathmix.demo.generate import kind_counts, kind_shares, make_items
from openmathmix.demo.layouts import LAYOUTS
from openmathmix.demo.measure import mean_by_kind, ridge_cv_pearson, ridge_cv_predictions
from openmathmix.demo.problems import TEMPLATES, TEMPLATES_ZH
from openmathmix.errors import ConfigError, MissingColumnsError, SchemaError
from openmathmix.schema import FEATURES
from openmathmix.select.mixture import load_preset
from openmathmix.settings import PROFILES
from openmathmix.sources import build_source, get_source

DEMO_SOURCES = list(load_preset("demo").source_names)
ROWS = 12


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> dict[str, list[str]]:
    return write_demo_data(tmp_path_factory.mktemp("demo"), rows_per_source=ROWS, seed=3, test_rows=5)


@pytest.fixture(scope="module")
def built(demo_files, tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("built")
    return {name: build_source(name, paths, cache_dir=cache, progress=False) for name, paths in demo_files.items()}

DEMO = PROFILES["demo"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_rows(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_demo_data(tmp_path / name, rows_per_source=6, seed=seed, test_rows=3)
    a, b, c = (_tree(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_a_source_does_not_depend_on_the_others(tmp_path):
    alone = write_demo_data(tmp_path / "one", rows_per_source=8, sources=["gsm8k_screl"], test_source="")
    together = write_demo_data(tmp_path / "all", rows_per_source=8, test_source="")
    assert list(alone) == ["gsm8k_screl"] and list(together) == DEMO_SOURCES
    assert [Path(p).read_bytes() for p in alone["gsm8k_screl"]] == \
           [Path(p).read_bytes() for p in together["gsm8k_screl"]]


def test_every_file_builds_with_its_rows_and_kinds(demo_files, built):
    test_source = DEMO.quality.test_source
    assert set(demo_files) == set(DEMO_SOURCES) | {test_source}
    for name, (ds, report) in built.items():
        want = kind_counts(kind_shares(name), ROWS) if name != test_source else {"stepwise": 5}
        assert [Path(p).name.split(".")[0] for p in demo_files[name]] == [k for k in KINDS if want.get(k)]
        assert ds.features == FEATURES
        assert report.rows_out == len(ds) == sum(want.values()), name
        assert report.dropped == {}, name
        assert dict(Counter(kind_of(i) for i in ds["id"])) == {k: n for k, n in want.items() if n}, name
        assert set(ds["source"]) == {name} and set(ds["task"]) == {get_source(name).task}
        assert all(q and a for q, a in zip(ds["question"], ds["answer"]))
        assert len(set(ds["id"])) == len(ds)


def test_kinds_follow_the_task(built):
    for name in DEMO_SOURCES:
        ds, _ = built[name]
        kinds = Counter(kind_of(i) for i in ds["id"])
        main = kinds.most_common(1)[0][0]
        expected = {"dmath": "bare_answer", "lila_ood": "code_only"}.get(
            name, "stepwise" if get_source(name).task == "reasoning" else "unrelated")
        assert main == expected or (name == "cot" and main in ("stepwise", "unrelated")), (name, kinds)


def test_rows_look_like_their_kind(built):
    closing = {"cot": r"So the answer is -?\d+\.", "tal_scq5k_en": r"The answer is \([A-D]\)\.",
               "tal_scq5k_cn": r"The answer is \([A-D]\)\."}
    for name, (ds, _) in built.items():
        for row_id, question, answer in zip(ds["id"], ds["question"], ds["answer"]):
            kind = kind_of(row_id)
            if kind == "bare_answer":
                assert re.fullmatch(closing.get(name, r"-?\d+"), answer), (row_id, answer)
            elif kind == "code_only":
                ast.parse(answer)
                assert "print(" in answer and "answer is" not in answer, row_id
            elif kind == "stepwise":
                assert answer.count(" = ") >= 2 and "print(" not in answer, row_id
            else:
                assert "print(" not in answer and " = " not in answer, row_id
    ds, _ = built["gsm8k_screl"]
    steps = [a for i, a in zip(ds["id"], ds["answer"]) if kind_of(i) == "stepwise"]
    assert all(re.search(r"<<[^=]+=-?\d+>>", a) and re.search(r"\n#### -?\d+$", a) for a in steps)


def test_cot_tsv_has_three_fields_per_line(demo_files):
    for path in demo_files["cot"]:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        assert lines and all(len(line.split("\t")) == 3 for line in lines)


@pytest.mark.parametrize("template", TEMPLATES + TEMPLATES_ZH, ids=lambda t: t.__name__)
def test_problem_arithmetic_and_program_agree(template):
    r = random.Random(template.__name__)
    for _ in range(40):
        problem = template(r)
        for step in problem.steps:
            assert eval(step.expr) == step.value, (problem.question, step)
        assert problem.steps[-1].value == problem.final
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(problem.code, {})  # noqa: S102 - the generated program
        assert out.getvalue().strip() == str(problem.final), problem.code


def test_make_items_uses_chinese_for_tal_cn():
    zh = make_items("tal_scq5k_cn", "stepwise", 3, seed=0) + make_items("tal_scq5k_cn", "unrelated", 3, seed=0)
    assert all(re.search(r"[\u4e00-\u9fff]", it.question) for it in zh)
    en = make_items("tal_scq5k_en", "stepwise", 3, seed=0)
    assert not any(re.search(r"[\u4e00-\u9fff]", it.question) for it in en)


def test_kind_counts():
    assert kind_counts({"stepwise": 0.55, "bare_answer": 0.15, "code_only": 0.15, "unrelated": 0.15}, 30) == \
           {"stepwise": 17, "bare_answer": 5, "code_only": 4, "unrelated": 4}
    for rows in range(25):
        counts = kind_counts(kind_shares("alpaca"), rows)
        assert sum(counts.values()) == rows
    with pytest.raises(ConfigError, match="shares"):
        kind_counts({"poems": 1.0}, 3)


def test_kind_of():
    assert kind_of("gsm8k_screl/stepwise/4") == "stepwise"
    assert kind_of("self_instruct/unrelated/3.0") == "unrelated"
    assert kind_of("cot/demo.code_only/0") == "code_only"
    for bad in ("gsm8k_screl/train/4", "stepwise", ""):
        with pytest.raises(SchemaError, match="not a demo row id"):
            kind_of(bad)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ConfigError, match="rows_per_source"):
        write_demo_data(tmp_path / "unused", rows_per_source=0)
    with pytest.raises(ConfigError, match="also a mixture source"):
        write_demo_data(tmp_path / "unused", rows_per_source=1, sources=["gsm8k_screl"], test_source="gsm8k_screl")
    with pytest.raises(ConfigError, match="no demo layout"):
        write_demo_data(tmp_path / "unused", rows_per_source=1, sources=["mathinstruct_gsm8k"], test_source="")
    assert not (tmp_path / "unused").exists()  # a bad argument is refused before any file is written


def test_every_demo_source_has_a_layout():
    assert set(DEMO_SOURCES) <= set(LAYOUTS)
    assert DEMO.quality.test_source in LAYOUTS and DEMO.quality.test_source not in DEMO_SOURCES


def test_mean_by_kind():
    ds = Dataset.from_dict({
        "id": ["a/stepwise/0", "a/stepwise/1", "a/unrelated/0", "b/code_only/0", "b/stepwise/0"],
        "task": ["reasoning", "reasoning", "reasoning", "general", "general"],
        "qs": [1.0, 0.5, 0.25, 0.0, 0.5],
    })
    assert mean_by_kind(ds, "qs") == {"stepwise": (2.0 / 3, 3), "code_only": (0.0, 1), "unrelated": (0.25, 1)}
    assert list(mean_by_kind(ds, "qs")) == ["stepwise", "code_only", "unrelated"]  # KINDS order
    assert mean_by_kind(ds, "qs", task="general") == {"stepwise": (0.5, 1), "code_only": (0.0, 1)}
    with pytest.raises(MissingColumnsError, match="quality_score"):
        mean_by_kind(ds, "quality_score")


def test_ridge_matches_sklearn_and_finds_a_planted_relation():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 40)) * rng.uniform(0.5, 3.0, size=40)
    y = x[:, :5] @ rng.normal(size=5) + 0.5 * rng.normal(size=60)
    alphas = (0.1, 1.0, 10.0, 100.0)
    pred = ridge_cv_predictions(x, y, folds=5, alphas=alphas, seed=1)
    # Reference: the same folds, sklearn's RidgeCV (exact leave-one-out over the same penalties) per fold.
    fold_of = np.empty(60, dtype=int)
    fold_of[np.random.default_rng([1, 60]).permutation(60)] = np.arange(60) % 5
    want = np.empty(60)
    for f in range(5):
        tr, te = fold_of != f, fold_of == f
        mu, sd = x[tr].mean(0), x[tr].std(0)
        model = linear_model.RidgeCV(alphas=alphas).fit((x[tr] - mu) / sd, y[tr])
        want[te] = model.predict((x[te] - mu) / sd)
    np.testing.assert_allclose(pred, want, rtol=1e-6, atol=1e-8)  # float64 throughout
    assert ridge_cv_pearson(x, y, seed=1) > 0.8
    # Pure noise: no positive r (out-of-fold predictions near the training mean even correlate negatively).
    assert ridge_cv_pearson(x, rng.normal(size=60), seed=1) < 0.2
    assert np.isnan(ridge_cv_pearson(x, np.ones(60)))
    with pytest.raises(SchemaError, match="too few"):
        ridge_cv_pearson(x[:6], y[:6])


def test_quality_stage_runs_on_demo_rows(built, tiny_model_dir, tmp_path):
    import datasets

    from openmathmix.stages.base import run_stage
    from openmathmix.stages.embed import EmbedStage
    from openmathmix.stages.quality import compute_quality

    pool = datasets.concatenate_datasets([built[n][0] for n in ("gsm8k_screl", "dmath", "alpaca", "oasst1")])
    embed = EmbedStage(tiny_model_dir, dtype="float32")
    pool = run_stage(pool, embed, cache_dir=tmp_path, progress=False)
    tests = run_stage(built[DEMO.quality.test_source][0], embed, cache_dir=tmp_path, progress=False)
    scored, report = compute_quality(pool, n1=3, n2=2, test_ds=tests, split_by_task=True, model=tiny_model_dir,
                                     dtype="float32", max_test_tokens=64, max_example_tokens=64,
                                     cache_dir=str(tmp_path), progress=False, return_report=True)
    assert len(scored) == 12 and report.n2 == 2
    assert report.prompt_per_source == {"gsm8k_screl": 3, "dmath": 3, "alpaca": 3, "oasst1": 3}
    assert all(kind_of(t["id"]) == "stepwise" for t in report.test_set)
    assert all(q in (0.0, 0.5, 1.0) for q in scored["qs"])
    means = mean_by_kind(scored, "qs")
    assert sum(n for _, n in means.values()) == 12
    assert set(mean_by_kind(scored, "qs", task="general")) <= set(KINDS)
