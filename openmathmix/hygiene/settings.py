"""Every default of the hygiene step in one frozen dataclass (the CLI and presets overlay their values on it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import PresetError

POOL_FIELDS = ("question", "answer")


@dataclass(frozen=True)
class HygieneSettings:
    """Defaults of decontamination and deduplication; change one with ``dataclasses.replace(settings, ngram=10)``."""

    enabled: bool = True  # run the step at all (off: every row is kept, as in the paper's raw pool)
    decontaminate: bool = True  # drop rows that share a word n-gram with a benchmark item
    exact_dedup: bool = True  # drop rows whose normalised question + answer equal a kept row's
    near_dedup: bool = True  # drop rows that are MinHash near-duplicates of a kept row

    # Decontamination
    ngram: int = 13  # words per n-gram. 13 (GPT-3's choice) is long enough that two different problems rarely
    #                  share one by chance (GSM8K train vs test: 8-grams flag 97 rows, mostly stock phrases shared by
    #                  different problems; 13-grams flag 4, each a templated twin of a test problem) and short
    #                  enough to catch a test question quoted inside a longer prompt or a rephrased one that keeps a
    #                  sentence
    min_item_words: int = 8  # benchmark items of min_item_words..ngram-1 words match as a whole word sequence;
    #                          shorter ones ("Compute $\\dbinom{8}{4}$.") only match a pool question equal to them
    benchmark_fields: tuple[str, ...] = ("question",)  # benchmark texts indexed; adding "answer" also catches copied
    #                                                    solutions, at the price of stock solution phrases
    pool_fields: tuple[str, ...] = POOL_FIELDS  # pool texts searched (a question can be restated in the answer)

    # Near duplicates (MinHash LSH, rensa R-MinHash)
    shingle: int = 2  # words per shingle. With 10 % of the words edited, word 2-grams keep Jaccard >= 0.62 on real
    #                   GSM8K/MATH rows (1st percentile), 3-grams drop to 0.51, 5-grams to 0.30
    num_perm: int = 128  # MinHash values per row (16 bits of each are kept: 256 bytes a row)
    bands: int = 32  # LSH bands ...
    rows_per_band: int = 4  # ... of this many values: a pair at Jaccard 0.6 becomes a candidate with p = 0.988
    threshold: float = 0.6  # estimated Jaccard a candidate pair needs to count as near-duplicate (real distinct
    #                         GSM8K/MATH rows above it: 0.7 %, mostly MATH's one-line trigonometry twins)
    seed: int = 0  # seed of the MinHash permutations

    # Keep rule and report
    source_priority: tuple[str, ...] = ()  # sources whose copy is kept first, in this order; the others follow,
    #                                        reasoning sources before general ones, each group by name; within a
    #                                        source the smallest id (natural order) is kept
    examples: int = 5  # example rows per drop reason in the report
    batch_rows: int = 20_000  # pool rows per chunk (bounds the memory of one chunk's word arrays)
    rephrase_threshold: float = 0.9  # cosine (centred embeddings) above which a row is a rephrasing candidate

    def __post_init__(self) -> None:
        checks = [
            (self.ngram >= 1, f"ngram must be >= 1, got {self.ngram}"),
            (1 <= self.min_item_words <= self.ngram,
             f"min_item_words must be between 1 and ngram ({self.ngram}), got {self.min_item_words}"),
            (bool(self.benchmark_fields) and set(self.benchmark_fields) <= set(POOL_FIELDS),
             f"benchmark_fields must name 'question' and/or 'answer', got {list(self.benchmark_fields)}"),
            (bool(self.pool_fields) and set(self.pool_fields) <= set(POOL_FIELDS),
             f"pool_fields must name 'question' and/or 'answer', got {list(self.pool_fields)}"),
            (self.shingle >= 1, f"shingle must be >= 1, got {self.shingle}"),
            (self.bands >= 1 and self.rows_per_band >= 1 and self.bands * self.rows_per_band <= self.num_perm,
             f"bands x rows_per_band ({self.bands} x {self.rows_per_band}) must be at most num_perm ({self.num_perm})"),
            (0.0 < self.threshold <= 1.0, f"threshold must be in (0, 1], got {self.threshold}"),
            (-1.0 <= self.rephrase_threshold <= 1.0,
             f"rephrase_threshold is a cosine in [-1, 1], got {self.rephrase_threshold}"),
            (self.examples >= 0 and self.batch_rows >= 1, "examples must be >= 0 and batch_rows >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise PresetError(f"hygiene settings: {message}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
