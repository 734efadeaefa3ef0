"""The real-data pool shared by bench_scorer.py and bench_selection.py: six sources from ../shared/realdata
(Alpaca is not there), the row counts of ../shared/notes/fidelity.md, embedded and scored one-shot through the
default stage cache, so the second benchmark reuses what the first computed."""

from __future__ import annotations

import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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
N1, N2, TEST_SOURCE = 40, 16, "gsm8k_screl"  # prompt samples per source, tests (K-center from GSM8K-ScRel)


def build_pool(scale: float = 1.0):
    """The six sources in the project schema, each file read with its row limit (times ``scale``, at least 8).
    Its fingerprint comes from the row limits and input files, so the stage caches are found again by later runs."""
    from datasets import concatenate_datasets

    from openmathmix.sources import build_source

    parts = []
    for name, files, limit in POOL:
        for rel in files:
            path = REALDATA / rel
            if not path.exists():
                raise SystemExit(f"{path} is absent: the benchmark needs ../shared/realdata")
            rows = limit if scale == 1.0 else max(8, int((limit or 200) * scale))
            ds, _ = build_source(name, data_files=[str(path)], limit=rows, progress=False)
            parts.append(ds)
    return concatenate_datasets(parts)


def embedded_and_scored(scale: float = 1.0, n1: int = N1, n2: int = N2, progress: bool = True):
    """(pool with embeddings, scored sample with `qs`, QualityReport) through the default stage cache."""
    from openmathmix.stages.base import run_stage
    from openmathmix.stages.embed import EmbedStage
    from openmathmix.stages.quality import compute_quality

    pool = build_pool(scale)
    t0 = time.perf_counter()
    pool = run_stage(pool, EmbedStage(), progress=progress)
    t1 = time.perf_counter()
    scored, report = compute_quality(pool, n1=n1, n2=n2, test_sources=[TEST_SOURCE], split_by_task=True,
                                     progress=progress, return_report=True)
    print(f"pool {len(pool):,} rows; embeddings {t1 - t0:,.0f} s, one-shot scores {time.perf_counter() - t1:,.0f} s "
          "(cached stages take seconds)", flush=True)
    return pool, scored, report
