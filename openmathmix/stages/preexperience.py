"""The pre-experienced embedding model (paper, Section 3.1).

Before computing embeddings for k-center selection, the embedding model is fine-tuned briefly on a small seeded
random subset of the pool, so that its hidden states reflect in-domain data. `preexperience(...)` does this with
the transformers `Trainer`: causal-LM loss on the shared template (text.py), by default on answer tokens only,
then saves a regular model folder (weights + tokenizer + `preexperience.json`) that `EmbedStage(model=folder)`
loads like any other model.

Deterministic for a seed: the subset, the data order and the optimiser are all seeded, and nothing is random in
the forward pass (Llama-style models have no dropout by default).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..compat import fingerprint
from ..errors import ConfigError, SchemaError
from ..models import load_tokenizer, resolve
from ..outputs import check_output, output_folder
from ..settings import PreexperienceSettings
from ..text import TEMPLATE_VERSION, encode_qa_batch
from .base import check_columns

logger = logging.getLogger(__name__)

MARKER = "preexperience.json"


def preexperience(ds, out_dir: str | os.PathLike, *, model: str | None = None, revision: str | None = None,
                  settings: PreexperienceSettings | None = None, device: str | None = None,
                  progress: bool = True) -> str:
    """Fine-tune `model` briefly on a seeded subset of `ds` (`question`, `answer`) and save it to `out_dir`.

    Returns `out_dir` as a string: pass it as `EmbedStage(model=...)`. An existing `out_dir` is replaced only if it
    holds an earlier pre-experienced model (it has `preexperience.json`).
    """
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    settings = settings or PreexperienceSettings()
    check_columns(ds, ("question", "answer"), "preexperience")
    if len(ds) == 0:
        raise SchemaError("preexperience needs at least one row; --in holds an empty dataset")
    if settings.rows < 1 or settings.steps < 1:
        raise ConfigError(f"rows and steps must be positive, got {settings.rows} and {settings.steps}")
    local_model = [str(model)] if model is not None and os.path.exists(str(model)) else []
    out = check_output(out_dir, inputs=local_model, overwrite=True)  # before any training

    spec = resolve(model, revision)
    tokenizer = load_tokenizer(spec)
    rows = seeded_subset(len(ds), settings.rows, settings.seed)
    train = _tokenised(ds.select(rows), tokenizer, settings)

    use_cpu = device == "cpu" or not torch.cuda.is_available()
    bf16 = settings.bf16 if settings.bf16 is not None else (not use_cpu and torch.cuda.is_bf16_supported())
    net = AutoModelForCausalLM.from_pretrained(spec.path, revision=spec.revision, gguf_file=spec.gguf_file,
                                               dtype=torch.float32)  # fp32 master weights; bf16 only as autocast
    with tempfile.TemporaryDirectory(prefix="preexperience-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            max_steps=settings.steps,
            per_device_train_batch_size=settings.batch_size,
            gradient_accumulation_steps=settings.grad_accum,
            learning_rate=settings.learning_rate,
            lr_scheduler_type=settings.lr_scheduler,
            warmup_steps=settings.warmup_steps,
            weight_decay=settings.weight_decay,
            optim="adamw_torch",
            bf16=bf16,
            use_cpu=use_cpu,
            seed=settings.seed,
            data_seed=settings.seed,
            save_strategy="no",
            logging_steps=settings.logging_steps,
            report_to="none",
            disable_tqdm=not progress,
            dataloader_num_workers=0,
            remove_unused_columns=False,
        )
        trainer = Trainer(model=net, args=args, train_dataset=train, data_collator=_Collator(tokenizer.pad_token_id),
                          processing_class=tokenizer)
        result = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]

    with output_folder(out, overwrite=True) as tmp:
        net.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _write_record(tmp, spec, settings, rows, ds, result, losses)
    logger.info("pre-experienced model (%d rows, %d steps, loss %.4f) saved to %s", len(rows), settings.steps,
                result.training_loss, out)
    return str(out)


def _write_record(tmp: Path, spec, settings: PreexperienceSettings, rows, ds, result, losses) -> None:
    record = {
        "base_model": spec.key(),
        "template": TEMPLATE_VERSION,
        "settings": asdict(settings),
        "train_rows": len(rows),
        "data_fingerprint": fingerprint(ds),
        "train_loss": result.training_loss,
        "logged_losses": losses,
    }
    (tmp / MARKER).write_text(json.dumps(record, indent=2))


def seeded_subset(n: int, rows: int, seed: int) -> list[int]:
    """`min(rows, n)` distinct row indices drawn with a seeded generator, in increasing order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return sorted(rng.choice(n, size=min(rows, n), replace=False).tolist())


def _tokenised(ds, tokenizer, settings: PreexperienceSettings):
    from datasets import Dataset

    enc = encode_qa_batch(tokenizer, ds["question"], ds["answer"], settings.max_length)
    keep = [i for i, a in enumerate(enc.answer_ids) if a]  # an empty answer has no token to learn from
    if not keep:
        raise SchemaError("preexperience: every sampled row has an empty answer; check the answer column of --in")
    ids = [enc.prompt_ids[i] + enc.answer_ids[i] for i in keep]
    labels = [([-100] * len(enc.prompt_ids[i]) if settings.answer_only_loss else enc.prompt_ids[i])
              + enc.answer_ids[i] for i in keep]
    return Dataset.from_dict({"input_ids": ids, "labels": labels})


class _Collator:
    """Right-pads `input_ids` (pad id) and `labels` (-100) and builds the attention mask."""

    def __init__(self, pad_id: int | None):
        self.pad_id = pad_id if pad_id is not None else 0

    def __call__(self, features: list[dict]) -> dict:
        import torch

        from .embed import right_pad

        ids, mask = right_pad([f["input_ids"] for f in features], self.pad_id)
        labels, _ = right_pad([f["labels"] for f in features], -100)
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels),
                "attention_mask": torch.from_numpy(mask)}
