"""Hygiene on real files (skipped without ../shared): FLAN CoT's copy of GSM8K train, GSM8K train vs the test sets.

The counts were measured once with these settings and are pinned here: a change in normalisation, hashing or the
defaults that moves them has to be looked at (and the numbers updated on purpose).
"""

from __future__ import annotations

import datasets
import pytest

from openmathmix.hygiene import HygieneSettings, build_benchmark, run_hygiene
from openmathmix.sources import build_source

DECONTAMINATE_ONLY = {"exact_dedup": False, "near_dedup": False}


@pytest.fixture(scope="module")
def real(realdata, tmp_path_factory):
    cache = tmp_path_factory.mktemp("hygiene-sources")
    cot, _ = build_source("cot", data_files=[realdata / "cot" / "gsm8k_train.tsv"], cache_dir=cache, progress=False)
    train, _ = build_source("gsm8k_screl", data_files=[realdata / "gsm8k_screl" / "train_use.jsonl"],
                            cache_dir=cache, progress=False)
    benchmarks = {"gsm8k": build_benchmark("gsm8k", realdata / "gsm8k_screl" / "test_use.jsonl"),
                  "math": build_benchmark("math", realdata / "math_hendrycks_test" / "test.jsonl")}
    return cot, train, benchmarks


def test_benchmarks_read_from_their_native_files(real):
    _, _, benchmarks = real
    assert {name: len(ds) for name, ds in benchmarks.items()} == {"gsm8k": 1319, "math": 5000}
    assert benchmarks["gsm8k"][0]["id"] == "gsm8k/test_use/0"


def test_flan_cot_copy_of_gsm8k_train_is_found(real):
    """FLAN CoT rewrote GSM8K's answers (no calculator notes, "So the answer is N."): every CoT row is a near
    duplicate of its GSM8K-ScRel original, which is kept (reasoning sources before general ones)."""
    cot, train, benchmarks = real
    pool = datasets.concatenate_datasets([cot, train])
    kept, report = run_hygiene(pool, benchmarks=benchmarks, progress=False)
    report.check()
    assert len(kept) == 7464
    assert report.counts == {"contaminated:gsm8k": 8, "near_duplicate": 7474}
    assert report.near_pairs == {"cot": {"gsm8k_screl": 7469}, "gsm8k_screl": {"gsm8k_screl": 5}}
    assert report.exact_pairs == {}
    assert report.by_source["cot"] == {"rows_in": 7473, "contaminated": 4, "exact_duplicate": 0,
                                       "near_duplicate": 7469, "kept": 0}
    reasons = dict(zip(report.dropped.column("id").to_pylist(), report.dropped.column("reason").to_pylist()))
    assert reasons["cot/gsm8k_train/0"] == "near_duplicate_of:gsm8k_screl/train_use/0"
    # the 5 pairs inside GSM8K train are forward/backward versions of one problem ("Pam has 10 bags ..." /
    # "Pam has some bags ... 1200 apples in total")
    assert reasons["gsm8k_screl/train_use/954"] == "near_duplicate_of:gsm8k_screl/train_use/295"


@pytest.mark.parametrize(("ngram", "gsm8k", "math", "dropped_math"), [(13, 4, 0, 0), (8, 97, 15, 14)])
def test_gsm8k_train_against_gsm8k_and_math_test(real, ngram, gsm8k, math, dropped_math):
    _, train, benchmarks = real
    settings = HygieneSettings(ngram=ngram, min_item_words=min(8, ngram), **DECONTAMINATE_ONLY)
    kept, report = run_hygiene(train, benchmarks=benchmarks, settings=settings, progress=False)
    assert report.benchmark_matches == {"gsm8k_screl": {"gsm8k": gsm8k, "math": math}}
    assert report.counts == {k: v for k, v in {"contaminated:gsm8k": gsm8k, "contaminated:math": dropped_math}.items()
                             if v}
    assert len(kept) == 7473 - gsm8k - dropped_math


def test_13_grams_flag_templated_twins_of_test_problems(real):
    _, train, benchmarks = real
    _, report = run_hygiene(train, benchmarks=benchmarks, settings=HygieneSettings(**DECONTAMINATE_ONLY),
                            progress=False)
    pairs = {e["id"]: e["of"] for e in report.examples["contaminated"]}
    assert pairs == {"gsm8k_screl/train_use/20": "gsm8k/test_use/632", "gsm8k_screl/train_use/406":
                     "gsm8k/test_use/581", "gsm8k_screl/train_use/1314": "gsm8k/test_use/602",
                     "gsm8k_screl/train_use/5162": "gsm8k/test_use/602"}
    train_q = train[20]["question"]
    test_q = benchmarks["gsm8k"][632]["question"]
    shared = "some of the stamps had a snowflake design, some had a truck design, and some had a rose design"
    assert shared in train_q.lower() and shared in test_q.lower()
