"""Quality scorer (paper Section 3.2 "Quality Scorer", 5.3): scored sample -> trained scorer -> `quality_score`.

The one-shot QS of Eq. 3 costs n2 forwards per row, so only a sample is scored (:mod:`.quality`); a scorer trained on
that sample then rates every row with one forward.

Labels: equal-width binning of QS
---------------------------------
``label = 1 + min(4, floor(5 * QS))``, i.e. QS in [0, .2) -> 1, [.2, .4) -> 2, [.4, .6) -> 3, [.6, .8) -> 4 and
[.8, 1] -> 5 (a QS of exactly 1 joins label 5). The floor is taken after adding 1e-9, so a QS that is a bin edge up
to float rounding (3/5 stored as 0.6000000000000001 or 0.5999999999999999) lands in the upper bin, as exact
arithmetic says.

Why equal width and not quantiles: QS has an absolute meaning (the fraction of test samples an example helps), and
Eq. 4 multiplies the scorer's output into the K-center distance, so the 1-5 scale must mean the same thing for every
dataset, for the reasoning and the general scorer, and from one run to the next. Quantile bins would force 20 % of
every scored sample into each label, however good or bad the sample is, and would move the bin edges with the
sample. Equal width keeps label 5 (the paper's QS_max) for examples that help at least 80 % of the tests.

A scorer's output is the *expected label* under its softmax, ``sum_j p_j * j`` for j = 1..5, a float in [1, 5]
(finer than the arg-max label, and what QaDS multiplies into the distance).

Two kinds of scorer
-------------------
* ``classifier``: a sequence-classification model on a causal-LM backbone (``AutoModelForSequenceClassification``,
  5 labels, the last non-pad token's hidden state), fine-tuned with the transformers ``Trainer`` for 2 epochs (as
  Appendix A), seeded; input text is ``text.format_qa(question, answer)``. Saved as a model folder (weights,
  tokenizer) plus ``scorer.json``.
* ``light``: for CPU-only runs, a 1-hidden-layer MLP (``hidden=0``: softmax regression) on the frozen ``embedding``
  column, standardised with the training mean/std, trained full-precision with Adam on seeded mini-batches, so two
  runs with the same seed give bit-identical weights on the same machine. Saved as ``light_scorer.safetensors``
  plus ``scorer.json``.

Both report the Pearson correlation between their scores and the real QS on held-out rows (a seeded fraction of the
scored sample that training never sees) through the ``evaluate`` metric shipped at ``PEARSON_QS_PATH``.

Scoring every row goes through :class:`ScoreStage` and :func:`~openmathmix.stages.base.run_stage` (sharded,
resumable, one process per GPU). A stage can hold one scorer for all rows, or one per task (the large setting's
reasoning and general scorers: ``{"reasoning": dir1, "general": dir2}``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, Features, Value

from ..errors import MissingColumnsError, ModelError, OpenMathMixError
from ..models import dtype_key
from ..schema import EMBEDDING, QS, QUALITY_SCORE
from .base import Stage, run_stage

logger = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "LABELS",
    "PEARSON_QS_PATH",
    "SCORER_FILE",
    "ScoreStage",
    "ScorerResult",
    "expected_score",
    "heldout_split",
    "load_scorer",
    "mean_score_per_source",
    "pearson_qs",
    "qs_to_label",
    "score_dataset",
    "train_classifier_scorer",
    "train_light_scorer",
    "train_scorer",
]

LABELS = (1, 2, 3, 4, 5)  # QS_max = 5 (Section 3.3)
KINDS = ("classifier", "light")
SCORER_FILE = "scorer.json"
LIGHT_WEIGHTS = "light_scorer.safetensors"
PEARSON_QS_PATH = str(Path(__file__).resolve().parents[1] / "metrics" / "pearson_qs.py")
_EDGE_EPS = 1e-9


# --------------------------------------------------------------------------------------------------------------------
# Labels, outputs, metric
# --------------------------------------------------------------------------------------------------------------------


def qs_to_label(qs) -> np.ndarray:
    """Equal-width binning (module docstring): QS in [0, 1] -> int label in 1..5."""
    q = np.asarray(qs, dtype=np.float64)
    if q.size and (not np.all(np.isfinite(q)) or q.min() < -_EDGE_EPS or q.max() > 1 + _EDGE_EPS):
        raise OpenMathMixError(f"quality scores must lie in [0, 1], got min {q.min()!r} max {q.max()!r}")
    bins = np.floor(len(LABELS) * np.clip(q, 0.0, 1.0) + _EDGE_EPS).astype(np.int64)
    return 1 + np.minimum(len(LABELS) - 1, bins)


def expected_score(probs) -> np.ndarray:
    """Expected label ``sum_j p_j * j`` of softmax rows [n, 5] -> floats in [1, 5]."""
    p = np.asarray(probs, dtype=np.float64)
    return np.clip(p @ np.asarray(LABELS, dtype=np.float64), LABELS[0], LABELS[-1])


@functools.lru_cache(maxsize=1)
def _pearson_metric():
    import evaluate

    return evaluate.load(PEARSON_QS_PATH)  # a local script: evaluate imports it, no Hub access


def pearson_qs(predictions: Sequence[float], references: Sequence[float]) -> dict:
    """{"pearsonr", "p_value", "n"} from the shipped ``evaluate`` metric (nan r when undefined)."""
    return _pearson_metric().compute(predictions=[float(x) for x in predictions],
                                     references=[float(x) for x in references])


def heldout_split(n: int, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows), a seeded random split; at least 2 held-out rows when fraction > 0 and n >= 4."""
    if not 0.0 <= fraction < 1.0:
        raise OpenMathMixError(f"heldout fraction must be in [0, 1), got {fraction}")
    perm = np.random.default_rng([seed, 7]).permutation(n)
    n_held = int(round(n * fraction))
    if fraction > 0 and n >= 4:
        n_held = max(n_held, 2)
    n_held = min(n_held, max(n - 1, 0))
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def mean_score_per_source(ds: Dataset, column: str = QUALITY_SCORE) -> dict[str, float]:
    """Mean of ``column`` per source, sources in first-appearance order."""
    sums: dict[str, list[float]] = {}
    for s, v in zip(ds["source"], ds[column]):
        acc = sums.setdefault(s, [0.0, 0])
        acc[0] += v
        acc[1] += 1
    return {s: total / count for s, (total, count) in sums.items()}


