"""One-shot quality score: the prefix-reuse fast path, Eq. 3, the Dt/Dp sampling rules, determinism and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import Dataset
from helpers import MODEL_F32_ATOL

from openmathmix.errors import MissingColumnsError, OpenMathMixError
from openmathmix.models import load_model, resolve
from openmathmix.schema import EMBEDDING, QS
from openmathmix.stages.base import run_stage
from openmathmix.stages.logprobs import AnswerLogProbs, encode_example, encode_tests, lead_ids, quality_from_scores
from openmathmix.stages.quality import ONESHOT_SCORES, OneShotStage, compute_quality
from openmathmix.stages.sampling import choose_test_set, default_test_sources, sample_prompt_set

GSM8K = "gsm8k_screl/train_use.jsonl"


def _with_embeddings(rows: dict, dim: int = 8, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    ds = Dataset.from_dict(rows)
    return ds.add_column(EMBEDDING, rng.normal(size=(len(ds), dim)).astype(np.float32).tolist())


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir):
    return load_model(resolve(tiny_model_dir), head="causal_lm", device="cpu", dtype="float32")


# ----- fast path vs the plain per-pair forward -------------------------------------------------------------------


@pytest.mark.parametrize("slice_hidden", [True, False], ids=["hidden-slice", "logits_to_keep"])
def test_prefix_reuse_equals_plain_forward(tiny_lm, qa_rows, slice_hidden):
    model, tok = tiny_lm
    scorer = AnswerLogProbs(model, pad_id=tok.pad_token_id, chunk_rows=3, chunk_tokens=64, logit_rows=7,
                            max_padding=0.9)
    assert scorer.slice_hidden  # a Llama: LM head on sliced hidden states reproduces the model's logits
    scorer.slice_hidden = slice_hidden
    tests = encode_tests(tok, qa_rows["question"][:9], qa_rows["answer"][:9])
    prepared = scorer.prepare(tests)
    assert len(prepared) > 2 and any(c.input_ids.shape[0] > 1 for c in prepared)  # several padded chunks
    lead = lead_ids(tok)
    prefixes = [lead] + [lead + encode_example(tok, q, a) for q, a in zip(qa_rows["question"][9:],
                                                                            qa_rows["answer"][9:])]
    for prefix in prefixes:
        fast = scorer.score(prefix, prepared)
        plain = np.array([scorer.plain(prefix, p, a) for p, a in tests])
        assert np.all(np.isfinite(fast))
        np.testing.assert_allclose(fast, plain, rtol=0, atol=MODEL_F32_ATOL)


def test_prepare_caps_padding_and_keeps_every_test_once(tiny_lm):
    model, _ = tiny_lm
    lengths = [40, 39, 38, 30, 29, 12, 11, 10, 10, 3]
    tests = [([1] * (n - 1), [2]) for n in lengths]
    for cap in (0.0, 0.05, 0.3):
        prepared = AnswerLogProbs(model, pad_id=0, chunk_rows=4, chunk_tokens=1000, max_padding=cap).prepare(tests)
        rows = sorted(int(r) for c in prepared for r in c.rows)
        assert rows == list(range(len(tests)))
        for c in prepared:
            padded = c.input_ids.numel()
            assert padded - int(c.valid.sum()) <= cap * padded
    # 5%: 40+39+38 pads 3 of 120; +30 would pad 13 of 160; 12+11 pads 1 of 24, +10 would pad 3 of 36; 10+10; 3
    shapes = [tuple(c.input_ids.shape) for c in AnswerLogProbs(model, pad_id=0, chunk_rows=4, chunk_tokens=1000,
                                                               max_padding=0.05).prepare(tests)]
    assert shapes == [(3, 40), (2, 30), (2, 12), (2, 10), (1, 3)]
    with pytest.raises(OpenMathMixError, match="max_padding must be in"):
        AnswerLogProbs(model, pad_id=0, max_padding=1.0)


def test_prepare_rejects_empty_answers(tiny_lm):
    model, _tok = tiny_lm
    with pytest.raises(OpenMathMixError, match="answer token"):
        AnswerLogProbs(model, pad_id=0).prepare([([1, 2], [])])


def test_quality_from_scores_counts_strict_wins():
    zero = np.array([-1.0, -2.0, -3.0, -4.0])
    oneshot = np.array([[0.0, 0.0, 0.0, 0.0], [-1.0, -2.0, -3.0, -4.0], [-0.5, -2.5, -2.0, -5.0]])
    np.testing.assert_array_equal(quality_from_scores(oneshot, zero), [1.0, 0.0, 0.5])  # ties do not count


# ----- sampling rules ----------------------------------------------------------------------------------------------


def _mixture(n_per_source: dict[str, int], task: dict[str, str]) -> Dataset:
    rows = {"id": [], "source": [], "task": [], "question": [], "answer": []}
    for s, n in n_per_source.items():
        for i in range(n):
            rows["id"].append(f"{s}/train/{i}")
            rows["source"].append(s)
            rows["task"].append(task[s])
            rows["question"].append(f"{s} question {i}?")
            rows["answer"].append(f"answer {i}")
    return _with_embeddings(rows, dim=4)


def test_prompt_sample_is_per_source_seeded_and_independent():
    ds = _mixture({"a": 50, "b": 7, "c": 30}, {"a": "reasoning", "b": "reasoning", "c": "general"})
    idx = sample_prompt_set(ds, 10, seed=3)
    sources = [ds[int(i)]["source"] for i in idx]
    assert sources.count("a") == 10 and sources.count("b") == 7 and sources.count("c") == 10
    np.testing.assert_array_equal(idx, sample_prompt_set(ds, 10, seed=3))
    assert not np.array_equal(idx, sample_prompt_set(ds, 10, seed=4))
    # a source's sample does not depend on the other sources
    only_a = sample_prompt_set(ds, 10, seed=3, sources=["a"])
    np.testing.assert_array_equal(only_a, [i for i in idx if ds[int(i)]["source"] == "a"])
    excluded = sample_prompt_set(ds, 100, seed=3, exclude_ids={"a/train/0", "c/train/5"})
    assert len(excluded) == len(ds) - 2
    with pytest.raises(OpenMathMixError, match="no rows"):
        sample_prompt_set(ds, 5, sources=["zzz"])


def test_default_test_sources():
    base = _mixture({"a": 3, "b": 3, "c": 3}, {"a": "reasoning", "b": "reasoning", "c": "general"})
    assert default_test_sources(base) == ["a", "b"]
    large = _mixture({"mathinstruct_math": 3, "c": 3}, {"mathinstruct_math": "reasoning", "c": "general"})
    assert default_test_sources(large) == ["mathinstruct_math"]


def test_test_set_by_kcenter_is_deterministic_and_skips_empty_answers():
    ds = _mixture({"a": 40}, {"a": "reasoning"})
    ds = ds.map(lambda r, i: {"answer": "" if i < 5 else r["answer"]}, with_indices=True)
    picked = choose_test_set(ds, 10, seed=1)
    assert len(set(picked.tolist())) == 10 and min(picked) >= 5
    np.testing.assert_array_equal(picked, choose_test_set(ds, 10, seed=1))
    # farthest-first: the second row is the farthest from the seeded first row
    emb = np.asarray(ds[EMBEDDING], dtype=np.float64)
    cand = np.arange(5, 40)
    dist = ((emb[cand] - emb[picked[0]]) ** 2).sum(1)
    assert picked[1] == cand[np.argmax(dist)]
    assert len(choose_test_set(ds, 10, seed=1, method="random")) == 10
    with pytest.raises(MissingColumnsError, match="embedding"):
        choose_test_set(ds.remove_columns(EMBEDDING), 10)


# ----- compute_quality: Eq. 3 from the plain scores, determinism, resume -------------------------------------------


def test_compute_quality_matches_hand_computation(tiny_model_dir, tiny_lm, qa_rows, tmp_path):
    ds = _with_embeddings(qa_rows)
    kwargs = {"n1": 3, "n2": 4, "test_sources": ["gsm8k_screl", "metamathqa"], "model": tiny_model_dir, "device": "cpu",
                  "dtype": "float32", "seed": 0, "progress": False, "return_report": True}
    scored, report = compute_quality(ds, cache_dir=str(tmp_path / "a"), **kwargs)
    test_ids = [t["id"] for t in report.test_set]
    assert len(test_ids) == 4 and set(test_ids) <= set(qa_rows["id"][:6])
    assert not set(test_ids) & set(scored["id"])  # Dt rows never serve as prompt samples
    assert len(scored) == (6 - 4) + 3  # n1 = 3 per source, from the rows left outside Dt
    assert report.pairs == len(scored) * 4 and report.pairs_computed == report.pairs
    qs = np.asarray(scored[QS])
    assert np.all((qs >= 0) & (qs <= 1))

    # by hand, with the plain per-pair forward
    model, tok = tiny_lm
    plain = AnswerLogProbs(model, pad_id=tok.pad_token_id)
    by_id = {i: (q, a) for i, q, a in zip(qa_rows["id"], qa_rows["question"], qa_rows["answer"])}
    tests = encode_tests(tok, [by_id[i][0] for i in test_ids], [by_id[i][1] for i in test_ids])
    lead = lead_ids(tok)
    zero = np.array([plain.plain(lead, p, a) for p, a in tests])
    np.testing.assert_allclose([t["zero_shot"] for t in report.test_set], zero, atol=MODEL_F32_ATOL)
    for row in scored:
        prefix = lead + encode_example(tok, row["question"], row["answer"])
        oneshot = np.array([plain.plain(prefix, p, a) for p, a in tests])
        np.testing.assert_allclose(row[ONESHOT_SCORES], oneshot, atol=MODEL_F32_ATOL)
        assert row[QS] == pytest.approx(float(np.mean(oneshot > zero)))

    # same seed, fresh cache: identical; another seed: another Dt
    again, report2 = compute_quality(ds, cache_dir=str(tmp_path / "b"), **kwargs)
    assert list(again["id"]) == list(scored["id"]) and list(again[QS]) == list(scored[QS])
    assert [t["id"] for t in report2.test_set] == test_ids
    # the cached run is reused as is
    _, report3 = compute_quality(ds, cache_dir=str(tmp_path / "a"), **kwargs)
    assert report3.pairs_computed == 0 and report3.shards_reused == report3.shards
    json.dumps(report.to_dict())  # the report is JSON-serialisable


def test_compute_quality_split_by_task_and_test_dataset(tiny_model_dir, qa_rows, tmp_path):
    ds = _with_embeddings(qa_rows)
    test_ds = ds.select(range(6))
    scored, report = compute_quality(ds, n1=2, n2=3, test_ds=test_ds, split_by_task=True, model=tiny_model_dir,
                                     device="cpu", dtype="float32", cache_dir=str(tmp_path), progress=False,
                                     return_report=True)
    assert set(report.mean_qs_per_task) == {"reasoning", "general"}
    assert not {t["id"] for t in report.test_set} & set(scored["id"])
    with pytest.raises(MissingColumnsError, match="task"):
        compute_quality(ds.remove_columns("task"), n2=3, split_by_task=True, model=tiny_model_dir)


class _Interrupted(RuntimeError):
    pass


class _FlakyOneShot(OneShotStage):
    """Same name and config as OneShotStage (so the same cache folder); dies after `fail_after` batches."""

    def __init__(self, *args, fail_after=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fail_after = fail_after
        self.calls = 0

    def process_batch(self, batch, device):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise _Interrupted("simulated crash")
        self.calls += 1
        return super().process_batch(batch, device)


def test_oneshot_stage_resumes_after_interruption(tiny_model_dir, tiny_lm, qa_rows, tmp_path):
    model, tok = tiny_lm
    tests = encode_tests(tok, qa_rows["question"][:3], qa_rows["answer"][:3])
    zero = AnswerLogProbs(model, pad_id=tok.pad_token_id).score(lead_ids(tok), AnswerLogProbs(
        model, pad_id=tok.pad_token_id).prepare(tests))
    prompts = Dataset.from_dict(qa_rows).select(range(3, 12))  # 9 prompt samples -> 5 shards of 2
    spec = resolve(tiny_model_dir)

    def stage(fail_after=None):
        return _FlakyOneShot(tests, zero.tolist(), spec, "float32", test_key="t", fail_after=fail_after)

    kwargs = {"cache_dir": str(tmp_path / "cache"), "batch_size": 2, "shard_rows": 2, "device": "cpu", "progress": False}
    crashing = stage(fail_after=2)
    with pytest.raises(_Interrupted):
        run_stage(prompts, crashing, **kwargs)
    assert crashing.calls == 2
    resumed = stage()
    out = run_stage(prompts, resumed, **kwargs)
    assert resumed.calls == 3  # only the 3 missing shards ran
    report = resumed.report
    assert report.shards_reused == 2 and report.computed["pairs"] == (9 - 4) * 3 and report.totals["pairs"] == 9 * 3
    fresh = run_stage(prompts, stage(), **{**kwargs, "cache_dir": str(tmp_path / "fresh")})
    assert list(out[QS]) == list(fresh[QS])
    np.testing.assert_allclose(list(out[ONESHOT_SCORES]), list(fresh[ONESHOT_SCORES]), atol=MODEL_F32_ATOL)


# ----- the real model ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_prefix_reuse_equals_plain_on_smollm2(realdata):
    path = realdata / GSM8K
    if not path.exists():
        pytest.skip(f"{path} is absent")
    rows = [json.loads(line) for _, line in zip(range(5), path.open())]
    model, tok = load_model(resolve(), head="causal_lm", device="cpu", dtype="float32")
    scorer = AnswerLogProbs(model, pad_id=tok.pad_token_id, chunk_rows=2)
    tests = encode_tests(tok, [r["query"] for r in rows[:3]], [r["response"] for r in rows[:3]])
    prepared = scorer.prepare(tests)
    lead = lead_ids(tok)
    for r in rows[3:5]:
        prefix = lead + encode_example(tok, r["query"], r["response"])
        fast = scorer.score(prefix, prepared)
        plain = np.array([scorer.plain(prefix, p, a) for p, a in tests])
        np.testing.assert_allclose(fast, plain, rtol=0, atol=MODEL_F32_ATOL)
