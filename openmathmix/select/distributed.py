"""Exact K-center Greedy and QaDS with the rows sharded over processes (`torch.distributed`: gloo on CPUs, NCCL on
GPUs), one process per GPU or machine, launched with `torchrun`:

    torchrun --nproc-per-node 8 -m openmathmix.select.distributed emb.npy --quality q.npy --k 700000 --out order.npy

Each rank holds one contiguous block of rows, blocks in rank order (rank 0 has the first rows). A step is the loop
of `select.kcenter`, split:

1. every rank takes its best row (first maximum of ``weight * min half squared distance``) and packs
   (score, global index, half norm, the row itself) into one small vector;
2. one `all_gather` of those vectors; every rank picks the same winner: the highest score, ties to the lowest
   global index, which is the first maximal candidate since blocks are in index order and each rank's candidate is
   its own first maximum (the tie rule of `select.kcenter`);
3. the winner's row came with the gather, so no broadcast is needed: every rank folds its distances to it into its
   running minimum, and the rank that owns it marks it taken.

One collective per step, no host synchronisation on GPUs, and O(world x d) bytes moved per step (8 GPUs at d = 256:
8 KiB). Per-rank work is one GEMV over its block. The initial pool s0 is drawn exactly as `kcenter.initial_pool`
draws it and reaches every rank in one `all_reduce`. The arithmetic per row is the single-process torch arithmetic
(norms, ``|x|^2/2 - x.c + |c|^2/2`` clamped at 0, float32 accumulation, the same QaDS weights), so the order equals
`kcenter.qads` / `kcenter.k_center_greedy` whenever the per-row dot products round alike; with values whose
products and sums are exact (the tests use small integers) it is identical, ties included.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SelectionError
from .kcenter import DEFAULT_INIT_SIZE, _Shard, initial_pool, resolve_dtype

__all__ = ["block_bounds", "k_center_greedy_distributed", "qads_distributed", "rank_scope_distributed"]

_CPU_CHUNK = 1 << 18  # rows per GEMV call on CPU, as in select.kcenter
_SPLIT_INT = 1 << 24  # global indices travel as two float32-exact halves: hi * 2**24 + lo
_SPLIT = float(_SPLIT_INT)


def block_bounds(n: int, world: int) -> list[tuple[int, int]]:
    """[start, end) of each rank's contiguous block: sizes differ by at most one row, the longer blocks first."""
    div, mod = divmod(n, world)
    starts = [div * r + min(r, mod) for r in range(world + 1)]
    return list(itertools.pairwise(starts))


def k_center_greedy_distributed(local_emb: Any, k: int, **kwargs: Any) -> np.ndarray:
    """K-center Greedy over the rows of every rank (this rank passes its block); see :func:`qads_distributed`."""
    return qads_distributed(local_emb, None, k, **kwargs)


