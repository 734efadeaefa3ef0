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
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, Features, Sequence as SequenceFeature, Value

from ..errors import MissingColumnsError, OpenMathMixError
from ..models import dtype_key
from ..schema import EMBEDDING, QS
from .base import Stage, available_devices, run_stage

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_N1",
    "DEFAULT_N2",
    "DEFAULT_TEST_SOURCE",
    "ONESHOT_SCORES",
    "AnswerLogProbs",
    "OneShotStage",
    "ZeroShotStage",
    "QualityReport",
    "choose_test_set",
    "compute_quality",
    "default_test_sources",
    "encode_example",
    "encode_test",
    "encode_tests",
    "lead_ids",
    "make_scorer",
    "quality_from_scores",
    "sample_prompt_set",
]

DEFAULT_N1 = 2000  # prompt samples per source (Appendix A)
DEFAULT_N2 = 100  # test samples (Appendix A)
DEFAULT_TEST_SOURCE = "mathinstruct_math"  # the MATH CoT part of MathInstruct: Dt of the large setting
DEFAULT_MAX_TEST_TOKENS = 1024  # question + answer of one test sample
DEFAULT_MAX_EXAMPLE_TOKENS = 1024  # the in-context example (prompt sample)
ONESHOT_SCORES = "oneshot_scores"  # list[float32], one per Dt row (Dt order): the Eq. 2 scores of this prompt sample
ZERO_SHOT = "zero_shot"  # float: the Eq. 1 score of a test sample


# --------------------------------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------------------------------


def lead_ids(tokenizer) -> list[int]:
    """The ids the tokenizer puts in front of any text on its own (e.g. [BOS]); [] when it adds none at the start."""
    with_special = tokenizer("x", add_special_tokens=True)["input_ids"]
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    for cut in range(len(with_special) + 1):
        if with_special[cut:cut + len(plain)] == plain:
            return list(with_special[:cut])
    return []


