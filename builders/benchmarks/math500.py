"""MATH-500 (Lightman et al., 2023): the 500 MATH test problems of the PRM800K split, used by most recent reports."""

from openmathmix.formats import Columns
from openmathmix.hygiene.benchmarks import Benchmark

BENCHMARK = Benchmark(
    name="math500", title="MATH-500", size=500,
    repo="HuggingFaceH4/MATH-500", split="test",
    homepage="https://github.com/openai/prm800k",
    formats=(Columns("problem", "solution"),),
    notes="HuggingFaceH4/MATH-500 or PRM800K's math_splits/test.jsonl (problem, solution, answer, subject, level, "
          "unique_id); the solution is the answer text indexed when answers are checked.",
)
