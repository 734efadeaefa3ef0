"""FLAN CoT (Wei et al., 2022; FLAN v2 collection): chain-of-thought rationales over nine reasoning sets."""

from openmathmix.formats import Columns, RecordMap, Where, first_exchange
from openmathmix.sources import Source

SOURCE = Source(
    name="cot", title="CoT (FLAN v2)", task="general",
    license="apache-2.0", paper_size=149_000, paper_size_base=132_000,
    repo="Open-Orca/FLAN", data_files={"train": ["cot_zsopt_data/*", "cot_fsopt_data/*"]},
    homepage="https://github.com/google-research/FLAN/tree/main/flan/v2",
    tsv_columns=("question", "answer", "rationale"),  # flan/v2/cot_data/*_train.tsv
    formats=(
        Columns("question", "rationale", final="answer"),  # raw TSV release
        Columns("inputs", "targets"),  # templated zero/few-shot rows: Open-Orca/FLAN Parquet, Tulu's cot_*opt.jsonl
        # the Tulu SFT mixtures: {dataset, id, messages}, of which the cot rows
        RecordMap(first_exchange("messages", "role", "content"), ("messages",), where=(Where("dataset", "cot"),)),
    ),
    notes="TSV: question -> question, rationale + 'So the answer is X.' -> answer. Templated rows: inputs/targets "
          "(or a Tulu mixture's first user/assistant messages) as they are.",
)
