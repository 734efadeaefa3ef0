"""One-shot influence quality score (paper Section 3.2, Eq. 1-3): prompt sample Dp -> the same rows with `qs`.

What is computed
----------------
For every test sample x_i of the test set Dt the *zero-shot score* (Eq. 1) is the mean log-probability, under the
causal LM, of the answer tokens of x_i given its question. For every pair (prompt sample x_k, test sample x_i) the
*one-shot score* (Eq. 2) is the same mean, with x_k's question and answer placed before x_i as an in-context
example. The quality score of x_k (Eq. 3) is the fraction of test samples whose one-shot score is strictly larger
than their zero-shot score, so ``QS(x_k) = wins / n2`` lies in [0, 1].

Token sequences (shared template in :mod:`openmathmix.text`):

* zero-shot: ``S + prompt_i + answer_i``
* one-shot:  ``S + example_k + prompt_i + answer_i``

where ``S`` is whatever the tokenizer puts in front of a text on its own (a BOS for Llama-2/DeepSeek, nothing for
SmolLM2), ``example_k`` is the token ids of ``text.format_example(q_k, a_k)`` and ``(prompt_i, answer_i)`` come from
``text.encode_qa_batch(..., add_special_tokens=False)``. Only the ``answer_i`` positions are scored, in both cases.
Test samples longer than ``max_test_tokens`` and examples longer than ``max_example_tokens`` are cut (the example
loses the end of its answer, the template around it is kept).

How it is computed (the fast path)
----------------------------------
The test suffixes ``prompt_i + answer_i`` are the same for every prompt sample, so they are tokenised, sorted by
length (longest first) and packed once into right-padded chunks of at most ``chunk_rows`` rows and ``chunk_tokens``
padded suffix tokens. Then, for each prompt sample:

1. the prefix ``S + example_k`` runs through the model once, keeping its KV cache (a ``DynamicCache``);
2. for each chunk, the prefix K/V are broadcast over the chunk's rows and the suffixes run on top of them, with
   position ids ``P + arange(T)`` and an attention mask of ones over the prefix and over each row's real suffix
   tokens (zeros on its right padding);
3. the backbone's last hidden states are sliced to the positions that predict answer tokens *before* the LM head,
   so the head never sees question, prefix or pad positions; the head and a float32 log-softmax run on blocks of
   ``logit_rows`` positions and the target tokens are gathered; per-row means come from one ``index_add``. (A model
   whose logits are not ``lm_head(hidden)``, e.g. with an unknown logit scaling, is detected once at start-up and
   sliced by the model itself with a boolean ``logits_to_keep`` instead.)

The zero-shot scores use the same code with the prefix ``S`` (no cache when ``S`` is empty). The plain reference,
:meth:`AnswerLogProbs.plain`, concatenates the whole sequence, runs a full forward with full logits and a full
log-softmax: the tests check that both agree to 1e-4 in float32.

Dt and Dp (Appendix A)
----------------------
* Dt: the candidate pool is the rows of the test sources (``test_sources``; default: ``mathinstruct_math`` when the
  dataset has it, as in the large setting, else every ``reasoning`` source, as in the base setting), or a separate
  user-given dataset (``test_ds``). Rows with an empty answer are dropped. The pool is optionally cut to
  ``pool_size`` rows drawn at random (seeded), then K-center Greedy on the ``embedding`` column picks ``n2`` rows,
  starting from one seeded random row (Gonzalez's farthest-first traversal; the 100-row s0 of Section 3.1 is a
  warm start for the *selection*, not for a 100-row test set). ``test_selection="random"`` draws n2 rows instead
  (for data without embeddings).
* Dp: ``n1`` rows per prompt source (default every source of ``ds``), drawn uniformly without replacement with a
  generator seeded by ``(seed, crc32(source))``, so a source's sample does not depend on which other sources are
  present. A source with fewer rows contributes all of them. Rows that are in Dt (same ``id``) never enter Dp: a
  test sample shown as its own in-context example would score itself.
* Reasoning vs general (``split_by_task``): Appendix A trains two scorers in the large setting, one on reasoning
  Dp and one on general Dp, both scored against the *same* Dt. QS(x_k) only depends on x_k and Dt, so one pass over
  the union of both Dp samples gives exactly the scores of two separate runs (and computes the zero-shot scores
  once). ``split_by_task=True`` requires the ``task`` column, reports statistics per task, and the CLI then writes
  one folder per task, each the training set of one scorer.

Resumability: :class:`ZeroShotStage` (rows: Dt) and :class:`OneShotStage` (rows: prompt samples; it holds Dt
tokenised and its zero-shot scores) both run through :func:`~openmathmix.stages.base.run_stage`, so the zero-shot
scores are cached, finished shards of prompt samples are kept, and an interrupted run resumes at the first missing
shard. Models load only inside the stages (the caller never touches CUDA, so forked multi-GPU workers stay safe).

Speed (bench/bench_quality.py, SmolLM2, 8 x 16 GSM8K pairs, 2 CPU cores): ~8.8 pairs/s and 1.9-2.0x the plain
per-pair forward in bf16 on a Xeon with AMX; 1.1 pairs/s and 1.65x in fp32 on an AVX2-only EPYC. float32 results
agree with the plain forward to ~1e-6 (BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, Features, Value
from datasets import Sequence as SequenceFeature

from ..errors import ConfigError, MissingColumnsError
from ..models import dtype_key
from ..schema import QS
from ..settings import QualitySettings
from .base import Stage, available_devices, run_stage
from .logprobs import encode_example, encode_tests, lead_ids, make_scorer, quality_from_scores
from .sampling import choose_test_set, default_test_sources, sample_prompt_set

logger = logging.getLogger(__name__)

__all__ = ["ONESHOT_SCORES", "ZERO_SHOT", "OneShotStage", "QualityReport", "ZeroShotStage", "compute_quality"]

_DEFAULTS = QualitySettings()  # the paper's values (Appendix A); the pipeline passes the resolved settings
ONESHOT_SCORES = "oneshot_scores"  # list[float32], one per Dt row (Dt order): the Eq. 2 scores of this prompt sample
ZERO_SHOT = "zero_shot"  # float: the Eq. 1 score of a test sample


class _CausalLMStage(Stage):
    """Shared by the zero- and one-shot stages: the causal LM loads in ``setup`` (in the worker process) and is
    never pickled; ``self._runtime`` holds the scorer, the tokenizer and its leading special ids."""

    def __init__(self, model_spec, dtype: str, chunk_rows: int | None, chunk_tokens: int | None):
        self.model_spec = model_spec
        self.dtype = dtype
        self.chunk_rows = chunk_rows
        self.chunk_tokens = chunk_tokens
        self._runtime: dict[str, Any] | None = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_runtime"] = None
        state.pop("_ready_on", None)
        return state

    def setup(self, device: str) -> None:
        from ..models import load_model

        model, tok = load_model(self.model_spec, head="causal_lm", device=device, dtype=self.dtype)
        self._runtime = {"scorer": make_scorer(model, tok, device, self.chunk_rows, self.chunk_tokens),
                         "tok": tok, "lead": lead_ids(tok)}


class ZeroShotStage(_CausalLMStage):
    """Eq. 1 for a batch of test samples: adds ``zero_shot`` (mean answer log-prob given only the question).

    Run over Dt with one batch holding every test row, so the rows are length-sorted and chunked together. It goes
    through ``run_stage`` like every model stage: the model is loaded in the worker process (never in the caller,
    which would break forked multi-GPU workers), and the scores are cached, so a resumed quality run compares
    against bit-identical zero-shot scores.
    """

    name = "zeroshot_quality"
    requires = ("question", "answer")
    produces = (ZERO_SHOT,)

    def __init__(self, model_spec, dtype: str = "auto", *, max_test_tokens: int = _DEFAULTS.max_test_tokens,
                 chunk_rows: int | None = None, chunk_tokens: int | None = None):
        super().__init__(model_spec, dtype, chunk_rows, chunk_tokens)
        self.max_test_tokens = int(max_test_tokens)

    def config(self) -> dict[str, Any]:
        return {"model": self.model_spec.key(), "dtype": dtype_key(self.dtype), "max_test_tokens": self.max_test_tokens,
                "template": _template_key()}

    def process_batch(self, batch: dict[str, list], device: str) -> dict[str, list]:
        scorer, tok, lead = self._runtime["scorer"], self._runtime["tok"], self._runtime["lead"]
        tests = encode_tests(tok, batch["question"], batch["answer"], self.max_test_tokens)
        empty = sum(1 for _, a in tests if not a)
        if empty:
            raise ConfigError(f"{empty} test sample(s) have no answer tokens after truncation to "
                                   f"{self.max_test_tokens} tokens; raise max_test_tokens")
        return {ZERO_SHOT: scorer.score(lead, scorer.prepare(tests)).tolist()}

    def features(self):
        return Features({ZERO_SHOT: Value("float64")})


class OneShotStage(_CausalLMStage):
    """Eq. 2-3 for a batch of prompt samples: adds `oneshot_scores` (one per Dt row) and `qs`.

    Args:
        tests: Dt as (prompt ids, answer ids) pairs from :func:`encode_test`, in Dt order.
        zero_shot: the Eq. 1 score of each test, same order (computed with the same model and dtype).
        model_spec: the causal LM (``models.resolve(...)``).
        dtype: "auto" or a dtype name, resolved per device in ``setup`` (use the zero-shot pass's setting).
        test_key: identity of Dt (ids and texts) for the cache fingerprint.
        max_example_tokens: cap on the in-context example.
        chunk_rows, chunk_tokens: packing of the test suffixes (speed only, not in the fingerprint); None picks a
            default per device.
    """

    name = "oneshot_quality"
    requires = ("question", "answer")
    produces = (ONESHOT_SCORES, QS)

    def __init__(self, tests: Sequence[tuple[Sequence[int], Sequence[int]]], zero_shot: Sequence[float], model_spec,
                 dtype: str = "auto", *, test_key: str, max_example_tokens: int = _DEFAULTS.max_example_tokens,
                 chunk_rows: int | None = None, chunk_tokens: int | None = None):
        if len(tests) != len(zero_shot) or not tests:
            raise ConfigError(f"need one zero-shot score per test sample, got {len(zero_shot)} for {len(tests)}")
        super().__init__(model_spec, dtype, chunk_rows, chunk_tokens)
        self.tests = [(list(p), list(a)) for p, a in tests]
        self.zero_shot = [float(z) for z in zero_shot]
        self.test_key = test_key
        self.max_example_tokens = int(max_example_tokens)

    def config(self) -> dict[str, Any]:
        return {
            "model": self.model_spec.key(), "dtype": dtype_key(self.dtype), "tests": self.test_key,
            "zero_shot": _digest(json.dumps([round(z, 6) for z in self.zero_shot])),
            "max_example_tokens": self.max_example_tokens, "template": _template_key(),
        }

    def setup(self, device: str) -> None:
        super().setup(device)
        self._runtime["prepared"] = self._runtime["scorer"].prepare(self.tests)  # packed once, reused per prefix

    def process_batch(self, batch: dict[str, list], device: str) -> dict[str, list]:
        scorer, tok, lead = self._runtime["scorer"], self._runtime["tok"], self._runtime["lead"]
        prepared, zero = self._runtime["prepared"], np.asarray(self.zero_shot)
        scores = []
        for q, a in zip(batch["question"], batch["answer"]):
            example = encode_example(tok, q, a, self.max_example_tokens)
            scores.append(scorer.score(lead + example, prepared))
            self.count("pairs", len(zero))
            self.count("example_tokens", len(example))
        scores = np.stack(scores) if scores else np.zeros((0, len(zero)))
        qs = quality_from_scores(scores, zero) if len(scores) else np.zeros(0)
        return {ONESHOT_SCORES: scores.astype(np.float32).tolist(), QS: qs.tolist()}

    def features(self):
        return Features({ONESHOT_SCORES: SequenceFeature(Value("float32")), QS: Value("float64")})


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _template_key() -> str:
    """Fingerprint of the shared template: what format_example / format_qa make of a fixed pair."""
    from .. import text

    probe = ("Q?", "A.")
    return _digest(json.dumps([text.format_qa(*probe), text.format_example(*probe), text.TEMPLATE_VERSION]))


@dataclass
class QualityReport:
    """What a quality run did: sizes, speed, Dt (with zero-shot scores) and QS statistics.

    ``pairs`` counts every (prompt sample, test sample) pair of the result; ``pairs_computed`` and ``seconds`` cover
    the shards this call computed (model loading included), the others were reused from the cache.
    """

    n1: int
    n2: int
    prompt_rows: int
    pairs: int
    pairs_computed: int
    seconds: float
    pairs_per_s: float
    model: dict
    dtype: str
    seed: int
    test_sources: list[str]
    test_selection: str
    split_by_task: bool
    shards: int = 0
    shards_reused: int = 0
    prompt_per_source: dict[str, int] = field(default_factory=dict)
    mean_qs_per_source: dict[str, float] = field(default_factory=dict)
    mean_qs_per_task: dict[str, float] = field(default_factory=dict)
    zero_shot_seconds: float = 0.0
    test_set: list[dict] = field(default_factory=list)  # [{"id", "source", "zero_shot"}] in Dt order

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        speed = (f"{self.pairs_computed:,} computed in {self.seconds:,.1f} s = {self.pairs_per_s:,.2f} pairs/s"
                 if self.pairs_computed else "all reused from the cache")
        return (f"quality: {self.prompt_rows:,} prompt samples (n1 = {self.n1:,} per source) x {self.n2} test "
                f"samples = {self.pairs:,} pairs; {speed}; {self.shards_reused} of {self.shards} shard(s) reused")


def compute_quality(
    ds: Dataset,
    *,
    n1: int = _DEFAULTS.n1,
    n2: int = _DEFAULTS.n2,
    test_sources: Sequence[str] | None = None,
    test_ds: Dataset | None = None,
    prompt_sources: Sequence[str] | None = None,
    split_by_task: bool = False,
    test_selection: str = "kcenter",
    pool_size: int | None = None,
    model: str | None = None,
    revision: str | None = None,
    device: str | None = None,
    dtype: str = "auto",
    seed: int = 0,
    max_test_tokens: int = _DEFAULTS.max_test_tokens,
    max_example_tokens: int = _DEFAULTS.max_example_tokens,
    chunk_rows: int | None = None,
    chunk_tokens: int | None = None,
    cache_dir: str | None = None,
    batch_size: int = 4,
    shard_rows: int = 64,
    worker: tuple[int, int] | None = None,
    progress: bool = True,
    return_report: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
):
    """Score a per-source sample of ``ds`` by one-shot influence (Eq. 1-3).

    Returns the Dp rows of ``ds`` with two new columns, ``qs`` (float in [0, 1]) and ``oneshot_scores``; with
    ``return_report=True`` returns ``(dataset, QualityReport)`` (the report holds Dt's ids and zero-shot scores).
    Returns None (or ``(None, report)``) when ``worker`` left shards to other machines.

    ``test_ds`` (a dataset with question/answer and, for K-center, embedding) replaces the test-source pool.
    ``device`` None/"auto" uses every visible GPU (one process each) or the CPU; ``dtype`` "auto" is bf16 where
    supported. Module docstring: sampling rules, template and the fast path.
    """
    from ..models import pick_dtype, resolve

    needed = ["question", "answer", "source"] + (["task"] if split_by_task else [])
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(f"compute_quality needs column(s) {missing}; the dataset has {ds.column_names}")
    if n2 < 1:
        raise ConfigError(f"n2 must be >= 1, got {n2}")

    # Dt
    pool_rows_in_ds = None  # where the pool's rows sit in ds (None: a separate test dataset)
    if test_ds is not None:
        pool = test_ds
        used_sources = sorted(set(test_ds["source"])) if "source" in test_ds.column_names else ["<test_ds>"]
    else:
        used_sources = list(test_sources) if test_sources else default_test_sources(ds)
        known = set(ds.unique("source"))
        unknown = [s for s in used_sources if s not in known]
        if unknown:
            raise ConfigError(f"test source(s) {unknown} are not in the dataset; it has {sorted(known)}")
        wanted = set(used_sources)
        pool_rows_in_ds = np.array([i for i, s in enumerate(ds["source"]) if s in wanted], dtype=np.int64)
        pool = ds.select(pool_rows_in_ds)
    test_idx = choose_test_set(pool, n2, seed=seed, pool_size=pool_size, method=test_selection)
    test_rows = pool.select(test_idx)

    # Dp
    exclude_ids = set(test_rows["id"]) if "id" in test_rows.column_names and "id" in ds.column_names else None
    exclude_rows = set(pool_rows_in_ds[test_idx].tolist()) if pool_rows_in_ds is not None and not exclude_ids else None
    dp_idx = sample_prompt_set(ds, n1, seed=seed, sources=prompt_sources, exclude_ids=exclude_ids,
                               exclude_rows=exclude_rows)
    if len(dp_idx) == 0:
        raise ConfigError("the prompt set is empty: no rows left outside the test set")
    dp = ds.select(dp_idx)

    # zero-shot scores of Dt (same model and dtype as the one-shot pass), cached like any stage output
    from ..models import load_tokenizer

    spec = resolve(model, revision)
    tok = load_tokenizer(spec)  # tokenizer only: models load inside run_stage's workers (fork-safe with CUDA)
    tests = encode_tests(tok, test_rows["question"], test_rows["answer"], max_test_tokens)
    empty = [i for i, (_, a) in enumerate(tests) if not a]
    if empty:
        raise ConfigError(f"{len(empty)} test sample(s) have no answer tokens after truncation to "
                               f"{max_test_tokens} tokens; raise max_test_tokens")
    devices = available_devices(device)
    zero_stage = ZeroShotStage(spec, dtype, max_test_tokens=max_test_tokens, chunk_rows=chunk_rows,
                               chunk_tokens=chunk_tokens)
    zero_rows = run_stage(test_rows.select_columns(["question", "answer"]), zero_stage, cache_dir=cache_dir,
                          batch_size=len(test_rows), shard_rows=len(test_rows), device=device, progress=progress,
                          engine=engine, ray_address=ray_address)
    zero = np.asarray(zero_rows[ZERO_SHOT], dtype=np.float64)
    zero_seconds = zero_stage.report.seconds
    test_ids = list(test_rows["id"]) if "id" in test_rows.column_names else [str(i) for i in test_idx]
    test_key = _digest(json.dumps([test_ids, list(test_rows["question"]), list(test_rows["answer"]),
                                   max_test_tokens]))

    stage = OneShotStage(tests, zero.tolist(), spec, dtype, test_key=test_key,
                         max_example_tokens=max_example_tokens, chunk_rows=chunk_rows, chunk_tokens=chunk_tokens)
    logger.info("quality: %d prompt samples x %d tests on %s", len(dp), len(tests), ",".join(devices))
    scored = run_stage(dp, stage, cache_dir=cache_dir, batch_size=batch_size, shard_rows=shard_rows,
                       device=device, worker=worker, progress=progress, engine=engine, ray_address=ray_address)
    run = stage.report
    pairs_computed = int(run.computed.get("pairs", 0))
    report = QualityReport(
        n1=n1, n2=len(tests), prompt_rows=len(dp), pairs=len(dp) * len(tests), pairs_computed=pairs_computed,
        seconds=run.seconds, pairs_per_s=pairs_computed / run.seconds if run.seconds > 0 else 0.0,
        model=spec.key(), dtype=str(pick_dtype(devices[0], dtype)).removeprefix("torch.") if devices == ("cpu",)
        else dtype, seed=seed, test_sources=used_sources, test_selection=test_selection,
        split_by_task=split_by_task, shards=run.shards, shards_reused=run.shards_reused,
        prompt_per_source=dict(Counter(dp["source"])), zero_shot_seconds=zero_seconds,
        test_set=[{"id": i, "source": s, "zero_shot": float(z)} for i, s, z in zip(
            test_ids, list(test_rows["source"]) if "source" in test_rows.column_names else [None] * len(tests),
            zero)],
    )
    if scored is not None:
        report.mean_qs_per_source = _group_mean(scored["source"], scored[QS])
        if "task" in scored.column_names:
            report.mean_qs_per_task = _group_mean(scored["task"], scored[QS])
    return (scored, report) if return_report else scored


def _group_mean(keys: list, values: list) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for k, v in zip(keys, values):
        sums.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in sums.items()}
