"""Light-scorer fitting on frozen embeddings: candidate heads, k-fold cross-validation, selection, nested CV.

Pure functions: arrays in, fitted heads / scores out, no I/O. Every fitted head is a :class:`LightHead` (standardise
with the training rows' mean and std, then one Linear, or Linear-GELU-Linear), so cross-validation, the saved scorer
and inference all score rows with the same code (:func:`head_scores`).

Candidates (:class:`Candidate`)
-------------------------------
* ``ridge`` on QS: closed-form ridge regression on the standardised embeddings (float64 SVD), objective
  ``mean((qs - w.x - b)^2) + l2 * |w|^2``; ``b`` is not penalised.
* ``mlp`` on QS (``hidden > 0``): the same objective through one GELU hidden layer, trained with Adam.
* ``mlp`` on the labels: cross-entropy on the 1-5 labels (softmax regression when ``hidden == 0``), plus
  ``l2 * |W|^2`` on the weight matrices, trained with Adam.

Both targets give a score on the 1-5 scale:
* QS regression: ``1 + 4 * clip(predicted QS, 0, 1)``, a linear map (QS 0 -> 1, 0.5 -> 3, 1 -> 5) so the score
  keeps the regression's ordering everywhere inside [0, 1];
* label classification: the expected label ``sum_j p_j * j`` (the paper's labels; a perfect classifier gives
  ``1 + min(4, floor(5 QS))``, which differs from ``1 + 4 QS`` by less than 1 and agrees at the ends).
Candidates are compared by the Pearson r of these scores against the real QS, which neither map can change much.

Cross-validation
----------------
:func:`kfold` splits rows into k seeded folds of near-equal size; :func:`cross_val_scores` fits a candidate on k-1
folds and scores the k-th, so every row is scored by a head that never saw it. :func:`select_candidate` ranks the
candidates by the r of their pooled out-of-fold scores; :func:`nested_cv` repeats the whole choice inside each
outer training part, so the r of its pooled outer scores carries no optimism from choosing among candidates.

What ships (:func:`choose`)
---------------------------
With a hundred-odd scored rows per task, the CV r of two candidates differs by less than its own noise, so picking
the single best one mostly picks noise. :func:`choose` therefore weighs two options on the same folds:
* the **committee**: the mean score of the ``ensemble`` candidates with the highest CV r (averaging heads that
  err differently cancels part of each one's error);
* the **prior**: ridge on QS with penalty ``dim / n`` (sum-of-squares penalty ``dim``, i.e. a prior variance of
  ``1 / dim`` per standardised weight, so all dimensions together explain O(1) of QS whatever ``dim`` is).
The committee ships only when its CV r beats the prior's by more than ``margin`` bootstrap standard errors of the
paired difference; on weak or scarce evidence the prior ships. ``margin=None`` skips the prior (committee always).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import OpenMathMixError, SchemaError
from ..metrics.correlation import paired_gain, pearson

LABELS = (1, 2, 3, 4, 5)  # QS_max = 5 (Section 3.3)
TARGETS = ("qs", "label")
_EDGE_EPS = 1e-9


# --------------------------------------------------------------------------------------------------------------------
# Labels and the 1-5 scale
# --------------------------------------------------------------------------------------------------------------------


def qs_to_label(qs) -> np.ndarray:
    """Equal-width binning (scorer module docstring): QS in [0, 1] -> int label in 1..5."""
    q = np.asarray(qs, dtype=np.float64)
    if q.size and (not np.all(np.isfinite(q)) or q.min() < -_EDGE_EPS or q.max() > 1 + _EDGE_EPS):
        raise OpenMathMixError(f"quality scores must lie in [0, 1], got min {q.min()!r} max {q.max()!r}")
    bins = np.floor(len(LABELS) * np.clip(q, 0.0, 1.0) + _EDGE_EPS).astype(np.int64)
    return 1 + np.minimum(len(LABELS) - 1, bins)


def expected_score(probs) -> np.ndarray:
    """Expected label ``sum_j p_j * j`` of softmax rows [n, 5] -> floats in [1, 5]."""
    p = np.asarray(probs, dtype=np.float64)
    return np.clip(p @ np.asarray(LABELS, dtype=np.float64), LABELS[0], LABELS[-1])


def qs_to_score(qs) -> np.ndarray:
    """A predicted QS on the 1-5 scale: ``1 + 4 * clip(qs, 0, 1)``."""
    return 1.0 + (LABELS[-1] - LABELS[0]) * np.clip(np.asarray(qs, dtype=np.float64), 0.0, 1.0)


# --------------------------------------------------------------------------------------------------------------------
# Candidates and the head module
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One light-scorer configuration: ``model`` "ridge" or "mlp", ``target`` "qs" or "label"."""

    model: str
    target: str
    hidden: int = 0
    l2: float = 0.0

    def __post_init__(self):
        if self.model not in ("ridge", "mlp"):
            raise OpenMathMixError(f"candidate model must be 'ridge' or 'mlp', got {self.model!r}")
        if self.target not in TARGETS:
            raise OpenMathMixError(f"candidate target must be one of {TARGETS}, got {self.target!r}")
        if self.model == "ridge" and (self.target != "qs" or self.hidden):
            raise OpenMathMixError("a ridge candidate regresses QS with no hidden layer")
        if self.hidden < 0 or self.l2 < 0:
            raise OpenMathMixError(f"hidden and l2 must be >= 0, got {self.hidden} and {self.l2}")

    @property
    def name(self) -> str:
        if self.model == "ridge":
            return f"ridge-qs(l2={self.l2:g})"
        kind = "softmax" if self.target == "label" and not self.hidden else f"mlp-{self.target}"
        return f"{kind}({'' if not self.hidden else f'h={self.hidden}, '}l2={self.l2:g})"


