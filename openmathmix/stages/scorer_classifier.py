"""The classifier scorer (the paper's): a 5-label sequence classifier fine-tuned on a causal-LM backbone.

``AutoModelForSequenceClassification`` (the last non-pad token's hidden state) on ``text.format_qa(question,
answer)``, fine-tuned with the transformers ``Trainer`` (paper recipe: lr 2e-5, cosine schedule, 3 % warm-up,
2 epochs, Appendix A) on the 1-5 labels; its score is the expected label.

Early stopping: a seeded ``validation`` share of the rows each fine-tune trains on is kept out of its gradient
steps; the validation cross-entropy is measured ``evals_per_epoch`` times per epoch, training stops after
``patience`` evaluations without improvement, and the checkpoint with the lowest validation loss is kept.

The Pearson figure follows :func:`.scorer_result.evaluation_plan`: on a held-out set of at least 300 rows (one
fine-tune), or by k-fold cross-validation (k fine-tunes, each scoring its left-out fold, then one on all rows, which
is the scorer saved).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset

from ..errors import ModelError, OpenMathMixError
from ..schema import QS
from .scorer_fit import LABELS, expected_score, kfold, qs_to_label
from .scorer_result import (
    ScorerResult,
    evaluation_plan,
    heldout_split,
    label_counts,
    method_text,
    record_evaluation,
    training_rows,
    write_scorer_files,
)

BINNING = "equal-width: 1 + min(4, floor(5 * qs))"


@dataclass(frozen=True)
class FineTune:
    """Settings of one fine-tune (shared by the CV folds and the final model)."""

    epochs: float = 2
    learning_rate: float = 2e-5
    batch_size: int = 8
    grad_accum: int = 1
    warmup: float = 0.03
    weight_decay: float = 0.0
    validation: float = 0.1
    evals_per_epoch: int = 4
    patience: int = 3
    use_cpu: bool = True
    bf16: bool = False
    progress: bool = True


def train_classifier_scorer(
    scored: Dataset,
    out_dir: str | os.PathLike,
    *,
    model: str | None = None,
    revision: str | None = None,
    epochs: float = 2,
    learning_rate: float = 2e-5,
    batch_size: int = 8,
    grad_accum: int = 1,
    warmup: float = 0.03,
    weight_decay: float = 0.0,
    max_length: int = 512,
    validation: float = 0.1,
    evals_per_epoch: int = 4,
    patience: int = 3,
    folds: int = 5,
    heldout: float | None = 0.1,
    seed: int = 0,
    task: str | None = None,
    device: str | None = None,
    bf16: bool | None = None,
    progress: bool = True,
) -> ScorerResult:
    """Fine-tune, evaluate and save the classifier scorer of ``scored`` (rows with question, answer, ``qs``).

    The global batch is ``batch_size * grad_accum``; ``bf16`` None = mixed bf16 on GPUs that support it, fp32
    elsewhere. ``validation`` / ``evals_per_epoch`` / ``patience``: early stopping (module docstring);
    ``heldout`` / ``folds``: how r is measured (:func:`.scorer_result.evaluation_plan`).
    """
    import torch

    from ..models import load_tokenizer, resolve
    from ..text import encode_qa_batch

    if not 0.0 <= validation < 1.0:
        raise OpenMathMixError(f"validation share must be in [0, 1), got {validation}")
    t0 = time.perf_counter()
    scored = training_rows(scored, task, ("question", "answer"))
    spec = resolve(model, revision)
    tok = load_tokenizer(spec)
    ids = encode_qa_batch(tok, list(scored["question"]), list(scored["answer"]), max_length).input_ids()
    qs = np.asarray(scored[QS], dtype=np.float64)
    labels = qs_to_label(qs)
    sources = list(scored["source"]) if "source" in scored.column_names else None
    use_cpu = not torch.cuda.is_available() or (device is not None and str(device).startswith("cpu"))
    if bf16 is None:
        bf16 = not use_cpu and torch.cuda.is_bf16_supported()
    ft = FineTune(epochs, learning_rate, batch_size, grad_accum, warmup, weight_decay, validation, evals_per_epoch,
                  patience, use_cpu, bool(bf16), progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan, size = evaluation_plan(len(qs), heldout, folds)

    def tune(rows: np.ndarray, run_seed: int):
        return _fine_tune(spec, tok, [ids[i] for i in rows], labels[rows], ft, run_seed, out)

    if plan == "heldout":
        fit_rows, eval_rows = heldout_split(len(qs), size, seed)
        clf, stops = tune(fit_rows, seed)
        scores = classifier_scores(clf, tok, [ids[i] for i in eval_rows])
        stops = [stops]
    else:
        fit_rows = eval_rows = np.arange(len(qs))
        scores, stops = np.full(len(qs), np.nan), []
        for f, test in enumerate(kfold(len(qs), size, seed)):
            fold_model, stop = tune(np.setdiff1d(fit_rows, test, assume_unique=True), seed + 1 + f)
            scores[test] = classifier_scores(fold_model, tok, [ids[i] for i in test])
            stops.append(stop)
            del fold_model
        clf, final_stop = tune(fit_rows, seed)
        stops.append(final_stop)

    clf.save_pretrained(out)
    tok.save_pretrained(out)
    result = ScorerResult(str(out), "classifier", task, len(fit_rows), label_counts(labels[fit_rows]),
                          method=method_text(plan, size), model=f"classifier on {spec.name}", target="label",
                          why="fine-tuned 5-label classifier (the paper's scorer), best validation-loss checkpoint"
                          + ("; r from one fine-tune per fold, the saved one fine-tuned on all rows"
                             if plan == "cv" else ""))
    eval_sources = None if sources is None else [sources[i] for i in eval_rows]
    record_evaluation(result, scores, qs[eval_rows], eval_sources, seed=seed)
    result.seconds = time.perf_counter() - t0
    info = {
        "kind": "classifier", "labels": list(LABELS), "binning": BINNING, "target": "label",
        "score": "expected label sum_j p_j * j", "base_model": spec.key(), "max_length": max_length,
        "epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size, "grad_accum": grad_accum,
        "warmup": warmup, "weight_decay": weight_decay, "validation": validation,
        "evals_per_epoch": evals_per_epoch, "patience": patience, "folds": folds, "heldout": heldout, "seed": seed,
        "task": task, "bf16": bool(bf16), "template": _template_version(), "early_stopping": stops,
    }
    write_scorer_files(out, info, result, scores, qs[eval_rows], eval_sources)
    return result


def _fine_tune(spec, tok, ids: list[list[int]], labels: np.ndarray, ft: FineTune, seed: int, out: Path):
    """One seeded fine-tune with early stopping on a validation share; (model in eval mode, stop record)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    n = len(ids)
    n_val = max(1, round(n * ft.validation)) if ft.validation > 0 and n >= 5 else 0
    train_rows, val_rows = heldout_split(n, n_val, seed)

    def rows(which):
        return Dataset.from_dict({"input_ids": [ids[i] for i in which], "labels": (labels[which] - 1).tolist()})

    set_seed(seed)  # the new classification head is initialised while loading, before the Trainer seeds anything
    try:
        clf = AutoModelForSequenceClassification.from_pretrained(
            spec.path, revision=spec.revision, gguf_file=spec.gguf_file, num_labels=len(LABELS),
            id2label={i: str(lab) for i, lab in enumerate(LABELS)},
            label2id={str(lab): i for i, lab in enumerate(LABELS)},
            dtype=torch.float32,
        )
    except OSError as err:
        raise ModelError(f"could not load {spec.name!r} as a sequence classifier: {err}") from err
    clf.config.pad_token_id = tok.pad_token_id  # the classifier pools the last non-pad token

    steps_per_epoch = max(1, math.ceil(len(train_rows) / (ft.batch_size * ft.grad_accum)))
    every = max(1, steps_per_epoch // max(1, ft.evals_per_epoch))
    early = len(val_rows) > 0
    with tempfile.TemporaryDirectory(prefix=".checkpoints-", dir=out) as tmp:
        schedule = {"save_strategy": "no"}
        if early:  # evaluate and save together; keep the lowest validation loss
            schedule = {"eval_strategy": "steps", "eval_steps": every, "save_strategy": "steps", "save_steps": every,
                        "load_best_model_at_end": True, "metric_for_best_model": "eval_loss",
                        "greater_is_better": False, "save_total_limit": 1, "save_only_model": True}
        args = TrainingArguments(
            output_dir=tmp, num_train_epochs=ft.epochs, per_device_train_batch_size=ft.batch_size,
            per_device_eval_batch_size=ft.batch_size, gradient_accumulation_steps=ft.grad_accum,
            learning_rate=ft.learning_rate, lr_scheduler_type="cosine", warmup_steps=ft.warmup,
            weight_decay=ft.weight_decay, seed=seed, data_seed=seed, report_to="none", logging_steps=10,
            disable_tqdm=not ft.progress, use_cpu=ft.use_cpu, bf16=ft.bf16, dataloader_num_workers=0,
            remove_unused_columns=False, **schedule,
        )
        trainer = Trainer(model=clf, args=args, train_dataset=rows(train_rows),
                          eval_dataset=rows(val_rows) if early else None, data_collator=DataCollatorWithPadding(tok),
                          processing_class=tok,
                          callbacks=[EarlyStoppingCallback(early_stopping_patience=ft.patience)] if early else None)
        trainer.train()
        state = trainer.state
        stop = {"train_rows": len(train_rows), "validation_rows": len(val_rows), "steps": state.global_step,
                "max_steps": state.max_steps, "best_step": _step_of(state.best_model_checkpoint),
                "best_validation_loss": state.best_metric,
                "validation_losses": [h["eval_loss"] for h in state.log_history if "eval_loss" in h]}
    return trainer.model.eval(), stop


def _step_of(checkpoint: str | None) -> int | None:
    return None if not checkpoint else int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _template_version():
    from .. import text

    return text.TEMPLATE_VERSION


def classifier_scores(model, tokenizer, ids: list[list[int]], rows_per_forward: int = 16) -> np.ndarray:
    """Expected label of each tokenised row under a sequence classifier; length-sorted, right-padded batches."""
    import torch

    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    probs = np.zeros((len(ids), len(LABELS)), dtype=np.float64)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model_device = next(model.parameters()).device
    with torch.inference_mode():
        for s in range(0, len(order), rows_per_forward):
            rows = order[s : s + rows_per_forward]
            width = len(ids[rows[0]])
            batch = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for b, i in enumerate(rows):
                batch[b, : len(ids[i])] = torch.tensor(ids[i])
                mask[b, : len(ids[i])] = 1
            logits = model(input_ids=batch.to(model_device), attention_mask=mask.to(model_device)).logits
            probs[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return expected_score(probs)
