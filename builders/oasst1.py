"""OpenAssistant Conversations (Köpf et al., NeurIPS 2023): crowd-written message trees, one conversation per tree."""

from openmathmix.formats import MessageTrees
from openmathmix.sources import Source

SOURCE = Source(
    name="oasst1", title="Open-Assistant-1", task="general",
    license="apache-2.0", paper_size=10_000,
    repo="OpenAssistant/oasst1", split=("train", "validation"),
    homepage="https://github.com/LAION-AI/Open-Assistant",
    formats=(MessageTrees(flat=True), MessageTrees()),
    notes="Top-ranked path of each tree; its first prompter turn -> question, first assistant turn -> answer.",
)
