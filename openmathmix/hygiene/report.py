"""What the hygiene step did to a pool: counts by reason, per source and benchmark, per source pair, examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import SchemaError

KEPT = "kept"
CONTAMINATED = "contaminated"  # reason "contaminated:<benchmark>"
EXACT = "exact_duplicate"  # reason "exact_duplicate_of:<id>"
NEAR = "near_duplicate"  # reason "near_duplicate_of:<id>"
KINDS = (CONTAMINATED, EXACT, NEAR)


@dataclass
class HygieneReport:
    """Every pool row is kept or dropped for one reason; ``to_dict`` is the JSON form, ``to_markdown`` the card's.

    ``counts`` has one entry per drop reason (``contaminated:<benchmark>``, ``exact_duplicate``,
    ``near_duplicate``), so ``rows_kept + sum(counts.values()) == rows_in``. ``benchmark_matches[source][benchmark]``
    counts the rows of a source that share an n-gram with a benchmark (a row can match several benchmarks; it is
    dropped under the first, in the order the benchmarks were given). ``exact_pairs`` and ``near_pairs`` map the
    source of a dropped copy to the source of the kept copy to a row count. ``dropped`` lists every dropped row (id,
    source, reason); ``timings`` are seconds per part. Neither is part of ``to_dict`` (the JSON stays the same from
    run to run).
    """

    enabled: bool
    rows_in: int
    rows_kept: int
    counts: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> rows_in, kept, and each kind
    benchmark_matches: dict[str, dict[str, int]] = field(default_factory=dict)
    exact_pairs: dict[str, dict[str, int]] = field(default_factory=dict)
    near_pairs: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # reason kind -> [{"id", "of"}]
    benchmarks: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> items, indexed grams
    settings: dict[str, Any] = field(default_factory=dict)
    scheme: dict[str, Any] = field(default_factory=dict)  # normalisation, n-grams, MinHash/LSH parameters, library
    stats: dict[str, int] = field(default_factory=dict)  # LSH pairs checked / confirmed, rows without words
    rephrasing: dict[str, Any] | None = None  # see rephrase.rephrasing_candidates (candidates only, never dropped)
    dropped: pa.Table | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def rows_dropped(self) -> int:
        return sum(self.counts.values())

    def check(self) -> None:
        """Raise :class:`SchemaError` unless every row is accounted for (kept + dropped == in, per source too)."""
        if self.rows_kept + self.rows_dropped != self.rows_in:
            raise SchemaError(f"hygiene accounting does not balance: {self.rows_in:,} rows in, {self.rows_kept:,} "
                              f"kept + {self.rows_dropped:,} dropped {self.counts}. This is a bug; please report it.")
        for source, row in self.by_source.items():
            if row["kept"] + sum(row[k] for k in KINDS) != row["rows_in"]:
                raise SchemaError(f"hygiene accounting does not balance for source {source!r}: {row}")

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("enabled", "rows_in", "rows_kept", "counts", "by_source",
                                             "benchmark_matches", "exact_pairs", "near_pairs", "examples",
                                             "benchmarks", "settings", "scheme", "stats")}
        if self.rephrasing is not None:
            out["rephrasing"] = self.rephrasing
        return out

    def to_markdown(self) -> str:
        """The card section body: what was checked, a table per source, benchmark matches, duplicate source pairs."""
        if not self.enabled:
            return f"Hygiene was off: all {self.rows_in:,} rows of the pool are kept as the sources give them.\n"
        share = self.rows_kept / self.rows_in if self.rows_in else 1.0
        lines = [f"{self.rows_in:,} rows in, {self.rows_kept:,} kept ({share:.1%}), {self.rows_dropped:,} dropped.", ""]
        lines += [f"- {line}" for line in self._describe()]
        lines += ["", "| source | rows in | contaminated | exact duplicates | near duplicates | kept |",
                  "|---|---:|---:|---:|---:|---:|"]
        total = {k: 0 for k in ("rows_in", KEPT, *KINDS)}
        for source, row in self.by_source.items():
            lines.append(f"| {source} | {row['rows_in']:,} | {row[CONTAMINATED]:,} | {row[EXACT]:,} | "
                         f"{row[NEAR]:,} | {row[KEPT]:,} |")
            for k in total:
                total[k] += row[k]
        lines.append(f"| **total** | **{total['rows_in']:,}** | **{total[CONTAMINATED]:,}** | **{total[EXACT]:,}** | "
                     f"**{total[NEAR]:,}** | **{total[KEPT]:,}** |")
        names = list(self.benchmarks)
        matched = {s: row for s, row in self.benchmark_matches.items() if any(row.values())}
        if names:
            lines += ["", "Rows sharing an n-gram with each benchmark (a row can match several):", "",
                      "| source | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
            for source, row in matched.items():
                lines.append(f"| {source} | " + " | ".join(f"{row.get(b, 0):,}" for b in names) + " |")
            if not matched:
                lines.append("| (none) | " + " | ".join("0" for _ in names) + " |")
        pairs = sorted({(a, b) for d in (self.exact_pairs, self.near_pairs) for a, row in d.items() for b in row})
        if pairs:
            lines += ["", ("Duplicates by source pair (the copy in the first source is dropped, the one in the second "
                           "kept):"), "", "| dropped from | kept in | exact | near |", "|---|---|---:|---:|"]
            for a, b in pairs:
                lines.append(f"| {a} | {b} | {self.exact_pairs.get(a, {}).get(b, 0):,} | "
                             f"{self.near_pairs.get(a, {}).get(b, 0):,} |")
        return "\n".join(lines) + "\n"

    def _describe(self) -> list[str]:
        s, sc = self.settings, self.scheme
        out = []
        if s.get("decontaminate") and self.benchmarks:
            items = ", ".join(f"{n} ({v['items']:,} items)" for n, v in self.benchmarks.items())
            out.append(f"Decontamination against {items}: a row is dropped when its "
                       f"{' or '.join(s['pool_fields'])} shares a normalised {s['ngram']}-word sequence with a "
                       f"benchmark {' or '.join(s['benchmark_fields'])} (shorter items: the whole item).")
        elif s.get("decontaminate"):
            out.append("Decontamination: no benchmark was given, so no row was checked against one.")
        if s.get("exact_dedup"):
            out.append("Exact duplicates: same normalised question and answer across all sources.")
        if s.get("near_dedup"):
            out.append(f"Near duplicates: MinHash LSH ({sc.get('library')} {sc.get('library_version')} R-MinHash) over "
                       f"word {s['shingle']}-grams of question and answer, {s['num_perm']} permutations, "
                       f"{s['bands']} bands x {s['rows_per_band']} rows, estimated Jaccard >= {s['threshold']}.")
        out.append("Normalisation: NFKC, lower case, GSM8K calculator notes removed, every character that is not a "
                   "letter or digit a space. Keep rule: " + sc.get("keep_rule", ""))
        return out
