"""The Ray engine on a local 2-CPU Ray cluster: embedding, one-shot quality and scoring outputs equal the local
engine's on the same rows, and a run that crashed (or lost a shard file) recomputes only what is missing.

Floats went through a model in float32 under other batch compositions (the Ray engine feeds a shard longest first),
so they are compared at `MODEL_F32_ATOL` (tests/helpers.py); everything else is compared with equality.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from datasets import Dataset
from helpers import MODEL_F32_ATOL, assert_f32_close

pytest.importorskip("ray.data")

import ray
import ray.cloudpickle

from openmathmix.engines.ray import init_ray, run_stage_ray
from openmathmix.errors import OpenMathMixError
from openmathmix.models import load_tokenizer, resolve
from openmathmix.schema import EMBEDDING, QS, QUALITY_SCORE
from openmathmix.stages.base import run_stage
from openmathmix.stages.embed import EmbedStage
from openmathmix.stages.quality import ONESHOT_SCORES, ZERO_SHOT, OneShotStage, ZeroShotStage, encode_tests
from openmathmix.stages.scorer import ScoreStage, train_scorer

# The crashing stage below is defined here; actors cannot import a test module, so it travels by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

SHARDS = {"shard_rows": 5, "batch_size": 3, "progress": False}  # 12 rows -> 3 shards of 4, 2 batches each


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster for the session: 2 CPUs, a 96 MiB object store, no dashboard."""
    if ray.is_initialized():
        ray.shutdown()
    init_ray(num_cpus=2, object_store_memory=96 * 2**20)
    yield
    ray.shutdown()


@pytest.fixture
def qa_ds(qa_rows):
    return Dataset.from_dict(qa_rows)


@pytest.fixture
def local_embedded(tiny_model_dir, qa_ds, tmp_path):
    return run_stage(qa_ds, EmbedStage(tiny_model_dir, dtype="float32", token_budget=64), cache_dir=tmp_path,
                     device="cpu", **SHARDS)


def assert_same_rows(ray_out: Dataset, local_out: Dataset, floats: tuple[str, ...]) -> None:
    """Same columns, features and rows in the same order; `floats` columns equal up to float32 model rounding."""
    assert ray_out.column_names == local_out.column_names
    assert ray_out.features == local_out.features
    for column in ray_out.column_names:
        if column in floats:
            assert_f32_close(np.asarray(ray_out[column]), np.asarray(local_out[column]), atol=MODEL_F32_ATOL)
        else:
            assert ray_out[column] == local_out[column], column


def test_embedding_on_ray_equals_local(ray_cluster, tiny_model_dir, qa_ds, local_embedded, tmp_path):
    stage = EmbedStage(tiny_model_dir, dtype="float32", token_budget=64)
    out = run_stage_ray(qa_ds, stage, tmp_path / "ray", **SHARDS)
    assert_same_rows(out, local_embedded, floats=(EMBEDDING,))
    report = stage.report
    assert (report.shards, report.shards_computed, report.shards_reused, report.actors) == (3, 3, 0, 1)
    assert report.totals["rows"] == 12 and report.totals["tokens"] > 0
    assert report.computed == report.totals
    assert sorted(p.name for p in (tmp_path / "ray").glob("*.parquet")) == [
        f"shard-{i:05d}-of-00003.parquet" for i in range(3)]
    assert not list((tmp_path / "ray").glob("*.work-*"))  # the shards' inputs and temporary files are gone


def test_quality_on_ray_equals_local(ray_cluster, tiny_model_dir, qa_ds, tmp_path):
    spec = resolve(tiny_model_dir)
    tok = load_tokenizer(spec)
    test_rows, prompt_rows = qa_ds.select(range(4)), qa_ds.select(range(4, 12))
    zero_out = run_stage(test_rows, ZeroShotStage(spec, "float32"), cache_dir=tmp_path, device="cpu",
                         progress=False)
    zero = zero_out[ZERO_SHOT]
    tests = encode_tests(tok, test_rows["question"], test_rows["answer"], 64)

    def one_shot():
        return OneShotStage(tests, zero, spec, "float32", test_key="four-tests")

    local = run_stage(prompt_rows, one_shot(), cache_dir=tmp_path, device="cpu", shard_rows=3, batch_size=2,
                      progress=False)
    out = run_stage_ray(prompt_rows, one_shot(), tmp_path / "ray", shard_rows=3, batch_size=2, progress=False)
    # QS counts the tests where one-shot > zero-shot: no comparison flips while the engines differ by less than the
    # closest score's distance to its zero-shot score, so QS is compared with equality (in assert_same_rows)
    scores = np.asarray(local[ONESHOT_SCORES])
    margin = np.abs(scores - np.asarray(zero)[None, :]).min()
    assert np.abs(np.asarray(out[ONESHOT_SCORES]) - scores).max() < margin
    assert_same_rows(out, local, floats=(ONESHOT_SCORES,))
    assert len(set(out[QS])) > 1  # a real quality output, not a constant


