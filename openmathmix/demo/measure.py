"""How well the demo shows the method: mean score per row kind, and how predictable QS is from the embeddings.

- :func:`mean_by_kind` groups any numeric column (``qs`` of the scored sample, ``quality_score`` of the pool) by
  the row kind read from the ids; `make demo` prints it and the card shows it.
- :func:`ridge_cv_pearson` is the ceiling a scorer on frozen embeddings can be held to: 5-fold cross-validated
  ridge regression (standardised features, the penalty chosen per fold by exact leave-one-out on the training part).

``python -m openmathmix.demo.measure`` runs sources -> embeddings -> one-shot scores on the demo data with the real
model and prints both, with timings (set ``OPENMATHMIX_CPU_BF16=0`` to time the fp32 path of CPUs without bf16).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import MissingColumnsError, SchemaError
from .generate import KINDS, kind_of

__all__ = ["main", "mean_by_kind", "ridge_cv_pearson", "ridge_cv_predictions"]

RIDGE_ALPHAS = tuple(np.logspace(-1, 5, 13))  # penalties tried per fold (features are standardised)


def mean_by_kind(ds, column: str, *, task: str | None = None) -> dict[str, tuple[float, int]]:
    """``{kind: (mean of column, rows)}`` over the rows of ``ds`` (only those of ``task`` when given), KINDS order.

    Kinds without rows are left out. Raises SchemaError for an id that is not a demo row id.
    """
    needed = ["id", column] + (["task"] if task is not None else [])
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise MissingColumnsError(f"mean_by_kind needs column(s) {missing}; the dataset has {ds.column_names}")
    ids, values = ds["id"], ds[column]
    keep = ds["task"] if task is not None else None
    groups: dict[str, list[float]] = {}
    for i, (row_id, value) in enumerate(zip(ids, values)):
        if keep is not None and keep[i] != task:
            continue
        groups.setdefault(kind_of(row_id), []).append(float(value))
    return {k: (float(np.mean(groups[k])), len(groups[k])) for k in KINDS if k in groups}


def _folds(n: int, folds: int, seed: int) -> np.ndarray:
    order = np.random.default_rng([seed, n]).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % folds
    return fold_of


def _ridge_fit(a: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> np.ndarray:
    """Ridge coefficients on centred ``a``/``y``, with the penalty of least leave-one-out error (closed form)."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    uty = u.T @ y
    best, best_err = None, np.inf
    for alpha in alphas:
        shrink = s**2 / (s**2 + alpha)
        hat = (u**2) @ shrink + 1.0 / len(y)  # + the intercept's share of the hat matrix
        loo = (y - u @ (shrink * uty)) / (1.0 - hat)
        err = float(np.mean(loo**2))
        if err < best_err:
            best, best_err = alpha, err
    return vt.T @ (s / (s**2 + best) * uty)


