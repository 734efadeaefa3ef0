"""Light scorer fidelity on real data: cross-validated Pearson r of our scorer against a 5-fold ridge baseline.

Repeats the run of ../shared/notes/fidelity.md on the files in ../shared/realdata (Alpaca is not there):
GSM8K-ScRel (first 1,000 rows of train_use.jsonl), TAL-SCQ5K-EN (first 1,000 of en_single_choice_train_3K.jsonl),
DMath test.json (2,079), FLAN CoT (first 150 of each of the 7 TSV files), OpenAssistant trees (100),
Self-Instruct seed tasks (175). Embeddings and one-shot quality scores come from the embedded SmolLM2
(`openmathmix.models.resolve()`), n1 = 40 prompt samples per source, n2 = 16 tests chosen by K-center from
GSM8K-ScRel, split by task. Both go through the default stage cache (`openmathmix.stages.base.DEFAULT_CACHE`), so a
second run, or another benchmark on the same rows, reuses them; a cold run takes 30-60 min on 2 CPU cores.

Then, per task (reasoning: 120 scored rows, general: 120), on the same rows:
ours : `openmathmix.stages.scorer.evaluate_light_scorer` - candidates (ridge on QS, MLP on QS, softmax/MLP on the
       1-5 labels) chosen by inner 5-fold CV inside each outer fold; r of the pooled outer out-of-fold scores
       (nested 5-fold CV) with its 95 % Fisher-z and bootstrap intervals;
ridge: the plain baseline of fidelity.md - ridge regression on standardised embeddings with one fixed penalty
       (alpha = 1.0 * dim, chosen once, not tuned on these rows), 5 folds, pooled out-of-fold r.

    .venv/bin/python bench/bench_scorer.py                 # full run (cached after the first)
    .venv/bin/python bench/bench_scorer.py --scatter /tmp/scorer.png

The last line is `RESULT bench=scorer pearson_reasoning=X pearson_general=Y ridge_reasoning=A ridge_general=B`;
the intervals are printed above it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REALDATA = REPO.parent / "shared" / "realdata"
COT_FILES = ("aqua_train.tsv", "creak_train.tsv", "ecqa_train.tsv", "gsm8k_train.tsv", "qasc_train.tsv",
             "sensemaking_train.tsv", "strategyqa_train.tsv")
# (source name, files relative to realdata, rows read from each file; None = all)
POOL = (
    ("gsm8k_screl", ("gsm8k_screl/train_use.jsonl",), 1000),
    ("tal_scq5k_en", ("tal_scq5k_en/en_single_choice_train_3K.jsonl",), 1000),
    ("dmath", ("dmath/test.json",), None),
    ("cot", tuple(f"cot/{f}" for f in COT_FILES), 150),
    ("oasst1", ("oasst_format/en_100_tree.jsonl",), None),
    ("self_instruct", ("self_instruct/seed_tasks.jsonl",), None),
)
N1, N2, TEST_SOURCE = 40, 16, "gsm8k_screl"
RIDGE_ALPHA_PER_DIM = 1.0


def build_pool():
    """The 6 real sources as one dataset in the project schema (files read one at a time, `limit` rows each)."""
    from datasets import concatenate_datasets

    from openmathmix.sources import build_source

    parts = []
    for name, files, limit in POOL:
        for rel in files:
            path = REALDATA / rel
            if not path.exists():
                raise SystemExit(f"{path} is absent: the benchmark needs ../shared/realdata")
            ds, _ = build_source(name, data_files=[str(path)], limit=limit, progress=False)
            parts.append(ds)
    return concatenate_datasets(parts)


def scored_sample(progress: bool = True):
    """(pool with embeddings, scored sample with `qs`, QualityReport), all through the default stage cache."""
    from openmathmix.stages.base import run_stage
    from openmathmix.stages.embed import EmbedStage
    from openmathmix.stages.quality import compute_quality

    pool = build_pool()
    t0 = time.perf_counter()
    pool = run_stage(pool, EmbedStage(), progress=progress)
    t1 = time.perf_counter()
    scored, report = compute_quality(pool, n1=N1, n2=N2, test_sources=[TEST_SOURCE], split_by_task=True,
                                     progress=progress, return_report=True)
    print(f"pool {len(pool):,} rows; embeddings {t1 - t0:,.0f} s, quality scores {time.perf_counter() - t1:,.0f} s "
          f"(cached stages take seconds)")
    return pool, scored, report
