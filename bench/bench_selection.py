"""Selection strategies on real data: does QaDS pick a better 10 % than random, K-center, the score alone, length?

Builds a scored pool from the real files in ../shared/realdata with the embedded SmolLM2 (`openmathmix.models.resolve()`):
GSM8K-ScRel (first 1,000 rows of train_use.jsonl), TAL-SCQ5K-EN (first 1,000), DMath test.json (2,079), FLAN CoT
(first 150 of each of the 7 TSV files), OpenAssistant trees (100), Self-Instruct seed tasks (175). Embeddings and
one-shot quality scores (n1 = 40 prompt samples per source, n2 = 16 tests chosen by K-center from GSM8K-ScRel,
split by task) go through the default stage cache, so another benchmark built on the same rows (bench_scorer.py)
shares them. One light scorer per task is trained on the one-shot scores and scores every row.

Then `openmathmix.evaluate` picks 10 % of every source with qads, random, kcenter, score and length, two seeds each,
fine-tunes SmolLM2 on each subset (one epoch, TRL SFTTrainer, loss on answer tokens), and scores the mean per-token
log-likelihood of the reference solutions of the first 200 GSM8K test items (plus the base model). Finished runs are
cached, so an interrupted run resumes. Hours on 2 CPU cores; run it in the background:

    nice .venv/bin/python bench/bench_selection.py --out /tmp/bench_selection > /tmp/bench_selection.log 2>&1 &

The timed hot path is the exact covering radius (blocked GEMM over the pool) against a naive reference (one row
of the pool at a time against the whole subset); both must agree. The last line is
`RESULT bench=selection pearson_reasoning=X pearson_general=Y loglik_qads=A loglik_random=B loglik_kcenter=C
loglik_score=D loglik_length=E` (log-likelihoods: mean over the two seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from realdata_pool import N1, N2, REALDATA, embedded_and_scored  # bench/ is sys.path[0] when run as a script

BENCHMARK = "gsm8k_screl/test_use.jsonl"
STRATEGIES = ("qads", "random", "kcenter", "score", "length")


def scored_pool(scale: float, n1: int, n2: int, work: Path, progress: bool):
    """(pool with embedding and quality_score, {task: scorer result}): one light scorer per task trained on the
    one-shot scores of the shared real-data pool (realdata_pool.py) scores every row."""
    from openmathmix.stages.scorer import score_dataset, train_scorer

    pool, scored, _ = embedded_and_scored(scale, n1, n2, progress)
    t0 = time.perf_counter()
    results, folders = {}, {}
    for task in ("reasoning", "general"):
        rows = scored.filter(lambda t, want=task: t == want, input_columns="task")
        folders[task] = str(work / f"scorer-{task}")
        results[task] = train_scorer(rows, folders[task], kind="light", task=task)
    pool = score_dataset(pool, folders, progress=progress)
    print(f"scorers and scores {time.perf_counter() - t0:,.0f} s", flush=True)
    return pool, results


def time_coverage(pool, rows: np.ndarray) -> None:
    """Our blocked covering radius against a row-at-a-time reference on the same pool and subset."""
    from openmathmix.evaluate.metrics import coverage

    t0 = time.perf_counter()
    ours = coverage(pool.embeddings, rows)["covering_radius"]
    t1 = time.perf_counter()
    sub = pool.embeddings[rows].astype(np.float64)
    naive = max(float(np.sqrt(((sub - x) ** 2).sum(axis=1)).min()) for x in pool.embeddings.astype(np.float64))
    t2 = time.perf_counter()
    if not np.isclose(ours, naive, rtol=1e-5):
        raise SystemExit(f"covering radius differs from the reference: {ours} vs {naive}")
    print(f"covering radius of {len(rows):,} rows over {len(pool):,}: ours {t1 - t0:.3f} s, naive {t2 - t1:.3f} s, "
          f"ratio {(t2 - t1) / max(t1 - t0, 1e-9):.1f}x, values {ours:.4f} / {naive:.4f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_selection"), help="evaluation.json/.md/.png here")
    p.add_argument("--budget", type=float, default=0.1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--init-size", type=int, default=20,
                   help="|s0| of qads/kcenter (20: fidelity.md's run; the paper's 100 would fill most of a 10 %% "
                        "cut of the 100-175-row sources with random pool rows)")
    p.add_argument("--items", type=int, default=200, help="GSM8K test items scored")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=None,
                   help="fixed optimizer steps per fine-tune instead of --epochs (same for every strategy)")
    p.add_argument("--batch-size", type=int, default=8, help="rows per optimizer step")
    p.add_argument("--max-length", type=int, default=512, help="tokens per training row")
    p.add_argument("--lr", type=float, default=2e-5, help="proxy fine-tune learning rate")
    p.add_argument("--max-eval-tokens", type=int, default=1024, help="tokens per scored benchmark item")
    p.add_argument("--scale", type=float, default=1.0,
                   help="rows read from each file, times this (at least 8); 1.0: realdata_pool.py's counts")
    p.add_argument("--n1", type=int, default=N1, help="one-shot prompt samples per source")
    p.add_argument("--n2", type=int, default=N2, help="one-shot test samples (K-center from GSM8K-ScRel)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: a few rows per file, n1=8, n2=4, 2 training steps, 10 items (minutes)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    from openmathmix.evaluate import (
        evaluate,
        evaluation_markdown,
        load_benchmark,
        pick_subset,
        pool_from_dataset,
        write_figure,
    )
    from openmathmix.settings import EvaluateSettings
    from openmathmix.stages.base import DEFAULT_CACHE

    start = time.perf_counter()
    scale, n1, n2 = (0.03, 8, 4) if args.quick else (args.scale, args.n1, args.n2)
    work = DEFAULT_CACHE / "bench_selection" / ("quick" if args.quick else f"scale{scale:g}-n1_{n1}-n2_{n2}")
    ds, scorers = scored_pool(scale, n1, n2, work, progress=not args.quiet)
    for task, res in scorers.items():
        ci = "" if res.ci_low is None else f" [{res.ci_low:.2f}, {res.ci_high:.2f}]"
        r = "n/a" if res.r is None else f"{res.r:.3f}"
        print(f"scorer {task}: r = {r}{ci} on {res.n} rows ({res.method}); model {res.model}", flush=True)

    pool = pool_from_dataset(ds, "realdata pool")
    settings = EvaluateSettings(budget=args.budget, strategies=STRATEGIES, seeds=tuple(args.seeds),
                                init_size=args.init_size, epochs=args.epochs, benchmark_limit=args.items,
                                max_steps=2 if args.quick else args.max_steps, batch_size=args.batch_size,
                                max_length=args.max_length, learning_rate=args.lr,
                                max_eval_tokens=args.max_eval_tokens)
    if args.quick:
        settings = dataclasses.replace(settings, benchmark_limit=10)
    print("proxy fine-tune: " + ", ".join(f"{k}={getattr(settings, k)}" for k in (
        "epochs", "max_steps", "batch_size", "max_length", "learning_rate", "benchmark_limit", "max_eval_tokens")),
        flush=True)
    time_coverage(pool, pick_subset(pool, "qads", settings.seeds[0], settings, device="cpu"))
    bench = load_benchmark(str(REALDATA / BENCHMARK), settings.benchmark_limit)
    result = evaluate(pool, settings=settings, benchmarks=[bench], train=True, device="cpu",
                      cache_dir=work / "runs", progress=not args.quiet)
    result["scorers"] = {task: {"r": r.r, "ci_low": r.ci_low, "ci_high": r.ci_high, "n": r.n, "method": r.method}
                         for task, r in scorers.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "evaluation.md").write_text(evaluation_markdown(result), encoding="utf-8")
    write_figure(result, args.out / "evaluation.png")
    print(evaluation_markdown(result))
    for row in result["runs"]:
        print(f"  {row['strategy']:8s} seed {row['seed']}: loglik {row['benchmarks'][bench.name]['loglik']:.4f}, "
              f"train loss {row['train']['train_loss']:.3f} over {row['train']['steps']} steps "
              f"({row['train']['seconds']:,.0f} s)")
    print(f"total {time.perf_counter() - start:,.0f} s ({result['runs_reused']} runs reused); files in {args.out}")

    summary = {row["strategy"]: row[f"loglik:{bench.name}"]["mean"] for row in result["summary"]}
    pearson = {task: ("nan" if r.r is None else f"{r.r:.3f}") for task, r in scorers.items()}
    print(f"RESULT bench=selection pearson_reasoning={pearson['reasoning']} pearson_general={pearson['general']} "
          + " ".join(f"loglik_{s}={summary[s]:.4f}" for s in STRATEGIES))


if __name__ == "__main__":
    main()
