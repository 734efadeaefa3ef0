"""FLAN v2 (Longpre et al., ICML 2023): the 50K resampled FLAN collection rows of the Tulu v2 SFT mixture."""

from openmathmix.formats import Columns, RecordMap, Where, first_exchange
from openmathmix.sources import Source

SOURCE = Source(
    name="flan_v2", title="Flan-v2", task="general",
    license="odc-by", paper_size=50_000,
    repo="allenai/tulu-v2-sft-mixture", homepage="https://github.com/google-research/FLAN/tree/main/flan/v2",
    formats=(
        # the Tulu v2 mixture on the Hub: {dataset, id, messages}, of which the flan_v2 rows
        RecordMap(first_exchange("messages", "role", "content"), ("messages",), where=(Where("dataset", "flan_v2"),)),
        Columns("inputs", "targets"),  # the resampled FLAN file Tulu converted (tulu_v2_resampled_flan_50k.jsonl)
    ),
    notes="Tulu v2 rows with dataset == flan_v2: user message -> question, assistant message -> answer; the raw "
          "resampled file: inputs -> question, targets -> answer.",
)
