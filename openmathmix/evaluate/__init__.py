"""Evidence for a selection: compare strategies at equal size on one scored pool (`openmathmix evaluate`).

    inputs.py    load_pool (save_to_disk folder or release with embeddings), load_benchmark (file or Hub id)
    metrics.py   training-free measures: covering radius, near-duplicates, score and length summaries (pure)
    proxy.py     the proxy fine-tune (TRL SFTTrainer, optional LoRA) and its benchmark scores
    compare.py   evaluate(): one run per strategy and seed, cached; summary and verdict
    report.py    evaluation_markdown() for the card's "Selection report" section, write_figure()

Heavy libraries (torch, transformers, trl) load only when a function needs them.
"""

from __future__ import annotations

from ..settings import EvaluateSettings
from .compare import evaluate, pick_subset
from .inputs import Pool, load_benchmark, load_pool, pool_from_dataset
from .report import evaluation_markdown, write_figure

__all__ = ["EvaluateSettings", "Pool", "evaluate", "evaluation_markdown", "load_benchmark", "load_pool",
           "pick_subset", "pool_from_dataset", "write_figure"]
