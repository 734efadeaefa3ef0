"""Hygiene step throughput: `run_hygiene` (decontamination + exact + near duplicates) against a plain Python version.

Pool: the real training rows in ../shared/realdata built through their builders (GSM8K-ScRel train, the seven FLAN
CoT files, TAL-SCQ5K-EN, DMath: 48K rows), repeated with perturbations up to --rows rows: each repeat is an exact
copy (30 %) or a copy with 1-10 % of its words substituted, deleted or inserted (70 %), filed under a random one of
the four sources. Benchmarks: GSM8K test (ScRel's test_use.jsonl) and MATH test (5,000 problems).

Ours: one `run_hygiene` call with every check on; its per-part timings give the decontamination rate (tokenising +
index + lookups) and the near-duplicate rate (tokenising + MinHash + LSH); rows_per_s is the whole call.

Plain Python, same method, written the obvious way: regex normalisation per text, sets of n-gram tuples for the
benchmarks and a membership test per window; MinHash with 128 (a*h+b) mod (2^61-1) permutations over Python-hashed
word 2-gram tuples, dict-of-buckets LSH, pairwise check of each bucket's members against its first row. It runs on
a sample (--sample-decontam, --sample-near rows) and its rate is extrapolated linearly to the pool (stated in the
output). On the decontamination sample both sides must flag exactly the same rows; for near duplicates (different
hash functions) the agreement of the dropped sets is printed.

    .venv/bin/python bench/bench_hygiene.py                # 250,000 rows
    .venv/bin/python bench/bench_hygiene.py --rows 1000000

Last line: RESULT bench=hygiene rows=N rows_per_s=X ratio=Y (ratio = our rows/s over the plain version's, both for
decontamination + near duplicates).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REAL = REPO.parent / "shared" / "realdata"
SOURCES = {
    "gsm8k_screl": ["gsm8k_screl/train_use.jsonl"],
    "cot": sorted(f"cot/{p.name}" for p in (REAL / "cot").glob("*.tsv")) if (REAL / "cot").is_dir() else [],
    "tal_scq5k_en": ["tal_scq5k_en/en_single_choice_train_3K.jsonl", "tal_scq5k_en/en_single_choice_test_2K.jsonl"],
    "dmath": ["dmath/test.json"],
}
MERSENNE = (1 << 61) - 1
PRIORITY = ("gsm8k_screl", "tal_scq5k_en", "dmath", "cot")  # keep order of both sides


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=250_000, help="pool rows (real rows repeated with perturbations)")
    p.add_argument("--sample-decontam", type=int, default=20_000, help="rows the plain decontamination runs on")
    p.add_argument("--sample-near", type=int, default=2_000, help="rows the plain MinHash LSH runs on")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_pool(n_rows: int, seed: int):
    import datasets

    from openmathmix.sources import build_source

    cache = tempfile.mkdtemp(prefix="bench-hygiene-")
    parts = [build_source(name, [REAL / f for f in files], cache_dir=cache, progress=False)[0]
             for name, files in SOURCES.items()]
    base = datasets.concatenate_datasets(parts)
    rng = random.Random(seed)
    questions, answers, sources = base["question"], base["answer"], base["source"]
    vocab = " ".join(questions[i] for i in range(0, len(base), 97)).split()
    rows = {"id": list(base["id"]), "source": list(sources), "task": list(base["task"]),
            "question": list(questions), "answer": list(answers), "license": list(base["license"])}
    names = list(SOURCES)
    task_of = dict(zip(sources, base["task"]))
    k = 0
    while len(rows["id"]) < n_rows:
        i = rng.randrange(len(base))
        k += 1
        source = rng.choice(names)
        share = rng.uniform(0.01, 0.10)
        exact = rng.random() < 0.3
        q, a = questions[i], answers[i]
        if not exact:
            q, a = _edit(q, share, rng, vocab), _edit(a, share, rng, vocab)
        rows["id"].append(f"{source}/rep/{k}")
        rows["source"].append(source)
        rows["task"].append(task_of[source])
        rows["question"].append(q)
        rows["answer"].append(a)
        rows["license"].append("mit")
    return datasets.Dataset.from_dict(rows), len(base)


def _edit(text: str, share: float, rng: random.Random, vocab: list[str]) -> str:
    words = text.split(" ")
    for _ in range(max(1, round(share * len(words)))):
        op, i = rng.random(), rng.randrange(len(words))
        if op < 1 / 3:
            words[i] = rng.choice(vocab)
        elif op < 2 / 3 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, rng.choice(vocab))
    return " ".join(words)


# ---- the plain Python version ---------------------------------------------------------------------------------------


def plain_words(text: str) -> list[str]:
    """The normalisation rule with Python's regex and unicodedata modules, one text at a time."""
    import unicodedata

    import regex

    text = unicodedata.normalize("NFKC", regex.sub(r"<<[^<>\n]*>>", " ", text)).lower()
    return regex.sub(r"(\p{Han})", r" \1 ", regex.sub(r"[^\p{L}\p{N}]+", " ", text)).split()


