"""Baize (Xu et al., EMNLP 2023): ChatGPT self-chat dialogues seeded from Alpaca, Quora, StackOverflow, MedQuAD."""

from __future__ import annotations

from openmathmix.formats import RecordMap, expect
from openmathmix.sources import Source


def baize_exchange(rec: dict) -> tuple[str | None, str | None]:
    """Baize ``input``: ``<preamble>[|Human|] q [|AI|] a [|Human|] ...`` -> the first human turn and its AI reply."""
    text = expect(rec, "input", str, "a string", "")
    for turn in text.split("[|Human|]")[1:]:
        human, sep, ai = turn.partition("[|AI|]")
        if sep:
            return human, ai
        if human.strip():
            return human, None
    return None, None


SOURCE = Source(
    name="baize", title="Baize", task="general",
    license="cc-by-nc-4.0", non_commercial=True, paper_size=210_000,
    repo="taskydata/baize_chatbot",  # community mirror of the GitHub data/ folder
    data_files={"train": [f"{part}_chat_data.json" for part in ("alpaca", "medical", "quora", "stackoverflow")]},
    homepage="https://github.com/project-baize/baize-chatbot",
    formats=(RecordMap(baize_exchange, ("input",)),),
    notes="First [|Human|] turn -> question, the [|AI|] reply to it -> answer; later turns are not kept.",
)
