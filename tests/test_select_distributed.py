"""K-center Greedy and QaDS over two gloo processes give the single-process order of `select.kcenter`, ties included.

The rows are small integers: every norm, dot product and distance is exact in float32 whatever the summation order,
so the orders must be identical (no tolerance), and exact ties (duplicate rows, rows at equal distances, equal
quality) are decided by the tie rule alone: the lowest global row index wins, across the two ranks' blocks too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch.multiprocessing as mp

from openmathmix.errors import SelectionError
from openmathmix.select.distributed import block_bounds, qads_distributed, rank_scope_distributed
from openmathmix.select.kcenter import k_center_greedy, qads, rank_scope

N, D = 41, 3  # odd: the two blocks differ in size (21 and 20 rows)


def planted_rows() -> tuple[np.ndarray, np.ndarray]:
    """Integer points in [-2, 2]^3 with duplicates inside and across the two blocks, and integer quality."""
    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, size=(N, D)).astype(np.float32)
    x[30] = x[5]  # duplicate across blocks (rank 1 copy of a rank 0 row)
    x[13] = x[12]  # duplicate inside rank 0
    x[40] = -x[5]  # mirror image: equal distance to the origin-centred rows
    q = rng.integers(0, 4, size=N).astype(np.float64)
    q[30] = q[5]
    return x, q


CASES = {  # name -> (quality?, k or keep, keyword arguments)
    "kcenter_empty_pool": (False, 35, {"init": 0}),
    "kcenter_random_pool": (False, 30, {"init": 5, "seed": 3}),
    "qads_empty_pool": (True, 35, {"init": 0}),
    "qads_pool_included": (True, 30, {"init": 4, "seed": 1, "include_init": True}),
    "qads_zero_quality": (True, 20, {"init": 2, "seed": 0}),
}


def single_process(name: str, backend: str) -> np.ndarray:
    x, q = planted_rows()
    with_quality, k, kwargs = CASES[name]
    quality = (np.zeros(N) if name == "qads_zero_quality" else q) if with_quality else None
    return qads(x, quality, k, backend=backend, device="cpu", **kwargs)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    """One gloo rank: run every case on this rank's block, save the orders."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        x, q = planted_rows()
        a, b = block_bounds(N, world)[rank]
        orders = {}
        for name, (with_quality, k, kwargs) in CASES.items():
            quality = (np.zeros(b - a) if name == "qads_zero_quality" else q[a:b]) if with_quality else None
            orders[name] = qads_distributed(x[a:b], quality, k, **kwargs)
        orders["rank_scope"] = rank_scope_distributed(x[a:b], q[a:b], N, init_size=6, seed=2)
        try:
            qads_distributed(x[a:b], q[a:b], N, init=3)
        except SelectionError as err:  # raised on every rank, no rank left waiting in a collective
            orders["error"] = np.array([str(err)])
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **orders)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_rank_orders(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    ranks = [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]
    for name in ranks[0]:
        assert np.array_equal(ranks[0][name], ranks[1][name]), name  # every rank returns the same order
    return ranks[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_two_gloo_ranks_give_the_single_process_order(two_rank_orders, name):
    got = two_rank_orders[name]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, single_process(name, "numpy"))
    np.testing.assert_array_equal(got, single_process(name, "torch"))


def test_rank_scope_and_errors_match(two_rank_orders):
    x, q = planted_rows()
    np.testing.assert_array_equal(two_rank_orders["rank_scope"], rank_scope(x, q, N, init_size=6, seed=2))
    assert sorted(two_rank_orders["rank_scope"].tolist()) == list(range(N))  # every row ranked once
    assert "budget k=41 exceeds the 38 rows outside the initial pool" in str(two_rank_orders["error"][0])


def exact_kcenter_ties(x: np.ndarray, k: int) -> tuple[list[int], int, int]:
    """Plain Python K-center with exact integer arithmetic (empty pool, first pick row 0): the order, the number of
    steps whose best score was shared by several rows, and how many of those ties spanned both blocks."""
    pts = [tuple(int(v) for v in row) for row in x]
    split = block_bounds(len(pts), 2)[1][0]
    best = [None] * len(pts)
    order, ties, across = [0], 0, 0
    for _ in range(k - 1):
        c = pts[order[-1]]
        for i, p in enumerate(pts):
            dist = Fraction(sum((a - b) ** 2 for a, b in zip(p, c)))
            best[i] = dist if best[i] is None else min(best[i], dist)
        top = max(best[i] for i in range(len(pts)) if i not in order)
        winners = [i for i in range(len(pts)) if i not in order and best[i] == top]
        ties += len(winners) > 1
        across += winners[0] < split <= winners[-1]
        order.append(winners[0])
    return order, ties, across


def test_ties_are_planted_and_broken_by_lowest_index(two_rank_orders):
    x, _ = planted_rows()
    order, ties, across = exact_kcenter_ties(x, 35)
    assert ties >= 20 and across >= 10  # the cases above exercise the tie rule, inside and across blocks
    np.testing.assert_array_equal(two_rank_orders["kcenter_empty_pool"], order)
    np.testing.assert_array_equal(k_center_greedy(x, 35, init=0), order)


def test_torchrun_entry_point(tmp_path):
    x, q = planted_rows()
    np.save(tmp_path / "emb.npy", x)
    np.save(tmp_path / "q.npy", q)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "openmathmix.select.distributed", str(tmp_path / "emb.npy"), "--quality", str(tmp_path / "q.npy"),
           "--keep", "30", "--init", "4", "--seed", "5", "--out", str(tmp_path / "order.npy")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "selected 30 of 41 rows over 2 ranks (gloo)" in run.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "order.npy"), rank_scope(x, q, 30, init_size=4, seed=5))


def test_block_bounds_cover_every_row_once():
    assert block_bounds(41, 2) == [(0, 21), (21, 41)]
    assert block_bounds(3, 4) == [(0, 1), (1, 2), (2, 3), (3, 3)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