RIDGE_L2 = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
MLP_HIDDEN = (32, 128)
MLP_L2 = (1e-3, 1e-1)


def default_candidates(hidden: int | Sequence[int] | None = None) -> tuple[Candidate, ...]:
    """Ridge on QS over :data:`RIDGE_L2`; softmax regression and MLPs (``hidden`` sizes, default
    :data:`MLP_HIDDEN`) on QS and on the labels over :data:`MLP_L2`. ``hidden=0`` keeps the linear ones only."""
    sizes = MLP_HIDDEN if hidden is None else ((hidden,) if isinstance(hidden, int) else tuple(hidden))
    out = [Candidate("ridge", "qs", 0, a) for a in RIDGE_L2]
    out += [Candidate("mlp", "label", 0, a) for a in MLP_L2]
    for h in (s for s in sizes if s > 0):
        out += [Candidate("mlp", t, h, a) for t in TARGETS for a in MLP_L2]
    return tuple(out)


@dataclass(frozen=True)
class Schedule:
    """Adam settings of the MLP candidates (ridge has none)."""

    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-2  # 100 full-batch steps at 1e-3 leave softmax regression far from its optimum


def light_head(dim: int, hidden: int, outputs: int, mean, std):
    """The head module: standardise, then Linear-GELU-Linear (or one Linear when ``hidden == 0``)."""
    import torch

    class LightHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
            self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clone())
            if hidden > 0:
                self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(),
                                               torch.nn.Linear(hidden, outputs))
            else:
                self.net = torch.nn.Linear(dim, outputs)

        def forward(self, emb):
            return self.net((emb - self.mean) / self.std)

    return LightHead()


def outputs_of(target: str) -> int:
    return 1 if target == "qs" else len(LABELS)


def head_scores(head, target: str, embeddings) -> np.ndarray:
    """Scores in [1, 5] of rows under a fitted head (float32 forward, float64 output)."""
    import torch

    x = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    with torch.inference_mode():
        out = head(x.to(head.mean.device)).float()
        if target == "qs":
            return qs_to_score(out[:, 0].cpu().numpy())
        return expected_score(torch.softmax(out, dim=-1).cpu().numpy())


# --------------------------------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------------------------------


