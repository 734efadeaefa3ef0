"""The Pearson figure: intervals against references, a planted relation the scorer must recover, interval coverage
over repeated seeds, the held-out plan, the JSON record and the Figure-4 scatter."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from datasets import Dataset

from openmathmix.metrics.correlation import bootstrap_interval, fisher_interval, paired_gain, pearson, pearson_figure
from openmathmix.schema import EMBEDDING, QS
from openmathmix.stages.scorer import EVAL_FILE, load_scorer, save_scorer_scatter, train_light_scorer, train_scorer
from openmathmix.stages.scorer_fit import RIDGE_L2, Candidate
from openmathmix.stages.scorer_result import MIN_HELDOUT_ROWS, SCORER_FILE

# ----- intervals ---------------------------------------------------------------------------------------------------


def test_fisher_interval_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    for n, slope in ((12, 0.3), (80, 1.0), (500, 0.1)):
        x = rng.normal(size=n)
        y = slope * x + rng.normal(size=n)
        ref = stats.pearsonr(x, y)
        lo, hi = fisher_interval(pearson(x, y), n)
        ci = ref.confidence_interval(0.95)  # scipy: Fisher transformation as well
        assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)
    assert fisher_interval(0.5, 3) is None and fisher_interval(float("nan"), 50) is None


def test_bootstrap_interval_is_seeded_and_close_to_fisher_for_normal_pairs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    y = 0.8 * x + 0.6 * rng.normal(size=300)
    boot = bootstrap_interval(x, y, seed=3)
    assert boot == bootstrap_interval(x, y, seed=3) and boot != bootstrap_interval(x, y, seed=4)
    lo, hi = fisher_interval(pearson(x, y), 300)
    assert boot[0] < pearson(x, y) < boot[1]
    assert abs(boot[0] - lo) < 0.02 and abs(boot[1] - hi) < 0.02
    fig = pearson_figure([1.0, 1.0, 1.0, 1.0], [0.1, 0.2, 0.3, 0.4])  # constant scores: r undefined
    assert fig.r is None and fig.ci_low is None and fig.boot_low is None and fig.n == 4


def test_paired_gain_matches_scipy_bootstrap_of_the_difference():
    """The gain is the plain difference of the two r; its SE agrees with scipy's paired bootstrap of the same
    statistic to Monte-Carlo precision (1,000 and 4,000 resamples: a few % apart, 10 % allowed)."""
    from scipy import stats

    rng = np.random.default_rng(2)
    y = rng.normal(size=150)
    a = y + 0.8 * rng.normal(size=150)
    b = y + 1.2 * rng.normal(size=150)
    gain, se = paired_gain(a, b, y, seed=1)
    assert gain == pytest.approx(pearson(a, y) - pearson(b, y), abs=1e-12)
    ref = stats.bootstrap((a, b, y), lambda u, v, w: stats.pearsonr(u, w)[0] - stats.pearsonr(v, w)[0], paired=True,
                          vectorized=False, n_resamples=4000, method="percentile", random_state=0)
    assert se == pytest.approx(ref.standard_error, rel=0.10)
    assert paired_gain(a, b, y, seed=1) == (gain, se)  # seeded
    assert paired_gain(a, a, y)[1] == 0.0  # the same scores: no gain and no spread
    assert all(math.isnan(v) for v in paired_gain(np.ones(20), b[:20], y[:20]))
    with pytest.raises(Exception, match="equal length"):
        paired_gain(a, b[:10], y)


# ----- a planted relation ------------------------------------------------------------------------------------------

DIM, SLOPE, NOISE = 8, 2.0, 1.0


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _planted(n: int, seed: int):
    """QS = sigmoid(SLOPE * s + NOISE * e), s = x . u with |u| = 1 (so s ~ N(0, 1)), e ~ N(0, 1) independent."""
    rng = np.random.default_rng([seed, 11])
    x = rng.normal(size=(n, DIM))
    s = x @ (np.ones(DIM) / math.sqrt(DIM))
    return x.astype(np.float32), _sigmoid(SLOPE * s + NOISE * rng.normal(size=n))


def _best_possible_r() -> float:
    """Population r of the best predictor E[QS | x] = g(s): cov(g(s), QS) = var(g(s)), so r* = sd(g(s)) / sd(QS).

    g(s) = E_e[sigmoid(SLOPE s + NOISE e)] by 60-node Gauss-Hermite quadrature, moments over 400,000 draws.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    rng = np.random.default_rng(123)
    s = rng.normal(size=400_000)
    qs = _sigmoid(SLOPE * s + NOISE * rng.normal(size=s.size))
    g = _sigmoid(SLOPE * s[:, None] + NOISE * nodes[None, :]) @ (weights / weights.sum())
    return float(g.std() / qs.std())


def _dataset(x, qs) -> Dataset:
    return Dataset.from_dict({"source": ["a" if i % 3 else "b" for i in range(len(qs))],
                              EMBEDDING: x.tolist(), QS: qs.tolist()})


