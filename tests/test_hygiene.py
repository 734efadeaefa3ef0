"""Hygiene step: normalisation, n-gram hashing, decontamination, exact and near duplicates, report, benchmarks.

Synthetic rows are templated word problems written here (random names, objects, numbers and sentence choices); near
duplicates are copies with up to 10 % of their words substituted, deleted or inserted.
"""

from __future__ import annotations

import json
import random
import string

import datasets
import numpy as np
import pytest
import xxhash

from openmathmix.errors import ConfigError, DataFileError, MissingColumnsError, SchemaError, UnknownSourceError
from openmathmix.hygiene import (
    HygieneSettings,
    build_benchmark,
    build_benchmark_files,
    get_benchmark,
    list_benchmarks,
    normalize,
    normalize_text,
    rephrasing_candidates,
    run_hygiene,
)
from openmathmix.hygiene.benchmarks import benchmark_fixture_files
from openmathmix.hygiene.decontam import BenchmarkItems, build_index, find_contamination
from openmathmix.hygiene.dedup import (
    band_keys,
    bucket_pairs,
    exact_duplicates,
    keep_order,
    minhash_signatures,
    near_duplicates,
)
from openmathmix.hygiene.ngrams import Windows, mix64, text_hashes
from openmathmix.hygiene.normalize import tokenize

M64 = (1 << 64) - 1

# --------------------------------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------------------------------

NAMES = ["Amara", "Bilal", "Chen", "Dagny", "Emeka", "Farah", "Gustavo", "Hana", "Ivo", "Jun", "Kofi", "Lena",
         "Mateo", "Nia", "Oskar", "Priya", "Quentin", "Rosa", "Sami", "Tova", "Umar", "Vera", "Wen", "Ximena",
         "Yusuf", "Zara", "Anders", "Beatriz", "Cyrus", "Delphine", "Elio", "Fatima", "Gideon", "Ilse", "Jonas",
         "Kalani", "Leif", "Mira", "Nadim", "Odette"]
THINGS = ["marbles", "stickers", "apples", "pencils", "books", "shells", "coins", "stamps", "cookies", "beads",
          "cards", "buttons", "plums", "candles", "kites", "rocks", "ribbons", "cupcakes", "acorns", "tickets",
          "feathers", "bolts", "mugs", "sketches", "puzzles", "lemons", "bricks", "pebbles", "badges", "flags"]
PLACES = ["market", "library", "harbour", "orchard", "workshop", "festival", "garage sale", "bakery", "museum shop",
          "school fair", "flea market", "hardware store", "train station", "farm stand", "bookshop"]
