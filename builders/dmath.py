"""DMath (Kim et al., EMNLP 2023): diverse math word problems; English question -> final value."""

from __future__ import annotations

from openmathmix.formats import Columns
from openmathmix.sources import Source


def keyed_by_id(data: dict) -> list | None:
    """The release's ``train.json`` / ``test.json``: one object keyed by id ("1", "2", ...), a record per value."""
    values = list(data.values())
    return values if values and all(isinstance(v, dict) for v in values) else None


SOURCE = Source(
    name="dmath", title="DMath", task="reasoning",
    license="mit", paper_size=7_900,
    repo="philschmid/DMath", homepage="https://github.com/JiwooKimAR/dmath",
    json_object=keyed_by_id,
    formats=(
        Columns("question_en", "answer_en"),  # the release: one JSON object keyed by id
        Columns("question", "answer"),  # the Hub mirror's Parquet
    ),
    notes="English fields only (question_en -> question, answer_en -> answer); answers are bare final values.",
)
