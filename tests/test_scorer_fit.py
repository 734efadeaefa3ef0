"""Light-scorer fitting: candidates against references, and the cross-validation bookkeeping (no row ever scored by a
head that saw it or that it helped choose; seeded folds)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import MODEL_F32_ATOL, assert_f32_close

from openmathmix.errors import OpenMathMixError, SchemaError
from openmathmix.metrics.correlation import pearson
from openmathmix.stages import scorer_fit
from openmathmix.stages.scorer_fit import (
    Candidate,
    Choice,
    Schedule,
    choice_scores,
    choose,
    cross_val_scores,
    default_candidates,
    expected_score,
    fit_candidate,
    fit_choice,
    head_scores,
    kfold,
    nested_cv,
    planned_fits,
    prior_ridge,
    qs_to_score,
    select_candidate,
)


def _linear(n: int, dim: int, seed: int, noise: float = 0.3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    qs = 1 / (1 + np.exp(-(x @ rng.normal(size=dim) / np.sqrt(dim) + noise * rng.normal(size=n))))
    return x, qs


def test_kfold_partitions_rows_and_is_seeded():
    folds = kfold(23, 5, seed=4)
    assert len(folds) == 5 and sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(23))
    for a, b in zip(kfold(23, 5, seed=4), folds):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(kfold(23, 5, seed=5), folds))
    assert len(kfold(3, 5)) == 3  # k capped at n: one row per fold
    with pytest.raises(OpenMathMixError, match="at least 2 folds"):
        kfold(10, 1)


def test_ridge_matches_sklearn_on_standardised_embeddings():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    x, qs = _linear(60, 12, seed=0)
    x[:, 3] *= 40.0  # scales differ by dimension: standardisation must undo it
    x[:, 5] += 7.0
    for l2 in (0.01, 1.0):
        head = fit_candidate(Candidate("ridge", "qs", 0, l2), x, qs)
        z = StandardScaler().fit_transform(x.astype(np.float64))
        ref = Ridge(alpha=len(qs) * l2).fit(z, qs)  # ours: mean squared error + l2 |w|^2 = sklearn's alpha / n
        import torch

        with torch.inference_mode():
            ours = head(torch.as_tensor(x))[:, 0].numpy()
        assert_f32_close(ours, ref.predict(z), atol=MODEL_F32_ATOL)
        assert_f32_close(head_scores(head, "qs", x), 1 + 4 * np.clip(ref.predict(z), 0, 1), atol=MODEL_F32_ATOL)


def test_score_scales():
    np.testing.assert_array_equal(qs_to_score([-0.2, 0.0, 0.25, 0.5, 1.0, 1.3]), [1, 1, 2, 3, 5, 5])
    assert expected_score(np.eye(5)).tolist() == [1, 2, 3, 4, 5]
    x, qs = _linear(40, 4, seed=1)
    head = fit_candidate(Candidate("mlp", "label", 0, 1e-3), x, qs, schedule=Schedule(epochs=20))
    s = head_scores(head, "label", x)
    assert s.shape == (40,) and np.all((s >= 1) & (s <= 5))


def test_candidates_are_checked_and_named():
    assert Candidate("ridge", "qs", 0, 0.1).name == "ridge-qs(l2=0.1)"
    assert Candidate("mlp", "label", 0, 0.001).name == "softmax(l2=0.001)"
    assert Candidate("mlp", "qs", 32, 0.1).name == "mlp-qs(h=32, l2=0.1)"
    with pytest.raises(OpenMathMixError, match="ridge candidate regresses QS"):
        Candidate("ridge", "label")
    with pytest.raises(OpenMathMixError, match="target must be one of"):
        Candidate("mlp", "rank")
    grid = default_candidates()
    assert {c.model for c in grid} == {"ridge", "mlp"} and {c.target for c in grid} == {"qs", "label"}
    assert all(c.hidden == 0 for c in default_candidates(0))
    assert {c.hidden for c in default_candidates(64)} == {0, 64}
    with pytest.raises(SchemaError, match="embeddings must be"):
        fit_candidate(grid[0], np.zeros((3, 2)), [0.1, 0.2])


def test_out_of_fold_scores_never_come_from_a_head_that_saw_the_row():
    """With more dimensions than rows, unpenalised ridge interpolates its training rows exactly: a row in its own
    training fold would get exactly 1 + 4 QS. Out of fold, none does; in sample, all do."""
    x, qs = _linear(30, 60, seed=2)
    qs = np.random.default_rng(3).uniform(0.05, 0.95, size=30)  # no relation at all
    interp = Candidate("ridge", "qs", 0, 0.0)
    in_sample = head_scores(fit_candidate(interp, x, qs), "qs", x)
    assert_f32_close(in_sample, 1 + 4 * qs, atol=MODEL_F32_ATOL)  # the check below could catch a leak
    oof = cross_val_scores(interp, x, qs, kfold(30, 5, seed=0))
    assert np.min(np.abs(oof - (1 + 4 * qs))) > 1e-3
    assert abs(pearson(oof, qs)) < 0.5


@pytest.mark.parametrize(("ensemble", "margin"), [(1, None), (2, 0.0)])
def test_nested_cv_never_lets_an_outer_fold_choose_or_fit(monkeypatch, ensemble, margin):
    """Row ids ride in column 0; a spy records the rows of every fit and of every scoring (the single best
    candidate, and a committee of two weighed against the ridge prior)."""
    n, k = 24, 3
    rng = np.random.default_rng(0)
    x = np.column_stack([np.arange(n), rng.normal(size=(n, 3))]).astype(np.float32)
    qs = rng.uniform(size=n)
    fits, scored, alive = [], [], []  # alive: heads kept referenced, so no id() is reused
    real_fit, real_scores = scorer_fit.fit_candidate, scorer_fit.head_scores

    def spy_fit(cand, xs, q, **kw):
        head = real_fit(cand, xs, q, **kw)
        alive.append(head)
        fits.append((id(head), set(np.asarray(xs)[:, 0].astype(int).tolist())))
        return head

    def spy_scores(head, target, xs):
        scored.append((id(head), set(np.asarray(xs)[:, 0].astype(int).tolist())))
        return real_scores(head, target, xs)

    monkeypatch.setattr(scorer_fit, "fit_candidate", spy_fit)
    monkeypatch.setattr(scorer_fit, "head_scores", spy_scores)
    cands = [Candidate("ridge", "qs", 0, 0.1), Candidate("ridge", "qs", 0, 10.0)]
    scores, chosen = nested_cv(cands, x, qs, folds=k, seed=0, ensemble=ensemble, margin=margin)
    assert scores.shape == (n,) and len(chosen) == k and np.all(np.isfinite(scores))
    fitted_rows = dict(fits)
    for head, rows in scored:  # every scoring: rows disjoint from those its head was fitted on
        assert not rows & fitted_rows[head]
    if margin is None:
        assert set(chosen) <= {c.name for c in cands}
    per_outer = len(fits) // k  # each outer fold: k inner fits per candidate (and the prior), then the shipped heads
    assert len(fits) % k == 0 and per_outer >= k * (len(cands) + (margin is not None)) + 1
    if ensemble == 1 and margin is None:
        assert per_outer == k * len(cands) + 1
    for f, test in enumerate(kfold(n, k, seed=0)):
        for _, rows in fits[f * per_outer : (f + 1) * per_outer]:
            assert not rows & set(test.tolist())


def test_selection_picks_the_capacity_the_data_needs():
    """QS depends on |x0| only: no linear head can follow it, an MLP can; and CV says so."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 4)).astype(np.float32)
    qs = 1 / (1 + np.exp(-(2.5 * (np.abs(x[:, 0]) - 0.8) + 0.3 * rng.normal(size=240))))
    cands = [Candidate("ridge", "qs", 0, 0.1), Candidate("mlp", "qs", 16, 1e-3)]
    best, table = select_candidate(cands, x, qs, folds=3, seed=0, schedule=Schedule(epochs=60))
    assert best.name == "mlp-qs(h=16, l2=0.001)"
    assert table[0]["cv_r"] < 0.3 and table[1]["cv_r"] > 0.8
    again = select_candidate(cands, x, qs, folds=3, seed=0, schedule=Schedule(epochs=60))
    assert again == (best, table)  # deterministic for a seed