@dataclass
class ScorerResult:
    """What training produced: where, on how many rows, and how well it tracks the real QS on held-out rows."""

    out_dir: str
    kind: str
    task: str | None
    train_rows: int
    heldout_rows: int
    label_counts: dict[str, int]
    pearson: float | None = None
    p_value: float | None = None
    seconds: float = 0.0
    heldout_mean_score_per_source: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        r = "n/a" if self.pearson is None else f"{self.pearson:.4f}"
        return (f"scorer ({self.kind}{', task ' + self.task if self.task else ''}): trained on {self.train_rows:,} "
                f"rows in {self.seconds:,.1f} s; held-out Pearson r = {r} on {self.heldout_rows:,} rows")


# --------------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------------


def _training_rows(scored: Dataset, task: str | None, needed: Sequence[str]) -> Dataset:
    missing = [c for c in (QS, *needed) if c not in scored.column_names]
    if missing:
        raise MissingColumnsError(f"scorer training needs column(s) {missing}; the dataset has {scored.column_names}"
                                  + (" (run `openmathmix embed` before `quality`)" if EMBEDDING in missing else ""))
    if task is not None:
        if "task" not in scored.column_names:
            raise MissingColumnsError("task=... needs a 'task' column")
        scored = scored.filter(lambda t: t == task, input_columns="task")
    if len(scored) < 2:
        raise OpenMathMixError(f"need at least 2 scored rows to train a scorer, got {len(scored)}")
    return scored


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _finish(result: ScorerResult, out: Path, info: dict, held: Dataset, scores: np.ndarray) -> ScorerResult:
    if len(held) >= 2:
        metric = pearson_qs(scores, held[QS])
        result.pearson = None if math.isnan(metric["pearsonr"]) else float(metric["pearsonr"])
        result.p_value = metric["p_value"]
        if result.pearson is None:
            logger.warning("held-out Pearson r is undefined (constant scores or constant QS on %d rows)", len(held))
        if "source" in held.column_names:
            result.heldout_mean_score_per_source = mean_score_per_source(
                held.add_column("_score", scores.tolist()), "_score")
    info["result"] = result.to_dict()
    _write_json(out / SCORER_FILE, info)
    return result


