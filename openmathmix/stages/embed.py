"""Embedding stage: the mean-pooled last hidden state of each row, rendered with the shared template (text.py).

How a map batch is run:
1. rows are tokenised with `encode_qa_batch` (prompt + answer ids); rows longer than `max_length` (default: the
   model's position limit) are cut and counted (`stage.report.totals["truncated"]` after `run_stage`);
2. rows are sorted by length, longest first, and cut into forward batches of at most `token_budget` tokens
   counting padding (rows x longest row), so padding stays small and memory stays bounded. A map batch is only a
   slice of a shard, so the stage also offers `sort_key(batch)` (token counts): a runner that feeds a whole shard
   longest first (`engines.shards.run_shard`) gives every map batch rows of similar length; on a mixed real pool
   that cut padding from 21 % of the tokens computed to under 2 % (bench/bench_embed.py --pool mixed);
3. each forward batch runs the headless backbone (`AutoModel`: no LM head, no vocabulary logits) under
   `torch.inference_mode()`, right-padded with an attention mask (position ids 0..n-1 for every row), and the
   last hidden state is averaged over real tokens in float32, whatever dtype the model runs in;
4. vectors go back to the original row order; an optional seeded Gaussian projection (`project_dim`) shrinks them
   before they are written, so a large model's 4096-d states need not be stored.

`project_embeddings(ds, dim, seed, method=...)` projects an existing `embedding` column afterwards: "gaussian"
(the same matrix as the in-stage projection) or "pca" (fitted on a seeded sample of rows).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from ..errors import OpenMathMixError, SchemaError
from ..models import ModelSpec, dtype_key, load_model, load_tokenizer, pick_dtype, resolve
from ..schema import EMBEDDING
from ..text import TEMPLATE_VERSION, encode_qa_batch
from .base import Stage

logger = logging.getLogger(__name__)

# Tokens (padding included) per forward batch when none is given. On this project's CPUs throughput is flat from
# ~1K to ~4K tokens per batch and drops past 8K, and smaller batches pad less (bench/bench_embed.py); GPUs want
# large matrix products (16-32K tokens per step keeps the weight reads ~1% of the time).
CPU_TOKEN_BUDGET = 2048
GPU_TOKEN_BUDGET = 32768
MAX_ROWS_PER_FORWARD = 512


def default_token_budget(device: str) -> int:
    return GPU_TOKEN_BUDGET if device.startswith("cuda") else CPU_TOKEN_BUDGET


class EmbedStage(Stage):
    """Adds `embedding` (float32 list) to rows with `question` and `answer`.

    model / revision: a Hub id, a local folder (e.g. a pre-experienced model) or the embedded default.
    dtype: "auto" (bf16 on GPUs and CPUs with native bf16, else fp32), "float32", "bfloat16", "float16".
    token_budget: padded tokens per forward batch (rows x longest row); default `default_token_budget(device)`.
    max_length: tokens kept per row (default: the model's position limit); longer rows are cut and counted.
    project_dim / project_seed: store a seeded Gaussian random projection to `project_dim` dimensions instead of
    the hidden size (`gaussian_projection` gives the matrix).
    """

    name = "embed"
    requires = ("question", "answer")
    produces = (EMBEDDING,)

    def __init__(self, model: str | None = None, revision: str | None = None, *, dtype: str = "auto",
                 token_budget: int | None = None, max_length: int | None = None,
                 project_dim: int | None = None, project_seed: int = 0):
        if token_budget is not None and token_budget < 1:
            raise OpenMathMixError(f"token_budget must be positive, got {token_budget}")
        if max_length is not None and max_length < 2:
            raise OpenMathMixError(f"max_length must be at least 2, got {max_length}")
        if project_dim is not None and project_dim < 1:
            raise OpenMathMixError(f"project_dim must be positive, got {project_dim}")
        self.spec: ModelSpec = resolve(model, revision)
        self.dtype = dtype
        self.token_budget = token_budget
        self.max_length = max_length
        self.project_dim = project_dim
        self.project_seed = project_seed
        self._hidden_size: int | None = None
        self._runtime: dict[str, Any] = {}  # model, tokenizer, limit, projection: never pickled, never hashed
        self._key_tokenizer = None  # the tokenizer alone, for sort_key before setup (never pickled)

    # ----- Stage contract -------------------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            **self.spec.key(),
            "dtype": dtype_key(self.dtype),  # "auto" also records whether this CPU has bf16
            "max_length": self.max_length,
            "template": TEMPLATE_VERSION,
            "pooling": "mean-last-hidden-fp32",
            "projection": None if self.project_dim is None else
            {"method": "gaussian", "dim": self.project_dim, "seed": self.project_seed},
        }

    def setup(self, device: str) -> None:
        model, tokenizer = load_model(self.spec, head="backbone", device=device, dtype=self.dtype)
        self.attach(model, tokenizer, device)
        logger.info("embed: %s on %s in %s, hidden %d, max length %s", self.spec.name, device,
                    pick_dtype(device, self.dtype), self._hidden_size, self._runtime["limit"])

    def attach(self, model, tokenizer, device: str) -> None:
        """Use an already loaded headless model (e.g. `causal_lm.model`) instead of loading `self.spec`: for
        benchmarks and callers that share one forward pass. `run_stage` caches by `config()`, which still names
        `self.spec`, so only attach the model that spec names."""
        import torch

        limit = _position_limit(model.config)
        if self.max_length is not None:
            limit = min(limit, self.max_length) if limit else self.max_length
        hidden = model.config.hidden_size
        projection = None
        if self.project_dim is not None:
            projection = torch.from_numpy(gaussian_projection(hidden, self.project_dim, self.project_seed)).to(device)
        self._runtime = {"model": model, "tokenizer": tokenizer, "limit": limit, "projection": projection,
                         "device": device, "token_budget": self.token_budget or default_token_budget(device)}
        self._hidden_size = hidden

    def dim(self) -> int:
        """Length of the stored vectors (reads the model config; does not load weights)."""
        if self.project_dim is not None:
            return self.project_dim
        if self._hidden_size is None:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(self.spec.path, revision=self.spec.revision,
                                                gguf_file=self.spec.gguf_file)
            self._hidden_size = getattr(config, "hidden_size", None) or config.get_text_config().hidden_size
        return self._hidden_size

    def features(self):
        from datasets import Features, List, Value

        return Features({EMBEDDING: List(Value("float32"), length=self.dim())})

    def sort_key(self, batch: dict[str, list]) -> list[int]:
        """Tokens of each row (cut at the length limit once set up): the order key runners use to feed a whole
        shard longest first. Works before `setup` (loads the tokenizer only, no weights). Once set up, the
        encodings are kept until the next call, so `process_batch` on rows of this shard does not tokenise them
        again (for a small model, tokenising is a large share of the work)."""
        tokenizer = self._runtime.get("tokenizer")
        if tokenizer is None:
            if self._key_tokenizer is None:
                self._key_tokenizer = load_tokenizer(self.spec)
            tokenizer = self._key_tokenizer
        limit = self._runtime.get("limit", self.max_length)
        enc = encode_qa_batch(tokenizer, batch["question"], batch["answer"], limit)
        ids = enc.input_ids()
        if self._runtime:
            self._runtime["encoded"] = dict(zip(zip(batch["question"], batch["answer"]), zip(ids, enc.truncated)))
        return [len(x) for x in ids]

    def process_batch(self, batch: dict[str, list], device: str) -> dict[str, list]:
        ids, truncated = self._encode(batch["question"], batch["answer"])
        vectors = self.embed_ids(ids)
        self.count("rows", len(vectors))
        self.count("truncated", sum(truncated))
        return {EMBEDDING: list(vectors)}

    def _encode(self, questions: list[str], answers: list[str]) -> tuple[list[list[int]], list[bool]]:
        """(token ids, truncated flags) of the rows: from `sort_key`'s encodings when it saw every row, else by
        tokenising (same tokenizer, same limit, so the same ids)."""
        rt = self._runtime
        known = rt.get("encoded") or {}
        hits = [known.get(pair) for pair in zip(questions, answers)]
        if hits and all(hit is not None for hit in hits):
            return [hit[0] for hit in hits], [hit[1] for hit in hits]
        enc = encode_qa_batch(rt["tokenizer"], questions, answers, rt["limit"])
        return enc.input_ids(), enc.truncated

    # ----- the work -------------------------------------------------------------------------------------------------

    def embed_ids(self, ids: list[list[int]]) -> np.ndarray:
        """Mean-pooled (and projected) vectors of token-id rows, in the given order; float32 [len(ids), dim]."""
        import torch

        rt = self._runtime
        if not rt:
            raise OpenMathMixError("EmbedStage.setup(device) must run before embed_ids")
        model, device = rt["model"], rt["device"]
        pad_id = rt["tokenizer"].pad_token_id or 0
        out = np.empty((len(ids), self.project_dim or model.config.hidden_size), dtype=np.float32)
        start = time.perf_counter()
        for group in token_budget_batches([len(x) for x in ids], rt["token_budget"]):
            padded, mask_np = right_pad([ids[i] for i in group], pad_id)
            input_ids, mask = torch.from_numpy(padded).to(device), torch.from_numpy(mask_np).to(device)
            with torch.inference_mode():
                hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                pooled = masked_mean(hidden, mask)
                if rt["projection"] is not None:
                    pooled = pooled @ rt["projection"]
            out[group] = pooled.cpu().numpy()
            self.count("tokens", int(mask_np.sum()))
            self.count("padded_tokens", mask_np.size)
            self.count("forward_batches")
        self.count("forward_seconds", time.perf_counter() - start)  # the copy to the CPU above waits for the GPU
        return out

    def __getstate__(self):  # datasets pickles the stage into worker processes: never the loaded model
        state = self.__dict__.copy()
        state["_runtime"] = {}
        state["_key_tokenizer"] = None
        state.pop("_ready_on", None)
        return state


def token_budget_batches(lengths: list[int], token_budget: int,
                         max_rows: int = MAX_ROWS_PER_FORWARD) -> list[list[int]]:
    """Row indices grouped for forward passes: longest first, each group's rows x longest row <= `token_budget`
    (a row longer than the budget goes alone). Sorting is stable, so equal lengths keep their order."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups, start = [], 0
    while start < len(order):
        width = max(lengths[order[start]], 1)
        size = max(1, min(max_rows, token_budget // width))
        groups.append(order[start:start + size])
        start += size
    return groups


def right_pad(seqs: list[list[int]], pad_value: int) -> tuple[np.ndarray, np.ndarray]:
    """int64 [len(seqs), longest] ids padded on the right with `pad_value`, and the 0/1 attention mask."""
    width = max((len(x) for x in seqs), default=0)
    ids = np.full((len(seqs), width), pad_value, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


def masked_mean(hidden, mask):
    """Mean of `hidden` [B, S, H] over positions where `mask` [B, S] is 1, accumulated in float32 -> [B, H].

    One [B, 1, S] x [B, S, H] product in float32 (the upcast copies only the last layer's output)."""
    import torch

    weights = mask.to(device=hidden.device, dtype=torch.float32).unsqueeze(1)
    summed = weights.bmm(hidden.float()).squeeze(1)
    return summed / weights.sum(dim=-1).clamp(min=1)


def _position_limit(config) -> int | None:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(text, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def gaussian_projection(in_dim: int, out_dim: int, seed: int = 0) -> np.ndarray:
    """A seeded Gaussian random matrix [in_dim, out_dim] with entries N(0, 1/out_dim): squared distances are kept
    in expectation (Johnson-Lindenstrauss). The same (in_dim, out_dim, seed) always gives the same matrix."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return (rng.standard_normal((in_dim, out_dim)) / math.sqrt(out_dim)).astype(np.float32)


def project_embeddings(ds, dim: int, seed: int = 0, *, method: str = "gaussian", sample_rows: int = 20000,
                       column: str = EMBEDDING, batch_size: int = 4096):
    """Replace `column` by a `dim`-dimensional projection; deterministic for (data, dim, seed, method).

    - "gaussian": `x @ gaussian_projection(d, dim, seed)` (same as `EmbedStage(project_dim=dim, project_seed=seed)`);
    - "pca": centre on the mean of a seeded random sample of `sample_rows` rows and keep the top `dim` principal
      directions of that sample (float64 SVD; each direction's sign is fixed so its largest entry is positive).
    """
    from datasets import List, Value

    if column not in ds.column_names:
        from .base import check_columns

        check_columns(ds, (column,), "project_embeddings")
    d = len(ds[0][column]) if len(ds) else 0
    if not 1 <= dim <= max(d, 1):
        raise SchemaError(f"cannot project {d}-dimensional embeddings to {dim} dimensions")
    if method == "gaussian":
        matrix, mean = gaussian_projection(d, dim, seed), np.zeros(d, dtype=np.float32)
    elif method == "pca":
        rng = np.random.Generator(np.random.PCG64(seed))
        rows = np.sort(rng.choice(len(ds), size=min(sample_rows, len(ds)), replace=False))
        sample = np.asarray(ds.select(rows).with_format("numpy")[column][:], dtype=np.float64)
        mean64 = sample.mean(axis=0)
        _, _, vt = np.linalg.svd(sample - mean64, full_matrices=False)
        if vt.shape[0] < dim:
            raise SchemaError(f"PCA on {len(rows)} sampled rows gives at most {vt.shape[0]} dimensions, not {dim}")
        comps = vt[:dim]
        signs = np.sign(comps[np.arange(dim), np.abs(comps).argmax(axis=1)])
        matrix = (comps * signs[:, None]).T.astype(np.float32)
        mean = mean64.astype(np.float32)
    else:
        raise OpenMathMixError(f"unknown projection method {method!r}; use 'gaussian' or 'pca'")

    def apply(batch):
        x = np.asarray(batch[column], dtype=np.float32)
        return {column: (x - mean) @ matrix}

    features = ds.features.copy()
    features[column] = List(Value("float32"), length=dim)
    return ds.with_format(None).map(apply, batched=True, batch_size=batch_size, features=features,
                                    desc=f"project {column} to {dim} ({method})")
