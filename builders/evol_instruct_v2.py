"""WizardLM Evol-Instruct V2 (Xu et al., 2023): 143K instructions evolved in depth and breadth by ChatGPT."""

from openmathmix.formats import RecordMap, first_exchange
from openmathmix.sources import Source

SOURCE = Source(
    name="evol_instruct_v2", title="Evol-Instruct-v2", task="general",
    license="mit", paper_size=143_000, paper_size_base=142_000,
    non_commercial=True,  # the WizardLM repository restricts the data to academic research
    repo="WizardLMTeam/WizardLM_evol_instruct_V2_196k", data_files={"train": "WizardLM_evol_instruct_V2_143k.json"},
    homepage="https://github.com/nlpxucan/WizardLM",
    formats=(RecordMap(first_exchange("conversations", "from", "value"), ("conversations",)),),
    notes="First human turn -> question, first gpt turn after it -> answer; later turns are not kept.",
)
