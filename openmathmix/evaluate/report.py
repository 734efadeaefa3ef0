"""An evaluation as markdown (the card's "Selection report" section) and as a figure (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["evaluation_markdown", "write_figure"]


def _pm(stat: dict[str, Any] | None, digits: int = 3) -> str:
    """``mean ± sd`` of a mean_and_spread dict ("n/a" when empty; no ± for one value)."""
    if not stat or stat.get("mean") is None:
        return "n/a"
    text = f"{stat['mean']:.{digits}f}"
    return text + (f" ± {stat['sd']:.{digits}f}" if stat.get("sd") is not None else "")


def evaluation_markdown(evaluation: dict[str, Any]) -> str:
    """The comparison as markdown: settings line, one table row per strategy (mean ± sd over seeds), verdict."""
    s = evaluation["settings"]
    pool = evaluation["pool"]
    benches = [b["name"] for b in evaluation.get("benchmarks", [])]
    intro = (f"Each strategy picks {evaluation['subset_rows']:,} of the pool's {pool['rows']:,} rows (budget "
             f"{s['budget']:g}, scope `{s['scope']}`); values are the mean ± sample sd over seeds "
             f"{', '.join(map(str, s['seeds']))}.")
    lines = [intro, ""]
    head = ["strategy", "covering radius", "mean distance", "mean quality", "answer chars", "near-dup rows"]
    for bench in benches:
        head.append(f"log-lik {bench}")
        if evaluation.get("accuracy_measured"):
            head.append(f"accuracy {bench}")
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for row in evaluation["summary"]:
        cells = [f"`{row['strategy']}`", _pm(row["covering_radius"], 2), _pm(row["mean_distance"], 2),
                 _pm(row["quality_mean"], 2), _pm(row["answer_chars_mean"], 0), _pm(row["near_duplicate_row_share"])]
        for bench in benches:
            cells.append(_pm(row.get(f"loglik:{bench}")))
            if evaluation.get("accuracy_measured"):
                cells.append(_pm(row.get(f"accuracy:{bench}")))
        lines.append("| " + " | ".join(cells) + " |")
    base = evaluation.get("base_model")
    if base:
        parts = [f"{name} {v['loglik']:.3f}" for name, v in base["benchmarks"].items()]
        lines += ["", f"Base model (no fine-tune) log-likelihood: {', '.join(parts)}."]
    for bench, v in evaluation.get("verdict", {}).items():
        if "runner_up" not in v:
            continue
        if v["clear"]:
            lines.append(f"On {bench}, `{v['best']}` has the best mean log-likelihood, {v['gap']:.3f} above "
                         f"`{v['runner_up']}`: more than the largest seed sd ({v['largest_seed_sd']:.3f}).")
        else:
            lines.append(f"On {bench}, `{v['best']}` has the best mean log-likelihood, but only {v['gap']:.3f} above "
                         f"`{v['runner_up']}`, within the seed sd ({v['largest_seed_sd']:.3f}): no clear winner at "
                         "this size.")
    if evaluation.get("trained"):
        m = evaluation["model"]
        length = f"{s['epochs']:g} epoch(s)" if s["max_steps"] is None else f"{s['max_steps']} steps"
        lines.append(f"Proxy model `{m['name']}` fine-tuned on each subset ({length}, learning rate "
                     f"{s['learning_rate']:g}{', LoRA' if s['lora'] else ''}), the same seed for every strategy.")
    d = evaluation["definitions"]
    lines += ["", (f"Covering radius: {d['covering_radius']}. Near-dup rows: share of subset rows with a partner of "
                   f"cosine > {s['near_duplicate_cosine']:g}. Log-lik: {d['loglik']}.")]
    return "\n".join(lines) + "\n"


def write_figure(evaluation: dict[str, Any], path: str | Path) -> Path:
    """Bar charts (mean ± sd over seeds, one dot per seed) of coverage, quality and, when trained, log-likelihood."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = [r["strategy"] for r in evaluation["summary"]]
    panels = [("covering radius (lower: better coverage)", lambda r: r["covering_radius"], None),
              ("mean quality_score of the subset", lambda r: r["quality"]["mean"], None),
              ("near-duplicate rows (share)", lambda r: r["near_duplicates"]["row_share"], None)]
    for bench in evaluation.get("benchmarks", []):
        panels.append((f"log-likelihood on {bench['name']} (higher: better)",
                       lambda r, b=bench["name"]: r["benchmarks"][b]["loglik"], bench["name"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, get, bench_name) in zip(axes[0], panels):
        for i, strategy in enumerate(strategies):
            values = [get(r) for r in evaluation["runs"] if r["strategy"] == strategy]
            ax.bar(i, sum(values) / len(values), color="#8fb3d9", edgecolor="#2b5d8c")
            ax.scatter([i] * len(values), values, color="#1b2f45", s=12, zorder=3)
        if bench_name is not None:  # zoom on the runs; the base model is a line (in the legend if out of range)
            values = [get(r) for r in evaluation["runs"]]
            pad = (max(values) - min(values)) * 0.5 or 0.05
            ax.set_ylim(min(values) - pad, max(values) + pad)
            if evaluation.get("base_model"):
                base = evaluation["base_model"]["benchmarks"][bench_name]["loglik"]
                ax.axhline(base, color="#b24a3b", linestyle="--", linewidth=1, label=f"base model {base:.3f}")
                ax.legend(fontsize=8)
        ax.set_xticks(range(len(strategies)), strategies, rotation=30)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"Strategies at budget {evaluation['settings']['budget']:g} "
                 f"({evaluation['subset_rows']:,} of {evaluation['pool']['rows']:,} rows)", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
