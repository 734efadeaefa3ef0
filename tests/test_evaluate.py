"""`openmathmix evaluate`: exact metrics against naive references, equal-size subsets, and a whole CPU run with a tiny
random-weight proxy model (two training steps per subset, benchmark items scored, accuracy path included)."""

from __future__ import annotations

import dataclasses
import json
import math

import datasets
import numpy as np
import pytest
from helpers import F32_ATOL, F32_RTOL

from openmathmix.cli import main
from openmathmix.errors import MissingColumnsError, SelectionError
from openmathmix.evaluate import (
    evaluate,
    evaluation_markdown,
    load_benchmark,
    load_pool,
    pick_subset,
    pool_from_dataset,
    write_figure,
)
from openmathmix.evaluate.metrics import coverage, mean_and_spread, near_duplicates
from openmathmix.select.ratios import prefix_count
from openmathmix.select.strategies import STRATEGIES
from openmathmix.settings import EvaluateSettings

# ---------------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------------


def test_coverage_matches_the_full_distance_matrix_in_any_blocking():
    rng = np.random.default_rng(0)
    pool = rng.standard_normal((300, 12)).astype(np.float32) * 3
    chosen = rng.choice(300, 17, replace=False)
    dist = np.sqrt(((pool[:, None, :].astype(np.float64) - pool[chosen][None]) ** 2).sum(-1)).min(axis=1)
    for block in (1 << 22, 50, 1):  # one block, many small blocks, one entry per block
        got = coverage(pool, chosen, block=block)
        assert math.isclose(got["covering_radius"], dist.max(), rel_tol=F32_RTOL, abs_tol=F32_ATOL)
        assert math.isclose(got["mean_distance"], dist.mean(), rel_tol=F32_RTOL, abs_tol=F32_ATOL)
    assert coverage(pool, np.arange(300))["covering_radius"] == 0.0
    with pytest.raises(SelectionError, match="empty"):
        coverage(pool, [])


def test_near_duplicates_match_a_pair_loop():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((40, 6)).astype(np.float32)
    emb[5] = emb[3] * 2.0  # same direction: cosine 1
    emb[9] = emb[3] + 1e-3
    emb[20] = -emb[21]  # cosine -1: not a duplicate
    emb[30] = 0.0  # a zero vector has cosine 0 with every row
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-30)
    pairs = [(i, j) for i in range(40) for j in range(i + 1, 40) if unit[i] @ unit[j] > 0.95]
    rows = {i for pair in pairs for i in pair}
    for block in (1 << 22, 7):
        got = near_duplicates(emb, threshold=0.95, block=block)
        assert got["pairs"] == len(pairs) >= 3
        assert got["pair_share"] == pytest.approx(len(pairs) / (40 * 39 / 2))
        assert got["row_share"] == pytest.approx(len(rows) / 40)


def test_mean_and_spread():
    assert mean_and_spread([1.0, 3.0]) == {"mean": 2.0, "sd": pytest.approx(math.sqrt(2)), "min": 1.0, "max": 3.0,
                                           "n": 2}
    assert mean_and_spread([None, 4.0])["sd"] is None and mean_and_spread([])["mean"] is None


# ---------------------------------------------------------------------------------------------------------------------
# Pool, subsets, benchmarks
# ---------------------------------------------------------------------------------------------------------------------


def make_pool(seed: int = 0) -> datasets.Dataset:
    """Three sources of synthetic rows (no real data): arithmetic with worked or bare answers, and chit-chat."""
    rng = np.random.default_rng(seed)
    rows = {"id": [], "source": [], "task": [], "question": [], "answer": [], "license": [], "embedding": [],
            "quality_score": []}
    for name, n, center in (("gsm8k_screl", 30, 0.0), ("dmath", 20, 4.0), ("alpaca", 15, -4.0)):
        for i in range(n):
            a, b = int(rng.integers(2, 50)), int(rng.integers(2, 50))
            worked = i % 3 != 0
            rows["id"].append(f"{name}/train/{i}")
            rows["source"].append(name)
            rows["task"].append("general" if name == "alpaca" else "reasoning")
            rows["question"].append(f"What is {a} plus {b}?" if name != "alpaca" else f"Say hello {i} times.")
            rows["answer"].append(f"{a} + {b} = {a + b}. The answer is {a + b}." if worked else f"{a + b}")
            rows["license"].append("mit")
            rows["embedding"].append((center + rng.standard_normal(8)).astype(np.float32).tolist())
            rows["quality_score"].append(float(rng.uniform(1, 5)))
    return datasets.Dataset.from_dict(rows)


