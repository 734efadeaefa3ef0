"""Light scorer fidelity on real data: cross-validated Pearson r of our scorer against a 5-fold ridge baseline.

Repeats the run of ../shared/notes/fidelity.md on the files in ../shared/realdata (Alpaca is not there):
GSM8K-ScRel (first 1,000 rows of train_use.jsonl), TAL-SCQ5K-EN (first 1,000 of en_single_choice_train_3K.jsonl),
DMath test.json (2,079), FLAN CoT (first 150 of each of the 7 TSV files), OpenAssistant trees (100),
Self-Instruct seed tasks (175). Embeddings and one-shot quality scores come from the embedded SmolLM2
(`openmathmix.models.resolve()`), n1 = 40 prompt samples per source, n2 = 16 tests chosen by K-center from
GSM8K-ScRel, split by task. Both go through the default stage cache (`openmathmix.stages.base.DEFAULT_CACHE`), so a
second run, or another benchmark on the same rows, reuses them; a cold run takes 30-60 min on 2 CPU cores.

Then, per task (reasoning: 120 scored rows, general: 120), on the same rows:
ours : `openmathmix.stages.scorer.train_light_scorer` with its defaults - inside each outer fold, inner 5-fold CV
       ranks the candidates (ridge on QS, MLP on QS, softmax/MLP on the 1-5 labels) and weighs the mean of the best
       8 against the ridge prior (`scorer_fit.choose`); r of the pooled outer out-of-fold scores (nested 5-fold
       CV) with its 95 % Fisher-z and bootstrap intervals;
ridge: the plain baseline of fidelity.md - ridge regression on standardised embeddings with one fixed penalty
       (alpha = 1.0 * dim, chosen once, not tuned on these rows), pooled out-of-fold r over the same 5 outer folds
       as ours (`scorer_fit.kfold` with the same seed), so the two differ by method only, not by split.

    .venv/bin/python bench/bench_scorer.py                 # full run (cached after the first)
    .venv/bin/python bench/bench_scorer.py --scatter /tmp/scorer.png

The last line is `RESULT bench=scorer pearson_reasoning=X pearson_general=Y ridge_reasoning=A ridge_general=B`;
the intervals are printed above it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realdata_pool import embedded_and_scored  # bench/ is sys.path[0] when run as a script

RIDGE_ALPHA_PER_DIM = 1.0


def scored_sample(progress: bool = True):
    """(pool with embeddings, scored sample with `qs`, QualityReport), all through the default stage cache."""
    return embedded_and_scored(progress=progress)


def ridge_baseline(x: np.ndarray, qs: np.ndarray, alpha: float, folds: list[np.ndarray]) -> np.ndarray:
    """The plain reference, written apart from the package: per training fold, standardise with its mean/std,
    solve (Z'Z + alpha I) w = Z'(y - mean y) (sklearn Ridge's objective), predict the left-out fold."""
    n = len(qs)
    out = np.empty(n)
    for test in folds:
        train = np.setdiff1d(np.arange(n), test)
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-12
        z = (x[train] - mu) / sd
        w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (qs[train] - qs[train].mean()))
        out[test] = ((x[test] - mu) / sd) @ w + qs[train].mean()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scatter", default=None, help="write the Figure-4 scatter of both scorers to this PNG")
    p.add_argument("--out", default=None, help="folder for the two scorers (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import tempfile

    from openmathmix.metrics.correlation import fisher_interval, pearson
    from openmathmix.schema import EMBEDDING, QS
    from openmathmix.stages.scorer import save_scorer_scatter, train_light_scorer
    from openmathmix.stages.scorer_fit import kfold
    from openmathmix.stages.scorer_result import SCORER_FILE

    _, scored, report = scored_sample()
    print("mean one-shot QS per source (sd):")
    for src in report.mean_qs_per_source:
        q = np.asarray([v for v, s in zip(scored[QS], scored["source"]) if s == src])
        print(f"  {src:14s} {q.mean():.3f} ({q.std():.2f})  n={len(q)}")
    out = Path(args.out or tempfile.mkdtemp(prefix="bench-scorer-"))
    ours, ridge, results = {}, {}, {}
    for task in ("reasoning", "general"):
        rows = scored.select([i for i, t in enumerate(scored["task"]) if t == task])
        x = np.asarray(rows[EMBEDDING], dtype=np.float64)
        qs = np.asarray(rows[QS], dtype=np.float64)
        t0 = time.perf_counter()
        result = train_light_scorer(rows, out / task, seed=args.seed, task=task)
        seconds = time.perf_counter() - t0
        results[task] = result
        folds = kfold(len(qs), 5, args.seed)  # the outer folds of train_light_scorer's nested CV
        base = ridge_baseline(x, qs, alpha=RIDGE_ALPHA_PER_DIM * x.shape[1], folds=folds)
        ours[task], ridge[task] = result, pearson(base, qs)
        lo, hi = fisher_interval(ridge[task], len(qs))
        print(f"\n{task}: {len(qs)} scored rows, dim {x.shape[1]}")
        print(f"  ours : r = {result.r:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}] Fisher z, "
              f"[{result.boot_low:.3f}, {result.boot_high:.3f}] bootstrap; {result.method}; {seconds:.0f} s")
        print(f"         shipped: {result.model}\n         why: {result.why}")
        print(f"         outer-fold choices: {json.loads((out / task / SCORER_FILE).read_text())['outer_fold_choices']}")
        print(f"  ridge: r = {ridge[task]:.3f} [{lo:.3f}, {hi:.3f}] Fisher z; alpha = {RIDGE_ALPHA_PER_DIM} x dim, "
              "5 folds, pooled out-of-fold")
        others = {a: pearson(ridge_baseline(x, qs, alpha=a * x.shape[1], folds=folds), qs)
                  for a in (0.01, 0.1, 10.0, 100.0)}
        print("         other fixed penalties (alpha / dim: r): "
              + ", ".join(f"{a:g}: {r:.3f}" for a, r in others.items()))
        print("  candidates (k-fold CV r on all rows; the shipped scorer's choice):")
        for row in result.candidates:
            r = "n/a" if row["cv_r"] is None else f"{row['cv_r']:.3f}"
            print(f"    {row['candidate']:28s} {r}")
        print("  mean per source: real QS | scorer score (out-of-fold, 1-5) | (score - 1) / 4")
        for src, q in result.mean_qs_per_source.items():
            s = result.mean_score_per_source[src]
            print(f"    {src:14s} {q:.3f} | {s:.3f} | {(s - 1) / 4:.3f}")
    if args.scatter:
        print(f"\nscatter: {save_scorer_scatter(args.scatter, results)}")
    print(f"RESULT bench=scorer pearson_reasoning={ours['reasoning'].r:.3f} pearson_general={ours['general'].r:.3f} "
          f"ridge_reasoning={ridge['reasoning']:.3f} ridge_general={ridge['general']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