def test_light_scorer_recovers_a_planted_relation(tmp_path):
    """r* = 0.877 is the best any scorer can do against this noise. The chosen scorer's r on 200,000 fresh rows must
    come within 0.02 of it (8 dimensions, 300 rows: little estimation error left), and its nested-CV estimate within
    0.06 (a 95 % interval at n = 300, r = 0.88 is about +-0.03 wide, plus the 80 % training folds)."""
    best = _best_possible_r()
    assert 0.87 < best < 0.885  # the planted noise as designed
    x, qs = _planted(300, seed=0)
    cands = [*(Candidate("ridge", "qs", 0, a) for a in (0.01, 1.0)), Candidate("mlp", "label", 0, 1e-3),
             Candidate("mlp", "qs", 16, 1e-3)]
    result = train_light_scorer(_dataset(x, qs), tmp_path / "s", candidates=cands, folds=3, epochs=30, seed=0)
    fresh_x, fresh_qs = _planted(200_000, seed=99)
    true_r = pearson(load_scorer(tmp_path / "s").scores({EMBEDDING: fresh_x}), fresh_qs)
    assert best - 0.02 < true_r <= best
    assert result.r > best - 0.06
    assert result.ci_low < true_r < result.ci_high
    assert len(result.candidates) == 4 and all(row["cv_r"] is not None for row in result.candidates)


@pytest.mark.slow
def test_interval_covers_the_true_r_in_repeated_seeds(tmp_path):
    """20 independent samples of 200 rows, ridge chosen over its penalty grid by nested 5-fold CV. The true r is the
    shipped scorer's r on 200,000 fresh rows. A 95 % interval should miss it about once in 20 draws; we accept three
    misses (P(>= 17 of 20 covered) = 0.98 at 95 % coverage). About 20 s on 2 cores."""
    fresh_x, fresh_qs = _planted(200_000, seed=1234)
    cands = [Candidate("ridge", "qs", 0, a) for a in RIDGE_L2]
    covered = 0
    for seed in range(20):
        x, qs = _planted(200, seed=seed)
        result = train_light_scorer(_dataset(x, qs), tmp_path / str(seed), candidates=cands, seed=seed)
        true_r = pearson(load_scorer(tmp_path / str(seed)).scores({EMBEDDING: fresh_x}), fresh_qs)
        assert result.n == 200 and result.method.startswith("nested 5-fold CV")
        covered += result.ci_low <= true_r <= result.ci_high
    assert covered >= 17


def test_heldout_set_when_the_sample_allows_and_cv_otherwise(tmp_path):
    x, qs = _planted(400, seed=5)
    ridge = [Candidate("ridge", "qs", 0, 0.1)]
    held = train_light_scorer(_dataset(x, qs), tmp_path / "held", candidates=ridge, heldout=0.75, seed=0)
    assert held.n == MIN_HELDOUT_ROWS == 300 and held.train_rows == 100
    assert held.method.startswith("held-out set of 300 rows")
    pairs = json.loads((tmp_path / "held" / EVAL_FILE).read_text())
    assert len(pairs["score"]) == 300 and sum(held.label_counts.values()) == 100
    small = train_light_scorer(_dataset(x, qs), tmp_path / "cv", candidates=ridge, heldout=0.5, folds=4, seed=0)
    assert small.n == 400 and small.train_rows == 400 and small.method.startswith("nested 4-fold CV")  # 200 < 300


def test_result_record_is_json_and_names_everything(tmp_path):
    x, qs = _planted(60, seed=7)
    ds = _dataset(x, qs).add_column("task", ["general"] * 60)
    result = train_scorer(ds, tmp_path / "g", kind="light", hidden=0, epochs=10, task="general", seed=0)
    record = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    for key in ("r", "ci_low", "ci_high", "n", "method", "model", "why", "candidates", "paper_r",
                "mean_qs_per_source", "mean_score_per_source", "boot_low", "boot_high", "interval"):
        assert key in record
    assert record["paper_r"] == 0.74 and record["n"] == 60 and record["pearson"] == record["r"]
    assert set(record["mean_qs_per_source"]) == {"a", "b"}
    by_source = {s: np.mean([q for q, t in zip(qs, ds["source"]) if t == s]) for s in ("a", "b")}
    assert record["mean_qs_per_source"] == pytest.approx(by_source, abs=1e-12)
    pairs = json.loads((tmp_path / "g" / EVAL_FILE).read_text())
    assert record["mean_score_per_source"]["b"] == pytest.approx(
        np.mean([s for s, t in zip(pairs["score"], pairs["source"]) if t == "b"]), abs=1e-12)
    assert record["r"] == pytest.approx(pearson(pairs["score"], pairs["qs"]), abs=1e-12)
    info = json.loads((tmp_path / "g" / SCORER_FILE).read_text())
    assert "regression on QS" in record["why"] and "ridge prior" in record["why"]
    assert record["model"] == info["candidate"] and info["choice"]["shipped"] in ("committee", "prior")
    shipped = {m["candidate"] for m in info["members"]}
    assert shipped <= {c["candidate"] for c in record["candidates"]} | {info["choice"]["prior"]}
    assert "r = " in result.summary() and "paper 0.74" in result.summary()


def test_scatter_png_has_one_panel_per_scorer(tmp_path):
    x, qs = _planted(40, seed=8)
    ridge = [Candidate("ridge", "qs", 0, 1.0)]
    res = {t: train_light_scorer(_dataset(x, qs).add_column("task", [t] * 40), tmp_path / t, candidates=ridge,
                                 task=t) for t in ("reasoning", "general")}
    one = save_scorer_scatter(tmp_path / "fig" / "one.png", {"reasoning": res["reasoning"]})
    two = save_scorer_scatter(tmp_path / "fig" / "two.png", {t: r.to_dict() for t, r in res.items()})

    def png_size(path):
        head = path.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        return struct.unpack(">II", head[16:24])

    (w1, h1), (w2, h2) = png_size(one), png_size(two)
    assert h1 == h2 and w2 == pytest.approx(2 * w1, rel=0.01)
    with pytest.raises(Exception, match="has no scorer_eval.json"):
        save_scorer_scatter(tmp_path / "x.png", [{"out_dir": str(tmp_path / "fig")}])
