"""The card's figures as PNG files: the same data always gives the same bytes (no date or version stamps)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..schema import QUALITY_SCORE

__all__ = ["FIGURES", "write_figures"]

# file stem -> (title, caption) as the card shows them
FIGURES = {
    "score_histogram": ("Quality scores", "Distribution of `quality_score` in the full mixture and in each subset."),
    "mean_score_per_source": (
        "Mean quality score per source",
        "Mean scorer score of each source over its available rows and over the rows kept in the mixture.",
    ),
    "composition": ("Composition", "Rows available per source before selection and rows kept in the mixture."),
}
PNG_OPTIONS = {"format": "png", "dpi": 100, "metadata": {"Software": None}}
SUBSET_COLOURS = ("#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def write_figures(folder: Path, configs: Mapping[str, Any], rows: list[dict[str, Any]]) -> list[Path]:
    """Write the three figures of `FIGURES` into `folder`; `configs` is name -> Dataset, `rows` the composition."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        _save(_score_histogram(configs), folder / "score_histogram.png"),
        _save(_mean_score_per_source(rows), folder / "mean_score_per_source.png"),
        _save(_composition(rows), folder / "composition.png"),
    ]


def _figure(height: float = 4.0):
    from matplotlib.figure import Figure  # object API with the Agg canvas: no pyplot state, no display needed

    fig = Figure(figsize=(7, height))
    return fig, fig.add_subplot()


def _score_histogram(configs: Mapping[str, Any]):
    fig, ax = _figure()
    bins = np.linspace(1, 5, 33)
    for i, (name, ds) in enumerate(configs.items()):
        scores = ds.with_format("numpy", columns=[QUALITY_SCORE])[QUALITY_SCORE] if len(ds) else np.empty(0)
        if i == 0:
            ax.hist(scores, bins=bins, color="#4c72b0", alpha=0.6, label=f"{name} ({len(ds):,})")
        else:
            ax.hist(scores, bins=bins, histtype="step", linewidth=1.5,
                    color=SUBSET_COLOURS[(i - 1) % len(SUBSET_COLOURS)], label=f"{name} ({len(ds):,})")
    ax.set_xlabel("quality score (1-5)")
    ax.set_ylabel("rows")
    ax.set_title("Quality scores")
    ax.legend(fontsize=8)
    return fig


def _height(rows: list[dict[str, Any]]) -> float:
    return max(3.0, 0.3 * len(rows) + 1.2)


def _mean_score_per_source(rows: list[dict[str, Any]]):
    fig, ax = _figure(_height(rows))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [_nan(r.get("mean_quality")) for r in rows], height=0.4, color="#bbbbbb", label="available")
    ax.barh(y + 0.2, [_nan(r.get("mean_quality_kept")) for r in rows], height=0.4, color="#4c72b0", label="kept")
    ax.set_yticks(y, [r["source"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(1, 5)
    ax.set_xlabel("mean quality score")
    ax.set_title("Mean quality score per source")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _composition(rows: list[dict[str, Any]]):
    fig, ax = _figure(_height(rows))
    y = np.arange(len(rows))
    kept = [r.get("kept") or 0 for r in rows]
    available = [r.get("available") if r.get("available") is not None else k for r, k in zip(rows, kept, strict=True)]
    ax.barh(y, available, height=0.7, color="#bbbbbb", label="available")
    ax.barh(y, kept, height=0.45, color="#4c72b0", label="kept")
    positive = [v for v in [*available, *kept] if v]
    if positive and max(positive) / min(positive) > 100:
        ax.set_xscale("log")
    ax.set_yticks(y, [r["source"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    ax.set_title("Composition")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _nan(value) -> float:
    return float("nan") if value is None else float(value)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, **PNG_OPTIONS)
    return path
