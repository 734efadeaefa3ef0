"""Compare selection strategies at equal size on one scored pool: `evaluate(pool, ...) -> evaluation dict`.

For every strategy and seed (:class:`EvaluateSettings`) the subset is picked as `select` would pick it:

* scope ``source``: each source is ordered by the strategy on its own (seed ``[seed, crc32(source)]``, as in
  `select`) and cut to ``ceil(budget * rows_of_source)``. Every strategy then has the same rows per source, so the
  comparison is about *which* rows, not how many of each source.
* scope ``pool``: the whole pool is ordered at once (seed ``[seed]``) and cut to ``ceil(budget * rows)``.

Each run records the training-free measures (:mod:`.metrics`) and, with ``train=True``, fine-tunes the proxy model
on the subset and scores the benchmarks (:mod:`.proxy`). The base model is scored once as the reference. Runs are
cached by content (pool fingerprint, strategy, seed, settings, model, benchmark items), so an interrupted
evaluation resumes at the first run it had not finished. The result is plain JSON data: ``runs`` (one row per
strategy and seed), ``summary`` (mean and spread over seeds per strategy) and ``verdict`` (which strategy has the
best mean log-likelihood, and whether its lead exceeds the spread between seeds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SelectionError
from ..select.ratios import prefix_count
from ..select.strategies import get_strategy, rank
from ..settings import EvaluateSettings
from .inputs import Pool
from .metrics import coverage, describe, mean_and_spread, near_duplicates
from .proxy import Benchmark

__all__ = ["FORMAT", "evaluate", "pick_subset"]

FORMAT = "openmathmix-evaluation"
FORMAT_VERSION = 1
SCOPES = ("source", "pool")
ACCURACY = ("auto", "on", "off")
DEFINITIONS = {
    "covering_radius": "max over pool rows of the Euclidean distance to the nearest subset row (embedding space)",
    "mean_distance": "mean over pool rows of the distance to the nearest subset row",
    "near_duplicates": "pairs of distinct subset rows with embedding cosine similarity above the threshold; "
                       "pair_share = pairs / (k (k - 1) / 2), row_share = rows with at least one such partner / k",
    "answer_chars": "answer length in Unicode characters",
    "loglik": "mean over benchmark items of the mean log-probability per token of the reference solution given "
              "the question (higher is better)",
    "accuracy": "greedy-decoded answers verified against the reference final answer with math_verify",
}


def pick_subset(pool: Pool, strategy: str, seed: int, settings: EvaluateSettings, *,
                device: str | None = None) -> np.ndarray:
    """Row positions of the subset ``strategy`` picks from ``pool`` at ``settings.budget`` (see the module doc)."""
    greedy = {"device": device, "progress": False}
    inputs = {"embeddings": pool.embeddings, "quality": pool.quality, "lengths": pool.lengths}
    if settings.scope == "pool":
        keep = prefix_count(len(pool), settings.budget)
        return rank(strategy, len(pool), keep, **inputs, init_size=settings.init_size, seed=[seed], **greedy)
    parts = []
    for name in pool.counts():
        where = np.flatnonzero(pool.source == name)
        keep = prefix_count(len(where), settings.budget)
        local = {k: v[where] for k, v in inputs.items()}
        order = rank(strategy, len(where), keep, **local, init_size=settings.init_size,
                     seed=[seed, zlib.crc32(name.encode("utf-8"))], **greedy)
        parts.append(where[order])
    return np.concatenate(parts).astype(np.int64)


def _check(settings: EvaluateSettings, train: bool, benchmarks: Sequence[Benchmark]) -> None:
    if not 0 < settings.budget <= 1:
        raise SelectionError(f"budget must lie in (0, 1], got {settings.budget}")
    for name in settings.strategies:
        get_strategy(name)
    if len(set(settings.strategies)) != len(settings.strategies) or not settings.strategies:
        raise SelectionError(f"strategies must be distinct and not empty, got {list(settings.strategies)}")
    if len(set(settings.seeds)) < 2 or len(set(settings.seeds)) != len(settings.seeds):
        raise SelectionError(f"give at least two distinct seeds (every mean needs a spread), got {list(settings.seeds)}")
    if settings.scope not in SCOPES:
        raise SelectionError(f"scope must be one of {list(SCOPES)}, got {settings.scope!r}")
    if settings.accuracy not in ACCURACY:
        raise SelectionError(f"accuracy must be one of {list(ACCURACY)}, got {settings.accuracy!r}")
    if train and not benchmarks:
        raise SelectionError("training needs at least one benchmark to score the fine-tuned models on "
                             "(a file such as GSM8K's test_use.jsonl, or a Hub id such as openai/gsm8k:main)")
    if not 0 <= settings.warmup_ratio < 1:
        raise SelectionError(f"warmup_ratio must lie in [0, 1), got {settings.warmup_ratio}")
    if train and settings.epochs <= 0 and settings.max_steps is None:
        raise SelectionError(f"epochs must be > 0 (or set max_steps), got {settings.epochs}")


def _bench_key(bench: Benchmark) -> str:
    digest = hashlib.sha256()
    for part in (*bench.questions, *bench.solutions, *bench.finals):
        digest.update(part.encode("utf-8") + b"\0")
    return digest.hexdigest()


class _RunCache:
    """One JSON file per finished run, keyed by its content; written atomically (temp file + rename)."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def _path(self, key: dict[str, Any]) -> Path | None:
        if self.folder is None:
            return None
        from ..compat import content_key

        return self.folder / f"run-{content_key(key)}.json"

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # a damaged entry is recomputed (and overwritten)
        return stored.get("run") if stored.get("key") == key else None

    def put(self, key: dict[str, Any], run: dict[str, Any]) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps({"key": key, "run": run}), encoding="utf-8")
        os.replace(tmp, path)


