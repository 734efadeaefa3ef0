"""FLAN CoT (Wei et al., 2022; FLAN v2 collection): chain-of-thought rationales over nine reasoning sets."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="cot", title="CoT (FLAN v2)", task="general",
    license="apache-2.0", paper_size=149_000, paper_size_base=132_000,
    repo="Open-Orca/FLAN", data_files={"train": ["cot_zsopt_data/*", "cot_fsopt_data/*"]},
    homepage="https://github.com/google-research/FLAN/tree/main/flan/v2",
    tsv_columns=("question", "answer", "rationale"),  # flan/v2/cot_data/*_train.tsv
    formats=(
        Columns("question", "rationale", final="answer"),  # raw TSV release
        Columns("inputs", "targets"),  # templated zero/few-shot rows on the Hub
    ),
    notes="TSV: question -> question, rationale + 'So the answer is X.' -> answer. Hub: inputs/targets as they are.",
)