def encode_test(tokenizer, question: str, answer: str,
                max_tokens: int = DEFAULT_MAX_TEST_TOKENS) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of a test sample, without special tokens (they follow ``lead_ids`` or a prefix)."""
    return encode_tests(tokenizer, [question], [answer], max_tokens)[0]


def encode_tests(tokenizer, questions: Sequence[str], answers: Sequence[str],
                 max_tokens: int = DEFAULT_MAX_TEST_TOKENS) -> list[tuple[list[int], list[int]]]:
    """Batch form of :func:`encode_test` (``text.encode_qa_batch`` without special tokens)."""
    from ..text import encode_qa_batch

    enc = encode_qa_batch(tokenizer, list(questions), list(answers), max_tokens, add_special_tokens=False)
    return list(zip(enc.prompt_ids, enc.answer_ids))


def encode_example(tokenizer, question: str, answer: str, max_tokens: int = DEFAULT_MAX_EXAMPLE_TOKENS) -> list[int]:
    """Token ids of a prompt sample as an in-context example (``text.format_example``, no special tokens), at most
    ``max_tokens``.

    An example that is too long loses the end of its *answer* (the template around it is kept, so the test question
    still follows a complete example); if even an empty answer does not fit, the ids are cut at ``max_tokens``.
    """
    from ..text import format_example

    def enc(a: str) -> list[int]:
        return list(tokenizer(format_example(question, a), add_special_tokens=False)["input_ids"])

    ids = enc(answer)
    if len(ids) <= max_tokens:
        return ids
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    keep = max(0, len(answer_ids) - (len(ids) - max_tokens))
    for _ in range(4):  # re-tokenising a cut answer can shift by a token or two at the seam
        ids = enc(tokenizer.decode(answer_ids[:keep]))
        if len(ids) <= max_tokens or keep == 0:
            break
        keep = max(0, keep - (len(ids) - max_tokens))
    return ids[:max_tokens]


# --------------------------------------------------------------------------------------------------------------------
# Scoring: mean log-prob of answer tokens, with and without a shared prefix
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    rows: Any  # LongTensor [B]: positions of these rows in the test list
    input_ids: Any  # LongTensor [B, T], right-padded with pad_id
    valid: Any  # LongTensor [B, T]: 1 on real tokens, 0 on padding
    keep: Any  # BoolTensor [B, T]: positions whose next token is an answer token
    targets: Any  # LongTensor [N]: the answer tokens, in keep's row-major order
    owner: Any  # LongTensor [N]: which chunk row each target belongs to
    counts: Any  # FloatTensor [B]: answer length of each row


class AnswerLogProbs:
    """Mean log-probability of each test answer (Eq. 1 / Eq. 2) under a causal LM, with an optional shared prefix.

    ``prepare(tests)`` packs the test suffixes once (length-sorted, right-padded chunks); ``score(prefix, prepared)``
    then scores all of them after one prefix, computing the prefix's KV once. ``plain`` is the reference per-pair
    computation (full sequence, full logits).

    Args:
        model: a causal LM (``AutoModelForCausalLM``) in eval mode.
        pad_id: id written on padding positions (never attended to, never scored).
        chunk_rows: most test rows per forward.
        chunk_tokens: most padded suffix tokens (rows x longest suffix) per forward.
        max_padding: most padding a chunk may hold, as a fraction of its padded tokens. On the CPU padding is pure
            lost work (a GEMM there runs no faster on more rows), so the default keeps it at 5%; on a GPU wider
            chunks fill the device better and 25% is allowed.
        logit_rows: answer positions per LM-head + float32 log-softmax block. On CPU keep the [rows, vocab] float32
            block small (128 x 49k x 4 B = 25 MB): larger buffers are fresh mmaps whose page faults cost more than
            the arithmetic (measured 5-7 ns per element for a 300 MB block against ~1 ns for small ones).
    """

    def __init__(self, model, pad_id: int = 0, *, chunk_rows: int = 8, chunk_tokens: int = 2048,
                 logit_rows: int = 128, max_padding: float = 0.05):
        if chunk_rows < 1 or chunk_tokens < 1 or logit_rows < 1:
            raise OpenMathMixError("chunk_rows, chunk_tokens and logit_rows must be positive")
        if not 0.0 <= max_padding < 1.0:
            raise OpenMathMixError(f"max_padding must be in [0, 1), got {max_padding}")
        self.max_padding = float(max_padding)
        self.model = model
        self.pad_id = int(pad_id)
        self.chunk_rows = int(chunk_rows)
        self.chunk_tokens = int(chunk_tokens)
        self.logit_rows = int(logit_rows)
        self.backbone = model.get_decoder()
        self.head = model.get_output_embeddings()
        self.slice_hidden = self._head_matches_model()

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _head_logits(self, hidden):
        """LM head on sliced hidden states (plus Gemma-style final soft-capping when the config has it)."""
        logits = self.head(hidden)
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = (logits / cap).tanh() * cap
        return logits

    def _head_matches_model(self) -> bool:
        """True when ``head(backbone(x))`` reproduces the model's own logits (then hidden states are sliced before
        the head); otherwise the model's ``logits_to_keep`` does the slicing, at the cost of one [N, vocab] tensor."""
        import torch

        if self.head is None or self.backbone is self.model:
            return False
        with torch.inference_mode():
            ids = torch.arange(3, 7, device=self.device).unsqueeze(0) % self.model.config.get_text_config().vocab_size
            want = self.model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
            got = self._head_logits(self.backbone(input_ids=ids).last_hidden_state[0, -1:]).float()[0]
        ok = torch.allclose(want, got, rtol=1e-3, atol=1e-3 * float(want.abs().max()))
        if not ok:
            logger.info("%s: LM head output differs from the model's logits; using logits_to_keep",
                        type(self.model).__name__)
        return bool(ok)

    # -- packing ---------------------------------------------------------------------------------------------------

    def prepare(self, tests: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[_Chunk]:
        """Pack (prompt ids, answer ids) pairs into length-sorted chunks; every answer needs >= 1 token."""
        import torch

        lengths = []
        for i, (prompt, answer) in enumerate(tests):
            if len(prompt) < 1 or len(answer) < 1:
                raise OpenMathMixError(f"test sample {i} needs at least one prompt token and one answer token")
            lengths.append(len(prompt) + len(answer))
        order = sorted(range(len(tests)), key=lambda i: (-lengths[i], i))  # longest first, stable
        chunks: list[list[int]] = []
        real = 0  # unpadded tokens of the current chunk
        for i in order:
            if chunks:
                cur = chunks[-1]
                padded = (len(cur) + 1) * lengths[cur[0]]  # rows arrive longest first
                if (len(cur) < self.chunk_rows and padded <= self.chunk_tokens
                        and padded - real - lengths[i] <= self.max_padding * padded):
                    cur.append(i)
                    real += lengths[i]
                    continue
            chunks.append([i])
            real = lengths[i]
        device = self.device
        out = []
        for rows in chunks:
            t = lengths[rows[0]]
            ids = torch.full((len(rows), t), self.pad_id, dtype=torch.long)
            valid = torch.zeros((len(rows), t), dtype=torch.long)
            keep = torch.zeros((len(rows), t), dtype=torch.bool)
            targets, owner, counts = [], [], []
            for b, i in enumerate(rows):
                prompt, answer = tests[i]
                seq = list(prompt) + list(answer)
                ids[b, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                valid[b, : len(seq)] = 1
                # the hidden state at position p predicts token p + 1: answer token j sits at len(prompt) + j
                keep[b, len(prompt) - 1 : len(seq) - 1] = True
                targets.extend(answer)
                owner.extend([b] * len(answer))
                counts.append(len(answer))
            out.append(_Chunk(
                rows=torch.tensor(rows, dtype=torch.long), input_ids=ids.to(device), valid=valid.to(device),
                keep=keep.to(device), targets=torch.tensor(targets, dtype=torch.long, device=device),
                owner=torch.tensor(owner, dtype=torch.long, device=device),
                counts=torch.tensor(counts, dtype=torch.float64, device=device),
            ))
        return out

    # -- fast path -------------------------------------------------------------------------------------------------

    def score(self, prefix: Sequence[int], prepared: list[_Chunk]) -> np.ndarray:
        """Mean answer log-prob of every packed test after ``prefix`` (float64, in the original test order)."""
        import torch

        n = sum(len(c.rows) for c in prepared)
        result = torch.empty(n, dtype=torch.float64)
        with torch.inference_mode():
            prefix_kv = self._prefix_kv(prefix)
            for chunk in prepared:
                result[chunk.rows] = self._score_chunk(prefix_kv, len(prefix), chunk).cpu()
        return result.numpy()

    def _prefix_kv(self, prefix: Sequence[int]):
        """Per-layer (keys, values) of the prefix ([1, heads, P, head_dim]), or None for an empty prefix."""
        import torch

        if len(prefix) == 0:
            return None
        ids = torch.tensor([list(prefix)], dtype=torch.long, device=self.device)
        out = self.backbone(input_ids=ids, use_cache=True)
        return [(layer.keys, layer.values) for layer in out.cache.layers]

    def _score_chunk(self, prefix_kv, p: int, chunk: _Chunk):
        import torch
        from transformers import DynamicCache

        b, t = chunk.input_ids.shape
        device = chunk.input_ids.device
        position_ids = torch.arange(p, p + t, device=device).unsqueeze(0).expand(b, t)
        if prefix_kv is None:
            cache = None
            mask = chunk.valid
        else:
            # broadcast, no copy: the cache's own concatenation with the suffix K/V materialises [B, heads, P+T, d]
            cache = DynamicCache(
                ddp_cache_data=[(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in prefix_kv],
                config=self.model.config,
            )
            mask = torch.cat([torch.ones((b, p), dtype=chunk.valid.dtype, device=device), chunk.valid], dim=1)
        kwargs = dict(input_ids=chunk.input_ids, attention_mask=mask, position_ids=position_ids, cache=cache,
                      use_cache=cache is not None)
        if self.slice_hidden:  # [N, hidden]: only positions that predict an answer token reach the LM head
            hidden = self.backbone(**kwargs).last_hidden_state[chunk.keep]
            del cache
        else:  # [N, vocab] logits straight from the model
            hidden = self.model(**kwargs, logits_to_keep=chunk.keep).logits
        logp = torch.empty(hidden.shape[0], dtype=torch.float64, device=device)
        for s in range(0, hidden.shape[0], self.logit_rows):
            block = hidden[s : s + self.logit_rows]
            if self.slice_hidden:
                block = self._head_logits(block)
            # float32 log-softmax on these positions only (an explicit upcast, then the vectorised float32 kernel:
            # measured 1.8x faster on CPU than log_softmax(..., dtype=float32) on bf16 logits)
            block = torch.log_softmax(block.float(), dim=-1)
            tgt = chunk.targets[s : s + self.logit_rows]
            logp[s : s + self.logit_rows] = block.gather(1, tgt.unsqueeze(1)).squeeze(1).double()
        sums = torch.zeros(b, dtype=torch.float64, device=device).index_add_(0, chunk.owner, logp)
        return sums / chunk.counts

    # -- plain reference -------------------------------------------------------------------------------------------

    def plain(self, prefix: Sequence[int], prompt: Sequence[int], answer: Sequence[int]) -> float:
        """Reference: one full forward over ``prefix + prompt + answer``, full logits, full float32 log-softmax."""
        import torch

        seq = list(prefix) + list(prompt) + list(answer)
        start = len(prefix) + len(prompt)
        if start < 1 or not answer:
            raise OpenMathMixError("plain(): need at least one token before the answer and one answer token")
        with torch.inference_mode():
            ids = torch.tensor([seq], dtype=torch.long, device=self.device)
            logits = self.model(input_ids=ids).logits[0]
            logp = torch.log_softmax(logits.float(), dim=-1)
            pos = torch.arange(start - 1, len(seq) - 1, device=ids.device)
            tgt = torch.tensor(list(answer), dtype=torch.long, device=ids.device)
            return float(logp[pos, tgt].double().mean())


def quality_from_scores(oneshot: np.ndarray, zero_shot: np.ndarray) -> np.ndarray:
    """Eq. 3: for each prompt sample (row of ``oneshot`` [n1, n2]) the fraction of tests with one-shot > zero-shot."""
    oneshot = np.asarray(oneshot, dtype=np.float64)
    zero_shot = np.asarray(zero_shot, dtype=np.float64)
    if oneshot.ndim != 2 or oneshot.shape[1] != zero_shot.shape[0]:
        raise OpenMathMixError(f"one-shot scores {oneshot.shape} do not match {zero_shot.shape[0]} zero-shot scores")
    return (oneshot > zero_shot[None, :]).sum(axis=1) / zero_shot.shape[0]


# --------------------------------------------------------------------------------------------------------------------
# The stage: rows are prompt samples; Dt and its zero-shot scores travel with the stage
# --------------------------------------------------------------------------------------------------------------------


def make_scorer(model, tokenizer, device: str, chunk_rows: int | None = None,
                chunk_tokens: int | None = None) -> AnswerLogProbs:
    """:class:`AnswerLogProbs` with per-device packing defaults (None = default).

    CPU (2 cores, SmolLM2, bench/bench_quality.py): 8 rows / 2,048 suffix tokens per forward, at most 5% padding,
    and 128-position logit blocks; bigger chunks ran slower there (padding is lost work, large fresh buffers
    page-fault; with 5% padding the ratio to the plain forward went from 1.41 to 1.65 on an AVX2-only EPYC). GPU: <= 32 rows per chunk
    (performance notes §1: 32 rows x 1,000 tokens of a 7B MHA model's KV is ~16 GB) and 4,096-position blocks.
    """
    gpu = str(device).startswith("cuda")
    return AnswerLogProbs(
        model, pad_id=tokenizer.pad_token_id or 0, chunk_rows=chunk_rows or (32 if gpu else 8),
        chunk_tokens=chunk_tokens or (32768 if gpu else 2048), logit_rows=4096 if gpu else 128,
        max_padding=0.25 if gpu else 0.05,
    )


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

    def __init__(self, model_spec, dtype: str = "auto", *, max_test_tokens: int = DEFAULT_MAX_TEST_TOKENS,
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
            raise OpenMathMixError(f"{empty} test sample(s) have no answer tokens after truncation to "
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
                 dtype: str = "auto", *, test_key: str, max_example_tokens: int = DEFAULT_MAX_EXAMPLE_TOKENS,
                 chunk_rows: int | None = None, chunk_tokens: int | None = None):
        if len(tests) != len(zero_shot) or not tests:
            raise OpenMathMixError(f"need one zero-shot score per test sample, got {len(zero_shot)} for {len(tests)}")
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


# --------------------------------------------------------------------------------------------------------------------
# Sampling Dt and Dp
# --------------------------------------------------------------------------------------------------------------------


def default_test_sources(ds: Dataset) -> list[str]:
    """``mathinstruct_math`` when present (large setting), else every reasoning source (base setting)."""
    sources = ds.unique("source")
    if DEFAULT_TEST_SOURCE in sources:
        return [DEFAULT_TEST_SOURCE]
    if "task" in ds.column_names:
        reasoning = sorted({s for s, t in zip(ds["source"], ds["task"]) if t == "reasoning"})
        if reasoning:
            return reasoning
    return sorted(sources)


def choose_test_set(pool: Dataset, n2: int, *, seed: int = 0, pool_size: int | None = None,
                    method: str = "kcenter") -> np.ndarray:
    """Row indices of Dt inside ``pool``: K-center Greedy over ``embedding`` (or a random draw), ``n2`` rows.

    Rows with an empty answer are never chosen. ``pool_size`` first cuts the pool to that many random rows.
    The result is in selection order and deterministic for a seed.
    """
    if method not in ("kcenter", "random"):
        raise OpenMathMixError(f"unknown test selection {method!r}; use 'kcenter' or 'random'")
    answers = pool["answer"]
    candidates = np.array([i for i, a in enumerate(answers) if a and a.strip()], dtype=np.int64)
    if len(candidates) == 0:
        raise OpenMathMixError("the test pool has no row with a non-empty answer")
    rng = np.random.default_rng([seed, 2])
    if pool_size is not None and len(candidates) > pool_size:
        candidates = np.sort(rng.choice(candidates, size=pool_size, replace=False))
    if n2 >= len(candidates):
        logger.warning("test pool has %d usable rows <= n2=%d: every row is a test sample", len(candidates), n2)
        return candidates
    if method == "random":
        return np.sort(rng.choice(candidates, size=n2, replace=False))
    if EMBEDDING not in pool.column_names:
        raise MissingColumnsError(
            f"choosing Dt by K-center Greedy needs the {EMBEDDING!r} column (run `openmathmix embed` first), "
            "or use test_selection='random'"
        )
    from ..select.kcenter import k_center_greedy

    emb = np.asarray(pool.select(candidates).with_format("numpy", columns=[EMBEDDING])[EMBEDDING], dtype=np.float32)
    # on the CPU: small (pool x d, n2 steps), and CUDA must stay uninitialised in the caller (forked GPU workers)
    order = k_center_greedy(emb, n2 - 1, init=1, seed=seed, include_init=True, device="cpu")
    return candidates[order]


def _source_seed(seed: int, source: str) -> list[int]:
    return [int(seed), zlib.crc32(source.encode())]


def sample_prompt_set(ds: Dataset, n1: int, *, seed: int = 0, sources: Sequence[str] | None = None,
                      exclude_ids: set[str] | None = None, exclude_rows: set[int] | None = None) -> np.ndarray:
    """Row indices of Dp: up to ``n1`` rows per source, uniform without replacement, seeded per source.

    Sources are taken in first-appearance order; rows of a source stay in dataset order.
    """
    if n1 < 1:
        raise OpenMathMixError(f"n1 must be >= 1, got {n1}")
    src = ds["source"]
    ids = ds["id"] if exclude_ids and "id" in ds.column_names else None
    wanted = None if sources is None else set(sources)
    by_source: dict[str, list[int]] = {}
    for i, s in enumerate(src):
        if wanted is not None and s not in wanted:
            continue
        if exclude_rows and i in exclude_rows:
            continue
        if ids is not None and ids[i] in exclude_ids:
            continue
        by_source.setdefault(s, []).append(i)
    if wanted is not None:
        missing = sorted(wanted - set(by_source))
        if missing:
            raise OpenMathMixError(f"prompt source(s) {missing} have no rows; known sources: {sorted(set(src))}")
    picked = []
    for s, rows in by_source.items():
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > n1:
            rows = np.sort(np.random.default_rng(_source_seed(seed, s)).choice(rows, size=n1, replace=False))
        picked.append(rows)
    return np.concatenate(picked) if picked else np.empty(0, dtype=np.int64)


# --------------------------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------------------------


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
    n1: int = DEFAULT_N1,
    n2: int = DEFAULT_N2,
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
    max_test_tokens: int = DEFAULT_MAX_TEST_TOKENS,
    max_example_tokens: int = DEFAULT_MAX_EXAMPLE_TOKENS,
    chunk_rows: int | None = None,
    chunk_tokens: int | None = None,
    cache_dir: str | None = None,
    batch_size: int = 4,
    shard_rows: int = 64,
    worker: tuple[int, int] | None = None,
    progress: bool = True,
    return_report: bool = False,
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
        raise OpenMathMixError(f"n2 must be >= 1, got {n2}")

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
            raise OpenMathMixError(f"test source(s) {unknown} are not in the dataset; it has {sorted(known)}")
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
        raise OpenMathMixError("the prompt set is empty: no rows left outside the test set")
    dp = ds.select(dp_idx)

    # zero-shot scores of Dt (same model and dtype as the one-shot pass), cached like any stage output
    from ..models import load_tokenizer

    spec = resolve(model, revision)
    tok = load_tokenizer(spec)  # tokenizer only: models load inside run_stage's workers (fork-safe with CUDA)
    tests = encode_tests(tok, test_rows["question"], test_rows["answer"], max_test_tokens)
    empty = [i for i, (_, a) in enumerate(tests) if not a]
    if empty:
        raise OpenMathMixError(f"{len(empty)} test sample(s) have no answer tokens after truncation to "
                               f"{max_test_tokens} tokens; raise max_test_tokens")
    devices = available_devices(device)
    zero_stage = ZeroShotStage(spec, dtype, max_test_tokens=max_test_tokens, chunk_rows=chunk_rows,
                               chunk_tokens=chunk_tokens)
    zero_rows = run_stage(test_rows.select_columns(["question", "answer"]), zero_stage, cache_dir=cache_dir,
                          batch_size=len(test_rows), shard_rows=len(test_rows), device=device, progress=progress)
    zero = np.asarray(zero_rows[ZERO_SHOT], dtype=np.float64)
    zero_seconds = zero_stage.report.seconds
    test_ids = list(test_rows["id"]) if "id" in test_rows.column_names else [str(i) for i in test_idx]
    test_key = _digest(json.dumps([test_ids, list(test_rows["question"]), list(test_rows["answer"]),
                                   max_test_tokens]))

    stage = OneShotStage(tests, zero.tolist(), spec, dtype, test_key=test_key,
                         max_example_tokens=max_example_tokens, chunk_rows=chunk_rows, chunk_tokens=chunk_tokens)
    logger.info("quality: %d prompt samples x %d tests on %s", len(dp), len(tests), ",".join(devices))
    scored = run_stage(dp, stage, cache_dir=cache_dir, batch_size=batch_size, shard_rows=shard_rows,
                       device=device, worker=worker, progress=progress)
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