def ridge_cv_predictions(x, y, *, folds: int = 5, alphas: Sequence[float] = RIDGE_ALPHAS, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions of ``y`` from ``x`` by ridge regression (each row predicted by a model fit without it)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or len(x) != len(y):
        raise SchemaError(f"ridge needs x of shape (n, d) and y of length n; got {x.shape} and {y.shape}")
    if len(y) < 2 * folds:
        raise SchemaError(f"{len(y)} rows are too few for {folds}-fold cross-validation (need {2 * folds})")
    fold_of = _folds(len(y), folds, seed)
    pred = np.empty(len(y))
    for f in range(folds):
        train, test = fold_of != f, fold_of == f
        mu, sd = x[train].mean(0), x[train].std(0)
        sd[sd == 0] = 1.0
        y_mean = y[train].mean()
        coef = _ridge_fit((x[train] - mu) / sd, y[train] - y_mean, alphas)
        pred[test] = ((x[test] - mu) / sd) @ coef + y_mean
    return pred


def ridge_cv_pearson(x, y, *, folds: int = 5, alphas: Sequence[float] = RIDGE_ALPHAS, seed: int = 0) -> float:
    """Pearson r between ``y`` and its out-of-fold ridge predictions (nan when ``y`` is constant)."""
    y = np.asarray(y, dtype=np.float64)
    pred = ridge_cv_predictions(x, y, folds=folds, alphas=alphas, seed=seed)
    if np.std(y) == 0 or np.std(pred) == 0:
        return float("nan")
    return float(np.corrcoef(pred, y)[0, 1])


# ---- the measurement run -------------------------------------------------------------------------------------------

def _run(args) -> dict:
    import datasets

    from ..sources import build_source
    from ..stages.base import progress_bars_off, run_stage
    from ..stages.embed import EmbedStage
    from ..stages.quality import compute_quality
    from .generate import write_demo_data

    out = Path(args.out)
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}  # process CPU seconds: on a shared machine a steadier cost than the wall clock
    t, c = time.perf_counter(), time.process_time()
    files = write_demo_data(out / "data", rows_per_source=args.rows_per_source, seed=args.seed,
                            test_source=args.test_source, test_rows=args.test_rows)
    test_files = files.pop(args.test_source, None) if args.test_source else None
    parts = [build_source(name, paths, cache_dir=out / "sources", progress=False)[0] for name, paths in files.items()]
    pool = datasets.concatenate_datasets(parts)
    times["data"], cpu["data"] = time.perf_counter() - t, time.process_time() - c
    with progress_bars_off():
        embed = EmbedStage()
        t, c = time.perf_counter(), time.process_time()
        pool = run_stage(pool, embed, cache_dir=out / "cache", progress=False)
        test_ds = None
        if test_files:
            test_ds, _ = build_source(args.test_source, test_files, cache_dir=out / "sources", progress=False)
            test_ds = run_stage(test_ds, embed, cache_dir=out / "cache", progress=False)
        times["embed"], cpu["embed"] = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        scored, report = compute_quality(
            pool, n1=args.n1, n2=args.n2, test_sources=None if test_ds is not None else [args.in_pool_test],
            test_ds=test_ds, split_by_task=True, seed=args.seed, max_test_tokens=args.max_test_tokens,
            max_example_tokens=args.max_example_tokens, cache_dir=str(out / "cache"), progress=False,
            return_report=True)
        times["quality"], cpu["quality"] = time.perf_counter() - t, time.process_time() - c
    tokens = sum(len(q) + len(a) for q, a in zip(pool["question"], pool["answer"]))
    result = {"settings": vars(args), "rows": len(pool), "pool_chars": tokens, "seconds": times, "cpu_seconds": cpu,
              "pairs": report.pairs, "pairs_per_s": report.pairs_per_s, "dtype": report.dtype,
              "mean_qs_per_source": report.mean_qs_per_source, "tasks": {}}
    emb = np.asarray(scored.with_format("numpy", columns=["embedding"])["embedding"], dtype=np.float64)
    qs, task = np.asarray(scored["qs"], dtype=np.float64), np.asarray(scored["task"])
    for name in ("reasoning", "general"):
        rows = task == name
        result["tasks"][name] = {
            "rows": int(rows.sum()),
            "mean_qs_by_kind": mean_by_kind(scored, "qs", task=name),
            "ridge_r": ridge_cv_pearson(emb[rows], qs[rows], seed=args.seed),
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from ..settings import PROFILES

    demo = PROFILES["demo"]
    q, d = demo.quality, demo.demo
    p = argparse.ArgumentParser(prog="python -m openmathmix.demo.measure", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="work folder (data, source and stage caches)")
    p.add_argument("--rows-per-source", type=int, default=d.rows_per_source)
    p.add_argument("--test-source", default=q.test_source, help="separate Dt pool; '' to draw Dt from the pool")
    p.add_argument("--test-rows", type=int, default=d.test_rows)
    p.add_argument("--in-pool-test", default="gsm8k_screl", help="Dt source when --test-source is ''")
    p.add_argument("--n1", type=int, default=q.n1)
    p.add_argument("--n2", type=int, default=q.n2)
    p.add_argument("--max-test-tokens", type=int, default=q.max_test_tokens)
    p.add_argument("--max-example-tokens", type=int, default=q.max_example_tokens)
    p.add_argument("--seed", type=int, default=d.seed)
    args = p.parse_args(argv)
    result = _run(args)
    Path(args.out, "measure.json").write_text(json.dumps(result, indent=1))
    secs = result["seconds"]
    print(f"{result['rows']} pool rows, {result['pairs']} pairs, dtype {result['dtype']}; "
          + ", ".join(f"{k} {v:.1f} s (cpu {result['cpu_seconds'][k]:.1f} s)" for k, v in secs.items()))
    for name, info in result["tasks"].items():
        kinds = "  ".join(f"{k} {m:.3f} (n={n})" for k, (m, n) in info["mean_qs_by_kind"].items())
        print(f"{name:9s} rows {info['rows']:3d}  ridge r {info['ridge_r']:.3f}  QS by kind: {kinds}")
    print("QS by source: " + ", ".join(f"{s} {v:.2f}" for s, v in result["mean_qs_per_source"].items()))
    print(f"RESULT bench=demo ridge_reasoning={result['tasks']['reasoning']['ridge_r']:.3f} "
          f"ridge_general={result['tasks']['general']['ridge_r']:.3f} embed_s={secs['embed']:.1f} "
          f"quality_s={secs['quality']:.1f} dtype={result['dtype']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
