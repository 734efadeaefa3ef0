"""Template, embedding stage, projection, pre-experienced model and their CLI, with the tiny random Llama."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from datasets import Dataset, List, Value, load_from_disk
from helpers import MODEL_F32_ATOL, assert_f32_close

from openmathmix.engines.shards import run_shard, shard_bounds, shard_order
from openmathmix.errors import OpenMathMixError
from openmathmix.models import load_model, load_tokenizer, resolve
from openmathmix.schema import EMBEDDING
from openmathmix.stages.base import Stage, run_stage
from openmathmix.stages.embed import (
    EmbedStage,
    gaussian_projection,
    project_embeddings,
    right_pad,
    token_budget_batches,
)
from openmathmix.text import (
    EXAMPLE_SEPARATOR,
    encode_qa_batch,
    format_example,
    format_prompt,
    format_qa,
    qa_token_ids,
    truncate_pair,
)

FAST = {"progress": False}


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    return load_tokenizer(resolve(tiny_model_dir))


@pytest.fixture
def qa_ds(qa_rows):
    return Dataset.from_dict(qa_rows)


def reference_vectors(model_dir, questions, answers, max_len=None):
    """One row at a time through AutoModel, plain mean over the row's tokens: no padding, no batching."""
    import torch

    model, tok = load_model(resolve(model_dir), head="backbone", device="cpu", dtype="float32")
    enc = encode_qa_batch(tok, questions, answers, max_len)
    with torch.inference_mode():
        return np.stack([model(input_ids=torch.tensor([ids])).last_hidden_state[0].float().mean(0).numpy()
                         for ids in enc.input_ids()])


# ----- text.py -------------------------------------------------------------------------------------------------------


def test_template_renders_plain_text():
    assert format_prompt("What is 2 + 3?") == "Question: What is 2 + 3?\nAnswer:"
    assert format_qa("What is 2 + 3?", "5") == "Question: What is 2 + 3?\nAnswer: 5"
    assert format_example("q", "a") == "Question: q\nAnswer: a" + EXAMPLE_SEPARATOR
    assert format_example("q1", "a1") + format_qa("q2", "a2") == "Question: q1\nAnswer: a1\n\nQuestion: q2\nAnswer: a2"


def test_token_ids_split_prompt_and_answer(tok):
    prompt, answer = qa_token_ids(tok, "What is 2 + 3?", "2 + 3 = 5. The answer is 5.")
    assert tok.decode(prompt) == "Question: What is 2 + 3?\nAnswer:"
    assert tok.decode(answer) == " 2 + 3 = 5. The answer is 5."
    assert prompt + answer == tok(format_qa("What is 2 + 3?", "2 + 3 = 5. The answer is 5."))["input_ids"]
    shot_prompt, shot_answer = qa_token_ids(tok, "What is 2 + 3?", "5", prefix=format_example("1+1?", "2"))
    assert tok.decode(shot_prompt) == "Question: 1+1?\nAnswer: 2\n\nQuestion: What is 2 + 3?\nAnswer:"
    assert shot_answer == qa_token_ids(tok, "What is 2 + 3?", "5")[1]


def test_truncation_keeps_answer_half_prompt_end_and_bos():
    prompt, answer = list(range(100, 130)), list(range(200, 240))
    p, a = truncate_pair(prompt, answer, 20)
    assert len(p) + len(a) == 20 and a == answer[:10] and p == prompt[-10:]
    p, a = truncate_pair(prompt, list(range(200, 203)), 20)
    assert a == [200, 201, 202] and p == prompt[-17:]
    p, a = truncate_pair(prompt, answer, 20, keep_head=1)
    assert p == [100] + prompt[-9:] and a == answer[:10]
    p, a = truncate_pair(list(range(5)), answer, 20)
    assert p == list(range(5)) and a == answer[:15]
    assert truncate_pair([1, 2], [3], 20) == ([1, 2], [3])