def plain_decontam(rows, bench_questions, n: int, min_words: int) -> list[bool]:
    grams, whole, lengths = set(), set(), {n}
    for q in bench_questions:
        w = plain_words(q)
        if len(w) >= n:
            grams.update(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
        elif len(w) >= min_words:
            grams.add(tuple(w))
            lengths.add(len(w))
        elif w:
            whole.add(tuple(w))
    flags = []
    for q, a in rows:
        qw, aw = plain_words(q), plain_words(a)
        hit = tuple(qw) in whole
        for w in (qw, aw):
            for length in lengths:
                if hit:
                    break
                hit = any(tuple(w[i:i + length]) in grams for i in range(len(w) - length + 1))
        flags.append(hit)
    return flags


def plain_near(rows, ranks, shingle=2, num_perm=128, bands=32, r=4, threshold=0.6, seed=1) -> set[int]:
    """Indices (into rows) dropped as near duplicates: connected components of confirmed bucket pairs."""
    rng = random.Random(seed)
    perms = [(rng.randrange(1, MERSENNE), rng.randrange(MERSENNE)) for _ in range(num_perm)]
    sigs = []
    for q, a in rows:
        w = plain_words(q) + plain_words(a)
        shingles = {tuple(w[i:i + shingle]) for i in range(len(w) - shingle + 1)} or {tuple(w)}
        hashes = [hash(s) & ((1 << 61) - 1) for s in shingles]
        sigs.append([min((pa * h + pb) % MERSENNE for h in hashes) for pa, pb in perms])
    parent = list(range(len(rows)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order = sorted(range(len(rows)), key=lambda i: ranks[i])
    for band in range(bands):
        buckets: dict[tuple, int] = {}
        for i in order:
            key = tuple(sigs[i][band * r:(band + 1) * r])
            head = buckets.setdefault(key, i)
            if head != i and sum(x == y for x, y in zip(sigs[head], sigs[i])) >= threshold * num_perm:
                ra, rb = find(head), find(i)
                if ra != rb:
                    first, second = (ra, rb) if ranks[ra] < ranks[rb] else (rb, ra)
                    parent[second] = first
    return {i for i in range(len(rows)) if find(i) != i}


def main(argv=None) -> None:
    args = parse_args(argv)
    if not REAL.is_dir():
        sys.exit(f"{REAL} is missing: this benchmark needs the real data folder beside the repository")
    import datasets

    from openmathmix.hygiene import HygieneSettings, build_benchmark, run_hygiene
    from openmathmix.hygiene.dedup import keep_order

    datasets.disable_progress_bars()
    pool, n_real = build_pool(args.rows, args.seed)
    benchmarks = {"gsm8k": build_benchmark("gsm8k", REAL / "gsm8k_screl" / "test_use.jsonl"),
                  "math": build_benchmark("math", REAL / "math_hendrycks_test" / "test.jsonl")}
    settings = HygieneSettings(source_priority=PRIORITY)
    load = os.getloadavg()[0]
    print(f"pool: {len(pool):,} rows ({n_real:,} real rows + perturbed repeats); load average {load:.1f} on "
          f"{os.cpu_count()} CPUs")

    start = time.perf_counter()
    kept, report = run_hygiene(pool, benchmarks=benchmarks, settings=settings, progress=False)
    ours = time.perf_counter() - start
    t = report.timings
    decontam_s = t["tokenize"] + t["index"] + t["decontaminate"]
    near_s = t["tokenize"] + t["minhash"] + t["lsh"]
    print(f"ours: {ours:.1f} s for {len(pool):,} rows = {len(pool) / ours:,.0f} rows/s end to end; kept "
          f"{len(kept):,}; dropped {report.counts}")
    print("ours, seconds per part: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))
    print(f"ours: decontamination {len(pool) / decontam_s:,.0f} rows/s (tokenise + index + lookups), near "
          f"duplicates {len(pool) / near_s:,.0f} rows/s (tokenise + MinHash + LSH)")

    rng = random.Random(args.seed + 1)
    qa = list(zip(pool["question"], pool["answer"]))
    sample = sorted(rng.sample(range(len(pool)), min(args.sample_decontam, len(pool))))
    bench_q = list(benchmarks["gsm8k"]["question"]) + list(benchmarks["math"]["question"])
    clock = time.perf_counter()
    flags = plain_decontam([qa[i] for i in sample], bench_q, settings.ngram, settings.min_item_words)
    plain_decontam_rate = len(sample) / (time.perf_counter() - clock)
    ours_flag = set(report.dropped.filter(
        np.char.startswith(np.asarray(report.dropped.column("reason").to_pylist(), dtype=str), "contaminated")
    ).column("id").to_pylist())
    ids = pool["id"]
    ours_sample = [ids[i] in ours_flag for i in sample]
    same = ours_sample == flags
    print(f"plain decontamination: {plain_decontam_rate:,.0f} rows/s on {len(sample):,} sampled rows "
          f"({sum(flags)} flagged; ours flags the same rows: {same})")

    near_sample = sorted(rng.sample(range(len(pool)), min(args.sample_near, len(pool))))
    sub = pool.select(near_sample)
    ranks = keep_order(sub["id"], sub["source"], PRIORITY)
    clock = time.perf_counter()
    plain_dropped = plain_near([qa[i] for i in near_sample], ranks)
    plain_near_rate = len(near_sample) / (time.perf_counter() - clock)
    _, sub_report = run_hygiene(sub, settings=HygieneSettings(decontaminate=False, exact_dedup=False,
                                                              source_priority=PRIORITY), progress=False)
    ours_dropped = set(sub_report.dropped.column("id").to_pylist())
    plain_ids = {sub["id"][i] for i in plain_dropped}
    agree = len(ours_dropped & plain_ids) / max(1, len(ours_dropped | plain_ids))
    print(f"plain near duplicates: {plain_near_rate:,.1f} rows/s on {len(near_sample):,} sampled rows "
          f"(drops {len(plain_ids)}, ours on the same rows {len(ours_dropped)}, overlap of the two sets "
          f"{agree:.3f})")
    plain_total = len(pool) / plain_decontam_rate + len(pool) / plain_near_rate
    print(f"plain Python, extrapolated linearly from the samples to {len(pool):,} rows: {plain_total:,.0f} s "
          f"(decontamination {len(pool) / plain_decontam_rate:,.0f} s + near duplicates "
          f"{len(pool) / plain_near_rate:,.0f} s)")
    print(f"ratio decontamination {plain_decontam_rate and (len(pool) / decontam_s) / plain_decontam_rate:.1f}, "
          f"near duplicates {(len(pool) / near_s) / plain_near_rate:.1f}, end to end {plain_total / ours:.1f}")
    if not same:
        sys.exit("the plain decontamination and ours disagree on the sample")
    print(f"RESULT bench=hygiene rows={len(pool)} rows_per_s={len(pool) / ours:.0f} ratio={plain_total / ours:.1f}")


if __name__ == "__main__":
    main()
