"""Exact K-center Greedy (Algorithm 1) and its quality-weighted form QaDS (Eq. 4).

Both are the same loop. Each step takes the row that maximises ``weight * min squared distance to the pool``, adds it
to the pool, and folds that row's distances into a running minimum. Plain K-center uses weight 1. QaDS uses
``(quality / max quality) ** 2``: for non-negative quality and distance, the argmax of ``q * d`` equals the argmax of
``q**2 * d**2``, so no square root is ever taken. Dividing by the maximum leaves the argmax unchanged, and it makes
a constant quality *exactly* the plain K-center weight of 1.

How the work is done
--------------------
* Distances use the GEMV form ``|x|^2 - 2 x.c + |c|^2``. The row norms are computed once, in float32, from the values
  as stored. Internally the loop keeps *half* squared distances (``|x|^2/2 - x.c + |c|^2/2``). Halving is exact in
  binary floating point, so this changes no comparison and saves one multiply per element. Values are clamped at 0.
* Each step reads the embedding matrix exactly once, in row chunks of ``chunk_size``. Memory is the matrix plus
  O(n) float32 vectors. No n x n or k x n matrix is ever built.
* Rows already in the pool get a minimum distance of ``-inf``, so they can never win the argmax again, even when
  two rows are duplicates.
* On torch the argmax, the order buffer and the next center stay on the device. The only host sync is the final
  copy of the order, plus whatever a progress callback does itself.
* With ``shards > 1`` (torch backend) the rows are split into contiguous blocks, one per device in ``device``. Each
  block takes its own argmax, and the winner is reduced on the first device. This gives exact data-parallel
  Gonzalez, with the same output as one block.

Tie rule
--------
Among rows with equal scores the lowest row index wins. ``numpy.argmax`` and ``torch.argmax`` (CPU and CUDA) both
return the first maximal element. Shards are contiguous and in index order, and the cross-shard reduction is itself
a first-occurrence argmax, so the rule holds for sharded runs as well.

The initial pool s0
-------------------
``init`` picks it:

* an int ``m``: ``m`` distinct rows drawn uniformly with ``numpy.random.default_rng(seed)`` (see
  :func:`initial_pool`). The paper's default is ``m = 100``.
* a sequence of row indices: used as given. ``seed`` then plays no part.
* ``0`` or ``None``: an empty pool. The first pick is then the row with the highest weight (the highest quality for
  QaDS, row 0 for plain K-center), since every distance to an empty pool is the same, +inf.

Algorithm 1 returns ``s \\ s0``, which is the default here (``include_init=False``). The result is the ``k`` greedy
picks in selection order, so ``k`` can be at most ``n - |s0|``. With ``include_init=True`` the pool rows come first,
in pool order, followed by the ``k`` picks. Then ``k = n - |s0|`` returns every row, which is how a budget equal to
``n`` is expressed.

Each prefix of the returned order is itself a greedy selection with a smaller budget. One run with the largest
budget therefore yields every nested subset (10 %, 40 %, 70 % ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import SelectionError

__all__ = [
    "DEFAULT_INIT_SIZE",
    "initial_pool",
    "k_center_greedy",
    "qads",
    "rank_scope",
    "resolve_device",
    "resolve_dtype",
]

DEFAULT_INIT_SIZE = 100  # |s0| in the paper (Section 3.1)
_NORM_CHUNK = 1 << 20  # rows per block when the torch backend computes the norms (bounds its float32 temporaries)
_CPU_CHUNK = 1 << 18  # rows per GEMV call on CPU: few BLAS calls per step, a 1 MiB distance buffer

ProgressCallback = Callable[[int, int], None]

_DTYPE_ALIASES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "float64": "float64",
    "fp64": "float64",
    "double": "float64",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


# --------------------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------------------


def k_center_greedy(
    emb: Any,
    k: int,
    *,
    init: int | Sequence[int] | np.ndarray | None = DEFAULT_INIT_SIZE,
    seed: int | Sequence[int] | None = 0,
    include_init: bool = False,
    chunk_size: int | None = None,
    dtype: str | Any | None = None,
    device: str | Any | Sequence[str] | None = None,
    shards: int = 1,
    backend: str = "auto",
    progress: bool | ProgressCallback | None = None,
) -> np.ndarray:
    """K-center Greedy (Algorithm 1): ``k`` rows of ``emb``, each the farthest from the rows picked before it.

    ``emb`` is an (n, d) array or tensor. The result is an int64 array of row indices in selection order. The module
    docstring covers ``init``, ``seed``, ``include_init`` and the tie rule. :func:`qads` documents the other
    arguments.
    """
    return qads(emb, None, k, **_forwarded(locals()))


def qads(
    emb: Any,
    quality: Any | None,
    k: int,
    *,
    init: int | Sequence[int] | np.ndarray | None = DEFAULT_INIT_SIZE,
    seed: int | Sequence[int] | None = 0,
    include_init: bool = False,
    chunk_size: int | None = None,
    dtype: str | Any | None = None,
    device: str | Any | Sequence[str] | None = None,
    shards: int = 1,
    backend: str = "auto",
    progress: bool | ProgressCallback | None = None,
) -> np.ndarray:
    """Quality-aware Diverse Selection (Eq. 4): each step picks ``argmax_i quality_i * min_{j in s} |x_i - x_j|``.

    This is the one loop behind both algorithms: ``quality=None`` is plain K-center Greedy (Algorithm 1). A
    constant quality gives exactly the same order as ``None``, because only the scale of the quality changes and
    the scale does not move the argmax. A row with quality 0 scores 0 under Eq. 4. Such rows get the smallest
    positive weight instead, so they are ordered among themselves by distance rather than by index.

    Arguments:
        emb: (n, d) float array (numpy, or a torch tensor on any device). Every value must be finite.
        k: number of greedy picks, not counting the pool; ``0 <= k <= n - |s0|``.
        quality: None for plain K-center, or n finite scores >= 0, e.g. the scorer's 1-5 ``quality_score``.
        init: the initial pool s0: an int m (m random rows), explicit indices, or 0/None (empty).
        seed: seeds the draw of s0 (any value ``numpy.random.default_rng`` accepts).
        include_init: False (Algorithm 1): return only the k picks. True: return s0 first, then the picks.
        chunk_size: rows per GEMV call. The default is 262,144 on CPU and all rows on GPU. It does not change the
            result, only the size of temporary buffers.
        dtype: storage dtype of the matrix: float32 (default), float64, bfloat16 or float16. Norms, distances and
            weights are always float32 (float64 when the storage is float64).
        device: "cpu", "cuda", "cuda:1", a list of devices (one shard each), or None (cuda when available).
        shards: number of contiguous row blocks (torch backend). With one device they all share it.
        backend: "numpy" (CPU, float32/float64 only), "torch", or "auto". Auto picks numpy on CPU with a float32 or
            float64 dtype and one shard, where its GEMV measured faster, and torch otherwise.
        progress: None/False, True (a tqdm bar), or ``callback(done, total)`` called about 100 times per run.

    Returns:
        int64 numpy array of row indices in selection order (length k, or |s0| + k with ``include_init``).

    Raises:
        SelectionError: the message names the bad input and how to fix it.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise SelectionError(f"k must be an int, got {type(k).__name__}")
    k = int(k)
    if k < 0:
        raise SelectionError(f"k must be >= 0, got {k}")
    storage = resolve_dtype(dtype)
    devices = _resolve_devices(device)
    if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
        raise SelectionError(f"shards must be a positive int, got {shards!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or int(chunk_size) < 1):
        raise SelectionError(f"chunk_size must be a positive int or None, got {chunk_size!r}")

    n, _d = _shape_of(emb)
    weights = None if quality is None else _quality_weights(quality, n)
    pool = initial_pool(n, init, seed)
    if k > n - len(pool):
        raise SelectionError(
            f"budget k={k} exceeds the {n - len(pool)} rows outside the initial pool (n={n}, |s0|={len(pool)}); "
            f"lower k, shrink init, or pass include_init=True with k={n - len(pool)} to rank every row"
        )
    if k == 0:
        return pool.copy() if include_init else np.empty(0, dtype=np.int64)

    use_numpy = _pick_backend(backend, devices, storage, shards)
    callback = _progress_callback(progress, k)
    if use_numpy:
        order = _run_numpy(emb, weights, pool, k, storage, chunk_size, callback)
    else:
        order = _run_torch(emb, weights, pool, k, storage, chunk_size, devices, shards, callback)
    if include_init:
        order = np.concatenate([pool, order])
    return order


def rank_scope(
    emb: Any,
    quality: Any | None,
    keep: int,
    *,
    init_size: int = DEFAULT_INIT_SIZE,
    seed: int | Sequence[int] | None = 0,
    **kwargs: Any,
) -> np.ndarray:
    """The first ``keep`` rows of one selection scope's ranking, for any ``keep`` in ``[0, n]``.

    The full ranking of a scope is the greedy order of every row outside the pool, followed by the pool rows in
    draw order. Whenever ``keep <= n - |s0|`` the kept rows are therefore exactly Algorithm 1's ``s \\ s0`` with
    budget ``keep``, and the pool fills the tail only when more rows are kept than the greedy part can supply (a
    keep-all scope, or a tiny one).

    Tiny scopes: the pool holds ``min(init_size, n - 1)`` rows, so at least one row is always picked greedily. A
    one-row scope has an empty pool and returns ``[0]``.

    ``quality=None`` ranks by plain K-center. ``kwargs`` go to :func:`qads` (dtype, device, chunk_size,
    backend, progress, shards).
    """
    n, _ = _shape_of(emb)
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or not 0 <= keep <= n:
        raise SelectionError(f"keep must be an int in [0, {n}], got {keep!r}")
    if isinstance(init_size, bool) or not isinstance(init_size, (int, np.integer)) or init_size < 0:
        raise SelectionError(f"init_size must be an int >= 0, got {init_size!r}")
    pool = initial_pool(n, min(int(init_size), n - 1), seed)
    picks = min(int(keep), n - len(pool))
    order = qads(emb, quality, picks, init=pool, include_init=False, **kwargs)
    if keep > picks:
        order = np.concatenate([order, pool[: keep - picks]])
    return order


def initial_pool(
    n: int, init: int | Sequence[int] | np.ndarray | None, seed: int | Sequence[int] | None = 0
) -> np.ndarray:
    """The initial pool s0 as int64 row indices, in draw order.

    An int ``m`` draws ``m`` distinct rows uniformly, without replacement, with ``numpy.random.default_rng(seed)``.
    The draw depends only on ``(n, m, seed)``, so the same seed always gives the same pool. A sequence is taken as
    explicit indices: they must be distinct and in range. ``0`` or ``None`` gives an empty pool.
    """
    if init is None:
        return np.empty(0, dtype=np.int64)
    if isinstance(init, (int, np.integer)) and not isinstance(init, bool):
        m = int(init)
        if m < 0:
            raise SelectionError(f"init must be >= 0 (the size of the initial pool s0), got {m}")
        if m > n:
            raise SelectionError(f"init={m} asks for more pool rows than the {n} available; use init <= {n}")
        if m == 0:
            return np.empty(0, dtype=np.int64)
        rng = np.random.default_rng(seed)
        return rng.choice(n, size=m, replace=False).astype(np.int64)
    try:
        pool = np.asarray(init)
    except (TypeError, ValueError) as err:
        raise SelectionError(f"init must be an int or a sequence of row indices: {err}") from None
    if pool.size == 0:
        return np.empty(0, dtype=np.int64)
    if pool.ndim != 1 or not np.issubdtype(pool.dtype, np.integer):
        raise SelectionError(f"init indices must be a 1-D sequence of ints, got shape {pool.shape} dtype {pool.dtype}")
    pool = pool.astype(np.int64)
    if pool.min() < 0 or pool.max() >= n:
        raise SelectionError(f"init indices must lie in [0, {n}); got min {pool.min()}, max {pool.max()}")
    if len(np.unique(pool)) != len(pool):
        raise SelectionError("init indices contain duplicates; pass each pool row once")
    return pool


def resolve_dtype(dtype: str | Any | None) -> str:
    """Normalise a dtype spelling ("bf16", torch.bfloat16, np.float32, ...) to a canonical name."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, str):
        name = dtype
    elif str(dtype).startswith("torch."):
        name = str(dtype).removeprefix("torch.")
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    canonical = _DTYPE_ALIASES.get(name.lower())
    if canonical is None:
        raise SelectionError(f"unsupported dtype {dtype!r}; use one of float32, float64, bfloat16, float16")
    return canonical


def resolve_device(device: str | Any | None = None) -> str:
    """``None`` means "cuda" when torch sees a GPU, else "cpu". Any other value passes through as a string."""
    if device is not None:
        return str(device)
    try:
        import torch
    except ImportError:  # numpy-only installs still select on CPU
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------------------------------


def _forwarded(arguments: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`k_center_greedy`, to pass on to :func:`qads`."""
    return {key: value for key, value in arguments.items() if key not in ("emb", "k")}


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")


def _shape_of(emb: Any) -> tuple[int, int]:
    if not _is_torch(emb) and not isinstance(emb, np.ndarray):
        try:
            emb = np.asarray(emb, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise SelectionError(f"embeddings must be a 2-D numeric array (n rows x d dims): {err}") from None
    shape = tuple(emb.shape)
    if len(shape) != 2:
        raise SelectionError(
            f"embeddings must be 2-D (n rows x d dims), got shape {shape}; "
            "reshape, or stack a list of vectors with numpy.stack"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise SelectionError(f"embeddings must have at least one row and one dimension, got shape {shape}")
    return int(shape[0]), int(shape[1])


def _raise_non_finite(bad_rows: list[int], count: int, storage: str) -> None:
    """Every row norm must be finite: that catches NaN, inf, and values whose square overflows."""
    raise SelectionError(
        f"embeddings contain NaN or inf, or values that overflow {storage} when squared, in {count} row(s) "
        f"(first: {bad_rows}); recompute those embeddings, drop the rows, or use a wider dtype"
    )


def _quality_weights(quality: Any, n: int) -> np.ndarray:
    q = quality.detach().cpu().numpy() if _is_torch(quality) else np.asarray(quality)
    if q.ndim != 1:
        raise SelectionError(f"quality must be 1-D (one score per row), got shape {q.shape}")
    if len(q) != n:
        raise SelectionError(
            f"quality has {len(q)} values but the embeddings have {n} rows; pass one quality score per row"
        )
    if not np.issubdtype(q.dtype, np.number) or np.issubdtype(q.dtype, np.complexfloating):
        raise SelectionError(f"quality must be real numbers, got dtype {q.dtype}")
    q = q.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(q))
    if len(bad):
        raise SelectionError(
            f"quality has NaN or inf at {len(bad)} row(s) (first: {bad[:5].tolist()}); score those rows first"
        )
    neg = np.flatnonzero(q < 0)
    if len(neg):
        raise SelectionError(
            f"quality must be >= 0 (Eq. 4 multiplies it with a distance); {len(neg)} negative value(s), "
            f"first at row {neg[0]} = {q[neg[0]]}; shift or clip the scores"
        )
    top = q.max()
    if top == 0:
        return np.ones(n, dtype=np.float32)  # every score is 0: Eq. 4 ties everywhere, i.e. plain K-center
    w = np.square(q / top)
    return np.maximum(w, np.finfo(np.float32).tiny).astype(np.float32)


def _resolve_devices(device: Any) -> list[str]:
    if isinstance(device, (list, tuple)):
        if not device:
            raise SelectionError("device list is empty; pass e.g. ['cuda:0', 'cuda:1'] or a single device")
        devs = [str(x) for x in device]
    else:
        devs = [resolve_device(device)]
    return devs


def _pick_backend(backend: str, devices: list[str], storage: str, shards: int) -> bool:
    """True for the numpy backend."""
    if backend not in ("auto", "numpy", "torch"):
        raise SelectionError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    cpu_only = all(dev.startswith("cpu") for dev in devices)
    numpy_ok = cpu_only and storage in ("float32", "float64") and shards == 1 and len(devices) == 1
    if backend == "numpy" and not numpy_ok:
        raise SelectionError(
            f"the numpy backend runs on one CPU shard with float32/float64 storage "
            f"(got device={devices}, dtype={storage}, shards={shards}); use backend='torch'"
        )
    if backend == "auto":
        return numpy_ok
    return backend == "numpy"


def _progress_callback(progress: bool | ProgressCallback | None, total: int) -> ProgressCallback | None:
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="k-center", unit="pick")

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)
        if done >= _total:
            bar.close()

    return update


