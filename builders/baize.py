"""Baize (Xu et al., EMNLP 2023): ChatGPT self-chat dialogues seeded from Alpaca, Quora, StackOverflow, MedQuAD."""

from openmathmix.formats import RecordMap, baize_exchange
from openmathmix.sources import Source

SOURCE = Source(
    name="baize", title="Baize", task="general",
    license="cc-by-nc-4.0", non_commercial=True, paper_size=210_000,
    repo="taskydata/baize_chatbot",  # community mirror of the GitHub data/ folder
    data_files={"train": [f"{part}_chat_data.json" for part in ("alpaca", "medical", "quora", "stackoverflow")]},
    homepage="https://github.com/project-baize/baize-chatbot",
    formats=(RecordMap(baize_exchange, ("input",)),),
    notes="First [|Human|] turn -> question, the [|AI|] reply to it -> answer; later turns are not kept.",
)