def qads_distributed(
    local_emb: Any,
    local_quality: Any | None,
    k: int,
    *,
    init: int | Sequence[int] | np.ndarray | None = DEFAULT_INIT_SIZE,
    seed: int | Sequence[int] | None = 0,
    include_init: bool = False,
    dtype: str | Any | None = None,
    device: str | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    group: Any = None,
) -> np.ndarray:
    """QaDS (Eq. 4) over the rows of every rank of `group`; call it on every rank with that rank's block.

    local_emb: this rank's (n_r, d) rows, which follow the previous rank's rows (`block_bounds` gives the cut).
    local_quality: this rank's n_r scores (None on every rank: plain K-center Greedy).
    init, seed, include_init, dtype: as in `kcenter.qads` (global row indices; the pool is drawn from the total n).
    device: where this rank computes (default: "cuda:<LOCAL_RANK>" with NCCL, else "cpu").
    Returns the global row indices in selection order, the same array on every rank.
    """
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        raise SelectionError("torch.distributed is not initialised; launch with torchrun and call "
                             "torch.distributed.init_process_group first (the CLI of this module does both)")
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    nccl = dist.get_backend(group) == "nccl"
    device = device or (f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if nccl else "cpu")
    storage_name = resolve_dtype(dtype)
    storage = getattr(torch, storage_name)
    acc = torch.float64 if storage_name == "float64" else torch.float32

    problem, x, q = _local_inputs(torch, local_emb, local_quality, storage)
    problems = [None] * world
    dist.all_gather_object(problems, (problem, None if x is None else tuple(x.shape), local_quality is None),
                           group=group)
    _raise_shared(problems, k)
    n_total = sum(shape[0] for _, shape, _ in problems)
    offset = sum(shape[0] for _, shape, _ in problems[:rank])
    d = problems[0][1][1]

    x = x.to(device=device, dtype=storage).contiguous()
    block = _Block(torch, x, offset, acc, chunk_size or (x.shape[0] if x.device.type == "cuda" else _CPU_CHUNK))
    if not bool(torch.isfinite(block.half_norm).all()):
        bad = torch.nonzero(~torch.isfinite(block.half_norm)).flatten()[:5].cpu().tolist()
        problem = f"rank {rank}: embeddings are NaN/inf or overflow {storage_name} when squared at rows " \
                  f"{[offset + i for i in bad]}"
    else:
        problem = None
    problems = [None] * world
    dist.all_gather_object(problems, problem, group=group)
    if any(problems):
        raise SelectionError("; ".join(p for p in problems if p) + "; recompute or drop those rows")

    if q is not None:
        top = torch.tensor([q.max() if len(q) else 0.0], dtype=torch.float64, device=device)
        dist.all_reduce(top, op=dist.ReduceOp.MAX, group=group)
        block.set_weights(_weights(q, float(top.item())))

    pool = initial_pool(n_total, init, seed)
    if k > n_total - len(pool):
        raise SelectionError(f"budget k={k} exceeds the {n_total - len(pool)} rows outside the initial pool "
                             f"(n={n_total}, |s0|={len(pool)}); lower k or shrink init")
    if k == 0:
        return pool.copy() if include_init else np.empty(0, dtype=np.int64)
    _absorb_pool(torch, dist, group, block, pool, d, acc)

    order = torch.empty(k, dtype=torch.int64, device=x.device)
    cand = torch.empty(d + 4, dtype=acc, device=x.device)
    gathered = torch.empty(world, d + 4, dtype=acc, device=x.device)
    slots = list(gathered.unbind(0))
    bar = _bar(progress and rank == 0, k)
    for step in range(k):
        first = step == 0 and len(pool) == 0  # empty pool: every distance is +inf, the weight decides
        local = block.candidate(cand, by_weight=first)
        dist.all_gather(slots, cand, group=group)
        win = torch.argmax(gathered[:, 0]).reshape(1)  # first maximum: lowest rank, so lowest global index
        row = gathered.index_select(0, win)[0]
        order[step:step + 1] = (row[1] * _SPLIT + row[2]).to(torch.int64)
        block.exclude_if(local, win == rank)
        if step + 1 < k:
            block.absorb(row[4:].to(storage), row[3:4])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    result = order.cpu().numpy()
    return np.concatenate([pool, result]) if include_init else result


def rank_scope_distributed(local_emb: Any, local_quality: Any | None, keep: int, *,
                           init_size: int = DEFAULT_INIT_SIZE, seed: int | Sequence[int] | None = 0,
                           group: Any = None, **kwargs: Any) -> np.ndarray:
    """`kcenter.rank_scope` over sharded rows: the first `keep` rows of a scope's ranking (greedy picks, then the
    pool rows in draw order when `keep` exceeds the greedy part)."""
    import torch.distributed as dist

    counts = [None] * dist.get_world_size(group)
    dist.all_gather_object(counts, _rows(local_emb), group=group)
    n = sum(counts)
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or not 0 <= keep <= n:
        raise SelectionError(f"keep must be an int in [0, {n}], got {keep!r}")
    pool = initial_pool(n, min(int(init_size), n - 1), seed)
    picks = min(int(keep), n - len(pool))
    order = qads_distributed(local_emb, local_quality, picks, init=pool, include_init=False, group=group, **kwargs)
    return np.concatenate([order, pool[: keep - picks]]) if keep > picks else order


# ----- per-rank state ------------------------------------------------------------------------------------------------


