"""Open-Platypus (Lee et al., 2023): 25K STEM and logic questions gathered from eleven open sets, deduplicated."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="open_platypus", title="Open-Platypus", task="reasoning",
    license="other", paper_size=24_000,
    non_commercial=True,  # per-subset licences; the ReClor and ScienceQA parts are non-commercial (see the card)
    repo="garage-bAInd/Open-Platypus", homepage="https://platypus-llm.github.io/",
    formats=(Columns("instruction", "output", context="input"),),
    notes="instruction (+ blank line + input when present) -> question, output -> answer.",
)
