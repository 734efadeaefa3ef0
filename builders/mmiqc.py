"""MMIQC (Liu & Yao, 2024): Math StackExchange pairs plus iterative question composing; 2.2M rows in one JSONL."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="mmiqc", title="MMIQC", task="reasoning",
    license="apache-2.0", paper_size=2_200_000,
    repo="Vivacem/MMIQC", homepage="https://github.com/iiis-ai/IterativeQuestionComposing",
    formats=(Columns("instruction", "output"),),
    notes="instruction -> question, output -> answer; the 3 GB file is streamed in chunks.",
)