def train_light_scorer(
    scored: Dataset,
    out_dir: str | os.PathLike,
    *,
    hidden: int = 256,
    epochs: int = 100,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 64,
    seed: int = 0,
    heldout: float = 0.1,
    task: str | None = None,
) -> ScorerResult:
    """Train the light scorer (an MLP, or softmax regression with ``hidden=0``) on ``embedding`` -> QS label."""
    import torch
    from safetensors.torch import save_file

    t0 = time.perf_counter()
    scored = _training_rows(scored, task, (EMBEDDING,))
    train_idx, held_idx = heldout_split(len(scored), heldout, seed)
    train, held = scored.select(train_idx), scored.select(held_idx)
    x = torch.tensor(_embeddings(train))
    y = torch.tensor(qs_to_label(train[QS]) - 1, dtype=torch.long)
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = _light_head(x.shape[1], hidden, mean, std)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(head.parameters(), lr=learning_rate, weight_decay=weight_decay)
    head.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=gen).split(batch_size):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(head(x[rows]), y[rows])
            loss.backward()
            opt.step()
    head.eval()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(out / LIGHT_WEIGHTS))
    info = {
        "kind": "light", "labels": list(LABELS), "binning": "equal-width: 1 + min(4, floor(5 * qs))",
        "dim": int(x.shape[1]), "hidden": int(hidden), "epochs": epochs, "learning_rate": learning_rate,
        "weight_decay": weight_decay, "batch_size": batch_size, "seed": seed, "heldout": heldout, "task": task,
    }
    result = ScorerResult(str(out), "light", task, len(train), len(held), _label_counts(y.numpy() + 1),
                          seconds=time.perf_counter() - t0)
    scores = _light_scores(head, _embeddings(held)) if len(held) else np.zeros(0)
    return _finish(result, out, info, held, scores)


def _embeddings(ds: Dataset) -> np.ndarray:
    return np.asarray(ds.with_format("numpy", columns=[EMBEDDING])[EMBEDDING], dtype=np.float32).reshape(len(ds), -1)


def _label_counts(labels) -> dict[str, int]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(LABELS) + 1)[1:]
    return {str(lab): int(c) for lab, c in zip(LABELS, counts)}


def _light_head(dim: int, hidden: int, mean, std):
    """The light scorer's module: standardise, then Linear-GELU-Linear (or one Linear when ``hidden == 0``)."""
    import torch

    class LightHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", mean.clone())
            self.register_buffer("std", std.clone())
            if hidden > 0:
                self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(),
                                               torch.nn.Linear(hidden, len(LABELS)))
            else:
                self.net = torch.nn.Linear(dim, len(LABELS))

        def forward(self, emb):
            return self.net((emb - self.mean) / self.std)

    return LightHead()


def _light_scores(head, embeddings) -> np.ndarray:
    import torch

    with torch.inference_mode():
        x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        probs = torch.softmax(head(x).float(), dim=-1).numpy()
    return expected_score(probs)


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
    seed: int = 0,
    heldout: float = 0.1,
    task: str | None = None,
    device: str | None = None,
    bf16: bool | None = None,
    progress: bool = True,
) -> ScorerResult:
    """Fine-tune a 5-label sequence classifier on a causal-LM backbone with the transformers ``Trainer``.

    Defaults follow the paper's fine-tuning recipe (lr 2e-5, cosine schedule, 3 % warm-up) for 2 epochs; the global
    batch is ``batch_size * grad_accum``. ``bf16`` None = mixed bf16 on GPUs that support it, fp32 elsewhere.
    """
    import torch
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    from ..models import load_tokenizer, resolve
    from ..text import encode_qa_batch

    t0 = time.perf_counter()
    scored = _training_rows(scored, task, ("question", "answer"))
    train_idx, held_idx = heldout_split(len(scored), heldout, seed)
    train, held = scored.select(train_idx), scored.select(held_idx)
    spec = resolve(model, revision)
    tok = load_tokenizer(spec)
    enc = encode_qa_batch(tok, list(train["question"]), list(train["answer"]), max_length)
    labels = qs_to_label(train[QS])
    train_set = Dataset.from_dict({"input_ids": enc.input_ids(), "labels": (labels - 1).tolist()})

    use_cpu = not torch.cuda.is_available() or (device is not None and str(device).startswith("cpu"))
    if bf16 is None:
        bf16 = not use_cpu and torch.cuda.is_bf16_supported()
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

    with tempfile.TemporaryDirectory(prefix="omm-scorer-") as tmp:
        args = TrainingArguments(
            output_dir=tmp, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=grad_accum, learning_rate=learning_rate, lr_scheduler_type="cosine",
            warmup_steps=warmup, weight_decay=weight_decay, seed=seed, data_seed=seed, save_strategy="no",
            report_to="none", logging_steps=10, disable_tqdm=not progress, use_cpu=use_cpu, bf16=bool(bf16),
            dataloader_num_workers=0, remove_unused_columns=False,
        )
        trainer = Trainer(model=clf, args=args, train_dataset=train_set,
                          data_collator=DataCollatorWithPadding(tok), processing_class=tok)
        trainer.train()
    clf = trainer.model.eval()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clf.save_pretrained(out)
    tok.save_pretrained(out)
    info = {
        "kind": "classifier", "labels": list(LABELS), "binning": "equal-width: 1 + min(4, floor(5 * qs))",
        "base_model": spec.key(), "max_length": max_length, "epochs": epochs, "learning_rate": learning_rate,
        "batch_size": batch_size, "grad_accum": grad_accum, "warmup": warmup, "weight_decay": weight_decay,
        "seed": seed, "heldout": heldout, "task": task, "bf16": bool(bf16), "template": _template_version(),
    }
    result = ScorerResult(str(out), "classifier", task, len(train), len(held), _label_counts(labels),
                          seconds=time.perf_counter() - t0)
    scores = np.zeros(0)
    if len(held):
        scores = _classifier_scores(clf, tok, held["question"], held["answer"], max_length)
    return _finish(result, out, info, held, scores)