def test_scoring_on_ray_equals_local(ray_cluster, local_embedded, tmp_path):
    labelled = local_embedded.add_column(QS, np.linspace(0, 1, len(local_embedded)).tolist())
    train_scorer(labelled, tmp_path / "scorer", kind="light", hidden=8, epochs=3, heldout=0.25)
    local = run_stage(local_embedded, ScoreStage(tmp_path / "scorer"), cache_dir=tmp_path, device="cpu", **SHARDS)
    out = run_stage_ray(local_embedded, ScoreStage(tmp_path / "scorer"), tmp_path / "ray", **SHARDS)
    assert_same_rows(out, local, floats=(EMBEDDING, QUALITY_SCORE))
    assert len(set(out[QUALITY_SCORE])) > 1  # a real scorer output, not a constant


class Crash(RuntimeError):
    pass


class CrashingEmbed(EmbedStage):
    """EmbedStage that raises in its `fail_after + 1`-th batch (counted per actor): a job killed mid-way."""

    def __init__(self, *args, fail_after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fail_after, self.batches = fail_after, 0

    def process_batch(self, batch, device):
        self.batches += 1
        if self.batches > self.fail_after:
            raise Crash(f"simulated crash in batch {self.batches}")
        return super().process_batch(batch, device)


def test_crashed_run_resumes_with_only_the_missing_shards(ray_cluster, tiny_model_dir, qa_ds, local_embedded,
                                                         tmp_path):
    folder = tmp_path / "ray"
    crashing = CrashingEmbed(tiny_model_dir, dtype="float32", token_budget=64, fail_after=3)
    with pytest.raises(OpenMathMixError, match=r"simulated crash in batch 4.*1 of 3 shards are finished") as err:
        run_stage_ray(qa_ds, crashing, folder, **SHARDS)  # one actor: a first shard (2 batches), the next fails
    assert "Crash" in str(err.value)
    finished = list(folder.glob("*.parquet"))  # which shard the actor took first is Ray Data's choice
    assert len(finished) == 1 and finished[0].name in {f"shard-{i:05d}-of-00003.parquet" for i in range(3)}
    first = finished[0]
    kept = first.stat().st_mtime_ns

    stage = EmbedStage(tiny_model_dir, dtype="float32", token_budget=64)
    out = run_stage_ray(qa_ds, stage, folder, **SHARDS)
    assert (stage.report.shards_computed, stage.report.shards_reused) == (2, 1)
    assert first.stat().st_mtime_ns == kept  # the finished shard was not recomputed
    assert_same_rows(out, local_embedded, floats=(EMBEDDING,))
    assert stage.report.totals["rows"] == 12 and stage.report.computed["rows"] == 8

    damaged = folder / "shard-00002-of-00003.parquet"
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the file no longer matches its seal
    damaged.write_bytes(bytes(data))
    again = EmbedStage(tiny_model_dir, dtype="float32", token_budget=64)
    out = run_stage_ray(qa_ds, again, folder, **SHARDS)
    assert (again.report.shards_computed, again.report.shards_reused) == (1, 2)
    assert again.report.computed["rows"] == 4
    assert_same_rows(out, local_embedded, floats=(EMBEDDING,))

    done = EmbedStage(tiny_model_dir, dtype="float32", token_budget=64)
    out = run_stage_ray(qa_ds, done, folder, **SHARDS)  # all there: no cluster work at all
    assert (done.report.shards_computed, done.report.seconds) == (0, 0.0)
    assert_same_rows(out, local_embedded, floats=(EMBEDDING,))


def test_refuses_a_stage_without_required_columns(qa_ds, tmp_path):
    from openmathmix.errors import MissingColumnsError

    with pytest.raises(MissingColumnsError, match="needs column"):
        run_stage_ray(qa_ds.remove_columns("answer"), EmbedStage(), tmp_path, progress=False)