def test_subsets_have_equal_size_for_every_strategy():
    pool = pool_from_dataset(make_pool())
    settings = EvaluateSettings(budget=0.2, init_size=3)
    sizes = {name: prefix_count(n, 0.2) for name, n in pool.counts().items()}
    for strategy in STRATEGIES:
        rows = pick_subset(pool, strategy, 0, settings)
        assert len(set(rows.tolist())) == len(rows) == sum(sizes.values())
        assert {s: int((pool.source[rows] == s).sum()) for s in sizes} == sizes
    score = pick_subset(pool, "score", 0, dataclasses.replace(settings, scope="pool"))
    assert len(score) == prefix_count(len(pool), 0.2)
    assert set(score.tolist()) == set(np.argsort(-pool.quality, kind="stable")[: len(score)].tolist())


def test_pool_needs_its_columns():
    with pytest.raises(MissingColumnsError, match=r"needs column\(s\) \['embedding'\]"):
        pool_from_dataset(make_pool().remove_columns("embedding"), "my-pool")


def test_pool_from_a_release_with_embeddings(tmp_path):
    from openmathmix.release import write_release
    from openmathmix.select.mixture import parse_preset, select_mixture

    preset = parse_preset({"sources": {"gsm8k_screl": "all", "dmath": "all", "alpaca": "all"}, "init_size": 2})
    mixture, report = select_mixture(make_pool(), preset, device="cpu")
    write_release(mixture, tmp_path / "rel", composition=report, keep_embedding=True)
    pool = load_pool(tmp_path / "rel")
    assert len(pool) == len(mixture) and pool.counts() == {"gsm8k_screl": 30, "dmath": 20, "alpaca": 15}
    np.testing.assert_array_equal(pool.embeddings, np.array(mixture["embedding"], dtype=np.float32))
    write_release(mixture, tmp_path / "bare", composition=report)
    with pytest.raises(MissingColumnsError, match="rebuild it with --keep-embedding"):
        load_pool(tmp_path / "bare")


def test_benchmark_files_in_gsm8k_and_math_layouts(tmp_path):
    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text(json.dumps({"query": "What is 2 + 2?", "response": "2 + 2 = 4\n#### 4"}) + "\n"
                   + json.dumps({"query": "What is 3 + 4?", "response": "3 + 4 = 7\n#### 7"}) + "\n")
    bench = load_benchmark(str(gsm), limit=1)
    assert (bench.name, bench.questions, bench.solutions, bench.finals) == (
        "gsm", ("What is 2 + 2?",), ("2 + 2 = 4\n#### 4",), ("2 + 2 = 4\n#### 4",))
    math_file = tmp_path / "math.jsonl"
    math_file.write_text(json.dumps({"problem": "Find $x$ if $x+1=3$.", "solution": "So $x=\\boxed{2}$.",
                                     "answer": "2"}) + "\n")
    bench = load_benchmark(str(math_file))
    assert bench.solutions == ("So $x=\\boxed{2}$.",) and bench.finals == ("2",)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x"}) + "\n")
    with pytest.raises(MissingColumnsError, match="needs a question column"):
        load_benchmark(str(bad))
    with pytest.raises(SelectionError, match="does not exist"):
        load_benchmark(str(tmp_path / "missing.jsonl"))


def test_settings_are_checked():
    pool = pool_from_dataset(make_pool())
    with pytest.raises(SelectionError, match="at least two distinct seeds"):
        evaluate(pool, settings=EvaluateSettings(seeds=(0,)), cache_dir="", progress=False)
    with pytest.raises(SelectionError, match=r"budget must lie in \(0, 1\]"):
        evaluate(pool, settings=EvaluateSettings(budget=1.5), cache_dir="", progress=False)
    with pytest.raises(SelectionError, match="needs at least one benchmark"):
        evaluate(pool, train=True, cache_dir="", progress=False)


# ---------------------------------------------------------------------------------------------------------------------
# The whole evaluation on a CPU with a tiny random-weight model
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "arith_test.jsonl"
    items = [("What is 5 plus 7?", "5 + 7 = 12\n#### 12"), ("What is 9 plus 3?", "9 + 3 = 12\n#### 12"),
             ("What is 20 plus 1?", "20 + 1 = 21\n#### 21"), ("What is 6 plus 6?", "6 + 6 = 12\n#### 12")]
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in items))
    return path


