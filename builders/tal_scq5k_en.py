"""TAL-SCQ5K-EN (math-eval, 2023): English single-choice competition math, train part."""

from openmathmix.formats import RecordMap, choice_exchange
from openmathmix.sources import Source

SOURCE = Source(
    name="tal_scq5k_en", title="TAL-SCQ5K-EN", task="reasoning",
    license="mit", paper_size=3_000,
    repo="math-eval/TAL-SCQ5K", data_dir="TAL-SCQ5K-EN", homepage="https://github.com/math-eval/TAL-SCQ5K",
    formats=(RecordMap(choice_exchange, ("problem", "answer_option_list", "answer_analysis", "answer_value")),),
    notes="problem + '(A) ...' option lines -> question; analysis + 'The answer is (X).' -> answer.",
)