PEOPLE = ["cousin", "neighbour", "teacher", "brother", "sister", "grandmother", "classmate", "coach", "uncle",
          "best friend", "aunt", "roommate"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
OPENERS = ["On {day}", "Last {day}", "Early on {day}", "One rainy {day}", "Late on {day}", "Every {day}"]
FILLER = ["It was a busy week.", "The weather was warm.", "Nobody expected the rush.", "Prices had just changed.",
          "The line was long.", "Everyone was in a good mood.", "A storm was coming.", "The shop opened late.",
          "Music played all afternoon.", "The town was preparing for a holiday."]


def _problem(rng: random.Random) -> tuple[str, str]:
    """One word problem with a worked answer; every slot is drawn independently, so two problems rarely agree."""
    name, other = rng.sample(NAMES, 2)
    thing, thing2 = rng.sample(THINGS, 2)
    place, person, day = rng.choice(PLACES), rng.choice(PEOPLE), rng.choice(DAYS)
    a, b, c, d = (rng.randint(2, 300) for _ in range(4))
    opener = rng.choice(OPENERS).format(day=day)
    kind = rng.randrange(4)
    if kind == 0:
        q = (f"{opener} {name} bought {a} {thing} at the {place}. {name} gave {b} {thing} to a {person} and then "
             f"found {c} more {thing} near {other}'s house. How many {thing} does {name} have now?")
        ans = (f"{name} starts with {a} {thing}. After giving {b} away, {name} has {a} - {b} = {a - b}. Finding {c} "
               f"more gives {a - b} + {c} = {a - b + c}. The answer is {a - b + c}.")
    elif kind == 1:
        q = (f"{name} packs {thing} into {a} boxes with {b} {thing} in each box, while {other} packs {thing2} into "
             f"{c} bags. If each bag holds {d} {thing2}, how many more items did {name} pack than {other}?")
        ans = (f"{name} packs {a} x {b} = {a * b} {thing}. {other} packs {c} x {d} = {c * d} {thing2}. The "
               f"difference is {a * b} - {c * d} = {a * b - c * d}. The answer is {a * b - c * d}.")
    elif kind == 2:
        q = (f"A {person} of {name} sells {thing} for ${a} each at the {place} and {thing2} for ${b} each. "
             f"{opener} the {person} sold {c} {thing} and {d} {thing2}. What was the total income that day?")
        ans = (f"The {thing} bring {c} x {a} = ${a * c}. The {thing2} bring {d} x {b} = ${b * d}. Together that is "
               f"{a * c} + {b * d} = ${a * c + b * d}. The answer is {a * c + b * d}.")
    else:
        q = (f"{name} and {other} share {a} {thing} from the {place}. {name} keeps {b} more than {other}, and "
             f"{other} later receives {c} {thing} from a {person}. How many {thing} does {other} have in the end?")
        half = (a - b) / 2
        ans = (f"If {other} gets x, then {name} gets x + {b}, so 2x + {b} = {a} and x = {half:g}. After receiving "
               f"{c} more, {other} has {half:g} + {c} = {half + c:g}. The answer is {half + c:g}.")
    extra = rng.sample(FILLER, rng.randint(0, 2))
    return " ".join([*extra[:1], q, *extra[1:]]), ans


def _edit(text: str, share: float, rng: random.Random) -> str:
    """Substitute, delete or insert words at random: max(1, round(share * words)) edits."""
    words = text.split(" ")
    vocab = THINGS + PLACES + NAMES + ["the", "a", "then", "also", "some", "each", "more"]
    for _ in range(max(1, round(share * len(words)))):
        op, i = rng.random(), rng.randrange(len(words))
        if op < 1 / 3:
            words[i] = rng.choice(vocab)
        elif op < 2 / 3 and len(words) > 1:
            del words[i]
        else:
            words.insert(i, rng.choice(vocab))
    return " ".join(words)


def _pool(rows: list[tuple[str, str, str]]) -> datasets.Dataset:
    """rows of (source, question, answer) -> a pool with ids <source>/syn/<k>."""
    counts: dict[str, int] = {}
    ids = []
    for source, _, _ in rows:
        ids.append(f"{source}/syn/{counts.get(source, 0)}")
        counts[source] = counts.get(source, 0) + 1
    return datasets.Dataset.from_dict({
        "id": ids, "source": [r[0] for r in rows], "task": ["reasoning"] * len(rows),
        "question": [r[1] for r in rows], "answer": [r[2] for r in rows], "license": ["mit"] * len(rows),
    })


def _bench(items: list[tuple[str, str]], name: str = "bench") -> datasets.Dataset:
    return datasets.Dataset.from_dict({"id": [f"{name}/test/{i}" for i in range(len(items))],
                                       "question": [q for q, _ in items], "answer": [a for _, a in items]})


# --------------------------------------------------------------------------------------------------------------------
# Normalisation and hashing
# --------------------------------------------------------------------------------------------------------------------


def test_normalisation_rule():
    assert normalize_text("Natalia sold 48/2 = <<48/2=24>>24 clips.") == "natalia sold 48 2 24 clips"
    assert normalize_text("  NATALIA\tsold\n48 / 2 =  24 clips!!") == "natalia sold 48 2 24 clips"
    assert normalize_text("Ｆｕｌｌ　ｗｉｄｔｈ　１２３ ﬁne") == "full width 123 fine"  # NFKC
    assert normalize_text("$\\frac{1}{2}x^2$, x_1") == "frac 1 2 x 2 x 1"
    assert normalize_text("小明有5个苹果。") == "小 明 有 5 个 苹 果"
    assert normalize_text("Café — naïve…") == "café naïve"
    assert normalize_text("?!") == ""
    assert normalize_text("ΟΔΟΣ İstanbul Ⅻ ½") == "οδοσ istanbul xii 1 2"
    texts = ["Natalia sold 48/2 = <<48/2=24>>24 clips.", None, "", "Ｆｕｌｌ　ｗｉｄｔｈ", "小明有5个苹果。", "a",
             "ΟΔΟΣ İstanbul Ⅻ ½"]
    assert normalize(texts).to_pylist() == [normalize_text(t or "") for t in texts]


def test_tokenize_matches_the_reference_rule_on_random_text():
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " \t\n" + "éÉßΩΣİ中文ｆ１—’…<<>>Ⅻǅﬀ½"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(300)]
    texts += [None, "<<1+1=2>>2", "ÀÉÎ ÕÜ"]
    tokens = tokenize(texts)
    assert len(tokens) == len(texts)
    for i, text in enumerate(texts):
        expected = [xxhash.xxh3_64_intdigest(w.encode()) for w in normalize_text(text or "").split()]
        assert tokens.hashes[tokens.offsets[i]:tokens.offsets[i + 1]].tolist() == expected, text


