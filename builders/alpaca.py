"""Stanford Alpaca (Taori et al., 2023): 52K text-davinci-003 instruction demonstrations."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="alpaca", title="Alpaca", task="general",
    license="cc-by-nc-4.0", non_commercial=True, paper_size=52_000,
    repo="tatsu-lab/alpaca", homepage="https://crfm.stanford.edu/2023/03/13/alpaca.html",
    formats=(Columns("instruction", "output", context="input"),),
    notes="instruction (+ blank line + input when present) -> question, output -> answer.",
)
