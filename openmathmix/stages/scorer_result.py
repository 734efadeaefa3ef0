"""What a trained scorer reports: the Pearson figure with its interval, how it was measured, and the per-source means.

How the figure is measured (``evaluation_plan``)
-----------------------------------------------
* **held-out**, when ``heldout * n >= MIN_HELDOUT_ROWS`` (300, the size of the paper's Pearson sample): a seeded
  share of the scored sample is kept out of training and choosing; r is measured on it, and the shipped scorer is
  the one that never saw it.
* **k-fold cross-validation** otherwise (a CPU-sized sample, where a tenth of it would be a dozen rows whose r moves
  by tenths with one row): every row is scored by a model that neither saw it nor took part in choosing it, the
  out-of-fold scores are pooled and r is measured on all n rows; the shipped scorer is then fitted on every row.

The 95 % interval is the Fisher-z interval (``ci_low``/``ci_high``); the percentile bootstrap interval over the
same pairs is recorded beside it (``boot_low``/``boot_high``). The (score, QS, source) pairs behind the figure are
saved in the scorer folder (``EVAL_FILE``) for the Figure-4 scatter.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset

from ..errors import MissingColumnsError, OpenMathMixError
from ..metrics.correlation import LEVEL, pearson_figure
from ..schema import EMBEDDING, QS

SCORER_FILE = "scorer.json"
PEARSON_QS_PATH = str(Path(__file__).resolve().parents[1] / "metrics" / "pearson_qs.py")
EVAL_FILE = "scorer_eval.json"
MIN_HELDOUT_ROWS = 300
INTERVAL = "95 % Fisher z (percentile bootstrap of the same pairs beside it, 2,000 resamples)"
# Pearson r of the paper's DeepSeekMath scorers on 300 rows kept apart (Section 5.3, Figure 4).
PAPER_PEARSON = {"reasoning": 0.91, "general": 0.74}


@dataclass
class ScorerResult:
    """What training produced and how well the scorer tracks the real QS on rows its model never saw.

    ``r`` / ``ci_low`` / ``ci_high`` / ``n``: Pearson r of scorer score (1-5) against real QS, its 95 % Fisher-z
    interval, and the row count behind it; ``method`` says how those rows were kept apart. ``model``, ``target`` and
    ``why`` say which scorer was chosen and on what evidence (``candidates``: the CV table). ``mean_qs_per_source``
    and ``mean_score_per_source`` are means over the evaluated rows (scores out-of-fold or held-out).
    """

    out_dir: str
    kind: str
    task: str | None
    train_rows: int
    label_counts: dict[str, int]
    r: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    method: str = ""
    interval: str = INTERVAL
    boot_low: float | None = None
    boot_high: float | None = None
    p_value: float | None = None
    model: str = ""
    target: str = "label"
    why: str = ""
    candidates: list[dict] = field(default_factory=list)
    paper_r: float | None = None
    mean_qs_per_source: dict[str, float] = field(default_factory=dict)
    mean_score_per_source: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def pearson(self) -> float | None:
        """Same as ``r`` (the name the CLI, the pipeline and the card read)."""
        return self.r

    @property
    def heldout_rows(self) -> int:
        """Same as ``n``: rows scored by a model that never saw them."""
        return self.n

    def to_dict(self) -> dict:
        """JSON-ready; ``pearson`` and ``heldout_rows`` repeat ``r`` and ``n`` for readers of the older keys."""
        return {**asdict(self), "pearson": self.r, "heldout_rows": self.n}

    def interval_text(self) -> str:
        if self.r is None:
            return "r = n/a"
        ci = "" if self.ci_low is None else f" [{self.ci_low:.2f}, {self.ci_high:.2f}]"
        return f"r = {self.r:.3f}{ci}, n = {self.n:,}"

    def summary(self) -> str:
        paper = "" if self.paper_r is None else f"; paper {self.paper_r:.2f}"
        return (f"scorer ({self.kind}{', task ' + self.task if self.task else ''}): {self.model} on "
                f"{self.train_rows:,} rows in {self.seconds:,.1f} s; Pearson {self.interval_text()} "
                f"({self.method}, 95 % CI Fisher z){paper}")


@functools.lru_cache(maxsize=1)
def _pearson_metric():
    import evaluate

    return evaluate.load(PEARSON_QS_PATH)  # a local script: evaluate imports it, no Hub access


def pearson_qs(predictions: Sequence[float], references: Sequence[float]) -> dict:
    """{"pearsonr", "p_value", "n"} from the shipped ``evaluate`` metric (nan r when undefined)."""
    return _pearson_metric().compute(predictions=[float(x) for x in predictions],
                                     references=[float(x) for x in references])


def evaluation_plan(n: int, heldout: float | None, folds: int) -> tuple[str, int]:
    """("heldout", rows kept apart) when ``heldout * n`` reaches :data:`MIN_HELDOUT_ROWS`, else ("cv", folds)."""
    fraction = heldout or 0.0
    if not 0.0 <= fraction < 1.0:
        raise OpenMathMixError(f"heldout fraction must be in [0, 1), got {heldout}")
    if folds < 2:
        raise OpenMathMixError(f"folds must be at least 2, got {folds}")
    n_held = round(n * fraction)
    if n_held >= MIN_HELDOUT_ROWS and n - n_held >= 2:
        return "heldout", n_held
    return "cv", min(folds, n)


def heldout_split(n: int, n_held: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows): a seeded random split, both sorted."""
    if not 0 <= n_held < n:
        raise OpenMathMixError(f"cannot hold out {n_held} of {n} rows")
    perm = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def method_text(plan: str, size: int, *, nested: bool = False) -> str:
    """How the rows behind r were kept apart, in a few words (card, figure titles)."""
    if plan == "heldout":
        return f"held-out set of {size:,} rows"
    return f"{'nested ' if nested else ''}{size}-fold CV, pooled out-of-fold scores"