def evaluate(
    pool: Pool,
    *,
    settings: EvaluateSettings | None = None,
    benchmarks: Sequence[Benchmark] = (),
    train: bool = False,
    device: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Compare ``settings.strategies`` over ``settings.seeds`` on ``pool``; return the evaluation as plain data.

    ``cache_dir`` keeps finished runs (default ``<openmathmix cache>/evaluate``; ``""`` keeps none).
    """
    from ..select.kcenter import resolve_device

    settings = settings or EvaluateSettings()
    _check(settings, train, benchmarks)
    device = resolve_device(device)
    accuracy_on = train and (settings.accuracy == "on" or (settings.accuracy == "auto" and device.startswith("cuda")))
    spec = None
    if train:
        from ..models import load_model, resolve

        spec = resolve(settings.model)
    if cache_dir is None:
        from ..stages.base import DEFAULT_CACHE

        cache_dir = DEFAULT_CACHE / "evaluate"
    cache = _RunCache(Path(cache_dir) if cache_dir else None)
    shared_key = {
        "format": FORMAT_VERSION, "pool": pool.key, "settings": _selection_settings(settings),
        "train": _train_settings(settings, accuracy_on) if train else None,
        "model": spec.key() if spec is not None else None,
        "benchmarks": [_bench_key(b) for b in benchmarks] if train else [],
    }

    jobs = [(s, seed) for s in settings.strategies for seed in settings.seeds]
    runs, reused, proxy = [], 0, None
    bar = _progress(len(jobs) + (1 if train else 0), progress)
    base = None
    if train:
        base_key = {**shared_key, "run": "base"}
        base = cache.get(base_key)
        if base is None:
            base = _score_base(spec, benchmarks, settings, device, accuracy_on)
            cache.put(base_key, base)
        else:
            reused += 1
        bar.update(1)
    for strategy, seed in jobs:
        bar.set_postfix_str(f"{strategy} seed {seed}")
        key = {**shared_key, "run": [strategy, seed]}
        run = cache.get(key)
        if run is None:
            if train and proxy is None:
                proxy = load_model(spec, head="causal_lm", device=device, dtype="float32")
            run = _one_run(pool, strategy, seed, settings, device, proxy, benchmarks, accuracy_on, train)
            cache.put(key, run)
        else:
            reused += 1
        runs.append(run)
        bar.update(1)
    bar.close()

    summary = _summary(runs, settings.strategies, [b.name for b in benchmarks] if train else [])
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pool": {"origin": Path(pool.origin).name, "rows": len(pool), "sources": pool.counts(),
                 "embedding_dim": int(pool.embeddings.shape[1])},
        "settings": {**dataclasses.asdict(settings), "strategies": list(settings.strategies),
                     "seeds": list(settings.seeds)},
        "device": device,
        "trained": train,
        "accuracy_measured": accuracy_on,
        "model": None if spec is None else {"name": spec.name, "revision": spec.revision},
        "benchmarks": [{"name": b.name, "origin": b.origin, "items": len(b)} for b in benchmarks] if train else [],
        "subset_rows": runs[0]["rows"] if runs else 0,
        "base_model": base,
        "definitions": DEFINITIONS,
        "runs": runs,
        "summary": summary,
        "verdict": _verdict(summary, [b.name for b in benchmarks] if train else []),
        "runs_reused": reused,
    }


def _selection_settings(settings: EvaluateSettings) -> dict[str, Any]:
    return {k: getattr(settings, k) for k in ("budget", "scope", "init_size", "near_duplicate_cosine")}


def _train_settings(settings: EvaluateSettings, accuracy_on: bool) -> dict[str, Any]:
    keys = ("epochs", "max_steps", "batch_size", "grad_accum", "learning_rate", "warmup_ratio", "max_length", "lora",
            "lora_r", "lora_alpha", "lora_dropout", "dtype", "max_eval_tokens", "max_new_tokens")
    from ..models import dtype_key

    out = {k: getattr(settings, k) for k in keys}
    out["dtype"] = dtype_key(settings.dtype)
    out["accuracy"] = accuracy_on
    return out


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="evaluate", unit="run", disable=not enabled)


def _score_model(model, tokenizer, benchmarks, settings, device, accuracy_on) -> dict[str, Any]:
    from .proxy import accuracy, loglik

    out = {}
    for bench in benchmarks:
        values, truncated = loglik(model, tokenizer, bench, settings=settings, device=device)
        entry = {"loglik": float(values.mean()), "loglik_items": len(values), "loglik_items_truncated": truncated}
        if accuracy_on:
            entry |= accuracy(model, tokenizer, bench, settings=settings, device=device)
        out[bench.name] = entry
    return out


def _score_base(spec, benchmarks, settings, device, accuracy_on) -> dict[str, Any]:
    from ..models import load_model

    model, tokenizer = load_model(spec, head="causal_lm", device=device, dtype=settings.dtype)
    return {"benchmarks": _score_model(model, tokenizer, benchmarks, settings, device, accuracy_on)}


def _one_run(pool, strategy, seed, settings, device, proxy, benchmarks, accuracy_on, train) -> dict[str, Any]:
    """One strategy and seed: the subset, its measures, and (``train``) the fine-tuned proxy's benchmark scores.

    ``proxy`` is ``(float32 base model, tokenizer)`` when training, else None.
    """
    rows = pick_subset(pool, strategy, seed, settings, device=device)
    chosen_source = pool.source[rows]
    ids = pool.dataset.select(rows)["id"] if "id" in pool.dataset.column_names else rows.tolist()
    run: dict[str, Any] = {
        "strategy": strategy,
        "seed": int(seed),
        "rows": len(rows),
        "subset_sha256": hashlib.sha256("\n".join(map(str, sorted(ids))).encode("utf-8")).hexdigest(),
        **coverage(pool.embeddings, rows, block=settings.distance_block),
        "covering_radius_per_source": {
            name: coverage(pool.embeddings[pool.source == name],
                           np.flatnonzero(np.isin(np.flatnonzero(pool.source == name), rows)),
                           block=settings.distance_block)["covering_radius"]
            for name in pool.counts() if (chosen_source == name).any()
        },
        "quality": describe(pool.quality[rows]),
        "answer_chars": describe(pool.lengths[rows]),
        "near_duplicates": near_duplicates(pool.embeddings[rows], threshold=settings.near_duplicate_cosine,
                                           block=settings.distance_block),
        "composition": {name: int((chosen_source == name).sum()) for name in pool.counts()},
    }
    if train:
        from .proxy import fine_tune

        base, tokenizer = proxy
        subset = pool.dataset.select(rows).select_columns(["question", "answer"]).to_dict()
        start = time.perf_counter()
        model, info = fine_tune(base, tokenizer, subset["question"], subset["answer"], seed=int(seed),
                                settings=settings, device=device)
        info["seconds"] = round(time.perf_counter() - start, 1)
        run["train"] = info
        run["benchmarks"] = _score_model(model, tokenizer, benchmarks, settings, device, accuracy_on)
        del model
    return run


SUMMARY_METRICS = {
    "covering_radius": lambda r: r["covering_radius"],
    "mean_distance": lambda r: r["mean_distance"],
    "quality_mean": lambda r: r["quality"]["mean"],
    "quality_sd": lambda r: r["quality"]["sd"],
    "answer_chars_mean": lambda r: r["answer_chars"]["mean"],
    "near_duplicate_row_share": lambda r: r["near_duplicates"]["row_share"],
    "near_duplicate_pair_share": lambda r: r["near_duplicates"]["pair_share"],
}


def _summary(runs: list[dict[str, Any]], strategies: Sequence[str], bench_names: list[str]) -> list[dict[str, Any]]:
    out = []
    for strategy in strategies:
        mine = [r for r in runs if r["strategy"] == strategy]
        row: dict[str, Any] = {"strategy": strategy, "seeds": [r["seed"] for r in mine], "rows": mine[0]["rows"]}
        for name, get in SUMMARY_METRICS.items():
            row[name] = mean_and_spread([get(r) for r in mine])
        for bench in bench_names:
            row[f"loglik:{bench}"] = mean_and_spread([r["benchmarks"][bench]["loglik"] for r in mine])
            if any("accuracy" in r["benchmarks"][bench] for r in mine):
                row[f"accuracy:{bench}"] = mean_and_spread([r["benchmarks"][bench].get("accuracy") for r in mine])
        out.append(row)
    return out


def _verdict(summary: list[dict[str, Any]], bench_names: list[str]) -> dict[str, Any]:
    """Per benchmark: the strategy with the best mean log-likelihood and whether its lead beats the seed spread."""
    out = {}
    for bench in bench_names:
        ranked = sorted(summary, key=lambda r: -r[f"loglik:{bench}"]["mean"])
        best = ranked[0]
        entry: dict[str, Any] = {"best": best["strategy"], "loglik": best[f"loglik:{bench}"]["mean"]}
        if len(ranked) > 1:
            second = ranked[1]
            gap = best[f"loglik:{bench}"]["mean"] - second[f"loglik:{bench}"]["mean"]
            spread = max(v for v in (best[f"loglik:{bench}"]["sd"], second[f"loglik:{bench}"]["sd"], 0.0)
                         if v is not None)
            entry |= {"runner_up": second["strategy"], "gap": gap, "largest_seed_sd": spread,
                      "clear": bool(gap > spread)}
        out[bench] = entry
    return out
