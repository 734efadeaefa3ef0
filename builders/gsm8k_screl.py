"""GSM8K-ScRel (Yuan et al., 2023): the 7,473 GSM8K training problems in the scaling-relationship repo's SFT file."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="gsm8k_screl", title="GSM8K-ScRel", task="reasoning",
    license="mit", paper_size=7_400,
    repo="openai/gsm8k", config="main", homepage="https://github.com/OFA-Sys/gsm8k-ScRel",
    formats=(
        Columns("query", "response"),  # data/train_use.jsonl of the GitHub release
        Columns("question", "answer"),  # openai/gsm8k on the Hub: the same rows
    ),
    notes="query -> question, response -> answer, kept verbatim (<<a=b>> calculator notes and the '#### N' line).",
)