def _reference_window(hashes) -> int:
    from openmathmix.hygiene.ngrams import _P

    acc = 0
    for h in hashes:
        acc = (acc * int(_P) + int(h)) & M64
    return int(mix64(np.array([acc], dtype=np.uint64))[0])


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_window_hashes_equal_the_polynomial_reference(n):
    texts = ["a b c d e f", "", "x y", "a b c d", "c d e f g", "one", "p q r s t u v"]
    windows = Windows(tokenize(texts))
    for short in (False, True):
        hashes, text = windows.grams(n, short=short, min_words=2)
        expected, expected_text = [], []
        for i in range(len(texts)):
            w = windows.tokens.hashes[windows.tokens.offsets[i]:windows.tokens.offsets[i + 1]]
            if len(w) >= n:
                expected += [_reference_window(w[k:k + n]) for k in range(len(w) - n + 1)]
                expected_text += [i] * (len(w) - n + 1)
            elif short and len(w) >= 2:
                expected.append(_reference_window(w))
                expected_text.append(i)
        assert hashes.tolist() == expected and text.tolist() == expected_text
    # the same words hash the same wherever they stand: "c d e f" inside two texts
    four, text = windows.grams(4)
    assert four[text == 0][2] == four[text == 4][0]


def test_text_hashes_are_order_sensitive_and_equal_for_equal_words():
    keys = text_hashes(tokenize(["A b, c!", "a b c", "b a c", "a b c d", "", ""]))
    assert keys[0] == keys[1] and len({keys[1], keys[2], keys[3], keys[4]}) == 4 and keys[4] == keys[5]


# --------------------------------------------------------------------------------------------------------------------
# Keep rule, exact duplicates, LSH
# --------------------------------------------------------------------------------------------------------------------


def test_keep_order_sources_then_natural_ids():
    ids = ["b/x/10", "b/x/9", "a/x/2", "c/y/1", "c/x/1", "b/x/abc"]
    sources = ["b", "b", "a", "c", "c", "b"]
    rank = keep_order(ids, sources, priority=["c", "b"])
    assert [ids[i] for i in np.argsort(rank)] == ["c/x/1", "c/y/1", "b/x/9", "b/x/10", "b/x/abc", "a/x/2"]


def test_exact_duplicates_keep_the_first_in_keep_order():
    keys = np.array([5, 7, 5, 5, 7, 9], dtype=np.uint64)
    rank = np.array([3, 0, 1, 2, 5, 4])
    eligible = np.array([True, True, True, False, True, True])
    assert exact_duplicates(keys, rank, eligible).tolist() == [2, -1, -1, -1, 1, -1]