def test_evaluate_end_to_end_with_training(tiny_model_dir, bench_file, tmp_path):
    pool = pool_from_dataset(make_pool(), "pool")
    strategies = ("qads", "random")  # all five run in the CLI test below (without training)
    settings = EvaluateSettings(budget=0.2, init_size=3, model=tiny_model_dir, max_steps=2, batch_size=4,
                                learning_rate=1e-3, max_length=64, accuracy="on", max_new_tokens=4,
                                dtype="float32", strategies=strategies)
    bench = load_benchmark(str(bench_file))
    result = evaluate(pool, settings=settings, benchmarks=[bench], train=True, device="cpu",
                      cache_dir=tmp_path / "cache", progress=False)
    runs = result["runs"]
    assert sorted((r["strategy"], r["seed"]) for r in runs) == sorted((s, k) for s in strategies for k in (0, 1))
    base = result["base_model"]["benchmarks"]["arith_test"]["loglik"]
    assert math.isfinite(base) and base < 0
    for r in runs:
        assert r["rows"] == result["subset_rows"] == 6 + 4 + 3
        assert r["train"]["steps"] == 2 and math.isfinite(r["train"]["train_loss"])
        scores = r["benchmarks"]["arith_test"]
        assert math.isfinite(scores["loglik"]) and scores["loglik"] < 0 and scores["loglik"] != base
        assert scores["loglik_items"] == 4 and scores["loglik_items_truncated"] == 0
        assert scores["checked"] == 4 and 0 <= scores["accuracy"] <= 1 and r["train"]["rows_truncated"] == 0
        assert r["covering_radius"] > 0 and sum(r["composition"].values()) == r["rows"]
    # seeds change the random subset and the training: the two random runs differ
    rand = [r for r in runs if r["strategy"] == "random"]
    assert rand[0]["subset_sha256"] != rand[1]["subset_sha256"]
    summary = {row["strategy"]: row for row in result["summary"]}
    assert set(summary) == set(strategies)
    for row in summary.values():
        stat = row["loglik:arith_test"]
        assert stat["n"] == 2 and stat["sd"] is not None and math.isfinite(stat["mean"])
    verdict = result["verdict"]["arith_test"]
    assert verdict["best"] == max(summary, key=lambda s: summary[s]["loglik:arith_test"]["mean"])
    json.dumps(result)  # plain data

    markdown = evaluation_markdown(result)
    assert "| `qads` |" in markdown and "log-lik arith_test" in markdown and "Base model" in markdown
    assert write_figure(result, tmp_path / "e.png").stat().st_size > 1000

    from openmathmix.evaluate.proxy import loglik
    from openmathmix.models import load_model, resolve

    model, tokenizer = load_model(resolve(tiny_model_dir), head="causal_lm", device="cpu", dtype="float32")
    values, truncated = loglik(model, tokenizer, bench, settings=settings, device="cpu")
    assert truncated == 0 and values.mean() == pytest.approx(base, rel=F32_RTOL)
    _, truncated = loglik(model, tokenizer, bench, settings=dataclasses.replace(settings, max_eval_tokens=8),
                          device="cpu")
    assert truncated == 4  # every item is longer than 8 tokens: each one is counted

    again = evaluate(pool, settings=settings, benchmarks=[bench], train=True, device="cpu",
                     cache_dir=tmp_path / "cache", progress=False)
    assert again["runs_reused"] == len(runs) + 1 and again["runs"] == runs  # resumable: finished runs are kept


def test_cli_evaluate_without_training(tmp_path, capsys):
    make_pool().save_to_disk(str(tmp_path / "scored"))
    out = tmp_path / "eval"
    argv = ["evaluate", "--in", str(tmp_path / "scored"), "--out", str(out), "--budget", "0.2", "--init-size", "3",
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| `kcenter` |" in printed and "evaluation.json" in printed
    result = json.loads((out / "evaluation.json").read_text())
    assert result["trained"] is False and len(result["runs"]) == 10 and result["pool"]["origin"] == "scored"
    assert (out / "evaluation.md").read_text().startswith("# Selection report")
    assert (out / "evaluation.png").stat().st_size > 1000
    assert main(argv) == 2 and "pass --overwrite" in capsys.readouterr().err
    code = main([*argv[:-2], "--overwrite", "--seeds", "3", "--device", "cpu"])
    assert code == 2 and "at least two distinct seeds" in capsys.readouterr().err
    assert json.loads((out / "evaluation.json").read_text()) == result  # a failed run leaves the old output
