"""Data hygiene between the sources and the embeddings: benchmark decontamination, exact and near-duplicate removal.

    from openmathmix.hygiene import HygieneSettings, build_benchmark, run_hygiene

    benchmarks = {"gsm8k": build_benchmark("gsm8k"), "math": build_benchmark("math")}   # Hub, or data_files=...
    kept, report = run_hygiene(pool, benchmarks=benchmarks, settings=HygieneSettings())
    report.to_dict()       # JSON for manifest.json
    report.to_markdown()   # the card's table

Modules: normalize.py (text rule, word hashes), ngrams.py (window hashes), decontam.py (benchmark index, lookups),
dedup.py (keep order, exact keys, MinHash LSH), benchmarks.py (benchmark registry, builders/benchmarks/*.py),
rephrase.py (embedding-cosine candidates), report.py, settings.py, step.py (run_hygiene).
"""

from ..settings import HygieneSettings
from .benchmarks import Benchmark, build_benchmark, build_benchmark_files, get_benchmark, list_benchmarks
from .normalize import normalize, normalize_text
from .rephrase import rephrasing_candidates
from .report import HygieneReport
from .step import run_hygiene

__all__ = [
    "Benchmark",
    "HygieneReport",
    "HygieneSettings",
    "build_benchmark",
    "build_benchmark_files",
    "get_benchmark",
    "list_benchmarks",
    "normalize",
    "normalize_text",
    "rephrasing_candidates",
    "run_hygiene",
]
