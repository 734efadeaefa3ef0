"""Scatter figures written straight to PNG with matplotlib's Agg canvas (no display, no global backend switch)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SchemaError


@dataclass
class Panel:
    """One scatter panel: points (x, y), optionally coloured by group, with a title and a smaller subtitle."""

    title: str
    x: Sequence[float]
    y: Sequence[float]
    groups: Sequence[str] | None = None
    subtitle: str = ""


def save_scatter(path: str | os.PathLike, panels: Sequence[Panel], *, xlabel: str, ylabel: str,
                 ylim: tuple[float, float] | None = None, dpi: int = 120) -> Path:
    """Panels side by side in one PNG at ``path`` (parent folders created); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise SchemaError("save_scatter needs at least one panel")
    for p in panels:
        if len(p.x) != len(p.y) or (p.groups is not None and len(p.groups) != len(p.x)):
            raise SchemaError(f"panel {p.title!r}: x, y and groups must have the same length, got "
                              f"{len(p.x)}, {len(p.y)}, {None if p.groups is None else len(p.groups)}")
    fig = Figure(figsize=(5.2 * len(panels), 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, p in zip(axes, panels):
        x, y = np.asarray(p.x, dtype=float), np.asarray(p.y, dtype=float)
        groups = list(p.groups) if p.groups is not None else [""] * len(x)
        names = list(dict.fromkeys(groups))
        for i, g in enumerate(names):
            mask = np.array([h == g for h in groups], dtype=bool)
            ax.scatter(x[mask], y[mask], s=14, alpha=0.7, color=f"C{i % 10}", label=g or None, linewidths=0)
        if len(x) >= 2 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            grid = np.linspace(x.min(), x.max(), 2)
            ax.plot(grid, slope * grid + intercept, color="black", linewidth=1)
        ax.set_title("\n".join(textwrap.wrap(p.title, 60) + textwrap.wrap(p.subtitle, 70)), fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        if any(names):
            ax.legend(fontsize=7, loc="best", markerscale=1.5)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
