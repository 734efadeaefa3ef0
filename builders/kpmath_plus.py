"""KPMath-Plus (Huang et al., 2024): key-point-driven synthetic math data; never publicly released."""

from openmathmix.formats import Columns
from openmathmix.sources import Source

SOURCE = Source(
    name="kpmath_plus", title="KPMath-Plus", task="reasoning",
    license="unknown", paper_size=1_000_000,
    repo=None, unavailable="KPMath-Plus has no public release (no Hub dataset, no GitHub files)",
    homepage="https://arxiv.org/abs/2403.02333",
    formats=(
        Columns("question", "answer"),
        Columns("query", "response"),
        Columns("instruction", "output"),
        Columns("problem", "solution"),
    ),
    notes="Local files only, in any of the common question/answer column layouts.",
)
