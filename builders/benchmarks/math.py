"""MATH (Hendrycks et al., 2021): 5,000 competition problems in seven subjects, the test split."""

from openmathmix.formats import Columns
from openmathmix.hygiene.benchmarks import Benchmark

BENCHMARK = Benchmark(
    name="math", title="MATH (test)", size=5_000,
    repo="EleutherAI/hendrycks_math", split="test",
    configs=("algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
             "prealgebra", "precalculus"),
    homepage="https://github.com/hendrycks/math",
    formats=(Columns("problem", "solution"),),
    notes="The original release (MATH/test/<subject>/<n>.json, one problem per file: pass the folder), an "
          "evaluation harness's test.jsonl, or the Hub's per-subject parquet configs.",
)
