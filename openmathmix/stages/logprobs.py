"""Mean log-probability of answer tokens under a causal LM, with and without a shared prefix (Eq. 1 and 2).

The engine behind the one-shot quality score (`stages.quality`): the test suffixes are tokenised and packed once
into length-sorted, right-padded chunks; each prefix (an in-context example) runs through the model once and its
KV cache is broadcast over every chunk; only the positions that predict answer tokens reach the LM head. The plain
per-pair computation (`AnswerLogProbs.plain`) is the reference the tests compare against.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..settings import QualitySettings

logger = logging.getLogger(__name__)

__all__ = ["AnswerLogProbs", "encode_example", "encode_test", "encode_tests", "lead_ids", "make_scorer",
           "quality_from_scores"]

DEFAULT_MAX_TEST_TOKENS = QualitySettings.max_test_tokens
DEFAULT_MAX_EXAMPLE_TOKENS = QualitySettings.max_example_tokens


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
            raise ConfigError("chunk_rows, chunk_tokens and logit_rows must be positive")
        if not 0.0 <= max_padding < 1.0:
            raise ConfigError(f"max_padding must be in [0, 1), got {max_padding}")
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
                raise ConfigError(f"test sample {i} needs at least one prompt token and one answer token")
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
        kwargs = {"input_ids": chunk.input_ids, "attention_mask": mask, "position_ids": position_ids, "cache": cache,
                      "use_cache": cache is not None}
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
            raise ConfigError("plain(): need at least one token before the answer and one answer token")
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
        raise ConfigError(f"one-shot scores {oneshot.shape} do not match {zero_shot.shape[0]} zero-shot scores")
    return (oneshot > zero_shot[None, :]).sum(axis=1) / zero_shot.shape[0]


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
