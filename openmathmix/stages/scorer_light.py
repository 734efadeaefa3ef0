"""The light scorer: a head on the frozen ``embedding`` column, chosen by cross-validation on the scored sample.

The candidates (:func:`.scorer_fit.default_candidates`: closed-form ridge on QS over six penalties, softmax
regression and small MLPs on QS and on the 1-5 labels) are ranked by the Pearson r of their k-fold out-of-fold
scores; the winner is refitted on all rows (or on the training part, when a held-out set is large enough, see
:mod:`.scorer_result`). The reported r comes from nested cross-validation, so choosing among candidates does not
flatter it. Saved as ``light_scorer.safetensors`` (the head, standardisation included) plus ``scorer.json``.
Deterministic for a seed on a given machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from datasets import Dataset

from ..schema import EMBEDDING, QS
from .scorer_fit import (
    LABELS,
    Candidate,
    Schedule,
    default_candidates,
    fit_candidate,
    head_scores,
    nested_cv,
    planned_fits,
    qs_to_label,
    select_candidate,
)
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

LIGHT_WEIGHTS = "light_scorer.safetensors"
BINNING = "equal-width: 1 + min(4, floor(5 * qs))"


def embeddings_of(ds: Dataset) -> np.ndarray:
    return np.asarray(ds.with_format("numpy", columns=[EMBEDDING])[EMBEDDING], dtype=np.float32).reshape(len(ds), -1)


def train_light_scorer(
    scored: Dataset,
    out_dir: str | os.PathLike,
    *,
    hidden: int | Sequence[int] | None = None,
    candidates: Sequence[Candidate] | None = None,
    folds: int = 5,
    heldout: float | None = 0.1,
    epochs: int = 100,
    learning_rate: float = 1e-2,
    batch_size: int = 128,
    seed: int = 0,
    task: str | None = None,
    progress: bool = True,
) -> ScorerResult:
    """Choose, fit and save the light scorer of ``scored`` (rows with ``embedding`` and ``qs``).

    Args:
        hidden: MLP hidden sizes among the default candidates (default :data:`.scorer_fit.MLP_HIDDEN`; 0: linear
            candidates only). Ignored when ``candidates`` is given.
        candidates: the configurations to choose from (default :func:`.scorer_fit.default_candidates`).
        folds: k of the cross-validation that chooses the candidate and measures r.
        heldout: share of rows kept apart to measure r when it gives at least 300 rows; else nested k-fold CV.
        epochs / learning_rate / batch_size: Adam schedule of the MLP candidates.
        task: train on the rows of this task only.
        progress: a progress bar over the fits (rate and ETA).
    """
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    scored = training_rows(scored, task, (EMBEDDING,))
    cands = tuple(candidates) if candidates is not None else default_candidates(hidden)
    schedule = Schedule(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    x, qs = embeddings_of(scored), np.asarray(scored[QS], dtype=np.float64)
    sources = list(scored["source"]) if "source" in scored.column_names else None
    plan, size = evaluation_plan(len(qs), heldout, folds)

    n_fit = len(qs) - size if plan == "heldout" else len(qs)
    bar = tqdm(total=planned_fits(n_fit, folds, len(cands), nested=plan == "cv"), unit="fit", disable=not progress,
               desc=f"light scorer{' (' + task + ')' if task else ''}")
    with bar:
        if plan == "heldout":
            fit_rows, eval_rows = heldout_split(len(qs), size, seed)
            best, table = select_candidate(cands, x[fit_rows], qs[fit_rows], folds=folds, seed=seed,
                                           schedule=schedule, tick=bar.update)
            head = fit_candidate(best, x[fit_rows], qs[fit_rows], schedule=schedule, seed=seed)
            scores = head_scores(head, best.target, x[eval_rows])
            method = method_text(plan, size)
        else:
            fit_rows = eval_rows = np.arange(len(qs))
            scores, outer_choice = nested_cv(cands, x, qs, folds=size, seed=seed, schedule=schedule,
                                             tick=bar.update)
            best, table = select_candidate(cands, x, qs, folds=size, seed=seed, schedule=schedule, tick=bar.update)
            head = fit_candidate(best, x, qs, schedule=schedule, seed=seed)
            method = method_text(plan, size, nested=True)
        bar.update()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(out / LIGHT_WEIGHTS))
    result = ScorerResult(str(out), "light", task, len(fit_rows), label_counts(qs_to_label(qs[fit_rows])),
                          method=method, model=best.name, target=best.target, why=_why(best, table, plan),
                          candidates=table)
    eval_sources = None if sources is None else [sources[i] for i in eval_rows]
    record_evaluation(result, scores, qs[eval_rows], eval_sources, seed=seed)
    result.seconds = time.perf_counter() - t0
    info = {
        "kind": "light", "labels": list(LABELS), "binning": BINNING, "target": best.target,
        "score": _score_rule(best.target), "candidate": best.name, "dim": int(x.shape[1]),
        "hidden": int(best.hidden), "l2": best.l2, "epochs": epochs, "learning_rate": learning_rate,
        "batch_size": batch_size, "folds": folds, "heldout": heldout, "seed": seed, "task": task,
        "candidates": [c.name for c in cands],
    }
    if plan == "cv":
        info["outer_fold_choices"] = outer_choice
    write_scorer_files(out, info, result, scores, qs[eval_rows], eval_sources)
    return result


def _score_rule(target: str) -> str:
    return "1 + 4 * clip(predicted qs, 0, 1)" if target == "qs" else "expected label sum_j p_j * j"


def _why(best: Candidate, table: list[dict], plan: str) -> str:
    """One sentence: the winner's CV r, and the best QS regression against the best label classifier."""
    def top(target):
        rows = [row for row in table if row["target"] == target and row["cv_r"] is not None]
        return max(rows, key=lambda row: row["cv_r"], default=None)

    won = next(row for row in table if row["candidate"] == best.name)
    r = "undefined" if won["cv_r"] is None else f"{won['cv_r']:.3f}"
    parts = [f"highest k-fold CV r ({r}) among {len(table)} candidates"
             + (" on the training part" if plan == "heldout" else "")]
    reg, clf = top("qs"), top("label")
    if reg and clf:
        parts.append(f"regression on QS {reg['cv_r']:.3f} ({reg['candidate']}) vs classification on the 1-5 labels "
                     f"{clf['cv_r']:.3f} ({clf['candidate']})")
    return "; ".join(parts)