def training_rows(scored: Dataset, task: str | None, needed: Sequence[str]) -> Dataset:
    """The scored rows of ``task`` (all when None), checked for the columns a scorer needs."""
    missing = [c for c in (QS, *needed) if c not in scored.column_names]
    if missing:
        raise MissingColumnsError(f"scorer training needs column(s) {missing}; the dataset has {scored.column_names}"
                                  + (" (run `openmathmix embed` before `quality`)" if EMBEDDING in missing else ""))
    if task is not None:
        if "task" not in scored.column_names:
            raise MissingColumnsError("task=... needs a 'task' column")
        scored = scored.filter(lambda t: t == task, input_columns="task")
    if len(scored) < 2:
        raise OpenMathMixError(f"need at least 2 scored rows to train and evaluate a scorer"
                               f"{' for task ' + repr(task) if task else ''}, got {len(scored)}; raise n1")
    return scored


def group_means(keys: Sequence[str], values) -> dict[str, float]:
    """Mean of ``values`` per key, keys in first-appearance order."""
    sums: dict[str, list[float]] = {}
    for k, v in zip(keys, values):
        acc = sums.setdefault(k, [0.0, 0])
        acc[0] += float(v)
        acc[1] += 1
    return {k: total / count for k, (total, count) in sums.items()}


def label_counts(labels) -> dict[str, int]:
    from .scorer_fit import LABELS

    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(LABELS) + 1)[1:]
    return {str(lab): int(c) for lab, c in zip(LABELS, counts)}


def record_evaluation(result: ScorerResult, scores, qs, sources: Sequence[str] | None, *, seed: int) -> None:
    """Fill r, both intervals, n, p-value and the per-source means from the evaluated (score, QS) pairs."""
    scores = np.asarray(scores, dtype=np.float64)
    qs = np.asarray(qs, dtype=np.float64)
    fig = pearson_figure(scores, qs, level=LEVEL, seed=seed)
    result.r, result.n = fig.r, fig.n
    result.ci_low, result.ci_high, result.boot_low, result.boot_high = fig.ci_low, fig.ci_high, fig.boot_low, \
        fig.boot_high
    if fig.r is not None:
        result.p_value = pearson_qs(scores, qs)["p_value"]
    if result.task is not None:
        result.paper_r = PAPER_PEARSON.get(result.task)
    if sources is not None:
        result.mean_qs_per_source = group_means(sources, qs)
        result.mean_score_per_source = group_means(sources, scores)


def write_scorer_files(out: Path, info: dict, result: ScorerResult, scores, qs,
                       sources: Sequence[str] | None) -> None:
    """``scorer.json`` (settings + result) and ``scorer_eval.json`` (the evaluated pairs), each written atomically."""
    info = {**info, "result": result.to_dict()}
    _write_json(out / SCORER_FILE, info)
    pairs = {"method": result.method, "task": result.task,
             "score": [float(s) for s in scores], "qs": [float(q) for q in qs],
             "source": list(sources) if sources is not None else None}
    _write_json(out / EVAL_FILE, pairs)


def read_eval_pairs(folder: str | os.PathLike) -> dict:
    """The (score, QS, source) pairs a trained scorer was evaluated on (``scorer_eval.json``)."""
    file = Path(folder) / EVAL_FILE
    if not file.is_file():
        raise OpenMathMixError(f"{folder} has no {EVAL_FILE}: retrain the scorer with this version to get the pairs")
    return json.loads(file.read_text())


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False, default=_json_default))
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
