"""FLAN v2 (Longpre et al., ICML 2023): the 50K resampled FLAN collection rows of the Tulu v2 SFT mixture."""

from openmathmix.formats import RecordMap, Where, first_exchange
from openmathmix.sources import Source

SOURCE = Source(
    name="flan_v2", title="Flan-v2", task="general",
    license="odc-by", paper_size=50_000,
    repo="allenai/tulu-v2-sft-mixture", homepage="https://github.com/google-research/FLAN/tree/main/flan/v2",
    formats=(RecordMap(first_exchange("messages", "role", "content"), ("messages",),
                       where=(Where("dataset", "flan_v2"),)),),
    notes="Tulu v2 rows with dataset == flan_v2; user message -> question, assistant message -> answer.",
)
