"""GSM8K (Cobbe et al., 2021): 1,319 grade-school math word problems, the test split."""

from openmathmix.formats import Columns
from openmathmix.hygiene.benchmarks import Benchmark

BENCHMARK = Benchmark(
    name="gsm8k", title="GSM8K (test)", size=1_319,
    repo="openai/gsm8k", configs=("main",), split="test",
    homepage="https://github.com/openai/grade-school-math",
    formats=(
        Columns("question", "answer"),  # openai/gsm8k on the Hub; grade_school_math/data/test.jsonl
        Columns("query", "response"),  # OFA-Sys/gsm8k-ScRel data/test_use.jsonl
    ),
    notes="The Hub split or the original test.jsonl (question/answer); the ScRel copy names them query/response.",
)
