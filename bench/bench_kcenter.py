"""Benchmark: our exact K-center Greedy against a google/active-learning style reference.

Default run (CPU): n=50,000, d=256, k=2,000 float32 Gaussian data, both starting from row 0. It checks that both
pick the same indices in the same order, then times ours alone at n=1,000,000, k=1,000 and prints ms per step.
The last line is

    RESULT bench=kcenter n=... d=... k=... seconds=<ours> ratio=<reference / ours> identical=True

The reference follows the structure of ``kcenter_greedy.py`` in google/active-learning, re-implemented here: keep an
(n, 1) column of min distances; at each step take the argmax, call ``sklearn.metrics.pairwise_distances(features,
features[[new]])``, and fold it in with ``np.minimum``.

GPU example (prints ms/step and the fraction of the memory-bandwidth floor n*d*bytes/bandwidth):

    python bench/bench_kcenter.py --device cuda --dtype bf16 --n 5000000 --d 256 --k 10000 --big-n 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openmathmix.select.kcenter import k_center_greedy, resolve_device, resolve_dtype

BYTES = {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}
H100_BANDWIDTH = 3.35e12  # bytes/s, HBM3 datasheet


def describe_step(n: int, d: int, dtype: str, step_ms: float, bandwidth: float, show_floor: bool) -> str:
    """ms/step, effective GB/s, and (optionally) the fraction of the n*d*bytes/bandwidth floor."""
    nbytes = n * d * BYTES[dtype]
    text = f"{step_ms:.3f} ms/step, {nbytes / step_ms / 1e6:.1f} GB/s effective"
    if show_floor:
        floor_ms = 1e3 * nbytes / bandwidth
        text += f"; floor {floor_ms:.3f} ms/step at {bandwidth:.3g} B/s = {floor_ms / step_ms:.1%} of floor"
    return text


def reference_kcenter(features: np.ndarray, start: int, k: int) -> np.ndarray:
    """google/active-learning style: one sklearn ``pairwise_distances`` call and one ``np.minimum`` per step."""
    from sklearn.metrics import pairwise_distances

    min_distances = pairwise_distances(features, features[[start]], metric="euclidean")
    picks = []
    for _ in range(k):
        new = int(np.argmax(min_distances))
        picks.append(new)
        dist = pairwise_distances(features, features[[new]], metric="euclidean")
        min_distances = np.minimum(min_distances, dist)
    return np.array(picks, dtype=np.int64)


def gaussian(n: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def warm_up(device: str, dtype: str) -> None:
    """Pays one-off costs (CUDA context, kernel loading) outside the timed runs."""
    k_center_greedy(gaussian(2048, 16, 0), 8, init=[0], device=device, dtype=dtype)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--k", type=int, default=2_000)
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    ap.add_argument("--dtype", default="float32", help="storage dtype for ours: float32, bf16, fp16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", choices=("auto", "on", "off"), default="auto",
                    help="run the sklearn reference (auto: only when n*k <= 2e8)")
    ap.add_argument("--big-n", type=int, default=1_000_000, help="rows of the ours-only scale run (0 skips it)")
    ap.add_argument("--big-k", type=int, default=1_000)
    ap.add_argument("--bandwidth", type=float, default=None,
                    help="memory bandwidth in bytes/s for the floor (default 3.35e12, H100 HBM3); the floor fraction "
                         "is printed for GPU runs, or on CPU when this is given")
    args = ap.parse_args(argv)

    device, dtype = resolve_device(args.device), resolve_dtype(args.dtype)
    show_floor = args.bandwidth is not None or device != "cpu"
    bandwidth = args.bandwidth or H100_BANDWIDTH
    warm_up(device, dtype)

    x = gaussian(args.n, args.d, args.seed)
    ours, seconds = timed(k_center_greedy, x, args.k, init=[0], device=device, dtype=dtype)
    step = describe_step(args.n, args.d, dtype, 1e3 * seconds / args.k, bandwidth, show_floor)
    print(f"ours      n={args.n} d={args.d} k={args.k} device={device} dtype={dtype}: {seconds:.2f} s ({step})")

    run_reference = args.reference == "on" or (args.reference == "auto" and args.n * args.k <= 2e8)
    ratio, identical = float("nan"), "NA"
    if run_reference:
        ref, ref_seconds = timed(reference_kcenter, x, 0, args.k)
        ratio = ref_seconds / seconds
        same = bool(np.array_equal(ref, ours))
        identical = str(same)
        overlap = len(set(ref.tolist()) & set(ours.tolist())) / args.k
        print(f"reference sklearn pairwise_distances + np.minimum: {ref_seconds:.2f} s "
              f"({1e3 * ref_seconds / args.k:.3f} ms/step); same order: {same}; set overlap {overlap:.4f}")
    del x

    if args.big_n:
        big = gaussian(args.big_n, args.d, args.seed + 1)
        _, big_seconds = timed(k_center_greedy, big, args.big_k, init=[0], device=device, dtype=dtype)
        step = describe_step(args.big_n, args.d, dtype, 1e3 * big_seconds / args.big_k, bandwidth, show_floor)
        print(f"ours      n={args.big_n} d={args.d} k={args.big_k} device={device} dtype={dtype}: "
              f"{big_seconds:.2f} s ({step})")

    print(f"RESULT bench=kcenter n={args.n} d={args.d} k={args.k} seconds={seconds:.3f} ratio={ratio:.2f} "
          f"identical={identical}")
    return 0 if identical in ("True", "NA") else 1


if __name__ == "__main__":
    sys.exit(main())