class _Block(_Shard):
    """This rank's rows: `select.kcenter`'s shard (half norms, running minimum, the same blocked GEMV update), plus
    the candidate exchange of the distributed greedy loop and QaDS weights set after the initial pool."""

    def __init__(self, torch, x, offset: int, acc, chunk: int):
        super().__init__(torch, x, offset, x.device, x.dtype, acc, None, chunk)

    def set_weights(self, w: np.ndarray) -> None:
        self.w = self.torch.as_tensor(w).to(device=self.x.device, dtype=self.acc)
        self.score = self.torch.empty(self.n, dtype=self.acc, device=self.x.device)

    def candidate(self, cand, *, by_weight: bool):
        """Pack (score, index hi, index lo, half norm, row) of this rank's first best row into `cand`; returns the
        local index as a one-element tensor. A rank without rows offers -inf."""
        torch = self.torch
        if self.n == 0:
            cand.zero_()
            cand[0] = float("-inf")
            return torch.zeros(1, dtype=torch.int64, device=cand.device)
        if by_weight:
            scores = self.w if self.w is not None else torch.ones(self.n, dtype=self.acc, device=cand.device)
        else:
            scores = self.min_half if self.w is None else torch.mul(self.min_half, self.w, out=self.score)
        local = torch.argmax(scores).reshape(1)
        index = local + self.offset  # int64; split before the cast, float32 holds integers exactly only to 2**24
        cand[0:1] = scores.index_select(0, local)
        cand[1:2] = torch.div(index, _SPLIT_INT, rounding_mode="floor").to(self.acc)
        cand[2:3] = torch.remainder(index, _SPLIT_INT).to(self.acc)
        cand[3:4] = self.half_norm.index_select(0, local)
        cand[4:] = self.x.index_select(0, local)[0].to(self.acc)
        return local

    def exclude_if(self, local, hit) -> None:
        """Mark row `local` taken when `hit` (a one-element bool tensor) holds; no host synchronisation."""
        if self.n == 0:
            return
        current = self.min_half.index_select(0, local)
        self.min_half.index_copy_(0, local, self.torch.where(hit, self.torch.full_like(current, float("-inf")),
                                                             current))


def _absorb_pool(torch, dist, group, block: _Block, pool: np.ndarray, d: int, acc) -> None:
    """Every rank needs every pool row: each fills the rows it owns, one all_reduce sums them (x + 0 is exact)."""
    if len(pool) == 0:
        return
    rows = torch.zeros(len(pool), d + 1, dtype=acc, device=block.x.device)
    mine = np.flatnonzero((pool >= block.offset) & (pool < block.offset + block.n))
    if len(mine):
        local = torch.as_tensor(pool[mine] - block.offset, device=block.x.device)
        at = torch.as_tensor(mine, device=block.x.device)
        rows[at, 0] = block.half_norm.index_select(0, local)
        rows[at, 1:] = block.x.index_select(0, local).to(acc)
        block.min_half.index_fill_(0, local, float("-inf"))
    dist.all_reduce(rows, group=group)
    for i in range(len(pool)):
        block.absorb(rows[i, 1:].to(block.x.dtype), rows[i, 0:1])


# ----- validation ----------------------------------------------------------------------------------------------------


def _rows(emb: Any) -> int:
    return int(emb.shape[0]) if hasattr(emb, "shape") else len(emb)


def _local_inputs(torch, emb: Any, quality: Any | None, storage) -> tuple[str | None, Any, np.ndarray | None]:
    """(problem or None, rows as a tensor, quality as float64) for this rank; problems are shared before raising so
    that no rank is left waiting in a collective."""
    try:
        x = emb if isinstance(emb, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(emb))
    except (TypeError, ValueError) as err:
        return f"embeddings are not a numeric array ({err})", None, None
    if x.ndim != 2 or x.is_complex() or x.dtype == torch.bool:
        return f"embeddings must be a real 2-D array (rows x dims), got shape {tuple(x.shape)}", None, None
    if quality is None:
        return None, x, None
    q = quality.detach().cpu().numpy() if isinstance(quality, torch.Tensor) else np.asarray(quality)
    if q.ndim != 1 or len(q) != x.shape[0]:
        return f"quality has shape {q.shape} for {x.shape[0]} rows; pass one score per row", x, None
    if not np.issubdtype(q.dtype, np.number) or np.issubdtype(q.dtype, np.complexfloating):
        return f"quality must be real numbers, got dtype {q.dtype}", x, None
    q = q.astype(np.float64)
    if not np.isfinite(q).all() or (q < 0).any():
        bad = np.flatnonzero(~np.isfinite(q) | (q < 0))
        problem = f"quality must be finite and >= 0 (Eq. 4); {len(bad)} bad value(s), first at local row {bad[0]}"
        return problem, x, None
    return None, x, q