def _template_version():
    from .. import text

    return text.TEMPLATE_VERSION


def _classifier_scores(model, tokenizer, questions, answers, max_length: int,
                       rows_per_forward: int = 16) -> np.ndarray:
    """Expected label of each row under a sequence classifier; length-sorted, right-padded mini-batches."""
    import torch

    from ..text import encode_qa_batch

    ids = encode_qa_batch(tokenizer, list(questions), list(answers), max_length).input_ids()
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


def train_scorer(scored: Dataset, out_dir: str | os.PathLike, kind: str = "classifier", **kwargs) -> ScorerResult:
    """Dispatch to :func:`train_classifier_scorer` or :func:`train_light_scorer`."""
    if kind == "classifier":
        return train_classifier_scorer(scored, out_dir, **kwargs)
    if kind == "light":
        return train_light_scorer(scored, out_dir, **kwargs)
    raise OpenMathMixError(f"unknown scorer kind {kind!r}; use one of {KINDS}")


# --------------------------------------------------------------------------------------------------------------------
# Loading and scoring
# --------------------------------------------------------------------------------------------------------------------


def _scorer_info(path: str | os.PathLike) -> dict:
    file = Path(path) / SCORER_FILE
    if not file.is_file():
        raise OpenMathMixError(f"{path} is not a scorer folder (no {SCORER_FILE}); train one with "
                               "`openmathmix scorer train`")
    info = json.loads(file.read_text())
    if info.get("kind") not in KINDS:
        raise OpenMathMixError(f"{file}: unknown scorer kind {info.get('kind')!r}")
    return info


def _scorer_key(path: str | os.PathLike) -> dict:
    """Identity of a trained scorer for cache fingerprints: its settings and its weight files' sizes and mtimes."""
    folder = Path(path).resolve()
    info = _scorer_info(folder)
    info.pop("result", None)
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt"))
    return {"path": str(folder), "info": info,
            "weights": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]}


class _LoadedScorer:
    """A trained scorer ready for inference: ``scores(batch) -> np.ndarray`` of expected labels."""

    def __init__(self, path: str, device: str, dtype: str):
        import torch

        self.path = path
        self.info = _scorer_info(path)
        self.kind = self.info["kind"]
        self.device = device
        if self.kind == "light":
            from safetensors.torch import load_file

            state = load_file(str(Path(path) / LIGHT_WEIGHTS))
            head = _light_head(self.info["dim"], self.info["hidden"], state["mean"], state["std"])
            head.load_state_dict(state)
            self.model = head.to(device).eval()
        else:
            from ..models import load_model, resolve

            self.model, self.tokenizer = load_model(resolve(path), head="classifier", device=device, dtype=dtype)
            if self.model.config.pad_token_id is None:
                self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.torch = torch

    @property
    def requires(self) -> tuple[str, ...]:
        return (EMBEDDING,) if self.kind == "light" else ("question", "answer")

    def scores(self, batch: dict[str, list]) -> np.ndarray:
        if self.kind == "light":
            with self.torch.inference_mode():
                x = self.torch.as_tensor(np.asarray(batch[EMBEDDING], dtype=np.float32), device=self.device)
                probs = self.torch.softmax(self.model(x).float(), dim=-1).cpu().numpy()
            return expected_score(probs)
        rows = 64 if str(self.device).startswith("cuda") else 16
        return _classifier_scores(self.model, self.tokenizer, batch["question"], batch["answer"],
                                  int(self.info.get("max_length", 512)), rows_per_forward=rows)


