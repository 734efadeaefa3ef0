"""The light scorer: heads on the frozen ``embedding`` column, chosen by cross-validation on the scored sample.

The candidates (:func:`.scorer_fit.default_candidates`: closed-form ridge on QS over six penalties, softmax
regression and small MLPs on QS and on the 1-5 labels) are ranked by the Pearson r of their k-fold out-of-fold
scores; :func:`.scorer_fit.choose` then ships either the mean of the best ``ensemble`` of them or, when they do not
clearly beat it, a ridge prior, refitted on all rows (or on the training part, when a held-out set is large enough,
see :mod:`.scorer_result`). The reported r comes from nested cross-validation of that whole procedure, so choosing
does not flatter it. Saved as ``light_scorer.safetensors`` (every head, standardisation included, under
``member<j>.``) plus ``scorer.json``. Deterministic for a seed on a given machine.
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
    ENSEMBLE,
    LABELS,
    MARGIN,
    Candidate,
    Choice,
    Schedule,
    choice_scores,
    choose,
    default_candidates,
    fit_choice,
    light_head,
    nested_cv,
    outputs_of,
    planned_fits,
    qs_to_label,
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
    ensemble: int = ENSEMBLE,
    margin: float | None = MARGIN,
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
        folds: k of the cross-validation that chooses the scorer and measures r.
        ensemble / margin: committee size, and the bootstrap standard errors by which the committee must beat the
            ridge prior (None: no prior) - :func:`.scorer_fit.choose`.
        heldout: share of rows kept apart to measure r when it gives at least 300 rows; else nested k-fold CV.
        epochs / learning_rate / batch_size: Adam schedule of the MLP candidates.
        task: train on the rows of this task only.
        progress: a progress bar over the fits (rate and ETA).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    scored = training_rows(scored, task, (EMBEDDING,))
    cands = tuple(candidates) if candidates is not None else default_candidates(hidden)
    schedule = Schedule(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    x, qs = embeddings_of(scored), np.asarray(scored[QS], dtype=np.float64)
    sources = list(scored["source"]) if "source" in scored.column_names else None
    plan, size = evaluation_plan(len(qs), heldout, folds)
    how = {"ensemble": ensemble, "margin": margin, "schedule": schedule}

    n_fit = len(qs) - size if plan == "heldout" else len(qs)
    bar = tqdm(total=planned_fits(n_fit, folds, len(cands), nested=plan == "cv", ensemble=ensemble,
                                  prior=margin is not None),
               unit="fit", disable=not progress, desc=f"light scorer{' (' + task + ')' if task else ''}")
    with bar:
        if plan == "heldout":
            fit_rows, eval_rows = heldout_split(len(qs), size, seed)
            choice, table, evidence = choose(cands, x[fit_rows], qs[fit_rows], folds=folds, seed=seed,
                                             tick=bar.update, **how)
            heads = fit_choice(choice, x[fit_rows], qs[fit_rows], schedule=schedule, seed=seed)
            scores = choice_scores(choice, heads, x[eval_rows])
            method = method_text(plan, size)
        else:
            fit_rows = eval_rows = np.arange(len(qs))
            scores, outer_choice = nested_cv(cands, x, qs, folds=size, seed=seed, tick=bar.update, **how)
            choice, table, evidence = choose(cands, x, qs, folds=size, seed=seed, tick=bar.update, **how)
            heads = fit_choice(choice, x, qs, schedule=schedule, seed=seed)
            method = method_text(plan, size, nested=True)
        bar.update(len(heads))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_light_heads(out, heads)
    result = ScorerResult(str(out), "light", task, len(fit_rows), label_counts(qs_to_label(qs[fit_rows])),
                          method=method, model=choice.name, target=choice.target,
                          why=_why(choice, table, evidence, plan), candidates=table)
    eval_sources = None if sources is None else [sources[i] for i in eval_rows]
    record_evaluation(result, scores, qs[eval_rows], eval_sources, seed=seed)
    result.seconds = time.perf_counter() - t0
    info = {
        "kind": "light", "labels": list(LABELS), "binning": BINNING, "target": choice.target,
        "score": _score_rule(choice), "candidate": choice.name, "dim": int(x.shape[1]),
        "members": [{"candidate": m.name, "model": m.model, "target": m.target, "hidden": m.hidden, "l2": m.l2}
                    for m in choice.members],
        "choice": evidence, "epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size,
        "folds": folds, "ensemble": ensemble, "margin": margin, "heldout": heldout, "seed": seed, "task": task,
        "candidates": [c.name for c in cands],
    }
    if plan == "cv":
        info["outer_fold_choices"] = outer_choice
    write_scorer_files(out, info, result, scores, qs[eval_rows], eval_sources)
    return result


def save_light_heads(out: Path, heads: Sequence) -> None:
    from safetensors.torch import save_file

    save_file({f"member{j}.{k}": v.contiguous() for j, h in enumerate(heads) for k, v in h.state_dict().items()},
              str(out / LIGHT_WEIGHTS))


def load_light_heads(folder: str | os.PathLike, info: dict, device: str = "cpu") -> tuple[Choice, list]:
    """(the shipped choice, its heads in eval mode) from a light scorer folder; folders written before committees
    existed hold one head without the ``member0.`` prefix."""
    from safetensors.torch import load_file

    state = load_file(str(Path(folder) / LIGHT_WEIGHTS))
    members = info.get("members")
    if members is None:  # one head; "target" is missing from folders older still (labels only)
        members = [{"model": "mlp", "target": info.get("target", "label"), "hidden": info["hidden"],
                    "l2": info.get("l2", 0.0)}]
        state = {f"member0.{k}": v for k, v in state.items()}
    choice = Choice(tuple(Candidate(m["model"], m["target"], m["hidden"], m["l2"]) for m in members))
    heads = []
    for j, m in enumerate(choice.members):
        part = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(f"member{j}.")}
        head = light_head(info["dim"], m.hidden, outputs_of(m.target), part["mean"], part["std"])
        head.load_state_dict(part)
        heads.append(head.to(device).eval())
    return choice, heads


def _score_rule(choice: Choice) -> str:
    rules = {"qs": "1 + 4 * clip(predicted qs, 0, 1)", "label": "expected label sum_j p_j * j"}
    if len(choice.members) == 1:
        return rules[choice.target]
    return "mean over the members of " + " / ".join(rules[t] for t in sorted({m.target for m in choice.members}))


def _why(choice: Choice, table: list[dict], evidence: dict, plan: str) -> str:
    """A few clauses: what shipped and on what evidence, and the best QS regression against the best classifier."""
    def top(target):
        rows = [row for row in table if row["target"] == target and row["cv_r"] is not None]
        return max(rows, key=lambda row: row["cv_r"], default=None)

    def fmt(v):
        return "undefined" if v is None else f"{v:.3f}"

    where = " on the training part" if plan == "heldout" else ""
    k = evidence["committee_size"]
    committee = f"the mean of the {k} best of {len(table)} candidates" if k > 1 else "the best of the candidates"
    if "prior" not in evidence:
        parts = [f"{committee} by k-fold CV r{where} ({fmt(evidence['committee_r'])})"]
    else:
        verdict = "beats" if evidence["shipped"] == "committee" else "does not beat"
        parts = [(f"{committee} (k-fold CV r{where} {fmt(evidence['committee_r'])}) {verdict} the ridge prior "
                  f"{evidence['prior']} ({fmt(evidence['prior_r'])}) by more than {evidence['margin']:g} bootstrap "
                  f"SE (gain {fmt(evidence['gain'])}, SE {fmt(evidence['se'])}), so the "
                  f"{evidence['shipped']} ships")]
    reg, clf = top("qs"), top("label")
    if reg and clf:
        parts.append(f"regression on QS {reg['cv_r']:.3f} ({reg['candidate']}) vs classification on the 1-5 labels "
                     f"{clf['cv_r']:.3f} ({clf['candidate']})")
    return "; ".join(parts)
