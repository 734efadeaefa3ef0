"""DMath (Kim et al., EMNLP 2023): diverse math word problems; English question -> final value."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="dmath", title="DMath", task="reasoning",
    license="mit", paper_size=7_900,
    repo="philschmid/DMath", homepage="https://github.com/JiwooKimAR/dmath",
    formats=(
        Columns("question_en", "answer_en"),  # the release: one JSON object keyed by id
        Columns("question", "answer"),  # the Hub mirror's Parquet
    ),
    notes="English fields only (question_en -> question, answer_en -> answer); answers are bare final values.",
)
