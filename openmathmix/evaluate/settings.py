"""Every default of `openmathmix evaluate` in one frozen dataclass (the CLI overlays its flags on it)."""

from __future__ import annotations

from dataclasses import dataclass

from ..select.kcenter import DEFAULT_INIT_SIZE
from ..select.strategies import STRATEGIES


@dataclass(frozen=True)
class EvaluateSettings:
    """Defaults of the strategy comparison; change one with ``dataclasses.replace(settings, budget=0.4)``."""

    # What is compared
    budget: float = 0.1  # share of the pool each strategy picks (the paper's smallest nested subset, ratio_10)
    strategies: tuple[str, ...] = tuple(STRATEGIES)  # qads, kcenter, score, random, length
    seeds: tuple[int, ...] = (0, 1)  # one run per strategy and seed: the seed draws s0 / the random order and
    #                                  seeds the proxy fine-tune; at least two, so every mean has a spread
    scope: str = "source"  # "source": each source ranked on its own and cut to ceil(budget * rows) (the paper's
    #                        per-dataset scope, equal composition for all strategies); "pool": one ranking of the
    #                        whole pool cut to ceil(budget * rows) (composition differs by strategy)
    init_size: int = DEFAULT_INIT_SIZE  # |s0| of qads / kcenter per scope (the paper's 100)

    # Selection metrics (no training)
    near_duplicate_cosine: float = 0.95  # two subset rows are near-duplicates when their embeddings' cosine exceeds it
    distance_block: int = 1 << 22  # most float32 entries of one distance / similarity block (16 MiB); exact either way

    # Proxy fine-tune (--train)
    model: str | None = None  # proxy model: Hub id or folder; None = the embedded SmolLM2-135M-Instruct
    epochs: float = 1.0  # passes over the subset (same for all strategies: equal subset sizes give equal steps)
    max_steps: int | None = None  # fixed optimizer steps instead of epochs (None: use epochs)
    batch_size: int = 8  # rows per device batch
    grad_accum: int = 1  # batches per optimizer step
    learning_rate: float = 2e-5  # AdamW, linear decay (TRL's SFT default; fidelity.md's first fine-tune)
    warmup_ratio: float = 0.0  # share of the steps with a linear learning-rate warm-up
    max_length: int = 512  # tokens per training row (prompt + answer); longer rows lose the end of the answer
    lora: bool = False  # train LoRA adapters (peft) instead of every weight
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scaling numerator (alpha / r scales the update)
    lora_dropout: float = 0.05  # dropout on the LoRA branch
    dtype: str = "auto"  # "auto": bf16 autocast on GPUs and on CPUs with native bf16, else fp32; or float32/bfloat16

    # Benchmarks
    benchmark_limit: int | None = 200  # first N items of each benchmark (None: all)
    max_eval_tokens: int = 1024  # prompt + reference solution tokens scored per item (longer ones are cut)
    accuracy: str = "auto"  # greedy-decoding accuracy with math-verify: "auto" (on a GPU only), "on", "off"
    max_new_tokens: int = 512  # generation budget per item for the accuracy
    generation_batch: int = 16  # items per generate() call