def test_lsh_candidates_agree_with_rensa_lsh():
    """Rows our banding puts in a shared bucket are exactly the rows rensa's own LSH flags, on the same digests;
    with the 16 low bits we store, a few more rows share a bucket (slots that differ but agree in 16 bits)."""
    import rensa

    rng = random.Random(5)
    rows = [_problem(rng) for _ in range(400)]
    rows += [(_edit(q, 0.08, rng), a) for q, a in rows[:150]]
    tokens = tokenize([t for qa in rows for t in qa])
    shingles, row = Windows(type(tokens)(tokens.hashes, tokens.offsets[0::2])).grams(2, short=True)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=len(rows)))])
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(shingles, offsets.astype(np.uint64), 64, 0)
    flags = np.array(rensa.RMinHashLSH(0.5, 64, 16).query_duplicate_flags_matrix_one_shot(matrix))
    full = np.array(matrix.to_rows(), dtype=np.uint32)
    stored = minhash_signatures(shingles, offsets, 64, 0)
    assert np.array_equal(stored, (full & 0xFFFF).astype(np.uint16))
    for signatures in (full, stored):
        ours = np.zeros(len(rows), dtype=bool)
        for band in range(16):
            a, b = bucket_pairs(band_keys(signatures[:, 4 * band:4 * band + 4]))
            assert (a < b).all()
            ours[a] = ours[b] = True
        if signatures is full:
            assert ours.sum() >= 300 and np.array_equal(ours, flags)
        else:
            assert (ours >= flags).all() and (ours & ~flags).sum() <= 0.01 * len(rows)


def test_rensa_minhash_estimates_jaccard_without_bias():
    """The property the threshold relies on: the share of equal signature values estimates the Jaccard index."""
    rng = np.random.default_rng(4)
    for size, shared in ((150, 100), (40, 30), (400, 120)):
        estimates = []
        for seed in range(60):
            common = rng.integers(0, 2**63, shared, dtype=np.uint64)
            a = np.concatenate([common, rng.integers(0, 2**63, size - shared, dtype=np.uint64)])
            b = np.concatenate([common, rng.integers(0, 2**63, size - shared, dtype=np.uint64)])
            sig = minhash_signatures(np.concatenate([a, b]), np.array([0, size, 2 * size]), 128, seed)
            estimates.append((sig[0] == sig[1]).mean())
        jaccard = shared / (2 * size - shared)
        assert abs(np.mean(estimates) - jaccard) < 0.015, (size, shared, np.mean(estimates), jaccard)


def test_near_duplicates_join_components_and_point_at_the_kept_row():
    base = np.arange(32, dtype=np.uint16).reshape(1, 32)
    sig = np.repeat(base, 5, axis=0)
    sig[1, :4] += 100  # 28/32 equal to row 0
    sig[2, 4:8] += 100  # 28/32 equal to row 0, 24/32 to row 1
    sig[3] = sig[3] + 1000  # unrelated
    sig[4] = sig[3]
    sig[4, :2] += 7  # 30/32 equal to row 3
    rank = np.array([4, 0, 1, 2, 3])  # row 1 is first in keep order
    dup_of, stats = near_duplicates(sig, rank, np.ones(5, bool), bands=8, rows_per_band=4, threshold=0.8)
    assert dup_of.tolist() == [1, -1, 1, -1, 3]
    assert stats["pairs_confirmed"] == 3
    excluded, _ = near_duplicates(sig, rank, np.array([True, False, True, True, True]), bands=8, rows_per_band=4,
                                  threshold=0.8)
    assert excluded.tolist() == [2, -1, -1, -1, 3]


# --------------------------------------------------------------------------------------------------------------------
# The step on planted data
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted():
    """4,000 distinct problems in sources s_a and s_b, plus 1,200 copies with 1-10 % of their words edited, each
    put in the other source than its original."""
    rng = random.Random(11)
    originals = [("s_a" if i % 2 else "s_b", *_problem(rng)) for i in range(4000)]
    twins = {}
    rows = list(originals)
    for k, i in enumerate(rng.sample(range(len(originals)), 1200)):
        source, q, a = originals[i]
        share = 0.10 if k < 400 else rng.uniform(0.01, 0.10)  # a third at the full 10 %
        rows.append(("s_b" if source == "s_a" else "s_a", _edit(q, share, rng), _edit(a, share, rng)))
        twins[len(rows) - 1] = i
    return _pool(rows), twins


