"""Selection strategies on synthetic embeddings: determinism per seed, nesting, what each order means."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from openmathmix.errors import SelectionError
from openmathmix.schema import QADS_RANK
from openmathmix.select.kcenter import rank_scope
from openmathmix.select.mixture import parse_preset, select_mixture
from openmathmix.select.strategies import STRATEGIES, get_strategy, rank


def clustered(seed: int = 0, sizes=(200, 50, 20, 10, 5, 5), d: int = 16):
    """Well-separated Gaussian clusters of very different sizes (random draws tend to miss the small ones)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(sizes), d)) * 20
    emb = np.concatenate([c + 0.5 * rng.standard_normal((n, d)) for c, n in zip(centers, sizes)])
    return emb.astype(np.float32)


def inputs(n: int = 60, seed: int = 1):
    rng = np.random.default_rng(seed)
    return {
        "embeddings": rng.standard_normal((n, 8)).astype(np.float32),
        "quality": rng.uniform(1, 5, n),
        "lengths": rng.integers(1, 400, n),
    }


def covering_radius(pool: np.ndarray, chosen: np.ndarray) -> float:
    """Naive reference: the largest distance from a pool row to its nearest chosen row (full distance matrix)."""
    dist = np.sqrt(((pool[:, None, :].astype(np.float64) - pool[chosen][None, :, :]) ** 2).sum(-1))
    return float(dist.min(axis=1).max())


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_is_deterministic_per_seed_and_nested(name):
    data = inputs()
    n = len(data["quality"])
    full = rank(name, n, n, **data, init_size=5, seed=3)
    assert sorted(full.tolist()) == list(range(n)) and full.dtype == np.int64  # a permutation of every row
    np.testing.assert_array_equal(rank(name, n, n, **data, init_size=5, seed=3), full)
    for keep in (0, 1, 6, 24, 42, n - 5, n):  # every head is the order's prefix: the 10/40/70 % subsets nest
        np.testing.assert_array_equal(rank(name, n, keep, **data, init_size=5, seed=3), full[:keep])
    other = rank(name, n, n, **data, init_size=5, seed=4)
    if get_strategy(name).seeded:
        assert not np.array_equal(other, full)
    else:
        np.testing.assert_array_equal(other, full)


def test_greedy_strategies_are_rank_scope():
    data = inputs()
    n = len(data["quality"])
    np.testing.assert_array_equal(
        rank("qads", n, 30, **data, init_size=4, seed=[0, 9]),
        rank_scope(data["embeddings"], data["quality"], 30, init_size=4, seed=[0, 9]),
    )
    np.testing.assert_array_equal(
        rank("kcenter", n, 30, embeddings=data["embeddings"], init_size=4, seed=[0, 9]),
        rank_scope(data["embeddings"], None, 30, init_size=4, seed=[0, 9]),
    )


def test_kcenter_covers_clustered_data_at_least_as_well_as_random():
    emb = clustered()
    n, keep = len(emb), 12
    kcenter = covering_radius(emb, rank("kcenter", n, keep, embeddings=emb, init_size=0, seed=0))
    randoms = [covering_radius(emb, rank("random", n, keep, seed=s)) for s in range(5)]
    assert all(kcenter <= r for r in randoms), (kcenter, randoms)
    assert kcenter < 5  # every cluster (in-cluster spread ~0.5 x sqrt(16)) holds a pick; centers lie ~20 x 5.7 apart


def test_score_returns_the_top_scores_with_a_stable_tie_rule():
    quality = np.array([2.0, 4.5, 3.0, 4.5, 1.0, 5.0, 3.0])
    order = rank("score", len(quality), 4, quality=quality)
    np.testing.assert_array_equal(order, [5, 1, 3, 2])  # ties (4.5, 3.0) go to the lower row position
    assert sorted(quality[order].tolist()) == sorted(quality.tolist())[-4:]
    data = inputs(200, seed=5)
    top = rank("score", 200, 20, quality=data["quality"])
    assert set(top.tolist()) == set(np.argsort(-data["quality"])[:20].tolist())


def test_length_puts_the_longest_answers_first():
    lengths = np.array([5, 80, 80, 3, 200])
    np.testing.assert_array_equal(rank("length", 5, 5, lengths=lengths), [4, 1, 2, 0, 3])


def test_random_is_a_seeded_permutation():
    np.testing.assert_array_equal(rank("random", 10, 4, seed=[0, 7]), np.random.default_rng([0, 7]).permutation(10)[:4])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rank("best", 3, 1), r"unknown strategy 'best'; valid strategies are \['qads'"),
        (lambda: rank("qads", 3, 1, embeddings=np.zeros((3, 2))), r"needs \['quality'\]"),
        (lambda: rank("length", 3, 4, lengths=[1, 2, 3]), r"keep must be an int in \[0, 3\]"),
        (lambda: rank("score", 3, 1, quality=[1.0, np.nan, 2.0]), "non-finite value.*row 1"),
        (lambda: rank("score", 3, 1, quality=[1.0, 2.0]), "3 values"),
        (lambda: rank("kcenter", 3, 1, embeddings=np.zeros((4, 2))), "4 rows, expected 3"),
    ],
)
def test_strategy_errors(call, message):
    with pytest.raises(SelectionError, match=message):
        call()


def test_select_mixture_with_each_strategy_records_it_and_needs_only_its_columns():
    rng = np.random.default_rng(0)
    n = 40
    ds = datasets.Dataset.from_dict({
        "id": [f"r{i}" for i in range(n)],
        "source": ["cot"] * 25 + ["alpaca"] * 15,
        "answer": ["y" * int(k) for k in rng.integers(1, 90, n)],
        "embedding": rng.standard_normal((n, 6)).astype(np.float32).tolist(),
        "quality_score": rng.uniform(1, 5, n).tolist(),
    })
    preset = parse_preset({"sources": {"cot": {"policy": "select", "ratio": 0.4}, "alpaca": "all"}, "init_size": 3})
    orders = {}
    for name in STRATEGIES:
        mixture, report = select_mixture(ds, preset, strategy=name, device="cpu")
        assert report.strategy == name and report.to_dict()["strategy"] == name
        assert [r["policy"] for r in report.rows] == [f"{name} (ratio 0.4)", "all"]
        assert len(mixture) == 10 + 15
        orders[name] = mixture["id"]
    assert len({tuple(o) for o in orders.values()}) == len(STRATEGIES)  # five different orders
    # score and length run without embeddings; length and random without quality scores either
    bare = ds.remove_columns(["embedding"])
    assert select_mixture(bare, preset, strategy="score")[0]["id"] == orders["score"]
    assert select_mixture(bare.remove_columns("quality_score"), preset, strategy="length")[0]["id"] == orders["length"]
    mixture, report = select_mixture(bare.remove_columns("quality_score"), preset, strategy="random")
    assert mixture["id"] == orders["random"] and report.rows[0]["mean_quality"] is None
    ranks = np.array(mixture[QADS_RANK])
    np.testing.assert_array_equal(ranks, np.r_[np.arange(10), np.arange(15)])
