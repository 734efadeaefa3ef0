"""Write the demo data: seeded rows of known kinds for every demo source, one file per kind, in native layouts.

Four row kinds, in shares that fit the source (`kind_shares`):

- ``stepwise``: a worked solution, one line per intermediate result, then the final value in the source's style;
- ``bare_answer``: the final value alone;
- ``code_only``: a Python program that prints the value, no prose;
- ``unrelated``: an everyday request or chit-chat with no math.

Each kind of a source goes to ``<out>/<source>/<kind><suffix>``. The builders make the file stem the middle part of
a row id (``<source>/<origin>/<row>``), so :func:`kind_of` reads the kind back from any built row. Every (seed,
source, kind) has its own random stream, so a source's rows do not depend on which other sources are written.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from ..errors import ConfigError, SchemaError
from .chatter import make_chat, make_chat_zh
from .layouts import BARE, CODE, LAYOUTS, STEPWISE, UNRELATED, Item
from .problems import make_problem, make_problem_zh

__all__ = ["KINDS", "kind_counts", "kind_of", "kind_shares", "make_items", "write_demo_data", "write_source"]

KINDS = (STEPWISE, BARE, CODE, UNRELATED)

# Shares of the kinds per task, with the sources whose own data is mostly of one kind (DMath's answers are bare
# values, Lila's are programs, FLAN CoT's are rationales). Every source keeps some of each kind, so each scorer
# sees all four.
TASK_SHARES = {
    "reasoning": {STEPWISE: 0.55, BARE: 0.15, CODE: 0.15, UNRELATED: 0.15},
    "general": {STEPWISE: 0.15, BARE: 0.15, CODE: 0.15, UNRELATED: 0.55},
}
SOURCE_SHARES = {
    "dmath": {STEPWISE: 0.15, BARE: 0.55, CODE: 0.15, UNRELATED: 0.15},
    "lila_ood": {STEPWISE: 0.15, BARE: 0.15, CODE: 0.55, UNRELATED: 0.15},
    "cot": {STEPWISE: 0.40, BARE: 0.10, CODE: 0.10, UNRELATED: 0.40},
}


def kind_shares(source: str) -> dict[str, float]:
    """The share of each kind among a source's demo rows."""
    from ..sources import get_source

    task = get_source(source).task
    return dict(SOURCE_SHARES.get(source, TASK_SHARES[task]))


def kind_counts(shares: dict[str, float], rows: int) -> dict[str, int]:
    """Split ``rows`` by ``shares`` (largest remainder; ties go to the earlier kind of KINDS); the counts sum to rows."""
    if rows < 0:
        raise ConfigError(f"rows must be >= 0, got {rows}")
    unknown = set(shares) - set(KINDS)
    if unknown or any(s < 0 for s in shares.values()) or not sum(shares.values()):
        raise ConfigError(f"kind shares {shares} must be non-negative weights over {KINDS}")
    total = sum(shares.values())
    exact = {k: rows * shares.get(k, 0.0) / total for k in KINDS}
    counts = {k: int(exact[k]) for k in KINDS}
    by_remainder = sorted(KINDS, key=lambda k: (-(exact[k] - counts[k]), KINDS.index(k)))
    for k in by_remainder[:rows - sum(counts.values())]:
        counts[k] += 1
    return counts


def make_items(source: str, kind: str, n: int, seed: int = 0, short: bool = False) -> list[Item]:
    """``n`` generated rows of one kind for one source (Chinese text where the source's layout says so; ``short``:
    two-step problems only)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown row kind {kind!r}; the demo kinds are {', '.join(KINDS)}")
    chinese = LAYOUTS[source].chinese
    r = random.Random(f"openmathmix-demo/{seed}/{source}/{kind}")
    if kind == UNRELATED:
        chat = make_chat_zh if chinese else make_chat
        return [Item(kind, chat=chat(r)) for _ in range(n)]
    if chinese:
        return [Item(kind, problem=make_problem_zh(r)) for _ in range(n)]
    return [Item(kind, problem=make_problem(r, short)) for _ in range(n)]


def write_source(out_dir: str | os.PathLike, source: str, counts: dict[str, int], seed: int = 0,
                 short: bool = False) -> list[str]:
    """Write one source's files, one per kind with a positive count; return their paths (in KINDS order)."""
    if source not in LAYOUTS:
        raise ConfigError(f"no demo layout for source {source!r}; demo layouts exist for {', '.join(LAYOUTS)}")
    layout = LAYOUTS[source]
    folder = Path(out_dir) / source
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in KINDS:
        if not counts.get(kind):
            continue
        items = make_items(source, kind, counts[kind], seed, short)
        path = folder / f"{kind}{layout.suffix}"
        text = layout.write(items, layout.style, random.Random(f"openmathmix-demo/{seed}/{source}/{kind}/layout"))
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths


def write_demo_data(out_dir: str | os.PathLike, *, rows_per_source: int | None = None, seed: int | None = None,
                    sources: list[str] | None = None, test_source: str | None = None,
                    test_rows: int | None = None) -> dict[str, list[str]]:
    """Write the demo data under ``out_dir``; return ``{source: [file paths]}`` for ``build(data_files=...)``.

    ``sources`` defaults to the demo preset's sources; each gets ``rows_per_source`` rows split into kinds by
    :func:`kind_shares`. ``test_source`` (default: the demo profile's ``quality.test_source``; "" for none) gets ``test_rows``
    worked solutions only: it is the pool of the test set Dt and is not part of the mixture. Defaults come from
    the demo profile (``openmathmix.settings.PROFILES['demo']``).
    """
    from ..settings import PROFILES

    demo = PROFILES["demo"]

    rows = demo.demo.rows_per_source if rows_per_source is None else rows_per_source
    seed = demo.demo.seed if seed is None else seed
    test_source = (demo.quality.test_source or "") if test_source is None else test_source
    test_rows = demo.demo.test_rows if test_rows is None else test_rows
    if rows < 1:
        raise ConfigError(f"rows_per_source must be >= 1, got {rows}")
    if sources is None:
        from ..select.mixture import load_preset

        sources = list(load_preset("demo").source_names)
    if test_source and test_source in sources:
        raise ConfigError(f"test source {test_source!r} is also a mixture source; Dt must come from its own pool")
    if test_source and test_rows < 1:
        raise ConfigError(f"test_rows must be >= 1 when a test source is written, got {test_rows}")
    unknown = [name for name in [*sources, test_source] if name and name not in LAYOUTS]
    if unknown:
        raise ConfigError(f"no demo layout for source {unknown[0]!r}; demo layouts exist for {', '.join(LAYOUTS)}")
    files = {name: write_source(out_dir, name, kind_counts(kind_shares(name), rows), seed) for name in sources}
    if test_source:
        files[test_source] = write_source(out_dir, test_source, {STEPWISE: test_rows}, seed,
                                          short=demo.demo.short_tests)
    return files


def kind_of(row_id: str) -> str:
    """The demo row kind of a built row id ``<source>/<kind>/<row>`` (a folder-qualified ``x.<kind>`` works too)."""
    parts = str(row_id).split("/")
    kind = parts[1].rsplit(".", 1)[-1] if len(parts) >= 3 else ""
    if kind not in KINDS:
        raise SchemaError(f"row id {row_id!r} is not a demo row id '<source>/<kind>/<row>' with a kind among "
                          f"{', '.join(KINDS)}; only rows built from write_demo_data files carry their kind")
    return kind