def test_planted_near_duplicates_are_found(planted):
    pool, twins = planted
    kept, report = run_hygiene(pool, benchmarks={}, progress=False)
    assert len(kept) + report.rows_dropped == len(pool) == report.rows_in
    of = {r["id"]: r["of"] for r in report.dropped.to_pylist()}
    ids = list(pool["id"])
    found = 0
    for copy, orig in twins.items():
        a, b = ids[copy], ids[orig]
        found += of.get(a) == b or of.get(b) == a or (a in of and of.get(a) == of.get(b))
    assert found / len(twins) >= 0.95, found
    twin_ids = {ids[c] for c in twins} | {ids[o] for o in twins.values()}
    partner = {ids[c]: ids[o] for c, o in twins.items()} | {ids[o]: ids[c] for c, o in twins.items()}
    wrongly = [i for i, o in of.items() if partner.get(i) != o and not (i in twin_ids and o in twin_ids)]
    assert len(wrongly) <= 0.01 * 4000, wrongly[:10]
    assert report.near_pairs and set(report.near_pairs) <= {"s_a", "s_b"}
    assert sum(v for row in report.near_pairs.values() for v in row.values()) == report.counts.get(
        "near_duplicate", 0)


def test_every_row_is_accounted_for(planted):
    pool, twins = planted
    ids = list(pool["id"])
    alone = [i for i in range(100) if i not in twins.values()][:20]  # rows without a planted near duplicate
    # an original in s_b whose edited twin sits in s_a: the twin is kept (s_a first), the original is dropped
    lost = next(o for c, o in twins.items() if ids[o].startswith("s_b/") and ids[c].startswith("s_a/"))
    twin = next(c for c, o in twins.items() if o == lost)
    copies = pool.select([*alone, lost]).map(  # exact copies with ids after the originals' in natural order
        lambda r: {"id": r["id"].rsplit("/", 1)[0] + f"/{100000 + int(r['id'].rsplit('/', 1)[1])}"})
    both = datasets.concatenate_datasets([pool, copies])
    bench = _bench([(pool[alone[3]]["question"], pool[alone[3]]["answer"])])
    kept, report = run_hygiene(both, benchmarks={"bench": bench}, progress=False)
    report.check()
    dropped = report.dropped
    assert len(kept) + dropped.num_rows == len(both)
    assert sorted(list(kept["id"]) + dropped.column("id").to_pylist()) == sorted(both["id"])
    assert report.counts["exact_duplicate"] == 19  # 20 copies, one of them of the contaminated row
    assert report.counts["contaminated:bench"] == 2  # that row and its exact copy
    reasons = dict(zip(dropped.column("id").to_pylist(), dropped.column("reason").to_pylist()))
    assert reasons[ids[alone[3]]] == "contaminated:bench"
    first = ids[alone[0]]  # kept: same source, smaller id in natural order (100000 + k sorts after k as a number)
    assert reasons[first.rsplit("/", 1)[0] + f"/{100000 + int(first.rsplit('/', 1)[1])}"] == \
        f"exact_duplicate_of:{first}"
    # the exact copy of a row that is itself a near duplicate points at the kept row, as a near duplicate
    lost_copy = ids[lost].rsplit("/", 1)[0] + f"/{100000 + int(ids[lost].rsplit('/', 1)[1])}"
    assert reasons[ids[lost]] == reasons[lost_copy] == f"near_duplicate_of:{ids[twin]}"
    kept_ids = set(kept["id"])
    assert all(o in kept_ids for o in dropped.column("of").to_pylist() if not o.startswith("bench/"))
    for source, row in report.by_source.items():
        assert row["rows_in"] == sum(1 for s in both["source"] if s == source)


