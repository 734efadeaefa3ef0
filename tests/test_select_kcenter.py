"""K-center Greedy / QaDS core: equality with a brute-force reference, tie rule, pool rule, precision, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from openmathmix.errors import SelectionError
from openmathmix.select.kcenter import initial_pool, k_center_greedy, qads, rank_scope


def brute_force(x: np.ndarray, k: int, pool, quality=None) -> np.ndarray:
    """O(n * k^2) reference: recompute every min distance from scratch, Eq. 4 literally, first maximum wins.

    With an empty pool every distance is the same (+inf), so the first pick is decided by the quality alone.
    """
    x = np.asarray(x, dtype=np.float64)
    q = np.ones(len(x)) if quality is None else np.asarray(quality, dtype=np.float64)
    chosen = [int(i) for i in pool]
    picks = []
    for _ in range(k):
        if chosen:
            diff = x[:, None, :] - x[None, chosen, :]
            score = q * np.sqrt((diff**2).sum(-1).min(axis=1))
        else:
            score = q.copy()
        score[chosen] = -np.inf
        best = int(np.argmax(score))  # numpy returns the first maximum: lowest index wins
        picks.append(best)
        chosen.append(best)
    return np.array(picks, dtype=np.int64)


def gaussian(n=300, d=12, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def integer_grid(n=150, d=4, seed=0):
    """Small integer coordinates: exact in bf16/fp16, exact dot products, and many exactly equal distances."""
    return np.random.default_rng(seed).integers(0, 6, size=(n, d)).astype(np.float32)


BACKENDS = [
    pytest.param({"backend": "numpy"}, id="numpy"),
    pytest.param({"backend": "torch", "device": "cpu"}, id="torch"),
    pytest.param({"backend": "torch", "device": ["cpu", "cpu", "cpu"]}, id="torch-3-shards"),
]


@pytest.mark.parametrize("opts", BACKENDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kcenter_matches_brute_force(opts, seed):
    x = gaussian(seed=seed)
    pool = initial_pool(len(x), 5, seed)
    got = k_center_greedy(x, 40, init=5, seed=seed, **opts)
    np.testing.assert_array_equal(got, brute_force(x, 40, pool))


@pytest.mark.parametrize("opts", BACKENDS)
@pytest.mark.parametrize("seed", [0, 3])
def test_qads_matches_brute_force(opts, seed):
    x = gaussian(seed=seed)
    q = np.random.default_rng(seed + 10).uniform(1, 5, len(x))
    got = qads(x, q, 40, init=[7, 3, 250], **opts)
    np.testing.assert_array_equal(got, brute_force(x, 40, [7, 3, 250], q))


@pytest.mark.parametrize("opts", BACKENDS)
def test_ties_lowest_index_wins(opts):
    # Integer data: many rows share the exact same min distance, so the tie rule decides most picks.
    x = integer_grid()
    ref = brute_force(x, 60, [0])
    np.testing.assert_array_equal(k_center_greedy(x, 60, init=[0], **opts), ref)
    q = np.random.default_rng(1).integers(1, 4, len(x)).astype(float)
    np.testing.assert_array_equal(qads(x, q, 60, init=[0], **opts), brute_force(x, 60, [0], q))


def test_torch_argmax_returns_first_maximum():
    # The tie rule on the torch backend rests on this documented behaviour; check it on this build.
    values = torch.tensor([0.0, 2.0, 1.0, 2.0, 2.0])
    assert int(torch.argmax(values)) == 1
    values = torch.zeros(100_000)
    values[[70_000, 5, 99_999]] = 3.0
    assert int(torch.argmax(values)) == 5
    assert int(np.argmax(values.numpy())) == 5


@pytest.mark.parametrize("opts", BACKENDS)
def test_empty_pool_first_pick_is_highest_quality(opts):
    x = gaussian(n=50)
    q = np.full(50, 2.0)
    q[[17, 31]] = 4.5  # tie between 17 and 31: the lower index wins
    got = qads(x, q, 10, init=0, **opts)
    assert got[0] == 17
    np.testing.assert_array_equal(got, brute_force(x, 10, [], q))
    assert k_center_greedy(x, 5, init=None, **opts)[0] == 0


@pytest.mark.parametrize("opts", BACKENDS)
@pytest.mark.parametrize("value", [1.0, 3.0, 0.37, 5.0])
def test_qads_with_equal_quality_is_kcenter(opts, value):
    x = gaussian(n=400, seed=5)
    q = np.full(len(x), value)
    expected = k_center_greedy(x, 80, seed=4, init=10, **opts)
    np.testing.assert_array_equal(qads(x, q, 80, seed=4, init=10, **opts), expected)


def test_prefixes_are_smaller_budgets():
    x = gaussian(n=500, seed=7)
    q = np.random.default_rng(7).uniform(1, 5, len(x))
    full = qads(x, q, 100, init=10, seed=1)
    for k in (10, 40, 70):
        np.testing.assert_array_equal(qads(x, q, k, init=10, seed=1), full[:k])


def test_determinism_and_seed():
    x = gaussian(n=500, seed=8)
    a = k_center_greedy(x, 50, init=10, seed=123)
    np.testing.assert_array_equal(a, k_center_greedy(x, 50, init=10, seed=123))
    assert not np.array_equal(initial_pool(500, 10, 123), initial_pool(500, 10, 124))
    assert not np.array_equal(a, k_center_greedy(x, 50, init=10, seed=124))
    pool = initial_pool(500, 10, 123)
    assert len(set(pool.tolist())) == 10 and pool.min() >= 0 and pool.max() < 500


@pytest.mark.parametrize("chunk", [1, 7, 64, 299, 10_000])
def test_chunk_size_does_not_change_the_order(chunk):
    x = gaussian(n=300, seed=9)
    q = np.random.default_rng(9).uniform(1, 5, len(x))
    ref = qads(x, q, 60, init=4)
    np.testing.assert_array_equal(qads(x, q, 60, init=4, chunk_size=chunk), ref)
    np.testing.assert_array_equal(qads(x, q, 60, init=4, chunk_size=chunk, backend="torch"), ref)
    np.testing.assert_array_equal(qads(x, q, 60, init=4, chunk_size=chunk, backend="torch", shards=4), ref)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_reduced_precision_exact_on_integer_data(dtype):
    # Integer coordinates and dot products are exact in bf16/fp16 here, so the order (ties included) must match.
    x = integer_grid(n=200, d=4, seed=3)
    q = np.random.default_rng(3).integers(1, 6, len(x)).astype(float)
    np.testing.assert_array_equal(qads(x, q, 80, init=[0, 1], dtype=dtype), qads(x, q, 80, init=[0, 1]))


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_reduced_precision_matches_fp32_on_separated_clusters(dtype):
    rng = np.random.default_rng(11)
    centers = rng.standard_normal((25, 32)) * 10  # far apart
    labels = rng.integers(0, 25, 2000)
    labels[:25] = np.arange(25)  # every cluster is populated
    x = (centers[labels] + 0.05 * rng.standard_normal((2000, 32))).astype(np.float32)
    ref = k_center_greedy(x, 24, init=[0])
    got = k_center_greedy(x, 24, init=[0], dtype=dtype)
    # fp32 visits every other cluster exactly once; so must the reduced-precision run, in the same cluster order.
    np.testing.assert_array_equal(labels[got], labels[ref])
    assert sorted(labels[ref].tolist() + [labels[0]]) == list(range(25))


def test_include_init_and_full_budget():
    x = gaussian(n=60, seed=12)
    pool = initial_pool(60, 5, 0)
    with_pool = k_center_greedy(x, 55, init=5, seed=0, include_init=True)
    np.testing.assert_array_equal(with_pool[:5], pool)
    assert sorted(with_pool.tolist()) == list(range(60))  # budget n - |s0| with the pool: every row
    np.testing.assert_array_equal(with_pool[5:], k_center_greedy(x, 55, init=5, seed=0))
    assert len(k_center_greedy(x, 0, init=5)) == 0


def test_duplicate_rows_are_never_picked_twice():
    x = np.repeat(gaussian(n=10, seed=13), 4, axis=0)  # 40 rows, 10 distinct points
    for opts in ({"backend": "numpy"}, {"backend": "torch"}):
        order = k_center_greedy(x, 38, init=[0, 1], **opts)
        assert len(set(order.tolist())) == 38 and not {0, 1} & set(order.tolist())
        q = np.zeros(40)
        q[::3] = 2.0  # zero quality rows too
        order = qads(x, q, 38, init=[0, 1], **opts)
        assert len(set(order.tolist())) == 38


def test_torch_tensor_input_and_progress():
    x = gaussian(n=200, seed=14)
    calls = []
    got = k_center_greedy(torch.from_numpy(x), 50, init=3, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(got, k_center_greedy(x, 50, init=3))
    assert calls[-1] == (50, 50) and len(calls) == 50  # one call every max(1, k // 100) picks
    assert got.dtype == np.int64


@pytest.mark.parametrize(
    ("n", "init", "keep"),
    [(1, 2, 1), (2, 2, 1), (2, 2, 2), (3, 2, 3), (6, 2, 4), (6, 2, 5), (6, 2, 6), (12, 100, 7)],
)
def test_rank_scope_handles_scopes_smaller_than_the_pool(n, init, keep):
    x = gaussian(n=n, d=3, seed=n)
    q = np.random.default_rng(n).uniform(1, 5, n)
    order = rank_scope(x, q, keep, init_size=init, seed=0)
    assert len(order) == keep and len(set(order.tolist())) == keep
    m = min(init, n - 1)
    pool = initial_pool(n, m, 0)
    greedy = brute_force(x, n - m, pool, q)
    np.testing.assert_array_equal(order, np.concatenate([greedy, pool])[:keep])


def test_rank_scope_keeps_algorithm_1_when_possible():
    x = gaussian(n=100, seed=15)
    q = np.random.default_rng(15).uniform(1, 5, 100)
    np.testing.assert_array_equal(rank_scope(x, q, 60, init_size=10, seed=3), qads(x, q, 60, init=10, seed=3))


@pytest.mark.parametrize(
    ("emb", "message"),
    [
        (np.zeros(10), "2-D"),
        (np.zeros((2, 3, 4)), "2-D"),
        (np.zeros((0, 4)), "at least one row"),
        (np.where(np.eye(5, 3) > 0, np.nan, 0.0), "NaN or inf"),
        (np.full((5, 3), np.inf), "NaN or inf"),
    ],
)
def test_bad_embeddings(emb, message):
    for backend in ("numpy", "torch"):
        with pytest.raises(SelectionError, match=message):
            k_center_greedy(emb, 1, init=1, backend=backend)


def test_fp16_overflow_is_reported():
    x = np.full((4, 2), 1e6, dtype=np.float32)
    with pytest.raises(SelectionError, match="overflow"):
        k_center_greedy(x, 1, init=1, dtype="float16")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quality": np.ones(9)}, "quality has 9 values but the embeddings have 10 rows"),
        ({"quality": np.r_[np.ones(9), -1.0]}, "must be >= 0"),
        ({"quality": np.r_[np.ones(9), np.nan]}, "NaN or inf"),
        ({"quality": np.ones((10, 1))}, "1-D"),
        ({"k": 9, "init": 2}, "exceeds the 8 rows outside the initial pool"),
        ({"k": -1}, "k must be >= 0"),
        ({"init": [1, 1]}, "duplicates"),
        ({"init": [0, 10]}, r"\[0, 10\)"),
        ({"init": 11}, "more pool rows"),
        ({"dtype": "int8"}, "unsupported dtype"),
        ({"dtype": "bf16", "backend": "numpy"}, "numpy backend"),
        ({"backend": "jax"}, "backend must be"),
    ],
)
def test_bad_arguments(kwargs, message):
    x = gaussian(n=10, d=3)
    kwargs = {"k": 2, "init": 1, "quality": None} | kwargs
    k, quality = kwargs.pop("k"), kwargs.pop("quality")
    with pytest.raises(SelectionError, match=message):
        qads(x, quality, k, **kwargs)