def _raise_shared(problems: list, k: int) -> None:
    messages = [f"rank {r}: {p}" for r, (p, _, _) in enumerate(problems) if p]
    if messages:
        raise SelectionError("; ".join(messages))
    dims = {shape[1] for _, shape, _ in problems}
    if len(dims) > 1:
        raise SelectionError(f"ranks hold embeddings of different widths {sorted(dims)}; every block needs the same d")
    if len({no_quality for _, _, no_quality in problems}) > 1:
        raise SelectionError("some ranks passed quality scores and others None; pass them on every rank or on none")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise SelectionError(f"k must be an int >= 0, got {k!r}")
    if sum(shape[0] for _, shape, _ in problems) == 0:
        raise SelectionError("no rank holds any row")


def _weights(q: np.ndarray, top: float) -> np.ndarray:
    """The QaDS weights of `select.kcenter`: (q / max q)^2 in float32, at least the smallest normal float32; all
    ones when every score is 0."""
    if top == 0:
        return np.ones(len(q), dtype=np.float32)
    return np.maximum(np.square(q / top), np.finfo(np.float32).tiny).astype(np.float32)


def _bar(show: bool, total: int):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="k-center (distributed)", unit="pick", mininterval=1.0)


# ----- torchrun entry point ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`torchrun ... -m openmathmix.select.distributed EMB.npy [--quality Q.npy] (--k K | --keep N) --out O.npy`."""
    import torch
    import torch.distributed as dist

    p = argparse.ArgumentParser(prog="python -m openmathmix.select.distributed", description=main.__doc__)
    p.add_argument("embeddings", help=".npy file of the (n, d) embeddings; each rank memory-maps its block")
    p.add_argument("--quality", default=None, help=".npy of n scores >= 0 (QaDS); omit for plain K-center")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--k", type=int, help="greedy picks after the initial pool (kcenter.qads)")
    budget.add_argument("--keep", type=int, help="rows of the scope's ranking to keep (kcenter.rank_scope)")
    p.add_argument("--init", type=int, default=DEFAULT_INIT_SIZE, help="|s0|, random initial pool rows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--include-init", action="store_true", help="with --k: return the pool rows first")
    p.add_argument("--dtype", default="float32", help="storage dtype: float32, bfloat16, float16, float64")
    p.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto", help="auto: NCCL with CUDA")
    p.add_argument("--out", required=True, help="where rank 0 writes the int64 order (.npy)")
    args = p.parse_args(argv)

    backend = args.backend if args.backend != "auto" else ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        emb = np.load(args.embeddings, mmap_mode="r")
        if emb.ndim != 2:
            raise SelectionError(f"{args.embeddings}: expected an (n, d) array, got shape {emb.shape}")
        a, b = block_bounds(emb.shape[0], world)[rank]
        quality = None if args.quality is None else np.load(args.quality, mmap_mode="r")[a:b]
        common = {"dtype": args.dtype, "progress": True}
        start = time.perf_counter()
        if args.keep is not None:
            order = rank_scope_distributed(np.asarray(emb[a:b]), quality, args.keep, init_size=args.init,
                                           seed=args.seed, **common)
        else:
            order = qads_distributed(np.asarray(emb[a:b]), quality, args.k, init=args.init, seed=args.seed,
                                     include_init=args.include_init, **common)
        seconds = time.perf_counter() - start  # the order came back to the host: the device work is finished
        if rank == 0:
            out = Path(args.out)
            tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}.npy")
            np.save(tmp, order)
            os.replace(tmp, out)
            print(f"selected {len(order)} of {emb.shape[0]} rows over {world} ranks ({backend}) in {seconds:.2f} s "
                  f"({1e3 * seconds / max(len(order), 1):.3f} ms/pick, set-up included) -> {out}")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
