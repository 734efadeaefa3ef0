"""The proxy model: fine-tune it on a subset (TRL's ``SFTTrainer``) and measure it on benchmark items.

Training rows use the package's one prompt template (:mod:`openmathmix.text`) as a prompt-completion dataset:
``prompt = "Question: {q}\\nAnswer:"``, ``completion = " {answer}"`` (TRL appends the EOS token), with the loss on
the completion tokens only (``completion_only_loss=True``). Every run starts from the same weights and uses the
same seed for its data order and optimiser, so runs differ only by their rows.

Measures on benchmark items (question + reference solution):

* log-likelihood: the mean log-probability per token of the reference solution given the question, in the same
  template, averaged over items (:class:`openmathmix.stages.quality.AnswerLogProbs`, float32 log-softmax). Works on
  any device; higher is better.
* accuracy: greedy decoding of an answer for each question, checked against the reference's final answer with
  ``math_verify`` (a GSM8K-style ``#### N`` line is used when present). Slow on a CPU, so by default only on a GPU.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelError
from ..settings import EvaluateSettings
from ..text import ANSWER_LEAD, format_prompt

__all__ = ["STOP", "Benchmark", "accuracy", "final_answer", "fine_tune", "loglik", "train_precision"]

logger = logging.getLogger(__name__)
STOP = "\nQuestion:"  # where a generated answer ends if the model goes on with a new question


@dataclass(frozen=True)
class Benchmark:
    """Benchmark items: questions, reference solutions, and the final answers the accuracy checks against."""

    name: str
    origin: str
    questions: tuple[str, ...]
    solutions: tuple[str, ...]
    finals: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.questions)


def final_answer(solution: str) -> str:
    """The part of a reference solution to verify against: the text after the last ``####`` when there is one."""
    return solution.rsplit("####", 1)[1].strip() if "####" in solution else solution


def train_precision(device: str, dtype: str) -> bool:
    """True when training runs with bf16 autocast: ``dtype`` bfloat16, or "auto" on a bf16 GPU / native-bf16 CPU."""
    import torch

    from ..models import pick_dtype

    return pick_dtype(device, dtype) == torch.bfloat16


def _require(package: str, extra: str = "evaluate") -> None:
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise MissingDependencyError(
            f"`openmathmix evaluate --train` needs the package {package!r}: pip install 'openmathmix[{extra}]' "
            f"(or pip install {package})"
        )


def fine_tune(base: Any, tokenizer: Any, questions: list[str], answers: list[str], *, seed: int,
              settings: EvaluateSettings, device: str) -> tuple[Any, dict[str, Any]]:
    """A copy of ``base`` (float32 weights, on ``device``) fine-tuned on the rows; returns ``(model, info)``.

    ``base`` itself is never changed. The returned model is in eval mode, in ``settings.dtype`` for scoring.
    ``info`` holds the optimizer steps, the mean training loss and the rows trained on.
    """
    _require("trl")
    from datasets import Dataset
    from transformers import PrinterCallback, ProgressCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from ..models import pick_dtype
    from ..stages.base import progress_bars_off

    if not questions:
        raise ModelError("fine_tune needs at least one row")
    model = copy.deepcopy(base)  # load_model caches its models: never train the shared one
    rows = Dataset.from_dict({"prompt": [format_prompt(q) for q in questions],
                              "completion": [ANSWER_LEAD + a for a in answers]})
    peft_config = None
    if settings.lora:
        _require("peft")
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha,
                                 lora_dropout=settings.lora_dropout, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory(prefix="openmathmix-proxy-") as scratch, progress_bars_off():
        args = SFTConfig(
            output_dir=scratch,
            seed=seed,
            data_seed=seed,
            num_train_epochs=settings.epochs,
            max_steps=settings.max_steps if settings.max_steps is not None else -1,
            per_device_train_batch_size=settings.batch_size,
            gradient_accumulation_steps=settings.grad_accum,
            learning_rate=settings.learning_rate,
            warmup_steps=settings.warmup_ratio,  # a float below 1 is a share of the steps
            lr_scheduler_type="linear",
            max_length=settings.max_length,
            completion_only_loss=True,
            bf16=train_precision(device, settings.dtype),
            use_cpu=not str(device).startswith("cuda"),
            activation_checkpointing=False,  # small proxies: recomputing activations costs more than it saves
            save_strategy="no",
            report_to="none",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        set_seed(seed)  # LoRA weights are drawn when the trainer wraps the model, before it seeds anything itself
        trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer,
                             peft_config=peft_config)
        for callback in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(callback)
        result = trainer.train()
        trained = trainer.model
    if settings.lora:
        trained = trained.merge_and_unload()
    trained = trained.to(pick_dtype(device, settings.dtype)).eval()
    lengths = [len(ids) for ids in tokenizer([p + c for p, c in zip(rows["prompt"], rows["completion"])])["input_ids"]]
    info = {"steps": int(result.global_step), "train_loss": float(result.training_loss), "rows": len(questions),
            "rows_truncated": sum(n + 1 > settings.max_length for n in lengths)}  # + 1: the EOS TRL appends
    if not np.isfinite(info["train_loss"]):
        raise ModelError(f"the proxy fine-tune diverged (mean loss {info['train_loss']}); lower the learning rate")
    return trained, info


def loglik(model: Any, tokenizer: Any, bench: Benchmark, *, settings: EvaluateSettings,
           device: str) -> tuple[np.ndarray, int]:
    """Mean log-probability per token of each reference solution given its question (float64, one per item), and
    how many items were cut to ``settings.max_eval_tokens`` (the end of their solution is not scored)."""
    from ..stages.quality import lead_ids, make_scorer
    from ..text import encode_qa_batch

    scorer = make_scorer(model, tokenizer, device)
    enc = encode_qa_batch(tokenizer, list(bench.questions), list(bench.solutions), settings.max_eval_tokens,
                          add_special_tokens=False)
    tests = list(zip(enc.prompt_ids, enc.answer_ids))
    return scorer.score(lead_ids(tokenizer), scorer.prepare(tests)), sum(enc.truncated)


def accuracy(model: Any, tokenizer: Any, bench: Benchmark, *, settings: EvaluateSettings,
             device: str) -> dict[str, Any]:
    """Greedy-decoding accuracy checked with math_verify: ``{"accuracy", "correct", "checked", "unparsed_gold"}``.

    Items whose reference final answer math_verify cannot parse are not checked and are counted in
    ``unparsed_gold``; the accuracy is over the checked items.
    """
    _require("math_verify", extra="evaluate")
    import torch
    from math_verify import parse, verify

    tokenizer = copy.copy(tokenizer)
    tokenizer.padding_side = "left"
    correct = checked = unparsed = 0
    with torch.inference_mode():
        for a in range(0, len(bench), settings.generation_batch):
            prompts = [format_prompt(q) for q in bench.questions[a : a + settings.generation_batch]]
            enc = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
            out = model.generate(**enc, max_new_tokens=settings.max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for text, final in zip(texts, bench.finals[a : a + settings.generation_batch]):
                gold = parse(final)
                if not gold:
                    unparsed += 1
                    continue
                checked += 1
                correct += bool(verify(gold, parse(final_answer(text.split(STOP, 1)[0]))))
    return {"accuracy": correct / checked if checked else None, "correct": correct, "checked": checked,
            "unparsed_gold": unparsed}
