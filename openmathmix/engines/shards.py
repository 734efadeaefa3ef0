"""Engine-neutral pieces of running a `Stage` over one shard of rows (pure: no files, no processes).

- `shard_bounds(n, shard_rows)`: ceil(n / shard_rows) contiguous shards cut like `Dataset.shard(contiguous=True)`
  (sizes differ by at most one row), the cut of the local runner, so shard i holds the same rows under every engine;
- `shard_order(stage, columns)`: the order a shard's rows are fed in. A stage may define
  `sort_key(batch) -> list[int]` (one key per row; the embedding stage returns token counts); rows then go through
  `process_batch` by descending key, ties in input order. Batches of similar rows pad less: on a mixed real pool,
  sorting the whole 8,192-row shard instead of each 256-row batch cut padded tokens from 21 % to under 2 %
  (bench/bench_embed.py --pool mixed);
- `run_shard(stage, columns, batch_size, device)`: `process_batch` over the shard in that order, outputs put back
  in input order and checked (every produced column, one value per row).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ..errors import OpenMathMixError

__all__ = ["run_shard", "shard_bounds", "shard_order"]


def shard_bounds(n_rows: int, shard_rows: int) -> list[tuple[int, int]]:
    """[start, end) of each of ceil(n_rows / shard_rows) contiguous shards (at least one), the first n_rows % shards
    of them one row longer, as `Dataset.shard(num_shards, i, contiguous=True)` cuts them."""
    if shard_rows < 1:
        raise OpenMathMixError(f"shard_rows must be positive, got {shard_rows}")
    n_shards = max(1, -(-n_rows // shard_rows))
    div, mod = divmod(n_rows, n_shards)
    starts = [div * i + min(i, mod) for i in range(n_shards + 1)]
    return list(itertools.pairwise(starts))


def shard_order(stage, columns: dict[str, list]) -> np.ndarray | None:
    """Row positions in the order `run_shard` feeds them: descending `stage.sort_key(columns)`, stable.

    None when the stage has no `sort_key` (rows keep their order)."""
    sort_key = getattr(stage, "sort_key", None)
    if sort_key is None:
        return None
    n = _num_rows(columns)
    keys = np.asarray(sort_key(columns), dtype=np.int64)
    if keys.shape != (n,):
        raise OpenMathMixError(f"stage {stage.name!r}: sort_key returned {keys.shape[0] if keys.ndim else 'a scalar'} "
                               f"keys for {n} rows; it must return one int per row")
    return np.argsort(-keys, kind="stable")


def run_shard(stage, columns: dict[str, list], *, batch_size: int, device: str) -> dict[str, list]:
    """The stage's produced columns for every row of `columns`, in input order.

    The stage must be set up on `device`. Counters the stage keeps (`stage.count`) are left for the caller to
    collect."""
    if batch_size < 1:
        raise OpenMathMixError(f"batch_size must be positive, got {batch_size}")
    n = _num_rows(columns)
    order = shard_order(stage, columns)
    out: dict[str, list] = {name: [None] * n for name in stage.produces}
    for start in range(0, n, batch_size):
        if order is None:
            rows: Sequence[int] = range(start, min(start + batch_size, n))
            batch = {name: col[start:start + batch_size] for name, col in columns.items()}
        else:
            rows = order[start:start + batch_size].tolist()
            batch = {name: [col[i] for i in rows] for name, col in columns.items()}
        produced = stage.process_batch(batch, device)
        _check_produced(stage, produced, len(rows))
        for name, values in produced.items():
            target = out[name]
            for i, value in zip(rows, values):
                target[i] = value
    return out


def _num_rows(columns: dict[str, list]) -> int:
    lengths = {len(col) for col in columns.values()}
    if len(lengths) > 1:
        raise OpenMathMixError(f"columns of one shard differ in length: {sorted(lengths)}")
    if not lengths:
        raise OpenMathMixError("a shard needs at least one input column (the stage's `requires`)")
    return lengths.pop()


def _check_produced(stage, produced: dict[str, list], n: int) -> None:
    if set(produced) != set(stage.produces):
        raise OpenMathMixError(f"stage {stage.name!r} returned columns {sorted(produced)}, but declares "
                               f"produces={list(stage.produces)}")
    wrong = {name: len(values) for name, values in produced.items() if len(values) != n}
    if wrong:
        raise OpenMathMixError(f"stage {stage.name!r} returned {wrong} values for a batch of {n} rows")
