"""The one row schema every source is mapped to, and the columns later stages add."""

from __future__ import annotations

from datasets import Features, Value

SCHEMA_VERSION = 1

TASKS = ("reasoning", "general")

# Every builder produces exactly these columns, in this order.
FEATURES = Features(
    {
        "id": Value("string"),  # "<source>/<origin>/<row>": stable across runs, unique across the mixture
        "source": Value("string"),  # registry name, e.g. "gsm8k_screl"
        "task": Value("string"),  # "reasoning" or "general"
        "question": Value("string"),
        "answer": Value("string"),
        "license": Value("string"),  # SPDX-like id of the source's licence, e.g. "mit", "cc-by-nc-4.0"
    }
)
COLUMNS = tuple(FEATURES)

# Columns added by the stages and by selection (names shared by every module that reads them).
EMBEDDING = "embedding"  # list[float32]: mean-pooled last hidden state (optionally projected)
QS = "qs"  # float in [0, 1]: one-shot influence quality score (Eq. 3), only on the scored sample
QUALITY_SCORE = "quality_score"  # float in [1, 5]: expected label under the trained scorer
QADS_RANK = "qads_rank"  # int: position in the greedy order within its selection scope
KEPT = "kept"  # bool, in a release's pool config: the row is in the mixture