def test_encode_flags_truncated_rows(tok):
    enc = encode_qa_batch(tok, ["short?", "a much longer question " * 10], ["yes", "no"], max_len=16)
    assert enc.truncated == [False, True]
    assert [len(x) for x in enc.input_ids()][1] == 16


# ----- batching ------------------------------------------------------------------------------------------------------


def test_token_budget_batches_cover_every_row_within_budget():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=200).tolist()
    groups = token_budget_batches(lengths, 1000)
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(200))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for g in groups:
        assert len(g) * lengths[g[0]] <= 1000 or len(g) == 1
    assert token_budget_batches([5000, 3], 1000) == [[0], [1]]  # over-budget rows go alone


def test_right_pad():
    ids, mask = right_pad([[1, 2, 3], [4]], 0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


# ----- EmbedStage ----------------------------------------------------------------------------------------------------


def test_budget_batches_match_one_row_at_a_time(tiny_model_dir, qa_ds, tmp_path):
    stage = EmbedStage(tiny_model_dir, dtype="float32", token_budget=64)  # several forward batches per map batch
    out = run_stage(qa_ds, stage, cache_dir=tmp_path, batch_size=7, **FAST)
    got = np.asarray(out[EMBEDDING], dtype=np.float32)
    want = reference_vectors(tiny_model_dir, qa_ds["question"], qa_ds["answer"])
    assert got.shape == (12, 64)
    assert np.abs(got - want).max() <= 1e-4
    assert stage.report.totals["forward_batches"] > 2
    assert stage.report.totals["rows"] == 12 and stage.report.totals["truncated"] == 0
    assert out.column_names == qa_ds.column_names + [EMBEDDING]
    assert out["id"] == qa_ds["id"]  # original order


def test_column_features_and_dtype(tiny_model_dir, qa_ds, tmp_path):
    stage = EmbedStage(tiny_model_dir, dtype="bfloat16")
    out = run_stage(qa_ds, stage, cache_dir=tmp_path, **FAST)
    assert out.features[EMBEDDING] == List(Value("float32"), length=64)
    got = out.with_format("numpy")[EMBEDDING][:]
    assert got.dtype == np.float32 and got.shape == (12, 64) and np.isfinite(got).all()
    want = reference_vectors(tiny_model_dir, qa_ds["question"], qa_ds["answer"])
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.99  # bf16 model, fp32 pooling
    model, _ = load_model(stage.spec, head="backbone", device="cpu", dtype="bfloat16")
    assert model.config._attn_implementation == "sdpa" and not hasattr(model, "lm_head")


def test_truncation_is_counted(tiny_model_dir, qa_ds, tok, tmp_path):
    lengths = [len(x) for x in encode_qa_batch(tok, qa_ds["question"], qa_ds["answer"]).input_ids()]
    limit = sorted(lengths)[6]
    stage = EmbedStage(tiny_model_dir, dtype="float32", max_length=limit, token_budget=100)
    out = run_stage(qa_ds, stage, cache_dir=tmp_path, **FAST)
    assert stage.report.totals["truncated"] == sum(n > limit for n in lengths) > 0
    want = reference_vectors(tiny_model_dir, qa_ds["question"], qa_ds["answer"], max_len=limit)
    assert np.abs(np.asarray(out[EMBEDDING]) - want).max() <= 1e-4
    again = EmbedStage(tiny_model_dir, dtype="float32", max_length=limit, token_budget=100)
    run_stage(qa_ds, again, cache_dir=tmp_path, **FAST)  # reused: the count comes from the saved counters
    assert again.report.shards_computed == 0 and again.report.totals["truncated"] == stage.report.totals["truncated"]


def test_config_holds_what_changes_the_output(tiny_model_dir):
    config = EmbedStage(tiny_model_dir, dtype="bfloat16", max_length=128, project_dim=8).config()
    assert config["model"] == tiny_model_dir and config["local_id"]
    assert (config["dtype"], config["max_length"], config["template"]) == ("bfloat16", 128, 1)
    assert config["projection"] == {"method": "gaussian", "dim": 8, "seed": 0}
    assert "token_budget" not in config  # batching does not change the vectors


# ----- whole-shard ordering (engines.shards) -------------------------------------------------------------------------


class Tagger(Stage):
    """y = "<x>!" per row; records the batches it sees; `sort_key` is the length of x (when given)."""

    name = "tagger"
    requires = ("x",)
    produces = ("y",)

    def __init__(self, sort=True, bad=None):
        self.seen, self.bad = [], bad
        if sort:
            self.sort_key = lambda batch: [len(x) for x in batch["x"]]

    def process_batch(self, batch, device):
        self.seen.append(list(batch["x"]))
        if self.bad == "columns":
            return {"z": batch["x"]}
        if self.bad == "rows":
            return {"y": batch["x"][1:]}
        return {"y": [f"{x}!" for x in batch["x"]]}


def test_shard_bounds_cut_like_dataset_shard():
    ds = Dataset.from_dict({"i": list(range(23))})
    for shard_rows in (1, 5, 8, 23, 40):
        bounds = shard_bounds(len(ds), shard_rows)
        assert len(bounds) == -(-23 // shard_rows)
        assert [ds.shard(len(bounds), i, contiguous=True)["i"] for i in range(len(bounds))] == [
            list(range(a, b)) for a, b in bounds]
    assert shard_bounds(0, 8) == [(0, 0)]


def test_run_shard_feeds_longest_first_and_restores_the_order():
    xs = ["bb", "a", "dddd", "cc", "eee", "a"]
    stage = Tagger()
    out = run_shard(stage, {"x": xs}, batch_size=4, device="cpu")
    assert out == {"y": [f"{x}!" for x in xs]}
    assert stage.seen == [["dddd", "eee", "bb", "cc"], ["a", "a"]]  # descending key, ties in input order
    assert shard_order(stage, {"x": xs}).tolist() == [2, 4, 0, 3, 1, 5]
    plain = Tagger(sort=False)
    assert run_shard(plain, {"x": xs}, batch_size=4, device="cpu") == out
    assert plain.seen == [xs[:4], xs[4:]] and shard_order(plain, {"x": xs}) is None


def test_run_shard_checks_what_the_stage_returns():
    with pytest.raises(OpenMathMixError, match=r"returned columns \['z'\], but declares produces=\['y'\]"):
        run_shard(Tagger(bad="columns"), {"x": ["a", "b"]}, batch_size=2, device="cpu")
    with pytest.raises(OpenMathMixError, match=r"returned \{'y': 1\} values for a batch of 2 rows"):
        run_shard(Tagger(bad="rows"), {"x": ["a", "b"]}, batch_size=2, device="cpu")
    bad_key = Tagger()
    bad_key.sort_key = lambda batch: [1]
    with pytest.raises(OpenMathMixError, match="sort_key returned 1 keys for 2 rows"):
        run_shard(bad_key, {"x": ["a", "b"]}, batch_size=2, device="cpu")


def test_embed_sort_key_orders_a_shard_and_pads_less(tiny_model_dir, qa_ds, tok, monkeypatch):
    import openmathmix.stages.embed as embed_module

    columns = {"question": qa_ds["question"], "answer": qa_ds["answer"]}
    lengths = [len(x) for x in encode_qa_batch(tok, columns["question"], columns["answer"]).input_ids()]
    unset = EmbedStage(tiny_model_dir, dtype="float32", token_budget=4096)
    assert unset.sort_key(columns) == lengths  # before setup: tokenizer only

    per_batch = EmbedStage(tiny_model_dir, dtype="float32", token_budget=4096)
    per_batch.setup("cpu")
    want = np.concatenate([per_batch.process_batch({k: v[a:a + 4] for k, v in columns.items()}, "cpu")[EMBEDDING]
                           for a in range(0, 12, 4)])
    sorted_stage = EmbedStage(tiny_model_dir, dtype="float32", token_budget=4096)
    sorted_stage.setup("cpu")
    calls = []
    real_encode = embed_module.encode_qa_batch
    monkeypatch.setattr(embed_module, "encode_qa_batch", lambda *a, **k: calls.append(1) or real_encode(*a, **k))
    got = run_shard(sorted_stage, columns, batch_size=4, device="cpu")[EMBEDDING]
    assert len(calls) == 1  # sort_key tokenised the shard once; process_batch reused those ids
    assert_f32_close(np.stack(got), want, atol=MODEL_F32_ATOL)
    before, after = per_batch.take_counts(), sorted_stage.take_counts()
    assert before["tokens"] == after["tokens"] == sum(lengths) and before["rows"] == after["rows"] == 12
    assert after["padded_tokens"] < before["padded_tokens"]  # one forward per map batch: 4 x its longest row


# ----- projection ----------------------------------------------------------------------------------------------------


def test_projection_in_stage_and_after(tiny_model_dir, qa_ds, tmp_path):
    full = run_stage(qa_ds, EmbedStage(tiny_model_dir, dtype="float32"), cache_dir=tmp_path, **FAST)
    small = run_stage(qa_ds, EmbedStage(tiny_model_dir, dtype="float32", project_dim=16, project_seed=3),
                      cache_dir=tmp_path, **FAST)
    x = np.asarray(full[EMBEDDING], dtype=np.float32)
    assert small.features[EMBEDDING] == List(Value("float32"), length=16)
    np.testing.assert_allclose(np.asarray(small[EMBEDDING]), x @ gaussian_projection(64, 16, 3), atol=1e-4)
    np.testing.assert_array_equal(gaussian_projection(64, 16, 3), gaussian_projection(64, 16, 3))
    assert not np.array_equal(gaussian_projection(64, 16, 3), gaussian_projection(64, 16, 4))

    after = project_embeddings(full, 16, seed=3)
    np.testing.assert_allclose(np.asarray(after[EMBEDDING]), np.asarray(small[EMBEDDING]), atol=1e-4)
    pca1 = project_embeddings(full, 4, seed=0, method="pca", sample_rows=10)
    pca2 = project_embeddings(full, 4, seed=0, method="pca", sample_rows=10)
    p1 = np.asarray(pca1[EMBEDDING])
    assert p1.shape == (12, 4) and pca1.features[EMBEDDING] == List(Value("float32"), length=4)
    np.testing.assert_array_equal(p1, np.asarray(pca2[EMBEDDING]))
    assert pca1.column_names == full.column_names


# ----- pre-experienced model -----------------------------------------------------------------------------------------


def _weights(folder):
    from safetensors.numpy import load_file

    return load_file(f"{folder}/model.safetensors")


def test_preexperience_is_deterministic_and_feeds_embed(tiny_model_dir, qa_ds, tmp_path):
    from openmathmix.stages.preexperience import PreexperienceSettings, preexperience

    settings = PreexperienceSettings(rows=8, steps=3, batch_size=4, learning_rate=1e-3, seed=0)
    a = preexperience(qa_ds, tmp_path / "a", model=tiny_model_dir, settings=settings, device="cpu", progress=False)
    b = preexperience(qa_ds, tmp_path / "b", model=tiny_model_dir, settings=settings, device="cpu", progress=False)
    c = preexperience(qa_ds, tmp_path / "c", model=tiny_model_dir, settings=dataclasses.replace(settings, seed=1),
                      device="cpu", progress=False)
    base, wa, wb, wc = _weights(tiny_model_dir), _weights(a), _weights(b), _weights(c)
    name = "model.layers.0.mlp.down_proj.weight"
    assert not np.array_equal(base[name], wa[name])
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not np.array_equal(wa[name], wc[name])
    record = json.loads((tmp_path / "a" / "preexperience.json").read_text())
    assert record["train_rows"] == 8 and record["settings"]["steps"] == 3

    before = run_stage(qa_ds, EmbedStage(tiny_model_dir, dtype="float32"), cache_dir=tmp_path / "cache", **FAST)
    after = run_stage(qa_ds, EmbedStage(a, dtype="float32"), cache_dir=tmp_path / "cache", **FAST)
    assert not np.allclose(np.asarray(before[EMBEDDING]), np.asarray(after[EMBEDDING]))

    # rewriting the folder in place is a new model for the cache: no stale embeddings
    old_key = EmbedStage(a).config()["local_id"]
    preexperience(qa_ds, a, model=tiny_model_dir, settings=dataclasses.replace(settings, steps=4), device="cpu",
                  progress=False)
    assert EmbedStage(a).config()["local_id"] != old_key


def test_preexperience_refuses_a_foreign_folder(tiny_model_dir, qa_ds, tmp_path):
    from openmathmix.stages.preexperience import preexperience

    (tmp_path / "keep.txt").write_text("not a model")
    with pytest.raises(OpenMathMixError, match="holds files that openmathmix did not write"):
        preexperience(qa_ds, tmp_path, model=tiny_model_dir, progress=False)


# ----- command line --------------------------------------------------------------------------------------------------


def test_cli_embed_and_preexperience(tiny_model_dir, qa_ds, tmp_path, capsys):
    from openmathmix.cli import main

    qa_ds.save_to_disk(tmp_path / "in")
    common = ["--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(["embed", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--model", tiny_model_dir,
                 "--dtype", "float32", "--max-length", "20", "--project-dim", "8", *common]) == 0
    text = capsys.readouterr().out
    assert "truncated" in text and "tokens/s" in text and "wrote 12 rows with 8-d embeddings" in text
    out = load_from_disk(str(tmp_path / "out"))
    assert np.asarray(out[EMBEDDING]).shape == (12, 8)

    assert main(["embed", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "w"), "--model", tiny_model_dir,
                 "--dtype", "float32", "--shard-rows", "5", "--worker", "0/2", *common]) == 0
    assert "still missing" in capsys.readouterr().out and not (tmp_path / "w").exists()

    assert main(["preexperience", "--in", str(tmp_path / "in"), "--out", str(tmp_path / "pre"), "--model",
                 tiny_model_dir, "--rows", "6", "--steps", "2", "--batch-size", "3", "--device", "cpu",
                 "--quiet"]) == 0
    assert "embed --model" in capsys.readouterr().out
    assert (tmp_path / "pre" / "preexperience.json").exists()

    assert main(["embed", "--in", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "--in" in capsys.readouterr().err


# ----- the real model ------------------------------------------------------------------------------------------------


@pytest.fixture
def one_thread():
    """One torch thread: on a CPU shared with other jobs, oversubscribed OpenMP threads crawl."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_real_smollm2_on_gsm8k_rows(realdata, tmp_path, one_thread):
    rows = [json.loads(line) for line in (realdata / "gsm8k_screl" / "train_use.jsonl").open()][:8]
    ds = Dataset.from_dict({"question": [r["query"] for r in rows], "answer": [r["response"] for r in rows]})
    stage = EmbedStage(dtype="auto", max_length=64)  # the embedded default; a short limit to count cuts
    out = run_stage(ds, stage, cache_dir=tmp_path, **FAST)
    got = np.asarray(out[EMBEDDING], dtype=np.float32)
    assert got.shape == (8, 576) and np.isfinite(got).all()
    assert 0 < stage.report.totals["truncated"] <= 8
    tok = load_tokenizer(stage.spec)
    lengths = [len(x) for x in encode_qa_batch(tok, ds["question"], ds["answer"]).input_ids()]
    assert stage.report.totals["truncated"] == sum(n > 64 for n in lengths)
    want = reference_vectors(stage.spec.name, ds["question"], ds["answer"], max_len=64)  # fp32, one row at a time
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.995