@pytest.mark.parametrize(("n", "folds", "n_cands"), [(23, 5, 2), (7, 5, 3), (3, 5, 2), (12, 3, 1)])
def test_planned_fits_counts_every_fit_the_progress_bar_sees(n, folds, n_cands):
    x, qs = _linear(n, 3, seed=n)
    cands = [Candidate("ridge", "qs", 0, 10.0**i) for i in range(n_cands)]
    ticks = []
    nested_cv(cands, x, qs, folds=min(folds, n), seed=0, tick=lambda: ticks.append(1))
    select_candidate(cands, x, qs, folds=min(folds, n), seed=0, tick=lambda: ticks.append(1))
    assert len(ticks) + 1 == planned_fits(n, folds, n_cands, nested=True)  # + the final fit on all rows
    ticks.clear()
    select_candidate(cands, x, qs, folds=folds, seed=0, tick=lambda: ticks.append(1))
    assert len(ticks) + 1 == planned_fits(n, folds, n_cands, nested=False)
    ticks.clear()  # a committee of two that always ships (no prior): exact again; with the prior: a bound
    kw = {"folds": min(folds, n), "seed": 0, "ensemble": 2, "tick": lambda: ticks.append(1)}
    nested_cv(cands, x, qs, margin=None, **kw)
    choice, _, _ = choose(cands, x, qs, margin=None, **kw)
    assert len(ticks) + len(choice.members) == planned_fits(n, folds, n_cands, nested=True, ensemble=2)
    ticks.clear()
    nested_cv(cands, x, qs, margin=1.0, **kw)
    choice, _, _ = choose(cands, x, qs, margin=1.0, **kw)
    assert len(ticks) + len(choice.members) <= planned_fits(n, folds, n_cands, nested=True, ensemble=2, prior=True)
    assert len(ticks) >= min(folds, n) * (n_cands + 1)