def _report_every(k: int) -> int:
    return max(1, k // 100)


# --------------------------------------------------------------------------------------------------------------------
# numpy backend (CPU)
# --------------------------------------------------------------------------------------------------------------------


def _run_numpy(
    emb: Any,
    weights: np.ndarray | None,
    pool: np.ndarray,
    k: int,
    storage: str,
    chunk_size: int | None,
    callback: ProgressCallback | None,
) -> np.ndarray:
    acc = np.float64 if storage == "float64" else np.float32
    x = emb.detach().cpu().numpy() if _is_torch(emb) else np.asarray(emb)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise SelectionError(f"embeddings must be real numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=storage)
    n = x.shape[0]
    chunk = min(n, int(chunk_size) if chunk_size else _CPU_CHUNK)
    bounds = [(a, min(a + chunk, n)) for a in range(0, n, chunk)]

    half_norm = np.empty(n, dtype=acc)  # |x|^2 / 2, once
    for a, b in bounds:
        block = x[a:b].astype(acc, copy=False)
        np.einsum("ij,ij->i", block, block, out=half_norm[a:b])
    half_norm *= 0.5
    finite = np.isfinite(half_norm)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        _raise_non_finite(bad[:5].tolist(), len(bad), storage)

    min_half = np.full(n, np.inf, dtype=acc)  # min over the pool of |x - c|^2 / 2
    buf = np.empty(chunk, dtype=acc)
    score = None if weights is None else np.empty(n, dtype=acc)
    w = None if weights is None else weights.astype(acc)

    def absorb(i: int) -> None:
        center = x[i]
        center_half = half_norm[i]
        for a, b in bounds:
            out = buf[: b - a]
            np.dot(x[a:b], center, out=out)
            np.subtract(half_norm[a:b], out, out=out)
            out += center_half
            np.maximum(out, 0.0, out=out)
            np.minimum(min_half[a:b], out, out=min_half[a:b])
        min_half[i] = -np.inf

    def pick() -> int:
        if w is None:
            return int(np.argmax(min_half))
        np.multiply(min_half, w, out=score)
        return int(np.argmax(score))

    for i in pool:
        absorb(int(i))
    order = np.empty(k, dtype=np.int64)
    every = _report_every(k)
    for step in range(k):
        if step == 0 and len(pool) == 0:
            nxt = 0 if w is None else int(np.argmax(w))  # empty pool: all distances are +inf, weight decides
        else:
            nxt = pick()
        order[step] = nxt
        if step + 1 < k:
            absorb(nxt)
        if callback is not None and ((step + 1) % every == 0 or step + 1 == k):
            callback(step + 1, k)
    return order


# --------------------------------------------------------------------------------------------------------------------
# torch backend (CPU or GPU, optional reduced precision, optional shards)
# --------------------------------------------------------------------------------------------------------------------


class _Shard:
    """A contiguous block of rows on one device, with its own norms, running minimum and weights."""

    def __init__(self, torch: Any, rows: Any, offset: int, device: str, storage: Any, acc: Any, weights, chunk):
        self.torch = torch
        self.offset = offset
        self.x = rows.to(device=device, dtype=storage).contiguous()
        self.n = self.x.shape[0]
        self.device = self.x.device
        self.chunk = max(min(self.n, chunk), 1)  # a shard without rows (a rank of a small pool) still works
        self.bounds = [(a, min(a + self.chunk, self.n)) for a in range(0, self.n, self.chunk)]
        self.half_norm = torch.empty(self.n, dtype=acc, device=self.device)
        step = min(self.chunk, _NORM_CHUNK)  # the norms need a float32 copy of each block: keep blocks modest
        for a in range(0, self.n, step):
            b = min(a + step, self.n)
            blk = self.x[a:b].to(acc)
            torch.sum(blk * blk, dim=1, out=self.half_norm[a:b])
        self.half_norm.mul_(0.5)
        finite = torch.isfinite(self.half_norm)
        if not bool(finite.all()):  # one host sync, at set-up
            bad = torch.nonzero(~finite).flatten()
            _raise_non_finite([offset + int(i) for i in bad[:5].cpu()], len(bad), str(storage).removeprefix("torch."))
        self.min_half = torch.full((self.n,), float("inf"), dtype=acc, device=self.device)
        self.fused = storage == acc  # addmv works when storage and accumulation dtypes agree
        self.mm_out_dtype = not self.fused and self._probe_mm_out_dtype(acc)
        self.acc = acc
        self.buf = torch.empty(self.chunk, dtype=acc, device=self.device)
        self.w = None if weights is None else torch.as_tensor(weights).to(device=self.device, dtype=acc)
        self.score = None if weights is None else torch.empty(self.n, dtype=acc, device=self.device)

    def _probe_mm_out_dtype(self, acc: Any) -> bool:
        """Whether ``torch.mm(..., out_dtype=float32)`` runs here: a bf16/fp16 GEMV with a float32 result.

        Recent CUDA builds have it; CPU builds do not. Without it, the dot products are rounded to the storage
        dtype before the float32 subtraction. Accumulation inside the GEMV is float32 either way.
        """
        if self.device.type != "cuda":
            return False
        try:
            self.torch.mm(self.x[:1], self.x[:1].T, out_dtype=acc)
        except (RuntimeError, TypeError, NotImplementedError):
            return False
        return True

    def absorb(self, center: Any, center_half: Any) -> None:
        """Fold the distances to ``center`` (a d-vector, storage dtype) into the running minimum."""
        torch = self.torch
        center = center.to(self.device, non_blocking=True)
        center_half = center_half.to(self.device, non_blocking=True)
        for a, b in self.bounds:
            out = self.buf[: b - a]
            if self.fused:
                torch.addmv(self.half_norm[a:b], self.x[a:b], center, alpha=-1, out=out)
            elif self.mm_out_dtype:
                dots = torch.mm(self.x[a:b], center.unsqueeze(1), out_dtype=self.acc).squeeze(1)
                torch.sub(self.half_norm[a:b], dots, out=out)
            else:
                torch.sub(self.half_norm[a:b], torch.mv(self.x[a:b], center), out=out)
            out.add_(center_half).clamp_(min=0)
            torch.minimum(self.min_half[a:b], out, out=self.min_half[a:b])

    def exclude(self, local: Any) -> None:
        self.min_half.index_fill_(0, local, float("-inf"))

    def scores(self) -> Any:
        """The per-row selection scores: the running minimum, times the weights for QaDS."""
        return self.min_half if self.w is None else self.torch.mul(self.min_half, self.w, out=self.score)

    def argmax(self) -> Any:
        """Local index of this shard's best row as a one-element device tensor (first maximum wins)."""
        return self.torch.argmax(self.scores()).reshape(1)


def _run_torch(
    emb: Any,
    weights: np.ndarray | None,
    pool: np.ndarray,
    k: int,
    storage_name: str,
    chunk_size: int | None,
    devices: list[str],
    shards: int,
    callback: ProgressCallback | None,
) -> np.ndarray:
    import torch

    storage = getattr(torch, storage_name)
    acc = torch.float64 if storage_name == "float64" else torch.float32
    src = emb if _is_torch(emb) else torch.from_numpy(np.ascontiguousarray(emb))
    if src.dtype.is_complex:
        raise SelectionError(f"embeddings must be real numbers, got dtype {src.dtype}")
    n = src.shape[0]
    main = torch.device(devices[0])
    n_shards = max(shards, len(devices))
    on_gpu = any(torch.device(dev).type != "cpu" for dev in devices)
    chunk = int(chunk_size) if chunk_size else (n if on_gpu else _CPU_CHUNK)
    edges = np.linspace(0, n, n_shards + 1).round().astype(int)
    parts = []
    for s in range(n_shards):
        a, b = int(edges[s]), int(edges[s + 1])
        if b > a:
            w_part = None if weights is None else weights[a:b]
            parts.append(_Shard(torch, src[a:b], a, devices[s % len(devices)], storage, acc, w_part, chunk))
    starts = np.array([p.offset for p in parts])

    def locate(i: int) -> tuple[_Shard, int]:
        s = int(np.searchsorted(starts, i, side="right") - 1)
        return parts[s], i - parts[s].offset

    def absorb_all(center: Any, center_half: Any) -> None:
        for p in parts:
            p.absorb(center, center_half)

    # The pool: indices are known on the host, so no device round trip is involved.
    for i in pool:
        p, local = locate(int(i))
        idx = torch.tensor([local], device=p.device)
        center, center_half = p.x.index_select(0, idx)[0], p.half_norm.index_select(0, idx)
        p.exclude(idx)
        absorb_all(center, center_half)

    order = torch.empty(k, dtype=torch.int64, device=main)
    offsets = torch.tensor([p.offset for p in parts], dtype=torch.int64, device=main)
    every = _report_every(k)
    for step in range(k):
        if step == 0 and len(pool) == 0:
            first = 0 if weights is None else int(np.argmax(weights))  # empty pool: weight decides
            p, local = locate(first)
            local_t = torch.tensor([local], device=p.device)
            order[0] = first
            center, center_half = p.x.index_select(0, local_t)[0], p.half_norm.index_select(0, local_t)
            p.exclude(local_t)
        elif len(parts) == 1:
            p = parts[0]
            local_t = p.argmax()
            order[step : step + 1].copy_(local_t)
            center, center_half = p.x.index_select(0, local_t)[0], p.half_norm.index_select(0, local_t)
            p.exclude(local_t)
        else:
            center, center_half = _reduce_shards(torch, parts, offsets, order, step, main)
        if step + 1 < k:
            absorb_all(center, center_half)
        if callback is not None and ((step + 1) % every == 0 or step + 1 == k):
            callback(step + 1, k)
    return order.cpu().numpy()


def _reduce_shards(torch: Any, parts: list[_Shard], offsets: Any, order: Any, step: int, main: Any):
    """Exact cross-shard argmax: first maximal value wins, and shards are in row order, so the lowest index wins."""
    vals, locals_, rows, halves = [], [], [], []
    for p in parts:
        vals_p = p.scores()
        local = torch.argmax(vals_p).reshape(1)
        vals.append(vals_p.index_select(0, local).to(main, non_blocking=True))
        locals_.append(local.to(main, non_blocking=True))
        rows.append(p.x.index_select(0, local).to(main, non_blocking=True))
        halves.append(p.half_norm.index_select(0, local).to(main, non_blocking=True))
    win = torch.argmax(torch.cat(vals)).reshape(1)
    global_idx = torch.cat(locals_).index_select(0, win) + offsets.index_select(0, win)
    order[step : step + 1].copy_(global_idx)
    for s, p in enumerate(parts):  # exclude the winner in its shard without a host sync
        hit = (win == s).to(p.device, non_blocking=True)
        local = locals_[s].to(p.device, non_blocking=True)
        current = p.min_half.index_select(0, local)
        p.min_half.index_copy_(0, local, torch.where(hit, torch.full_like(current, float("-inf")), current))
    return torch.cat(rows).index_select(0, win)[0], torch.cat(halves).index_select(0, win)
