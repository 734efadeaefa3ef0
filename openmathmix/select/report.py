"""The selection report: per-source composition of a mixture, its nested subsets, and what was capped.

:class:`MixtureReport` is what `select` writes as ``composition.json`` / ``composition.md`` and what the release
card renders. ``to_dict()`` records the strategy that ordered the rows (the ``qads_rank`` column) and every source
whose requested ``count`` exceeded its rows (it keeps all of them, and the report says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..schema import QADS_RANK
from .strategies import DEFAULT_STRATEGY

__all__ = ["MixtureReport", "subset_name"]


def subset_name(ratio: float) -> str:
    """``0.1 -> "ratio_10"``: the name of the nested subset at ``ratio``."""
    return f"ratio_{round(ratio * 100, 6):g}"


@dataclass(frozen=True)
class MixtureReport:
    """Per-source composition of a mixture, for the dataset card.

    ``rows`` holds one dict per source: ``source``, ``task``, ``policy``, ``available``, ``kept``, ``ratio``
    (kept / available), ``mean_quality`` (over the available rows) and ``mean_quality_kept`` (None without a
    quality column). ``subsets`` maps a subset name to ``{source: rows}``. ``strategy`` names the order of
    ``qads_rank``. ``capped`` maps a source to ``{"requested": count, "available": rows}`` when its fixed count
    asked for more rows than it has.
    """

    preset: str
    rows: tuple[dict[str, Any], ...]
    subset_ratios: tuple[float, ...]
    subsets: dict[str, dict[str, int]]
    settings: dict[str, Any] = field(default_factory=dict)
    strategy: str = DEFAULT_STRATEGY
    capped: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def total_available(self) -> int:
        return sum(r["available"] for r in self.rows)

    @property
    def total_kept(self) -> int:
        return sum(r["kept"] for r in self.rows)

    @property
    def warnings(self) -> list[str]:
        """One sentence per capped source, for the terminal and the markdown report."""
        return [
            f"source {name!r}: count {c['requested']:,} exceeds its {c['available']:,} rows; all "
            f"{c['available']:,} are kept (lower the count in the preset to silence this)"
            for name, c in self.capped.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "strategy": self.strategy,
            "rank_column": QADS_RANK,
            "settings": dict(self.settings),
            "sources": [dict(r) for r in self.rows],
            "total": {"available": self.total_available, "kept": self.total_kept},
            "subset_ratios": list(self.subset_ratios),
            "subsets": {name: dict(counts) for name, counts in self.subsets.items()},
            "subset_rule": f"per source, rows with {QADS_RANK} < ceil(ratio * kept)",
            "capped": {name: dict(c) for name, c in self.capped.items()},
        }

    def to_markdown(self, notes: bool = True) -> str:
        """The composition table; ``notes`` appends one line per capped source."""
        names = list(self.subsets)
        head = ["source", "task", "policy", "available", "kept", "ratio", "mean QS", "mean QS kept", *names]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
        for r in self.rows:
            cells = [
                r["source"],
                r.get("task") or "",
                r["policy"],
                f"{r['available']:,}",
                f"{r['kept']:,}",
                f"{r['ratio']:.3f}",
                _fmt(r["mean_quality"]),
                _fmt(r["mean_quality_kept"]),
                *(f"{self.subsets[s].get(r['source'], 0):,}" for s in names),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        ratio = self.total_kept / self.total_available if self.total_available else 0.0
        total = ["**total**", "", "", f"**{self.total_available:,}**", f"**{self.total_kept:,}**", f"{ratio:.3f}", "", ""]
        total += [f"**{sum(self.subsets[s].values()):,}**" for s in names]
        lines.append("| " + " | ".join(total) + " |")
        if notes:
            lines += [f"\nNote: {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