def test_choose_ships_the_prior_without_evidence_and_the_committee_with_it():
    """No relation at all: nothing beats the ridge prior by 1.5 SE, so the prior ships. QS a function of |x0|: the
    MLP beats the prior by far more, so it ships."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(80, 20)).astype(np.float32)
    noise = rng.uniform(0.05, 0.95, size=80)
    cands = [Candidate("ridge", "qs", 0, 0.01), Candidate("mlp", "label", 8, 1e-3)]
    choice, table, ev = choose(cands, x, noise, folds=4, seed=0, ensemble=2, margin=1.5,
                               schedule=Schedule(epochs=30))
    assert choice == Choice((prior_ridge(80, 20),)) and choice.name == "ridge-qs(l2=0.25)"
    assert ev["shipped"] == "prior" and not ev["gain"] > 1.5 * ev["se"] and ev["committee_size"] == 2
    assert ev["committee"] == "mean of 2: " + ", ".join(
        row["candidate"] for row in sorted(table, key=lambda row: -row["cv_r"]))

    x = rng.normal(size=(240, 4)).astype(np.float32)
    qs = 1 / (1 + np.exp(-(2.5 * (np.abs(x[:, 0]) - 0.8) + 0.3 * rng.normal(size=240))))
    mlp = Candidate("mlp", "qs", 16, 1e-3)
    choice, _, ev = choose([Candidate("ridge", "qs", 0, 0.1), mlp], x, qs, folds=3, seed=0, ensemble=1,
                           margin=1.5, schedule=Schedule(epochs=60))
    assert choice == Choice((mlp,)) and ev["shipped"] == "committee"
    assert ev["committee_r"] > 0.8 and ev["prior_r"] < 0.3 and ev["gain"] > 1.5 * ev["se"] > 0


def test_a_committee_scores_the_mean_of_its_members():
    x, qs = _linear(50, 6, seed=3)
    members = (Candidate("ridge", "qs", 0, 1.0), Candidate("mlp", "label", 0, 1e-3))
    choice = Choice(members)
    assert choice.target == "mixed" and choice.name == "mean of 2: ridge-qs(l2=1), softmax(l2=0.001)"
    heads = fit_choice(choice, x, qs, schedule=Schedule(epochs=10), seed=0)
    expect = (head_scores(heads[0], "qs", x) + head_scores(heads[1], "label", x)) / 2
    np.testing.assert_allclose(choice_scores(choice, heads, x), expect, rtol=0, atol=1e-12)
    with pytest.raises(OpenMathMixError, match="ensemble size"):
        choose(members, x, qs, ensemble=0)