def test_planted_benchmark_questions_are_flagged():
    rng = random.Random(2)
    items = [_problem(rng) for _ in range(20)] + [("Compute $\\dbinom{9}{4}$.", "$\\boxed{126}$"),
                                                   ("Find the remainder when 2024 is divided by 7 today.", "1")]
    bench = _bench(items)
    distinct = [("s_a", *_problem(rng)) for _ in range(600)]
    q0, q1, q2, q3, q4 = (items[i][0] for i in range(5))
    planted = [
        ("s_a", q0, "We work it out step by step."),  # verbatim
        ("s_b", q1.upper(), "Some answer."),  # case
        ("s_b", "  ".join(q2.split(" ")).replace(". ", ".\n\t"), "Another answer."),  # whitespace
        ("s_a", q3.replace(".", "").replace("?", "!").replace(",", " ,"), "An answer."),  # punctuation
        ("s_a", "Restate the problem.", "The problem says: " + q4.lower()),  # quoted in the answer
        ("s_b", "compute \\dbinom{9}{4}", "126"),  # short item: equal after normalisation
        ("s_a", "Please find the remainder when 2024 is divided by 7 today, then add 3.", "4"),  # 9-word item inside
    ]
    pool = _pool(distinct + planted)
    _, report = run_hygiene(pool, benchmarks={"bench": bench}, progress=False,
                            settings=HygieneSettings(exact_dedup=False, near_dedup=False))
    of = {r["id"]: r["of"] for r in report.dropped.to_pylist()}
    planted_ids = list(pool["id"])[len(distinct):]
    assert sorted(of) == sorted(planted_ids)
    assert [of[i] for i in planted_ids] == [f"bench/test/{k}" for k in (0, 1, 2, 3, 4, 20, 21)]
    assert report.counts == {"contaminated:bench": 7}
    assert report.benchmark_matches == {"s_a": {"bench": 4}, "s_b": {"bench": 3}}
    only_questions = HygieneSettings(exact_dedup=False, near_dedup=False, pool_fields=("question",))
    _, report_q = run_hygiene(pool, benchmarks={"bench": bench}, settings=only_questions, progress=False)
    assert report_q.counts == {"contaminated:bench": 6}  # the row that quotes it in its answer is not searched


def test_contamination_mask_names_every_matching_benchmark():
    rng = random.Random(8)
    items = [_problem(rng) for _ in range(3)]
    index = build_index({"one": BenchmarkItems(["i0", "i1"], [items[0][0], items[1][0]], ["", ""]),
                         "two": BenchmarkItems(["j0"], [items[1][0]], [""])}, n=13, min_item_words=8)
    texts = tokenize([items[1][0], "x", items[0][0], "y", items[2][0], "z"])
    found = find_contamination(index, texts, np.array([0, 0, 1, 1, 2, 2]), 3, question_texts=np.array([0, 2, 4]))
    assert found.mask.tolist() == [3, 1, 0]
    assert [index.item_ids[i] if i >= 0 else None for i in found.item] == ["i1", "i0", None]


def test_switches_and_disabled_step(planted):
    pool, _ = planted
    off, report = run_hygiene(pool, settings=HygieneSettings(enabled=False), progress=False)
    assert off is pool and report.rows_kept == len(pool) and report.counts == {}
    assert "Hygiene was off" in report.to_markdown()
    report.check()
    _, exact_only = run_hygiene(pool, settings=HygieneSettings(near_dedup=False), progress=False)
    assert "near_duplicate" not in exact_only.counts and exact_only.stats["pairs_checked"] == 0


def test_report_is_json_and_markdown_and_deterministic(planted):
    pool, _ = planted
    bench = _bench([(pool[3]["question"], "")])
    _, first = run_hygiene(pool, benchmarks={"bench": bench}, progress=False)
    _, again = run_hygiene(pool, benchmarks={"bench": bench}, progress=False)
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(again.to_dict(), sort_keys=True)
    data = json.loads(json.dumps(first.to_dict()))
    assert data["scheme"]["library"] == "rensa" and data["scheme"]["num_perm"] == 128
    assert data["settings"]["ngram"] == 13 and data["benchmarks"]["bench"]["items"] == 1
    assert len(data["examples"]["near_duplicate"]) == 5
    md = first.to_markdown()
    assert "| source | rows in | contaminated | exact duplicates | near duplicates | kept |" in md
    assert f"| **total** | **{len(pool):,}** | **1** |" in md
    assert "| s_a | s_b |" in md or "| s_b | s_a |" in md


