"""Quality scorer: binning, the shipped Pearson metric, the light and classifier scorers, ScoreStage, and one
end-to-end run on real GSM8K rows with SmolLM2."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from datasets import Dataset
from helpers import MODEL_F32_ATOL, assert_f32_close

from openmathmix.errors import MissingColumnsError, OpenMathMixError
from openmathmix.schema import EMBEDDING, QS, QUALITY_SCORE
from openmathmix.stages.scorer import (
    EVAL_FILE,
    PEARSON_QS_PATH,
    SCORER_FILE,
    ScoreStage,
    expected_score,
    load_scorer,
    mean_score_per_source,
    pearson_qs,
    qs_to_label,
    score_dataset,
    train_classifier_scorer,
    train_light_scorer,
)
from openmathmix.stages.scorer_fit import Candidate, prior_ridge
from openmathmix.stages.scorer_result import heldout_split

GSM8K = "gsm8k_screl/train_use.jsonl"


# ----- labels and outputs ------------------------------------------------------------------------------------------


def test_equal_width_binning_edges():
    qs = [0.0, 0.1999999, 0.2, 0.3999, 0.4, 0.5999999, 0.6, 0.7999, 0.8, 0.95, 1.0]
    np.testing.assert_array_equal(qs_to_label(qs), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5])
    # edges up to float rounding fall in the upper bin, as exact arithmetic says (3/5 = 0.6 -> label 4)
    np.testing.assert_array_equal(qs_to_label([3 / 5, 0.6000000000000001, 0.5999999999999999, 1 / 5 * 2]),
                                  [4, 4, 4, 3])
    np.testing.assert_array_equal(qs_to_label([w / 100 for w in range(101)]),
                                  [1 + min(4, (5 * w) // 100) for w in range(101)])  # integer form of the rule
    with pytest.raises(OpenMathMixError, match=r"\[0, 1\]"):
        qs_to_label([0.5, 1.2])
    with pytest.raises(OpenMathMixError):
        qs_to_label([float("nan")])


def test_expected_score_lies_in_one_to_five():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=100)
    s = expected_score(probs)
    assert np.all((s >= 1) & (s <= 5))
    assert expected_score(np.eye(5)).tolist() == [1, 2, 3, 4, 5]


def test_heldout_split_is_seeded_and_disjoint():
    train, held = heldout_split(50, 10, seed=1)
    assert len(held) == 10 and not set(train) & set(held) and len(train) + len(held) == 50
    np.testing.assert_array_equal(held, heldout_split(50, 10, seed=1)[1])
    assert not np.array_equal(held, heldout_split(50, 10, seed=2)[1])
    assert len(heldout_split(10, 0)[1]) == 0
    with pytest.raises(OpenMathMixError, match="cannot hold out"):
        heldout_split(10, 10)


# ----- the evaluate metric -------------------------------------------------------------------------------------------


def test_pearson_metric_matches_scipy_and_loads_offline(monkeypatch):
    import evaluate
    from scipy import stats

    def no_network(*args, **kwargs):
        raise AssertionError("the metric tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(PEARSON_QS_PATH)
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    got = metric.compute(predictions=x.tolist(), references=y.tolist())
    want = stats.pearsonr(x, y)
    assert got["pearsonr"] == pytest.approx(want.statistic, abs=1e-12)
    assert got["p_value"] == pytest.approx(want.pvalue, rel=1e-9)
    assert got["n"] == 40
    assert pearson_qs(x, y)["pearsonr"] == pytest.approx(want.statistic, abs=1e-12)
    assert np.isnan(pearson_qs([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])["pearsonr"])  # constant input: undefined


# ----- the light scorer --------------------------------------------------------------------------------------------


def _toy_scored(n: int = 200, dim: int = 6, seed: int = 0) -> Dataset:
    """Embeddings in 5 separated clusters; cluster c has QS in the middle of bin c + 1."""
    rng = np.random.default_rng(seed)
    cluster = rng.integers(0, 5, size=n)
    centers = rng.normal(scale=6.0, size=(5, dim))
    emb = centers[cluster] + rng.normal(scale=0.3, size=(n, dim))
    qs = (cluster + 0.5) / 5
    return Dataset.from_dict({
        "id": [f"toy/{i}" for i in range(n)], "source": [f"src{c % 2}" for c in cluster],
        "task": ["reasoning" if c % 2 else "general" for c in cluster],
        "question": [f"q{i}" for i in range(n)], "answer": [f"a{i}" for i in range(n)],
        EMBEDDING: emb.astype(np.float32).tolist(), QS: qs.tolist(),
    })


SMALL = (Candidate("ridge", "qs", 0, 0.1), Candidate("mlp", "label", 0, 1e-3))


def test_light_scorer_learns_separable_labels_deterministically(tmp_path):
    ds = _toy_scored()
    kwargs = {"candidates": SMALL, "folds": 3, "epochs": 20, "seed": 0}
    result = train_light_scorer(ds, tmp_path / "a", **kwargs)
    # 10 % of 200 rows is far from 300: r comes from nested 3-fold CV over all 200 rows, the scorer from all of them
    assert result.n == 200 and result.train_rows == 200 and result.method.startswith("nested 3-fold CV")
    assert result.r is not None and result.r > 0.95 and result.ci_low < result.r < result.ci_high
    assert [row["candidate"] for row in result.candidates] == [c.name for c in SMALL]
    prior = prior_ridge(200, len(ds[0][EMBEDDING])).name  # both candidates fit well: no clear gain over the prior
    assert result.model in {"mean of 2: " + ", ".join(c.name for c in SMALL), prior}
    assert "regression on QS" in result.why and "the mean of the 2 best of 2 candidates" in result.why
    assert "ridge prior" in result.why
    assert set(result.mean_qs_per_source) == {"src0", "src1"}
    scorer = load_scorer(tmp_path / "a")
    scores = scorer.scores({EMBEDDING: ds[EMBEDDING]})
    assert np.all((scores >= 1) & (scores <= 5))
    assert pearson_qs(scores, ds[QS])["pearsonr"] > 0.97  # the shipped scorer, refitted on every row
    info = json.loads((tmp_path / "a" / SCORER_FILE).read_text())
    assert info["kind"] == "light" and info["seed"] == 0 and info["result"]["r"] == result.r
    assert info["candidate"] == result.model and len(info["outer_fold_choices"]) == 3
    pairs = json.loads((tmp_path / "a" / EVAL_FILE).read_text())
    assert len(pairs["score"]) == len(pairs["qs"]) == 200

    again = train_light_scorer(ds, tmp_path / "b", **kwargs)
    assert again.r == result.r and again.candidates == result.candidates
    assert (tmp_path / "a" / "light_scorer.safetensors").read_bytes() == \
        (tmp_path / "b" / "light_scorer.safetensors").read_bytes()
    other = train_light_scorer(ds, tmp_path / "c", **{**kwargs, "seed": 1})  # other folds, other MLP initialisation
    assert json.loads((tmp_path / "c" / EVAL_FILE).read_text())["score"] != pairs["score"]
    assert other.r > 0.9


def test_light_scorer_needs_embeddings_and_rows(tmp_path):
    with pytest.raises(MissingColumnsError, match="embedding"):
        train_light_scorer(_toy_scored().remove_columns(EMBEDDING), tmp_path)
    with pytest.raises(OpenMathMixError, match="at least 2 scored rows .*for task 'general', got 1; raise n1"):
        train_light_scorer(_toy_scored(2, seed=3).select([0]), tmp_path, task="general")


def test_score_stage_single_and_per_task(tmp_path):
    ds = _toy_scored(120)
    train_light_scorer(ds, tmp_path / "all", candidates=[Candidate("mlp", "label", 8, 1e-3)], epochs=10, seed=0)
    train_light_scorer(ds, tmp_path / "general", candidates=[Candidate("ridge", "qs", 0, 1.0)], task="general")
    rows = ds.remove_columns(QS)
    out = score_dataset(rows, tmp_path / "all", device="cpu", cache_dir=tmp_path / "cache", batch_size=32,
                        shard_rows=50, progress=False)
    scores = np.asarray(out[QUALITY_SCORE])
    assert len(scores) == len(ds) and np.all((scores >= 1) & (scores <= 5))
    per_source = mean_score_per_source(out)
    assert set(per_source) == {"src0", "src1"} and all(1 <= v <= 5 for v in per_source.values())

    mixed = score_dataset(rows, {"general": tmp_path / "general", "*": tmp_path / "all"}, device="cpu",
                          cache_dir=tmp_path / "cache", batch_size=32, progress=False)
    general = load_scorer(tmp_path / "general").scores({EMBEDDING: rows[EMBEDDING]})
    tasks = np.asarray(rows["task"])
    # the same float32 heads over other batch compositions (32 rows here, shards of 50 above, all rows at once)
    assert_f32_close(np.asarray(mixed[QUALITY_SCORE])[tasks == "general"], general[tasks == "general"],
                     atol=MODEL_F32_ATOL)
    assert_f32_close(np.asarray(mixed[QUALITY_SCORE])[tasks != "general"], scores[tasks != "general"],
                     atol=MODEL_F32_ATOL)
    only_general = ScoreStage({"general": tmp_path / "general"})
    assert "task" in only_general.requires
    only_general.setup("cpu")
    with pytest.raises(OpenMathMixError, match="no scorer for task"):
        only_general.process_batch({"task": ["reasoning"], EMBEDDING: [[0.0] * 6]}, "cpu")
    with pytest.raises(OpenMathMixError, match="not a scorer folder"):
        ScoreStage(tmp_path / "nothing-here")


# ----- the classifier scorer (tiny random Llama) -------------------------------------------------------------------


def test_classifier_scorer_cross_validates_early_stops_saves_and_scores(tiny_model_dir, qa_rows, tmp_path):
    rows = dict(qa_rows)
    rows[QS] = [i / 11 for i in range(12)]
    ds = Dataset.from_dict(rows)
    kwargs = {"model": tiny_model_dir, "epochs": 2, "batch_size": 2, "max_length": 48, "folds": 2, "validation": 0.2,
                  "evals_per_epoch": 2, "patience": 1, "seed": 0, "device": "cpu", "progress": False}
    result = train_classifier_scorer(ds, tmp_path / "clf", **kwargs)
    # 12 rows: r from 2-fold CV (one fine-tune per fold), the saved model fine-tuned on all 12 rows
    assert result.kind == "classifier" and result.train_rows == 12 and result.n == 12
    assert result.method.startswith("2-fold CV") and result.target == "label"
    assert result.r is None or -1 <= result.r <= 1
    info = json.loads((tmp_path / "clf" / SCORER_FILE).read_text())
    assert info["kind"] == "classifier" and info["epochs"] == 2 and info["labels"] == [1, 2, 3, 4, 5]
    stops = info["early_stopping"]
    assert [s["train_rows"] + s["validation_rows"] for s in stops] == [6, 6, 12]
    assert [s["validation_rows"] for s in stops] == [1, 1, 2]
    for s in stops:  # the kept checkpoint is the one with the lowest validation loss
        assert s["validation_losses"] and s["best_validation_loss"] == min(s["validation_losses"])
        assert 1 <= s["best_step"] <= s["steps"] <= s["max_steps"]
    assert not any(p.name.startswith(".checkpoints-") for p in (tmp_path / "clf").iterdir())
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["num_labels"] == 5 if "num_labels" in config else len(config["id2label"]) == 5
    assert config["pad_token_id"] is not None

    out = score_dataset(ds.remove_columns(QS), tmp_path / "clf", device="cpu", dtype="float32",
                        cache_dir=tmp_path / "cache", progress=False)
    scores = np.asarray(out[QUALITY_SCORE])
    assert np.all((scores >= 1) & (scores <= 5))
    # seeded: a second training gives the same model (scored here in one batch, above in the stage's batches)
    train_classifier_scorer(ds, tmp_path / "clf2", **kwargs)
    again = load_scorer(tmp_path / "clf2", dtype="float32").scores(ds[:])
    assert_f32_close(again, scores, atol=MODEL_F32_ATOL)


def test_classifier_scorer_measures_r_on_a_heldout_set_when_it_reaches_300_rows(tiny_model_dir, tmp_path):
    rng = np.random.default_rng(0)
    n = 310
    ds = Dataset.from_dict({"question": [f"What is {i} + {i % 7}?" for i in range(n)],
                            "answer": [f"{i + i % 7}." for i in range(n)], "source": ["toy"] * n,
                            QS: rng.uniform(size=n).tolist()})
    result = train_classifier_scorer(ds, tmp_path / "clf", model=tiny_model_dir, epochs=1, batch_size=4,
                                     max_length=32, heldout=0.97, seed=0, device="cpu", progress=False)
    assert result.method.startswith("held-out set of 301 rows") and result.n == 301 and result.train_rows == 9
    info = json.loads((tmp_path / "clf" / SCORER_FILE).read_text())
    assert len(info["early_stopping"]) == 1 and info["early_stopping"][0]["validation_rows"] == 1
    assert len(json.loads((tmp_path / "clf" / EVAL_FILE).read_text())["score"]) == 301


# ----- end to end on real rows -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_quality_scorer_end_to_end_on_gsm8k(realdata, tmp_path):
    """SmolLM2 on real rows: embed -> QS (K-center Dt from GSM8K) -> light scorer -> score; ~1 min on 2 cores (fp32).

    Prompt samples come from GSM8K (reasoning) and from the Self-Instruct seed tasks (general): against GSM8K
    tests, same-domain examples help nearly every test (QS ~ 1) while general ones help fewer, so QS varies and
    the held-out Pearson r is defined.
    """
    from openmathmix.stages.base import run_stage
    from openmathmix.stages.embed import EmbedStage
    from openmathmix.stages.quality import compute_quality

    gsm8k, seeds = realdata / GSM8K, realdata / "self_instruct" / "seed_tasks.jsonl"
    for path in (gsm8k, seeds):
        if not path.exists():
            pytest.skip(f"{path} is absent")
    g = [json.loads(line) for _, line in zip(range(24), gsm8k.open())]
    si = [json.loads(line) for _, line in zip(range(16), seeds.open())]
    questions = [r["query"] for r in g] + [
        r["instruction"] + (f"\n{r['instances'][0]['input']}" if r["instances"][0]["input"] else "") for r in si]
    answers = [r["response"] for r in g] + [r["instances"][0]["output"] for r in si]
    sources = ["gsm8k_screl"] * len(g) + ["self_instruct"] * len(si)
    ds = Dataset.from_dict({
        "id": [f"{s}/train/{i}" for i, s in enumerate(sources)], "source": sources,
        "task": ["reasoning"] * len(g) + ["general"] * len(si), "question": questions, "answer": answers,
        "license": ["mit"] * len(g) + ["apache-2.0"] * len(si),
    })
    cache = tmp_path / "cache"
    ds = run_stage(ds, EmbedStage(), cache_dir=cache, device="cpu", progress=False)
    scored, report = compute_quality(ds, n1=8, n2=3, test_sources=["gsm8k_screl"], device="cpu", seed=0,
                                     max_example_tokens=96, max_test_tokens=128,  # cut long rows: a faster test
                                     cache_dir=str(cache), progress=False, return_report=True)
    assert len(scored) == 16 and report.pairs == 48 and len(report.test_set) == 3
    qs = np.asarray(scored[QS])
    assert np.all((qs >= 0) & (qs <= 1))
    assert all(np.isfinite(t["zero_shot"]) and t["zero_shot"] < 0 for t in report.test_set)
    assert report.mean_qs_per_source["gsm8k_screl"] > report.mean_qs_per_source["self_instruct"]

    result = train_light_scorer(scored, tmp_path / "scorer", hidden=0, folds=4, seed=0)
    assert result.n == 16 and result.method.startswith("nested 4-fold CV")
    assert result.r is not None and result.ci_low < result.r < result.ci_high
    out = score_dataset(ds, tmp_path / "scorer", device="cpu", cache_dir=cache, progress=False)
    scores = np.asarray(out[QUALITY_SCORE])
    assert len(scores) == len(ds) and np.all((scores >= 1) & (scores <= 5))
    assert set(mean_score_per_source(out)) == {"gsm8k_screl", "self_instruct"}


# ----- command line ------------------------------------------------------------------------------------------------


def test_cli_quality_scorer_train_score(tiny_model_dir, qa_rows, tmp_path, capsys):
    from datasets import load_from_disk

    from openmathmix.cli import main

    rng = np.random.default_rng(0)
    ds = Dataset.from_dict(qa_rows)
    ds = ds.add_column(EMBEDDING, rng.normal(size=(len(ds), 8)).astype(np.float32).tolist())
    ds.save_to_disk(tmp_path / "in")
    common = ["--model", tiny_model_dir, "--device", "cpu", "--dtype", "float32", "--cache-dir",
              str(tmp_path / "cache"), "--quiet"]
    assert main(["quality", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "qs"), "--n1", "3", "--n2", "3",
                 "--test-sources", "gsm8k_screl", "--split-by-task", *common]) == 0
    printed = capsys.readouterr().out
    assert "pairs" in printed and "quality: reasoning:" in printed
    report = json.loads((tmp_path / "qs" / "quality_report.json").read_text())
    assert report["n2"] == 3 and len(report["test_set"]) == 3
    general = load_from_disk(str(tmp_path / "qs" / "general"))
    assert set(general["task"]) == {"general"} and all(0 <= q <= 1 for q in general[QS])

    assert main(["scorer", "train", "--in", str(tmp_path / "qs" / "general"), "--out", str(tmp_path / "scorer"),
                 "--kind", "light", "--epochs", "5", "--hidden", "0", "--heldout", "0.0"]) == 0
    assert "held-out Pearson" in capsys.readouterr().out
    assert main(["score", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "scored"), "--scorer",
                 str(tmp_path / "scorer"), "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "score: mean" in printed and "alpaca" in printed
    scores = load_from_disk(str(tmp_path / "scored"))[QUALITY_SCORE]
    assert len(scores) == 12 and all(1 <= s <= 5 for s in scores)


def test_a_one_head_folder_from_before_committees_still_loads(tmp_path):
    """Folders written before committees hold one head without the ``member0.`` prefix and no ``members`` list."""
    from safetensors.torch import load_file, save_file

    ds = _toy_scored()
    train_light_scorer(ds, tmp_path / "s", candidates=SMALL[1:], ensemble=1, margin=None, folds=3, epochs=10,
                       progress=False)
    expect = load_scorer(tmp_path / "s").scores({EMBEDDING: ds[EMBEDDING]})
    weights = tmp_path / "s" / "light_scorer.safetensors"
    save_file({k.removeprefix("member0."): v for k, v in load_file(str(weights)).items()}, str(weights))
    info = json.loads((tmp_path / "s" / SCORER_FILE).read_text())
    head = info.pop("members")[0]
    info.update(hidden=head["hidden"], l2=head["l2"])
    (tmp_path / "s" / SCORER_FILE).write_text(json.dumps(info))
    old = load_scorer(tmp_path / "s")
    assert old.choice.name == "softmax(l2=0.001)"
    np.testing.assert_array_equal(old.scores({EMBEDDING: ds[EMBEDDING]}), expect)
