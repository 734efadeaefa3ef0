"""Quality scorer (paper Section 3.2 "Quality Scorer", 5.3): scored sample -> trained scorer -> `quality_score`.

The one-shot QS of Eq. 3 costs n2 forwards per row, so only a sample is scored (:mod:`.quality`); a scorer trained on
that sample then rates every row with one forward (classifier) or one small head on its embedding (light).

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

Scores on the 1-5 scale (``quality_score``, what QaDS multiplies into the distance): a classifier's expected label
``sum_j p_j * j``; a QS regression's ``1 + 4 * clip(QS, 0, 1)`` (:mod:`.scorer_fit`).

Two kinds of scorer
-------------------
* ``light`` (:mod:`.scorer_light`): a head on the frozen ``embedding`` column, chosen by k-fold CV among ridge
  regression on QS, softmax regression and small MLPs (on QS and on the labels), refitted on all rows.
* ``classifier`` (:mod:`.scorer_classifier`): the paper's fine-tuned sequence classifier, early-stopped on a
  validation split.

Both report the Pearson r of their score against the real QS on rows their model never saw, with a 95 % interval
and the row count (:mod:`.scorer_result`: nested k-fold CV, or a held-out set of at least 300 rows), and save the
evaluated pairs for the Figure-4 scatter (:func:`save_scorer_scatter`).

Scoring every row goes through :class:`ScoreStage` and :func:`~openmathmix.stages.base.run_stage` (sharded,
resumable, one process per GPU). A stage can hold one scorer for all rows, or one per task (the large setting's
reasoning and general scorers: ``{"reasoning": dir1, "general": dir2}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, Features, Value

from ..errors import OpenMathMixError
from ..models import dtype_key
from ..schema import EMBEDDING, QUALITY_SCORE
from .base import Stage, run_stage
from .scorer_classifier import classifier_scores, train_classifier_scorer
from .scorer_fit import LABELS, choice_scores, expected_score, qs_to_label, qs_to_score
from .scorer_light import load_light_heads, train_light_scorer
from .scorer_result import (
    EVAL_FILE,
    MIN_HELDOUT_ROWS,
    PAPER_PEARSON,
    PEARSON_QS_PATH,
    SCORER_FILE,
    ScorerResult,
    group_means,
    pearson_qs,
    read_eval_pairs,
)

__all__ = [
    "EVAL_FILE",
    "KINDS",
    "LABELS",
    "MIN_HELDOUT_ROWS",
    "PAPER_PEARSON",
    "PEARSON_QS_PATH",
    "SCORER_FILE",
    "ScoreStage",
    "ScorerResult",
    "expected_score",
    "load_scorer",
    "mean_score_per_source",
    "pearson_qs",
    "qs_to_label",
    "qs_to_score",
    "save_scorer_scatter",
    "score_dataset",
    "train_classifier_scorer",
    "train_light_scorer",
    "train_scorer",
]

KINDS = ("classifier", "light")


def mean_score_per_source(ds: Dataset, column: str = QUALITY_SCORE) -> dict[str, float]:
    """Mean of ``column`` per source, sources in first-appearance order."""
    return group_means(ds["source"], ds[column])


def train_scorer(scored: Dataset, out_dir: str | os.PathLike, kind: str = "classifier", **kwargs) -> ScorerResult:
    """Dispatch to :func:`train_classifier_scorer` or :func:`train_light_scorer`."""
    if kind == "classifier":
        return train_classifier_scorer(scored, out_dir, **kwargs)
    if kind == "light":
        return train_light_scorer(scored, out_dir, **kwargs)
    raise OpenMathMixError(f"unknown scorer kind {kind!r}; use one of {KINDS}")


def save_scorer_scatter(path: str | os.PathLike, results: Mapping[str, ScorerResult | dict] | Sequence) -> Path:
    """Figure 4 of the paper: scorer score against real QS on the evaluated rows, one panel per scorer, PNG.

    ``results``: ``{task: ScorerResult or its to_dict()}`` (or a sequence of them); each panel's title gives r, its
    95 % interval, n and how the rows were kept apart, with the paper's r where the task has one.
    """
    from ..metrics.figures import Panel, save_scatter

    items = results.items() if isinstance(results, Mapping) else [(None, r) for r in results]
    panels = []
    for name, res in items:
        res = res.to_dict() if isinstance(res, ScorerResult) else res
        pairs = read_eval_pairs(res["out_dir"])
        label = name if name not in (None, "*") else (res.get("task") or "all")
        ci = "" if res.get("ci_low") is None else f" [{res['ci_low']:.2f}, {res['ci_high']:.2f}]"
        r = "n/a" if res.get("r") is None else f"{res['r']:.2f}"
        paper = "" if res.get("paper_r") is None else f"; paper r = {res['paper_r']:.2f}"
        panels.append(Panel(title=f"{label}: r = {r}{ci}, n = {res.get('n', 0):,}{paper}",
                            subtitle=res.get("method", ""), x=pairs["qs"], y=pairs["score"],
                            groups=pairs.get("source")))
    return save_scatter(path, panels, xlabel="real quality score (one-shot QS)", ylabel="scorer score (1-5)",
                        ylim=(LABELS[0] - 0.1, LABELS[-1] + 0.1))


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
    """A trained scorer ready for inference: ``scores(batch) -> np.ndarray`` of scores in [1, 5]."""

    def __init__(self, path: str, device: str, dtype: str):
        self.path = path
        self.info = _scorer_info(path)
        self.kind = self.info["kind"]
        self.device = device
        if self.kind == "light":
            self.choice, self.heads = load_light_heads(path, self.info, device)
        else:
            from ..models import load_model, resolve

            self.model, self.tokenizer = load_model(resolve(path), head="classifier", device=device, dtype=dtype)
            if self.model.config.pad_token_id is None:
                self.model.config.pad_token_id = self.tokenizer.pad_token_id

    @property
    def requires(self) -> tuple[str, ...]:
        return (EMBEDDING,) if self.kind == "light" else ("question", "answer")

    def scores(self, batch: dict[str, list]) -> np.ndarray:
        if self.kind == "light":
            return choice_scores(self.choice, self.heads, batch[EMBEDDING])
        from ..text import encode_qa_batch

        rows = 64 if str(self.device).startswith("cuda") else 16
        ids = encode_qa_batch(self.tokenizer, list(batch["question"]), list(batch["answer"]),
                              int(self.info.get("max_length", 512))).input_ids()
        return classifier_scores(self.model, self.tokenizer, ids, rows_per_forward=rows)


def load_scorer(path: str | os.PathLike, device: str = "cpu", dtype: str = "auto") -> _LoadedScorer:
    """Load a trained scorer folder for inference (``.scores(batch)`` -> scores in [1, 5])."""
    from ..models import pick_dtype

    return _LoadedScorer(str(path), device, str(pick_dtype(device, dtype)).removeprefix("torch."))


class ScoreStage(Stage):
    """Adds ``quality_score`` (a score in [1, 5]) to every row, with one scorer or one scorer per task.

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
    engine: str = "local",
    ray_address: str | None = None,
) -> Dataset | None:
    """Add ``quality_score`` to every row of ``ds`` with :class:`ScoreStage` through ``run_stage`` (resumable)."""
    return run_stage(ds, ScoreStage(scorer, dtype=dtype), cache_dir=cache_dir, batch_size=batch_size,
                     shard_rows=shard_rows, device=device, worker=worker, progress=progress, engine=engine,
                     ray_address=ray_address)