def test_bad_inputs_raise_clear_errors(planted):
    pool, _ = planted
    with pytest.raises(MissingColumnsError, match="task"):
        run_hygiene(pool.remove_columns("task"), progress=False)
    with pytest.raises(SchemaError, match="free of"):
        run_hygiene(pool, benchmarks={"a:b": _bench([("q", "a")])}, progress=False)
    with pytest.raises(MissingColumnsError, match="'question'"):
        run_hygiene(pool, benchmarks={"b": datasets.Dataset.from_dict({"problem": ["x"]})}, progress=False)
    with pytest.raises(ConfigError, match="bands x rows_per_band"):
        HygieneSettings(bands=64)
    with pytest.raises(ConfigError, match="min_item_words"):
        HygieneSettings(ngram=5, min_item_words=8)
    with pytest.raises(ValueError, match="benchmark_fields"):
        HygieneSettings(benchmark_fields=("solution",))


# --------------------------------------------------------------------------------------------------------------------
# Benchmarks registry
# --------------------------------------------------------------------------------------------------------------------


def test_benchmark_registry_and_fixtures():
    assert [b.name for b in list_benchmarks()] == ["gsm8k", "math", "math500"]
    sizes = {b.name: b.size for b in list_benchmarks()}
    assert sizes == {"gsm8k": 1319, "math": 5000, "math500": 500}
    for bench in list_benchmarks():
        ds = build_benchmark(bench.name, benchmark_fixture_files(bench.name))
        assert ds.column_names == ["id", "question", "answer"] and len(ds) >= 2
        assert all(i.startswith(f"{bench.name}/") for i in ds["id"]) and all(list(ds["question"]))
    math_dir = benchmark_fixture_files("math")[0].rsplit("/math/", 1)[0] + "/math"
    assert list(build_benchmark("math", math_dir)["id"]) == ["math/algebra/101/0", "math/algebra/102/0",
                                                      "math/geometry/7/0"]
    assert get_benchmark("gsm8k").repo == "openai/gsm8k"
    with pytest.raises(UnknownSourceError, match="gsm8k, math, math500"):
        get_benchmark("gsm9k")


def test_user_benchmark_files(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"Question {i} here", "completion": str(i)}) for i in range(3)))
    ds = build_benchmark_files("mine", path)
    assert list(ds["id"]) == ["mine/mine/0", "mine/mine/1", "mine/mine/2"] and list(ds["answer"]) == ["0", "1", "2"]
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"text": "no usable columns"}) + "\n")
    with pytest.raises(DataFileError, match="expects columns"):
        build_benchmark_files("other", other)
    assert list(build_benchmark_files("other", other, question="text", answer="text")["question"]) == [
        "no usable columns"]


# --------------------------------------------------------------------------------------------------------------------
# Rephrasing candidates
# --------------------------------------------------------------------------------------------------------------------


def test_rephrasing_candidates_match_brute_force():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(300, 16)).astype(np.float32)
    bench_a = rng.normal(size=(20, 16)).astype(np.float32)
    bench_b = rng.normal(size=(10, 16)).astype(np.float32)
    pool[5] = bench_a[3] * 2 + 0.01  # close to an item
    pool[9] = bench_b[7] - 0.02
    ids = [f"p{i}" for i in range(300)]
    out = rephrasing_candidates(pool, ids, {"a": (bench_a, [f"a{i}" for i in range(20)]),
                                            "b": (bench_b, [f"b{i}" for i in range(10)])},
                                threshold=0.9, block_rows=64)
    mean = pool.mean(axis=0)
    def unit(x):
        return (x - mean) / np.linalg.norm(x - mean, axis=1, keepdims=True)

    sims = unit(pool) @ unit(np.concatenate([bench_a, bench_b])).T
    expected = sorted(np.flatnonzero(sims.max(axis=1) >= 0.9), key=lambda r: -sims[r].max())
    assert [c["id"] for c in out["candidates"]] == [ids[r] for r in expected]
    assert {c["id"]: c["item"] for c in out["candidates"]}["p5"] == "a3"
    assert {c["id"]: c["item"] for c in out["candidates"]}["p9"] == "b7"
    assert out["counts"]["a"] + out["counts"]["b"] == len(expected)
    for c in out["candidates"]:
        assert c["cosine"] == pytest.approx(float(sims[int(c["id"][1:])].max()), rel=1e-5, abs=1e-4)