def _check(x, qs) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    q = np.asarray(qs, dtype=np.float64)
    if x.ndim != 2 or q.shape != (x.shape[0],):
        raise SchemaError(f"embeddings must be [n, dim] and QS [n], got shapes {x.shape} and {q.shape}")
    if not np.all(np.isfinite(x)):
        raise SchemaError("embeddings contain NaN or inf values; re-run the embed stage")
    qs_to_label(q)  # range check
    return x, q


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training mean and std per dimension; a dimension constant on the training rows keeps std 1 (as sklearn's
    StandardScaler), so it neither blows up unseen rows nor carries weight."""
    x64 = x.astype(np.float64)
    std = x64.std(0)
    return x64.mean(0), np.where(std < 1e-6, 1.0, std)


# Multiply-adds per training step below which an MLP fit runs on one thread: such steps take well under a
# millisecond, and a second thread costs more in hand-offs than it saves (many times more when the cores are shared).
ONE_THREAD_WORK = 1 << 24


@contextlib.contextmanager
def _threads_for(work: int):
    import torch

    before = torch.get_num_threads()
    if work >= ONE_THREAD_WORK or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _torch_seed(seed: int, *tags: int) -> int:
    return int(np.random.default_rng([seed, *tags]).integers(2**62))


def fit_candidate(cand: Candidate, x, qs, *, schedule: Schedule = Schedule(), seed: int = 0):
    """Fit one candidate on rows (x [n, dim], qs [n]) -> LightHead (eval mode, float32)."""
    import torch

    x, q = _check(x, qs)
    if len(q) < 1:
        raise OpenMathMixError("no rows to fit a scorer head on")
    mean, std = _standardisation(x)
    if cand.model == "ridge":
        return _fit_ridge(x, q, mean, std, cand.l2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_torch_seed(seed, 1))
        head = light_head(x.shape[1], cand.hidden, outputs_of(cand.target), mean, std)
    xt = torch.as_tensor(x)
    if cand.target == "qs":
        y = torch.as_tensor(q, dtype=torch.float32)
        last_bias = torch.tensor([q.mean()])
    else:
        labels = qs_to_label(q) - 1
        y = torch.as_tensor(labels, dtype=torch.long)
        freq = (np.bincount(labels, minlength=len(LABELS)) + 0.5) / (len(labels) + 0.5 * len(LABELS))
        last_bias = torch.as_tensor(np.log(freq), dtype=torch.float32)
    out_layer = head.net if cand.hidden == 0 else head.net[-1]
    weights = [p for n, p in head.named_parameters() if n.endswith("weight")]
    with torch.no_grad():
        out_layer.bias.copy_(last_bias)  # start from the base rate: few Adam steps need not learn the offset
    gen = torch.Generator().manual_seed(_torch_seed(seed, 2))
    opt = torch.optim.Adam(head.parameters(), lr=schedule.learning_rate)
    head.train()
    width = cand.hidden or outputs_of(cand.target)
    with _threads_for(min(len(xt), schedule.batch_size) * x.shape[1] * width):
        _adam_loop(head, opt, xt, y, cand, weights, schedule, gen)
    return head.eval()


def _adam_loop(head, opt, xt, y, cand: Candidate, weights, schedule: Schedule, gen) -> None:
    import torch

    for _ in range(schedule.epochs):
        for rows in torch.randperm(len(xt), generator=gen).split(schedule.batch_size):
            opt.zero_grad(set_to_none=True)
            out = head(xt[rows])
            if cand.target == "qs":
                loss = torch.nn.functional.mse_loss(out[:, 0], y[rows])
            else:
                loss = torch.nn.functional.cross_entropy(out, y[rows])
            loss = loss + cand.l2 * sum((w * w).sum() for w in weights)
            loss.backward()
            opt.step()


def _fit_ridge(x: np.ndarray, q: np.ndarray, mean: np.ndarray, std: np.ndarray, l2: float):
    """Closed form of ``min mean((q - z.w - b)^2) + l2 |w|^2`` with z the standardised rows (thin SVD)."""
    import torch

    z = (x.astype(np.float64) - mean) / std
    zc = z - z.mean(0)
    b = q.mean()
    u, s, vt = np.linalg.svd(zc, full_matrices=False)
    n = len(q)
    keep = s > 1e-10 * s.max(initial=0.0)  # l2 = 0: the minimum-norm least-squares solution
    shrink = np.zeros_like(s)
    shrink[keep] = s[keep] / (s[keep] ** 2 + n * l2)
    w = vt.T @ (shrink * (u.T @ (q - b)))
    intercept = b - z.mean(0) @ w
    head = light_head(x.shape[1], 0, 1, mean, std)
    with torch.no_grad():
        head.net.weight.copy_(torch.as_tensor(w[None, :], dtype=torch.float32))
        head.net.bias.copy_(torch.as_tensor([intercept], dtype=torch.float32))
    return head.eval()


# --------------------------------------------------------------------------------------------------------------------
# Cross-validation and selection
# --------------------------------------------------------------------------------------------------------------------


def kfold(n: int, k: int, seed: int = 0) -> list[np.ndarray]:
    """k seeded folds (sorted row indices) partitioning range(n); sizes differ by at most one; k capped at n."""
    if k < 2:
        raise OpenMathMixError(f"cross-validation needs at least 2 folds, got {k}")
    if n < 2:
        raise OpenMathMixError(f"cross-validation needs at least 2 rows, got {n}")
    perm = np.random.default_rng([seed, 0xF01D]).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, min(k, n))]


Tick = Callable[[], object] | None  # called once after every fit (a progress bar's update)


def cross_val_scores(cand: Candidate, x, qs, folds: Sequence[np.ndarray], *, schedule: Schedule = Schedule(),
                     seed: int = 0, tick: Tick = None) -> np.ndarray:
    """Out-of-fold scores: row i is scored by the head fitted on every fold but the one holding i."""
    x, q = _check(x, qs)
    out = np.full(len(q), np.nan)
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(q)), test, assume_unique=True)
        head = fit_candidate(cand, x[train], q[train], schedule=schedule, seed=_torch_seed(seed, 3, f))
        out[test] = head_scores(head, cand.target, x[test])
        if tick:
            tick()
    if np.isnan(out).any():
        raise OpenMathMixError("the folds do not cover every row")
    return out


def select_candidate(candidates: Sequence[Candidate], x, qs, *, folds: int = 5, seed: int = 0,
                     schedule: Schedule = Schedule(), tick: Tick = None) -> tuple[Candidate, list[dict]]:
    """The candidate with the highest k-fold CV r, and the table of every candidate's CV r (in given order).

    Ties and undefined r (constant scores) go to the earlier candidate in ``candidates``.
    """
    choice, table, _ = choose(candidates, x, qs, folds=folds, seed=seed, ensemble=1, margin=None,
                              schedule=schedule, tick=tick)
    return choice.members[0], table


ENSEMBLE = 8  # committee size of choose()
MARGIN = 1.5  # bootstrap standard errors by which the committee must beat the prior


@dataclass(frozen=True)
class Choice:
    """What a light scorer ships: the mean score of ``members`` (one candidate, or a committee)."""

    members: tuple[Candidate, ...]

    @property
    def name(self) -> str:
        if len(self.members) == 1:
            return self.members[0].name
        return f"mean of {len(self.members)}: " + ", ".join(m.name for m in self.members)

    @property
    def target(self) -> str:
        targets = {m.target for m in self.members}
        return targets.pop() if len(targets) == 1 else "mixed"


def prior_ridge(n: int, dim: int) -> Candidate:
    """Ridge on QS with penalty ``dim / n`` in our mean-loss units (module docstring, "What ships")."""
    return Candidate("ridge", "qs", 0, dim / max(n, 1))


def choose(candidates: Sequence[Candidate], x, qs, *, folds: int = 5, seed: int = 0, ensemble: int = ENSEMBLE,
           margin: float | None = MARGIN, schedule: Schedule = Schedule(),
           tick: Tick = None) -> tuple[Choice, list[dict], dict]:
    """The shipped choice for rows (x, qs), the CV table of the candidates, and the evidence behind the choice.

    Evidence: ``committee_r`` / ``prior_r`` (CV r on the same folds), ``gain`` and its bootstrap ``se``, the
    ``margin`` and what ``shipped`` ("committee" or "prior"). ``ensemble=1`` with ``margin=None`` is the plain
    single best candidate of :func:`select_candidate`.
    """
    if not candidates:
        raise OpenMathMixError("no scorer candidates to choose from")
    if ensemble < 1:
        raise OpenMathMixError(f"ensemble size must be at least 1, got {ensemble}")
    x, q = _check(x, qs)
    parts = kfold(len(q), folds, seed)
    oof = [cross_val_scores(c, x, q, parts, schedule=schedule, seed=seed, tick=tick) for c in candidates]
    table = [_table_row(c, pearson(o, q)) for c, o in zip(candidates, oof)]
    ranked = sorted(range(len(candidates)), key=lambda i: (-math.inf if table[i]["cv_r"] is None else
                                                           -table[i]["cv_r"], i))
    top = ranked[:ensemble]
    committee = Choice(tuple(candidates[i] for i in top))
    committee_oof = np.mean([oof[i] for i in top], axis=0)
    evidence = {"committee": committee.name, "committee_size": len(top), "committee_r":
                _finite(pearson(committee_oof, q)), "margin": margin, "shipped": "committee"}
    if margin is None:
        return committee, table, evidence
    prior = prior_ridge(len(q), x.shape[1])
    prior_oof = cross_val_scores(prior, x, q, parts, schedule=schedule, seed=seed, tick=tick)
    gain, se = paired_gain(committee_oof, prior_oof, q, seed=seed)
    evidence.update(prior=prior.name, prior_r=_finite(pearson(prior_oof, q)), gain=_finite(gain), se=_finite(se))
    if not (math.isfinite(gain) and math.isfinite(se) and gain > margin * se):
        evidence["shipped"] = "prior"
        return Choice((prior,)), table, evidence
    return committee, table, evidence


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _table_row(c: Candidate, r: float) -> dict:
    return {"candidate": c.name, "model": c.model, "target": c.target, "hidden": c.hidden, "l2": c.l2,
            "cv_r": _finite(r)}


def fit_choice(choice: Choice, x, qs, *, schedule: Schedule = Schedule(), seed: int = 0) -> list:
    """One fitted head per member of ``choice`` (member j seeded from ``seed`` and j)."""
    return [fit_candidate(m, x, qs, schedule=schedule, seed=seed if j == 0 else _torch_seed(seed, 6, j))
            for j, m in enumerate(choice.members)]


def choice_scores(choice: Choice, heads: Sequence, embeddings) -> np.ndarray:
    """Mean of the members' scores in [1, 5]."""
    return np.mean([head_scores(h, m.target, embeddings) for m, h in zip(choice.members, heads)], axis=0)