def load_scorer(path: str | os.PathLike, device: str = "cpu", dtype: str = "auto") -> _LoadedScorer:
    """Load a trained scorer folder for inference (``.scores(batch)`` -> expected labels in [1, 5])."""
    from ..models import pick_dtype

    return _LoadedScorer(str(path), device, str(pick_dtype(device, dtype)).removeprefix("torch."))


class ScoreStage(Stage):
    """Adds ``quality_score`` (expected 1-5 label) to every row, with one scorer or one scorer per task.

    Args:
        scorer: a scorer folder, or a mapping ``{task: folder}``; the key ``"*"`` covers tasks not named.
        dtype: inference dtype of a classifier scorer ("auto": bf16 where supported); the light scorer runs fp32.
    """

    name = "quality_score"
    produces = (QUALITY_SCORE,)

    def __init__(self, scorer: str | os.PathLike | Mapping[str, str | os.PathLike], *, dtype: str = "auto"):
        if isinstance(scorer, Mapping):
            if not scorer:
                raise OpenMathMixError("ScoreStage needs at least one scorer")
            self.scorers = {str(k): str(v) for k, v in scorer.items()}
        else:
            self.scorers = {"*": str(scorer)}
        kinds = {task: _scorer_info(p)["kind"] for task, p in self.scorers.items()}
        needed: list[str] = []
        for kind in kinds.values():
            for col in ((EMBEDDING,) if kind == "light" else ("question", "answer")):
                if col not in needed:
                    needed.append(col)
        if set(self.scorers) != {"*"}:
            needed.append("task")
        self.requires = tuple(needed)
        self.dtype = dtype
        self._loaded: dict[str, _LoadedScorer] = {}

    def config(self) -> dict[str, Any]:
        return {"scorers": {t: _scorer_key(p) for t, p in sorted(self.scorers.items())}, "dtype": dtype_key(self.dtype)}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_loaded"] = {}
        state.pop("_ready_on", None)
        return state

    def setup(self, device: str) -> None:
        self._loaded = {task: load_scorer(p, device, self.dtype) for task, p in self.scorers.items()}

    def process_batch(self, batch: dict[str, list], device: str) -> dict[str, list]:
        n = len(next(iter(batch.values())))
        if set(self._loaded) == {"*"}:
            return {QUALITY_SCORE: self._loaded["*"].scores(batch).tolist()}
        out = np.full(n, np.nan)
        groups: dict[str, list[int]] = {}
        for i, t in enumerate(batch["task"]):
            key = t if t in self._loaded else "*"
            if key not in self._loaded:
                raise OpenMathMixError(f"no scorer for task {t!r}; scorers are given for {sorted(self._loaded)}")
            groups.setdefault(key, []).append(i)
        for key, rows in groups.items():
            sub = {c: [batch[c][i] for i in rows] for c in self._loaded[key].requires}
            out[rows] = self._loaded[key].scores(sub)
        return {QUALITY_SCORE: out.tolist()}

    def features(self):
        return Features({QUALITY_SCORE: Value("float64")})


def score_dataset(
    ds: Dataset,
    scorer: str | os.PathLike | Mapping[str, str | os.PathLike],
    *,
    device: str | None = None,
    dtype: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    shard_rows: int = 8192,
    worker: tuple[int, int] | None = None,
    progress: bool = True,
) -> Dataset | None:
    """Add ``quality_score`` to every row of ``ds`` with :class:`ScoreStage` through ``run_stage`` (resumable)."""
    return run_stage(ds, ScoreStage(scorer, dtype=dtype), cache_dir=cache_dir, batch_size=batch_size,
                     shard_rows=shard_rows, device=device, worker=worker, progress=progress)