def nested_cv(candidates: Sequence[Candidate], x, qs, *, folds: int = 5, seed: int = 0, ensemble: int = 1,
              margin: float | None = None, schedule: Schedule = Schedule(),
              tick: Tick = None) -> tuple[np.ndarray, list[str]]:
    """Pooled outer out-of-fold scores of the whole procedure (:func:`choose` by inner CV, fit, score the outer
    fold).

    Returns (scores [n], the choice made in each outer fold). No row takes part in choosing or fitting the
    heads that score it.
    """
    x, q = _check(x, qs)
    outer = kfold(len(q), folds, seed)
    out = np.full(len(q), np.nan)
    chosen = []
    for f, test in enumerate(outer):
        train = np.setdiff1d(np.arange(len(q)), test, assume_unique=True)
        inner_folds = min(folds, len(train))
        if inner_folds >= 2 and (len(candidates) > 1 or margin is not None):
            choice, _, _ = choose(candidates, x[train], q[train], folds=inner_folds, seed=_torch_seed(seed, 4, f),
                                  ensemble=ensemble, margin=margin, schedule=schedule, tick=tick)
        else:
            choice = Choice((candidates[0],))
        heads = fit_choice(choice, x[train], q[train], schedule=schedule, seed=_torch_seed(seed, 5, f))
        out[test] = choice_scores(choice, heads, x[test])
        if tick:
            for _ in heads:
                tick()
        chosen.append(choice.name)
    return out, chosen


def planned_fits(n: int, folds: int, n_candidates: int, *, nested: bool, ensemble: int = 1,
                 prior: bool = False) -> int:
    """Fits that ``nested_cv`` (when ``nested``) plus ``choose`` and the final fits make on n rows: exact when
    ``ensemble == 1``, else an upper bound (where the prior ships, one head is fitted instead of ``ensemble``)."""
    k = min(folds, n)
    per_choose = n_candidates + prior
    shipped = min(ensemble, n_candidates)
    total = k * per_choose + shipped
    if nested:
        for size in (n // k + (f < n % k) for f in range(k)):
            inner = min(folds, n - size)
            chooses = inner >= 2 and (n_candidates > 1 or prior)
            total += (shipped if chooses else 1) + (inner * per_choose if chooses else 0)
    return total
